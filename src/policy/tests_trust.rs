//! Trust domains in policy: `trust_domains` values, source values that could never
//! match an identity, and the trust domains `namespaces` / `service_accounts` are read
//! in — the policy's own (native), `cluster.local` (Linkerd references), or any
//! (Istio).

use super::tests::{decide, spiffe};
use super::*;
use crate::{Identity, LinkerdId};

fn linkerd(id: &str) -> Identity {
    Identity::from(LinkerdId::parse(id).unwrap())
}

/// A native JSON policy with one allow rule whose `from` is `source`.
fn native(top: &str, source: &str) -> Result<Policy, PolicyError> {
    Policy::from_json(&format!(
        r#"{{{top}"rules":[{{"name":"r","action":"allow","from":[{source}]}}]}}"#
    ))
}

fn allowed(p: &Policy, peer: &Identity) -> bool {
    decide(
        p,
        &RequestAttrs::connection(Some(peer), None, Some(8443)).with_request("GET", "/"),
    )
    .is_allowed()
}

#[test]
fn trust_domain_ids_are_read_as_their_name() {
    let peer = spiffe("spiffe://example.org/ns/web/sa/frontend");
    for written in [
        "example.org",
        "spiffe://example.org",
        "spiffe://example.org/",
    ] {
        for field in ["trust_domains", "not_trust_domains"] {
            let p = native("", &format!(r#"{{"{field}":["{written}"]}}"#)).unwrap();
            let from = &p.spec().rules[0].from.as_ref().unwrap()[0];
            let values = from
                .trust_domains
                .as_ref()
                .or(from.not_trust_domains.as_ref());
            assert_eq!(values.unwrap()[0].as_str(), "example.org", "{written}");
            assert_eq!(
                allowed(&p, &peer),
                field == "trust_domains",
                "{field}: {written}"
            );
        }
        let p = native(
            &format!(r#""local_trust_domains":["{written}"],"#),
            r#"{"namespaces":["web"]}"#,
        )
        .unwrap();
        assert_eq!(p.spec().local_trust_domains[0].as_str(), "example.org");
        assert!(allowed(&p, &peer), "local {written}");
    }
}

#[test]
fn values_that_are_not_trust_domains_are_refused() {
    let cases = [
        (
            "spiffe://example.org/ns/web",
            "`spiffe://example.org/ns/web` is a workload ID, not a trust domain: write the trust domain `example.org`",
        ),
        (
            "spiffe://example.org/ns/web/",
            "`spiffe://example.org/ns/web/` is a workload ID, not a trust domain: write the trust domain `example.org`",
        ),
        (
            "Example.org",
            "`Example.org` is not a trust domain: trust domain of `Example.org` contains `E`",
        ),
        (
            "spiffe://Example.org",
            "`spiffe://Example.org` is not a trust domain: trust domain of `spiffe://Example.org` contains `E`",
        ),
        (
            "SPIFFE://example.org",
            "`SPIFFE://example.org` is not a trust domain: SPIFFE ID `SPIFFE://example.org` must start with the lowercase scheme",
        ),
        (
            "example.org:8443",
            "`example.org:8443` is not a trust domain",
        ),
        ("example.org/", "`example.org/` is not a trust domain"),
        (
            "spiffe://example.org//",
            "`spiffe://example.org//` is not a trust domain",
        ),
        ("spiffe://", "`spiffe://` is not a trust domain"),
        ("", "`` is not a trust domain"),
    ];
    for (written, want) in cases {
        for field in ["trust_domains", "not_trust_domains"] {
            let e = native("", &format!(r#"{{"{field}":["{written}"]}}"#)).unwrap_err();
            assert!(matches!(e, PolicyError::Parse { .. }), "{e}");
            assert!(e.to_string().contains(want), "{field} {written}: {e}");
        }
        let e = native(&format!(r#""local_trust_domains":["{written}"],"#), "{}").unwrap_err();
        assert!(e.to_string().contains(want), "local {written}: {e}");
    }
    // YAML and TOML say where.
    let e = Policy::from_yaml(
        "rules:\n  - name: r\n    action: allow\n    from: [{trust_domains: [\"spiffe://td/x\"]}]\n",
    )
    .unwrap_err();
    assert_eq!(e.location().unwrap().line, Some(4), "{e}");
    let e = Policy::from_toml("local_trust_domains = [\"TD\"]\n").unwrap_err();
    assert_eq!(e.location().unwrap().line, Some(1), "{e}");
}

#[test]
fn source_values_that_never_match_are_refused() {
    let refused = [
        (
            r#"{"namespaces":["web/frontend"]}"#,
            "`web/frontend` contains `/`, which no namespace of an identity can hold (letters, digits, `.`, `-` and `_`), so it never matches: a service account is written `namespace/name` under `service_accounts`",
        ),
        (
            r#"{"not_namespaces":["spiffe://example.org/ns/web"]}"#,
            "`spiffe://example.org/ns/web` contains `:`, which no namespace",
        ),
        (
            r#"{"namespaces":["web *"]}"#,
            "`web *` contains ` `, which no namespace",
        ),
        (
            r#"{"namespaces":[".."]}"#,
            "`..` is a dot segment, which no namespace of an identity can be",
        ),
        (
            r#"{"service_accounts":["web/front end"]}"#,
            "`web/front end`: service account `front end` contains ` `",
        ),
        (
            r#"{"not_service_accounts":["we:b/*"]}"#,
            "`we:b/*`: namespace `we:b` contains `:`",
        ),
        (
            r#"{"identities":["cluster.local/ns/default/sa/sleep"]}"#,
            "`cluster.local/ns/default/sa/sleep` is not an identity: SPIFFE IDs are written in full, `spiffe://cluster.local/ns/default/sa/sleep`",
        ),
        (
            r#"{"not_identities":["web.example.org"]}"#,
            "`web.example.org` is not a Linkerd identity: expected `<sa>.<ns>.serviceaccount.identity.<control-plane-ns>.<trust-domain>`, so this identity never matches a peer",
        ),
    ];
    let top = r#""local_trust_domains":["example.org"],"#;
    for (source, want) in refused {
        let e = native(top, source).unwrap_err();
        assert!(matches!(e, PolicyError::Parse { .. }), "{e}");
        assert!(e.to_string().contains(want), "{source}: {e}");
    }
    for source in [
        r#"{"namespaces":["web","web-*","*-prod","*","Team.A_b"]}"#,
        r#"{"service_accounts":["web/*","*/default","*","a.b/c_d"]}"#,
        r#"{"identities":["web.shop.serviceaccount.identity.linkerd.cluster.local","*.cluster.local"]}"#,
        r#"{"identities":["spiffe://example.org/ns/*/sa/web","spiffe://example.org/*"]}"#,
    ] {
        native(top, source).unwrap_or_else(|e| panic!("{source}: {e}"));
    }
}

#[test]
fn namespaces_need_a_trust_domain_to_be_read_in() {
    for field in [
        "namespaces",
        "not_namespaces",
        "service_accounts",
        "not_service_accounts",
    ] {
        let value = if field.ends_with("namespaces") {
            "web"
        } else {
            "web/x"
        };
        let source = format!(r#"{{"authenticated":true,"{field}":["{value}"]}}"#);
        let e = native("", &source).unwrap_err();
        assert!(matches!(e, PolicyError::Invalid { .. }), "{e}");
        assert_eq!(
            e.to_string(),
            format!(
                "<policy>: rule `r`: `from[0].{field}` names Kubernetes namespaces, but the policy declares no trust domain of its own: set `local_trust_domains: [<your trust domain>]` at the top of the policy, or list `trust_domains` in this `from` entry"
            )
        );
        // Either remedy loads.
        native(r#""local_trust_domains":["example.org"],"#, &source).unwrap();
        let with_td = format!(r#"{{"trust_domains":["example.org"],"{field}":["{value}"]}}"#);
        native("", &with_td).unwrap();
    }
    // The same in YAML and TOML.
    let yaml = "rules:\n  - name: r\n    action: allow\n    from: [{namespaces: [web]}]\n";
    let e = Policy::from_yaml(yaml).unwrap_err();
    assert!(e.to_string().contains("set `local_trust_domains"), "{e}");
    let toml = "[[rules]]\nname = \"r\"\naction = \"allow\"\nfrom = [{ namespaces = [\"web\"] }]\n";
    let e = Policy::from_toml(toml).unwrap_err();
    assert!(e.to_string().contains("set `local_trust_domains"), "{e}");
    // Istio's any-trust-domain reading and a local trust domain contradict each other.
    let e = native(
        r#""local_trust_domains":["example.org"],"namespaces_in_any_trust_domain":true,"#,
        "{}",
    )
    .unwrap_err();
    assert!(e.to_string().contains("set one of them"), "{e}");
}

#[test]
fn native_namespaces_match_only_the_policys_own_trust_domain() {
    let ours = spiffe("spiffe://example.org/ns/web/sa/x");
    let foreign = spiffe("spiffe://other.td/ns/web/sa/x");
    let p = Policy::from_yaml(
        "local_trust_domains: [example.org]\nrules:\n  - name: web\n    action: allow\n    from: [{namespaces: [web]}]\n",
    )
    .unwrap();
    assert!(allowed(&p, &ours));
    assert!(!allowed(&p, &foreign), "web of other.td is not our web");
    let why = p
        .explain(&RequestAttrs::connection(Some(&foreign), None, Some(8443)))
        .to_string();
    assert!(
        why.contains("from[0].namespaces (the peer is of another trust domain)"),
        "{why}"
    );
    // Naming the trust domain in the entry reads the namespace there instead.
    let p = Policy::from_yaml(
        "local_trust_domains: [example.org]\nrules:\n  - name: partner\n    action: allow\n    from: [{trust_domains: [other.td], namespaces: [web]}]\n",
    )
    .unwrap();
    assert!(allowed(&p, &foreign));
    assert!(!allowed(&p, &ours));
    // Service accounts and Linkerd identities alike; several local trust domains.
    let p = Policy::from_toml(
        "local_trust_domains = [\"example.org\", \"cluster.local\"]\n[[rules]]\nname = \"r\"\naction = \"allow\"\nfrom = [{ service_accounts = [\"web/x\"] }]\n",
    )
    .unwrap();
    assert!(allowed(&p, &ours));
    assert!(!allowed(&p, &foreign));
    assert!(allowed(
        &p,
        &linkerd("x.web.serviceaccount.identity.linkerd.cluster.local")
    ));
    assert!(!allowed(
        &p,
        &linkerd("x.web.serviceaccount.identity.linkerd.other.td")
    ));
    // A deny on `not_namespaces` denies the foreign `web` too.
    let p = native(
        r#""default":"all-authenticated","local_trust_domains":["example.org"],"#,
        r#"{"not_namespaces":["web"]}"#,
    )
    .unwrap();
    let mut spec = p.spec().clone();
    spec.rules[0].action = Action::Deny;
    let p = Policy::compile(spec).unwrap();
    assert!(allowed(&p, &ours));
    assert!(!allowed(&p, &foreign));
}

#[test]
fn the_three_formats_agree_on_local_trust_domains() {
    let yaml = Policy::from_yaml(
        "local_trust_domains: [example.org]\nrules:\n  - {name: r, action: allow, from: [{namespaces: [web]}]}\n",
    )
    .unwrap();
    let toml = Policy::from_toml(
        "local_trust_domains = [\"example.org\"]\n[[rules]]\nname = \"r\"\naction = \"allow\"\nfrom = [{ namespaces = [\"web\"] }]\n",
    )
    .unwrap();
    let json = native(
        r#""local_trust_domains":["example.org"],"#,
        r#"{"namespaces":["web"]}"#,
    )
    .unwrap();
    assert_eq!(yaml.spec(), toml.spec());
    assert_eq!(yaml.spec(), json.spec());
    let again = Policy::from_json(&serde_json::to_string(json.spec()).unwrap()).unwrap();
    assert_eq!(again.spec(), json.spec());
    // Serialized next to array-of-table fields, TOML still reads it back.
    let mut spec = json.spec().clone();
    spec.cluster_networks = vec!["10.0.0.0/8".parse().unwrap()];
    let text = toml::to_string(&spec).unwrap();
    assert_eq!(Policy::from_toml(&text).unwrap().spec(), &spec, "{text}");
}

const LINKERD_REFS: &str = r#"
apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata: {name: api, namespace: shop}
spec: {podSelector: {}, port: 8443}
---
apiVersion: policy.linkerd.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: by-mtls, namespace: shop}
spec:
  targetRef: {group: policy.linkerd.io, kind: Server, name: api}
  requiredAuthenticationRefs:
    - {name: clients, kind: MeshTLSAuthentication, group: policy.linkerd.io}
---
apiVersion: policy.linkerd.io/v1alpha1
kind: MeshTLSAuthentication
metadata: {name: clients, namespace: shop}
spec:
  identityRefs:
    - {kind: ServiceAccount, name: web}
    - {kind: Namespace, name: batch}
---
apiVersion: policy.linkerd.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: by-sa, namespace: shop}
spec:
  targetRef: {group: policy.linkerd.io, kind: Server, name: api}
  requiredAuthenticationRefs:
    - {name: ops, namespace: admin, kind: ServiceAccount}
"#;

#[test]
fn linkerd_references_mean_the_local_trust_domain() {
    let p = Policy::from_yaml(LINKERD_REFS).unwrap();
    assert_eq!(p.spec().local_trust_domains[0].as_str(), "cluster.local");
    assert!(!p.spec().namespaces_in_any_trust_domain);
    for (peer, want) in [
        (
            linkerd("web.shop.serviceaccount.identity.linkerd.cluster.local"),
            true,
        ),
        (
            linkerd("job.batch.serviceaccount.identity.linkerd.cluster.local"),
            true,
        ),
        (
            linkerd("ops.admin.serviceaccount.identity.linkerd.cluster.local"),
            true,
        ),
        (spiffe("spiffe://cluster.local/ns/shop/sa/web"), true),
        // The same names, issued by another trust domain.
        (
            linkerd("web.shop.serviceaccount.identity.linkerd.other.td"),
            false,
        ),
        (
            linkerd("job.batch.serviceaccount.identity.linkerd.other.td"),
            false,
        ),
        (
            linkerd("ops.admin.serviceaccount.identity.linkerd.other.td"),
            false,
        ),
        (spiffe("spiffe://other.td/ns/shop/sa/web"), false),
        (spiffe("spiffe://other.td/ns/admin/sa/ops"), false),
        (
            linkerd("api.shop.serviceaccount.identity.linkerd.cluster.local"),
            false,
        ),
    ] {
        assert_eq!(allowed(&p, &peer), want, "{peer}");
    }
}

const ISTIO_NAMESPACES: &str = r#"
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ns, namespace: foo}
spec:
  action: ALLOW
  rules:
  - from:
    - source: {namespaces: ["dev"]}
    - source: {serviceAccounts: ["ops/admin"]}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: not-ns, namespace: foo}
spec:
  action: DENY
  rules:
  - from:
    - source: {notNamespaces: ["dev", "ops"]}
"#;

#[test]
fn istio_namespaces_keep_matching_every_trust_domain() {
    let p = Policy::from_yaml(ISTIO_NAMESPACES).unwrap();
    assert!(p.spec().namespaces_in_any_trust_domain);
    assert!(p.spec().local_trust_domains.is_empty());
    for (peer, want) in [
        ("spiffe://cluster.local/ns/dev/sa/any", true),
        ("spiffe://other.td/ns/dev/sa/any", true),
        ("spiffe://other.td/ns/ops/sa/admin", true),
        ("spiffe://cluster.local/ns/ops/sa/other", false),
        ("spiffe://other.td/ns/prod/sa/any", false),
    ] {
        assert_eq!(allowed(&p, &spiffe(peer)), want, "{peer}");
    }
    // The imported spec says so, and reloads the same as native JSON.
    let json = serde_json::to_string(p.spec()).unwrap();
    assert!(
        json.contains(r#""namespaces_in_any_trust_domain":true"#),
        "{json}"
    );
    let again = Policy::from_json(&json).unwrap();
    assert!(allowed(&again, &spiffe("spiffe://other.td/ns/dev/sa/any")));
}
