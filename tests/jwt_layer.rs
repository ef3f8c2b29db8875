//! JwtLayer over a real tower service: status codes, headers, extensions, what the
//! inner service sees, and the audit event of a rejection.

#[path = "jwt_common/mod.rs"]
mod common;

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use common::*;
use http::{Request, Response, StatusCode};
use meshless::jwt::{JwksSource, JwtIssuer, JwtLayer};
use meshless::{Claims, RequestPrincipal};
use tower::{Layer, ServiceExt, service_fn};

/// What the inner service saw.
#[derive(Debug, Default, Clone)]
struct Seen {
    principal: Option<RequestPrincipal>,
    claims: Option<Claims>,
    authorization: Vec<String>,
    cookie: Option<String>,
    uri: String,
}

struct Harness {
    layer: JwtLayer,
    calls: Arc<AtomicUsize>,
    seen: Arc<Mutex<Option<Seen>>>,
}

impl Harness {
    fn new(layer: JwtLayer) -> Self {
        Self {
            layer,
            calls: Arc::default(),
            seen: Arc::default(),
        }
    }

    async fn send(&self, req: Request<String>) -> Response<String> {
        let calls = self.calls.clone();
        let seen = self.seen.clone();
        let inner = service_fn(move |req: Request<String>| {
            calls.fetch_add(1, Ordering::SeqCst);
            let h = req.headers();
            *seen.lock().unwrap() = Some(Seen {
                principal: req.extensions().get::<RequestPrincipal>().cloned(),
                claims: req.extensions().get::<Claims>().cloned(),
                authorization: h
                    .get_all("authorization")
                    .iter()
                    .map(|v| v.to_str().unwrap().to_owned())
                    .collect(),
                cookie: h.get("cookie").map(|v| v.to_str().unwrap().to_owned()),
                uri: req.uri().to_string(),
            });
            async { Ok::<_, Infallible>(Response::new("hello".to_owned())) }
        });
        let svc = self.layer.layer(inner);
        tokio::time::timeout(std::time::Duration::from_secs(10), svc.oneshot(req))
            .await
            .expect("bounded")
            .unwrap()
    }

    fn seen(&self) -> Seen {
        self.seen
            .lock()
            .unwrap()
            .clone()
            .expect("inner service was called")
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Claims valid for the real clock (the layer reads the system time).
fn live_claims(extra: &str) -> String {
    let base = format!(
        r#""iss":"{ISS}","sub":"user-1","aud":"{AUD}","exp":{}"#,
        now() + 300
    );
    format!(
        "{{{base}{}{extra}}}",
        if extra.is_empty() { "" } else { "," }
    )
}

fn request(headers: &[(&str, String)]) -> Request<String> {
    let mut b = Request::builder().uri("/orders");
    for (k, v) in headers {
        b = b.header(*k, v.as_str());
    }
    b.body(String::new()).unwrap()
}

fn bearer(token: &str) -> (&'static str, String) {
    ("authorization", format!("Bearer {token}"))
}

fn assert_401(res: &Response<String>) {
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        res.headers().get("www-authenticate").unwrap(),
        "Bearer error=\"invalid_token\""
    );
    assert_eq!(res.body(), "", "the body says nothing");
}

fn default_layer() -> JwtLayer {
    JwtLayer::new([idp_issuer(), svid_issuer()]).unwrap()
}

#[tokio::test]
async fn valid_token_sets_principal_and_claims_and_is_stripped() {
    let h = Harness::new(default_layer());
    let token = keys()
        .rsa
        .sign(&live_claims(r#""groups":["ops"],"realm":{"roles":["r"]}"#))
        .unwrap();
    let res = h.send(request(&[bearer(&token)])).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.body(), "hello");
    let seen = h.seen();
    assert_eq!(seen.principal.unwrap().as_str(), "https://idp.test/user-1");
    let claims = seen.claims.unwrap();
    assert!(claims.contains(&["groups"], "ops"));
    assert!(claims.contains(&["realm", "roles"], "r"));
    assert!(
        seen.authorization.is_empty(),
        "forwardOriginalToken defaults to false"
    );
}

#[tokio::test]
async fn forward_original_token_keeps_the_header() {
    let h = Harness::new(JwtLayer::new([idp_issuer().forward_original_token(true)]).unwrap());
    let token = keys().ec.sign(&live_claims("")).unwrap();
    let res = h.send(request(&[bearer(&token)])).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(h.seen().authorization, [format!("Bearer {token}")]);
}

#[tokio::test]
async fn no_token_passes_without_principal() {
    let h = Harness::new(default_layer());
    let res = h.send(request(&[("cookie", "theme=dark".into())])).await;
    assert_eq!(res.status(), StatusCode::OK);
    let seen = h.seen();
    assert!(seen.principal.is_none() && seen.claims.is_none());
    assert_eq!(seen.cookie.as_deref(), Some("theme=dark"));
}

#[tokio::test]
async fn unreadable_credentials_get_401_and_never_reach_the_service() {
    let with_cookie = idp_issuer()
        .token_from_header("authorization", "Bearer ")
        .unwrap()
        .token_from_cookie("session")
        .unwrap();
    let h = Harness::new(JwtLayer::new([with_cookie, svid_issuer()]).unwrap());
    let good = keys().ec.sign(&live_claims("")).unwrap();
    let auth = |v: String| ("authorization", v);
    let cases: Vec<Vec<(&str, String)>> = vec![
        // Another scheme, or not exactly `Bearer <token>`.
        vec![auth("Basic dXNlcjpwYXNz".into())],
        vec![auth("Bearer".into())],
        vec![auth(format!("Bearer  {good}"))],
        vec![auth(format!("Bearer {good} "))],
        vec![auth(format!("Bearer {good}, Basic Zm9v"))],
        vec![auth(format!("Bearer{good}"))],
        // A second Authorization header, whatever it holds.
        vec![bearer(&good), auth("Basic Zm9v".into())],
        vec![auth("Basic Zm9v".into()), bearer(&good)],
        vec![bearer(&good), bearer(&good)],
    ];
    for headers in cases {
        let res = h.send(request(&headers)).await;
        assert_401(&res);
    }
    // A Cookie header that is not text, when a cookie is a token location.
    let mut req = request(&[]);
    req.headers_mut().insert(
        "cookie",
        http::HeaderValue::from_bytes(format!("session={good}; theme=\u{e9}").as_bytes()).unwrap(),
    );
    assert_401(&h.send(req).await);
    assert_eq!(h.calls(), 0);
    // The scheme is case-insensitive (RFC 9110 §11.1).
    let res = h.send(request(&[auth(format!("bearer {good}"))])).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(h.seen().principal.is_some());
}

#[tokio::test]
async fn invalid_tokens_get_401_and_never_reach_the_service() {
    let h = Harness::new(default_layer());
    let k = keys();
    let expired = format!(r#""exp":{}"#, now() - 3600);
    let cases = vec![
        k.rogue_rsa.sign(&live_claims("")).unwrap(),
        k.ec.sign(&live_claims(r#""iss":"https://evil.test""#))
            .unwrap(),
        k.ec.sign(&live_claims(r#""aud":"other""#)).unwrap(),
        k.ec.sign(&live_claims(&expired)).unwrap(),
        k.ec.sign(&live_claims(&format!(r#""nbf":{}"#, now() + 3600)))
            .unwrap(),
        k.ec.sign_raw(r#"{"alg":"ES256","kid":"nope"}"#, &live_claims(""))
            .unwrap(),
        "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.".into(),
        "not-a-jwt".into(),
    ];
    for token in cases {
        let res = h.send(request(&[bearer(&token)])).await;
        assert_401(&res);
    }
    assert_eq!(h.calls(), 0);
    // Two tokens, even if one is valid.
    let good = k.ec.sign(&live_claims("")).unwrap();
    let res = h
        .send(request(&[
            bearer(&good),
            ("authorization", "Bearer x.y.z".into()),
        ]))
        .await;
    assert_401(&res);
    assert_eq!(h.calls(), 0);
}

#[tokio::test]
async fn jwt_svid_through_the_layer() {
    let h = Harness::new(default_layer());
    let exp = now() + 300;
    let token = keys()
        .svid_ec
        .sign(&format!(
            r#"{{"sub":"spiffe://{TD}/ns/frontend/sa/web","aud":"{SVID_AUD}","exp":{exp}}}"#
        ))
        .unwrap();
    let res = h.send(request(&[bearer(&token)])).await;
    assert_eq!(res.status(), StatusCode::OK);
    let p = h.seen().principal.unwrap();
    assert_eq!(
        p.spiffe_id().unwrap().as_str(),
        "spiffe://example.org/ns/frontend/sa/web"
    );
    // The trust domain's own ID names no workload: refused, not passed on.
    let before = h.calls();
    let token = keys()
        .svid_ec
        .sign(&format!(
            r#"{{"sub":"spiffe://{TD}","aud":"{SVID_AUD}","exp":{exp}}}"#
        ))
        .unwrap();
    assert_401(&h.send(request(&[bearer(&token)])).await);
    assert_eq!(h.calls(), before);
}

#[tokio::test]
async fn cookie_and_custom_header_locations() {
    let keys_src = || JwksSource::from_jwks(&idp_jwks()).unwrap();
    let a = JwtIssuer::new(ISS, keys_src())
        .unwrap()
        .audience(AUD)
        .token_from_cookie("session")
        .unwrap()
        .token_from_header("x-jwt", "")
        .unwrap();
    let b = JwtIssuer::new("https://other.test", keys_src())
        .unwrap()
        .audience(AUD);
    let h = Harness::new(JwtLayer::new([a, b]).unwrap());
    let k = keys();
    let token = k.ec.sign(&live_claims("")).unwrap();

    let res = h
        .send(request(&[(
            "cookie",
            format!("theme=dark; session={token}; lang=en"),
        )]))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let seen = h.seen();
    assert!(seen.principal.is_some());
    assert_eq!(seen.cookie.as_deref(), Some("theme=dark; lang=en"));

    let res = h.send(request(&[("x-jwt", token.clone())])).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(h.seen().principal.is_some());

    // Issuer A does not take tokens from Authorization (that is B's location).
    let before = h.calls();
    let res = h.send(request(&[bearer(&token)])).await;
    assert_401(&res);
    assert_eq!(h.calls(), before);
    // B's token is accepted there.
    let other =
        k.ec.sign(&live_claims(r#""iss":"https://other.test""#))
            .unwrap();
    let res = h.send(request(&[bearer(&other)])).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        h.seen().principal.unwrap().issuer(),
        Some("https://other.test")
    );
}

#[path = "support/log_capture.rs"]
mod log_capture;

#[tokio::test]
async fn rejection_reason_goes_to_the_audit_log_only() {
    log_capture::start();
    let h = Harness::new(default_layer());
    let token = keys().ec.sign(&live_claims(r#""aud":"billing""#)).unwrap();
    let res = h.send(request(&[bearer(&token)])).await;
    assert_401(&res);
    let log = log_capture::text();
    assert!(log.contains("meshless::audit"), "{log}");
    assert!(log.contains("decision=\"unauthenticated\""), "{log}");
    assert!(log.contains("audience `billing` is not accepted"), "{log}");
    assert!(log.contains("issuer=\"https://idp.test\""), "{log}");
    assert!(!log.contains(&token), "the token itself is never logged");
}

#[tokio::test]
async fn query_parameter_token_is_verified_and_removed_from_the_uri() {
    let issuer = idp_issuer().token_from_query_param("access_token").unwrap();
    let h = Harness::new(JwtLayer::new([issuer]).unwrap());
    let token = keys().ed.sign(&live_claims("")).unwrap();
    let req = Request::builder()
        .uri(format!("/orders?page=2&access_token={token}&sort=asc"))
        .body(String::new())
        .unwrap();
    let res = h.send(req).await;
    assert_eq!(res.status(), StatusCode::OK);
    let seen = h.seen();
    assert!(seen.principal.is_some());
    assert_eq!(seen.uri, "/orders?page=2&sort=asc");
    // Bearer is no longer a location of this issuer: a bearer token is not looked at.
    let res = h.send(request(&[bearer(&token)])).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(h.seen().principal.is_none());
}
