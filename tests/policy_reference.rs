//! Property test: the compiled, indexed policy (with and without per-connection
//! precomputation) agrees with the deliberately naive reference evaluator on random
//! policies and requests.

use http::HeaderMap;
use meshless::policy::{Policy, RequestAttrs, reference};
use meshless::{Claims, Identity, LinkerdId, RequestPrincipal, SpiffeId};
use proptest::prelude::*;
use serde_json::{Value, json};

/// Turns a byte string into choices, so proptest can shrink policies.
struct Choices<'a>(std::slice::Iter<'a, u8>);

impl Choices<'_> {
    fn n(&mut self, k: usize) -> usize {
        self.0.next().map_or(0, |b| usize::from(*b) % k)
    }
    fn pick<T: Clone>(&mut self, xs: &[T]) -> T {
        xs[self.n(xs.len())].clone()
    }
    fn list(&mut self, pool: &[&str]) -> Value {
        let len = 1 + self.n(2);
        Value::Array((0..len).map(|_| json!(self.pick(pool))).collect())
    }
}

const IDS: &[&str] = &[
    "*",
    "spiffe://td/ns/a/sa/x",
    "spiffe://td/ns/a/*",
    "spiffe://td/ns/*/sa/x",
    "spiffe://td/*",
    "spiffe://other/ns/a/sa/x",
    "x.a.serviceaccount.identity.linkerd.cluster.local",
    "*.a.serviceaccount.identity.linkerd.cluster.local",
];
const NS: &[&str] = &["a", "b", "a*", "*", "*b"];
const PRINCIPALS: &[&str] = &[
    "*",
    "https://idp/alice",
    "https://idp/*",
    "*/alice",
    "https://other/bob",
];
const SA: &[&str] = &["a/x", "b/*", "*", "a/y"];
const TD: &[&str] = &[
    "td",
    "other",
    "cluster.local",
    "spiffe://td",
    "spiffe://other/",
];
const NETS: &[&str] = &[
    "10.0.0.0/8",
    "10.1.0.0/16",
    "::/0",
    "192.168.0.0/16",
    "0.0.0.0/0",
];
const PORTS: &[&str] = &["80", "8000-8100", "443"];
const HOSTS: &[&str] = &["a.com", "*.a.com", "b.com", "*"];
const AUTHORITIES: &[&str] = &[
    "a.com",
    "a.com:*",
    "*.a.com:443",
    "A.com:8080",
    "*",
    "*:443",
    "b.*",
];
const METHODS: &[&str] = &["GET", "POST", "*", "DELETE"];
const PATHS: &[&str] = &[
    "/",
    "/a",
    "/a/*",
    "/a/{*}",
    "/a/{**}",
    "*.css",
    "/b*",
    "/a/{*}/c",
    "/a/b",
    "*",
    "/{*}/b",
    // `{**}` followed by literals (Istio: it must be the last operator, not segment).
    "/a/{**}/c",
    "/{**}/b",
    "/{*}/b/{**}",
    "/a/{**}/",
    "/{**}/b/c",
];

fn source(c: &mut Choices<'_>) -> Value {
    let mut m = serde_json::Map::new();
    for _ in 0..1 + c.n(3) {
        let not = if c.n(3) == 0 { "not_" } else { "" };
        let (field, value) = match c.n(10) {
            8 => ("remote_networks", c.list(NETS)),
            9 => ("networks", c.list(NETS)),
            0 => ("identities", c.list(IDS)),
            1 => ("namespaces", c.list(NS)),
            2 => ("service_accounts", c.list(SA)),
            3 => ("trust_domains", c.list(TD)),
            4 => ("networks", c.list(NETS)),
            5 => {
                m.insert("authenticated".into(), json!(c.n(2) == 0));
                continue;
            }
            6 => ("request_principals", c.list(PRINCIPALS)),
            _ => (
                "networks",
                json!([{"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}]),
            ),
        };
        m.insert(format!("{not}{field}"), value);
    }
    Value::Object(m)
}

fn operation(c: &mut Choices<'_>) -> Value {
    let mut m = serde_json::Map::new();
    for _ in 0..1 + c.n(3) {
        let not = if c.n(3) == 0 { "not_" } else { "" };
        let (field, value) = match c.n(5) {
            0 => ("ports", Value::Array(vec![json!(c.pick(PORTS))])),
            1 => ("hosts", c.list(HOSTS)),
            4 => ("authorities", c.list(AUTHORITIES)),
            2 => ("methods", c.list(METHODS)),
            _ => ("paths", c.list(PATHS)),
        };
        m.insert(format!("{not}{field}"), value);
    }
    Value::Object(m)
}

/// Whose namespaces and service accounts entries without `trust_domains` read: the
/// policy's own trust domains, Istio's any, or none (then each such entry names
/// `trust_domains`, or the policy would not load).
const SCOPES: &[&str] = &[
    r#"{"local_trust_domains": ["td"]}"#,
    r#"{"local_trust_domains": ["td", "cluster.local"]}"#,
    r#"{"local_trust_domains": ["spiffe://other"]}"#,
    r#"{"namespaces_in_any_trust_domain": true}"#,
    r#"{}"#,
];

fn policy(c: &mut Choices<'_>) -> Value {
    let scope: Value = serde_json::from_str(c.pick(SCOPES)).unwrap();
    let scoped = scope.as_object().is_some_and(|m| !m.is_empty());
    let mut rules = Vec::new();
    for i in 0..c.n(12) {
        let mut r = json!({"name": format!("r{i}"), "action": c.pick(&["allow", "deny", "audit", "allow"])});
        if c.n(3) > 0 {
            let mut from: Vec<Value> = (0..1 + c.n(2)).map(|_| source(c)).collect();
            for s in from.iter_mut().filter(|_| !scoped) {
                let kube = ["namespaces", "service_accounts"]
                    .iter()
                    .any(|f| s.get(*f).is_some() || s.get(format!("not_{f}")).is_some());
                if kube && s.get("trust_domains").is_none() {
                    s["trust_domains"] = c.list(TD);
                }
            }
            r["from"] = Value::Array(from);
        }
        if c.n(3) > 0 {
            r["to"] = Value::Array((0..1 + c.n(2)).map(|_| operation(c)).collect());
        }
        if c.n(3) == 0 {
            let conditions = [
                json!({"header": "x", "values": ["1", "2*"]}),
                json!({"header": "x", "not_values": ["1"]}),
                json!({"header": "x", "values": ["1,2", "*3"]}),
                json!({"header": "x", "values": ["*"]}),
                json!({"header": "x", "not_values": ["2", "1 , 2"]}),
                json!({"claim": "groups", "values": ["admin", "dev*"]}),
                json!({"claim": "groups", "not_values": ["banned"]}),
                json!({"claim": ["realm", "roles"], "values": ["*"]}),
                json!({"claim": ["realm", "roles"], "not_values": ["*er"]}),
                json!({"claim": "aud", "values": ["api"]}),
                json!({"claim": ["https://t.example/tenant"], "values": ["acme"]}),
                json!({"claim": "scope", "values": ["read", "a*"], "space_delimited": true}),
                json!({"claim": "scope", "not_values": ["admin"], "space_delimited": true}),
                json!({"claim": "scope", "values": ["read write"]}),
                json!({"claim": "roles", "values": ["ops"]}),
            ];
            r["when"] = Value::Array((0..1 + c.n(2)).map(|_| c.pick(&conditions)).collect());
        }
        rules.push(r);
    }
    let defaults = [
        "deny",
        "all-authenticated",
        "all-unauthenticated",
        "cluster-authenticated",
        "cluster-unauthenticated",
        "audit",
    ];
    let mut p = json!({"default": c.pick(&defaults), "rules": rules});
    for (k, v) in scope.as_object().into_iter().flatten() {
        p[k] = v.clone();
    }
    if c.n(2) == 0 {
        p["cluster_networks"] = json!(["10.0.0.0/8"]);
    }
    if c.n(4) == 0 {
        let mut server = json!({"name": "s", "ports": [443], "default": c.pick(&defaults)});
        if c.n(2) == 0 {
            // Overlapping routes, so that precedence decides which one a request
            // goes to, and rules that name one of them.
            let all = [
                json!({"name": "r", "matches": [{"paths": ["/a/*", "/"]}, {"methods": ["POST"]}]}),
                json!({"name": "q", "matches": [{"paths": ["/a/b"]}, {"paths": ["/a/{*}/c"], "headers": [{"header": "x", "values": ["1"]}]}]}),
                json!({"name": "h", "hosts": ["*.a.com"], "matches": []}),
                json!({"name": "m", "matches": [{"paths": ["/b*"], "methods": ["GET", "DELETE"]}]}),
                // Query parameters: counted after headers, before the method; names
                // and values compared decoded, case-sensitively.
                json!({"name": "k", "matches": [{"query_params": [{"name": "a", "value": "1"}]}, {"query_params": [{"name": "a b", "value": "x y"}]}, {"paths": ["/a/*"], "query_params": [{"name": "a+b", "value": "x+y"}, {"name": "c", "value": ""}]}]}),
                json!({"name": "z", "matches": [{"methods": ["GET"], "query_params": [{"name": "A", "value": "1 2"}]}, {"query_params": [{"name": "a", "value": "\u{FFFD}"}, {"name": "a", "value": "2"}]}]}),
            ];
            let routes: Vec<Value> = all.iter().filter(|_| c.n(3) > 0).cloned().collect();
            if !routes.is_empty() {
                let names: Vec<Value> = routes.iter().map(|r| r["name"].clone()).collect();
                if let Some(rules) = p["rules"].as_array_mut() {
                    for r in rules.iter_mut() {
                        if c.n(3) > 0 {
                            continue;
                        }
                        let field = if c.n(4) == 0 { "not_routes" } else { "routes" };
                        let name = names[c.n(names.len())].clone();
                        r["to"] = json!([{field: [name], "ports": [443]}]);
                    }
                }
                server["routes"] = Value::Array(routes);
            }
        }
        p["servers"] = json!([server]);
    }
    p
}

const PEERS: &[&str] = &[
    "spiffe://td/ns/a/sa/x",
    "spiffe://td/ns/b/sa/y",
    "spiffe://other/ns/a/sa/x",
    "spiffe://td/ns/a/sa/x/extra",
    "spiffe://td/foo",
    "spiffe://cluster.local/ns/b/sa/x",
    "x.a.serviceaccount.identity.linkerd.cluster.local",
    "y.b.serviceaccount.identity.linkerd.cluster.local",
    "x.a.serviceaccount.identity.linkerd.td",
    "y.b.serviceaccount.identity.linkerd.other",
];
const REQ_PATHS: &[&str] = &[
    "/", "/a", "/a/b", "/a/b/c", "/b", "/bx", "/x.css", "/a/", "/c/b", "/a/c", "/a/x/c",
    "/a/x/y/c", "/a/b/", "/x/b/c", "/x/b/",
];

/// Raw queries: repeated, encoded (`%XX`, `+`), malformed escapes, bytes that are
/// not UTF-8, empty pieces, pairs without `=`.
const QUERIES: &[Option<&str>] = &[
    None,
    Some(""),
    Some("a=1"),
    Some("a=2&a=1"),
    Some("a=1&a=2"),
    Some("A=1"),
    Some("a%20b=x%2By"),
    Some("a+b=x+y"),
    Some("a+b=x%2By&c"),
    Some("c=&a%20b=x%2by"),
    Some("A=1+2"),
    Some("A=1%202&b=3"),
    Some("a=%FF&a=2"),
    Some("a=%zz"),
    Some("&&a=1&"),
    Some("a"),
    Some("a=1=2"),
    Some("%41=1%202"),
    Some("%61=%31"),
];

const CLAIMS: &[&str] = &[
    r#"{}"#,
    r#"{"groups": "admin", "aud": "api"}"#,
    r#"{"groups": ["x", "dev-1"], "aud": ["web", "api"], "realm": {"roles": ["reader"]}}"#,
    r#"{"groups": ["banned", "admin"], "realm": {"roles": "owner"}}"#,
    r#"{"groups": 7, "realm": "roles", "https://t.example/tenant": "acme"}"#,
    r#"{"groups": [["admin"]], "realm": {"roles": [""]}}"#,
    r#"{"scope": "read write", "roles": "dev ops"}"#,
    r#"{"scope": " admin  all ", "roles": ["dev ops", "ops"]}"#,
    r#"{"scope": ["read write", "admin"], "roles": "  "}"#,
];

fn check(policy_bytes: &[u8], request_bytes: &[u8]) -> Result<(), TestCaseError> {
    let spec = policy(&mut Choices(policy_bytes.iter()));
    let text = spec.to_string();
    let p = Policy::from_json(&text).map_err(|e| TestCaseError::fail(format!("{e}: {text}")))?;
    let c = &mut Choices(request_bytes.iter());
    let peer: Option<Identity> = match c.n(PEERS.len() + 1) {
        0 => None,
        i if PEERS[i - 1].starts_with("spiffe://") => {
            Some(PEERS[i - 1].parse::<SpiffeId>().unwrap().into())
        }
        i => Some(LinkerdId::parse(PEERS[i - 1]).unwrap().into()),
    };
    let src = c.pick(&[
        None,
        Some("10.1.2.3"),
        Some("10.2.0.1"),
        Some("192.168.1.1"),
        Some("8.8.8.8"),
        Some("fd00::1"),
    ]);
    let port = c.pick(&[None, Some(80), Some(443), Some(8050)]);
    let mut headers = HeaderMap::new();
    // Repeated, comma-joined, padded, empty and non-text values: one field either way.
    for v in [&b"1"[..], b"2", b"23", b" 1 ", b"1, 2", b"", b"\xe9"] {
        if c.n(4) == 0 {
            headers.append("x", http::HeaderValue::from_bytes(v).unwrap());
        }
    }
    let principals = [
        RequestPrincipal::new("https://idp", "alice"),
        RequestPrincipal::new("https://idp", "bob"),
        RequestPrincipal::new("https://other", "alice"),
        RequestPrincipal::new("https://other", "bob"),
    ];
    // Each document also as a token whose issuer lists `roles` as space-delimited.
    let claims: Vec<Claims> = CLAIMS
        .iter()
        .map(|j| Claims::from_json(j).unwrap())
        .flat_map(|c| [c.clone(), c.space_delimited(["roles"])])
        .collect();
    // A token gives both a principal and claims; no token neither.
    let token = match c.n(principals.len() + 1) {
        0 => None,
        i => Some((&principals[i - 1], &claims[c.n(claims.len())])),
    };
    let conn = RequestAttrs::connection(peer.as_ref(), src.map(|s| s.parse().unwrap()), port);
    let attrs = if c.n(5) == 0 {
        conn
    } else {
        let mut a = conn
            .with_request(c.pick(&["GET", "POST", "DELETE"]), c.pick(REQ_PATHS))
            .with_query(c.pick(QUERIES))
            .with_headers(&headers)
            .with_principal(token.map(|t| t.0))
            .with_claims(token.map(|t| t.1));
        if c.n(4) > 0 {
            // The host, and the authority with the port the client sent, if any.
            let (host, authority) = c.pick(&[
                ("a.com", "a.com"),
                ("a.com", "a.com:8080"),
                ("x.a.com", "x.a.com:443"),
                ("x.a.com", "x.a.com"),
                ("b.com", "b.com:443"),
            ]);
            a = a.with_host(host).with_authority(authority);
        }
        a
    };
    // The original client: the peer (no proxy), another address (behind a proxy),
    // or unknown (X-Forwarded-For unreadable).
    let attrs = match c.n(4) {
        0 => attrs.with_remote_ip(Some("10.1.9.9".parse().unwrap())),
        1 => attrs.with_remote_ip(Some("8.8.4.4".parse().unwrap())),
        2 => attrs.with_remote_ip(None),
        _ => attrs,
    };
    let fast = p.evaluate(&attrs);
    let cached = p.for_peer(attrs.peer, attrs.source_ip).evaluate(&p, &attrs);
    let (verdict, rule, audits) = reference::evaluate(p.spec(), &attrs);
    let context = || format!("policy {text}\nrequest {attrs:?}");
    prop_assert_eq!(
        (fast.verdict(), fast.rule()),
        (verdict, rule.as_str()),
        "{}",
        context()
    );
    prop_assert_eq!(
        (cached.verdict(), cached.rule()),
        (verdict, rule.as_str()),
        "{}",
        context()
    );
    prop_assert_eq!(
        fast.audit_rules().collect::<Vec<_>>(),
        audits.clone(),
        "{}",
        context()
    );
    prop_assert_eq!(
        cached.audit_rules().collect::<Vec<_>>(),
        audits,
        "{}",
        context()
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4000, ..ProptestConfig::default() })]

    #[test]
    fn compiled_policy_agrees_with_reference(
        policy_bytes in prop::collection::vec(any::<u8>(), 0..400),
        request_bytes in prop::collection::vec(any::<u8>(), 24),
    ) {
        check(&policy_bytes, &request_bytes)?;
    }
}
