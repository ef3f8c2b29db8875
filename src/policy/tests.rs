//! Policy semantics: every field, pattern and default, errors with locations,
//! explain. Importers are tested in `tests_manifest.rs`.

use std::net::IpAddr;

use http::HeaderMap;

use super::*;
use crate::{Identity, LinkerdId, SpiffeId};

pub(super) fn spiffe(s: &str) -> Identity {
    Identity::from(s.parse::<SpiffeId>().unwrap())
}

pub(super) fn ip(s: &str) -> Option<IpAddr> {
    Some(s.parse().unwrap())
}

pub(super) fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(*k, http::HeaderValue::from_static(v));
    }
    h
}

/// Evaluates with and without per-connection precomputation and checks they agree
/// with each other and with the reference evaluator.
pub(super) fn decide(p: &Policy, attrs: &RequestAttrs<'_>) -> Decision {
    let d = p.evaluate(attrs);
    let conn = p.for_peer(attrs.peer, attrs.source_ip);
    let d2 = conn.evaluate(p, attrs);
    assert_eq!((d.verdict(), d.rule()), (d2.verdict(), d2.rule()));
    let (v, rule, audits) = reference::evaluate(p.spec(), attrs);
    assert_eq!(
        (d.verdict(), d.rule()),
        (v, rule.as_str()),
        "reference disagrees"
    );
    assert_eq!(d.audit_rules().collect::<Vec<_>>(), audits);
    d
}

const ISSUE_EXAMPLE: &str = include_str!("../../examples/policies/orders.yaml");

#[test]
fn issue_example_loads_and_decides() {
    let p = Policy::from_yaml(ISSUE_EXAMPLE).unwrap();
    assert_eq!(p.rule_count(), 2);
    let front = spiffe("spiffe://example.org/ns/web/sa/frontend");
    let acme = headers(&[("x-tenant", "acme")]);
    let other = headers(&[("x-tenant", "initech")]);
    let base = RequestAttrs::connection(Some(&front), ip("192.168.1.1"), Some(8443));
    let get = |path| base.with_request("GET", path).with_headers(&acme);
    for path in [
        "/orders",
        "/orders/1",
        "/orders/1/items",
        "/orders/1/items/x/y",
    ] {
        let d = decide(&p, &get(path));
        assert_eq!(
            (d.verdict(), d.rule()),
            (Verdict::Allow, "frontend-reads-orders"),
            "{path}"
        );
    }
    for path in ["/order", "/ordersx", "/"] {
        assert_eq!(decide(&p, &get(path)).verdict(), Verdict::Deny, "{path}");
    }
    let d = decide(
        &p,
        &base.with_request("GET", "/orders").with_headers(&other),
    );
    assert_eq!(
        (d.verdict(), d.rule(), d.is_default()),
        (Verdict::Deny, "default:deny", true)
    );
    let d = decide(
        &p,
        &base.with_request("POST", "/orders").with_headers(&acme),
    );
    assert_eq!(d.verdict(), Verdict::Deny);
    let d = decide(&p, &get("/administrator"));
    assert_eq!(
        (d.verdict(), d.rule()),
        (Verdict::Deny, "nobody-touches-admin")
    );
    let wrong_port = RequestAttrs::connection(Some(&front), None, Some(8080));
    assert_eq!(
        decide(
            &p,
            &wrong_port
                .with_request("GET", "/orders")
                .with_headers(&acme)
        )
        .verdict(),
        Verdict::Deny
    );
    // batch/* prefix: any identity under that path.
    let batch = spiffe("spiffe://example.org/ns/batch/sa/nightly");
    let req = RequestAttrs::connection(Some(&batch), None, Some(8443));
    assert!(decide(&p, &req.with_request("HEAD", "/orders").with_headers(&acme)).is_allowed());
    let other_td = spiffe("spiffe://other.org/ns/batch/sa/nightly");
    let req = RequestAttrs::connection(Some(&other_td), None, Some(8443));
    assert!(!decide(&p, &req.with_request("HEAD", "/orders").with_headers(&acme)).is_allowed());
    // ops namespace AND network (with except).
    let ops = spiffe("spiffe://example.org/ns/ops/sa/admin");
    for (src, ok) in [
        ("10.1.2.3", true),
        ("10.1.9.9", false),
        ("10.2.0.1", false),
        ("::ffff:10.1.2.3", true),
    ] {
        let req = RequestAttrs::connection(Some(&ops), ip(src), Some(8443));
        assert_eq!(
            decide(&p, &req.with_request("GET", "/orders").with_headers(&acme)).is_allowed(),
            ok,
            "{src}"
        );
    }
}

#[test]
fn same_policy_in_toml_and_json() {
    let toml = r#"
default = "deny"
[[rules]]
name = "r"
action = "allow"
from = [{ identities = ["spiffe://example.org/ns/web/*"] }]
to = [{ ports = [8443, "9000-9100"], methods = ["GET"] }]
"#;
    let json = r#"{"rules":[{"name":"r","action":"allow",
        "from":[{"identities":["spiffe://example.org/ns/web/*"]}],
        "to":[{"ports":[8443,"9000-9100"],"methods":["GET"]}]}]}"#;
    let (t, j) = (
        Policy::from_toml(toml).unwrap(),
        Policy::from_json(json).unwrap(),
    );
    assert_eq!(t.spec(), j.spec());
    let id = spiffe("spiffe://example.org/ns/web/sa/a");
    for (port, ok) in [(8443, true), (9050, true), (9101, false)] {
        let a = RequestAttrs::connection(Some(&id), None, Some(port)).with_request("GET", "/");
        assert_eq!(decide(&t, &a).is_allowed(), ok);
    }
}

fn one_rule(rule: &str) -> Policy {
    Policy::from_json(&format!(
        r#"{{"rules":[{{"name":"r","action":"allow",{rule}}}]}}"#
    ))
    .unwrap()
}

#[test]
fn identity_patterns() {
    let cases = [
        ("spiffe://td/ns/*/sa/web", "spiffe://td/ns/a/sa/web", true),
        (
            "spiffe://td/ns/*/sa/web",
            "spiffe://td/ns/a/b/sa/web",
            false,
        ),
        ("spiffe://td/ns/*", "spiffe://td/ns/a/sa/web", true),
        ("spiffe://td/ns/*", "spiffe://td/ns", false),
        ("spiffe://td/ns/*", "spiffe://td/nsx/a", false),
        ("spiffe://td/a", "spiffe://td/a/b", false),
        ("*", "spiffe://x/y", true),
        (
            "*.web.serviceaccount.identity.linkerd.cluster.local",
            "api.web.serviceaccount.identity.linkerd.cluster.local",
            true,
        ),
        (
            "*.web.serviceaccount.identity.linkerd.cluster.local",
            "api.ops.serviceaccount.identity.linkerd.cluster.local",
            false,
        ),
    ];
    for (pat, id, want) in cases {
        let p = one_rule(&format!(r#""from":[{{"identities":["{pat}"]}}]"#));
        let id = if id.starts_with("spiffe://") {
            spiffe(id)
        } else {
            Identity::from(LinkerdId::parse(id).unwrap())
        };
        let a = RequestAttrs::connection(Some(&id), None, None).with_request("GET", "/");
        assert_eq!(decide(&p, &a).is_allowed(), want, "{pat} vs {id}");
        let none = RequestAttrs::connection(None, None, None).with_request("GET", "/");
        assert!(
            !decide(&p, &none).is_allowed(),
            "unauthenticated never matches identities"
        );
    }
}

#[test]
fn source_fields_and_their_not_twins() {
    let web = spiffe("spiffe://example.org/ns/web/sa/frontend");
    let ops = spiffe("spiffe://other.org/ns/ops/sa/admin");
    // The policy's own trust domain is example.org: `ops` of other.org is not its
    // `ops` unless an entry names other.org.
    let cases: [(&str, [bool; 3]); 14] = [
        (r#"{"trust_domains":["example.org"]}"#, [true, false, false]),
        (
            r#"{"not_trust_domains":["example.org"]}"#,
            [false, true, true],
        ),
        (r#"{"namespaces":["w*"]}"#, [true, false, false]),
        (r#"{"namespaces":["ops"]}"#, [false, false, false]),
        (
            r#"{"trust_domains":["other.org"],"namespaces":["ops"]}"#,
            [false, true, false],
        ),
        (r#"{"not_namespaces":["web"]}"#, [false, true, true]),
        (
            r#"{"service_accounts":["web/frontend"]}"#,
            [true, false, false],
        ),
        (r#"{"not_service_accounts":["ops/*"]}"#, [true, true, true]),
        (
            r#"{"trust_domains":["example.org","other.org"],"not_service_accounts":["ops/*"]}"#,
            [true, false, false],
        ),
        (
            r#"{"trust_domains":["other.org"],"service_accounts":["ops/admin"]}"#,
            [false, true, false],
        ),
        (r#"{"authenticated":true}"#, [true, true, false]),
        (r#"{"authenticated":false}"#, [false, false, true]),
        (r#"{"not_identities":["*"]}"#, [false, false, true]),
        (
            r#"{"identities":["*"],"not_networks":["10.0.0.0/8"]}"#,
            [false, true, false],
        ),
    ];
    for (from, want) in cases {
        let p = Policy::from_json(&format!(
            r#"{{"local_trust_domains":["example.org"],"rules":[{{"name":"r","action":"allow","from":[{from}]}}]}}"#
        ))
        .unwrap();
        let peers = [
            (Some(&web), "10.0.0.1"),
            (Some(&ops), "192.168.0.1"),
            (None, "10.0.0.2"),
        ];
        for ((peer, src), want) in peers.into_iter().zip(want) {
            let a = RequestAttrs::connection(peer, ip(src), Some(80)).with_request("GET", "/");
            assert_eq!(decide(&p, &a).is_allowed(), want, "{from} for {peer:?}");
        }
    }
}

#[test]
fn operation_fields() {
    let cases: [(&str, &str, &str, &str, bool); 15] = [
        (
            r#"{"hosts":["API.example.org"]}"#,
            "api.example.org",
            "GET",
            "/",
            true,
        ),
        (
            r#"{"hosts":["*.example.org"]}"#,
            "example.org",
            "GET",
            "/",
            false,
        ),
        (
            r#"{"hosts":["*.example.org"]}"#,
            "a.example.org",
            "GET",
            "/",
            true,
        ),
        (
            r#"{"not_hosts":["*.internal"]}"#,
            "db.internal",
            "GET",
            "/",
            false,
        ),
        (r#"{"methods":["GET"]}"#, "h", "get", "/", false),
        (r#"{"not_methods":["DELETE"]}"#, "h", "GET", "/", true),
        (r#"{"paths":["*.css"]}"#, "h", "GET", "/a/b.css", true),
        (r#"{"paths":["*"]}"#, "h", "GET", "/anything", true),
        (r#"{"paths":["/api/{*}"]}"#, "h", "GET", "/api/", false),
        (r#"{"paths":["/api/{**}"]}"#, "h", "GET", "/api/", true),
        (
            r#"{"not_paths":["/admin*"]}"#,
            "h",
            "GET",
            "/admin/x",
            false,
        ),
        (r#"{"not_ports":["1-1024"]}"#, "h", "GET", "/", false),
        (
            r#"{"paths":["/orders/{*}/items/{**}"]}"#,
            "h",
            "GET",
            "/orders/1/items/a/b",
            true,
        ),
        (
            r#"{"paths":["/orders/{*}/items/{**}"]}"#,
            "h",
            "GET",
            "/orders/1/items",
            false,
        ),
        (
            r#"{"paths":["/orders/{*}/items/{**}"]}"#,
            "h",
            "GET",
            "/orders/1/2/items/a",
            false,
        ),
    ];
    for (to, host, method, path, want) in cases {
        let p = one_rule(&format!(r#""to":[{to}]"#));
        let a = RequestAttrs::connection(None, None, Some(443))
            .with_request(method, path)
            .with_host(host);
        assert_eq!(
            decide(&p, &a).is_allowed(),
            want,
            "{to} {host} {method} {path}"
        );
    }
}

#[test]
fn header_conditions() {
    let p = one_rule(
        r#""when":[{"header":"x-tenant","values":["acme"]},{"header":"x-debug","not_values":["*"]}]"#,
    );
    let ok = headers(&[("x-tenant", " acme\t")]);
    let debug = headers(&[("x-tenant", "acme"), ("x-debug", "1")]);
    let empty_debug = headers(&[("x-tenant", "acme"), ("x-debug", "")]);
    let a = RequestAttrs::connection(None, None, None).with_request("GET", "/");
    assert!(decide(&p, &a.with_headers(&ok)).is_allowed());
    assert!(!decide(&p, &a.with_headers(&debug)).is_allowed());
    assert!(
        !decide(&p, &a.with_headers(&empty_debug)).is_allowed(),
        "an empty value is present"
    );
    // Two lines are the comma-joined field (RFC 9110 §5.3), as an app reads them:
    // `other, acme` is not `acme`, however it is sent.
    for two in [
        headers(&[("x-tenant", "other"), ("x-tenant", "acme")]),
        headers(&[("x-tenant", "other, acme")]),
        headers(&[("x-tenant", "other ,acme")]),
    ] {
        assert!(!decide(&p, &a.with_headers(&two)).is_allowed(), "{two:?}");
    }
    // A deny rule also reads each element, as an app splitting the list would.
    let deny = Policy::from_json(
        r#"{"default":"all-unauthenticated","rules":[{"name":"d","action":"deny","when":[{"header":"x-role","values":["debug"]}]},
            {"name":"n","action":"deny","when":[{"header":"x-env","not_values":["prod"]}]}]}"#,
    )
    .unwrap();
    for (pairs, denied) in [
        (&[("x-role", "debug"), ("x-env", "prod")][..], true),
        (
            &[("x-role", "viewer"), ("x-role", "debug"), ("x-env", "prod")][..],
            true,
        ),
        (&[("x-role", "viewer, debug"), ("x-env", "prod")][..], true),
        (&[("x-role", "viewer"), ("x-env", "prod")][..], false),
        (&[("x-env", "prod"), ("x-env", "dev")][..], true),
        (&[("x-env", "prod")][..], false),
    ] {
        let h = headers(pairs);
        assert_eq!(
            !decide(&deny, &a.with_headers(&h)).is_allowed(),
            denied,
            "{pairs:?}"
        );
    }
    let list = one_rule(r#""when":[{"header":"x-tenant","values":["other, acme"]}]"#);
    for two in [
        headers(&[("x-tenant", "other"), ("x-tenant", "acme")]),
        headers(&[("x-tenant", "other,acme")]),
        headers(&[("x-tenant", "other ,  acme ")]),
    ] {
        assert!(decide(&list, &a.with_headers(&two)).is_allowed(), "{two:?}");
    }
    assert!(
        !decide(&p, &a).is_allowed(),
        "missing header matches no values"
    );
}

#[test]
fn deny_beats_allow_and_audit_never_decides() {
    let p = Policy::from_json(
        r#"{"default":"all-unauthenticated","rules":[
        {"name":"log","action":"audit","to":[{"paths":["/x"]}]},
        {"name":"allow","action":"allow"},
        {"name":"no","action":"deny","to":[{"methods":["DELETE"]}]}]}"#,
    )
    .unwrap();
    let a = RequestAttrs::connection(None, None, None);
    let d = decide(&p, &a.with_request("DELETE", "/x"));
    assert_eq!((d.verdict(), d.rule()), (Verdict::Deny, "no"));
    assert_eq!(d.audit_rules().collect::<Vec<_>>(), ["log"]);
    assert!(d.is_audited());
    let d = decide(&p, &a.with_request("GET", "/x"));
    assert_eq!((d.verdict(), d.rule()), (Verdict::Allow, "allow"));
}

#[test]
fn defaults() {
    let front = spiffe("spiffe://example.org/ns/web/sa/frontend");
    let cases = [
        ("deny", [false, false, false, false]),
        ("all-authenticated", [true, true, false, false]),
        ("all-unauthenticated", [true, true, true, true]),
        ("cluster-authenticated", [true, false, false, false]),
        ("cluster-unauthenticated", [true, false, true, false]),
        ("audit", [true, true, true, true]),
    ];
    for (default, want) in cases {
        let p = Policy::from_json(&format!(
            r#"{{"default":"{default}","cluster_networks":["10.0.0.0/8"]}}"#
        ))
        .unwrap();
        let peers = [
            (Some(&front), "10.1.1.1"),
            (Some(&front), "8.8.8.8"),
            (None, "10.1.1.1"),
            (None, "8.8.8.8"),
        ];
        for ((peer, src), want) in peers.into_iter().zip(want) {
            let d = decide(&p, &RequestAttrs::connection(peer, ip(src), Some(80)));
            assert_eq!(d.is_allowed(), want, "{default} {peer:?} {src}");
            assert_eq!(d.rule(), format!("default:{default}"));
            assert_eq!(d.is_audited(), default == "audit");
        }
    }
}

#[test]
fn dry_run_reports_but_does_not_enforce() {
    let p = Policy::from_json(r#"{"dry_run":true}"#).unwrap();
    let d = decide(&p, &RequestAttrs::connection(None, None, None));
    assert_eq!(
        (d.verdict(), d.enforced(), d.dry_run()),
        (Verdict::Deny, Verdict::Allow, true)
    );
    assert!(d.is_allowed());
}

#[test]
fn tcp_connections_follow_istio() {
    let p = Policy::from_json(
        r#"{"default":"all-unauthenticated","local_trust_domains":["td"],"rules":[
        {"name":"http-allow","action":"allow","to":[{"paths":["/x"]}]},
        {"name":"tcp-deny","action":"deny","from":[{"namespaces":["bad"]}],"to":[{"methods":["POST"],"ports":[5432]}]}]}"#,
    )
    .unwrap();
    assert_eq!(p.warnings().len(), 2);
    let bad = spiffe("spiffe://td/ns/bad/sa/x");
    let d = decide(&p, &RequestAttrs::connection(Some(&bad), None, Some(5432)));
    assert_eq!(
        (d.verdict(), d.rule()),
        (Verdict::Deny, "tcp-deny"),
        "deny ignores HTTP fields"
    );
    let d = decide(&p, &RequestAttrs::connection(Some(&bad), None, Some(80)));
    assert_eq!(
        d.rule(),
        "default:all-unauthenticated",
        "allow needing HTTP never matches TCP"
    );
    let strict =
        Policy::from_json(r#"{"rules":[{"name":"a","action":"allow","to":[{"paths":["*"]}]}]}"#)
            .unwrap();
    assert!(!decide(&strict, &RequestAttrs::connection(None, None, Some(80))).is_allowed());
    let e = strict
        .explain(&RequestAttrs::connection(None, None, Some(80)))
        .to_string();
    assert!(e.contains("never matches a TCP connection"), "{e}");
}

#[test]
fn errors_have_locations() {
    let yaml = "rules:\n  - name: a\n    action: allow\n    from:\n      - identites: [\"*\"]\n";
    let e = Policy::from_yaml(yaml).unwrap_err();
    let loc = e.location().unwrap();
    assert_eq!(loc.line, Some(5), "{e}");
    assert!(e.to_string().contains("identites"), "{e}");
    let bad_id =
        "rules:\n  - name: a\n    action: allow\n    from: [{identities: [\"spiffe://Bad/x\"]}]\n";
    assert_eq!(
        Policy::from_yaml(bad_id)
            .unwrap_err()
            .location()
            .unwrap()
            .line,
        Some(4)
    );
    let toml = "[[rules]]\nname = \"a\"\naction = \"allwo\"\n";
    let e = Policy::from_toml(toml).unwrap_err();
    assert_eq!(e.location().unwrap().line, Some(3), "{e}");
    let json = "{\"rules\":[{\"name\":\"a\",\"action\":\"allow\",\n\"to\":[{\"networks\":[\"10.0.0.0/33\"]}]}]}";
    let e = Policy::from_json(json).unwrap_err();
    assert_eq!(e.location().unwrap().line, Some(2), "{e}");
}

#[test]
fn invalid_values_are_rejected() {
    for rule in [
        r#""from":[{"identities":["spiffe://td/a*"]}]"#,
        r#""from":[{"identities":["spiffe://td"]}]"#,
        r#""from":[{"identities":["Not.Lower"]}]"#,
        r#""from":[{"identities":[]}]"#,
        r#""from":[]"#,
        r#""from":[{"networks":["10.0.0.0/8x"]}]"#,
        r#""from":[{"networks":[{"cidr":"10.0.0.0/16","except":["10.2.0.0/24"]}]}]"#,
        r#""from":[{"service_accounts":["justname"]}]"#,
        r#""to":[{"ports":[0]}]"#,
        r#""to":[{"ports":["9-1"]}]"#,
        r#""to":[{"ports":[70000]}]"#,
        r#""to":[{"methods":["get"]}]"#,
        r#""to":[{"paths":["/a/../b"]}]"#,
        r#""to":[{"paths":["/a/{**}/{*}"]}]"#,
        r#""to":[{"paths":["/a*b"]}]"#,
        r#""to":[{"hosts":["example.org:443"]}]"#,
        r#""when":[{"header":"x"}]"#,
        r#""when":[{"header":"bad header","values":["a"]}]"#,
    ] {
        let text = format!(r#"{{"rules":[{{"name":"r","action":"allow",{rule}}}]}}"#);
        assert!(Policy::from_json(&text).is_err(), "accepted {rule}");
    }
    assert!(
        Policy::from_json(
            r#"{"rules":[{"name":"a","action":"allow"},{"name":"a","action":"deny"}]}"#
        )
        .is_err()
    );
    assert!(Policy::from_json(r#"{"default":"allow"}"#).is_err());
    assert!(Policy::from_yaml("").is_err());
    assert!(Policy::from_yaml("a: [").is_err());
}

#[test]
fn explain_names_the_failing_field() {
    let p = Policy::from_yaml(ISSUE_EXAMPLE).unwrap();
    let front = spiffe("spiffe://example.org/ns/web/sa/frontend");
    let h = headers(&[("x-tenant", "acme")]);
    let a = RequestAttrs::connection(Some(&front), None, Some(8443))
        .with_request("POST", "/orders")
        .with_headers(&h);
    let text = p.explain(&a).to_string();
    assert!(text.starts_with("decision: deny\n"), "{text}");
    assert!(
        text.contains("allow `frontend-reads-orders`: operation does not match to[0].methods"),
        "{text}"
    );
    let ok = RequestAttrs::connection(Some(&front), None, Some(8443))
        .with_request("GET", "/orders")
        .with_headers(&h);
    let text = p.explain(&ok).to_string();
    assert!(
        text.starts_with("decision: allow\n") && text.contains("allow `frontend-reads-orders`"),
        "{text}"
    );
}

#[test]
fn peer_rules_from_an_older_policy_are_not_trusted() {
    let allow = one_rule(r#""from":[{"identities":["*"]}]"#);
    let deny = Policy::deny_all();
    let id = spiffe("spiffe://td/a");
    let conn = allow.for_peer(Some(&id), None);
    assert!(!conn.is_empty());
    let a = RequestAttrs::connection(Some(&id), None, None).with_request("GET", "/");
    assert!(!conn.evaluate(&deny, &a).is_allowed());
}

#[test]
fn servers_with_routes_answer_not_found() {
    let p = Policy::from_yaml(
        r#"
servers:
  - name: api
    ports: [8080]
    default: all-authenticated
    routes:
      - name: orders
        matches: [{paths: ["/orders*"], methods: [GET]}]
rules: []
"#,
    )
    .unwrap();
    let id = spiffe("spiffe://td/a");
    let a = RequestAttrs::connection(Some(&id), None, Some(8080));
    let d = decide(&p, &a.with_request("GET", "/users"));
    assert_eq!(
        (d.verdict(), d.rule()),
        (Verdict::NotFound, "route-not-found")
    );
    let d = decide(&p, &a.with_request("GET", "/orders/1"));
    assert_eq!(
        (d.verdict(), d.rule()),
        (Verdict::Allow, "api/default:all-authenticated")
    );
    let d = decide(
        &p,
        &RequestAttrs::connection(Some(&id), None, Some(9090)).with_request("GET", "/users"),
    );
    assert_eq!(d.rule(), "default:deny");
}

#[test]
fn path_patterns_are_written_as_requests_are_matched() {
    use super::PathPattern;
    // Escapes in a pattern are decoded, as request paths are: both spellings match the
    // decoded request path.
    for (pattern, path) in [
        ("/caf%C3%A9", "/café"),
        ("/café", "/café"),
        ("/%40admin", "/@admin"),
        ("/files/caf%c3%a9/{*}", "/files/café/x"),
        ("/api/*", "/api/v1"),
        ("/admin*", "/admin;x"),
        ("*.json", "/a.json"),
        ("*%2Ejson", "/a.json"),
        ("/admin/.*", "/admin/.git"),
    ] {
        let p: PathPattern = pattern.parse().unwrap();
        assert!(p.matches(path), "{pattern} should match {path}");
    }
    // No normalized request could match these: refused at load, templates too.
    for pattern in [
        "/a/../b",
        "/a/./b",
        "/a//b",
        "/a/%2e%2e/b",
        "/a/%2F/b",
        "/a%25",
        "/a/../{*}",
        "/a//{*}",
        "/{*}/./x",
        "/a/%2e/{**}",
        "/a/..;/{*}",
    ] {
        assert!(
            pattern.parse::<PathPattern>().is_err(),
            "{pattern} accepted"
        );
    }
}
