//! HTTP: path confusion against `deny /admin*` while `allow *` covers the rest, header
//! floods and oversized headers, conflicting Content-Length / Transfer-Encoding, and
//! HTTP/2 `:authority` against `Host`.

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use meshless::policy::{Policy, RequestAttrs, Verdict, normalize_path};
use tokio::time::timeout;

use crate::support::{CLIENT, POLICY, Server, T};

fn get(target: &str) -> Vec<u8> {
    format!("GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").into_bytes()
}

/// Every path the app saw must be one the policy allows, and none under /admin.
fn assert_app_only_saw_allowed_paths(server: &Server) {
    let policy = Policy::from_yaml(POLICY).unwrap();
    for path in server.rec.paths() {
        assert!(
            !path.starts_with("/admin"),
            "the app was reached at {path:?}"
        );
        let decoded = normalize_path(&path).unwrap();
        let attrs = RequestAttrs::connection(None, None, None).with_request("GET", &decoded);
        assert_eq!(policy.evaluate(&attrs).verdict(), Verdict::Allow, "{path}");
        let decoded = normalize_path(&path).expect("the app saw a non-normal path");
        assert!(
            !decoded.starts_with("/admin"),
            "the app was reached at {path:?}"
        );
    }
}

#[tokio::test]
async fn no_spelling_of_admin_reaches_the_app() {
    let server = Server::start().await;
    // Each must be denied (403) or refused as ambiguous (400): never served.
    let denied = [
        "/admin",
        "/admin/",
        "/admin/users",
        "/admin?x=1",
        "//admin",
        "///admin//users",
        "/./admin",
        "/public/../admin",
        "/public/./../admin",
        "/public/%2e%2e/admin",
        "/public/%2E%2E/admin",
        "/public/.%2e/admin",
        "/%2e/admin",
        "/../../admin",
        "/%61dmin",
        "/%61%64%6D%69%6E",
        "/adm%69n/users",
        "/admin;jsessionid=1",
        "/admin;/users",
        "/public;/../admin",
        "/admin%20",
        "/admin%3F",
        "/admin#frag",
    ];
    let refused = [
        "/admin%2Fusers",
        "/public%2F..%2Fadmin",
        "/public%2f..%2fadmin",
        "/public%5C..%5Cadmin",
        "/public%5c..%5cadmin",
        "/public\\..\\admin",
        "/admin%00",
        "/%00/admin",
        "/public/%00/../admin",
        "/%C0%AFadmin",
        "/public/%C0%AE%C0%AE/admin",
        "/public/%c0%ae%c0%ae/admin",
        "/public/%E0%80%AE%E0%80%AE/admin",
        "/admin%",
        "/admin%2",
        "/admin%zz",
        "/%252e%252e/admin%2F",
        // Servlet containers drop `;` parameters, then resolve `..`: refused, not passed on.
        "/..;/admin",
        "/public/..;/admin",
        "/public/..;x=1/admin",
        "/public/%2e%2e;/admin",
        "/public/..%3B/admin",
    ];
    for target in denied {
        let (status, body) = server.raw_http1(&get(target)).await;
        assert!(status == 403 || status == 400, "{target}: {status} {body}");
    }
    for target in refused {
        let (status, body) = server.raw_http1(&get(target)).await;
        assert_eq!(status, 400, "{target}: {body}");
    }
    // Absolute-form targets are judged by their path too.
    for target in [
        "https://127.0.0.1/admin",
        "https://127.0.0.1/public/../admin",
        "https://127.0.0.1//admin",
        "http://127.0.0.1/%61dmin",
    ] {
        let (status, body) = server.raw_http1(&get(target)).await;
        assert!(status == 403 || status == 400, "{target}: {status} {body}");
    }
    // An absolute-form target naming another host than Host is refused.
    let (status, _) = server
        .raw_http1(b"GET https://evil.example/public HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .await;
    assert_eq!(status, 400);
    assert_eq!(server.rec.calls(), 0, "saw {:?}", server.rec.paths());

    // What is not in normal form is refused even where the policy would allow it
    // (a router may have read it raw): never rewritten.
    for target in ["/public/./x/../y", "//public//y", "/%2561dmin"] {
        let (status, body) = server.raw_http1(&get(target)).await;
        assert_eq!(status, 400, "{target}: {body}");
    }
    assert_eq!(server.rec.calls(), 0, "saw {:?}", server.rec.paths());
    // What is allowed is served as sent; the policy decided on the decoded path.
    let allowed = [
        ("/%70ublic", "/%70ublic"),
        ("/Admin", "/Admin"),
        ("/admi", "/admi"),
    ];
    for (target, seen) in allowed {
        let (status, body) = server.raw_http1(&get(target)).await;
        assert_eq!(status, 200, "{target}: {body}");
        assert_eq!(
            body,
            format!("path={seen} rule=everything-else"),
            "{target}"
        );
    }
    assert_app_only_saw_allowed_paths(&server);
}

/// An HTTP/2 connection of CLIENT to `server`.
pub(crate) async fn h2(server: &Server) -> hyper::client::conn::http2::SendRequest<Empty<Bytes>> {
    let conn = timeout(
        T,
        server
            .connector(CLIENT)
            .connect(server.url("/").parse().unwrap()),
    )
    .await
    .unwrap()
    .unwrap();
    let (tls, _) = conn.into_inner();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .unwrap();
    tokio::spawn(conn);
    send
}

async fn h2_status(
    send: &mut hyper::client::conn::http2::SendRequest<Empty<Bytes>>,
    req: Request<Empty<Bytes>>,
) -> (StatusCode, String) {
    let res = timeout(T, send.send_request(req)).await.unwrap().unwrap();
    let status = res.status();
    let body = timeout(T, res.into_body().collect())
        .await
        .unwrap()
        .unwrap()
        .to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn http2_authority_and_host_must_agree_and_paths_are_normalized() {
    let server = Server::start().await;
    let mut send = h2(&server).await;
    // :authority names one host, Host another: refused before policy.
    let req = Request::get("https://good.example/public")
        .header("host", "evil.example")
        .body(Empty::new())
        .unwrap();
    assert_eq!(h2_status(&mut send, req).await.0, StatusCode::BAD_REQUEST);
    // Same host and port in both spellings: served.
    let req = Request::get("https://GOOD.example/public")
        .header("host", "good.example")
        .body(Empty::new())
        .unwrap();
    let (status, body) = h2_status(&mut send, req).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::OK, "path=/public rule=everything-else")
    );
    for path in [
        "/public/../admin",
        "//admin",
        "/%61dmin",
        "/admin%2F",
        "/x/%2e%2e/admin",
    ] {
        let req = Request::get(format!("https://127.0.0.1{path}"))
            .body(Empty::new())
            .unwrap();
        let (status, _) = h2_status(&mut send, req).await;
        assert!(
            status == StatusCode::FORBIDDEN || status == StatusCode::BAD_REQUEST,
            "{path}: {status}"
        );
    }
    assert_eq!(server.rec.paths(), ["/public"]);
    assert_app_only_saw_allowed_paths(&server);
}

#[tokio::test]
async fn header_floods_and_oversized_headers_get_431_or_a_close() {
    let server = Server::start().await;
    // 10,000 small headers.
    let mut flood = b"GET /public HTTP/1.1\r\nHost: 127.0.0.1\r\n".to_vec();
    for i in 0..10_000 {
        flood.extend(format!("x-h{i}: v\r\n").as_bytes());
    }
    flood.extend(b"\r\n");
    let (status, _) = server.raw_http1(&flood).await;
    assert!(status == 431 || status == 0, "flood: {status}");
    // One 1 MiB header.
    let mut big = b"GET /public HTTP/1.1\r\nHost: 127.0.0.1\r\nx-big: ".to_vec();
    big.extend(std::iter::repeat_n(b'a', 1 << 20));
    big.extend(b"\r\n\r\n");
    let (status, _) = server.raw_http1(&big).await;
    assert!(status == 431 || status == 0, "big header: {status}");
    // A 1 MiB request line.
    let mut long = b"GET /public/".to_vec();
    long.extend(std::iter::repeat_n(b'a', 1 << 20));
    long.extend(b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    let (status, _) = server.raw_http1(&long).await;
    assert!(
        status == 431 || status == 414 || status == 0,
        "long target: {status}"
    );
    assert_eq!(server.rec.calls(), 0);

    // HTTP/2: a header list far beyond the server's limit is refused, not served.
    let mut send = h2(&server).await;
    let mut req = Request::get(server.url("/public"));
    for i in 0..2_000 {
        req = req.header(format!("x-h{i}"), "v".repeat(100));
    }
    let result = timeout(T, send.send_request(req.body(Empty::new()).unwrap()))
        .await
        .unwrap();
    if let Ok(res) = result {
        assert_eq!(res.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    }
    assert_eq!(server.rec.calls(), 0);
    server.assert_serves().await;
}

#[tokio::test]
async fn conflicting_content_length_and_transfer_encoding_are_refused_or_close_the_connection() {
    let server = Server::start().await;
    let cases: [&[u8]; 4] = [
        b"POST /public HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\nContent-Length: 40\r\n\r\nhello",
        b"POST /public HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5, 6\r\n\r\nhello",
        b"POST /public HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
        b"POST /public HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: -1\r\n\r\n",
    ];
    for case in cases {
        let (status, body) = server.raw_http1(case).await;
        assert_eq!(status, 400, "{}: {body}", String::from_utf8_lossy(case));
    }
    assert_eq!(server.rec.calls(), 0, "saw {:?}", server.rec.paths());
    // Content-Length and Transfer-Encoding together, in either order, with a request
    // smuggled behind the chunked body: hyper takes the RFC 9112 §6.1 choice of
    // reading the body as chunked and closing the connection after the response, so
    // the smuggled request is never read, let alone served.
    let smuggled = "GET /admin HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\nGET /public/2 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    for headers in [
        "Content-Length: 5\r\nTransfer-Encoding: chunked",
        "Transfer-Encoding: chunked\r\nContent-Length: 5",
    ] {
        let request = format!(
            "POST /public HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}\r\n\r\n0\r\n\r\n{smuggled}"
        );
        let reply = server.raw_http1_reply(request.as_bytes()).await;
        let responses = reply.matches("HTTP/1.1 ").count();
        assert_eq!(responses, 1, "{headers}: {reply}");
        assert!(
            reply.starts_with("HTTP/1.1 200") || reply.starts_with("HTTP/1.1 400"),
            "{reply}"
        );
    }
    assert!(
        server.rec.paths().iter().all(|p| p == "/public"),
        "{:?}",
        server.rec.paths()
    );
    server.assert_serves().await;
}

#[tokio::test]
async fn a_refused_http1_request_closes_the_connection() {
    let server = Server::start().await;
    // Keep-alive: an ambiguous path, then a valid request pipelined behind it.
    let reply = server
        .raw_http1(b"GET /admin%2Fx HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\nGET /public HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await;
    assert_eq!(reply.0, 400);
    let full = server
        .raw_http1_reply(b"GET /a%00 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\nGET /public HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await;
    assert_eq!(full.matches("HTTP/1.1 ").count(), 1, "{full}");
    assert!(
        full.to_ascii_lowercase().contains("connection: close"),
        "{full}"
    );
    assert_eq!(server.rec.calls(), 0);
}

#[tokio::test]
async fn the_layer_refuses_both_content_length_and_transfer_encoding() {
    // hyper never hands a service both headers; other servers might. The layer is
    // called directly here, as such a server would call it.
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tower::{Layer, Service, ServiceExt};
    let calls = std::sync::Arc::new(AtomicUsize::new(0));
    let inner = {
        let calls = calls.clone();
        tower::service_fn(move |_req: Request<String>| {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Ok::<_, std::convert::Infallible>(http::Response::new(String::new())) }
        })
    };
    let handle = meshless::policy::PolicyHandle::new(Policy::from_yaml(POLICY).unwrap());
    let mut service = meshless::authorize::AuthorizeLayer::new(handle).layer(inner);
    let peer = meshless::PeerIdentity::authenticated(CLIENT.parse::<meshless::SpiffeId>().unwrap());
    let request = |both: bool| {
        let mut req = Request::post("/public")
            .header("host", "127.0.0.1")
            .header("transfer-encoding", "chunked");
        if both {
            req = req.header("content-length", "5");
        }
        let mut req = req.body(String::new()).unwrap();
        req.extensions_mut().insert(peer.clone());
        req
    };
    let res = service
        .ready()
        .await
        .unwrap()
        .call(request(true))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    let res = service
        .ready()
        .await
        .unwrap()
        .call(request(false))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}
