//! `meshless::serve` parks idle HTTP/1.1 keep-alive connections between requests (hyper's
//! connection is taken apart and rebuilt on the next request's bytes): at once when the
//! peer is not busy, within a second or two of going quiet when it is. Whatever arrives
//! around those moments must be answered exactly as one hyper connection would: pipelined
//! requests, heads split across packets, bodies the service did not read (never parsed as
//! a request), upgrades, `Connection: close`, and shutdown while parked.
//!
//! Raw HTTP/1.1 over a real mTLS connection (ALPN `http/1.1`), so each byte's timing is
//! the test's.

mod common;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper_util::rt::TokioIo;
use meshless::testing::TestCa;
use meshless::tls::MtlsAcceptor;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::time::{sleep, timeout};
use tokio_rustls::client::TlsStream;

/// Longer than the server needs to park an idle connection that is not busy (at once
/// when hyper has nothing left to do), and than the gap that makes one busy.
const PAUSE: Duration = Duration::from_millis(50);

/// Longer than two of the server's checks of busy connections for quiet (one second
/// each).
const QUIET: Duration = Duration::from_millis(2500);

type Seen = Arc<Mutex<Vec<String>>>;

/// Answers `<method> <path> <body bytes>`; reads the body unless the path starts with
/// `/ignore`; `/upgrade` switches protocols and echoes the raw stream.
fn app(
    seen: Seen,
) -> impl tower::Service<
    Request<Incoming>,
    Response = Response<Full<Bytes>>,
    Error = Infallible,
    Future = impl Future<Output = Result<Response<Full<Bytes>>, Infallible>> + Send,
> + Clone
+ Send
+ 'static {
    tower::service_fn(move |mut req: Request<Incoming>| {
        let seen = seen.clone();
        async move {
            let line = format!("{} {}", req.method(), req.uri().path());
            seen.lock().unwrap().push(line.clone());
            if req.uri().path() == "/upgrade" {
                let upgrade = hyper::upgrade::on(&mut req);
                tokio::spawn(async move {
                    let mut io = TokioIo::new(upgrade.await.unwrap());
                    let mut buf = [0; 64];
                    loop {
                        let n = io.read(&mut buf).await.unwrap();
                        if n == 0 {
                            break;
                        }
                        io.write_all(&buf[..n]).await.unwrap();
                    }
                });
                let response = Response::builder()
                    .status(StatusCode::SWITCHING_PROTOCOLS)
                    .header("connection", "upgrade")
                    .header("upgrade", "echo")
                    .body(Full::default())
                    .unwrap();
                return Ok(response);
            }
            let len = if req.uri().path().starts_with("/ignore") {
                0
            } else {
                req.into_body().collect().await.unwrap().to_bytes().len()
            };
            Ok(Response::new(Full::new(Bytes::from(format!(
                "{line} {len}"
            )))))
        }
    })
}

struct Server {
    addr: SocketAddr,
    ca: TestCa,
    seen: Seen,
    stop: Arc<Notify>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

async fn server() -> Server {
    let ca = TestCa::new("example.org").unwrap();
    let acceptor = MtlsAcceptor::new(server_source(&ca)).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Seen::default();
    let stop = Arc::new(Notify::new());
    let signal = {
        let stop = stop.clone();
        async move { stop.notified().await }
    };
    let task = tokio::spawn(meshless::serve_with_graceful_shutdown(
        listener,
        acceptor,
        app(seen.clone()),
        signal,
    ));
    Server {
        addr,
        ca,
        seen,
        stop,
        task,
    }
}

type Conn = BufReader<TlsStream<TcpStream>>;

/// An mTLS connection speaking HTTP/1.1 (by ALPN).
async fn connect(server: &Server) -> Conn {
    let client = server.ca.issue(CLIENT_ID).unwrap();
    let mut config = client_config(
        &server_source(&server.ca),
        Some(&client),
        expected(&server.ca),
    );
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let tls = timeout(STEP, connector.connect(name, tcp))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    BufReader::new(tls)
}

async fn send(conn: &mut Conn, bytes: &str) {
    conn.get_mut().write_all(bytes.as_bytes()).await.unwrap();
    conn.get_mut().flush().await.unwrap();
}

/// Reads one response: its status, its `connection` header, and its body (by
/// content-length).
async fn response(conn: &mut Conn) -> (u16, Option<String>, String) {
    timeout(STEP, async {
        let mut line = String::new();
        conn.read_line(&mut line).await.unwrap();
        let status: u16 = line
            .split(' ')
            .nth(1)
            .unwrap_or_else(|| panic!("not a status line: {line:?}"))
            .parse()
            .unwrap();
        let (mut len, mut connection) = (0, None);
        loop {
            line.clear();
            conn.read_line(&mut line).await.unwrap();
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            let (name, value) = header.split_once(':').unwrap();
            match name.to_ascii_lowercase().as_str() {
                "content-length" => len = value.trim().parse().unwrap(),
                "connection" => connection = Some(value.trim().to_ascii_lowercase()),
                _ => {}
            }
        }
        let mut body = vec![0; len];
        conn.read_exact(&mut body).await.unwrap();
        (status, connection, String::from_utf8(body).unwrap())
    })
    .await
    .expect("no response")
}

/// Sends `GET path` and expects the app's answer to it.
async fn get(conn: &mut Conn, path: &str) {
    send(conn, &format!("GET {path} HTTP/1.1\r\nhost: a\r\n\r\n")).await;
    expect_body(conn, &format!("GET {path} 0")).await;
}

async fn expect_body(conn: &mut Conn, body: &str) {
    let (status, _, got) = response(conn).await;
    assert_eq!((status, got.as_str()), (200, body));
}

/// The peer closed: EOF, without further bytes.
async fn expect_closed(conn: &mut Conn) {
    let mut rest = Vec::new();
    let read = timeout(STEP, conn.read_to_end(&mut rest))
        .await
        .expect("connection still open");
    // A clean close (close_notify) or a reset are both a close; bytes are not.
    if read.is_ok() {
        assert!(rest.is_empty(), "bytes after the end: {rest:?}");
    }
}

#[tokio::test]
async fn pipelined_and_split_requests_between_parked_periods_are_each_answered_once() {
    let server = server().await;
    let mut conn = connect(&server).await;

    get(&mut conn, "/one").await;
    sleep(PAUSE).await;

    // Two requests in one write, then a third whose head arrives in pieces.
    send(
        &mut conn,
        "GET /two HTTP/1.1\r\nhost: a\r\n\r\nPOST /three HTTP/1.1\r\nhost: a\r\ncontent-length: 3\r\n\r\nabc",
    )
    .await;
    expect_body(&mut conn, "GET /two 0").await;
    expect_body(&mut conn, "POST /three 3").await;
    sleep(PAUSE).await;
    for piece in ["GE", "T /fo", "ur HTTP/1.1\r\nho", "st: a\r\n", "\r\n"] {
        send(&mut conn, piece).await;
        sleep(PAUSE / 5).await;
    }
    expect_body(&mut conn, "GET /four 0").await;

    // A request and the first bytes of the next in one write: hyper holds those bytes
    // when the connection parks after the first response.
    send(&mut conn, "GET /five HTTP/1.1\r\nhost: a\r\n\r\nGET /si").await;
    expect_body(&mut conn, "GET /five 0").await;
    sleep(PAUSE).await;
    send(&mut conn, "x HTTP/1.1\r\nhost: a\r\n\r\n").await;
    expect_body(&mut conn, "GET /six 0").await;

    // A chunked body read by the service, then a plain request after a pause.
    send(
        &mut conn,
        "POST /seven HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\n\r\n4\r\nabcd\r\n0\r\n\r\n",
    )
    .await;
    expect_body(&mut conn, "POST /seven 4").await;
    sleep(PAUSE).await;
    get(&mut conn, "/eight").await;

    let seen = server.seen.lock().unwrap().clone();
    let expected = [
        "GET /one",
        "GET /two",
        "POST /three",
        "GET /four",
        "GET /five",
        "GET /six",
        "POST /seven",
        "GET /eight",
    ];
    assert_eq!(seen, expected);
}

#[tokio::test]
async fn a_busy_connection_that_goes_quiet_parks_with_its_pipelined_bytes() {
    let server = server().await;
    let mut conn = connect(&server).await;
    for i in 0..20 {
        get(&mut conn, &format!("/{i}")).await;
    }
    send(&mut conn, "GET /last HTTP/1.1\r\nhost: a\r\n\r\nGET /pa").await;
    expect_body(&mut conn, "GET /last 0").await;
    sleep(QUIET).await;
    send(&mut conn, "rt HTTP/1.1\r\nhost: a\r\n\r\n").await;
    expect_body(&mut conn, "GET /part 0").await;
    get(&mut conn, "/again").await;
    let seen = server.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 23, "{seen:?}");
    assert_eq!(seen[21..], ["GET /part", "GET /again"]);
}

#[tokio::test]
async fn a_body_the_service_did_not_read_is_never_taken_for_a_request() {
    let server = server().await;
    let mut conn = connect(&server).await;
    get(&mut conn, "/first").await;
    sleep(PAUSE).await;

    // The body, unread by the service, is itself a request; both of its parts arrive
    // after the response, around the moments the connection could park.
    let smuggled = "GET /smuggled HTTP/1.1\r\nhost: a\r\n\r\n";
    send(
        &mut conn,
        &format!(
            "POST /ignore HTTP/1.1\r\nhost: a\r\ncontent-length: {}\r\n\r\n",
            smuggled.len()
        ),
    )
    .await;
    let (status, connection, body) = response(&mut conn).await;
    assert_eq!((status, body.as_str()), (200, "POST /ignore 0"));
    sleep(PAUSE).await;
    send(&mut conn, &smuggled[..10]).await;
    sleep(PAUSE).await;
    let _ = conn.get_mut().write_all(&smuggled.as_bytes()[10..]).await;
    let _ = conn.get_mut().flush().await;
    sleep(PAUSE).await;
    let _ = conn
        .get_mut()
        .write_all(b"GET /after HTTP/1.1\r\nhost: a\r\n\r\n")
        .await;
    // hyper either closes the connection (it does not wait for a body nobody reads) or
    // drains the body and answers the next request as itself.
    let open = !timeout(STEP, conn.fill_buf())
        .await
        .unwrap()
        .map_or(true, |b| b.is_empty());
    if open {
        assert_ne!(connection.as_deref(), Some("close"));
        expect_body(&mut conn, "GET /after 0").await;
    }
    let seen = server.seen.lock().unwrap().clone();
    assert!(
        !seen.iter().any(|s| s.contains("smuggled")),
        "a body was served as a request: {seen:?}"
    );
}

#[tokio::test]
async fn an_upgrade_on_a_connection_that_parked_gets_the_raw_stream() {
    let server = server().await;
    let mut conn = connect(&server).await;
    get(&mut conn, "/before").await;
    sleep(PAUSE).await;
    send(
        &mut conn,
        "GET /upgrade HTTP/1.1\r\nhost: a\r\nconnection: upgrade\r\nupgrade: echo\r\n\r\n",
    )
    .await;
    let (status, _, _) = response(&mut conn).await;
    assert_eq!(status, 101);
    // Idle long enough to park, were it still HTTP.
    sleep(PAUSE).await;
    send(&mut conn, "ping").await;
    let mut echo = [0; 4];
    timeout(STEP, conn.read_exact(&mut echo))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&echo, b"ping");
}

#[tokio::test]
async fn connection_close_is_honoured_after_parking() {
    let server = server().await;
    let mut conn = connect(&server).await;
    get(&mut conn, "/a").await;
    sleep(PAUSE).await;
    send(
        &mut conn,
        "GET /b HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n",
    )
    .await;
    let (status, connection, body) = response(&mut conn).await;
    assert_eq!((status, body.as_str()), (200, "GET /b 0"));
    assert_eq!(connection.as_deref(), Some("close"));
    expect_closed(&mut conn).await;
}

#[tokio::test]
async fn graceful_shutdown_closes_parked_connections_and_returns() {
    let server = server().await;
    let mut conns = Vec::new();
    for i in 0..3 {
        let mut conn = connect(&server).await;
        get(&mut conn, &format!("/{i}")).await;
        conns.push(conn);
    }
    sleep(PAUSE).await;
    server.stop.notify_one();
    for conn in &mut conns {
        expect_closed(conn).await;
    }
    timeout(STEP, server.task).await.unwrap().unwrap().unwrap();
}
