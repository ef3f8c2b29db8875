//! End-user identity end to end: an axum service behind `meshless::serve` (mTLS) with
//! `JwtLayer` outside `AuthorizeLayer`, claims-based rules, tokens minted at test time,
//! and a hyper client through `MtlsConnector`. The same policy is run written natively
//! and as Istio manifests (`RequestAuthentication` + `AuthorizationPolicy`), the JWT
//! layer then being built from the manifest's `RequestAuthentication`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::Request;
use axum::routing::any;
use bytes::Bytes;
use http::StatusCode;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use meshless::authorize::AuthorizeLayer;
use meshless::jwt::{JwksSource, JwtIssuer, JwtLayer};
use meshless::policy::{Policy, PolicyHandle};
use meshless::testing::{TestCa, TestJwtKey};
use meshless::{MtlsAcceptor, MtlsConnector, RequestPrincipal, SpiffeId};
use tokio::time::timeout;

const SERVER: &str = "spiffe://example.org/ns/shop/sa/orders";
const FRONTEND: &str = "spiffe://example.org/ns/web/sa/frontend";
const BATCH: &str = "spiffe://example.org/ns/batch/sa/report";
const ISS: &str = "https://idp.example.com";
const T: Duration = Duration::from_secs(10);

/// Admins (the `groups` claim) may DELETE orders from the frontend; any valid
/// principal may GET; a suspended account (nested claim) is denied everything; no
/// token matches no rule.
const POLICY: &str = r#"
default: deny
rules:
  - name: admins-delete
    action: allow
    from: [{identities: ["spiffe://example.org/ns/web/sa/frontend"], request_principals: ["https://idp.example.com/*"]}]
    to: [{methods: [DELETE], paths: ["/orders/*"]}]
    when: [{claim: groups, values: [admin]}]
  - name: users-read
    action: allow
    from: [{request_principals: ["*"]}]
    to: [{methods: [GET]}]
  - name: suspended
    action: deny
    when: [{claim: [account, status], values: [suspended]}]
"#;

fn istio_manifests(jwks: &str) -> String {
    format!(
        r#"
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {{name: idp, namespace: shop}}
spec:
  jwtRules:
  - issuer: "{ISS}"
    audiences: [orders]
    jwks: '{jwks}'
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {{name: admins-delete, namespace: shop}}
spec:
  action: ALLOW
  rules:
  - from:
    - source:
        principals: ["example.org/ns/web/sa/frontend"]
        requestPrincipals: ["{ISS}/*"]
    to:
    - operation: {{methods: [DELETE], paths: ["/orders/*"]}}
    when:
    - key: request.auth.claims[groups]
      values: [admin]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {{name: users-read, namespace: shop}}
spec:
  rules:
  - from:
    - source:
        requestPrincipals: ["*"]
    to:
    - operation: {{methods: [GET]}}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {{name: suspended, namespace: shop}}
spec:
  action: DENY
  rules:
  - when:
    - key: request.auth.claims[account][status]
      values: [suspended]
"#
    )
}

/// The app answers with the principal it was handed and whether a token reached it.
fn app() -> Router {
    Router::new().fallback(any(|req: Request| async move {
        let who = req
            .extensions()
            .get::<RequestPrincipal>()
            .map_or_else(|| "-".to_owned(), ToString::to_string);
        let auth = req.headers().contains_key("authorization");
        format!("principal={who} authorization={auth}")
    }))
}

struct Server {
    port: u16,
    ca: TestCa,
}

async fn start(policy: Policy, jwt: JwtLayer) -> Server {
    let ca = TestCa::new("example.org").unwrap();
    // axum: the last layer added is the outermost, so the JWT layer runs first and
    // the authorization layer sees the principal and claims.
    let service = app()
        .layer(AuthorizeLayer::new(PolicyHandle::new(policy)))
        .layer(jwt);
    let acceptor = MtlsAcceptor::builder(ca.tls_source(SERVER).unwrap())
        .build()
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(meshless::serve(listener, acceptor, service));
    Server { port, ca }
}

impl Server {
    async fn call(
        &self,
        peer: &str,
        method: &str,
        path: &str,
        token: Option<&str>,
    ) -> (StatusCode, String, String) {
        let bearer = token.map(|t| ("authorization", format!("Bearer {t}").into_bytes()));
        self.request(peer, method, path, &Vec::from_iter(bearer))
            .await
    }

    /// Sends `headers` (raw bytes, repeated names kept) from `peer`; returns the status,
    /// `WWW-Authenticate` and body.
    async fn request(
        &self,
        peer: &str,
        method: &str,
        path: &str,
        headers: &[RawHeader],
    ) -> (StatusCode, String, String) {
        let expected: SpiffeId = SERVER.parse().unwrap();
        let connector = MtlsConnector::new(self.ca.tls_source(peer).unwrap(), expected).unwrap();
        let client: Client<_, Empty<Bytes>> =
            Client::builder(TokioExecutor::new()).build(connector);
        let mut req = http::Request::builder()
            .method(method)
            .uri(format!("https://127.0.0.1:{}{path}", self.port));
        for (name, value) in headers {
            let value = http::HeaderValue::from_bytes(value).unwrap();
            req.headers_mut().unwrap().append(*name, value);
        }
        let res = timeout(T, client.request(req.body(Empty::new()).unwrap()))
            .await
            .unwrap()
            .unwrap();
        let status = res.status();
        let www = res
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let body = timeout(T, res.into_body().collect())
            .await
            .unwrap()
            .unwrap()
            .to_bytes();
        (status, www, String::from_utf8_lossy(&body).into_owned())
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn token(key: &TestJwtKey, sub: &str, extra: &str) -> String {
    let exp = now() + 600;
    key.sign(&format!(
        r#"{{"iss":"{ISS}","sub":"{sub}","aud":"orders","exp":{exp}{extra}}}"#
    ))
    .unwrap()
}

/// The same table for both ways of writing the policy.
async fn run_cases(server: &Server, key: &TestJwtKey, stranger: &TestJwtKey) {
    let admin = token(key, "alice", r#","groups":["dev","admin"]"#);
    let dev = token(key, "bob", r#","groups":"dev""#);
    let suspended = token(
        key,
        "carol",
        r#","groups":["admin"],"account":{"status":"suspended"}"#,
    );
    let expired = key
        .sign(&format!(
            r#"{{"iss":"{ISS}","sub":"alice","aud":"orders","exp":{},"groups":["admin"]}}"#,
            now() - 3600
        ))
        .unwrap();
    let wrong_aud = key
        .sign(&format!(
            r#"{{"iss":"{ISS}","sub":"alice","aud":"billing","exp":{}}}"#,
            now() + 600
        ))
        .unwrap();
    let forged = token(stranger, "alice", r#","groups":["admin"]"#);

    // Any valid principal may GET; the app sees the principal, not the token.
    let (s, _, body) = server.call(BATCH, "GET", "/orders/1", Some(&dev)).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        "principal=https://idp.example.com/bob authorization=false"
    );
    // Admins may DELETE, from the frontend workload only.
    let (s, _, body) = server
        .call(FRONTEND, "DELETE", "/orders/1", Some(&admin))
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(
        server
            .call(BATCH, "DELETE", "/orders/1", Some(&admin))
            .await
            .0,
        StatusCode::FORBIDDEN,
        "admin token from another workload"
    );
    assert_eq!(
        server
            .call(FRONTEND, "DELETE", "/orders/1", Some(&dev))
            .await
            .0,
        StatusCode::FORBIDDEN,
        "not in group admin"
    );
    // A deny on a nested claim wins over the allow rules.
    assert_eq!(
        server
            .call(FRONTEND, "GET", "/orders/1", Some(&suspended))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    // No token: no principal, no rule matches, the default denies.
    let (s, www, _) = server.call(FRONTEND, "GET", "/orders/1", None).await;
    assert_eq!((s, www.as_str()), (StatusCode::FORBIDDEN, ""));
    // Invalid tokens are refused by the JWT layer before policy runs.
    for (name, bad) in [
        ("expired", &expired),
        ("wrong audience", &wrong_aud),
        ("unknown key", &forged),
        ("garbage", &"not.a.jwt".to_owned()),
    ] {
        let (s, www, _) = server
            .call(FRONTEND, "DELETE", "/orders/1", Some(bad))
            .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{name}");
        assert!(www.contains(r#"error="invalid_token""#), "{name}: {www}");
    }
}

fn keys() -> (TestJwtKey, TestJwtKey) {
    (
        TestJwtKey::generate("k1", "ES256").unwrap(),
        TestJwtKey::generate("k1", "ES256").unwrap(),
    )
}

#[tokio::test]
async fn native_policy_with_claims_through_the_full_stack() {
    let (key, stranger) = keys();
    let issuer = JwtIssuer::new(
        ISS,
        JwksSource::from_jwks(&TestJwtKey::jwks(&[&key])).unwrap(),
    )
    .unwrap()
    .audience("orders");
    let server = start(
        Policy::from_yaml(POLICY).unwrap(),
        JwtLayer::new([issuer]).unwrap(),
    )
    .await;
    run_cases(&server, &key, &stranger).await;
}

#[tokio::test]
async fn istio_manifests_with_claims_through_the_full_stack() {
    let (key, stranger) = keys();
    let policy = Policy::from_yaml(&istio_manifests(&TestJwtKey::jwks(&[&key]))).unwrap();
    let issuers = policy.request_authentication()[0].to_issuers().unwrap();
    let server = start(policy, JwtLayer::new(issuers).unwrap()).await;
    run_cases(&server, &key, &stranger).await;
}

/// A header name and its raw value bytes.
type RawHeader = (&'static str, Vec<u8>);

/// `GET /orders/1` from `peer` with `headers`.
async fn send_raw(
    server: &Server,
    peer: &str,
    headers: &[RawHeader],
) -> (StatusCode, String, String) {
    server.request(peer, "GET", "/orders/1", headers).await
}

/// A credential the JWT layer cannot read is refused with 401 over real mTLS, even
/// where policy lets requests without a principal through: it never reaches the app
/// unverified.
#[tokio::test]
async fn unreadable_credentials_are_refused_over_mtls() {
    let (key, _) = keys();
    let issuer = JwtIssuer::new(
        ISS,
        JwksSource::from_jwks(&TestJwtKey::jwks(&[&key])).unwrap(),
    )
    .unwrap()
    .audience("orders")
    .token_from_header("authorization", "Bearer ")
    .unwrap()
    .token_from_cookie("session")
    .unwrap();
    // The frontend may call without a token: policy would let these requests through.
    let policy = Policy::from_yaml(
        r#"
default: deny
rules:
  - name: frontend
    action: allow
    from: [{identities: ["spiffe://example.org/ns/web/sa/frontend"]}]
"#,
    )
    .unwrap();
    let server = start(policy, JwtLayer::new([issuer]).unwrap()).await;
    let good = token(&key, "alice", "");
    let auth = |v: &str| ("authorization", v.as_bytes().to_vec());

    // Control: no credential passes without a principal; a good token with a
    // lowercase scheme is verified.
    let (s, _, body) = send_raw(&server, FRONTEND, &[("cookie", b"theme=dark".to_vec())]).await;
    assert_eq!(
        (s, body.as_str()),
        (StatusCode::OK, "principal=- authorization=false")
    );
    let (s, _, body) = send_raw(&server, FRONTEND, &[auth(&format!("bearer {good}"))]).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body, format!("principal={ISS}/alice authorization=false"));

    let cases: Vec<(&str, Vec<RawHeader>)> = vec![
        ("basic", vec![auth("Basic dXNlcjpwYXNz")]),
        ("scheme alone", vec![auth("Bearer")]),
        ("two spaces", vec![auth(&format!("Bearer  {good}"))]),
        ("no space", vec![auth(&format!("Bearer{good}"))]),
        (
            "two credentials",
            vec![auth(&format!("Bearer {good}, Basic Zm9v"))],
        ),
        (
            "second header",
            vec![auth(&format!("Bearer {good}")), auth("Basic Zm9v")],
        ),
        (
            "same token twice",
            vec![
                auth(&format!("Bearer {good}")),
                auth(&format!("Bearer {good}")),
            ],
        ),
        (
            "non-ascii cookie",
            vec![("cookie", b"theme=\xe9t\xe9; lang=fr".to_vec())],
        ),
    ];
    for (name, headers) in cases {
        let (s, www, body) = send_raw(&server, FRONTEND, &headers).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{name}: {body}");
        assert!(www.contains(r#"error="invalid_token""#), "{name}: {www}");
        assert_eq!(body, "", "{name}");
    }
}
