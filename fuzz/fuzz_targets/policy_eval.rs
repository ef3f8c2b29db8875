//! Random policy + random request: the compiled, indexed policy (with and without
//! per-connection precomputation) decides exactly as the naive reference evaluator.
#![no_main]

use http::HeaderMap;
use libfuzzer_sys::fuzz_target;
use meshless::policy::{Policy, RequestAttrs, reference};
use meshless::{Claims, Identity, LinkerdId, RequestPrincipal, SpiffeId};

struct Choices<'a>(std::slice::Iter<'a, u8>);

impl Choices<'_> {
    fn n(&mut self, k: usize) -> usize {
        self.0.next().map_or(0, |b| usize::from(*b) % k)
    }
    fn pick<'s>(&mut self, xs: &[&'s str]) -> &'s str {
        xs[self.n(xs.len())]
    }
    fn list(&mut self, pool: &[&str]) -> String {
        let items: Vec<String> = (0..1 + self.n(2)).map(|_| format!("{:?}", self.pick(pool))).collect();
        format!("[{}]", items.join(","))
    }
}

const IDS: &[&str] = &["*", "spiffe://td/ns/a/sa/x", "spiffe://td/ns/a/*", "spiffe://td/ns/*/sa/x", "spiffe://td/*", "x.a.serviceaccount.identity.linkerd.cluster.local", "*.a.serviceaccount.identity.linkerd.cluster.local"];
const NS: &[&str] = &["a", "b", "a*", "*", "*b"];
const PRINCIPALS: &[&str] = &["*", "https://idp/alice", "https://idp/*", "*/alice"];
const CONDITIONS: &[&str] = &[
    "{\"header\":\"x\",\"values\":[\"1\",\"2*\"]}",
    "{\"claim\":\"groups\",\"values\":[\"admin\",\"dev*\"]}",
    "{\"claim\":\"groups\",\"not_values\":[\"banned\"]}",
    "{\"claim\":[\"realm\",\"roles\"],\"values\":[\"*\"]}",
];
const CLAIMS: &[&str] = &[
    "{}",
    "{\"groups\":\"admin\"}",
    "{\"groups\":[\"x\",\"dev-1\",\"banned\"],\"realm\":{\"roles\":[\"r\"]}}",
    "{\"groups\":7,\"realm\":\"roles\"}",
];
const SA: &[&str] = &["a/x", "b/*", "*"];
const TD: &[&str] = &["td", "other", "spiffe://td"];
/// Whose namespaces `namespaces` / `service_accounts` read (none: entries without
/// `trust_domains` that name them make the policy fail to load).
const SCOPES: &[&str] = &["\"local_trust_domains\":[\"td\"],", "\"local_trust_domains\":[\"td\",\"cluster.local\"],", "\"namespaces_in_any_trust_domain\":true,", ""];
const NETS: &[&str] = &["10.0.0.0/8", "10.1.0.0/16", "::/0", "0.0.0.0/0"];
const PORTS: &[&str] = &["80", "8000-8100", "443"];
const HOSTS: &[&str] = &["a.com", "*.a.com", "*"];
const METHODS: &[&str] = &["GET", "POST", "*"];
const PATHS: &[&str] = &["/", "/a", "/a/*", "/a/{*}", "/a/{**}", "*.css", "/b*", "/a/{*}/c", "*", "/{*}/b"];

fn entry(c: &mut Choices<'_>, fields: &[(&str, &[&str])]) -> String {
    let mut parts = Vec::new();
    for _ in 0..1 + c.n(3) {
        let (name, pool) = fields[c.n(fields.len())];
        let not = if c.n(3) == 0 { "not_" } else { "" };
        parts.push(format!("\"{not}{name}\":{}", c.list(pool)));
    }
    parts.sort();
    parts.dedup_by(|a, b| a.split(':').next() == b.split(':').next());
    format!("{{{}}}", parts.join(","))
}

fn policy(c: &mut Choices<'_>) -> String {
    let from: &[(&str, &[&str])] = &[("identities", IDS), ("namespaces", NS), ("service_accounts", SA), ("trust_domains", TD), ("networks", NETS), ("request_principals", PRINCIPALS)];
    let to: &[(&str, &[&str])] = &[("ports", PORTS), ("hosts", HOSTS), ("methods", METHODS), ("paths", PATHS)];
    let mut rules = Vec::new();
    for i in 0..c.n(10) {
        let mut r = format!("\"name\":\"r{i}\",\"action\":\"{}\"", c.pick(&["allow", "deny", "audit"]));
        if c.n(3) > 0 {
            let es: Vec<String> = (0..1 + c.n(2)).map(|_| entry(c, from)).collect();
            r.push_str(&format!(",\"from\":[{}]", es.join(",")));
        }
        if c.n(3) > 0 {
            let es: Vec<String> = (0..1 + c.n(2)).map(|_| entry(c, to)).collect();
            r.push_str(&format!(",\"to\":[{}]", es.join(",")));
        }
        if c.n(4) == 0 {
            let when: Vec<&str> = (0..1 + c.n(2)).map(|_| c.pick(CONDITIONS)).collect();
            r.push_str(&format!(",\"when\":[{}]", when.join(",")));
        }
        rules.push(format!("{{{r}}}"));
    }
    let default = c.pick(&["deny", "all-authenticated", "all-unauthenticated", "cluster-authenticated", "cluster-unauthenticated", "audit"]);
    let servers = if c.n(4) == 0 {
        ",\"servers\":[{\"name\":\"s\",\"ports\":[443],\"routes\":[{\"name\":\"r\",\"matches\":[{\"paths\":[\"/a/*\"]}]}]}]"
    } else {
        ""
    };
    let scope = c.pick(SCOPES);
    format!("{{{scope}\"default\":\"{default}\",\"rules\":[{}]{servers}}}", rules.join(","))
}

fuzz_target!(|data: &[u8]| {
    let c = &mut Choices(data.iter());
    let text = policy(c);
    let Ok(p) = Policy::from_json(&text) else {
        return; // e.g. an empty list from the generator: rejected, fine
    };
    let peers = ["spiffe://td/ns/a/sa/x", "spiffe://td/ns/b/sa/y", "spiffe://other/ns/a/sa/x", "spiffe://td/ns/a/sa/x/y", "x.a.serviceaccount.identity.linkerd.cluster.local", "x.a.serviceaccount.identity.linkerd.other"];
    let peer: Option<Identity> = match c.n(peers.len() + 1) {
        0 => None,
        i if peers[i - 1].starts_with("spiffe://") => peers[i - 1].parse::<SpiffeId>().ok().map(Identity::from),
        i => LinkerdId::parse(peers[i - 1]).ok().map(Identity::from),
    };
    let src = c.pick(&["10.1.2.3", "10.2.0.1", "8.8.8.8", "fd00::1"]).parse().ok();
    let port = [None, Some(80), Some(443), Some(8050)][c.n(4)];
    let mut headers = HeaderMap::new();
    if c.n(2) == 0 {
        headers.append("x", http::HeaderValue::from_static("23"));
    }
    let principals = [RequestPrincipal::new("https://idp", "alice"), RequestPrincipal::new("https://other", "alice")];
    let claims: Vec<Claims> = CLAIMS.iter().filter_map(|j| Claims::from_json(j).ok()).collect();
    let token = match c.n(principals.len() + 1) {
        0 => None,
        i => Some((&principals[i - 1], &claims[c.n(claims.len())])),
    };
    let conn = RequestAttrs::connection(peer.as_ref(), src, port);
    let attrs = if c.n(5) == 0 {
        conn
    } else {
        let path = c.pick(&["/", "/a", "/a/b", "/a/b/c", "/b", "/bx", "/x.css", "/c/b"]);
        conn.with_request(c.pick(&["GET", "POST"]), path).with_headers(&headers).with_host(c.pick(&["a.com", "x.a.com"])).with_principal(token.map(|t| t.0)).with_claims(token.map(|t| t.1))
    };
    let (verdict, rule, audits) = reference::evaluate(p.spec(), &attrs);
    for d in [p.evaluate(&attrs), p.for_peer(attrs.peer, attrs.source_ip).evaluate(&p, &attrs)] {
        assert_eq!((d.verdict(), d.rule()), (verdict, rule.as_str()), "{text} {attrs:?}");
        assert_eq!(d.audit_rules().collect::<Vec<_>>(), audits, "{text}");
    }
});
