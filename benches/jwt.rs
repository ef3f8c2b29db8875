//! JWT hot paths: verifying a token (per request that carries one), the whole layer
//! around a trivial service, and the cached key lookup (which must not allocate).
//!
//! Baselines in the same run: `jsonwebtoken::decode` of the same token with the same
//! key (the bare library cost), and the inner service without the layer.

use std::convert::Infallible;
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use http::{Request, Response};
use meshless::jwt::{Jwks, JwksSource, JwtIssuer, JwtLayer, JwtVerifier};
use meshless::testing::TestJwtKey;
use tower::{Layer, Service, service_fn};

#[path = "../tests/support/counting_alloc.rs"]
mod counting_alloc;
use counting_alloc::allocations;

const ISS: &str = "https://idp.bench";

fn claims() -> String {
    format!(r#"{{"iss":"{ISS}","sub":"user-1","aud":"api","exp":4102444800,"groups":["a","b"]}}"#)
}

fn jwt(c: &mut Criterion) {
    let es = TestJwtKey::generate("es", "ES256").unwrap();
    let rs = TestJwtKey::generate("rs", "RS256").unwrap();
    let ed = TestJwtKey::generate("ed", "EdDSA").unwrap();
    // A realistic IdP key set: a few rotated keys besides the signing ones.
    let extra: Vec<TestJwtKey> = (0..5)
        .map(|i| TestJwtKey::generate(&format!("old-{i}"), "ES256").unwrap())
        .collect();
    let mut all: Vec<&TestJwtKey> = vec![&es, &rs, &ed];
    all.extend(extra.iter());
    let jwks_text = TestJwtKey::jwks(&all);
    let source = JwksSource::from_jwks(&jwks_text).unwrap();
    let issuer = JwtIssuer::new(ISS, source).unwrap().audience("api");
    let verifier = JwtVerifier::new([issuer.clone()]).unwrap();

    let mut g = c.benchmark_group("jwt");
    for (name, key, alg) in [
        ("ES256", &es, jsonwebtoken::Algorithm::ES256),
        ("RS256", &rs, jsonwebtoken::Algorithm::RS256),
        ("EdDSA", &ed, jsonwebtoken::Algorithm::EdDSA),
    ] {
        let token = key.sign(&claims()).unwrap();
        assert!(verifier.verify(&token).is_ok());
        g.bench_function(format!("verify_{name}"), |b| {
            b.iter(|| verifier.verify(black_box(&token)).unwrap())
        });
        // Baseline: the bare library decode with the same key and claim checks.
        let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_str(&key.jwk()).unwrap();
        let dk = jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap();
        let mut validation = jsonwebtoken::Validation::new(alg);
        validation.set_audience(&["api"]);
        validation.set_issuer(&[ISS]);
        g.bench_function(format!("baseline_jsonwebtoken_decode_{name}"), |b| {
            b.iter(|| {
                jsonwebtoken::decode::<serde_json::Value>(black_box(&token), &dk, &validation)
                    .unwrap()
            })
        });
    }

    // The layer around a trivial service, per request with a valid ES256 token.
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let inner =
        service_fn(|_req: Request<()>| async { Ok::<_, Infallible>(Response::new(String::new())) });
    let mut with_layer = JwtLayer::new([issuer]).unwrap().layer(inner);
    let mut bare = inner;
    let token = es.sign(&claims()).unwrap();
    let bearer = format!("Bearer {token}");
    let req = || {
        Request::builder()
            .header("authorization", bearer.as_str())
            .body(())
            .unwrap()
    };
    g.bench_function("layer_request_ES256", |b| {
        b.iter(|| rt.block_on(with_layer.call(req())).unwrap())
    });
    g.bench_function("baseline_inner_service_only", |b| {
        b.iter(|| rt.block_on(bare.call(req())).unwrap())
    });
    g.bench_function("layer_request_without_token", |b| {
        b.iter(|| {
            let r = Request::builder().body(()).unwrap();
            rt.block_on(with_layer.call(r)).unwrap()
        })
    });

    // The cached key lookup: binary search by kid, no allocation.
    let jwks = Jwks::from_json(&jwks_text).unwrap();
    let n = allocations(|| {
        for kid in ["es", "rs", "ed", "old-3", "missing"] {
            black_box(jwks.find(black_box(kid)));
        }
    });
    assert_eq!(n, 0, "key lookup allocated {n} times");
    eprintln!("jwt/key_lookup: {n} allocations for 5 lookups");
    g.bench_function("key_lookup_by_kid", |b| {
        b.iter(|| jwks.find(black_box("old-3")).len())
    });
    g.finish();
}

criterion_group!(benches, jwt);
criterion_main!(benches);
