//! An axum service behind SPIFFE mTLS, end to end on loopback: certificates are written
//! to files (as cert-manager's csi-driver-spiffe would), the server watches them, and
//! a hyper client with `MtlsConnector` calls it.
//!
//! `cargo run --features testing,axum --example axum_mtls`

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use meshless::testing::TestCa;
use meshless::tls::{FileSource, MtlsAcceptor, MtlsConnector, Svid, TlsMaterial, TrustBundle};
use meshless::{MtlsListener, PeerIdentity, SpiffeId};

async fn whoami(peer: PeerIdentity) -> String {
    format!("hello {peer}\n")
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A throwaway CA and the server's files: tls.crt, tls.key, ca.crt.
    let ca = TestCa::new("example.org")?;
    let dir = tempfile::tempdir()?;
    let server = ca.issue("spiffe://example.org/ns/shop/sa/api")?;
    std::fs::write(dir.path().join("tls.crt"), server.chain_pem())?;
    std::fs::write(dir.path().join("tls.key"), server.key_pem())?;
    std::fs::write(dir.path().join("ca.crt"), ca.root_pem())?;

    // Server: material from files (reloaded on change), strict mTLS, axum.
    let p = |f: &str| dir.path().join(f);
    let files = FileSource::builder(p("tls.crt"), p("tls.key"), p("ca.crt"))
        .poll_interval(Duration::from_secs(1))
        .start()
        .await?;
    let acceptor = MtlsAcceptor::new(files.source())?;
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = tcp.local_addr()?;
    let app = Router::new().route("/whoami", get(whoami));
    tokio::spawn(async move {
        let listener = MtlsListener::new(tcp, acceptor);
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<PeerIdentity>(),
        )
        .await
    });

    // Client: its own SVID, and it only talks to the API's SPIFFE ID.
    let client = ca.issue("spiffe://example.org/ns/web/sa/frontend")?;
    let bundle = TrustBundle::new(ca.trust_domain().clone(), vec![ca.root().clone()])?;
    let material = TlsMaterial::new(Svid::new(client.chain().to_vec(), client.key())?, bundle)?;
    let api: SpiffeId = "spiffe://example.org/ns/shop/sa/api".parse()?;
    let connector = MtlsConnector::new(material, api)?;
    let http: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build(connector);
    let response = http
        .get(format!("https://127.0.0.1:{}/whoami", addr.port()).parse()?)
        .await?;
    let server_identity = response.extensions().get::<PeerIdentity>().cloned();
    let body = response.into_body().collect().await?.to_bytes();
    print!("{}", String::from_utf8_lossy(&body));
    println!("server proved {server_identity:?}");
    Ok(())
}
