//! Real clients against `meshless::serve`: curl, `openssl s_client`, and a hyper client
//! through `MtlsConnector`.

mod common;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::process::Stdio;

use common::*;
use http::{Request, Response};
use http_body_util::{BodyExt, Empty};
use hyper::body::{Bytes, Incoming};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use meshless::testing::TestCa;
use meshless::tls::{ExpectedServer, MtlsAcceptor, MtlsConnector, TlsSource};
use meshless::{PeerIdentity, SpiffeId, TlsError};
use tokio::io::AsyncWriteExt;
use tokio::time::timeout;

/// Serves `hello <peer> over <version>` on a meshless server.
async fn start(source: TlsSource) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let service = tower::service_fn(|req: Request<Incoming>| async move {
        let peer = req.extensions().get::<PeerIdentity>().unwrap().clone();
        let body = format!("hello {peer} over {:?}", req.version());
        Ok::<_, Infallible>(Response::new(body))
    });
    let acceptor = MtlsAcceptor::new(source).unwrap();
    tokio::spawn(meshless::serve(listener, acceptor, service));
    addr
}

async fn run(cmd: &str, args: &[String], stdin: &[u8]) -> (bool, String, String) {
    require(cmd);
    let mut child = tokio::process::Command::new(cmd)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin).await.unwrap();
    let out = timeout(STEP, child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn s(p: &std::path::Path) -> String {
    p.display().to_string()
}

#[tokio::test]
async fn curl_with_a_client_svid_is_served_over_http2_http1_1_and_http1_0() {
    let ca = TestCa::new("example.org").unwrap();
    let addr = start(server_source(&ca)).await;
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = ca
        .issue(CLIENT_ID)
        .unwrap()
        .write_pem(dir.path(), "client")
        .unwrap();
    let root = dir.path().join("root.pem");
    std::fs::write(&root, ca.root_pem()).unwrap();
    let url = format!("https://localhost:{}/", addr.port());
    let base = |version: &str| {
        vec![
            "--silent".into(),
            "--show-error".into(),
            "--max-time".into(),
            "10".into(),
            "--resolve".into(),
            format!("localhost:{}:127.0.0.1", addr.port()),
            "--cert".into(),
            s(&cert),
            "--key".into(),
            s(&key),
            "--cacert".into(),
            s(&root),
            version.into(),
            url.clone(),
        ]
    };
    let (ok, out, err) = run("curl", &base("--http2"), b"").await;
    assert!(ok, "curl failed: {err}");
    assert_eq!(out, format!("hello {CLIENT_ID} over HTTP/2.0"));
    let (ok, out, err) = run("curl", &base("--http1.1"), b"").await;
    assert!(ok, "curl failed: {err}");
    assert_eq!(out, format!("hello {CLIENT_ID} over HTTP/1.1"));
    // curl --http1.0 offers ALPN `http/1.0` alone, which nginx accepts too.
    let (ok, out, err) = run("curl", &base("--http1.0"), b"").await;
    assert!(ok, "curl failed: {err}");
    assert_eq!(out, format!("hello {CLIENT_ID} over HTTP/1.0"));
}

#[tokio::test]
async fn curl_without_a_client_certificate_is_refused() {
    let ca = TestCa::new("example.org").unwrap();
    let addr = start(server_source(&ca)).await;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root.pem");
    std::fs::write(&root, ca.root_pem()).unwrap();
    let args: Vec<String> = vec![
        "--silent".into(),
        "--max-time".into(),
        "10".into(),
        "--resolve".into(),
        format!("localhost:{}:127.0.0.1", addr.port()),
        "--cacert".into(),
        s(&root),
        format!("https://localhost:{}/", addr.port()),
    ];
    let (ok, out, _) = run("curl", &args, b"").await;
    assert!(!ok, "curl was served without a certificate: {out}");
    assert!(!out.contains("hello"));
}

#[tokio::test]
async fn openssl_s_client_with_a_client_svid_is_served() {
    let ca = TestCa::new("example.org").unwrap();
    let addr = start(server_source(&ca)).await;
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = ca
        .issue(CLIENT_ID)
        .unwrap()
        .write_pem(dir.path(), "client")
        .unwrap();
    let root = dir.path().join("root.pem");
    std::fs::write(&root, ca.root_pem()).unwrap();
    let args: Vec<String> = vec![
        "s_client".into(),
        "-connect".into(),
        addr.to_string(),
        "-cert".into(),
        s(&cert),
        "-key".into(),
        s(&key),
        "-CAfile".into(),
        s(&root),
        "-verify_return_error".into(),
        "-alpn".into(),
        "http/1.1".into(),
        "-quiet".into(),
    ];
    let request = b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    let (_, out, err) = run("openssl", &args, request).await;
    assert!(
        out.contains(&format!("hello {CLIENT_ID} over HTTP/1.1")),
        "stdout: {out}\nstderr: {err}"
    );
}

#[tokio::test]
async fn openssl_s_client_from_an_untrusted_ca_is_refused() {
    let ca = TestCa::new("example.org").unwrap();
    let rogue = TestCa::new("example.org").unwrap();
    let addr = start(server_source(&ca)).await;
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = rogue
        .issue(CLIENT_ID)
        .unwrap()
        .write_pem(dir.path(), "client")
        .unwrap();
    let root = dir.path().join("root.pem");
    std::fs::write(&root, ca.root_pem()).unwrap();
    let args: Vec<String> = vec![
        "s_client".into(),
        "-connect".into(),
        addr.to_string(),
        "-cert".into(),
        s(&cert),
        "-key".into(),
        s(&key),
        "-CAfile".into(),
        s(&root),
        "-quiet".into(),
    ];
    let request = b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    let (_, out, _) = run("openssl", &args, request).await;
    assert!(!out.contains("hello"), "untrusted client was served: {out}");
}

fn client_source(ca: &TestCa) -> TlsSource {
    TlsSource::new(material(&ca.issue(CLIENT_ID).unwrap(), bundle(ca)))
}

async fn get(connector: MtlsConnector, addr: SocketAddr) -> Result<(String, PeerIdentity), String> {
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build(connector);
    let uri = format!("https://127.0.0.1:{}/", addr.port())
        .parse()
        .unwrap();
    let response = timeout(STEP, client.get(uri)).await.unwrap().map_err(|e| {
        use std::error::Error;
        let cause = e.source().map(|s| s.to_string()).unwrap_or_default();
        format!("{e}: {cause}")
    })?;
    let server = response
        .extensions()
        .get::<PeerIdentity>()
        .cloned()
        .unwrap();
    let body = timeout(STEP, response.into_body().collect())
        .await
        .unwrap()
        .unwrap();
    Ok((String::from_utf8(body.to_bytes().to_vec()).unwrap(), server))
}

#[tokio::test]
async fn hyper_client_through_mtls_connector_sees_the_server_identity() {
    let ca = TestCa::new("example.org").unwrap();
    // URI SAN only: rustls' WebPKI server verifier would refuse this certificate.
    let server = ca.issue(SERVER_ID).unwrap();
    let addr = start(TlsSource::new(material(&server, bundle(&ca)))).await;
    let expected: SpiffeId = SERVER_ID.parse().unwrap();
    let connector = MtlsConnector::new(client_source(&ca), expected).unwrap();
    let (body, server_peer) = get(connector, addr).await.unwrap();
    assert_eq!(body, format!("hello {CLIENT_ID} over HTTP/2.0"));
    assert_eq!(server_peer.spiffe_id().unwrap().as_str(), SERVER_ID);
}

#[tokio::test]
async fn mtls_connector_refuses_a_server_with_another_identity() {
    let ca = TestCa::new("example.org").unwrap();
    let addr = start(server_source(&ca)).await;
    let wanted: SpiffeId = "spiffe://example.org/ns/shop/sa/payments".parse().unwrap();
    let connector = MtlsConnector::new(client_source(&ca), wanted.clone()).unwrap();
    let err = get(connector.clone(), addr).await.unwrap_err();
    assert!(err.contains("is not the expected"), "{err}");
    // Directly, the error is typed.
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let err = timeout(STEP, connector.connect_stream(tcp, "localhost"))
        .await
        .unwrap()
        .unwrap_err();
    match err {
        TlsError::UnexpectedServerId { got, .. } => assert_eq!(got.as_str(), SERVER_ID),
        other => panic!("expected an unexpected-server error, got {other}"),
    }
}

#[tokio::test]
async fn mtls_connector_accepts_by_trust_domain_or_predicate() {
    let ca = TestCa::new("example.org").unwrap();
    let addr = start(server_source(&ca)).await;
    let by_domain = MtlsConnector::new(client_source(&ca), ca.trust_domain().clone()).unwrap();
    assert!(get(by_domain, addr).await.is_ok());
    let shop = ExpectedServer::matching("a workload of namespace `shop`", |id| {
        id.namespace() == Some("shop")
    });
    assert!(
        get(MtlsConnector::new(client_source(&ca), shop).unwrap(), addr)
            .await
            .is_ok()
    );
    let billing = ExpectedServer::matching("a workload of namespace `billing`", |id| {
        id.namespace() == Some("billing")
    });
    let err = get(
        MtlsConnector::new(client_source(&ca), billing).unwrap(),
        addr,
    )
    .await
    .unwrap_err();
    assert!(err.contains("namespace `billing`"), "{err}");
}

#[tokio::test]
async fn mtls_connector_refuses_a_server_of_an_untrusted_ca() {
    let ca = TestCa::new("example.org").unwrap();
    let rogue = TestCa::new("example.org").unwrap();
    let addr = start(server_source(&rogue)).await;
    let connector = MtlsConnector::new(client_source(&ca), ca.trust_domain().clone()).unwrap();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let err = timeout(STEP, connector.connect_stream(tcp, "localhost"))
        .await
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, TlsError::UntrustedCa { .. }), "{err}");
}
