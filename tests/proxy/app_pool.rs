//! The inbound listener's HTTP/1.1 connections to the app: reused across client
//! connections, returned after empty responses too, never used once the app closed them.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::harness::*;
use crate::http::inbound_config;

/// A plain HTTP/1.1 app written against the socket, so that what it does with its
/// connections is exactly what the test says: it answers `conn=N` naming the connection
/// a request came on (`HEAD` with the length only, `/empty` with `204`, `/trailers`
/// chunked with a trailer), and with `close_idle` it closes each connection 50 ms after answering, without announcing it,
/// as an app with a short keep-alive timeout does.
async fn counting_app(close_idle: bool) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let id = accepted.fetch_add(1, Ordering::SeqCst) + 1;
            tokio::spawn(serve_counting(tcp, id, close_idle));
        }
    });
    addr
}

async fn serve_counting(mut tcp: TcpStream, id: usize, close_idle: bool) {
    let mut buf = Vec::new();
    loop {
        // Requests without bodies: a head ends the request.
        let end = loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break end + 4;
            }
            let mut chunk = [0; 4096];
            match tcp.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        buf.drain(..end);
        let body = format!("conn={id}\n");
        let response = if head.starts_with("HEAD ") {
            format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", body.len())
        } else if head.starts_with("GET /empty ") {
            "HTTP/1.1 204 No Content\r\n\r\n".to_owned()
        } else if head.starts_with("GET /trailers ") {
            format!(
                "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ntrailer: x-sum\r\n\r\n\
                 {:x}\r\n{body}\r\n0\r\nx-sum: 1\r\n\r\n",
                body.len()
            )
        } else {
            format!(
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            )
        };
        if tcp.write_all(response.as_bytes()).await.is_err() {
            return;
        }
        if close_idle {
            tokio::time::sleep(Duration::from_millis(50)).await;
            return;
        }
    }
}

/// The proxy in front of a fresh `counting_app`: (workspace, proxy, inbound port).
async fn proxy_in_front(close_idle: bool) -> (Workspace, Proc, u16) {
    let ws = Workspace::new();
    let app = counting_app(close_idle).await;
    let (config, port, admin) = inbound_config(&ws, app.port(), "strict", "");
    let proxy = ws.start_proxy("proxy", &config, admin).await;
    (ws, proxy, port)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_connections_are_reused_across_clients_and_empty_responses() {
    let (ws, _proxy, port) = proxy_in_front(false).await;
    let get = |path: &str| {
        let args = mtls_args(&ws, port, path, Some("client"));
        async move { curl(&args).await }
    };

    // Each curl is a new client connection; one app connection serves them all.
    assert_eq!(get("/a").await, (200, "conn=1\n".to_owned()));
    let mut head = vec!["--head".to_owned()];
    head.extend(mtls_args(&ws, port, "/b", Some("client")));
    let (code, headers) = curl(&head).await;
    assert_eq!(code, 200, "{headers}");
    assert!(headers.contains("content-length: 7"), "{headers}");
    assert_eq!(get("/empty").await, (204, String::new()));
    assert_eq!(get("/trailers").await, (200, "conn=1\n".to_owned()));
    // After a body-less HEAD answer, a 204 and trailers, the connection is still the pool's.
    assert_eq!(get("/c").await, (200, "conn=1\n".to_owned()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_1_0_requests_do_not_return_their_app_connection() {
    let (ws, _proxy, port) = proxy_in_front(false).await;
    let mut http10 = vec!["--http1.0".to_owned()];
    http10.extend(mtls_args(&ws, port, "/a", Some("client")));
    assert_eq!(curl(&http10).await, (200, "conn=1\n".to_owned()));
    // The app may close an HTTP/1.0 exchange's connection without saying so: not reused.
    let args = mtls_args(&ws, port, "/b", Some("client"));
    assert_eq!(curl(&args).await, (200, "conn=2\n".to_owned()));
    assert_eq!(curl(&args).await, (200, "conn=2\n".to_owned()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_is_not_tunnelled() {
    let (ws, _proxy, port) = proxy_in_front(false).await;
    let connect = |target: Option<&str>| {
        let mut args = vec!["--http1.1", "--request", "CONNECT"];
        if let Some(target) = target {
            args.extend(["--request-target", target]);
        }
        let mut args: Vec<String> = args.into_iter().map(str::to_owned).collect();
        args.extend(mtls_args(&ws, port, "/db", Some("client")));
        async move { curl(&args).await }
    };
    // A tunnel request (authority form) has no path for the policy: 400.
    assert_eq!(connect(Some("db.internal:5432")).await.0, 400);
    // CONNECT with a path is authorized like any request, then refused by the proxy.
    let (code, body) = connect(None).await;
    assert_eq!((code, body.as_str()), (501, "CONNECT is not supported\n"));
    // Nothing reached the app: the next request opens its first connection.
    let args = mtls_args(&ws, port, "/a", Some("client"));
    assert_eq!(curl(&args).await, (200, "conn=1\n".to_owned()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_closing_idle_connections_fails_no_request() {
    let (ws, _proxy, port) = proxy_in_front(true).await;
    for n in 1..=4 {
        let got = curl(&mtls_args(&ws, port, "/x", Some("client"))).await;
        assert_eq!(got, (200, format!("conn={n}\n")));
        // Long enough for the app to have closed the connection it answered on.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
