//! The JWT layer behind a real hyper HTTP/1.1 server on 127.0.0.1, called with curl the
//! way a user would: a valid token, an expired one, and none.

#[path = "jwt_common/mod.rs"]
mod common;

use std::convert::Infallible;
use std::process::Command;
use std::time::Duration;

use common::*;
use http::{Request, Response};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use meshless::jwt::JwtLayer;
use meshless::{Claims, RequestPrincipal};
use tower::{Layer, service_fn};

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Serves the layered app on an ephemeral loopback port; returns the port.
async fn serve() -> u16 {
    let layer = JwtLayer::new([idp_issuer()]).unwrap();
    let app = layer.layer(service_fn(
        |req: Request<hyper::body::Incoming>| async move {
            let who = match req.extensions().get::<RequestPrincipal>() {
                Some(p) => p.to_string(),
                None => "anonymous".into(),
            };
            let groups = req
                .extensions()
                .get::<Claims>()
                .map(|c| c.strings(&["groups"]).collect::<Vec<_>>().join(","))
                .unwrap_or_default();
            let auth = req.headers().contains_key("authorization");
            Ok::<_, Infallible>(Response::new(format!(
                "{who} [{groups}] auth-header={auth}"
            )))
        },
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let svc = TowerToHyperService::new(app.clone());
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    port
}

/// Runs curl (bounded by --max-time) and returns (status line + headers, body).
async fn curl(port: u16, args: &[String]) -> (String, String) {
    let mut cmd = Command::new("curl");
    cmd.args(["-s", "-i", "--max-time", "10"])
        .args(args)
        .arg(format!("http://127.0.0.1:{port}/orders"));
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("curl is installed"))
        .await
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP response");
    (head.to_owned(), body.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_with_valid_expired_and_no_token() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let port = serve().await;
        let exp = now() + 300;
        let claims = format!(
            r#"{{"iss":"{ISS}","sub":"alice","aud":"{AUD}","exp":{exp},"groups":["ops","dev"]}}"#
        );
        let token = keys().ec.sign(&claims).unwrap();
        let (head, body) = curl(
            port,
            &["-H".into(), format!("Authorization: Bearer {token}")],
        )
        .await;
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert_eq!(body, "https://idp.test/alice [ops,dev] auth-header=false");

        let expired = format!(
            r#"{{"iss":"{ISS}","sub":"alice","aud":"{AUD}","exp":{}}}"#,
            now() - 3600
        );
        let token = keys().ec.sign(&expired).unwrap();
        let (head, body) = curl(
            port,
            &["-H".into(), format!("Authorization: Bearer {token}")],
        )
        .await;
        assert!(head.starts_with("HTTP/1.1 401"), "{head}");
        assert!(
            head.to_ascii_lowercase()
                .contains("www-authenticate: bearer error=\"invalid_token\""),
            "{head}"
        );
        assert_eq!(body, "");

        let (head, body) = curl(port, &[]).await;
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert_eq!(body, "anonymous [] auth-header=false");
    })
    .await
    .expect("bounded");
}
