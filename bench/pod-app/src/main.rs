//! pod-app: the application of `bench/pod.sh`, one axum `Router` served three ways, so that
//! every setup of the pod-level benchmark runs the same app code.
//!
//! - `--mode meshless`: in-process zero trust. `meshless::serve` (mTLS, SPIFFE identity)
//!   with `AuthorizeLayer` around the whole router and the policy loaded from `--policy`
//!   (watched every `--watch-ms`, as an application would: the README's setup).
//! - `--mode bare`: the floor. tokio-rustls with rustls' `WebPkiClientVerifier` (a client
//!   certificate from `--ca` is required), hyper-util's auto connection builder, no identity,
//!   no policy.
//! - `--mode plain`: plaintext HTTP on the same accept loop, for a sidecar in front
//!   (the reference proxy, nginx, haproxy).
//!
//! Each mode runs on one current-thread tokio runtime. Benchmark tool only.
//!
//! ```text
//! pod-app --mode meshless --listen 127.0.0.1:18090 --cert server.crt --key server.key \
//!     --ca ca.crt --policy policy.yaml
//! pod-app --mode bare --listen 127.0.0.1:18090 --cert server.crt --key server.key --ca ca.crt
//! pod-app --mode plain --listen 127.0.0.1:18080
//! ```

use std::error::Error;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::Path;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use meshless::MtlsAcceptor;
use meshless::authorize::AuthorizeLayer;
use meshless::policy::PolicyHandle;
use meshless::tls::{Svid, TlsMaterial, TlsSource, TrustBundle};
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tower::Layer;

type Res<T> = Result<T, Box<dyn Error>>;

struct Args {
    mode: String,
    listen: String,
    cert: String,
    key: String,
    ca: String,
    policy: String,
    watch_ms: u64,
}

fn args() -> Res<Args> {
    let mut it = std::env::args().skip(1);
    let mut a = Args {
        mode: "meshless".into(),
        listen: "127.0.0.1:18090".into(),
        cert: String::new(),
        key: String::new(),
        ca: String::new(),
        policy: String::new(),
        watch_ms: 2000,
    };
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--mode" => a.mode = value,
            "--listen" => a.listen = value,
            "--cert" => a.cert = value,
            "--key" => a.key = value,
            "--ca" => a.ca = value,
            "--policy" => a.policy = value,
            "--watch-ms" => a.watch_ms = value.parse()?,
            other => return Err(format!("unknown flag {other}").into()),
        }
    }
    Ok(a)
}

/// The app: a root, a health check and a small JSON resource.
fn app() -> Router {
    Router::new()
        .route("/", get(|| async { "ok\n" }))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/orders/{id}", get(order))
}

async fn order(Path(id): Path<u64>) -> impl IntoResponse {
    let body = format!(
        r#"{{"id":{id},"status":"shipped","items":[{{"sku":"A-{a}","qty":2}},{{"sku":"B-{b}","qty":1}}],"total_cents":{t}}}"#,
        a = id % 97,
        b = id % 89,
        t = 1999 + id % 1000
    );
    ([(CONTENT_TYPE, "application/json")], body)
}

fn main() -> Res<()> {
    let a = args()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = TcpListener::bind(&a.listen).await?;
        match a.mode.as_str() {
            "meshless" => meshless_mode(listener, &a).await,
            "bare" => bare_mode(listener, &a).await,
            "plain" => plain_mode(listener).await,
            other => Err(format!("unknown mode {other}").into()),
        }
    })
}

async fn meshless_mode(listener: TcpListener, a: &Args) -> Res<()> {
    let svid = Svid::from_pem(&std::fs::read(&a.cert)?, &std::fs::read(&a.key)?)?;
    let bundle = TrustBundle::from_pem(
        svid.spiffe_id().trust_domain().clone(),
        &std::fs::read(&a.ca)?,
    )?;
    let acceptor = MtlsAcceptor::new(TlsSource::new(TlsMaterial::new(svid, bundle)?))?;
    let policy = PolicyHandle::from_file(&a.policy)?;
    let _watcher = (a.watch_ms > 0)
        .then(|| policy.watch(&a.policy, Duration::from_millis(a.watch_ms)));
    // Around the whole router: every request is decided before axum routes it.
    let service = AuthorizeLayer::new(policy).layer(app());
    meshless::serve(listener, acceptor, service).await?;
    Ok(())
}

async fn bare_mode(listener: TcpListener, a: &Args) -> Res<()> {
    let provider = meshless::tls::provider();
    let certs = CertificateDer::pem_file_iter(&a.cert)?.collect::<Result<Vec<_>, _>>()?;
    let key = PrivateKeyDer::from_pem_file(&a.key)?;
    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_file_iter(&a.ca)? {
        roots.add(ca?)?;
    }
    let verifier =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone()).build()?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    // Full handshakes only, as meshless's acceptor does.
    config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    accept_loop(listener, move |tcp| {
        let acceptor = acceptor.clone();
        async move { acceptor.accept(tcp).await.ok() }
    })
    .await
}

async fn plain_mode(listener: TcpListener) -> Res<()> {
    accept_loop(listener, |tcp| async move { Some(tcp) }).await
}

/// Accepts connections, turns each into an I/O stream with `wrap` (a TLS handshake, or
/// nothing) and serves the app on it with hyper-util's auto (HTTP/1.1 or h2) builder.
async fn accept_loop<W, F, IO>(listener: TcpListener, wrap: W) -> Res<()>
where
    W: Fn(tokio::net::TcpStream) -> F,
    F: Future<Output = Option<IO>> + Send + 'static,
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = TowerToHyperService::new(app());
    loop {
        let (tcp, _) = match listener.accept().await {
            Ok(conn) => conn,
            Err(_) => {
                // EMFILE and the like: back off instead of spinning.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let (io, service) = (wrap(tcp), service.clone());
        tokio::spawn(async move {
            let Some(io) = io.await else { return };
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(io), service)
                .await;
        });
    }
}
