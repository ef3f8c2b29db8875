//! Memory per idle mTLS connection: the resident set size (RSS) a server process gains
//! while holding N idle connections (default 1,000), for `meshless::serve` over
//! `MtlsAcceptor` and for a bare tokio-rustls + `WebPkiClientVerifier` server running
//! hyper-util's auto connection, each in its own process.
//!
//! `cargo run --release --features testing --example idle_connections -- 1000 [h2|http1]`
//!
//! Each server process starts a client process that opens N connections (full mTLS
//! handshakes), then both sit idle while the server reads its own VmRSS. `h2` (the
//! default) offers ALPN h2 and sends nothing; `http1` offers ALPN http/1.1 and makes one
//! keep-alive request on each connection before idling, as a pooled HTTP/1.1 client
//! leaves its connections.

use std::convert::Infallible;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use meshless::testing::TestCa;
use meshless::tls::{
    MtlsAcceptor, MtlsConnector, Svid, TlsMaterial, TlsSource, TrustBundle, provider,
};
use rustls::RootCertStore;
use rustls::server::{NoServerSessionStorage, WebPkiClientVerifier};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const SERVER_ID: &str = "spiffe://example.org/ns/shop/sa/server";

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("Linux /proc");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS line")
}

fn hello() -> impl tower::Service<
    Request<Incoming>,
    Response = Response<String>,
    Error = Infallible,
    Future = impl Future<Output = Result<Response<String>, Infallible>> + Send,
> + Clone
+ Send
+ 'static {
    tower::service_fn(|_req: Request<Incoming>| async { Ok(Response::new(String::from("hi"))) })
}

async fn start_bare(ca: &TestCa, server: &meshless::testing::TestSvid) -> SocketAddr {
    let mut roots = RootCertStore::empty();
    roots.add(ca.root().clone()).unwrap();
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
        .build()
        .unwrap();
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(server.chain().to_vec(), server.key())
        .unwrap();
    config.session_storage = Arc::new(NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(tcp).await {
                    let service = hyper_util::service::TowerToHyperService::new(hello());
                    let builder = auto::Builder::new(TokioExecutor::new());
                    let _ = builder
                        .serve_connection_with_upgrades(TokioIo::new(tls), service)
                        .await;
                }
            });
        }
    });
    addr
}

async fn start_meshless(source: TlsSource) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = MtlsAcceptor::new(source).unwrap();
    tokio::spawn(meshless::serve(listener, acceptor, hello()));
    addr
}

async fn server(kind: &str, n: usize, mode: &str) {
    let ca = TestCa::new("example.org").unwrap();
    let server = ca.issue(SERVER_ID).unwrap();
    let bundle = TrustBundle::new(ca.trust_domain().clone(), vec![ca.root().clone()]).unwrap();
    let material = TlsMaterial::new(
        Svid::new(server.chain().to_vec(), server.key()).unwrap(),
        bundle,
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    ca.issue("spiffe://example.org/ns/web/sa/client")
        .unwrap()
        .write_pem(dir.path(), "client")
        .unwrap();
    std::fs::write(dir.path().join("root.pem"), ca.root_pem()).unwrap();

    let addr = match kind {
        "bare" => start_bare(&ca, &server).await,
        _ => start_meshless(TlsSource::new(material)).await,
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = rss_kib();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["client", &addr.to_string(), &n.to_string()])
        .arg(dir.path())
        .arg(mode)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        line
    })
    .await
    .unwrap();
    assert_eq!(line.trim(), "ready", "client failed");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = rss_kib();
    drop(child.stdin.take());
    let _ = child.kill();
    let _ = child.wait();
    let per_conn = (after.saturating_sub(before)) as f64 * 1024.0 / n as f64;
    println!(
        "{kind} mode={mode} rss_before_kib={before} rss_after_kib={after} connections={n} bytes_per_connection={per_conn:.0}"
    );
}

async fn client(addr: SocketAddr, n: usize, dir: &Path, mode: &str) {
    let read = |f: &str| std::fs::read(dir.join(f)).unwrap();
    let svid = Svid::from_pem(&read("client.pem"), &read("client.key")).unwrap();
    let td = svid.spiffe_id().trust_domain().clone();
    let bundle = TrustBundle::from_pem(td, &read("root.pem")).unwrap();
    let source = TlsSource::new(TlsMaterial::new(svid, bundle).unwrap());
    let mut connector =
        MtlsConnector::new(source, SERVER_ID.parse::<meshless::SpiffeId>().unwrap()).unwrap();
    if mode == "http1" {
        connector = connector.http1_only();
    }
    let mut open = Vec::with_capacity(n);
    for _ in 0..n {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (mut tls, _) = connector
            .connect_stream(tcp, "localhost")
            .await
            .unwrap()
            .into_inner();
        if mode == "http1" {
            tls.write_all(b"GET / HTTP/1.1\r\nhost: localhost\r\n\r\n")
                .await
                .unwrap();
            // The response ends with its two-byte body, "hi".
            let mut response = Vec::new();
            while !response.ends_with(b"\r\n\r\nhi") {
                let mut buf = [0; 512];
                let read = tls.read(&mut buf).await.unwrap();
                assert!(read > 0, "connection closed before the response");
                response.extend_from_slice(&buf[..read]);
            }
        }
        open.push(tls);
    }
    println!("ready");
    std::io::stdout().flush().unwrap();
    // Hold the connections until the parent closes our stdin.
    tokio::task::spawn_blocking(|| {
        let mut sink = String::new();
        let _ = std::io::stdin().read_line(&mut sink);
    })
    .await
    .unwrap();
    drop(open);
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    match args.first().map(String::as_str) {
        Some("server") => rt.block_on(server(&args[1], args[2].parse().unwrap(), &args[3])),
        Some("client") => rt.block_on(client(
            args[1].parse().unwrap(),
            args[2].parse().unwrap(),
            Path::new(&args[3]),
            &args[4],
        )),
        n => {
            let n = n.map_or(1000, |n| n.parse().expect("N connections"));
            let mode = args.get(1).map_or("h2", String::as_str);
            assert!(matches!(mode, "h2" | "http1"), "mode: h2 or http1");
            for kind in ["bare", "meshless"] {
                let status = Command::new(std::env::current_exe().unwrap())
                    .args(["server", kind, &n.to_string(), mode])
                    .status()
                    .unwrap();
                assert!(status.success());
            }
        }
    }
}
