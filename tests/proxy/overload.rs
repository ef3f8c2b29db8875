//! Overload: the proxy's app side is bounded (connections, queue, response timeout,
//! HTTP/2 streams per client connection), and silent or dribbling clients do not delay
//! good ones. The full-size attacks are `#[ignore]`d here and run by
//! `scripts/hardening.sh`; `bench/overload.sh` runs them beside nginx and haproxy.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use meshless::tls::ExpectedServer;
use meshless::{MtlsConnector, TrustDomain};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::harness::*;
use crate::http::inbound_config;

/// An HTTP/1.1 app that answers `GET /` at once and never answers `/stall`, counting
/// its open connections (now and at most) and the requests it holds on `/stall`.
#[derive(Clone, Default)]
struct StallApp {
    open: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
    stalled: Arc<AtomicUsize>,
}

impl StallApp {
    async fn start(&self) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = self.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let now = app.open.fetch_add(1, Ordering::SeqCst) + 1;
                app.peak.fetch_max(now, Ordering::SeqCst);
                let app = app.clone();
                tokio::spawn(async move {
                    serve_stall(tcp, &app.stalled).await;
                    app.open.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        addr
    }

    fn open(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }

    fn peak(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }

    fn stalled(&self) -> usize {
        self.stalled.load(Ordering::SeqCst)
    }
}

async fn serve_stall(mut tcp: TcpStream, stalled: &AtomicUsize) {
    let mut buf = Vec::new();
    loop {
        let mut chunk = [0; 4096];
        match tcp.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head: Vec<u8> = buf.drain(..end + 4).collect();
            if head.starts_with(b"GET /stall") {
                // Never answers; reads on only to see the proxy close the connection.
                stalled.fetch_add(1, Ordering::SeqCst);
                let mut rest = [0; 1024];
                while matches!(tcp.read(&mut rest).await, Ok(n) if n > 0) {}
                stalled.fetch_sub(1, Ordering::SeqCst);
                return;
            }
            let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nok\n";
            if tcp.write_all(ok).await.is_err() {
                return;
            }
        }
    }
}

/// The proxy, configured with `limits` (TOML lines for `[[inbound]]`), in front of a
/// fresh [`StallApp`]: the workspace, the app, the proxy's port and process.
async fn proxy_before_stall_app(limits: &str) -> (Workspace, StallApp, u16, Proc) {
    let ws = Workspace::new();
    let app = StallApp::default();
    let addr = app.start().await;
    let (config, port, admin) = inbound_config(&ws, addr.port(), "strict", limits);
    let proxy = ws.start_proxy("proxy", &config, admin).await;
    (ws, app, port, proxy)
}

/// An HTTP/2 client on one mTLS connection of its own, as `CLIENT_ID`.
fn h2_client(ws: &Workspace) -> Client<MtlsConnector, Empty<Bytes>> {
    let source = ws.ca.tls_source(CLIENT_ID).unwrap();
    let td = ExpectedServer::TrustDomain(TrustDomain::new(TD).unwrap());
    let connector = MtlsConnector::new(source, td).unwrap();
    Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build(connector)
}

/// `conns` HTTP/2 connections with `streams` requests each on `/stall`, held until the
/// tasks are aborted.
fn hold_stalled_streams(
    ws: &Workspace,
    port: u16,
    conns: usize,
    streams: usize,
) -> Vec<tokio::task::JoinHandle<Option<(StatusCode, bool)>>> {
    let mut held = Vec::new();
    for _ in 0..conns {
        let client = h2_client(ws);
        for _ in 0..streams {
            let client = client.clone();
            held.push(tokio::spawn(
                async move { get(&client, port, "/stall").await },
            ));
        }
    }
    held
}

/// `GET path` on `client`: the status, or `None` when the request failed.
async fn get(
    client: &Client<MtlsConnector, Empty<Bytes>>,
    port: u16,
    path: &str,
) -> Option<(StatusCode, bool)> {
    let uri = format!("https://127.0.0.1:{port}{path}").parse().unwrap();
    let res = client.get(uri).await.ok()?;
    let retry_after = res.headers().contains_key(http::header::RETRY_AFTER);
    let status = res.status();
    res.into_body().collect().await.ok()?;
    Some((status, retry_after))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_side_is_bounded_queued_then_refused_and_timed_out() {
    let limits = "[inbound.limits]\nmax_app_connections = 4\nmax_app_queue = 2\n\
                  app_queue_timeout_ms = 500\napp_response_timeout_ms = 1500\n";
    let (ws, app, port, proxy) = proxy_before_stall_app(limits).await;

    // Ten streams on one connection to a path the app never answers.
    let client = h2_client(&ws);
    let calls: Vec<_> = (0..10)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { get(&client, port, "/stall").await })
        })
        .collect();
    let mut outcomes = Vec::new();
    for call in calls {
        let outcome = tokio::time::timeout(STEP, call).await;
        outcomes.push(
            outcome
                .expect("the proxy answers every stalled request")
                .unwrap(),
        );
    }
    let count = |status| {
        outcomes
            .iter()
            .filter(|o| o.map(|o| o.0) == Some(status))
            .count()
    };
    // Four reach the app and time out; two wait in the queue and the rest find it
    // full: all six get 503 with Retry-After.
    assert_eq!(
        count(StatusCode::GATEWAY_TIMEOUT),
        4,
        "{outcomes:?}\n{}",
        proxy.log_text()
    );
    assert_eq!(count(StatusCode::SERVICE_UNAVAILABLE), 6, "{outcomes:?}");
    assert!(
        outcomes
            .iter()
            .flatten()
            .all(|(s, retry)| *s != StatusCode::SERVICE_UNAVAILABLE || *retry)
    );
    assert!(app.peak() <= 4, "{} connections to the app", app.peak());
    // The timed-out requests' connections were closed; the budget is free again.
    eventually("stalled app connections closed", || async {
        app.open() == 0
    })
    .await;
    assert_eq!(
        get(&client, port, "/").await.map(|o| o.0),
        Some(StatusCode::OK)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn good_clients_are_served_while_peers_hold_streams_on_a_stalled_path() {
    let limits = "[inbound.limits]\nmax_concurrent_streams = 5\nmax_app_connections = 20\n\
                  app_response_timeout_ms = 60000\n";
    let (ws, app, port, proxy) = proxy_before_stall_app(limits).await;

    // Three connections, each with 20 streams on `/stall`: 5 each get through.
    let held = hold_stalled_streams(&ws, port, 3, 20);
    eventually("stalled streams at the app", || async {
        app.stalled() >= 15
    })
    .await;
    for _ in 0..10 {
        let good = h2_client(&ws);
        let outcome = tokio::time::timeout(STEP, get(&good, port, "/")).await;
        assert_eq!(
            outcome.ok().flatten().map(|o| o.0),
            Some(StatusCode::OK),
            "{}",
            proxy.log_text()
        );
    }
    // The streams beyond 5 per connection never reached the app.
    assert!(
        app.peak() <= 15 + 10,
        "{} connections to the app",
        app.peak()
    );
    assert_eq!(app.stalled(), 15, "stalled requests at the app");
    held.iter().for_each(|task| task.abort());
}

/// The proxy's open descriptors (Linux).
fn open_fds(proxy: &Proc) -> usize {
    std::fs::read_dir(format!("/proc/{}/fd", proxy.child.id()))
        .map(|dir| dir.count())
        .unwrap_or(0)
}

/// `n` good requests, one new mTLS connection each, 250 ms apart: their latencies, or
/// the failures.
async fn good_requests(ws: &Workspace, port: u16, n: usize) -> Vec<Result<Duration, String>> {
    let mut out = Vec::new();
    for _ in 0..n {
        let client = h2_client(ws);
        let started = std::time::Instant::now();
        let outcome = tokio::time::timeout(Duration::from_secs(5), get(&client, port, "/")).await;
        out.push(match outcome {
            Ok(Some((StatusCode::OK, _))) => Ok(started.elapsed()),
            Ok(other) => Err(format!("{other:?}")),
            Err(_) => Err("timed out after 5 s".to_owned()),
        });
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    out
}

fn summary(outcomes: &[Result<Duration, String>]) -> (usize, Duration) {
    let mut ok: Vec<Duration> = outcomes.iter().filter_map(|o| o.clone().ok()).collect();
    ok.sort();
    let worst = ok.last().copied().unwrap_or_default();
    (ok.len(), worst)
}

/// Issue 16's handshake flood at full size: 5,000 connections that send nothing and
/// 200 that send a ClientHello a byte a second, then 20 good requests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "slow: scripts/hardening.sh"]
async fn overload_full_size_silent_and_dribbling_connections() {
    let (silent_n, dribble_n) = (5_000, 200);
    rlimit::increase_nofile_limit(u64::MAX).unwrap();
    let (ws, _app, port, proxy) = proxy_before_stall_app("").await;
    let target: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();

    let opened = std::time::Instant::now();
    let mut silent = Vec::new();
    for _ in 0..silent_n {
        silent.push(TcpStream::connect(target).await.unwrap());
    }
    let closed_at = Arc::new(std::sync::Mutex::new(Vec::new()));
    let watchers: Vec<_> = silent
        .into_iter()
        .map(|mut tcp| {
            let closed_at = closed_at.clone();
            tokio::spawn(async move {
                let mut buf = [0; 1];
                let _ = tokio::time::timeout(Duration::from_secs(30), tcp.read(&mut buf)).await;
                closed_at.lock().unwrap().push(opened.elapsed());
            })
        })
        .collect();
    let hello = Arc::new(meshless::testing::client_hello());
    let dribblers: Vec<_> = (0..dribble_n)
        .map(|_| {
            let hello = hello.clone();
            tokio::spawn(async move {
                let mut tcp = TcpStream::connect(target).await.unwrap();
                for byte in hello.iter() {
                    if tcp.write_all(&[*byte]).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let fds = open_fds(&proxy);
    let outcomes = good_requests(&ws, port, 20).await;
    let (ok, worst) = summary(&outcomes);
    for watcher in watchers {
        watcher.await.unwrap();
    }
    let closed = closed_at.lock().unwrap().clone();
    let within_15s = closed
        .iter()
        .filter(|d| **d <= Duration::from_secs(15))
        .count();
    println!(
        "figure: overload silent={silent_n} dribbling={dribble_n}: good {ok}/20, slowest {worst:?}; \
         silent closed within 15 s: {within_15s}/{silent_n}; proxy fds during attack {fds}"
    );
    dribblers.iter().for_each(|task| task.abort());
    assert_eq!(ok, 20, "{outcomes:?}\n{}", proxy.log_text());
    assert!(worst < Duration::from_secs(1), "{outcomes:?}");
    assert!(
        within_15s * 100 >= silent_n * 99,
        "{within_15s} of {silent_n}"
    );
}

/// Issue 16's stalled-streams attack at full size: 3 connections × 200 streams on a
/// path the app never answers, with the default limits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "slow: scripts/hardening.sh"]
async fn overload_full_size_stalled_streams() {
    let (conns, streams) = (3, 200);
    rlimit::increase_nofile_limit(u64::MAX).unwrap();
    let (ws, app, port, proxy) = proxy_before_stall_app("").await;
    let before = open_fds(&proxy);

    let held = hold_stalled_streams(&ws, port, conns, streams);
    // 100 streams per connection (the default) reach the app.
    eventually("stalled streams at the app", || async {
        app.stalled() >= 300
    })
    .await;
    let outcomes = good_requests(&ws, port, 20).await;
    let (ok, worst) = summary(&outcomes);
    let fds = open_fds(&proxy);
    println!(
        "figure: overload stalled streams {conns}x{streams}: good {ok}/20, slowest {worst:?}; \
         app connections {} (peak {}); proxy fds {before} idle -> {fds} under attack \
         (bound: max_app_connections 1024 + client connections)",
        app.open(),
        app.peak()
    );
    held.iter().for_each(|task| task.abort());
    assert_eq!(ok, 20, "{outcomes:?}\n{}", proxy.log_text());
    assert_eq!(
        app.stalled(),
        conns * 100,
        "streams beyond 100 per connection reached the app"
    );
    assert!(fds <= before + 1024 + conns + 20, "{fds} descriptors");
}
