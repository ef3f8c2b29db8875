//! `meshless::serve`: permissive mode, stalled handshakes, graceful shutdown, and the
//! axum listener and extractor.

mod common;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Bytes, Incoming};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use meshless::testing::{TestCa, client_hello};
use meshless::tls::{MtlsAcceptor, MtlsConnector, TlsSource};
use meshless::{PeerIdentity, Unauthenticated};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::time::timeout;

fn hello() -> impl tower::Service<
    Request<Incoming>,
    Response = Response<String>,
    Error = Infallible,
    Future = impl Future<Output = Result<Response<String>, Infallible>> + Send,
> + Clone
+ Send
+ 'static {
    tower::service_fn(|req: Request<Incoming>| async move {
        let peer = req.extensions().get::<PeerIdentity>().unwrap().clone();
        Ok::<_, Infallible>(Response::new(format!("hello {peer}")))
    })
}

fn client_connector(ca: &TestCa) -> MtlsConnector {
    let source = TlsSource::new(material(&ca.issue(CLIENT_ID).unwrap(), bundle(ca)));
    MtlsConnector::new(source, ca.trust_domain().clone()).unwrap()
}

async fn body_of(response: Response<Incoming>) -> String {
    let bytes = timeout(STEP, response.into_body().collect())
        .await
        .unwrap()
        .unwrap();
    String::from_utf8(bytes.to_bytes().to_vec()).unwrap()
}

async fn mtls_get(ca: &TestCa, addr: SocketAddr, path: &str) -> Response<Incoming> {
    let client: Client<_, Empty<Bytes>> =
        Client::builder(TokioExecutor::new()).build(client_connector(ca));
    let uri = format!("https://127.0.0.1:{}{path}", addr.port())
        .parse()
        .unwrap();
    timeout(STEP, client.get(uri)).await.unwrap().unwrap()
}

#[tokio::test]
async fn permissive_mode_serves_plaintext_and_mtls_on_one_port() {
    let ca = TestCa::new("example.org").unwrap();
    let acceptor = MtlsAcceptor::builder(server_source(&ca))
        .permissive()
        .build()
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(meshless::serve(listener, acceptor, hello()));

    let plain: Client<_, Empty<Bytes>> =
        Client::builder(TokioExecutor::new()).build(HttpConnector::new());
    let uri = format!("http://127.0.0.1:{}/", addr.port())
        .parse()
        .unwrap();
    let response = timeout(STEP, plain.get(uri)).await.unwrap().unwrap();
    let expected = PeerIdentity::unauthenticated(Unauthenticated::Plaintext);
    assert_eq!(body_of(response).await, format!("hello {expected}"));

    let response = mtls_get(&ca, addr, "/").await;
    assert_eq!(body_of(response).await, format!("hello {CLIENT_ID}"));
}

#[tokio::test]
async fn a_silent_client_delays_nobody_and_is_closed_at_its_timeout() {
    let ca = TestCa::new("example.org").unwrap();
    let acceptor = MtlsAcceptor::builder(server_source(&ca))
        .first_byte_timeout(Duration::from_millis(500))
        .handshake_timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(meshless::serve(listener, acceptor, hello()));

    // Opens a connection and sends nothing.
    let mut silent = TcpStream::connect(addr).await.unwrap();
    // A TLS client that stops after half a ClientHello record header.
    let mut stalled = TcpStream::connect(addr).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut stalled, &[0x16, 0x03, 0x01])
        .await
        .unwrap();

    // A well-behaved client is served while both are still open.
    let response = mtls_get(&ca, addr, "/").await;
    assert_eq!(body_of(response).await, format!("hello {CLIENT_ID}"));

    // Both are then closed by the server (EOF or reset), within the bounded wait.
    for stream in [&mut silent, &mut stalled] {
        let mut buf = [0u8; 16];
        match timeout(STEP, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {}
            Ok(Ok(n)) => panic!("server sent {n} bytes to a client that never finished"),
            Err(_) => panic!("the server never closed a stalled handshake"),
        }
    }
}

/// A client that sends a whole ClientHello from `source` and then nothing more.
async fn stalled_after_hello(addr: SocketAddr, source: &str) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    let mut stream = socket.connect(addr).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut stream, &client_hello())
        .await
        .unwrap();
    stream
}

/// Spawns `serve` with `acceptor` and a task making one mTLS request; returns that task.
async fn serve_and_request(
    ca: &TestCa,
    acceptor: MtlsAcceptor,
) -> (SocketAddr, impl FnOnce() -> tokio::task::JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(meshless::serve(listener, acceptor, hello()));
    let connector = client_connector(ca);
    let request = move || {
        tokio::spawn(async move {
            let client: Client<_, Empty<Bytes>> =
                Client::builder(TokioExecutor::new()).build(connector);
            let uri = format!("https://127.0.0.1:{}/", addr.port())
                .parse()
                .unwrap();
            body_of(client.get(uri).await.unwrap()).await
        })
    };
    (addr, request)
}

#[tokio::test]
async fn handshakes_beyond_the_bound_wait_for_a_slot() {
    let ca = TestCa::new("example.org").unwrap();
    let acceptor = MtlsAcceptor::builder(server_source(&ca))
        .max_concurrent_handshakes(1)
        .build()
        .unwrap();
    let (addr, request) = serve_and_request(&ca, acceptor).await;

    // The only slot is taken by a client that sent its ClientHello and stopped.
    let stalled = stalled_after_hello(addr, "127.0.0.1").await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let waiting = request();
    // While the slot is held, the second handshake cannot complete, however long we
    // look; once the stalled client leaves, it does.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiting.is_finished(), "a handshake ran beyond the bound");
    drop(stalled);
    let body = timeout(STEP, waiting).await.unwrap().unwrap();
    assert_eq!(body, format!("hello {CLIENT_ID}"));
}

#[tokio::test]
async fn silent_and_dribbling_clients_hold_no_handshake_slot() {
    let ca = TestCa::new("example.org").unwrap();
    let acceptor = MtlsAcceptor::builder(server_source(&ca))
        .max_concurrent_handshakes(2)
        .build()
        .unwrap();
    let (addr, request) = serve_and_request(&ca, acceptor).await;

    // Five times as many silent clients as slots, and as many sending part of a
    // ClientHello (its first 40 bytes): none of them holds a slot.
    let hello = client_hello();
    let mut held = Vec::new();
    for _ in 0..10 {
        held.push(TcpStream::connect(addr).await.unwrap());
        let mut dribbling = TcpStream::connect(addr).await.unwrap();
        tokio::io::AsyncWriteExt::write_all(&mut dribbling, &hello[..40])
            .await
            .unwrap();
        held.push(dribbling);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    // A good client is served at once (well within the 5 s first-byte and 10 s
    // handshake timeouts that would otherwise free the slots).
    let body = timeout(Duration::from_secs(3), request())
        .await
        .expect("a good client waited behind silent or dribbling connections")
        .unwrap();
    assert_eq!(body, format!("hello {CLIENT_ID}"));
    drop(held);
}

#[tokio::test]
async fn one_source_cannot_take_every_handshake_slot() {
    let ca = TestCa::new("example.org").unwrap();
    let acceptor = MtlsAcceptor::builder(server_source(&ca))
        .max_concurrent_handshakes(4)
        .max_handshakes_per_source(2)
        .build()
        .unwrap();
    let (addr, request) = serve_and_request(&ca, acceptor).await;

    // 127.0.0.2 completes ClientHellos and stalls, more of them than there are slots.
    let mut stalled = Vec::new();
    for _ in 0..6 {
        stalled.push(stalled_after_hello(addr, "127.0.0.2").await);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    // It holds its share (2), so a client from 127.0.0.1 still finds a slot.
    let body = timeout(Duration::from_secs(3), request())
        .await
        .expect("one source took every handshake slot")
        .unwrap();
    assert_eq!(body, format!("hello {CLIENT_ID}"));
    drop(stalled);
}

#[tokio::test]
async fn a_silent_connection_is_closed_at_the_first_byte_timeout() {
    let ca = TestCa::new("example.org").unwrap();
    let acceptor = MtlsAcceptor::builder(server_source(&ca))
        .first_byte_timeout(Duration::from_millis(200))
        .handshake_timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let (addr, _) = serve_and_request(&ca, acceptor).await;
    let mut silent = TcpStream::connect(addr).await.unwrap();
    let mut slow = TcpStream::connect(addr).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut slow, &[0x16])
        .await
        .unwrap();
    let mut buf = [0u8; 16];
    match timeout(Duration::from_secs(5), silent.read(&mut buf)).await {
        Ok(Ok(0) | Err(_)) => {}
        other => panic!("a silent connection was not closed: {other:?}"),
    }
    // A peer that did send its first byte is held to the (longer) handshake timeout.
    assert!(
        timeout(Duration::from_millis(500), slow.read(&mut buf))
            .await
            .is_err(),
        "a connection that had started its handshake was closed at the first-byte timeout"
    );
}

#[tokio::test]
async fn graceful_shutdown_stops_accepting_and_drains_in_flight_requests() {
    let ca = TestCa::new("example.org").unwrap();
    let acceptor = MtlsAcceptor::new(server_source(&ca)).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let entered = Arc::new(Notify::new());
    let release = Arc::new(Notify::new());
    let service = {
        let (entered, release) = (entered.clone(), release.clone());
        tower::service_fn(move |_req: Request<Incoming>| {
            let (entered, release) = (entered.clone(), release.clone());
            async move {
                entered.notify_one();
                release.notified().await;
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::from("finished"))))
            }
        })
    };
    let stop = Arc::new(Notify::new());
    let signal = {
        let stop = stop.clone();
        async move { stop.notified().await }
    };
    let server = tokio::spawn(meshless::serve_with_graceful_shutdown(
        listener, acceptor, service, signal,
    ));

    let in_flight = {
        let ca_client = client_connector(&ca);
        tokio::spawn(async move {
            let client: Client<_, Empty<Bytes>> =
                Client::builder(TokioExecutor::new()).build(ca_client);
            let uri = format!("https://127.0.0.1:{}/", addr.port())
                .parse()
                .unwrap();
            let response = client.get(uri).await.unwrap();
            let status = response.status();
            (status, body_of(response).await)
        })
    };
    timeout(STEP, entered.notified()).await.unwrap();
    stop.notify_one();

    // New connections are refused once the listener is closed.
    timeout(STEP, async {
        while TcpStream::connect(addr).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("listener still accepting after shutdown");
    assert!(!server.is_finished(), "server returned before draining");

    release.notify_one();
    let (status, body) = timeout(STEP, in_flight).await.unwrap().unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, "finished");
    timeout(STEP, server).await.unwrap().unwrap().unwrap();
}

#[cfg(feature = "axum")]
mod with_axum {
    use super::*;
    use axum::Router;
    use axum::routing::get;
    use meshless::MtlsListener;

    async fn whoami(peer: PeerIdentity) -> String {
        format!("you are {peer}")
    }

    #[tokio::test]
    async fn axum_serve_over_the_mtls_listener_gives_handlers_the_peer() {
        let ca = TestCa::new("example.org").unwrap();
        let acceptor = MtlsAcceptor::new(server_source(&ca)).unwrap();
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = tcp.local_addr().unwrap();
        let app = Router::new().route("/whoami", get(whoami));
        let listener = MtlsListener::new(tcp, acceptor);
        tokio::spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<PeerIdentity>(),
            )
            .await
        });
        // A stalled client does not hold up axum's serial accept.
        let _silent = TcpStream::connect(addr).await.unwrap();
        let response = mtls_get(&ca, addr, "/whoami").await;
        assert_eq!(body_of(response).await, format!("you are {CLIENT_ID}"));
    }

    #[tokio::test]
    async fn an_axum_router_under_meshless_serve_extracts_the_peer() {
        let ca = TestCa::new("example.org").unwrap();
        let acceptor = MtlsAcceptor::new(server_source(&ca)).unwrap();
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = tcp.local_addr().unwrap();
        let app = Router::new().route("/whoami", get(whoami));
        tokio::spawn(meshless::serve(tcp, acceptor, app));
        let response = mtls_get(&ca, addr, "/whoami").await;
        assert_eq!(body_of(response).await, format!("you are {CLIENT_ID}"));
    }

    #[tokio::test]
    async fn the_extractor_fails_closed_without_meshless_in_front() {
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = tcp.local_addr().unwrap();
        let app = Router::new().route("/whoami", get(whoami));
        tokio::spawn(async move { axum::serve(tcp, app).await });
        let client: Client<_, Empty<Bytes>> =
            Client::builder(TokioExecutor::new()).build(HttpConnector::new());
        let uri = format!("http://127.0.0.1:{}/whoami", addr.port())
            .parse()
            .unwrap();
        let response = timeout(STEP, client.get(uri)).await.unwrap().unwrap();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!body_of(response).await.contains("you are"));
    }
}

#[tokio::test]
async fn an_acceptor_counts_handshakes_into_its_own_metrics() {
    let ca = TestCa::new("example.org").unwrap();
    let metrics = Arc::new(meshless::metrics::Metrics::new());
    let acceptor = MtlsAcceptor::builder(server_source(&ca))
        .metrics(metrics.clone())
        .build()
        .unwrap();
    let (addr, request) = serve_and_request(&ca, acceptor).await;
    assert_eq!(request().await.unwrap(), format!("hello {CLIENT_ID}"));
    let mut plain = TcpStream::connect(addr).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut plain, b"GET / HTTP/1.1\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 64];
    let _ = timeout(STEP, plain.read(&mut buf)).await;
    let text = metrics.render();
    assert!(text.contains(r#"result="success""#), "{text}");
    assert!(text.contains("plaintext_in_strict_mode"), "{text}");
}
