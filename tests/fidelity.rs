//! Enforcement fidelity over real loopback mTLS: what the policy decides is exactly
//! what the app serves, wherever `AuthorizeLayer` sits in an axum app.
//!
//! Every placement — around the `Router`, `Router::layer`, `route_layer`, inside
//! `Router::nest`, and `axum::serve` with `MtlsListener` — gets the same hostile
//! requests: dot segments, encoded dots, `//`, `;` parameters, escapes of characters a
//! rule names, method case, Host tricks, repeated and padded headers. No handler under
//! a denied route may run, and an allowed request reaches the app unchanged.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::routing::{any, get};
use meshless::authorize::AuthorizeLayer;
use meshless::policy::{Policy, PolicyHandle};
use meshless::testing::TestCa;
use meshless::{MtlsAcceptor, MtlsConnector, MtlsListener, PeerIdentity, SpiffeId};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::timeout;

const SERVER: &str = "spiffe://example.org/ns/shop/sa/orders";
const FRONTEND: &str = "spiffe://example.org/ns/web/sa/frontend";
const T: Duration = Duration::from_secs(10);

/// The frontend may do anything except what the deny rules name.
const POLICY: &str = r#"
default: deny
rules:
  - name: frontend
    action: allow
    from: [{identities: ["spiffe://example.org/ns/web/sa/frontend"]}]
  - name: no-admin
    action: deny
    to: [{paths: ["/admin", "/admin/*", "/api/admin/*", "/@admin", "/café"]}]
  - name: no-delete
    action: deny
    to: [{methods: ["DELETE"]}]
  - name: no-internal-host
    action: deny
    to: [{hosts: ["admin.internal"]}]
  - name: no-debug-role
    action: deny
    when: [{header: x-role, values: ["debug", "a,b"]}]
  - name: no-traced
    action: deny
    when: [{header: x-trace, values: ["*"]}]
"#;

/// Counts handler runs: `denied` for handlers under a denied route, `served` for all.
#[derive(Clone, Default)]
struct Runs {
    denied: Arc<AtomicUsize>,
    served: Arc<AtomicUsize>,
}

impl Runs {
    fn denied(&self) -> usize {
        self.denied.load(Ordering::SeqCst)
    }
}

/// The handlers: under `/admin` (exact, wildcard, path parameter) they count as denied;
/// `/{name}` and the fallback echo what they got. (`route_layer` does not cover a
/// fallback, by axum's design, so that placement is tested without one.)
fn routes(runs: &Runs) -> Router {
    routes_only(runs).fallback(any(echo(runs)))
}

fn echo(
    runs: &Runs,
) -> impl Fn(Request) -> std::pin::Pin<Box<dyn Future<Output = String> + Send>>
+ Clone
+ Send
+ Sync
+ 'static {
    let runs = runs.clone();
    move |req: Request| {
        let runs = runs.clone();
        Box::pin(async move {
            runs.served.fetch_add(1, Ordering::SeqCst);
            format!("{} {}", req.method(), req.uri().path())
        })
    }
}

fn routes_only(runs: &Runs) -> Router {
    let denied = |runs: &Runs| {
        let runs = runs.clone();
        move |req: Request| {
            let runs = runs.clone();
            async move {
                runs.denied.fetch_add(1, Ordering::SeqCst);
                runs.served.fetch_add(1, Ordering::SeqCst);
                format!("DENIED HANDLER RAN for {}", req.uri())
            }
        }
    };
    Router::new()
        .route("/admin", any(denied(runs)))
        .route("/admin/{*rest}", any(denied(runs)))
        .route("/admin/users/{id}", any(denied(runs)))
        .route("/public", get(echo(runs)))
        .route("/{name}", any(echo(runs)))
}

#[derive(Clone, Copy, Debug)]
enum Placement {
    AroundRouter,
    RouterLayer,
    RouteLayer,
    Nested,
    AxumServe,
}

const ALL: [Placement; 5] = [
    Placement::AroundRouter,
    Placement::RouterLayer,
    Placement::RouteLayer,
    Placement::Nested,
    Placement::AxumServe,
];

struct Server {
    port: u16,
    ca: TestCa,
    runs: Runs,
    /// Prefix of every path (`/api` for the nested router).
    prefix: &'static str,
}

async fn start(placement: Placement) -> Server {
    let ca = TestCa::new("example.org").unwrap();
    let layer = AuthorizeLayer::new(PolicyHandle::new(Policy::from_yaml(POLICY).unwrap()));
    let runs = Runs::default();
    let acceptor = MtlsAcceptor::new(ca.tls_source(SERVER).unwrap()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut prefix = "";
    match placement {
        Placement::AroundRouter => {
            let service = tower::ServiceBuilder::new()
                .layer(layer)
                .service(routes(&runs));
            tokio::spawn(meshless::serve(listener, acceptor, service));
        }
        Placement::RouterLayer => {
            tokio::spawn(meshless::serve(
                listener,
                acceptor,
                routes(&runs).layer(layer),
            ));
        }
        Placement::RouteLayer => {
            tokio::spawn(meshless::serve(
                listener,
                acceptor,
                routes_only(&runs).route_layer(layer),
            ));
        }
        Placement::Nested => {
            prefix = "/api";
            let app = Router::new().nest("/api", routes(&runs).layer(layer));
            tokio::spawn(meshless::serve(listener, acceptor, app));
        }
        Placement::AxumServe => {
            let app = routes(&runs)
                .layer(layer)
                .into_make_service_with_connect_info::<PeerIdentity>();
            let listener = MtlsListener::new(listener, acceptor);
            tokio::spawn(async move { axum::serve(listener, app).await });
        }
    }
    Server {
        port,
        ca,
        runs,
        prefix,
    }
}

impl Server {
    /// Sends one raw HTTP/1.1 request head over mTLS as the frontend (so that no
    /// client cleans the target up first); returns the status and body.
    async fn raw(&self, head: &str) -> (u16, String) {
        let expected: SpiffeId = SERVER.parse().unwrap();
        let connector = MtlsConnector::new(self.ca.tls_source(FRONTEND).unwrap(), expected)
            .unwrap()
            .http1_only();
        let url = format!("https://127.0.0.1:{}/", self.port).parse().unwrap();
        let conn = timeout(T, connector.connect(url)).await.unwrap().unwrap();
        let (mut tls, _) = conn.into_inner();
        tls.write_all(head.as_bytes()).await.unwrap();
        let mut buf = Vec::new();
        let _ = timeout(T, tls.read_to_end(&mut buf)).await.unwrap();
        let text = String::from_utf8_lossy(&buf).into_owned();
        let status = text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
        let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
        (status, body)
    }

    async fn get(&self, path: &str) -> (u16, String) {
        self.request("GET", path, "").await
    }

    async fn request(&self, method: &str, path: &str, headers: &str) -> (u16, String) {
        let head = format!(
            "{method} {}{path} HTTP/1.1\r\nHost: orders.example\r\n{headers}Connection: close\r\n\r\n",
            self.prefix
        );
        self.raw(&head).await
    }
}

/// Paths under a denied route in every spelling a router, an app or a servlet
/// container could read as it: none may run a handler. Each is refused (400) or
/// denied (403).
const HOSTILE_PATHS: &[&str] = &[
    "/admin",
    "/admin/x",
    "/admin/users/7",
    "/admin/../public",
    "/admin/%2e%2e/public",
    "/admin/.%2E/public",
    "/admin/%2E%2E/public",
    "/admin/./users/7",
    "/admin/%2e/users/7",
    "/public/../admin",
    "/public/%2e%2e/admin/x",
    "//admin",
    "/admin//x",
    "/admin/x//..",
    "/admin;x",
    "/admin;jsessionid=1/x",
    "/admin/..;/public",
    "/%61dmin",
    "/%61dmin/x",
    "/admin%2Fx",
    "/admin%252e%252e/x",
    "/%40admin",
    "/caf%C3%A9",
    "/caf%c3%a9",
    "/admin%00",
    "/admin\\..\\public",
];

#[tokio::test]
async fn no_handler_under_a_denied_path_runs_wherever_the_layer_sits() {
    for placement in ALL {
        let server = start(placement).await;
        for path in HOSTILE_PATHS {
            let (status, body) = server.get(path).await;
            let unrouted = matches!(placement, Placement::RouteLayer) && status == 404;
            assert!(
                status == 400 || status == 403 || unrouted,
                "{placement:?} {path}: {status} {body}"
            );
            assert!(
                !body.contains("HANDLER RAN"),
                "{placement:?} {path}: {body}"
            );
        }
        assert_eq!(server.runs.denied(), 0, "{placement:?}");
        // Allowed requests still reach the app, as sent.
        let (status, body) = server.get("/public").await;
        assert_eq!(
            (status, body.as_str()),
            (200, "GET /public"),
            "{placement:?}"
        );
        let (status, body) = server.get("/orders").await;
        assert_eq!(status, 200, "{placement:?} {body}");
        assert!(body.ends_with("/orders"), "{placement:?} {body}");
        let (status, body) = server.get("/%6Frders;v=1").await;
        assert_eq!(status, 200, "{placement:?} {body}");
    }
}

#[tokio::test]
async fn dot_segments_are_refused_not_rewritten() {
    let server = start(Placement::RouterLayer).await;
    for path in ["/public/./x", "/x/../public", "//public", "/%2e/public"] {
        assert_eq!(server.get(path).await.0, 400, "{path}");
    }
    assert_eq!(server.runs.served.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn methods_hosts_and_headers_are_read_one_way() {
    for placement in [Placement::RouterLayer, Placement::AxumServe] {
        let server = start(placement).await;
        let cases: &[(&str, &str, &str, u16)] = &[
            // Method: `delete` is DELETE to Flask; refused in any case but upper.
            ("DELETE", "/orders", "", 403),
            ("delete", "/orders", "", 400),
            ("Delete", "/orders", "", 400),
            // Method-override middleware would serve these as DELETE.
            ("POST", "/orders", "X-HTTP-Method-Override: DELETE\r\n", 400),
            ("POST", "/orders?_method=DELETE", "", 400),
            ("POST", "/orders", "X-HTTP-Method-Override: POST\r\n", 200),
            // Host: a second Host, a port that is not digits, stray colons.
            ("GET", "/orders", "Host: admin.internal\r\n", 400),
            ("GET", "/orders", "", 200),
            // Header deny rules: two lines are the comma-joined field; padding and
            // empty or non-text values do not hide a header.
            ("GET", "/orders", "x-role: debug\r\n", 403),
            ("GET", "/orders", "x-role:   debug  \r\n", 403),
            ("GET", "/orders", "x-role: a\r\nx-role: b\r\n", 403),
            ("GET", "/orders", "x-role: a, b\r\n", 403),
            ("GET", "/orders", "x-role: a ,b\r\n", 403),
            ("GET", "/orders", "x-role: viewer\r\nx-role: debug\r\n", 403),
            ("GET", "/orders", "x-role: viewer,debug\r\n", 403),
            ("GET", "/orders", "x-role: viewer\r\n", 200),
            ("GET", "/orders", "x-trace:\r\n", 403),
            ("GET", "/orders", "x-trace: \u{e9}t\u{e9}\r\n", 403),
            // Underscores: a CGI app reads x_role as x-role.
            ("GET", "/orders", "x_role: debug\r\n", 400),
            (
                "GET",
                "/orders",
                "l5d_client_id: spiffe://example.org/ns/x/sa/y\r\n",
                400,
            ),
            // Hop-by-hop naming an identity header.
            ("GET", "/orders", "Connection: l5d-client-id\r\n", 400),
        ];
        for (method, path, headers, want) in cases {
            let (status, body) = server.request(method, path, headers).await;
            assert_eq!(
                status, *want,
                "{placement:?} {method} {path} {headers:?}: {body}"
            );
        }
        for host in [
            "admin.internal",
            "ADMIN.internal.",
            "admin.internal:443",
            "admin.internal:abc",
            "admin.internal:443:1",
            "x@admin.internal",
        ] {
            let head = format!("GET /orders HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
            let (status, body) = server.raw(&head).await;
            assert!(
                status == 400 || status == 403,
                "{placement:?} {host}: {status} {body}"
            );
        }
        let abs = "GET https://admin.internal/orders HTTP/1.1\r\nHost: orders.example\r\nConnection: close\r\n\r\n";
        assert_eq!(server.raw(abs).await.0, 400, "{placement:?}");
        assert_eq!(server.runs.denied(), 0);
    }
}

/// The same requests over HTTP/2 (hyper's h2 client sends the path and names as given).
#[tokio::test]
async fn hostile_requests_over_http2_are_refused_too() {
    use bytes::Bytes;
    use http_body_util::{BodyExt, Empty};
    use hyper_util::rt::{TokioExecutor, TokioIo};

    for placement in [
        Placement::RouterLayer,
        Placement::Nested,
        Placement::AxumServe,
    ] {
        let server = start(placement).await;
        let expected: SpiffeId = SERVER.parse().unwrap();
        let connector =
            MtlsConnector::new(server.ca.tls_source(FRONTEND).unwrap(), expected).unwrap();
        let url = format!("https://127.0.0.1:{}/", server.port)
            .parse()
            .unwrap();
        let (tls, _) = timeout(T, connector.connect(url))
            .await
            .unwrap()
            .unwrap()
            .into_inner();
        let (mut send, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
                .await
                .unwrap();
        tokio::spawn(conn);
        let mut status_of = async |req: http::Request<Empty<Bytes>>| {
            let res = timeout(T, send.send_request(req)).await.unwrap().unwrap();
            let status = res.status().as_u16();
            let body = timeout(T, res.into_body().collect())
                .await
                .unwrap()
                .unwrap()
                .to_bytes();
            (status, String::from_utf8_lossy(&body).into_owned())
        };
        let uri = |path: &str| format!("https://orders.example{}{path}", server.prefix);
        for path in HOSTILE_PATHS {
            let Ok(uri) = uri(path).parse::<http::Uri>() else {
                continue;
            };
            let (status, body) =
                status_of(http::Request::get(uri).body(Empty::new()).unwrap()).await;
            assert!(
                status == 400 || status == 403,
                "{placement:?} h2 {path}: {status} {body}"
            );
        }
        for (name, value) in [
            ("x_role", "debug"),
            ("l5d_client_id", FRONTEND),
            ("x-role", "viewer,debug"),
        ] {
            let req = http::Request::get(uri("/orders"))
                .header(name, value)
                .body(Empty::new())
                .unwrap();
            let (status, body) = status_of(req).await;
            assert!(
                status == 400 || status == 403,
                "{placement:?} h2 {name}: {status} {body}"
            );
        }
        let req = http::Request::builder()
            .method(http::Method::from_bytes(b"delete").unwrap())
            .uri(uri("/orders"))
            .body(Empty::new())
            .unwrap();
        assert_eq!(status_of(req).await.0, 400, "{placement:?} h2 delete");
        let (status, body) = status_of(
            http::Request::get(uri("/orders"))
                .body(Empty::new())
                .unwrap(),
        )
        .await;
        assert_eq!(status, 200, "{placement:?} h2 control: {body}");
        assert_eq!(server.runs.denied(), 0, "{placement:?}");
    }
}
