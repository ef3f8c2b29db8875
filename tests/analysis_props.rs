//! Property tests of `meshless::policy::analysis` against the real engine: on random
//! policies and random requests, `who-can` admits a caller exactly when
//! `Policy::evaluate` allows its request, `what-can` likewise, and `diff` reports
//! every request two policies decide differently, with examples that do differ.

use std::net::IpAddr;

use http::HeaderMap;
use meshless::policy::analysis::{
    AuditEvent, Caller, Change, RequestShape, diff, suggest, what_can, who_can,
};
use meshless::policy::{Policy, RequestAttrs, Verdict};
use meshless::{Claims, Identity, LinkerdId, RequestPrincipal, SpiffeId};
use proptest::prelude::*;
use serde_json::{Value, json};

/// Values a `from` field may take, by field.
const SOURCES: &[(&str, &[&str])] = &[
    (
        "identities",
        &[
            "*",
            "spiffe://td/ns/a/sa/x",
            "spiffe://td/ns/a/*",
            "spiffe://td/ns/*/sa/x",
            "spiffe://other/ns/a/sa/x",
            "*/sa/x",
            "x.a.serviceaccount.identity.linkerd.cluster.local",
            "*.a.serviceaccount.identity.linkerd.cluster.local",
        ],
    ),
    ("namespaces", &["a", "b", "a*", "*b", "*"]),
    ("service_accounts", &["a/x", "b/*", "a/y", "*"]),
    ("trust_domains", &["td", "other", "cluster.local"]),
    ("networks", &["10.0.0.0/8", "10.1.0.0/16", "::/0"]),
    ("remote_networks", &["10.0.0.0/8", "192.168.0.0/16"]),
    (
        "request_principals",
        &["*", "https://idp/alice", "https://idp/*", "*/alice"],
    ),
];

/// Values a `to` field may take, by field.
const OPERATIONS: &[(&str, &[&str])] = &[
    ("ports", &["80", "8000-8100", "443"]),
    ("methods", &["GET", "POST", "*", "DEL*"]),
    (
        "paths",
        &[
            "/", "/a", "/a/*", "/a/{*}", "/a/{**}", "*.css", "/b*", "/a/{*}/c", "/{*}/b",
        ],
    ),
    ("hosts", &["a.com", "*.a.com", "b.*"]),
    ("authorities", &["a.com:80", "a.com:*", "*:8080"]),
];

fn field(
    pools: &'static [(&'static str, &'static [&'static str])],
) -> impl Strategy<Value = (String, Value)> {
    (
        0..pools.len(),
        any::<bool>(),
        prop::collection::vec(0usize..16, 1..3),
    )
        .prop_map(move |(f, not, picks)| {
            let (name, pool) = pools[f];
            let values: Vec<Value> = picks.iter().map(|i| json!(pool[i % pool.len()])).collect();
            let name = if not {
                format!("not_{name}")
            } else {
                name.to_owned()
            };
            (name, Value::Array(values))
        })
}

fn entry(
    pools: &'static [(&'static str, &'static [&'static str])],
    extra: bool,
) -> impl Strategy<Value = Value> {
    (
        prop::collection::vec(field(pools), 1..3),
        any::<Option<bool>>(),
    )
        .prop_map(move |(fields, auth)| {
            let mut m: serde_json::Map<String, Value> = fields.into_iter().collect();
            if let (true, Some(a)) = (extra, auth) {
                m.insert("authenticated".into(), json!(a));
            }
            Value::Object(m)
        })
}

fn condition() -> impl Strategy<Value = Value> {
    prop::sample::select(vec![
        json!({"header": "x", "values": ["1", "2*"]}),
        json!({"header": "x", "not_values": ["1"]}),
        json!({"header": "x", "values": ["*"]}),
        json!({"claim": "groups", "values": ["admin", "dev*"]}),
        json!({"claim": "groups", "not_values": ["banned"]}),
        json!({"claim": ["realm", "roles"], "values": ["ops"]}),
        json!({"claim": "scope", "values": ["read"], "space_delimited": true}),
    ])
}

fn rule(i: usize) -> impl Strategy<Value = Value> {
    (
        prop::sample::select(vec!["allow", "deny", "allow", "audit"]),
        prop::option::of(prop::collection::vec(entry(SOURCES, true), 1..3)),
        prop::option::of(prop::collection::vec(entry(OPERATIONS, false), 1..3)),
        prop::option::weighted(0.3, prop::collection::vec(condition(), 1..3)),
    )
        .prop_map(move |(action, from, to, when)| {
            let mut r = json!({"name": format!("r{i}"), "action": action});
            if let Some(f) = from {
                r["from"] = Value::Array(f);
            }
            if let Some(t) = to {
                r["to"] = Value::Array(t);
            }
            if let Some(w) = when {
                r["when"] = Value::Array(w);
            }
            r
        })
}

/// A random policy, or `None` when the pools made an invalid one (for example a
/// `namespaces` entry the scope cannot read).
fn policy() -> impl Strategy<Value = Option<Policy>> {
    spec().prop_map(|p| Policy::from_json(&p.to_string()).ok())
}

const DEFAULTS: &[&str] = &[
    "deny",
    "all-authenticated",
    "all-unauthenticated",
    "cluster-authenticated",
    "cluster-unauthenticated",
    "audit",
];

/// A random policy document.
fn spec() -> impl Strategy<Value = Value> {
    let rules = (0usize..7).prop_flat_map(|n| (0..n).map(rule).collect::<Vec<_>>());
    let scopes = prop::sample::select(vec![
        json!({"local_trust_domains": ["td"]}),
        json!({"local_trust_domains": ["td", "cluster.local"]}),
        json!({"namespaces_in_any_trust_domain": true}),
    ]);
    (rules, prop::sample::select(DEFAULTS), scopes).prop_map(|(rules, default, scope)| {
        let mut p = scope;
        p["rules"] = Value::Array(rules);
        p["default"] = json!(default);
        p
    })
}

/// A policy and a revision of it, as a pull request makes one: some rules
/// dropped, some added, and now and then another default.
fn revision() -> impl Strategy<Value = (Option<Policy>, Option<Policy>)> {
    (
        spec(),
        prop::collection::vec(any::<bool>(), 7),
        prop::collection::vec(rule(90), 0..3),
        prop::option::weighted(0.2, prop::sample::select(DEFAULTS)),
    )
        .prop_map(|(old, keep, added, default)| {
            let mut new = old.clone();
            let rules = old["rules"].as_array().cloned().unwrap_or_default();
            let mut kept: Vec<Value> = rules
                .into_iter()
                .zip(keep)
                .filter(|(_, k)| *k)
                .map(|(r, _)| r)
                .collect();
            for (i, mut r) in added.into_iter().enumerate() {
                r["name"] = json!(format!("added{i}"));
                kept.push(r);
            }
            new["rules"] = Value::Array(kept);
            if let Some(d) = default {
                new["default"] = json!(d);
            }
            let compile = |v: &Value| Policy::from_json(&v.to_string()).ok();
            (compile(&old), compile(&new))
        })
}

fn identity(s: &str) -> Identity {
    match s.strip_prefix("spiffe://") {
        Some(_) => Identity::from(s.parse::<SpiffeId>().unwrap()),
        None => Identity::from(LinkerdId::parse(s).unwrap()),
    }
}

/// A random caller and request.
#[derive(Debug, Clone)]
struct Case {
    peer: Option<&'static str>,
    ip: Option<IpAddr>,
    remote: Option<IpAddr>,
    port: u16,
    http: Option<(&'static str, &'static str, Option<&'static str>)>,
    header: Option<&'static str>,
    token: Option<(&'static str, &'static str)>,
}

fn case() -> impl Strategy<Value = Case> {
    let peers = prop::sample::select(vec![
        None,
        Some("spiffe://td/ns/a/sa/x"),
        Some("spiffe://td/ns/a/sa/y"),
        Some("spiffe://td/ns/b/sa/x"),
        Some("spiffe://td/ns/ab/sa/z"),
        Some("spiffe://other/ns/a/sa/x"),
        Some("spiffe://td/x"),
        Some("spiffe://td/ns/a/sa/x/y"),
        Some("x.a.serviceaccount.identity.linkerd.cluster.local"),
        Some("y.b.serviceaccount.identity.linkerd.cluster.local"),
    ]);
    let ips = prop::sample::select(vec![
        None,
        Some("10.1.2.3"),
        Some("10.2.0.1"),
        Some("192.168.1.1"),
        Some("8.8.8.8"),
        Some("::1"),
    ]);
    let ip = |s: Option<&str>| s.map(|s| s.parse::<IpAddr>().unwrap());
    let http = prop::option::weighted(
        0.85,
        (
            prop::sample::select(vec!["GET", "POST", "DELETE", "PATCH"]),
            prop::sample::select(vec![
                "/",
                "/a",
                "/a/b",
                "/a/b/c",
                "/x/b",
                "/b",
                "/bb/x.css",
                "/a/",
            ]),
            prop::sample::select(vec![
                None,
                Some("a.com"),
                Some("x.a.com"),
                Some("b.org"),
                Some("a.com:80"),
                Some("b.io:8080"),
            ]),
        ),
    );
    let headers = prop::sample::select(vec![None, Some("1"), Some("2"), Some("1,2"), Some("3")]);
    let tokens = prop::sample::select(vec![
        None,
        Some((
            "https://idp/alice",
            r#"{"groups": ["admin"], "scope": "read write"}"#,
        )),
        Some((
            "https://idp/bob",
            r#"{"groups": "banned", "realm": {"roles": ["ops"]}}"#,
        )),
        Some(("https://other/alice", r#"{"groups": ["developers"]}"#)),
    ]);
    (
        peers,
        ips.clone(),
        ips,
        prop::sample::select(vec![80u16, 8050, 443, 9000]),
        http,
        headers,
        tokens,
    )
        .prop_map(move |(peer, a, b, port, http, header, token)| Case {
            peer,
            ip: ip(a),
            remote: if a == b { ip(a) } else { ip(b) },
            port,
            http,
            header,
            token,
        })
}

/// The caller and the request shape of a case.
fn split(c: &Case) -> (Caller, RequestShape) {
    let mut caller = match c.peer {
        Some(p) => Caller::authenticated(identity(p)),
        None => Caller::unauthenticated(),
    };
    if let Some(ip) = c.ip {
        caller = caller.source_ip(ip);
    }
    caller = caller.remote_ip(c.remote);
    if let Some((who, claims)) = c.token {
        let (iss, sub) = who.rsplit_once('/').unwrap();
        caller = caller.token(
            RequestPrincipal::new(iss, sub),
            Claims::from_json(claims).unwrap(),
        );
    }
    let shape = match c.http {
        None => RequestShape::tcp(c.port),
        Some((m, p, host)) => {
            let mut s = RequestShape::http(m, p).unwrap().port(c.port);
            if let Some(h) = host {
                s = s.host(h).unwrap();
            }
            let mut headers = HeaderMap::new();
            if let Some(v) = c.header {
                headers.insert("x", v.parse().unwrap());
            }
            s.headers(headers)
        }
    };
    (caller, shape)
}

/// What the real engine decides for a case.
fn allowed(policy: &Policy, c: &Case) -> bool {
    with_attrs(c, |attrs| {
        policy.evaluate(attrs).verdict() == Verdict::Allow
    })
}

/// Calls `f` with the attributes of a case.
fn with_attrs<T>(c: &Case, f: impl FnOnce(&RequestAttrs<'_>) -> T) -> T {
    let id = c.peer.map(identity);
    let conn = RequestAttrs::connection(id.as_ref(), c.ip, Some(c.port)).with_remote_ip(c.remote);
    let token = c.token.map(|(who, claims)| {
        let (iss, sub) = who.rsplit_once('/').unwrap();
        (
            RequestPrincipal::new(iss, sub),
            Claims::from_json(claims).unwrap(),
        )
    });
    let mut headers = HeaderMap::new();
    if let Some(v) = c.header {
        headers.insert("x", v.parse().unwrap());
    }
    let (host, authority) = match c.http.and_then(|h| h.2) {
        Some(h) => (h.split(':').next().unwrap(), h),
        None => ("", ""),
    };
    let attrs = match c.http {
        None => conn,
        Some((m, p, h)) => {
            let a = conn
                .with_request(m, p)
                .with_headers(&headers)
                .with_principal(token.as_ref().map(|t| &t.0))
                .with_claims(token.as_ref().map(|t| &t.1));
            if h.is_some() {
                a.with_host(host).with_authority(authority)
            } else {
                a
            }
        }
    };
    f(&attrs)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// `who-can` admits the caller iff the engine allows the request.
    #[test]
    fn who_can_is_exact(p in policy(), cases in prop::collection::vec(case(), 1..6)) {
        let Some(p) = p else { return Ok(()) };
        for c in &cases {
            let (caller, shape) = split(c);
            let w = who_can(&p, &shape);
            prop_assert_eq!(w.admits(&caller), allowed(&p, c), "{:?}\n{}\npolicy: {}", c, w, serde_json::to_string(p.spec()).unwrap());
        }
    }

    /// `what-can` allows the request iff the engine does.
    #[test]
    fn what_can_is_exact(p in policy(), cases in prop::collection::vec(case(), 1..6)) {
        let Some(p) = p else { return Ok(()) };
        for c in &cases {
            let (caller, shape) = split(c);
            let w = what_can(&p, &caller);
            prop_assert_eq!(w.allows(&shape), allowed(&p, c), "{:?}\n{}\npolicy: {}", c, w, serde_json::to_string(p.spec()).unwrap());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(100))]

    /// Every request two policies decide differently lies in a reported region of
    /// its direction, and every region's example is decided differently.
    #[test]
    fn diff_is_exact((old, new) in revision(), cases in prop::collection::vec(case(), 1..12)) {
        let (Some(old), Some(new)) = (old, new) else { return Ok(()) };
        let d = diff(&old, &new);
        let text = format!("{d}\nold: {}\nnew: {}", serde_json::to_string(old.spec()).unwrap(), serde_json::to_string(new.spec()).unwrap());
        for r in d.regions() {
            let e = &r.example;
            prop_assert_ne!(e.old.split(' ').next(), e.new.split(' ').next(), "{}", text);
            prop_assert!(r.cause != "settings: ", "{}", text);
        }
        for c in &cases {
            let (a, b) = (allowed(&old, c), allowed(&new, c));
            if a != b {
                let change = if b { Change::Granted } else { Change::Revoked };
                let hit = with_attrs(c, |attrs| {
                    d.regions().iter().any(|r| r.change == change && d.contains(r, attrs))
                });
                prop_assert!(hit, "{:?} is decided {} then {} but in no region\n{}", c, a, b, text);
            }
        }
        prop_assert_eq!(d.widens(), d.regions().iter().any(|r| r.change == Change::Granted));
    }

    /// A policy compared with itself, renamed rules and all, changes nothing.
    #[test]
    fn diff_of_a_policy_with_itself_is_empty(p in policy()) {
        let Some(p) = p else { return Ok(()) };
        let mut spec = p.spec().clone();
        spec.rules.iter_mut().for_each(|r| r.name.push_str("-renamed"));
        let renamed = Policy::compile(spec).unwrap();
        prop_assert!(diff(&p, &renamed).regions().is_empty());
    }
}

/// A random audit event that went through.
fn event() -> impl Strategy<Value = AuditEvent> {
    (
        prop::sample::select(vec![
            "spiffe://td/ns/a/sa/x",
            "spiffe://td/ns/b/sa/y",
            "x.a.serviceaccount.identity.linkerd.cluster.local",
            "unauthenticated (plaintext)",
        ]),
        prop::sample::select(vec!["", "GET", "POST", "DELETE"]),
        prop::sample::select(vec![
            "/",
            "/orders/1",
            "/orders/2",
            "/orders/1/items",
            "/a/",
            "/a/b",
            "/x.css",
        ]),
        prop::sample::select(vec![None, Some(80u16), Some(8443)]),
        prop::sample::select(vec!["", "https://idp/alice"]),
        prop::sample::select(vec!["10.1.2.3:5000", "[::1]:5000", ""]),
    )
        .prop_map(|(peer, method, path, port, principal, source)| {
            let json = json!({"decision": "allow", "peer": peer, "method": method, "path": path,
                "port": port, "principal": principal, "source": source});
            serde_json::from_value(json).unwrap()
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// The suggested policy allows every observed request that went through.
    #[test]
    fn suggestion_allows_what_was_observed(events in prop::collection::vec(event(), 1..20)) {
        let s = suggest(&events, None);
        let policy = Policy::compile(s.policy.clone()).unwrap();
        for e in &events {
            if e.method.is_empty() && e.port.is_none() {
                continue; // left out: a TCP connection without its port
            }
            let id = (!e.peer.starts_with("unauthenticated")).then(|| identity(&e.peer));
            let ip = e.source.parse::<std::net::SocketAddr>().ok().map(|a| a.ip());
            let token = e.principal.rsplit_once('/').map(|(i, s)| RequestPrincipal::new(i, s));
            let conn = RequestAttrs::connection(id.as_ref(), ip, e.port);
            let attrs = match e.method.as_str() {
                "" => conn,
                m => conn.with_request(m, &e.path).with_principal(token.as_ref()),
            };
            prop_assert_eq!(policy.evaluate(&attrs).verdict(), Verdict::Allow, "{:?}\n{:?}", e, s.policy);
        }
    }
}
