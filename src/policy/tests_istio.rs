//! Istio manifests shaped like the ones in Istio's documentation (authorization policy
//! reference, "Authorization on HTTP traffic", "Explicit deny", peer authentication),
//! loaded for one workload and decided as Istio decides them. Each decision cites the
//! sentence of Istio's documentation that justifies it.

use super::tests::{decide, spiffe};
use super::*;
use crate::Identity;

fn leak(i: Identity) -> &'static Identity {
    Box::leak(Box::new(i))
}

/// The `httpbin` workload of namespace `foo` (labels `app: httpbin, version: v1`).
fn httpbin() -> WorkloadContext {
    let id: crate::SpiffeId = "spiffe://cluster.local/ns/foo/sa/httpbin".parse().unwrap();
    WorkloadContext::new()
        .identity(id.into())
        .label("app", "httpbin")
        .label("version", "v1")
}

fn get(id: Option<&'static Identity>, path: &'static str) -> RequestAttrs<'static> {
    RequestAttrs::connection(id, None, Some(8000)).with_request("GET", path)
}

fn sleep() -> &'static Identity {
    leak(spiffe("spiffe://cluster.local/ns/default/sa/sleep"))
}

/// A bookinfo-like file: a policy for `productpage` in `default`, one for `httpbin`
/// in `foo`, a mesh-wide deny in `istio-system`, and a namespace-wide one in `bar`.
const MANY: &str = r#"
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: productpage-viewer
  namespace: default
spec:
  selector:
    matchLabels:
      app: productpage
  action: ALLOW
  rules:
  - to:
    - operation:
        methods: ["GET"]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: httpbin-get
  namespace: foo
spec:
  selector:
    matchLabels:
      app: httpbin
      version: v1
  action: ALLOW
  rules:
  - from:
    - source:
        principals: ["cluster.local/ns/default/sa/sleep"]
    to:
    - operation:
        methods: ["GET"]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: deny-admin
  namespace: istio-system
spec:
  action: DENY
  rules:
  - to:
    - operation:
        paths: ["/admin*"]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: allow-nothing
  namespace: bar
spec: {}
"#;

#[test]
fn policies_apply_by_namespace_root_namespace_and_selector() {
    let p = Policy::from_yaml_for(MANY, &httpbin()).unwrap();
    // "The selector will match with workloads in the same namespace as the
    // authorization policy": `httpbin-get` (foo, matching labels) applies.
    let d = decide(&p, &get(Some(sleep()), "/headers"));
    assert_eq!((d.verdict(), d.rule()), (Verdict::Allow, "foo/httpbin-get"));
    // "If the authorization policy is in the root namespace, the selector will
    // additionally match with workloads in all namespaces": the mesh-wide DENY applies.
    let d = decide(&p, &get(Some(sleep()), "/admin/users"));
    assert_eq!(
        (d.verdict(), d.rule()),
        (Verdict::Deny, "istio-system/deny-admin")
    );
    // `productpage-viewer` (another namespace, other labels) and `allow-nothing`
    // (namespace bar) are for other workloads: skipped, never merged. Had
    // `productpage-viewer` been merged, any GET would pass.
    let other = leak(spiffe("spiffe://cluster.local/ns/prod/sa/x"));
    assert!(!decide(&p, &get(Some(other), "/headers")).is_allowed());
    assert_eq!(p.skipped().len(), 2, "{:?}", p.skipped());
    assert!(p.skipped()[0].contains("default/productpage-viewer"));
    assert!(p.skipped()[1].contains("namespace `bar`"));
    assert!(
        p.warnings()
            .iter()
            .any(|w| w.starts_with("skipped authorization policy `bar/allow-nothing`")),
        "{:?}",
        p.warnings()
    );
    let shown = p.explain(&get(Some(other), "/headers")).to_string();
    assert!(
        shown.contains("skipped") && shown.contains("default/productpage-viewer"),
        "{shown}"
    );
}

#[test]
fn labels_that_do_not_match_skip_the_policy_and_nothing_left_allows_all() {
    // Same namespace, but `version: v2`: "The selector will match with workloads in
    // the same namespace" only when the labels match, so `httpbin-get` is skipped.
    let v2 = httpbin().label("version", "v2");
    let only_httpbin = MANY.split("---").nth(1).unwrap();
    let p = Policy::from_yaml_for(only_httpbin, &v2).unwrap();
    // "If there are no ALLOW policies for the workload, allow the request."
    let anyone = get(None, "/headers");
    assert_eq!(decide(&p, &anyone).verdict(), Verdict::Allow);
    assert!(
        p.warnings().iter().any(|w| w.starts_with("ALLOW-ALL")),
        "{:?}",
        p.warnings()
    );
    assert!(p.skipped()[0].contains("version=v1"), "{:?}", p.skipped());
}

#[test]
fn without_a_context_label_selectors_are_refused_and_namespaces_not_scoped() {
    let e = Policy::from_yaml(MANY).unwrap_err().to_string();
    assert!(
        e.contains("default/productpage-viewer")
            && e.contains("selector.matchLabels")
            && e.contains("Policy::from_yaml_for")
            && e.contains("WorkloadContext"),
        "{e}"
    );
    // Without a context every document without a selector is taken to apply (no
    // namespace scoping): `bar/allow-nothing` then denies everything.
    let no_selectors = MANY.split("---").skip(2).collect::<Vec<_>>().join("---");
    let p = Policy::from_yaml(&no_selectors).unwrap();
    assert!(p.skipped().is_empty());
    assert!(!decide(&p, &get(Some(sleep()), "/headers")).is_allowed());
}

#[test]
fn target_refs_are_refused_with_the_document_and_field() {
    // Istio's reference: targetRefs name a Gateway, GatewayClass, Service (waypoints
    // only) or ServiceEntry; a process cannot tell which of those it is.
    let doc = r#"
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: gw-deny
  namespace: foo
spec:
  targetRefs:
  - kind: Gateway
    group: gateway.networking.k8s.io
    name: ingress
  action: DENY
  rules:
  - from:
    - source:
        notNamespaces: ["foo"]
"#;
    let e = Policy::from_yaml_for(doc, &httpbin())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("foo/gw-deny") && e.contains("`targetRefs`") && e.contains("Gateway"),
        "{e}"
    );
    // In another namespace it does not apply to this workload anyway: skipped.
    let elsewhere = doc.replace("namespace: foo", "namespace: bar");
    let p = Policy::from_yaml_for(&elsewhere, &httpbin()).unwrap();
    assert_eq!(p.skipped().len(), 1);
    // "At most one of `selector` or `targetRefs` can be set for a given policy."
    let both = doc.replace(
        "spec:\n",
        "spec:\n  selector:\n    matchLabels: {app: httpbin}\n",
    );
    let e = Policy::from_yaml_for(&both, &httpbin())
        .unwrap_err()
        .to_string();
    assert!(e.contains("only one"), "{e}");
}

fn allow_from(source: &str) -> String {
    format!(
        "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: p\n  namespace: foo\nspec:\n  rules:\n  - from:\n    - source:\n        {source}\n"
    )
}

fn allowed(p: &Policy, id: &str) -> bool {
    decide(p, &get(Some(leak(spiffe(id))), "/")).is_allowed()
}

#[test]
fn principals_prefix_suffix_and_literal_star() {
    // "Any string field in the rule supports Exact, Prefix, Suffix and Presence
    // match": `*/ns/default/sa/sleep` is a suffix match, in any trust domain.
    let p = Policy::from_yaml(&allow_from(r#"principals: ["*/ns/default/sa/sleep"]"#)).unwrap();
    assert!(allowed(&p, "spiffe://cluster.local/ns/default/sa/sleep"));
    assert!(allowed(&p, "spiffe://other.td/ns/default/sa/sleep"));
    assert!(!allowed(&p, "spiffe://cluster.local/ns/default/sa/sleepy"));
    // "Prefix match: `abc*` will match on value `abc` and `abcd`."
    let p =
        Policy::from_yaml(&allow_from(r#"principals: ["cluster.local/ns/default/*"]"#)).unwrap();
    assert!(allowed(&p, "spiffe://cluster.local/ns/default/sa/any"));
    assert!(!allowed(&p, "spiffe://cluster.local/ns/prod/sa/any"));
    // A `*` elsewhere is neither prefix nor suffix: Istio compares it literally, and
    // no SPIFFE ID contains `*`, so the source matches no peer (it is not a segment
    // wildcard, which would allow every namespace).
    let p = Policy::from_yaml(&allow_from(
        r#"principals: ["cluster.local/ns/*/sa/sleep"]"#,
    ))
    .unwrap();
    assert!(!allowed(&p, "spiffe://cluster.local/ns/default/sa/sleep"));
    assert!(p.warnings().iter().any(|w| w.contains("literally")));
    // Errors quote the principal as written, not a rewritten `spiffe://` value.
    let e = Policy::from_yaml(&allow_from(r#"principals: ["cluster.local/ns//sa/x"]"#))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("principal `cluster.local/ns//sa/x`")
            && !e.contains("spiffe://cluster.local/ns//sa/x"),
        "{e}"
    );
    let e = Policy::from_yaml(&allow_from(
        r#"principals: ["spiffe://cluster.local/ns/a/sa/b"]"#,
    ))
    .unwrap_err()
    .to_string();
    assert!(e.contains("without it"), "{e}");
}

#[test]
fn service_accounts_bare_name_means_the_policy_namespace() {
    // "`<serviceaccount>` may also be used to use the same namespace as the
    // `AuthorizationPolicy`."
    let p =
        Policy::from_yaml(&allow_from(r#"serviceAccounts: ["sleep", "default/curl"]"#)).unwrap();
    assert!(allowed(&p, "spiffe://cluster.local/ns/foo/sa/sleep"));
    assert!(!allowed(&p, "spiffe://cluster.local/ns/default/sa/sleep"));
    assert!(allowed(&p, "spiffe://cluster.local/ns/default/sa/curl"));
    // "No form of wildcard (`*`) is allowed." / "Cannot be set with `principals` or
    // `namespaces`."
    let e = Policy::from_yaml(&allow_from(r#"serviceAccounts: ["foo/*"]"#)).unwrap_err();
    assert!(e.to_string().contains("wildcard"), "{e}");
    let e = Policy::from_yaml(&allow_from(
        "serviceAccounts: [\"sleep\"]\n        namespaces: [\"foo\"]",
    ))
    .unwrap_err();
    assert!(e.to_string().contains("serviceAccounts"), "{e}");
}

#[test]
fn trust_domains_in_a_source() {
    // Istio's `Source.trustDomains`: "A list of trust domains derived from the peer
    // certificate."
    let p = Policy::from_yaml(&allow_from(r#"trustDomains: ["partner.example"]"#)).unwrap();
    assert!(allowed(&p, "spiffe://partner.example/ns/a/sa/b"));
    assert!(!allowed(&p, "spiffe://cluster.local/ns/a/sa/b"));
    let e = Policy::from_yaml(&allow_from(r#"trustDomains: ["*.example"]"#)).unwrap_err();
    assert!(
        e.to_string().contains("`trustDomains` value `*.example`"),
        "{e}"
    );
}

#[test]
fn method_pseudo_header_in_when() {
    // Istio conditions read `request.headers[...]` as Envoy sees the request, where
    // `:method` is the method.
    let doc = "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: p\n  namespace: foo\nspec:\n  rules:\n  - when:\n    - key: request.headers[:method]\n      values: [\"GET\"]\n";
    let p = Policy::from_yaml(doc).unwrap();
    assert!(decide(&p, &get(None, "/")).is_allowed());
    let post = RequestAttrs::connection(None, None, Some(8000)).with_request("POST", "/");
    assert!(!decide(&p, &post).is_allowed());
    let e = Policy::from_yaml(&doc.replace(":method", ":path")).unwrap_err();
    assert!(e.to_string().contains("paths"), "{e}");
}

const PEER: &str = r#"
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: allow-all
  namespace: foo
spec:
  rules:
  - {}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata:
  name: default
  namespace: istio-system
spec:
  mtls:
    mode: PERMISSIVE
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata:
  name: default
  namespace: foo
spec:
  mtls:
    mode: STRICT
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata:
  name: httpbin
  namespace: foo
spec:
  selector:
    matchLabels:
      app: httpbin
  mtls:
    mode: UNSET
  portLevelMtls:
    8081:
      mode: PERMISSIVE
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata:
  name: default
  namespace: bar
spec:
  mtls:
    mode: DISABLE
"#;

#[test]
fn peer_authentication_is_scoped_resolved_and_enforced() {
    let p = Policy::from_yaml_for(PEER, &httpbin()).unwrap();
    // The workload-specific object wins; its `UNSET` inherits the namespace's
    // STRICT (Istio: "UNSET: Inherit from parent, if has one").
    let pa = &p.peer_authentication()[0];
    assert_eq!(pa.name, "foo/httpbin");
    assert_eq!(
        (pa.mode_for_port(8000), pa.mode_for_port(8081)),
        (MtlsMode::Strict, MtlsMode::Permissive)
    );
    // "STRICT: Connection is an mTLS tunnel (TLS with client cert must be
    // presented)": plaintext (no identity) is denied on 8000, allowed on 8081.
    let plain = |port| RequestAttrs::connection(None, None, Some(port));
    let d = decide(&p, &plain(8000));
    assert_eq!(
        (d.verdict(), d.rule()),
        (Verdict::Deny, "foo/httpbin:mtls-strict")
    );
    assert!(decide(&p, &plain(8081)).is_allowed());
    assert!(decide(&p, &get(Some(sleep()), "/")).is_allowed());
    assert!(p.skipped().iter().any(|s| s.contains("bar/default")));
    // Port-level settings need a selector, as Istio validates.
    let e = Policy::from_yaml_for(
        &PEER.replace("  selector:\n    matchLabels:\n      app: httpbin\n", ""),
        &httpbin(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("portLevelMtls"), "{e}");
}
