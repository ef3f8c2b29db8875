//! Faults: slow clients, corrupt and missing certificate files, graceful shutdown
//! under load, and (ignored, slow) a flood of idle mTLS connections.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::StatusCode;
use http_body_util::Empty;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use meshless::metrics::Metrics;
use meshless::policy::{Policy, PolicyHandle};
use meshless::testing::TestCa;
use meshless::tls::{FileSource, MtlsAcceptor};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

use crate::support::{CLIENT, POLICY, SERVER, Server, T, client_hello, counter, request};

/// Waits (bounded) until the server closes `tcp`: EOF, reset or a failed write.
async fn closed_by_server(mut tcp: TcpStream, trickle: Option<Vec<u8>>) -> Duration {
    let start = Instant::now();
    let work = async {
        if let Some(bytes) = trickle {
            for b in bytes {
                if tcp.write_all(&[b]).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        let mut buf = [0u8; 64];
        loop {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    // The trickle also reads nothing back: a write fails once the server has closed.
    timeout(T, work)
        .await
        .expect("a slow client was never closed");
    start.elapsed()
}

#[tokio::test]
async fn slow_and_silent_clients_delay_nobody_and_are_closed_at_the_handshake_timeout() {
    let ca = Arc::new(TestCa::new("example.org").unwrap());
    let acceptor = MtlsAcceptor::builder(ca.tls_source(SERVER).unwrap())
        .first_byte_timeout(Duration::from_secs(1))
        .handshake_timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let policy = PolicyHandle::new(Policy::from_yaml(POLICY).unwrap());
    let server = Server::start_with(ca, acceptor, policy).await;
    let hello = client_hello();
    let mut waiting = Vec::new();
    for i in 0..300 {
        let tcp = TcpStream::connect(server.addr).await.unwrap();
        // Most say nothing; every tenth sends a real ClientHello one byte per 100 ms.
        let trickle = (i % 10 == 0).then(|| hello.clone());
        waiting.push(tokio::spawn(closed_by_server(tcp, trickle)));
    }
    // Well-behaved clients are served while all of them hang on.
    for _ in 0..5 {
        server.assert_serves().await;
    }
    let mut slowest = Duration::ZERO;
    for task in waiting {
        slowest = slowest.max(task.await.unwrap());
    }
    println!(
        "figure: 300 slow clients (30 trickling a ClientHello) all closed; slowest after {slowest:?} (first-byte and handshake timeouts 1 s)"
    );
    assert_eq!(server.rec.calls(), 5);
}

/// Completes the mTLS handshake as [`CLIENT`] (ALPN `http/1.1`, or `h2`), then sends
/// `head` one byte every 500 ms (nothing at all when empty) and waits, bounded, until
/// the server closes.
async fn silent_after_handshake(server: &Server, head: &'static [u8], h2: bool) -> Duration {
    let connector = server.connector(CLIENT);
    let connector = if h2 {
        connector
    } else {
        connector.http1_only()
    };
    let conn = timeout(T, connector.connect(server.url("/").parse().unwrap()))
        .await
        .unwrap()
        .unwrap();
    let (mut tls, _) = conn.into_inner();
    let start = Instant::now();
    let work = async {
        for b in head {
            if tls.write_all(&[*b]).await.is_err() || tls.flush().await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let mut buf = [0u8; 64];
        loop {
            match tls.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    timeout(Duration::from_secs(100), work)
        .await
        .expect("a client that never sent a request head was never closed");
    start.elapsed()
}

#[tokio::test]
#[ignore = "slow: waits for the 30 s idle check; run by scripts/hardening.sh"]
async fn hardening_silent_or_trickling_clients_after_the_handshake_are_closed() {
    let server = Arc::new(Server::start().await);
    // An endless header, one byte per 500 ms: 200 bytes would take 100 s.
    const TRICKLE: &[u8] = b"GET /healthz HTTP/1.1\r\nhost: x\r\nx-slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let mut waiting = Vec::new();
    for i in 0..40 {
        let server = server.clone();
        let head: &'static [u8] = if i % 2 == 0 { b"" } else { TRICKLE };
        waiting.push(tokio::spawn(async move {
            silent_after_handshake(&server, head, false).await
        }));
    }
    // HTTP/2: peers that never send the connection preface, and peers that make one
    // request and then stay idle (GOAWAY, then closed).
    for _ in 0..5 {
        let server = server.clone();
        waiting.push(tokio::spawn(async move {
            silent_after_handshake(&server, b"", true).await
        }));
    }
    for _ in 0..5 {
        let server = server.clone();
        waiting.push(tokio::spawn(async move {
            let mut send = crate::http_confusion::h2(&server).await;
            // Idle from the end of its one request on.
            let req = http::Request::get(server.url("/healthz"))
                .body(Empty::<Bytes>::new())
                .unwrap();
            let res = timeout(T, send.send_request(req)).await.unwrap().unwrap();
            assert_eq!(res.status(), StatusCode::OK);
            drop(res);
            let start = Instant::now();
            timeout(Duration::from_secs(100), async {
                while !send.is_closed() {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            })
            .await
            .expect("an idle HTTP/2 connection was never closed");
            start.elapsed()
        }));
    }
    // Well-behaved clients are served while they hang on.
    for _ in 0..5 {
        server.assert_serves().await;
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let (mut fastest, mut slowest) = (Duration::MAX, Duration::ZERO);
    for task in waiting {
        let took = task.await.unwrap();
        fastest = fastest.min(took);
        slowest = slowest.max(took);
    }
    println!(
        "figure: 40 HTTP/1.1 clients silent or trickling a header, 5 HTTP/2 clients without a preface and 5 idle after one request, all closed after {fastest:?}..{slowest:?} (idle check every 30 s)"
    );
    assert_eq!(
        server.rec.calls(),
        10,
        "only the well-behaved requests reached the app"
    );
}

fn write_atomically(path: &std::path::Path, contents: &[u8]) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, contents).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + T;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The SPIFFE ID a fresh connection's server proves.
async fn server_id(server: &Server) -> String {
    let conn = timeout(
        T,
        server
            .connector(CLIENT)
            .connect(server.url("/").parse().unwrap()),
    )
    .await
    .unwrap()
    .unwrap();
    conn.peer().to_string()
}

#[tokio::test]
async fn corrupt_or_missing_certificate_files_keep_the_last_good_material() {
    const FAILED: &str = r#"meshless_reloads_total{kind="certificates",result="failure"}"#;
    const SUCCEEDED: &str = r#"meshless_reloads_total{kind="certificates",result="success"}"#;
    let ca = Arc::new(TestCa::new("example.org").unwrap());
    let dir = tempfile::tempdir().unwrap();
    let issued = ca.issue(SERVER).unwrap();
    let (cert, key) = issued.write_pem(dir.path(), "tls").unwrap();
    let bundle = dir.path().join("ca.crt");
    std::fs::write(&bundle, ca.root_pem()).unwrap();
    let metrics = Arc::new(Metrics::new());
    let files = FileSource::builder(&cert, &key, &bundle)
        .poll_interval(Duration::from_millis(20))
        .metrics(metrics.clone())
        .start()
        .await
        .unwrap();
    let acceptor = MtlsAcceptor::new(files.source()).unwrap();
    let policy = PolicyHandle::new(Policy::from_yaml(POLICY).unwrap());
    let server = Server::start_with(ca.clone(), acceptor, policy).await;
    assert_eq!(server_id(&server).await, SERVER);

    let other_key = ca.issue(SERVER).unwrap().key_pem();
    let foreign = TestCa::new("example.org").unwrap().issue(SERVER).unwrap();
    let faults: Vec<(&str, &std::path::Path, Option<Vec<u8>>)> = vec![
        (
            "garbage certificate",
            &cert,
            Some(b"-----BEGIN CERTIFICATE-----\nnot base64!\n".to_vec()),
        ),
        ("empty certificate", &cert, Some(Vec::new())),
        (
            "key of another certificate",
            &key,
            Some(other_key.into_bytes()),
        ),
        ("missing key", &key, None),
        ("empty bundle", &bundle, Some(Vec::new())),
        (
            "certificate of a foreign CA",
            &cert,
            Some(foreign.chain_pem().into_bytes()),
        ),
    ];
    let originals = [
        (cert.clone(), std::fs::read(&cert).unwrap()),
        (key.clone(), std::fs::read(&key).unwrap()),
        (bundle.clone(), std::fs::read(&bundle).unwrap()),
    ];
    for (what, path, contents) in faults {
        let before = files.status().failures;
        match contents {
            Some(bytes) => write_atomically(path, &bytes),
            None => std::fs::remove_file(path).unwrap(),
        }
        wait_until(what, || files.status().failures > before).await;
        let err = files
            .last_error()
            .unwrap_or_else(|| panic!("{what}: no error kept"));
        assert!(!err.to_string().is_empty());
        assert_eq!(counter(&metrics, FAILED), files.status().failures, "{what}");
        // Still serving, with the original SVID.
        assert_eq!(server_id(&server).await, SERVER, "{what}");
        server.assert_serves().await;
        for (p, bytes) in &originals {
            write_atomically(p, bytes);
        }
    }
    // Restoring the original files may be picked up as a reload of the same bytes:
    // what counts is that nothing else was ever put in force.
    let original_leaf =
        meshless::testing::certs_from_pem(std::str::from_utf8(&originals[0].1).unwrap())
            .unwrap()
            .remove(0);
    assert_eq!(
        files.source().current().svid().chain()[0],
        original_leaf,
        "the original material was never replaced"
    );
    let reloads_before = files.status().reloads;
    // A valid new SVID is taken.
    let renewed = ca
        .issue("spiffe://example.org/ns/shop/sa/server-v2")
        .unwrap();
    let staged = tempfile::tempdir().unwrap();
    let (c, k) = renewed.write_pem(staged.path(), "new").unwrap();
    // Key first then certificate: the pair is briefly mismatched, which is refused.
    write_atomically(&key, &std::fs::read(k).unwrap());
    write_atomically(&cert, &std::fs::read(c).unwrap());
    wait_until("the renewed SVID", || {
        files.status().reloads > reloads_before
    })
    .await;
    assert_eq!(
        server_id(&server).await,
        "spiffe://example.org/ns/shop/sa/server-v2"
    );
    assert_eq!(counter(&metrics, SUCCEEDED), files.status().reloads);
    assert!(files.last_error().is_none());
}

#[tokio::test]
async fn graceful_shutdown_under_load_completes_in_flight_requests() {
    let ca = Arc::new(TestCa::new("example.org").unwrap());
    let acceptor = MtlsAcceptor::new(ca.tls_source(SERVER).unwrap()).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let rec = Arc::new(crate::support::Recorder::default());
    *rec.delay.lock().unwrap() = Duration::from_millis(500);
    let policy = PolicyHandle::new(Policy::from_yaml(POLICY).unwrap());
    let layer = meshless::authorize::AuthorizeLayer::new(policy);
    let service = tower::Layer::layer(&layer, crate::support::app(rec.clone()));
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(meshless::serve_with_graceful_shutdown(
        listener,
        acceptor,
        service,
        async move {
            let _ = stop_rx.await;
        },
    ));
    let url = format!("https://127.0.0.1:{}/slow", addr.port());
    let mut inflight = Vec::new();
    for i in 0..40 {
        // Half over HTTP/2 (multiplexed), half over HTTP/1.1 (one connection each).
        let mut connector = crate::support::connector(&ca, CLIENT);
        if i % 2 == 1 {
            connector = connector.http1_only();
        }
        let client: Client<_, Empty<Bytes>> =
            Client::builder(TokioExecutor::new()).build(connector);
        let url = url.clone();
        inflight.push(tokio::spawn(async move { request(&client, &url).await }));
    }
    wait_until("all requests in flight", || rec.calls() == 40).await;
    stop_tx.send(()).unwrap();
    for task in inflight {
        let (status, body) = task.await.unwrap().expect("an in-flight request failed");
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    timeout(T, serving)
        .await
        .expect("the server did not finish draining")
        .unwrap()
        .unwrap();
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "still accepting after shutdown"
    );
    println!("figure: graceful shutdown with 40 requests in flight: 40/40 completed");
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// The client half of the flood, run in a child process by
/// `hardening_flood_of_idle_mtls_connections` (does nothing when run on its own).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the child process of the flood test"]
async fn flood_client() {
    let (Ok(addr), Ok(n), Ok(dir)) = (
        std::env::var("FLOOD_ADDR"),
        std::env::var("FLOOD_N"),
        std::env::var("FLOOD_DIR"),
    ) else {
        return;
    };
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let n: usize = n.parse().unwrap();
    let dir = std::path::PathBuf::from(dir);
    let material = FileSource::builder(dir.join("c.pem"), dir.join("c.key"), dir.join("ca.pem"))
        .load()
        .await
        .unwrap();
    let td = material.svid().spiffe_id().trust_domain().clone();
    let connector =
        meshless::MtlsConnector::new(meshless::tls::TlsSource::new(material), td).unwrap();
    let connector = match std::env::var("FLOOD_PROTOCOL").as_deref() {
        Ok("http1") => connector.http1_only(),
        _ => connector,
    };
    let uri: http::Uri = format!("https://{addr}/").parse().unwrap();
    let permits = Arc::new(tokio::sync::Semaphore::new(64));
    let mut tasks = Vec::new();
    for _ in 0..n {
        let (connector, uri, permits) = (connector.clone(), uri.clone(), permits.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = permits.acquire().await.unwrap();
            timeout(T, connector.connect(uri))
                .await
                .ok()
                .and_then(Result::ok)
        }));
    }
    let mut held = Vec::new();
    let mut failed = 0;
    for task in tasks {
        match task.await.unwrap() {
            Some(conn) => held.push(conn),
            None => failed += 1,
        }
    }
    println!("flood: held {} failed {failed}", held.len());
    // Hold them until the parent kills this process.
    tokio::time::sleep(Duration::from_secs(600)).await;
    drop(held);
}

/// HTTP/1.1 connections that finished the handshake and never sent a request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "slow: opens up to 10,000 mTLS connections; run by scripts/hardening.sh"]
async fn hardening_flood_of_idle_mtls_connections_http1() {
    flood("http1").await;
}

/// The same over HTTP/2 (what ALPN picks for most clients).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "slow: opens up to 10,000 mTLS connections; run by scripts/hardening.sh"]
async fn hardening_flood_of_idle_mtls_connections_h2() {
    flood("h2").await;
}

/// Whether a flood already ran in this process: memory it freed is reused by the next,
/// whose RSS growth then says nothing about its connections.
static FLOODED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

async fn flood(protocol: &str) {
    let limit = rlimit::increase_nofile_limit(u64::MAX).unwrap();
    let want: usize = std::env::var("MESHLESS_FLOOD_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let n = want.min(limit.saturating_sub(256) as usize);
    let server = Server::start().await;
    let dir = tempfile::tempdir().unwrap();
    let issued = server.ca.issue(CLIENT).unwrap();
    std::fs::write(dir.path().join("c.pem"), issued.chain_pem()).unwrap();
    std::fs::write(dir.path().join("c.key"), issued.key_pem()).unwrap();
    std::fs::write(dir.path().join("ca.pem"), server.ca.root_pem()).unwrap();
    server.assert_serves().await;
    let before = rss_kib();
    let mut child = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "faults::flood_client",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("FLOOD_ADDR", server.addr.to_string())
        .env("FLOOD_N", n.to_string())
        .env("FLOOD_DIR", dir.path())
        .env("FLOOD_PROTOCOL", protocol)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = tokio::io::BufReader::new(stdout);
    let started = Instant::now();
    let line = timeout(Duration::from_secs(300), async {
        use tokio::io::AsyncBufReadExt;
        let mut line = String::new();
        loop {
            line.clear();
            if lines.read_line(&mut line).await.unwrap() == 0 {
                panic!("the flood client exited");
            }
            // The harness prints `test faults::flood_client ... ` without a newline first.
            if let Some(at) = line.find("flood:") {
                return line[at..].to_owned();
            }
        }
    })
    .await
    .expect("the flood client did not finish connecting");
    let elapsed = started.elapsed();
    let held: usize = line.split_whitespace().nth(2).unwrap().parse().unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = rss_kib();
    // Still serving with every connection held.
    server.assert_serves().await;
    let per_conn = if FLOODED.swap(true, std::sync::atomic::Ordering::SeqCst) {
        "unmeasured (not the first flood in this process; run it alone)".to_owned()
    } else {
        let bytes = (after.saturating_sub(before) as f64) * 1024.0 / held.max(1) as f64;
        format!("{bytes:.0} bytes per connection")
    };
    println!(
        "figure: flood ({protocol}) {held}/{n} idle mTLS connections held (fd limit {limit}), opened in {elapsed:?}; server RSS {before} KiB -> {after} KiB, {per_conn}"
    );
    child.kill().await.unwrap();
    assert_eq!(held, n, "{line}");
    server.assert_serves().await;
}

/// A body of `chunks` chunks of 1 KiB, one every `every`.
struct SlowBody {
    left: usize,
    every: Duration,
    sleep: std::pin::Pin<Box<tokio::time::Sleep>>,
}

impl SlowBody {
    fn new(chunks: usize, every: Duration) -> Self {
        Self {
            left: chunks,
            every,
            sleep: Box::pin(tokio::time::sleep(every)),
        }
    }
}

impl http_body::Body for SlowBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        if self.left == 0 {
            return std::task::Poll::Ready(None);
        }
        std::task::ready!(self.sleep.as_mut().poll(cx));
        self.left -= 1;
        let next = tokio::time::Instant::now() + self.every;
        self.sleep.as_mut().reset(next);
        std::task::Poll::Ready(Some(Ok(http_body::Frame::data(Bytes::from(vec![
            b'x';
            1024
        ])))))
    }
}

#[tokio::test]
#[ignore = "slow: a download and an upload of 70 s each; run by scripts/hardening.sh"]
async fn hardening_long_requests_outlive_the_idle_check() {
    let ca = TestCa::new("example.org").unwrap();
    let acceptor = MtlsAcceptor::new(ca.tls_source(SERVER).unwrap()).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // GET streams 7 chunks, one every 10 s; POST answers the length of the upload.
    let service = tower::service_fn(|req: http::Request<hyper::body::Incoming>| async move {
        use http_body_util::BodyExt;
        let body = if req.method() == http::Method::POST {
            let n = req.into_body().collect().await?.to_bytes().len();
            http_body_util::Either::Left(http_body_util::Full::new(Bytes::from(n.to_string())))
        } else {
            http_body_util::Either::Right(SlowBody::new(7, Duration::from_secs(10)))
        };
        Ok::<_, hyper::Error>(http::Response::new(body))
    });
    tokio::spawn(meshless::serve(listener, acceptor, service));
    let client: Client<_, SlowBody> = Client::builder(TokioExecutor::new())
        .build(crate::support::connector(&ca, CLIENT).http1_only());
    let url = format!("https://{addr}/");
    let started = Instant::now();
    let download = async {
        let res = client
            .request(
                http::Request::get(&url)
                    .body(SlowBody::new(0, Duration::ZERO))
                    .unwrap(),
            )
            .await
            .unwrap();
        use http_body_util::BodyExt;
        res.into_body().collect().await.unwrap().to_bytes().len()
    };
    let upload = async {
        let res = client
            .request(
                http::Request::post(&url)
                    .body(SlowBody::new(7, Duration::from_secs(10)))
                    .unwrap(),
            )
            .await
            .unwrap();
        use http_body_util::BodyExt;
        let body = res.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8_lossy(&body).into_owned()
    };
    let (downloaded, uploaded) = timeout(Duration::from_secs(120), async {
        tokio::join!(download, upload)
    })
    .await
    .expect("the long requests did not finish");
    println!(
        "figure: a 70 s download and a 70 s upload over HTTP/1.1 completed in {:?} (idle check every 30 s)",
        started.elapsed()
    );
    assert_eq!(downloaded, 7 * 1024);
    assert_eq!(uploaded, (7 * 1024).to_string());
}
