//! Layer overhead: a request through `AuthorizeLayer` against the bare service, with
//! policies of 10 and 1,000 rules, and with the same rules also requiring an end-user
//! principal and a `groups` claim (the request carrying the JWT layer's
//! `RequestPrincipal` and `Claims`). The request (with its `PeerIdentity`, as
//! `meshless::serve` attaches it: a clone of the connection's) is built outside the
//! timed part for both.

use std::convert::Infallible;
use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use http::{Request, Response};
use meshless::authorize::AuthorizeLayer;
use meshless::policy::{Policy, PolicyHandle};
use meshless::{Claims, PeerIdentity, RequestPrincipal, SpiffeId};
use tower::{Layer, Service};

/// `n` allow rules, each for one workload and one API prefix, plus one deny rule.
fn policy(n: usize) -> Policy {
    policy_with(n, "", "")
}

/// [`policy`] whose allow rules also need a principal of the IdP and group `admin`.
fn policy_enduser(n: usize) -> Policy {
    policy_with(
        n,
        r#","request_principals":["https://idp.example.com/*"]"#,
        r#","when":[{"claim":"groups","values":["admin"]}]"#,
    )
}

fn policy_with(n: usize, from_extra: &str, when: &str) -> Policy {
    let mut json = String::from(
        r#"{"default":"deny","rules":[{"name":"no-admin","action":"deny","to":[{"paths":["/admin*"]}]}"#,
    );
    for i in 0..n {
        json.push_str(&format!(
            r#",{{"name":"r{i}","action":"allow","from":[{{"identities":["spiffe://example.org/ns/ns{i}/sa/app"]{from_extra}}}],"to":[{{"methods":["GET","POST"],"paths":["/api/v{i}/*"]}}]{when}}}"#
        ));
    }
    json.push_str("]}");
    Policy::from_json(&json).expect("generated policy is valid")
}

/// The connection's identity: one per connection, a clone on each of its requests.
fn peer(n: usize) -> PeerIdentity {
    let id: SpiffeId = format!("spiffe://example.org/ns/ns{}/sa/app", n / 2)
        .parse()
        .unwrap();
    PeerIdentity::authenticated(id)
        .with_remote_addr("10.0.0.7:40000".parse().unwrap())
        .with_local_addr("10.0.0.1:8443".parse().unwrap())
}

fn request(n: usize, peer: &PeerIdentity) -> Request<()> {
    let i = n / 2;
    let mut req = Request::get(format!("https://api.example.org/api/v{i}/items?limit=10"))
        .header("host", "api.example.org")
        .header("user-agent", "bench")
        .body(())
        .unwrap();
    req.extensions_mut().insert(peer.clone());
    req
}

fn call<S, F>(service: &mut S, req: Request<()>) -> F::Output
where
    S: Service<Request<()>, Future = F>,
    F: Future,
{
    let mut cx = Context::from_waker(Waker::noop());
    let mut fut = pin!(service.call(req));
    match fut.as_mut().poll(&mut cx) {
        Poll::Ready(out) => out,
        Poll::Pending => unreachable!("the benchmarked services answer at once"),
    }
}

fn authorize(c: &mut Criterion) {
    let mut g = c.benchmark_group("authorize");
    let mut bare = tower::service_fn(|_req: Request<()>| async {
        Ok::<_, Infallible>(Response::new(String::new()))
    });
    let conn = peer(10);
    g.bench_function("bare_service", |b| {
        b.iter_batched(
            || request(10, &conn),
            |req| black_box(call(&mut bare, req)),
            BatchSize::SmallInput,
        )
    });
    for n in [10, 1_000] {
        let layer = AuthorizeLayer::new(PolicyHandle::new(policy(n)));
        let mut svc = layer.layer(bare);
        let conn = peer(n);
        let res = call(&mut svc, request(n, &conn)).unwrap();
        assert_eq!(res.status(), 200, "the benchmarked request is allowed");
        g.bench_function(format!("layer_{n}_rules_allow"), |b| {
            b.iter_batched(
                || request(n, &conn),
                |req| black_box(call(&mut svc, req)),
                BatchSize::SmallInput,
            )
        });
        g.bench_function(format!("layer_{n}_rules_deny"), |b| {
            b.iter_batched(
                || {
                    let mut req = request(n, &conn);
                    *req.uri_mut() = "https://api.example.org/admin/x".parse().unwrap();
                    req
                },
                |req| black_box(call(&mut svc, req)),
                BatchSize::SmallInput,
            )
        });
    }
    // As the reference proxy runs it: `l5d-client-id` and `x-forwarded-client-cert` set
    // on every allowed request (their values built once per connection).
    let mut svc = AuthorizeLayer::new(PolicyHandle::new(policy(10)))
        .forward_identity_headers()
        .layer(bare);
    let conn = peer(10);
    let res = call(&mut svc, request(10, &conn)).unwrap();
    assert_eq!(res.status(), 200, "the benchmarked request is allowed");
    g.bench_function("layer_10_rules_allow_forward_identity", |b| {
        b.iter_batched(
            || request(10, &conn),
            |req| black_box(call(&mut svc, req)),
            BatchSize::SmallInput,
        )
    });
    let user = RequestPrincipal::new("https://idp.example.com", "alice");
    let claims = Claims::from_json(r#"{"groups": ["dev", "ops", "admin"]}"#).unwrap();
    let with_user = |n: usize, conn: &PeerIdentity| {
        let mut req = request(n, conn);
        req.extensions_mut().insert(user.clone());
        req.extensions_mut().insert(claims.clone());
        req
    };
    for n in [10, 1_000] {
        let layer = AuthorizeLayer::new(PolicyHandle::new(policy_enduser(n)));
        let mut svc = layer.layer(bare);
        let conn = peer(n);
        let res = call(&mut svc, with_user(n, &conn)).unwrap();
        assert_eq!(res.status(), 200, "the benchmarked request is allowed");
        let res = call(&mut svc, request(n, &conn)).unwrap();
        assert_eq!(res.status(), 403, "and needs the end user");
        g.bench_function(format!("layer_{n}_rules_enduser_allow"), |b| {
            b.iter_batched(
                || with_user(n, &conn),
                |req| black_box(call(&mut svc, req)),
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, authorize);
criterion_main!(benches);
