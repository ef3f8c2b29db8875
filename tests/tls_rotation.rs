//! Hot rotation from files: Kubernetes Secret volumes (`..data` symlink swap) and
//! in-place rewrites (spiffe-helper), with open connections kept and broken
//! replacements refused.

mod common;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use common::*;
use http::{Request, Response};
use http_body_util::{BodyExt, Empty};
use hyper::body::{Bytes, Incoming};
use meshless::testing::{TestCa, TestSvid};
use meshless::tls::{
    FileSource, MtlsAcceptor, MtlsConnector, ReloadStatus, TlsMaterial, TlsSource, TrustBundle,
};
use meshless::{PeerIdentity, TlsError};
use tokio::net::TcpListener;
use tokio::time::timeout;

/// Writes one Kubernetes-style generation (`..<name>/` with the three files) and points
/// `..data` at it atomically, as the kubelet does.
fn k8s_publish(dir: &Path, name: &str, cert: &str, key: &str, ca: &str) {
    let generation = dir.join(format!("..{name}"));
    std::fs::create_dir(&generation).unwrap();
    std::fs::write(generation.join("tls.crt"), cert).unwrap();
    std::fs::write(generation.join("tls.key"), key).unwrap();
    std::fs::write(generation.join("ca.crt"), ca).unwrap();
    let tmp = dir.join("..data_tmp");
    std::os::unix::fs::symlink(format!("..{name}"), &tmp).unwrap();
    std::fs::rename(&tmp, dir.join("..data")).unwrap();
    for file in ["tls.crt", "tls.key", "ca.crt"] {
        let link = dir.join(file);
        if std::fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink(format!("..data/{file}"), &link).unwrap();
        }
    }
}

async fn wait_for(files: &FileSource, done: impl Fn(&ReloadStatus) -> bool) -> ReloadStatus {
    timeout(STEP, async {
        loop {
            let status = files.status();
            if done(&status) {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("reload not seen in time")
}

async fn serve_files(files: &FileSource) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let service = tower::service_fn(|req: Request<Incoming>| async move {
        let peer = req.extensions().get::<PeerIdentity>().unwrap().clone();
        Ok::<_, Infallible>(Response::new(format!("hello {peer}")))
    });
    let acceptor = MtlsAcceptor::new(files.source()).unwrap();
    tokio::spawn(meshless::serve(listener, acceptor, service));
    addr
}

/// A client of `issuer` that trusts servers of both CAs.
fn connector(issuer: &TestCa, trusted: &[&TestCa]) -> MtlsConnector {
    let roots = trusted.iter().map(|ca| ca.root().clone()).collect();
    let bundle = TrustBundle::new(issuer.trust_domain().clone(), roots).unwrap();
    let material = TlsMaterial::new(svid(&issuer.issue(CLIENT_ID).unwrap()), bundle).unwrap();
    MtlsConnector::new(TlsSource::new(material), issuer.trust_domain().clone()).unwrap()
}

/// Opens an HTTP/1.1 connection; returns its sender and the server's leaf certificate.
async fn open(
    connector: &MtlsConnector,
    addr: SocketAddr,
) -> Result<
    (
        hyper::client::conn::http1::SendRequest<Empty<Bytes>>,
        Vec<u8>,
    ),
    TlsError,
> {
    let uri = format!("https://127.0.0.1:{}/", addr.port())
        .parse()
        .unwrap();
    let conn = timeout(STEP, connector.clone().http1_only().connect(uri))
        .await
        .unwrap()?;
    let (tls, _) = conn.into_inner();
    let leaf = tls.get_ref().1.peer_certificates().unwrap()[0].to_vec();
    let io = hyper_util::rt::TokioIo::new(tls);
    let (sender, driver) = hyper::client::conn::http1::handshake(io).await.unwrap();
    tokio::spawn(driver);
    Ok((sender, leaf))
}

async fn ask(sender: &mut hyper::client::conn::http1::SendRequest<Empty<Bytes>>) -> String {
    let request = Request::get("/")
        .header("host", "localhost")
        .body(Empty::new())
        .unwrap();
    let response = timeout(STEP, sender.send_request(request))
        .await
        .unwrap()
        .unwrap();
    let body = timeout(STEP, response.into_body().collect())
        .await
        .unwrap()
        .unwrap();
    String::from_utf8(body.to_bytes().to_vec()).unwrap()
}

/// Sends one request on a fresh connection; `Err` when the server refused us.
async fn fresh(connector: &MtlsConnector, addr: SocketAddr) -> Result<(String, Vec<u8>), String> {
    let (mut sender, leaf) = open(connector, addr).await.map_err(|e| e.to_string())?;
    let request = Request::get("/")
        .header("host", "localhost")
        .body(Empty::new())
        .unwrap();
    let response = timeout(STEP, sender.send_request(request))
        .await
        .unwrap()
        .map_err(|e| e.to_string())?;
    let body = timeout(STEP, response.into_body().collect())
        .await
        .unwrap()
        .unwrap();
    Ok((String::from_utf8(body.to_bytes().to_vec()).unwrap(), leaf))
}

fn server_svid(ca: &TestCa) -> TestSvid {
    ca.issue(SERVER_ID).unwrap()
}

#[tokio::test]
async fn kubernetes_secret_rotation_keeps_open_connections_and_refuses_broken_files() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (ca1, ca2) = (
        TestCa::new("example.org").unwrap(),
        TestCa::new("example.org").unwrap(),
    );
    let first = server_svid(&ca1);
    k8s_publish(
        d,
        "gen1",
        &first.chain_pem(),
        &first.key_pem(),
        &ca1.root_pem(),
    );
    let files = FileSource::builder(d.join("tls.crt"), d.join("tls.key"), d.join("ca.crt"))
        .poll_interval(Duration::from_millis(50))
        .start()
        .await
        .unwrap();
    let addr = serve_files(&files).await;
    let old_client = connector(&ca1, &[&ca1, &ca2]);
    let new_client = connector(&ca2, &[&ca1, &ca2]);

    let (mut open_conn, leaf) = open(&old_client, addr).await.unwrap();
    assert_eq!(leaf, first.leaf_der());
    assert_eq!(ask(&mut open_conn).await, format!("hello {CLIENT_ID}"));
    assert!(
        fresh(&new_client, addr).await.is_err(),
        "ca2 trusted too early"
    );

    // Rotate SVID and bundle to a new CA.
    let second = server_svid(&ca2);
    k8s_publish(
        d,
        "gen2",
        &second.chain_pem(),
        &second.key_pem(),
        &ca2.root_pem(),
    );
    wait_for(&files, |s| s.reloads == 1).await;

    // The open connection keeps working; new handshakes see the new certificate and
    // are verified against the new bundle.
    assert_eq!(ask(&mut open_conn).await, format!("hello {CLIENT_ID}"));
    let (body, leaf) = fresh(&new_client, addr).await.unwrap();
    assert_eq!(body, format!("hello {CLIENT_ID}"));
    assert_eq!(leaf, second.leaf_der());
    assert!(fresh(&old_client, addr).await.is_err(), "ca1 still trusted");

    // A corrupt certificate is refused; the last good material stays.
    k8s_publish(
        d,
        "gen3",
        "-----BEGIN CERTIFICATE-----\nbroken\n",
        &second.key_pem(),
        &ca2.root_pem(),
    );
    let status = wait_for(&files, |s| s.failures == 1).await;
    let (err, _) = status.last_error.expect("the failure is reported");
    assert_eq!(err.reason(), "parse", "{err}");
    let (_, leaf) = fresh(&new_client, addr).await.unwrap();
    assert_eq!(leaf, second.leaf_der());

    // So is a certificate with somebody else's key.
    let third = server_svid(&ca2);
    k8s_publish(
        d,
        "gen4",
        &third.chain_pem(),
        &second.key_pem(),
        &ca2.root_pem(),
    );
    let status = wait_for(&files, |s| s.failures == 2).await;
    let (err, _) = status.last_error.unwrap();
    assert!(matches!(err, TlsError::KeyMismatch { .. }), "{err}");
    let (_, leaf) = fresh(&new_client, addr).await.unwrap();
    assert_eq!(leaf, second.leaf_der());
    assert_eq!(files.status().reloads, 1);

    // Fixing the files recovers, and clears the error.
    k8s_publish(
        d,
        "gen5",
        &third.chain_pem(),
        &third.key_pem(),
        &ca2.root_pem(),
    );
    wait_for(&files, |s| s.reloads == 2).await;
    assert!(files.last_error().is_none());
    let (_, leaf) = fresh(&new_client, addr).await.unwrap();
    assert_eq!(leaf, third.leaf_der());
}

#[tokio::test]
async fn in_place_rewrites_with_a_spiffe_bundle_and_a_federated_domain() {
    // spiffe-helper layout: files rewritten in place; the bundle in SPIFFE JSON form.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ca = TestCa::new("example.org").unwrap();
    let partner = TestCa::new("partner.net").unwrap();
    let jwks = |root: &[u8]| {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD.encode(root);
        format!(
            r#"{{"keys":[{{"use":"x509-svid","kty":"EC","crv":"P-256","x5c":["{b64}"]}},
                {{"use":"jwt-svid","kid":"k1","kty":"EC"}}],"spiffe_sequence":7}}"#
        )
    };
    let first = server_svid(&ca);
    std::fs::write(d.join("svid.pem"), first.chain_pem()).unwrap();
    std::fs::write(d.join("svid_key.pem"), first.key_pem()).unwrap();
    std::fs::write(d.join("svid_bundle.json"), jwks(ca.root())).unwrap();
    std::fs::write(d.join("partner.pem"), partner.root_pem()).unwrap();
    let files = FileSource::builder(
        d.join("svid.pem"),
        d.join("svid_key.pem"),
        d.join("svid_bundle.json"),
    )
    .federated_bundle(partner.trust_domain().clone(), d.join("partner.pem"))
    .poll_interval(Duration::from_millis(50))
    .start()
    .await
    .unwrap();
    let material = files.source().current();
    assert_eq!(material.bundles().len(), 2);
    assert_eq!(
        material
            .bundles()
            .get(ca.trust_domain())
            .unwrap()
            .sequence(),
        Some(7)
    );
    let addr = serve_files(&files).await;

    let partner_client = {
        let issued = partner.issue("spiffe://partner.net/billing").unwrap();
        let trust = TrustBundle::new(ca.trust_domain().clone(), vec![ca.root().clone()]).unwrap();
        let bundles = meshless::tls::BundleSet::new()
            .with(trust)
            .with(bundle(&partner));
        let material = TlsMaterial::new(svid(&issued), bundles).unwrap();
        MtlsConnector::new(TlsSource::new(material), ca.trust_domain().clone()).unwrap()
    };
    let (body, _) = fresh(&partner_client, addr).await.unwrap();
    assert_eq!(body, "hello spiffe://partner.net/billing");

    // Rewrite the certificate and key in place.
    let second = server_svid(&ca);
    std::fs::write(d.join("svid.pem"), second.chain_pem()).unwrap();
    std::fs::write(d.join("svid_key.pem"), second.key_pem()).unwrap();
    wait_for(&files, |s| {
        s.reloads >= 1 && files.source().current().svid().chain()[0].as_ref() == second.leaf_der()
    })
    .await;
    let (_, leaf) = fresh(&partner_client, addr).await.unwrap();
    assert_eq!(leaf, second.leaf_der());

    // Dropping the federated bundle's content is refused: it is not valid PEM roots.
    std::fs::write(d.join("partner.pem"), "not a bundle").unwrap();
    let status = wait_for(&files, |s| s.failures >= 1).await;
    assert!(status.last_error.is_some());
    let (body, _) = fresh(&partner_client, addr).await.unwrap();
    assert_eq!(body, "hello spiffe://partner.net/billing");
}
