//! The server under test and the clients that attack it.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use meshless::authorize::AuthorizeLayer;
use meshless::metrics::Metrics;
use meshless::policy::{Decision, Policy, PolicyHandle};
use meshless::testing::TestCa;
use meshless::tls::{ExpectedServer, MtlsAcceptor, MtlsConnector, TlsSource};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::time::timeout;
use tower::Layer;

/// Every network step is bounded by this.
pub const T: Duration = Duration::from_secs(10);
pub const SERVER: &str = "spiffe://example.org/ns/shop/sa/server";
pub const CLIENT: &str = "spiffe://example.org/ns/web/sa/client";

/// `deny /admin*` for everyone, allow everything else.
pub const POLICY: &str = r#"
default: deny
rules:
  - name: no-admin
    action: deny
    to: [{paths: ["/admin*"]}]
  - name: everything-else
    action: allow
    to: [{paths: ["*"]}]
"#;

/// What the application saw: how often it ran and at which paths.
#[derive(Default)]
pub struct Recorder {
    calls: AtomicUsize,
    paths: Mutex<Vec<String>>,
    /// Added to every response (to keep requests in flight).
    pub delay: Mutex<Duration>,
}

impl Recorder {
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    pub fn paths(&self) -> Vec<String> {
        self.paths.lock().unwrap().clone()
    }
}

/// The application: records the path it is asked for, answers `path=<p> rule=<r>`.
pub fn app(
    rec: Arc<Recorder>,
) -> impl tower::Service<
    Request<Incoming>,
    Response = Response<Full<Bytes>>,
    Error = Infallible,
    Future = impl Future<Output = Result<Response<Full<Bytes>>, Infallible>> + Send,
> + Clone
+ Send
+ 'static {
    tower::service_fn(move |req: Request<Incoming>| {
        let rec = rec.clone();
        async move {
            rec.calls.fetch_add(1, Ordering::SeqCst);
            let path = req.uri().path().to_owned();
            rec.paths.lock().unwrap().push(path.clone());
            let rule = req
                .extensions()
                .get::<Decision>()
                .map_or("none".to_owned(), |d| d.rule().to_owned());
            let delay = *rec.delay.lock().unwrap();
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            let body = format!("path={path} rule={rule}");
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(body))))
        }
    })
}

/// A running `meshless::serve` with `AuthorizeLayer` in front of [`app`].
#[allow(dead_code)]
pub struct Server {
    pub addr: SocketAddr,
    pub ca: Arc<TestCa>,
    pub policy: PolicyHandle,
    pub metrics: Arc<Metrics>,
    pub rec: Arc<Recorder>,
}

impl Server {
    /// A strict server of `example.org` with [`POLICY`].
    pub async fn start() -> Self {
        let ca = Arc::new(TestCa::new("example.org").unwrap());
        let acceptor = MtlsAcceptor::new(ca.tls_source(SERVER).unwrap()).unwrap();
        Self::start_with(
            ca,
            acceptor,
            PolicyHandle::new(Policy::from_yaml(POLICY).unwrap()),
        )
        .await
    }

    /// A strict server with [`POLICY`] and a handshake timeout of `timeout`.
    pub async fn start_with_timeout(timeout: Duration) -> Self {
        let ca = Arc::new(TestCa::new("example.org").unwrap());
        let acceptor = MtlsAcceptor::builder(ca.tls_source(SERVER).unwrap())
            .handshake_timeout(timeout)
            .build()
            .unwrap();
        Self::start_with(
            ca,
            acceptor,
            PolicyHandle::new(Policy::from_yaml(POLICY).unwrap()),
        )
        .await
    }

    /// A server over `acceptor` (whose material `ca` issued) enforcing `policy`.
    pub async fn start_with(ca: Arc<TestCa>, acceptor: MtlsAcceptor, policy: PolicyHandle) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let metrics = Arc::new(Metrics::new());
        let rec = Arc::new(Recorder::default());
        let layer = AuthorizeLayer::new(policy.clone()).metrics(metrics.clone());
        let service = layer.layer(app(rec.clone()));
        tokio::spawn(meshless::serve(listener, acceptor, service));
        Self {
            addr,
            ca,
            policy,
            metrics,
            rec,
        }
    }

    pub fn connector(&self, id: &str) -> MtlsConnector {
        connector(&self.ca, id)
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.addr.port())
    }

    /// A GET by a well-behaved client of identity `id`: status and body.
    pub async fn get(&self, id: &str, path: &str) -> Result<(StatusCode, String), String> {
        let client: Client<_, Empty<Bytes>> =
            Client::builder(TokioExecutor::new()).build(self.connector(id));
        request(&client, &self.url(path)).await
    }

    /// Sends `bytes` over a fresh HTTP/1.1 mTLS connection of [`CLIENT`] and reads
    /// until the server closes: the status code (0 if none) and the body.
    pub async fn raw_http1(&self, bytes: &[u8]) -> (u16, String) {
        let text = self.raw_http1_reply(bytes).await;
        let status = text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
        let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
        (status, body)
    }

    /// Like [`Server::raw_http1`], returning everything the server sent.
    pub async fn raw_http1_reply(&self, bytes: &[u8]) -> String {
        let conn = timeout(
            T,
            self.connector(CLIENT)
                .http1_only()
                .connect(self.url("/").parse().unwrap()),
        )
        .await
        .unwrap()
        .unwrap();
        let (mut tls, _) = conn.into_inner();
        // The server may answer and close before everything is written.
        let _ = timeout(T, tls.write_all(bytes)).await.unwrap();
        let mut buf = Vec::new();
        let _ = timeout(T, tls.read_to_end(&mut buf)).await.unwrap();
        String::from_utf8_lossy(&buf).into_owned()
    }

    /// Asserts that a well-behaved client is still served.
    pub async fn assert_serves(&self) {
        let (status, body) = self.get(CLIENT, "/healthz").await.unwrap();
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body, "path=/healthz rule=everything-else");
    }
}

/// An mTLS connector for `id` of `ca`'s trust domain, accepting servers of that domain.
pub fn connector(ca: &TestCa, id: &str) -> MtlsConnector {
    let source: TlsSource = ca.tls_source(id).unwrap();
    MtlsConnector::new(
        source,
        ExpectedServer::TrustDomain(ca.trust_domain().clone()),
    )
    .unwrap()
}

/// One GET: status and body, or the client's error.
pub async fn request<C>(
    client: &Client<C, Empty<Bytes>>,
    url: &str,
) -> Result<(StatusCode, String), String>
where
    C: hyper_util::client::legacy::connect::Connect + Clone + Send + Sync + 'static,
{
    let res = timeout(T, client.get(url.parse().unwrap()))
        .await
        .map_err(|_| "timed out".to_owned())?
        .map_err(|e| format!("{e:?}"))?;
    let status = res.status();
    let body = timeout(T, res.into_body().collect())
        .await
        .map_err(|_| "body timed out".to_owned())?
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

/// The value of the counter line starting with `prefix` in `metrics`' exposition.
pub fn counter(metrics: &Metrics, prefix: &str) -> u64 {
    metrics
        .render()
        .lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

/// A deterministic pseudo-random byte source (xorshift), so failures reproduce.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

pub use meshless::testing::client_hello;
