//! A decision on the allow path allocates nothing, also when rules read the end
//! user's principal and claims (nested, list-valued): counted with a global allocator
//! that counts this thread's allocations.

use std::hint::black_box;

use meshless::policy::{Policy, RequestAttrs, Verdict};
use meshless::{Claims, Identity, RequestPrincipal, SpiffeId};

#[path = "support/counting_alloc.rs"]
mod counting_alloc;
use counting_alloc::allocations;

#[test]
fn allow_decisions_on_principals_and_claims_do_not_allocate() {
    let policy = Policy::from_yaml(
        r#"
rules:
  - name: suspended
    action: deny
    when: [{claim: [account, status], values: [suspended]}]
  - name: admins-delete
    action: allow
    from: [{identities: ["spiffe://example.org/ns/web/*"], request_principals: ["https://idp.example.com/*"]}]
    to: [{methods: [DELETE], paths: ["/orders/*"]}]
    when: [{claim: groups, values: [admin]}, {claim: [realm, roles], not_values: [banned]}]
"#,
    )
    .unwrap();
    let id = Identity::from(
        "spiffe://example.org/ns/web/sa/frontend"
            .parse::<SpiffeId>()
            .unwrap(),
    );
    let user = RequestPrincipal::new("https://idp.example.com", "alice");
    let claims = Claims::from_json(
        r#"{"groups": ["dev", "ops", "admin"], "realm": {"roles": ["reader", "writer"]}}"#,
    )
    .unwrap();
    let conn = policy.for_peer(Some(&id), None);
    let attrs = RequestAttrs::connection(Some(&id), None, Some(8443))
        .with_request("DELETE", "/orders/7")
        .with_principal(Some(&user))
        .with_claims(Some(&claims));
    // The counter works.
    assert!(allocations(|| drop(black_box(policy.for_peer(Some(&id), None)))) > 0);
    let mut verdicts = Vec::with_capacity(2);
    let n = allocations(|| {
        verdicts.push(black_box(conn.evaluate(&policy, black_box(&attrs))).verdict());
        verdicts.push(black_box(policy.evaluate(black_box(&attrs))).verdict());
    });
    assert_eq!(verdicts, [Verdict::Allow, Verdict::Allow]);
    assert_eq!(n, 0);
}
