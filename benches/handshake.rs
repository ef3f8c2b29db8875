//! Full mutual-TLS handshakes per second: `MtlsAcceptor` (SPIFFE verification, bundle
//! per trust domain, SVID rules) against a bare tokio-rustls acceptor with rustls'
//! `WebPkiClientVerifier`, on the same certificates, in the same run.
//!
//! Each iteration: TCP connect over loopback, full TLS 1.3 handshake (no resumption on
//! either side), and one byte written by the server after its accept returned, so the
//! server-side client-certificate verification is inside the measured time. The client
//! is the same for both, and each measured handshake alternates with one against the
//! other server so that both series see the same machine conditions.
//! `examples/handshake_ratio.rs` measures the same ratio from interleaved rounds.
//!
//! `cargo bench --features testing --bench handshake`

use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use meshless::testing::TestCa;
use meshless::tls::{
    MtlsAcceptor, SpiffeServerVerifier, Svid, TlsMaterial, TlsSource, TrustBundle, provider,
};
use rustls::RootCertStore;
use rustls::client::Resumption;
use rustls::server::{NoServerSessionStorage, WebPkiClientVerifier};
use rustls_pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};

struct Pki {
    server_source: TlsSource,
    server: meshless::testing::TestSvid,
    client: meshless::testing::TestSvid,
    ca: TestCa,
}

fn pki() -> Pki {
    let ca = TestCa::new("example.org").unwrap();
    let server = ca
        .issue_with_dns_sans("spiffe://example.org/ns/shop/sa/server", &["localhost"])
        .unwrap();
    let client = ca.issue("spiffe://example.org/ns/web/sa/client").unwrap();
    let bundle = TrustBundle::new(ca.trust_domain().clone(), vec![ca.root().clone()]).unwrap();
    let svid = Svid::new(server.chain().to_vec(), server.key()).unwrap();
    let server_source = TlsSource::new(TlsMaterial::new(svid, bundle).unwrap());
    Pki {
        server_source,
        server,
        client,
        ca,
    }
}

fn client(pki: &Pki) -> TlsConnector {
    let verifier =
        SpiffeServerVerifier::new(pki.server_source.clone(), pki.ca.trust_domain().clone());
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_client_auth_cert(pki.client.chain().to_vec(), pki.client.key())
        .unwrap();
    config.resumption = Resumption::disabled();
    TlsConnector::from(Arc::new(config))
}

async fn spawn_meshless(pki: &Pki) -> SocketAddr {
    let acceptor = MtlsAcceptor::new(pki.server_source.clone()).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok((mut stream, peer)) = acceptor.accept(tcp).await {
                    black_box(peer);
                    let _ = stream.write_all(b"k").await;
                    let _ = stream.flush().await;
                }
            });
        }
    });
    addr
}

async fn spawn_bare(pki: &Pki) -> SocketAddr {
    let mut roots = RootCertStore::empty();
    roots.add(pki.ca.root().clone()).unwrap();
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
        .build()
        .unwrap();
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(pki.server.chain().to_vec(), pki.server.key())
        .unwrap();
    config.session_storage = Arc::new(NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(mut stream) = acceptor.accept(tcp).await {
                    black_box(stream.get_ref().1.peer_certificates());
                    let _ = stream.write_all(b"k").await;
                    let _ = stream.flush().await;
                }
            });
        }
    });
    addr
}

async fn handshake(connector: &TlsConnector, addr: SocketAddr) {
    let tcp = TcpStream::connect(addr).await.unwrap();
    tcp.set_nodelay(true).unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let mut tls = connector.connect(name, tcp).await.unwrap();
    let mut byte = [0u8; 1];
    tls.read_exact(&mut byte).await.unwrap();
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let pki = pki();
    let connector = client(&pki);
    let (meshless_addr, bare_addr) =
        rt.block_on(async { (spawn_meshless(&pki).await, spawn_bare(&pki).await) });
    // Each measured handshake is preceded by an unmeasured one against the other
    // server, so both series run under the same conditions (machine load, sockets in
    // TIME_WAIT) rather than one after the other.
    let interleaved = |target: SocketAddr, other: SocketAddr| {
        let connector = connector.clone();
        let rt = &rt;
        move |iters: u64| {
            rt.block_on(async {
                let mut measured = Duration::ZERO;
                for _ in 0..iters {
                    handshake(&connector, other).await;
                    let start = Instant::now();
                    handshake(&connector, target).await;
                    measured += start.elapsed();
                }
                measured
            })
        }
    };
    let mut group = c.benchmark_group("mtls_handshake");
    group.bench_function("bare_tokio_rustls_webpki", |b| {
        b.iter_custom(interleaved(bare_addr, meshless_addr))
    });
    group.bench_function("meshless_mtls_acceptor", |b| {
        b.iter_custom(interleaved(meshless_addr, bare_addr))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
