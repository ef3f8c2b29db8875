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
    // `:path` is the path (the query is not matched, so a value with one is refused);
    // `:authority` is what `hosts` match, port included, case-insensitively.
    let path = Policy::from_yaml(
        &doc.replace(":method", ":path")
            .replace("\"GET\"", "\"/api/*\""),
    )
    .unwrap();
    assert!(decide(&path, &get(None, "/api/v1")).is_allowed());
    assert!(!decide(&path, &get(None, "/admin")).is_allowed());
    let e = Policy::from_yaml(
        &doc.replace(":method", ":path")
            .replace("\"GET\"", "\"/a?x=1\""),
    )
    .unwrap_err();
    assert!(e.to_string().contains("query"), "{e}");
    let authority = Policy::from_yaml(
        &doc.replace(":method", ":authority")
            .replace("\"GET\"", "\"api.example.com:8443\""),
    )
    .unwrap();
    let at = |a: &'static str| {
        RequestAttrs::connection(None, None, Some(8000))
            .with_request("GET", "/")
            .with_authority(a)
    };
    // (The layer lower-cases the authority before deciding.)
    assert!(decide(&authority, &at("api.example.com:8443")).is_allowed());
    assert!(!decide(&authority, &at("api.example.com")).is_allowed());
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

/// One policy for `httpbin` in `foo`: `action` and `rules` as written.
fn policy_doc(name: &str, action: &str, rules: &str) -> String {
    format!(
        "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: {name}\n  namespace: foo\nspec:\n  action: {action}\n  rules:\n{rules}"
    )
}

/// A GET to `/` with `authority` (already normalized, as the layer passes it).
fn to_authority(authority: &'static str) -> RequestAttrs<'static> {
    get(Some(sleep()), "/").with_authority(authority)
}

/// A GET to `/` with the `Host` header `raw`, normalized as the layer does it.
fn to_host(raw: &str) -> RequestAttrs<'static> {
    let uri: &'static http::Uri = Box::leak(Box::new(http::Uri::from_static("/")));
    let host: &'static http::HeaderValue =
        Box::leak(Box::new(http::HeaderValue::from_str(raw).unwrap()));
    let target = normalize_target(uri, Some(host)).unwrap();
    let authority = target.authority.unwrap().into_owned();
    to_authority(Box::leak(authority.into_boxed_str()))
}

#[test]
fn hosts_match_the_authority_with_its_port_case_insensitively() {
    // Operation.hosts: "A list of hosts as specified in the HTTP request. The match is
    // case-insensitive." Istio builds an `:authority` header matcher from each value,
    // so the port the client sent is part of what is compared.
    let p = Policy::from_yaml(&policy_doc(
        "by-host",
        "ALLOW",
        "  - to:\n    - operation:\n        hosts: [\"API.example.com:8080\", \"*.example.com:443\"]\n",
    ))
    .unwrap();
    let allowed = |a| decide(&p, &to_authority(a)).is_allowed();
    // "The match is case-insensitive": `API.example.com:8080` is `api.example.com:8080`.
    assert!(allowed("api.example.com:8080"));
    assert!(decide(&p, &to_host("Api.EXAMPLE.com:8080")).is_allowed());
    assert!(decide(&p, &to_host("www.example.com.:443")).is_allowed());
    // "exact match authorization policies only match the exact string given for the
    // `hosts` or `notHosts` fields" (security best practices, "Writing Host Match
    // Policies"): another port, or none, is another authority.
    assert!(!allowed("api.example.com"));
    assert!(!allowed("api.example.com:8443"));
    // "Suffix match: `*abc` will match on value `abc` and `xabc`": `*.example.com:443`
    // is the suffix `.example.com:443`, so any name under it, on port 443 only.
    assert!(allowed("www.example.com:443"));
    assert!(allowed("a.b.example.com:443"));
    assert!(!allowed("www.example.com"));
    assert!(!allowed("www.example.com:4430"));
    assert!(!allowed("example.com:443"));
    // A request without an authority (HTTP/1.0 without Host) matches no host.
    assert!(!decide(&p, &get(Some(sleep()), "/")).is_allowed());
    // "hosts ... Must be used only with HTTP": never a TCP connection.
    assert!(
        !decide(
            &p,
            &RequestAttrs::connection(Some(sleep()), None, Some(8000))
        )
        .is_allowed()
    );
}

#[test]
fn deny_on_hosts_needs_the_port_wildcard_as_the_best_practices_write_it() {
    // "Istio generates hostnames for both the hostname itself and all matching ports
    // ... However, exact match authorization policies only match the exact string
    // given": the documented DENY lists `example.com` and `example.com:*`.
    let p = Policy::from_yaml(&policy_doc(
        "ingress-host",
        "DENY",
        "  - to:\n    - operation:\n        hosts: [\"example.com\", \"example.com:*\"]\n",
    ))
    .unwrap();
    for denied in ["example.com", "example.com:80", "example.com:8080"] {
        let d = decide(&p, &to_authority(denied));
        assert_eq!(
            (d.verdict(), d.rule()),
            (Verdict::Deny, "foo/ingress-host"),
            "{denied}"
        );
    }
    // `example.com:*` is a prefix match on `example.com:`, so not on another name.
    assert!(decide(&p, &to_authority("example.community")).is_allowed());
    assert!(
        p.warnings().iter().all(|w| !w.contains("no port")),
        "{:?}",
        p.warnings()
    );
    // Without `example.com:*`, the DENY misses `example.com:8080`, exactly as in
    // Istio; the load warns about it.
    let p = Policy::from_yaml(&policy_doc(
        "ingress-host",
        "DENY",
        "  - to:\n    - operation:\n        hosts: [\"example.com\"]\n",
    ))
    .unwrap();
    assert!(!decide(&p, &to_host("Example.COM")).is_allowed());
    assert!(decide(&p, &to_authority("example.com:8080")).is_allowed());
    assert!(
        p.warnings()
            .iter()
            .any(|w| w.contains("`example.com`") && w.contains("example.com:*")),
        "{:?}",
        p.warnings()
    );
    // `notHosts` is matched the same way.
    let p = Policy::from_yaml(&policy_doc(
        "not-admin",
        "ALLOW",
        "  - to:\n    - operation:\n        notHosts: [\"admin.example.com:*\"]\n",
    ))
    .unwrap();
    assert!(!decide(&p, &to_authority("admin.example.com:9000")).is_allowed());
    assert!(decide(&p, &to_authority("admin.example.com")).is_allowed());
}

#[test]
fn native_authorities_keep_hosts_without_port() {
    // The model: `hosts` stay the host without port (ports are `ports`);
    // `authorities` are Istio's `hosts`.
    let p = Policy::from_json(
        r#"{"rules":[{"name":"r","action":"allow","to":[{"authorities":["Api.Example.org.:08443"]}]}]}"#,
    )
    .unwrap();
    let a = |auth| {
        RequestAttrs::connection(None, None, Some(8443))
            .with_request("GET", "/")
            .with_host("api.example.org")
            .with_authority(auth)
    };
    assert!(decide(&p, &a("api.example.org:8443")).is_allowed());
    assert!(!decide(&p, &a("api.example.org")).is_allowed());
    assert_eq!(
        serde_json::to_value(&p.spec().rules[0].to.as_ref().unwrap()[0]).unwrap(),
        serde_json::json!({"authorities": ["api.example.org:8443"]})
    );
    for bad in [
        "a/b",
        "user@a.example",
        "a.example:abc",
        "a.example:70000",
        "a:1:2",
        "a *",
    ] {
        let text = format!(
            r#"{{"rules":[{{"name":"r","action":"allow","to":[{{"authorities":["{bad}"]}}]}}]}}"#
        );
        assert!(Policy::from_json(&text).is_err(), "accepted {bad}");
    }
    let e = Policy::from_json(
        r#"{"rules":[{"name":"r","action":"allow","to":[{"hosts":["a.example:443"]}]}]}"#,
    )
    .unwrap_err();
    assert!(e.to_string().contains("authorities"), "{e}");
}

/// A request that came through a proxy at `10.0.0.5` from client `remote`.
fn via_proxy(remote: Option<&str>) -> RequestAttrs<'static> {
    RequestAttrs::connection(Some(sleep()), super::tests::ip("10.0.0.5"), Some(8000))
        .with_request("GET", "/")
        .with_remote_ip(remote.map(|r| r.parse().unwrap()))
}

#[test]
fn remote_ip_blocks_match_the_client_and_ip_blocks_the_peer_anded() {
    // Source.ipBlocks: "populated from the source address of the IP packet";
    // Source.remoteIpBlocks: "populated from X-Forwarded-For header or proxy
    // protocol". Shaped like the ingress IP allow list task, with the proxy network
    // in `ipBlocks`: fields of one source are ANDed ("Fields in the source are ANDed
    // together").
    let p = Policy::from_yaml(&policy_doc(
        "ingress-policy",
        "ALLOW",
        "  - from:\n    - source:\n        ipBlocks: [\"10.0.0.0/8\"]\n        remoteIpBlocks: [\"1.2.3.4\", \"5.6.7.0/24\"]\n",
    ))
    .unwrap();
    assert!(decide(&p, &via_proxy(Some("5.6.7.8"))).is_allowed());
    assert!(decide(&p, &via_proxy(Some("1.2.3.4"))).is_allowed());
    assert!(!decide(&p, &via_proxy(Some("1.2.3.5"))).is_allowed());
    // The client address alone does not do: the peer must be in `ipBlocks` too.
    let direct = RequestAttrs::connection(Some(sleep()), super::tests::ip("5.6.7.8"), Some(8000))
        .with_request("GET", "/");
    assert!(!decide(&p, &direct).is_allowed());
    // An unknown client address (X-Forwarded-For unreadable) satisfies no allow.
    let d = decide(&p, &via_proxy(None));
    assert!(!d.is_allowed());
    let shown = p.explain(&via_proxy(None)).to_string();
    assert!(
        shown.contains("remote_networks (the client address is unknown)"),
        "{shown}"
    );
    // On TCP there is no X-Forwarded-For: the client is the peer (Istio's remote.ip on
    // a TCP connection is the downstream address).
    let p = Policy::from_yaml(&policy_doc(
        "tcp-remote",
        "ALLOW",
        "  - from:\n    - source:\n        remoteIpBlocks: [\"5.6.7.0/24\"]\n",
    ))
    .unwrap();
    let tcp = |src| RequestAttrs::connection(Some(sleep()), super::tests::ip(src), Some(8000));
    assert!(decide(&p, &tcp("5.6.7.8")).is_allowed());
    assert!(!decide(&p, &tcp("10.0.0.5")).is_allowed());
}

#[test]
fn not_remote_ip_blocks_deny_an_unknown_client() {
    // The ingress IP deny list shape: DENY from `remoteIpBlocks`, and a DENY of every
    // client outside the allowed ranges (`notRemoteIpBlocks`).
    let p = Policy::from_yaml(&policy_doc(
        "deny-outside",
        "DENY",
        "  - from:\n    - source:\n        notRemoteIpBlocks: [\"5.6.7.0/24\"]\n",
    ))
    .unwrap();
    // The peer (the proxy, 10.0.0.5) is outside the range, but only the client
    // counts: when it is inside, the request passes.
    assert!(decide(&p, &via_proxy(Some("5.6.7.8"))).is_allowed());
    let d = decide(&p, &via_proxy(Some("9.9.9.9")));
    assert_eq!((d.verdict(), d.rule()), (Verdict::Deny, "foo/deny-outside"));
    // Unknown client: a deny naming remote blocks holds, so the request is denied.
    let d = decide(&p, &via_proxy(None));
    assert_eq!((d.verdict(), d.rule()), (Verdict::Deny, "foo/deny-outside"));
    let p = Policy::from_yaml(&policy_doc(
        "deny-listed",
        "DENY",
        "  - from:\n    - source:\n        remoteIpBlocks: [\"9.9.9.0/24\"]\n",
    ))
    .unwrap();
    assert!(!decide(&p, &via_proxy(Some("9.9.9.9"))).is_allowed());
    assert!(decide(&p, &via_proxy(Some("5.6.7.8"))).is_allowed());
    assert!(!decide(&p, &via_proxy(None)).is_allowed());
}

#[test]
fn remote_ip_in_when_is_the_client_and_source_ip_the_peer() {
    // Conditions: `remote.ip` is "Original client IP address as determined by
    // X-Forwarded-For or Proxy Protocol"; `source.ip` is the "Source workload
    // instance IP address".
    let rules = "  - when:\n    - key: remote.ip\n      values: [\"5.6.7.0/24\"]\n";
    let p = Policy::from_yaml(&policy_doc("by-client", "ALLOW", rules)).unwrap();
    assert!(decide(&p, &via_proxy(Some("5.6.7.8"))).is_allowed());
    // The peer in the range, the client not: `remote.ip` does not match.
    let peer_in_range =
        RequestAttrs::connection(Some(sleep()), super::tests::ip("5.6.7.8"), Some(8000))
            .with_request("GET", "/")
            .with_remote_ip(super::tests::ip("9.9.9.9"));
    assert!(!decide(&p, &peer_in_range).is_allowed());
    let p = Policy::from_yaml(&policy_doc(
        "by-peer",
        "ALLOW",
        &rules.replace("remote.ip", "source.ip"),
    ))
    .unwrap();
    assert!(decide(&p, &peer_in_range).is_allowed());
    assert!(!decide(&p, &via_proxy(Some("5.6.7.8"))).is_allowed());
}

#[test]
fn the_client_address_is_read_from_x_forwarded_for_behind_trusted_proxies() {
    // Network topologies: "set the numTrustedProxies to the number of trusted proxies
    // deployed in front of the Istio gateway proxy, so that the client address can be
    // extracted correctly"; Envoy takes the address that many hops from the right.
    let p = Policy::from_yaml(&policy_doc(
        "ingress-policy",
        "ALLOW",
        "  - from:\n    - source:\n        remoteIpBlocks: [\"5.6.7.0/24\"]\n",
    ))
    .unwrap();
    let h = super::tests::headers(&[("x-forwarded-for", "9.9.9.9, 5.6.7.8")]);
    let peer = super::tests::ip("10.0.0.5");
    let decide_with = |n| {
        let attrs = RequestAttrs::connection(Some(sleep()), peer, Some(8000))
            .with_request("GET", "/")
            .with_headers(&h)
            .with_remote_ip(client_address(&h, peer, n));
        decide(&p, &attrs).is_allowed()
    };
    // 0 (Istio's default): the header is ignored; the peer is the client.
    assert!(!decide_with(0));
    // 1: the address the proxy appended, `5.6.7.8`.
    assert!(decide_with(1));
    // 2: what the client itself claimed, `9.9.9.9`.
    assert!(!decide_with(2));
    // More proxies than addresses: unknown, never the peer's.
    assert!(!decide_with(3));
}

/// The path-templating policy of Istio's integration tests
/// (`tests/integration/security/testdata/authz/path-templating.yaml.tmpl`).
const PATH_TEMPLATES: &str = r#"
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: httpbin
  namespace: foo
spec:
  action: ALLOW
  rules:
  - to:
    - operation:
        paths: ["/allow/admin/{**}", "/foo/{*}/bar/{**}", "/store/{**}/cart"]
"#;

#[test]
fn path_templates_allow_literals_after_the_any_segments_operator() {
    // Operation.paths: "`{**}` matches zero or more globs. If a path contains `{**}`,
    // it must be the last operator" (the last operator, not the last segment), and
    // "`{*}` matches a single glob that cannot extend beyond a path segment". As
    // Envoy's URI template regex (`{**}` is `[...]/*`, `/` included), and the cases of
    // Istio's `TestAuthz_PathTemplating`:
    let p = Policy::from_yaml_for(PATH_TEMPLATES, &httpbin()).unwrap();
    for (path, allow) in [
        ("/allow/admin/", true),
        // "When `**` is the last segment and operator in the template, the path must
        // have a trailing `/` to match".
        ("/allow/admin", false),
        ("/allow/user/", false),
        ("/allow", false),
        ("/allow/admin/temp.txt", true),
        ("/allow/admin/foo/temp.txt", true),
        ("/foo/buzz/bar/bat.txt", true),
        ("/foo/buzz/bar/bat/fuzz.txt", true),
        ("/foo/bar/bat.txt", false),
        ("/foo/buzz/bar/", true),
        ("/foo/buzz/bar", false),
        ("/store/foo/cart", true),
        ("/store/foo/bar/cart", true),
        ("/store/cart", false),
        ("/store/foo/cart/x", false),
    ] {
        assert_eq!(
            decide(&p, &get(Some(sleep()), path)).is_allowed(),
            allow,
            "{path}"
        );
    }
    // Zero characters for `{**}`: "`/store//cart`" is allowed by Istio; meshless
    // matches normalized paths, so the template itself decides it.
    let t: crate::policy::PathPattern = "/store/{**}/cart".parse().unwrap();
    assert!(t.matches("/store//cart"));
    // "`/{**}/foo/{*}` is not a valid path template since `{**}` is not the last
    // operator"; "`/foo/{*}.txt` is invalid since there are characters other than
    // `{*}` in the path segment"; "`/*/baz/{*}`" has `*` outside an operator.
    for bad in [
        "/{**}/foo/{*}",
        "/a/{**}/{**}",
        "/foo/{*}.txt",
        "/*/baz/{*}",
    ] {
        let doc = PATH_TEMPLATES.replace("/store/{**}/cart", bad);
        assert!(Policy::from_yaml_for(&doc, &httpbin()).is_err(), "{bad}");
    }
}
