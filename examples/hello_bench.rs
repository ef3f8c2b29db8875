//! A hello-world axum service for whole-process benchmarks, in two builds of the same
//! app on the same certificates:
//!
//! - `--mode meshless`: `meshless::serve` + `MtlsAcceptor` + `AuthorizeLayer` with a
//!   policy that allows only `--allow ID`;
//! - `--mode bare`: tokio-rustls with rustls' `WebPkiClientVerifier` and hyper-util,
//!   no identity extraction, no policy — the floor meshless is compared against.
//!
//! One current-thread runtime each. `scripts/bench-serve.sh` drives both with the
//! shared harness's load generator.
//!
//! ```text
//! cargo run --release --example hello_bench -- --mode meshless --listen 127.0.0.1:18443 \
//!     --cert server.crt --key server.key --ca ca.crt --allow spiffe://example.org/ns/default/sa/client
//! ```

use std::error::Error;
use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use meshless::authorize::AuthorizeLayer;
use meshless::policy::{Policy, PolicyHandle};
use meshless::tls::{MtlsAcceptor, Svid, TlsMaterial, TlsSource, TrustBundle};
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

struct Args {
    mode: String,
    listen: String,
    cert: String,
    key: String,
    ca: String,
    allow: String,
}

fn args() -> Result<Args, Box<dyn Error>> {
    let mut it = std::env::args().skip(1);
    let mut a = Args {
        mode: "meshless".into(),
        listen: "127.0.0.1:18443".into(),
        cert: String::new(),
        key: String::new(),
        ca: String::new(),
        allow: String::new(),
    };
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--mode" => a.mode = value,
            "--listen" => a.listen = value,
            "--cert" => a.cert = value,
            "--key" => a.key = value,
            "--ca" => a.ca = value,
            "--allow" => a.allow = value,
            other => return Err(format!("unknown flag {other}").into()),
        }
    }
    Ok(a)
}

fn app() -> Router {
    Router::new().route("/", get(|| async { "ok\n" }))
}

fn main() -> Result<(), Box<dyn Error>> {
    let a = args()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&a.listen).await?;
        match a.mode.as_str() {
            "meshless" => meshless_mode(listener, &a).await,
            "bare" => bare_mode(listener, &a).await,
            other => Err(format!("unknown mode {other}").into()),
        }
    })
}

async fn meshless_mode(listener: tokio::net::TcpListener, a: &Args) -> Result<(), Box<dyn Error>> {
    let svid = Svid::from_pem(&std::fs::read(&a.cert)?, &std::fs::read(&a.key)?)?;
    let bundle = TrustBundle::from_pem(
        svid.spiffe_id().trust_domain().clone(),
        &std::fs::read(&a.ca)?,
    )?;
    let acceptor = MtlsAcceptor::new(TlsSource::new(TlsMaterial::new(svid, bundle)?))?;
    let policy = Policy::from_json(&format!(
        r#"{{"default":"deny","rules":[{{"name":"allowed-client","action":"allow","from":[{{"identities":["{}"]}}]}}]}}"#,
        a.allow
    ))?;
    let app = app().layer(AuthorizeLayer::new(PolicyHandle::new(policy)));
    meshless::serve(listener, acceptor, app).await?;
    Ok(())
}

async fn bare_mode(listener: tokio::net::TcpListener, a: &Args) -> Result<(), Box<dyn Error>> {
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
    config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let service = TowerToHyperService::new(app());
    loop {
        let (tcp, _) = listener.accept().await?;
        let _ = tcp.set_nodelay(true);
        let (acceptor, service) = (acceptor.clone(), service.clone());
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(tls), service)
                .await;
        });
    }
}
