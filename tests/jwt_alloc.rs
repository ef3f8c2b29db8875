//! The cached key lookup does not allocate: counted with a global allocator that
//! counts this thread's allocations (so parallel tests do not disturb the count).

use std::hint::black_box;

use meshless::jwt::{Jwks, JwksSource};
use meshless::testing::TestJwtKey;

#[path = "support/counting_alloc.rs"]
mod counting_alloc;
use counting_alloc::allocations;

#[test]
fn cached_key_lookup_does_not_allocate() {
    let keys: Vec<TestJwtKey> = (0..8)
        .map(|i| TestJwtKey::generate(&format!("kid-{i}"), "ES256").unwrap())
        .collect();
    let refs: Vec<&TestJwtKey> = keys.iter().collect();
    let text = TestJwtKey::jwks(&refs);
    let jwks = Jwks::from_json(&text).unwrap();
    let source = JwksSource::from_jwks(&text).unwrap();

    // The counter works: parsing a key set allocates.
    assert!(allocations(|| drop(black_box(Jwks::from_json(&text).unwrap()))) > 0);

    let n = allocations(|| {
        for kid in ["kid-0", "kid-5", "kid-7", "absent", ""] {
            black_box(jwks.find(black_box(kid)));
        }
    });
    assert_eq!(n, 0);
    // Through the reloadable source: an Arc snapshot, then the lookup. arc-swap
    // registers a per-thread slot on a thread's first load (one allocation, once);
    // after that, loads allocate nothing.
    drop(source.keys());
    let n = allocations(|| {
        let current = source.keys();
        assert_eq!(black_box(current.find(black_box("kid-3"))).len(), 1);
    });
    assert_eq!(n, 0);
}
