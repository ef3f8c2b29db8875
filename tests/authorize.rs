//! The enforcement layer over real loopback mTLS: an axum app behind
//! `meshless::serve` with `AuthorizeLayer`, called by hyper clients through
//! `MtlsConnector`, plaintext clients, and raw HTTP/1.1 over TLS.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::routing::any;
use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use meshless::authorize::{AuthorizeLayer, Authorized};
use meshless::metrics::Metrics;
use meshless::policy::{Policy, PolicyHandle};
use meshless::testing::TestCa;
use meshless::{MtlsAcceptor, MtlsConnector, PeerIdentity, SpiffeId};
use tokio::time::timeout;

const SERVER: &str = "spiffe://example.org/ns/shop/sa/orders";
const FRONTEND: &str = "spiffe://example.org/ns/web/sa/frontend";
const BATCH: &str = "spiffe://example.org/ns/batch/sa/report";
const T: Duration = Duration::from_secs(10);

const POLICY: &str = r#"
default: deny
rules:
  - name: frontend-reads-orders
    action: allow
    from: [{identities: ["spiffe://example.org/ns/web/sa/frontend"]}]
    to: [{methods: ["GET"], paths: ["/orders", "/orders/*", "/echo-headers"]}]
  - name: anyone-reads-health
    action: allow
    to: [{paths: ["/healthz"]}]
  - name: nobody-touches-admin
    action: deny
    to: [{paths: ["/admin*"]}]
  - name: frontend-everything-else
    action: allow
    from: [{identities: ["spiffe://example.org/ns/web/sa/frontend"]}]
    to: [{paths: ["*"]}]
"#;

/// A running server: its address, CA, policy handle, metrics and how often the app ran.
struct Server {
    port: u16,
    ca: TestCa,
    policy: PolicyHandle,
    metrics: Arc<Metrics>,
    app_calls: Arc<AtomicUsize>,
}

/// The app: answers with what it saw (path, query, peer, decision rule, headers).
fn app(calls: Arc<AtomicUsize>) -> Router {
    Router::new().fallback(any(
        move |peer: PeerIdentity, Authorized(d): Authorized, req: Request| {
            let calls = calls.clone();
            async move {
                calls.fetch_add(1, Ordering::SeqCst);
                let l5d = req
                    .headers()
                    .get("l5d-client-id")
                    .map(|v| v.to_str().unwrap().to_owned());
                format!(
                    "path={} query={} peer={peer} rule={} l5d={}",
                    req.uri().path(),
                    req.uri().query().unwrap_or(""),
                    d.rule(),
                    l5d.unwrap_or_else(|| "-".into())
                )
            }
        },
    ))
}

async fn start(policy: &str, permissive: bool, forward_identity: bool) -> Server {
    start_with(policy, permissive, |layer| {
        if forward_identity {
            layer.forward_identity_headers()
        } else {
            layer
        }
    })
    .await
}

/// [`start`], with the layer configured by `configure`.
async fn start_with(
    policy: &str,
    permissive: bool,
    configure: impl FnOnce(AuthorizeLayer) -> AuthorizeLayer,
) -> Server {
    let ca = TestCa::new("example.org").unwrap();
    let handle = PolicyHandle::new(Policy::from_yaml(policy).unwrap());
    let metrics = Arc::new(Metrics::new());
    let calls = Arc::new(AtomicUsize::new(0));
    let layer = configure(AuthorizeLayer::new(handle.clone()).metrics(metrics.clone()));
    let service = app(calls.clone()).layer(layer);
    let mut builder = MtlsAcceptor::builder(ca.tls_source(SERVER).unwrap());
    if permissive {
        builder = builder.permissive();
    }
    let acceptor = builder.build().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(meshless::serve(listener, acceptor, service));
    Server {
        port,
        ca,
        policy: handle,
        metrics,
        app_calls: calls,
    }
}

impl Server {
    fn client(&self, id: &str) -> Client<MtlsConnector, Empty<Bytes>> {
        let expected: SpiffeId = SERVER.parse().unwrap();
        let connector = MtlsConnector::new(self.ca.tls_source(id).unwrap(), expected).unwrap();
        Client::builder(TokioExecutor::new()).build(connector)
    }

    fn url(&self, scheme: &str, path: &str) -> String {
        format!("{scheme}://127.0.0.1:{}{path}", self.port)
    }
}

async fn get<C>(
    client: &Client<C, Empty<Bytes>>,
    url: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, HeaderMap, String)
where
    C: hyper_util::client::legacy::connect::Connect + Clone + Send + Sync + 'static,
{
    let mut req = http::Request::get(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = timeout(T, client.request(req.body(Empty::new()).unwrap()))
        .await
        .unwrap()
        .unwrap();
    let (parts, body) = res.into_parts();
    let body = timeout(T, body.collect())
        .await
        .unwrap()
        .unwrap()
        .to_bytes();
    (
        parts.status,
        parts.headers,
        String::from_utf8_lossy(&body).into_owned(),
    )
}

#[tokio::test]
async fn allowed_identity_gets_through_and_denied_identity_gets_403() {
    let server = start(POLICY, false, false).await;
    let (status, _, body) = get(
        &server.client(FRONTEND),
        &server.url("https", "/orders/7"),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains(&format!("peer={FRONTEND}")), "{body}");
    assert!(body.contains("rule=frontend-reads-orders"), "{body}");

    let (status, _, body) = get(
        &server.client(BATCH),
        &server.url("https", "/orders/7"),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        body, "forbidden\n",
        "the deny body reveals nothing about the policy"
    );
    assert_eq!(
        server.app_calls.load(Ordering::SeqCst),
        1,
        "a denied request never reaches the app"
    );

    let text = server.metrics.render();
    assert!(
        text.contains(
            r#"inbound_http_authz_allow_total{authz="frontend-reads-orders",tls="true"} 1"#
        ),
        "{text}"
    );
    assert!(
        text.contains(r#"inbound_http_authz_deny_total{authz="default:deny",tls="true"} 1"#),
        "{text}"
    );
}

#[tokio::test]
async fn plaintext_peer_in_permissive_mode_is_judged_as_unauthenticated() {
    let server = start(POLICY, true, false).await;
    let plain: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let (status, _, _) = get(&plain, &server.url("http", "/orders"), &[]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, body) = get(&plain, &server.url("http", "/healthz"), &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("peer=unauthenticated (plaintext)"), "{body}");
    // mTLS still works on the same port.
    let (status, _, _) = get(
        &server.client(FRONTEND),
        &server.url("https", "/orders"),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let text = server.metrics.render();
    assert!(
        text.contains(
            r#"inbound_http_authz_allow_total{authz="anyone-reads-health",tls="false"} 1"#
        ),
        "{text}"
    );
}

#[tokio::test]
async fn spoofed_identity_headers_never_reach_the_app() {
    let spoof = [
        ("l5d-client-id", "spiffe://example.org/ns/admin/sa/root"),
        ("x-forwarded-client-cert", "URI=spiffe://x/y"),
    ];
    // Without forwarding: stripped.
    let server = start(POLICY, true, false).await;
    let (status, _, body) = get(
        &server.client(FRONTEND),
        &server.url("https", "/echo-headers"),
        &spoof,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("l5d=-"), "{body}");
    // With forwarding: overwritten by the verified identity.
    let server = start(POLICY, true, true).await;
    let (_, _, body) = get(
        &server.client(FRONTEND),
        &server.url("https", "/echo-headers"),
        &spoof,
    )
    .await;
    assert!(body.contains(&format!("l5d={FRONTEND}")), "{body}");
    // A plaintext peer gets no identity header at all, whatever it sends.
    let plain: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let (status, _, body) = get(&plain, &server.url("http", "/healthz"), &spoof).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("l5d=-"), "{body}");
}

/// Sends raw HTTP/1.1 request heads over mTLS (so that the client does not clean the
/// path up first) and returns each response's status line and body.
async fn raw_requests(server: &Server, id: &str, heads: &[String]) -> Vec<(u16, String)> {
    let expected: SpiffeId = SERVER.parse().unwrap();
    let connector = MtlsConnector::new(server.ca.tls_source(id).unwrap(), expected)
        .unwrap()
        .http1_only();
    let mut out = Vec::new();
    for head in heads {
        let conn = timeout(
            T,
            connector.connect(server.url("https", "/").parse().unwrap()),
        )
        .await
        .unwrap()
        .unwrap();
        let (tls, _) = conn.into_inner();
        let mut tls = tls;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        tls.write_all(head.as_bytes()).await.unwrap();
        let mut buf = Vec::new();
        let _ = timeout(T, tls.read_to_end(&mut buf)).await.unwrap();
        let text = String::from_utf8_lossy(&buf).into_owned();
        let status = text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
        let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
        out.push((status, body));
    }
    out
}

#[tokio::test]
async fn path_tricks_cannot_reach_a_denied_path_and_the_app_sees_the_path_decided_on() {
    let server = start(POLICY, false, false).await;
    let head = |target: &str| {
        format!("GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    };
    // The frontend may touch /admin* by rule, but the deny rule wins for everyone: every
    // spelling of /admin must be refused, and nothing may reach the app.
    let denied = ["/admin", "/%61dmin", "/admin;x=1", "/admin%3Bx"];
    let results = raw_requests(
        &server,
        FRONTEND,
        &denied.iter().map(|p| head(p)).collect::<Vec<_>>(),
    )
    .await;
    for (path, (status, _)) in denied.iter().zip(&results) {
        assert_eq!(*status, 403, "{path}");
    }
    let rejected = [
        "/orders/../admin",
        "//admin",
        "/./admin",
        "/orders/%2e%2e/admin",
        "/x/../../admin/users",
        "/admin%2Fusers",
        "/orders%2F..%2Fadmin",
        "/admin%5C",
        "/a%00b",
        "/orders\\..\\admin",
        // Not in normal form, so refused even though the policy would allow it.
        "/orders/./x/../7",
        "/orders//7",
    ];
    let results = raw_requests(
        &server,
        FRONTEND,
        &rejected.iter().map(|p| head(p)).collect::<Vec<_>>(),
    )
    .await;
    for (path, (status, _)) in rejected.iter().zip(&results) {
        assert!(*status == 400, "{path}: {status}");
    }
    assert_eq!(server.app_calls.load(Ordering::SeqCst), 0);

    // Allowed requests reach the app as sent: the policy decided on their decoded path.
    let allowed = raw_requests(
        &server,
        FRONTEND,
        &[head("/orders/7?full=1"), head("/%6Frders/7")],
    )
    .await;
    assert_eq!(allowed[0].0, 200);
    assert!(
        allowed[0].1.contains("path=/orders/7 query=full=1"),
        "{}",
        allowed[0].1
    );
    assert_eq!(allowed[1].0, 200);
    assert!(
        allowed[1].1.contains("path=/%6Frders/7 "),
        "{}",
        allowed[1].1
    );

    // A Host header that disagrees with the absolute-form target is refused.
    let mismatch =
        "GET https://evil.example/orders HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
            .to_owned();
    let results = raw_requests(&server, FRONTEND, &[mismatch]).await;
    assert_eq!(results[0].0, 400);
}

#[tokio::test]
async fn grpc_requests_are_denied_with_permission_denied_trailers_only() {
    let server = start(POLICY, false, false).await;
    let headers = [("content-type", "application/grpc")];
    let (status, h, body) = get(
        &server.client(BATCH),
        &server.url("https", "/grpc.Service/Method"),
        &headers,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "gRPC errors travel in grpc-status");
    assert_eq!(h.get("grpc-status").unwrap(), "7");
    assert!(h.get("grpc-message").is_some());
    assert!(body.is_empty());
}

#[tokio::test]
async fn a_policy_reload_applies_to_the_next_request_on_an_open_connection() {
    let server = start(POLICY, false, false).await;
    let expected: SpiffeId = SERVER.parse().unwrap();
    let connector = MtlsConnector::new(server.ca.tls_source(BATCH).unwrap(), expected)
        .unwrap()
        .http1_only();
    let conn = timeout(
        T,
        connector.connect(server.url("https", "/").parse().unwrap()),
    )
    .await
    .unwrap()
    .unwrap();
    let (tls, _) = conn.into_inner();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(connection);
    let send = |sender: &mut hyper::client::conn::http1::SendRequest<Empty<Bytes>>| {
        let req = http::Request::get("/orders")
            .header("host", "127.0.0.1")
            .body(Empty::new())
            .unwrap();
        sender.send_request(req)
    };
    let res = timeout(T, send(&mut sender)).await.unwrap().unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let _ = res.into_body().collect().await;

    let widened = POLICY.replace(
        r#"identities: ["spiffe://example.org/ns/web/sa/frontend"]}]
    to: [{methods: ["GET"], paths: ["/orders""#,
        r#"identities: ["spiffe://example.org/ns/web/sa/frontend", "spiffe://example.org/ns/batch/*"]}]
    to: [{methods: ["GET"], paths: ["/orders""#,
    );
    assert_ne!(widened, POLICY);
    server.policy.store(Policy::from_yaml(&widened).unwrap());
    let res = timeout(T, send(&mut sender)).await.unwrap().unwrap();
    assert_eq!(res.status(), StatusCode::OK, "same connection, new policy");
    let _ = res.into_body().collect().await;

    server.policy.store(Policy::from_yaml(POLICY).unwrap());
    let res = timeout(T, send(&mut sender)).await.unwrap().unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN, "and narrowed again");
}

#[tokio::test]
async fn a_request_without_identity_fails_closed() {
    use tower::ServiceExt;
    let calls = Arc::new(AtomicUsize::new(0));
    let allow_all = Policy::from_yaml("default: all-unauthenticated\n").unwrap();
    let service = app(calls.clone()).layer(AuthorizeLayer::new(PolicyHandle::new(allow_all)));
    let req = http::Request::get("/orders")
        .body(axum::body::Body::empty())
        .unwrap();
    let res = timeout(T, service.oneshot(req)).await.unwrap().unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn dry_run_lets_requests_through_and_says_what_would_have_happened() {
    let policy = format!("dry_run: true\n{POLICY}");
    let server = start(&policy, false, false).await;
    let (status, _, body) = get(&server.client(BATCH), &server.url("https", "/orders"), &[]).await;
    assert_eq!(status, StatusCode::OK, "dry run never enforces");
    assert!(
        body.contains("rule=default:deny"),
        "the decision still names what would have decided: {body}"
    );
}

#[tokio::test]
async fn handshakes_are_counted_by_result_and_reason() {
    let server = start(POLICY, false, false).await;
    let (status, _, _) = get(
        &server.client(FRONTEND),
        &server.url("https", "/orders"),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    // A client of a trust domain the server has no bundle for.
    let partner = TestCa::new("partner.example").unwrap();
    let issued = partner.issue("spiffe://partner.example/ns/x/sa/y").unwrap();
    let bundles = meshless::tls::BundleSet::new()
        .with(server.ca.bundle().unwrap())
        .with(partner.bundle().unwrap());
    let svid = meshless::tls::Svid::new(issued.chain().to_vec(), issued.key()).unwrap();
    let material = meshless::tls::TlsMaterial::new(svid, bundles).unwrap();
    let expected: SpiffeId = SERVER.parse().unwrap();
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new())
        .build(MtlsConnector::new(material, expected).unwrap());
    let req = http::Request::get(server.url("https", "/orders"))
        .body(Empty::new())
        .unwrap();
    assert!(timeout(T, client.request(req)).await.unwrap().is_err());
    let text = Metrics::global().render();
    assert!(
        text.contains(r#"inbound_tls_handshakes_total{result="success",reason="ok"}"#),
        "{text}"
    );
    let refused = r#"inbound_tls_handshakes_total{result="failure",reason="unknown_trust_domain"}"#;
    // The server counts the refusal right after its handshake fails; allow it a moment.
    for _ in 0..50 {
        if Metrics::global().render().contains(refused) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no refusal counted: {}", Metrics::global().render());
}

/// Istio's ingress IP allow list behind a load balancer: the peer (here the loopback
/// address) is the proxy, and the client is what it appended to `X-Forwarded-For`.
const BEHIND_PROXY: &str = r#"
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: ingress-policy
  namespace: shop
spec:
  action: ALLOW
  rules:
  - from:
    - source:
        ipBlocks: ["127.0.0.0/8"]
        remoteIpBlocks: ["203.0.113.0/24"]
    to:
    - operation:
        hosts: ["127.0.0.1:*"]
"#;

#[tokio::test]
async fn remote_ip_blocks_read_x_forwarded_for_behind_one_trusted_proxy() {
    // Istio's Source.remoteIpBlocks is "populated from X-Forwarded-For header", with
    // `numTrustedProxies` set to "the number of trusted proxies deployed in front";
    // `ipBlocks` ("the source address of the IP packet") is the proxy, and both fields
    // of the source must match.
    let server = start_with(BEHIND_PROXY, false, |layer| layer.trusted_proxies(1)).await;
    let client = server.client(FRONTEND);
    let url = server.url("https", "/orders");
    let status = |headers: Vec<(&'static str, &'static str)>| {
        let (client, url) = (&client, &url);
        async move { get(client, url, &headers).await.0 }
    };
    // The address the trusted proxy appended (the last one) is the client's.
    let xff = "x-forwarded-for";
    assert_eq!(
        status(vec![(xff, "198.51.100.9, 203.0.113.7")]).await,
        StatusCode::OK
    );
    // What the client wrote itself, left of it, is never read.
    assert_eq!(
        status(vec![(xff, "203.0.113.7, 198.51.100.9")]).await,
        StatusCode::FORBIDDEN
    );
    // Two lines are one list: the last address of the last line.
    assert_eq!(
        status(vec![(xff, "203.0.113.7"), (xff, "198.51.100.9")]).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        status(vec![(xff, "198.51.100.9"), (xff, "203.0.113.7")]).await,
        StatusCode::OK
    );
    // No header, or garbage where the proxy's entry should be: the client is unknown,
    // which satisfies no allow (never the proxy's own address).
    assert_eq!(status(vec![]).await, StatusCode::FORBIDDEN);
    assert_eq!(
        status(vec![(xff, "203.0.113.7, unknown")]).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(server.app_calls.load(Ordering::SeqCst), 2);

    // Without trusted proxies the header is ignored: the client is the peer,
    // 127.0.0.1, outside `remoteIpBlocks`, whatever the header says.
    let server = start(BEHIND_PROXY, false, false).await;
    let (code, _, _) = get(
        &server.client(FRONTEND),
        &server.url("https", "/orders"),
        &[(xff, "203.0.113.7")],
    )
    .await;
    assert_eq!(code, StatusCode::FORBIDDEN);
    assert_eq!(server.app_calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn route_query_params_match_the_query_the_client_sent() {
    // A route matched on its query (HTTPRoute `queryParams`): the layer hands the
    // policy the raw query, which the route decodes (`+` and `%20` are spaces).
    let policy = r#"
servers:
  - name: all
    ports: ["1-65535"]
    routes:
      - name: search-v2
        matches:
          - paths: ["/search"]
            query_params: [{name: version, value: "2 b"}]
rules:
  - name: frontend-searches-v2
    action: allow
    from: [{identities: ["spiffe://example.org/ns/web/sa/frontend"]}]
    to: [{routes: [search-v2]}]
"#;
    let server = start(policy, false, false).await;
    let client = server.client(FRONTEND);
    for target in ["/search?version=2+b", "/search?x=1&version=2%20b"] {
        let (status, _, body) = get(&client, &server.url("https", target), &[]).await;
        assert_eq!(status, StatusCode::OK, "{target}: {body}");
        assert!(body.contains("rule=frontend-searches-v2"), "{body}");
        let query = target.split_once('?').unwrap().1;
        assert!(body.contains(&format!("query={query} ")), "{body}");
    }
    for target in ["/search?version=3", "/search", "/search?Version=2+b"] {
        let (status, _, body) = get(&client, &server.url("https", target), &[]).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{target}: {body}");
    }
}
