//! The rustls/webpki pitfalls, each shown handled over real loopback TLS: no inbound
//! session resumption (it would skip the client-certificate verifier), URI name
//! constraints named as the cause of a refusal, and refusals logged with their reason.

mod common;

use common::*;
use meshless::TlsError;
use meshless::testing::TestCa;
use meshless::tls::{BundleSet, MtlsAcceptor, TlsSource};

/// rustls skips the client-certificate verifier when it resumes a session. The
/// acceptor must not resume: every connection is a full handshake, verified against
/// the bundle in force at that moment.
async fn second_connection_is_verified_again(
    versions: &[&'static rustls::SupportedProtocolVersion],
) {
    let ca = TestCa::new("example.org").unwrap();
    let client = ca.issue(CLIENT_ID).unwrap();
    let issued = ca.issue_with_dns_sans(SERVER_ID, &["localhost"]).unwrap();
    let source = TlsSource::new(material(&issued, bundle(&ca)));
    let acceptor = MtlsAcceptor::new(source.clone()).unwrap();
    let (addr, mut rx) = spawn_server(acceptor).await;
    let new_ca = TestCa::new("example.org").unwrap();
    // The client trusts both CAs' servers; one client config, so one client session
    // cache: rustls would resume if the server allowed it.
    let both = meshless::tls::TrustBundle::new(
        ca.trust_domain().clone(),
        vec![ca.root().clone(), new_ca.root().clone()],
    )
    .unwrap();
    let verifier_source = TlsSource::new(material(&issued, both));
    let verifier = meshless::tls::SpiffeServerVerifier::new(verifier_source, expected(&ca));
    let config = rustls::ClientConfig::builder_with_provider(meshless::tls::provider())
        .with_protocol_versions(versions)
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(std::sync::Arc::new(verifier))
        .with_client_auth_cert(client.chain().to_vec(), client.key())
        .unwrap();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let connect = || async {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
        let mut tls = tokio::time::timeout(STEP, connector.connect(name, tcp))
            .await
            .unwrap()?;
        let mut text = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut tls, &mut text).await?;
        Ok::<_, std::io::Error>(tls.get_ref().1.handshake_kind())
    };
    let first = tokio::time::timeout(STEP, connect())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first, Some(rustls::HandshakeKind::Full));
    assert!(outcome(&mut rx).await.is_ok());
    let second = tokio::time::timeout(STEP, connect())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        second,
        Some(rustls::HandshakeKind::Full),
        "session was resumed"
    );
    assert!(outcome(&mut rx).await.is_ok());

    // Rotate the server's bundle to a CA that did not issue the client: the very same
    // client (with whatever session state it kept) is now refused.
    let new_server = new_ca
        .issue_with_dns_sans(SERVER_ID, &["localhost"])
        .unwrap();
    source.replace(material(&new_server, bundle(&new_ca)));
    let _ = tokio::time::timeout(STEP, connect()).await.unwrap();
    let err = outcome(&mut rx).await.unwrap_err();
    assert!(matches!(err, TlsError::UntrustedCa { .. }), "{err}");
}

#[tokio::test]
async fn does_not_resume_tls13_sessions() {
    second_connection_is_verified_again(&[&rustls::version::TLS13]).await;
}

#[tokio::test]
async fn does_not_resume_tls12_sessions() {
    second_connection_is_verified_again(&[&rustls::version::TLS12]).await;
}

/// Runs `openssl` with `args` in `dir`, panicking with its stderr on failure.
fn openssl(dir: &std::path::Path, args: &[&str]) {
    require("openssl");
    let out = std::process::Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn names_uri_name_constraints_as_the_cause() {
    // A SPIRE-style chain: root → intermediate constrained to URIs in example.org →
    // leaf. webpki cannot evaluate URI constraints and fails closed; the error must
    // say that, not blame the client.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("ext.cnf"),
        "[root]\nbasicConstraints=critical,CA:true\nkeyUsage=critical,keyCertSign,cRLSign\n\
         [inter]\nbasicConstraints=critical,CA:true\nkeyUsage=critical,keyCertSign,cRLSign\n\
         nameConstraints=critical,permitted;URI:example.org\n\
         [leaf]\nbasicConstraints=critical,CA:false\nkeyUsage=critical,digitalSignature\n\
         extendedKeyUsage=serverAuth,clientAuth\n\
         subjectAltName=URI:spiffe://example.org/ns/web/sa/client\n",
    )
    .unwrap();
    for (name, subj) in [
        ("root", "/O=example.org/CN=root"),
        ("inter", "/O=example.org/CN=inter"),
        ("leaf", "/O=workload"),
    ] {
        openssl(
            d,
            &[
                "ecparam",
                "-name",
                "prime256v1",
                "-genkey",
                "-noout",
                "-out",
                &format!("{name}.key"),
            ],
        );
        openssl(
            d,
            &[
                "req",
                "-new",
                "-key",
                &format!("{name}.key"),
                "-subj",
                subj,
                "-out",
                &format!("{name}.csr"),
            ],
        );
    }
    openssl(
        d,
        &[
            "x509",
            "-req",
            "-in",
            "root.csr",
            "-signkey",
            "root.key",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
            "-extensions",
            "root",
            "-out",
            "root.pem",
        ],
    );
    openssl(
        d,
        &[
            "x509",
            "-req",
            "-in",
            "inter.csr",
            "-CA",
            "root.pem",
            "-CAkey",
            "root.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
            "-extensions",
            "inter",
            "-out",
            "inter.pem",
        ],
    );
    openssl(
        d,
        &[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "inter.pem",
            "-CAkey",
            "inter.key",
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            "ext.cnf",
            "-extensions",
            "leaf",
            "-out",
            "leaf.pem",
        ],
    );
    openssl(
        d,
        &[
            "pkcs8", "-topk8", "-nocrypt", "-in", "leaf.key", "-out", "leaf.pk8",
        ],
    );
    let read = |f: &str| std::fs::read_to_string(d.join(f)).unwrap();
    let root = meshless::testing::certs_from_pem(&read("root.pem")).unwrap();
    let mut chain = meshless::testing::certs_from_pem(&read("leaf.pem")).unwrap();
    chain.extend(meshless::testing::certs_from_pem(&read("inter.pem")).unwrap());
    let key =
        rustls_pki_types::pem::PemObject::from_pem_slice(read("leaf.pk8").as_bytes()).unwrap();

    let td = meshless::TrustDomain::new("example.org").unwrap();
    let openssl_bundle = meshless::tls::TrustBundle::new(td, root).unwrap();
    let ca = TestCa::new("example.net").unwrap();
    let server = ca
        .issue_with_dns_sans("spiffe://example.net/server", &["localhost"])
        .unwrap();
    // The server's own SVID is from TestCa; it trusts the openssl root for clients.
    let server_svid = svid(&server);
    let source = TlsSource::new(
        meshless::tls::TlsMaterial::new(server_svid, BundleSet::new().with(openssl_bundle))
            .unwrap(),
    );
    let acceptor = MtlsAcceptor::new(source).unwrap();
    let (addr, mut rx) = spawn_server(acceptor).await;
    let client_trust = TlsSource::new(material(&server, bundle(&ca)));
    let verifier = meshless::tls::SpiffeServerVerifier::new(client_trust, expected(&ca));
    let config = rustls::ClientConfig::builder_with_provider(meshless::tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(std::sync::Arc::new(verifier))
        .with_client_auth_cert(chain, key)
        .unwrap();
    assert!(talk(addr, config).await.is_err());
    let err = outcome(&mut rx).await.unwrap_err();
    assert!(
        matches!(err, TlsError::UriNameConstraintsUnsupported { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("URI name constraints"), "{err}");
}

#[path = "support/log_capture.rs"]
mod log_capture;

#[tokio::test]
async fn refusals_are_logged_with_their_reason_under_meshless_tls() {
    // Single-threaded runtime: the server task runs on this thread, whose events
    // the capture collects.
    log_capture::start();
    let ca = TestCa::new("example.org").unwrap();
    let rogue = TestCa::new("example.org").unwrap();
    let client = rogue.issue(CLIENT_ID).unwrap();
    let err = verdict(&ca, bundle(&ca).into(), Some(&client))
        .await
        .unwrap_err();
    let text = log_capture::text();
    let line = text
        .lines()
        .find(|l| l.contains("refused connection"))
        .unwrap_or_else(|| panic!("no refusal logged: {text}"));
    assert!(line.contains("meshless::tls"), "{line}");
    assert!(line.contains("reason=\"untrusted_ca\""), "{line}");
    assert!(line.contains(&err.to_string()), "{line}");
}
