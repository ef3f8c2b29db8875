//! Shared helpers for the TLS integration tests: certificates from `TestCa`, a raw
//! accept loop that reports each `MtlsAcceptor::accept` outcome, and a rustls client
//! that can present any certificate (including defective ones).
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use meshless::testing::{TestCa, TestSvid};
use meshless::tls::{
    BundleSet, ExpectedServer, MtlsAcceptor, SpiffeServerVerifier, Svid, TlsMaterial, TlsSource,
    TrustBundle, provider,
};
use meshless::{PeerIdentity, TlsError};
use rustls_pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::timeout;

/// Every network step in these tests is bounded by this.
pub const STEP: Duration = Duration::from_secs(10);

pub const SERVER_ID: &str = "spiffe://example.org/ns/shop/sa/server";
pub const CLIENT_ID: &str = "spiffe://example.org/ns/web/sa/client";

pub fn bundle(ca: &TestCa) -> TrustBundle {
    TrustBundle::new(ca.trust_domain().clone(), vec![ca.root().clone()]).unwrap()
}

pub fn svid(issued: &TestSvid) -> Svid {
    Svid::new(issued.chain().to_vec(), issued.key()).unwrap()
}

/// Material for a workload of `ca`'s trust domain, trusting `bundles`.
pub fn material(issued: &TestSvid, bundles: impl Into<BundleSet>) -> TlsMaterial {
    TlsMaterial::new(svid(issued), bundles).unwrap()
}

/// A server source: SERVER_ID issued by `ca` (with DNS SAN `localhost`), trusting `ca`.
pub fn server_source(ca: &TestCa) -> TlsSource {
    let issued = ca.issue_with_dns_sans(SERVER_ID, &["localhost"]).unwrap();
    TlsSource::new(material(&issued, bundle(ca)))
}

/// A server that runs `acceptor.accept` on every connection, reports the outcome on
/// the channel, and on success writes `hello <peer>\n` and closes.
pub async fn spawn_server(
    acceptor: MtlsAcceptor,
) -> (
    SocketAddr,
    mpsc::UnboundedReceiver<Result<PeerIdentity, TlsError>>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                match acceptor.accept(tcp).await {
                    Ok((mut stream, peer)) => {
                        let _ = tx.send(Ok(peer.clone()));
                        let _ = stream.write_all(format!("hello {peer}\n").as_bytes()).await;
                        let _ = stream.shutdown().await;
                    }
                    Err(err) => {
                        let _ = tx.send(Err(err));
                    }
                }
            });
        }
    });
    (addr, rx)
}

/// A rustls client config presenting `client` (any certificate, even a defective one)
/// and verifying the server as a workload of `server_ca`'s trust domain.
pub fn client_config(
    server_source: &TlsSource,
    client: Option<&TestSvid>,
    expected: ExpectedServer,
) -> rustls::ClientConfig {
    let verifier = SpiffeServerVerifier::new(server_source.clone(), expected);
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier));
    match client {
        Some(issued) => builder
            .with_client_auth_cert(issued.chain().to_vec(), issued.key())
            .unwrap(),
        None => builder.with_no_client_auth(),
    }
}

/// Connects with `config`, reads what the server says, and returns it (or the error).
pub async fn talk(addr: SocketAddr, config: rustls::ClientConfig) -> Result<String, String> {
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = timeout(STEP, TcpStream::connect(addr))
        .await
        .unwrap()
        .unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let mut tls = timeout(STEP, connector.connect(name, tcp))
        .await
        .unwrap()
        .map_err(|e| e.to_string())?;
    // With TLS 1.3 a refused client certificate shows on the first read.
    let mut text = String::new();
    timeout(STEP, tls.read_to_string(&mut text))
        .await
        .unwrap()
        .map_err(|e| e.to_string())?;
    Ok(text)
}

/// The next outcome the server reported.
pub async fn outcome(
    rx: &mut mpsc::UnboundedReceiver<Result<PeerIdentity, TlsError>>,
) -> Result<PeerIdentity, TlsError> {
    timeout(STEP, rx.recv()).await.unwrap().unwrap()
}

/// Fails with a clear message when a CLI tool the test needs is missing.
pub fn require(tool: &str) {
    let found = std::process::Command::new(tool)
        .arg("--version")
        .output()
        .or_else(|_| std::process::Command::new(tool).arg("version").output());
    assert!(
        found.is_ok(),
        "this test needs `{tool}` on PATH (CI installs it): install it to run the test"
    );
}

/// Servers of `ca`'s trust domain.
pub fn expected(ca: &TestCa) -> ExpectedServer {
    ExpectedServer::TrustDomain(ca.trust_domain().clone())
}

/// Presents `client` to a strict server of `ca` trusting `bundles`; returns what the
/// server's acceptor concluded, after checking the client saw the same outcome.
pub async fn verdict(
    ca: &TestCa,
    bundles: BundleSet,
    client: Option<&TestSvid>,
) -> Result<meshless::PeerIdentity, TlsError> {
    let issued = ca.issue_with_dns_sans(SERVER_ID, &["localhost"]).unwrap();
    let source = TlsSource::new(material(&issued, bundles));
    let acceptor = MtlsAcceptor::new(source.clone()).unwrap();
    let (addr, mut rx) = spawn_server(acceptor).await;
    let client_result = talk(addr, client_config(&source, client, expected(ca))).await;
    let server_result = outcome(&mut rx).await;
    match &server_result {
        Ok(peer) => assert_eq!(client_result, Ok(format!("hello {peer}\n"))),
        Err(_) => assert!(
            client_result.is_err(),
            "client was served: {client_result:?}"
        ),
    }
    server_result
}
