//! Full mTLS handshakes per second, `MtlsAcceptor` against a bare tokio-rustls acceptor
//! with `WebPkiClientVerifier` on the same certificates, as a ratio from interleaved
//! rounds in one run (robust to a machine whose load drifts; the criterion bench
//! `benches/handshake.rs` measures the same thing).
//!
//! `cargo run --release --features testing --example handshake_ratio -- [ROUNDS]`
//!
//! Each round runs 200 handshakes (TCP connect, TLS 1.3 without resumption, one byte
//! from the server after its accept returned) against each server, alternating which
//! goes first; the medians of the per-round averages are compared.

use meshless::testing::TestCa;
use meshless::tls::*;
use rustls::client::Resumption;
use rustls::server::{NoServerSessionStorage, WebPkiClientVerifier};
use rustls_pki_types::ServerName;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let ca = TestCa::new("example.org").unwrap();
    let server = ca
        .issue_with_dns_sans("spiffe://example.org/s", &["localhost"])
        .unwrap();
    let client = ca.issue("spiffe://example.org/c").unwrap();
    let bundle = TrustBundle::new(ca.trust_domain().clone(), vec![ca.root().clone()]).unwrap();
    let source = TlsSource::new(
        TlsMaterial::new(
            Svid::new(server.chain().to_vec(), server.key()).unwrap(),
            bundle,
        )
        .unwrap(),
    );
    let verifier = SpiffeServerVerifier::new(source.clone(), ca.trust_domain().clone());
    let mut cc = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_client_auth_cert(client.chain().to_vec(), client.key())
        .unwrap();
    cc.resumption = Resumption::disabled();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(cc));

    let acceptor = MtlsAcceptor::new(source.clone()).unwrap();
    let l1 = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let a1 = l1.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = l1.accept().await {
            let acc = acceptor.clone();
            tokio::spawn(async move {
                if let Ok((mut s, _)) = acc.accept(tcp).await {
                    let _ = s.write_all(b"k").await;
                }
            });
        }
    });

    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.root().clone()).unwrap();
    let v = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
        .build()
        .unwrap();
    let mut sc = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(v)
        .with_single_cert(server.chain().to_vec(), server.key())
        .unwrap();
    sc.session_storage = Arc::new(NoServerSessionStorage {});
    sc.send_tls13_tickets = 0;
    sc.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let bare = tokio_rustls::TlsAcceptor::from(Arc::new(sc));
    let l2 = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let a2 = l2.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = l2.accept().await {
            let acc = bare.clone();
            tokio::spawn(async move {
                if let Ok(mut s) = acc.accept(tcp).await {
                    let _ = s.write_all(b"k").await;
                }
            });
        }
    });

    let rounds: usize = std::env::args().nth(1).map_or(20, |r| r.parse().unwrap());
    let per_round = 200u32;
    let mut times: [Vec<Duration>; 2] = [Vec::new(), Vec::new()];
    for round in 0..rounds {
        // Alternate which goes first, so neither always runs on a warmer machine.
        let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for which in order {
            let addr = [a2, a1][which];
            let t = Instant::now();
            for _ in 0..per_round {
                let tcp = TcpStream::connect(addr).await.unwrap();
                tcp.set_nodelay(true).unwrap();
                let mut tls = connector
                    .connect(ServerName::try_from("localhost").unwrap(), tcp)
                    .await
                    .unwrap();
                let mut b = [0u8; 1];
                tls.read_exact(&mut b).await.unwrap();
            }
            times[which].push(t.elapsed() / per_round);
        }
    }
    for t in &mut times {
        t.sort();
    }
    let median = |t: &Vec<Duration>| t[t.len() / 2];
    let (bare, ours) = (median(&times[0]), median(&times[1]));
    println!("rounds={rounds} handshakes_per_round={per_round}");
    println!(
        "bare tokio-rustls + WebPkiClientVerifier: median {bare:?}/handshake ({:.0}/s)",
        1.0 / bare.as_secs_f64()
    );
    println!(
        "meshless MtlsAcceptor:                    median {ours:?}/handshake ({:.0}/s)",
        1.0 / ours.as_secs_f64()
    );
    println!(
        "throughput ratio meshless/bare: {:.3}",
        bare.as_secs_f64() / ours.as_secs_f64()
    );
}
