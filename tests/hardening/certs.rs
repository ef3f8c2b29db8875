//! Adversarial certificates and TLS: oversized chains and certificates, chains deeper
//! than the limit, garbage after the ClientHello, TLS 1.0/1.1 offers, renegotiation.

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use meshless::TlsError;
use meshless::testing::{TestCa, TestSvid};
use meshless::tls::{BundleSet, MtlsAcceptor, TlsSource};
use rcgen::{CertificateParams, CustomExtension, KeyPair, SanType};
use rustls::sign::CertifiedKey;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

use crate::common::{bundle, client_config, expected, outcome, spawn_server, talk};
use crate::support::{CLIENT, POLICY, Rng, SERVER, Server, T, client_hello};

/// Presents `chain` + `key` to a server running the public stack: the app must never
/// run, and a well-behaved client must still be served afterwards. Returns the
/// acceptor's verdict on the same chain (from a bare accept loop, to see the reason).
async fn present(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    configure: impl Fn(meshless::tls::MtlsAcceptorBuilder) -> meshless::tls::MtlsAcceptorBuilder,
) -> Result<meshless::PeerIdentity, TlsError> {
    let ca = Arc::new(TestCa::new("example.org").unwrap());
    let source = ca.tls_source(SERVER).unwrap();
    let acceptor = configure(MtlsAcceptor::builder(source.clone()))
        .build()
        .unwrap();
    let server = Server::start_with(
        ca.clone(),
        acceptor.clone(),
        meshless::policy::PolicyHandle::new(meshless::policy::Policy::from_yaml(POLICY).unwrap()),
    )
    .await;
    // Presented as is: rustls' own client would refuse to send some of these.
    let signing = meshless::tls::provider()
        .key_provider
        .load_private_key(key)
        .unwrap();
    let presented = Arc::new(Presents(Arc::new(CertifiedKey::new(chain, signing))));
    let config = || {
        let verifier = meshless::tls::SpiffeServerVerifier::new(source.clone(), expected(&ca));
        rustls::ClientConfig::builder_with_provider(meshless::tls::provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_client_cert_resolver(presented.clone())
    };
    // Through the public stack: an HTTP request over the hostile handshake.
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config()));
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    if let Ok(Ok(mut tls)) = timeout(T, connector.connect(name, tcp)).await {
        let _ = tls
            .write_all(b"GET /x HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await;
        let mut buf = Vec::new();
        let _ = timeout(T, tls.read_to_end(&mut buf)).await.unwrap();
        assert!(
            buf.is_empty(),
            "server answered a refused client: {:?}",
            String::from_utf8_lossy(&buf)
        );
    }
    assert_eq!(server.rec.calls(), 0, "the app ran for a refused client");
    server.assert_serves().await;
    // The reason, from the same acceptor in a bare accept loop.
    let (addr, mut rx) = spawn_server(acceptor).await;
    let _ = talk(addr, config()).await;
    outcome(&mut rx).await
}

/// A client certificate resolver that presents one chain, whatever it holds.
#[derive(Debug)]
struct Presents(Arc<CertifiedKey>);

impl rustls::client::ResolvesClientCert for Presents {
    fn resolve(&self, _: &[&[u8]], _: &[rustls::SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

fn key_of(issued: &TestSvid) -> PrivateKeyDer<'static> {
    issued.key()
}

#[tokio::test]
async fn a_chain_longer_than_the_configured_limit_is_refused_before_parsing() {
    let ca = TestCa::new("example.org").unwrap();
    let deep = ca
        .intermediate()
        .unwrap()
        .intermediate()
        .unwrap()
        .intermediate()
        .unwrap();
    let issued = deep.issue(CLIENT).unwrap();
    assert_eq!(issued.chain().len(), 4, "leaf + 3 intermediates");
    // The same valid chain: accepted with a limit of 3, refused with a limit of 2.
    let bundles = BundleSet::from(bundle(&ca));
    let accepted = verdict_with_limit(&ca, bundles.clone(), &issued, 3).await;
    assert_eq!(accepted.unwrap().to_string(), CLIENT);
    let refused = verdict_with_limit(&ca, bundles, &issued, 2)
        .await
        .unwrap_err();
    assert!(
        matches!(
            refused,
            TlsError::ChainTooLong {
                presented: 3,
                max: 2
            }
        ),
        "{refused}"
    );
    assert_eq!(refused.reason(), "chain_too_long");
    assert!(refused.is_certificate_rejection());
}

async fn verdict_with_limit(
    ca: &TestCa,
    bundles: BundleSet,
    client: &TestSvid,
    max: usize,
) -> Result<meshless::PeerIdentity, TlsError> {
    let issued = ca.issue_with_dns_sans(SERVER, &["localhost"]).unwrap();
    let source = TlsSource::new(crate::common::material(&issued, bundles));
    let acceptor = MtlsAcceptor::builder(source.clone())
        .max_intermediates(max)
        .build()
        .unwrap();
    let (addr, mut rx) = spawn_server(acceptor).await;
    let _ = talk(addr, client_config(&source, Some(client), expected(ca))).await;
    outcome(&mut rx).await
}

#[tokio::test]
async fn chains_deeper_than_the_default_limit_or_webpki_depth_are_refused() {
    let ca = TestCa::new("example.org").unwrap();
    let mut deep = ca.intermediate().unwrap();
    for _ in 0..6 {
        deep = deep.intermediate().unwrap();
    }
    let issued = deep.issue(CLIENT).unwrap();
    assert_eq!(issued.chain().len(), 8, "leaf + 7 intermediates");
    let default = present(issued.chain().to_vec(), key_of(&issued), |b| b).await;
    assert!(
        matches!(
            default,
            Err(TlsError::ChainTooLong {
                presented: 7,
                max: 6
            })
        ),
        "{default:?}"
    );
    // Raising our limit does not lift webpki's own bound on path depth.
    let raised = present(issued.chain().to_vec(), key_of(&issued), |b| {
        b.max_intermediates(20)
    })
    .await;
    match raised {
        // webpki bounds its work: the path depth (6 CAs) or, here where every
        // intermediate has the same name, the signature budget (100 checks).
        Err(TlsError::BadCertificate { reason, .. }) => assert!(
            reason.contains("MaximumPathDepthExceeded")
                || reason.contains("MaximumSignatureChecksExceeded"),
            "{reason}"
        ),
        other => panic!("expected a path depth refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn an_oversized_chain_is_refused_and_the_server_keeps_serving() {
    let ca = TestCa::new("example.org").unwrap();
    let issued = ca.issue(CLIENT).unwrap();
    // 200 copies of the root after the leaf: about 100 KB, beyond the 64 KiB a TLS
    // handshake message may carry.
    let mut chain = issued.chain().to_vec();
    chain.extend(std::iter::repeat_n(ca.root().clone(), 200));
    let size: usize = chain.iter().map(|c| c.len()).sum();
    assert!(size > 65_536, "{size}");
    let verdict = present(chain, key_of(&issued), |b| b).await;
    assert!(
        matches!(verdict, Err(TlsError::Handshake(_) | TlsError::Io(_))),
        "{verdict:?}"
    );
    // Under the message limit, the count limit refuses it.
    let mut chain = issued.chain().to_vec();
    chain.extend(std::iter::repeat_n(ca.root().clone(), 40));
    let verdict = present(chain, key_of(&issued), |b| b).await;
    assert!(
        matches!(verdict, Err(TlsError::ChainTooLong { presented: 40, .. })),
        "{verdict:?}"
    );
}

/// A self-signed SVID-shaped leaf carrying an opaque extension of `padding` bytes.
fn fat_leaf(padding: usize) -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
    let mut params = CertificateParams::default();
    params.subject_alt_names = vec![SanType::URI(CLIENT.try_into().unwrap())];
    params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
    params.custom_extensions = vec![CustomExtension::from_oid_content(
        &[1, 3, 6, 1, 4, 1, 55555, 1],
        Rng(7).bytes(padding),
    )];
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    (
        cert.der().clone(),
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    )
}

#[tokio::test]
async fn oversized_certificates_are_refused_and_the_server_keeps_serving() {
    // 50 KB: fits a handshake message, parsed, and refused as untrusted.
    let (cert, key) = fat_leaf(50_000);
    let verdict = present(vec![cert], key, |b| b).await;
    assert!(
        matches!(verdict, Err(TlsError::UntrustedCa { .. })),
        "{verdict:?}"
    );
    // 100 KB: beyond the handshake message limit, refused by rustls before parsing.
    let (cert, key) = fat_leaf(100_000);
    let verdict = present(vec![cert], key, |b| b).await;
    assert!(
        matches!(verdict, Err(TlsError::Handshake(_) | TlsError::Io(_))),
        "{verdict:?}"
    );
}

/// Sends `bytes` on a raw TCP connection and reads until the server closes; returns
/// what it sent back. Panics if the server keeps the connection open past `T`.
async fn send_raw(addr: std::net::SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let _ = tcp.write_all(bytes).await;
    let mut buf = Vec::new();
    match timeout(T, tcp.read_to_end(&mut buf)).await {
        Ok(_) => buf,
        Err(_) => panic!("the server kept a hostile connection open"),
    }
}

/// True when `reply` is empty or holds only TLS alert records (content type 21).
fn only_alerts(reply: &[u8]) -> bool {
    let mut rest = reply;
    while rest.len() >= 5 {
        let len = usize::from(u16::from_be_bytes([rest[3], rest[4]]));
        if rest[0] != 0x15 {
            return false;
        }
        rest = rest.get(5 + len..).unwrap_or_default();
    }
    true
}

#[tokio::test]
async fn garbage_after_or_instead_of_a_client_hello_is_refused() {
    // Noise can announce a long record and then stop: the handshake timeout closes it.
    let server = Server::start_with_timeout(Duration::from_secs(2)).await;
    let hello = client_hello();
    let mut rng = Rng(42);
    for round in 0..20 {
        let mut bytes = hello.clone();
        bytes.extend(rng.bytes(64 + round * 200));
        // The server answers the hello (ServerHello...) or an alert, then closes on
        // the garbage; it never gets as far as HTTP.
        let _ = send_raw(server.addr, &bytes).await;
        // A handshake record header followed by noise.
        let mut noise = vec![0x16, 0x03, 0x01];
        noise.extend(rng.bytes(10 + round * 50));
        let reply = send_raw(server.addr, &noise).await;
        assert!(only_alerts(&reply), "round {round}: {reply:02x?}");
        // A truncated hello: the connection ends, not the server.
        let reply = send_raw(server.addr, &hello[..hello.len() / 2 + round]).await;
        assert!(only_alerts(&reply), "{reply:02x?}");
    }
    assert_eq!(server.rec.calls(), 0);
    server.assert_serves().await;
}

/// A hand-made TLS 1.0 or 1.1 ClientHello (no extensions, one CBC suite).
fn legacy_hello(minor: u8) -> Vec<u8> {
    let mut body = vec![0x03, minor];
    body.extend([0x11; 32]); // random
    body.push(0); // session id
    body.extend([0x00, 0x04, 0x00, 0x2f, 0x00, 0x35]); // AES128-SHA, AES256-SHA
    body.extend([0x01, 0x00]); // null compression
    let mut hs = vec![0x01, 0x00, 0x00, body.len() as u8];
    hs.extend(body);
    let mut record = vec![0x16, 0x03, 0x01, 0x00, hs.len() as u8];
    record.extend(hs);
    record
}

#[tokio::test]
async fn tls_1_0_and_1_1_offers_are_refused() {
    let server = Server::start().await;
    for minor in [1, 2] {
        let reply = send_raw(server.addr, &legacy_hello(minor)).await;
        // A protocol_version (70) or handshake_failure (40) alert, or a bare close.
        assert!(only_alerts(&reply), "TLS 1.{}: {reply:02x?}", minor - 1);
        if reply.len() >= 7 {
            assert!(matches!(reply[6], 70 | 40), "alert {reply:02x?}");
        }
    }
    assert_eq!(server.rec.calls(), 0);
    server.assert_serves().await;
}

/// Client certificate, key and CA files for `openssl s_client`.
fn openssl_files(server: &Server, dir: &std::path::Path) -> [String; 3] {
    let issued = server.ca.issue(CLIENT).unwrap();
    let (cert, key) = issued.write_pem(dir, "client").unwrap();
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, server.ca.root_pem()).unwrap();
    [cert, key, ca].map(|p| p.display().to_string())
}

/// Runs `openssl s_client` with `args`, feeding `stdin` then waiting `linger` before
/// closing it; returns stdout + stderr. Bounded by killing it after `T`.
fn s_client(args: &[&str], stdin: &[u8], linger: Duration) -> String {
    let mut child = Command::new("openssl")
        .arg("s_client")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("openssl on PATH");
    let mut input = child.stdin.take().unwrap();
    let _ = input.write_all(stdin);
    std::thread::sleep(linger);
    drop(input);
    let deadline = std::time::Instant::now() + T;
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test]
async fn openssl_tls_1_0_and_1_1_clients_are_refused() {
    crate::common::require("openssl");
    let server = Server::start().await;
    let dir = tempfile::tempdir().unwrap();
    let [cert, key, ca] = openssl_files(&server, dir.path());
    let connect = format!("127.0.0.1:{}", server.addr.port());
    for version in ["-tls1", "-tls1_1"] {
        let args = [
            "-connect",
            &connect,
            version,
            "-cipher",
            "DEFAULT@SECLEVEL=0",
            "-cert",
            &cert,
            "-key",
            &key,
            "-CAfile",
            &ca,
        ];
        let out = tokio::task::spawn_blocking({
            let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
            move || {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                s_client(&args, b"", Duration::from_millis(200))
            }
        })
        .await
        .unwrap();
        // Either the local OpenSSL refuses to offer it, or our server refuses it: no
        // session is ever established.
        assert!(
            out.contains("Cipher is (NONE)") || out.contains("no protocols available"),
            "{version}: {out}"
        );
        assert!(
            !out.contains("BEGIN CERTIFICATE"),
            "{version} handshake completed: {out}"
        );
    }
    assert_eq!(server.rec.calls(), 0);
    server.assert_serves().await;
}

#[tokio::test]
async fn tls_1_2_renegotiation_is_refused() {
    crate::common::require("openssl");
    let server = Server::start().await;
    let dir = tempfile::tempdir().unwrap();
    let [cert, key, ca] = openssl_files(&server, dir.path());
    let connect = format!("127.0.0.1:{}", server.addr.port());
    let out = tokio::task::spawn_blocking(move || {
        let args = [
            "-connect", &connect, "-tls1_2", "-cert", &cert, "-key", &key, "-CAfile", &ca, "-alpn",
            "http/1.1",
        ];
        s_client(&args, b"R\n", Duration::from_secs(1))
    })
    .await
    .unwrap();
    // The first handshake completes (TLS 1.2 with our client certificate)...
    assert!(
        out.contains("Protocol  : TLSv1.2")
            || out.contains("Protocol: TLSv1.2")
            || out.contains("TLSv1.2"),
        "{out}"
    );
    assert!(out.contains("RENEGOTIATING"), "{out}");
    // ...and no second handshake does: nothing is verified after the attempt.
    let after = out.split("RENEGOTIATING").nth(1).unwrap_or("");
    assert!(
        !after.contains("verify return:"),
        "a renegotiation completed: {after}"
    );
    assert!(!after.contains("Verify return code: 0"), "{after}");
    assert_eq!(server.rec.calls(), 0);
    server.assert_serves().await;
}
