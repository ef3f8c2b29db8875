//! Unit tests of the analyses on small, readable policies.

use super::*;
use crate::policy::Policy;
use crate::{Identity, SpiffeId};

fn id(s: &str) -> Identity {
    Identity::from(s.parse::<SpiffeId>().unwrap())
}

const ORDERS: &str = r#"
local_trust_domains: [example.org]
rules:
  - name: web-reads
    action: allow
    from: [{namespaces: [web]}]
    to: [{methods: [GET], paths: ["/orders/*"]}]
  - name: block-x
    action: deny
    from: [{identities: ["spiffe://example.org/ns/web/sa/x"]}]
  - name: admins
    action: allow
    from: [{service_accounts: ["ops/admin"]}]
    when: [{claim: groups, values: [admin]}]
"#;

#[test]
fn who_can_names_namespaces_and_exceptions() {
    let p = Policy::from_yaml(ORDERS).unwrap();
    let shape = RequestShape::http("GET", "/orders/7").unwrap().port(8443);
    let w = who_can(&p, &shape);
    let text = w.to_string();
    println!("{text}");
    assert!(
        text.contains("namespace `web` of trust domain `example.org`"),
        "{text}"
    );
    assert!(
        text.contains("except `spiffe://example.org/ns/web/sa/x`"),
        "{text}"
    );
    assert!(w.admits(&Caller::authenticated(id(
        "spiffe://example.org/ns/web/sa/y"
    ))));
    assert!(!w.admits(&Caller::authenticated(id(
        "spiffe://example.org/ns/web/sa/x"
    ))));
    assert!(!w.admits(&Caller::authenticated(id(
        "spiffe://example.org/ns/db/sa/y"
    ))));
}
