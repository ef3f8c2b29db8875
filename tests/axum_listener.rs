//! `MtlsListener` under `axum::serve`, over real loopback mTLS with certificates made at
//! test time: a handshake that never completes, a client silent after its handshake, a
//! request head that stops half-way and an idle keep-alive connection (HTTP/1.1 and
//! HTTP/2) are all closed at the listener's configured bounds, while a connection in
//! use stays open.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use common::*;
use meshless::testing::TestCa;
use meshless::tls::MtlsAcceptor;
use meshless::{MtlsListener, PeerIdentity};
use rustls_pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;
use tokio_rustls::client::TlsStream;

/// Long enough never to fire during a test.
const NEVER: Duration = Duration::from_secs(3600);
/// Short enough to fire well within a test's bounded waits.
const SHORT: Duration = Duration::from_millis(300);

const REQUEST: &[u8] = b"GET /whoami HTTP/1.1\r\nHost: localhost\r\n\r\n";
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// An empty SETTINGS frame: length 0, type 4, no flags, stream 0.
const H2_SETTINGS: &[u8] = &[0, 0, 0, 4, 0, 0, 0, 0, 0];

async fn whoami(peer: PeerIdentity) -> String {
    format!("you are {peer}")
}

/// An axum app served over an `MtlsListener` with these timeouts.
async fn start(handshake: Duration, first_byte: Duration, idle: Duration) -> (TestCa, SocketAddr) {
    let ca = TestCa::new("example.org").unwrap();
    let acceptor = MtlsAcceptor::builder(server_source(&ca))
        .handshake_timeout(handshake)
        .build()
        .unwrap();
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    let listener = MtlsListener::builder(tcp, acceptor)
        .first_byte_timeout(first_byte)
        .idle_timeout(idle)
        .build();
    let app = Router::new().route("/whoami", get(whoami));
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<PeerIdentity>(),
        )
        .await
    });
    (ca, addr)
}

/// A client that completes its mTLS handshake, offering `alpn`.
async fn connect(ca: &TestCa, addr: SocketAddr, alpn: &[&[u8]]) -> TlsStream<TcpStream> {
    let issued = ca.issue(CLIENT_ID).unwrap();
    let mut config = client_config(&server_source(ca), Some(&issued), expected(ca));
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = timeout(STEP, TcpStream::connect(addr))
        .await
        .unwrap()
        .unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    timeout(STEP, connector.connect(name, tcp))
        .await
        .unwrap()
        .unwrap()
}

/// Reads until the server closes the connection (EOF or error), which must happen
/// within the bounded wait; returns what it sent before.
async fn until_closed(stream: &mut (impl AsyncReadExt + Unpin)) -> Vec<u8> {
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match timeout(STEP, stream.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => return received,
            Ok(Ok(n)) => received.extend_from_slice(&buf[..n]),
            Err(_) => panic!(
                "the server kept a quiet connection open; it had sent {:?}",
                String::from_utf8_lossy(&received)
            ),
        }
    }
}

/// Reads one response to [`REQUEST`] (its body is short and ends the read).
async fn response(stream: &mut TlsStream<TcpStream>) -> String {
    let mut text = String::new();
    let mut buf = [0u8; 4096];
    while !text.contains(&format!("you are {CLIENT_ID}")) {
        let n = timeout(STEP, stream.read(&mut buf)).await.unwrap().unwrap();
        assert_ne!(n, 0, "closed before the response: {text:?}");
        text.push_str(std::str::from_utf8(&buf[..n]).unwrap());
    }
    text
}

#[tokio::test]
async fn a_handshake_that_never_completes_is_closed_at_the_handshake_timeout() {
    let (_ca, addr) = start(SHORT, NEVER, NEVER).await;
    let mut silent = TcpStream::connect(addr).await.unwrap();
    let mut stalled = TcpStream::connect(addr).await.unwrap();
    // Half a ClientHello record header.
    stalled.write_all(&[0x16, 0x03, 0x01]).await.unwrap();
    assert!(until_closed(&mut silent).await.is_empty());
    assert!(until_closed(&mut stalled).await.is_empty());
}

#[tokio::test]
async fn a_client_silent_after_its_handshake_is_closed_at_the_first_byte_timeout() {
    let (ca, addr) = start(NEVER, SHORT, NEVER).await;
    for alpn in [&[][..], &[&b"http/1.1"[..]], &[&b"h2"[..]]] {
        let mut tls = connect(&ca, addr, alpn).await;
        let sent = until_closed(&mut tls).await;
        assert!(sent.is_empty(), "{alpn:?}: {sent:?}");
    }
}

#[tokio::test]
async fn a_request_head_that_stops_half_way_is_closed_at_the_idle_timeout() {
    let (ca, addr) = start(NEVER, NEVER, SHORT).await;
    let mut tls = connect(&ca, addr, &[b"http/1.1"]).await;
    tls.write_all(&REQUEST[..20]).await.unwrap();
    let sent = until_closed(&mut tls).await;
    assert!(sent.is_empty(), "{sent:?}");
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_at_the_idle_timeout() {
    let (ca, addr) = start(NEVER, NEVER, SHORT).await;
    // HTTP/1.1: one request is served, then the connection idles.
    let mut tls = connect(&ca, addr, &[b"http/1.1"]).await;
    tls.write_all(REQUEST).await.unwrap();
    let sent = String::from_utf8(until_closed(&mut tls).await).unwrap();
    assert!(sent.starts_with("HTTP/1.1 200"), "{sent}");
    assert!(sent.ends_with(&format!("you are {CLIENT_ID}")), "{sent}");
    // HTTP/2: the server answers the preface with its SETTINGS, then the connection
    // idles (hyper sends no pings unless configured to).
    let mut tls = connect(&ca, addr, &[b"h2"]).await;
    tls.write_all(H2_PREFACE).await.unwrap();
    tls.write_all(H2_SETTINGS).await.unwrap();
    let sent = until_closed(&mut tls).await;
    assert_eq!(sent.get(3), Some(&4), "a SETTINGS frame first: {sent:?}");
}

#[tokio::test]
async fn a_connection_in_use_outlives_its_idle_timeout() {
    // Requests 50 ms apart for three idle periods: every period sees traffic.
    let idle = Duration::from_secs(1);
    let (ca, addr) = start(NEVER, idle, idle).await;
    let mut tls = connect(&ca, addr, &[b"http/1.1"]).await;
    let started = tokio::time::Instant::now();
    while started.elapsed() < 3 * idle {
        tls.write_all(REQUEST).await.unwrap();
        let text = response(&mut tls).await;
        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
