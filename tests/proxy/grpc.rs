//! gRPC through two chained proxies, with a tonic client and a tonic server:
//! tonic client (h2c) → outbound → mTLS (h2) → inbound (`app_protocol = "h2"`) →
//! tonic server. Unary calls, a bidirectional stream, a status carried in trailers,
//! and a denial as `PERMISSION_DENIED`.

use std::convert::Infallible;
use std::pin::Pin;

use http::uri::PathAndQuery;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tonic::codegen::tokio_stream::{self, Stream, StreamExt};
use tonic::{Code, Request, Response, Status, Streaming};
use tonic_prost::ProstCodec;

use crate::harness::*;

#[derive(Clone, PartialEq, prost::Message)]
pub struct EchoRequest {
    #[prost(string, tag = "1")]
    pub message: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct EchoReply {
    #[prost(string, tag = "1")]
    pub message: String,
    /// The `l5d-client-id` the server received.
    #[prost(string, tag = "2")]
    pub peer: String,
}

const GRPC_POLICY: &str = r#"
default: deny
rules:
  - name: frontend-echo
    action: allow
    from: [{identities: ["spiffe://example.org/ns/web/sa/frontend"]}]
    to: [{paths: ["/test.Echo/Unary", "/test.Echo/Chat"]}]
"#;

type ReplyStream = Pin<Box<dyn Stream<Item = Result<EchoReply, Status>> + Send>>;

fn peer_of<T>(req: &Request<T>) -> String {
    req.metadata()
        .get("l5d-client-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_owned()
}

async fn unary(req: Request<EchoRequest>) -> Result<Response<EchoReply>, Status> {
    let peer = peer_of(&req);
    let message = req.into_inner().message;
    if message == "missing" {
        let mut status = Status::not_found("no such order");
        status
            .metadata_mut()
            .insert("x-order", "missing".parse().unwrap());
        return Err(status);
    }
    Ok(Response::new(EchoReply { message, peer }))
}

async fn chat(req: Request<Streaming<EchoRequest>>) -> Result<Response<ReplyStream>, Status> {
    let peer = peer_of(&req);
    let replies = req.into_inner().map(move |item| {
        item.map(|m| EchoReply {
            message: m.message.to_uppercase(),
            peer: peer.clone(),
        })
    });
    Ok(Response::new(Box::pin(replies) as ReplyStream))
}

/// The tonic server, over h2c, routing by path without codegen.
async fn grpc_app() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let route = |req: http::Request<hyper::body::Incoming>| async move {
        let mut grpc = tonic::server::Grpc::new(ProstCodec::<EchoReply, EchoRequest>::default());
        let res = match req.uri().path() {
            "/test.Echo/Unary" | "/test.Echo/Secret" => {
                grpc.unary(tower::service_fn(unary), req).await
            }
            "/test.Echo/Chat" => grpc.streaming(tower::service_fn(chat), req).await,
            _ => Status::unimplemented("no such method").into_http(),
        };
        Ok::<_, Infallible>(res)
    };
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .http2_only()
                    .serve_connection(TokioIo::new(tcp), hyper::service::service_fn(route))
                    .await;
            });
        }
    });
    port
}

type GrpcClient = tonic::client::Grpc<Client<HttpConnector, tonic::body::Body>>;

fn client(port: u16) -> GrpcClient {
    let http = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http();
    let origin = format!("http://127.0.0.1:{port}").parse().unwrap();
    tonic::client::Grpc::with_origin(http, origin)
}

async fn call_unary(
    client: &mut GrpcClient,
    path: &'static str,
    message: &str,
) -> Result<EchoReply, Status> {
    tokio::time::timeout(STEP, async {
        client
            .ready()
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        let req = Request::new(EchoRequest {
            message: message.to_owned(),
        });
        let res = client
            .unary(req, PathAndQuery::from_static(path), ProstCodec::default())
            .await?;
        Ok(res.into_inner())
    })
    .await
    .expect("gRPC call timed out")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_unary_streaming_and_status_pass_through_chained_proxies() {
    let ws = Workspace::new();
    let app = grpc_app().await;
    ws.write("grpc-policy.yaml", GRPC_POLICY);
    let (b_port, b_admin) = (free_port(), free_port());
    let b_config = format!(
        "{}[[inbound]]\nlisten = \"127.0.0.1:{b_port}\"\nforward = \"127.0.0.1:{app}\"\n\
         protocol = \"http\"\nmode = \"strict\"\npolicy = \"grpc-policy.yaml\"\n\
         app_protocol = \"h2\"\n\n[admin]\nlisten = \"127.0.0.1:{b_admin}\"\n",
        ws.identity_toml("svid")
    );
    let b = ws.start_proxy("b", &b_config, b_admin).await;
    let (a_port, a_admin) = (free_port(), free_port());
    let a_config = format!(
        "{}[[outbound]]\nlisten = \"127.0.0.1:{a_port}\"\nupstream = \"127.0.0.1:{b_port}\"\n\
         server_identity = \"{SERVER_ID}\"\n\n[admin]\nlisten = \"127.0.0.1:{a_admin}\"\n",
        ws.identity_toml("client")
    );
    let a = ws.start_proxy("a", &a_config, a_admin).await;
    let mut grpc = client(a_port);

    let reply = call_unary(&mut grpc, "/test.Echo/Unary", "hello").await;
    let reply =
        reply.unwrap_or_else(|s| panic!("{s:?}\nA:\n{}\nB:\n{}", a.log_text(), b.log_text()));
    assert_eq!(
        reply,
        EchoReply {
            message: "hello".into(),
            peer: CLIENT_ID.into()
        }
    );

    // A status and its metadata travel in the trailers.
    let status = call_unary(&mut grpc, "/test.Echo/Unary", "missing")
        .await
        .unwrap_err();
    assert_eq!(
        (status.code(), status.message()),
        (Code::NotFound, "no such order")
    );
    assert_eq!(status.metadata().get("x-order").unwrap(), "missing");

    // Denied by policy: gRPC PERMISSION_DENIED, the app never called.
    let status = call_unary(&mut grpc, "/test.Echo/Secret", "hello")
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");

    // A bidirectional stream.
    let outgoing = tokio_stream::iter(["a", "b", "c"].map(|m| EchoRequest { message: m.into() }));
    let replies = tokio::time::timeout(STEP, async {
        grpc.ready().await.unwrap();
        let res = grpc
            .streaming(
                Request::new(outgoing),
                PathAndQuery::from_static("/test.Echo/Chat"),
                ProstCodec::default(),
            )
            .await
            .unwrap();
        let mut stream: Streaming<EchoReply> = res.into_inner();
        let mut got = Vec::new();
        while let Some(reply) = stream.message().await.unwrap() {
            got.push(reply);
        }
        got
    })
    .await
    .expect("stream timed out");
    let messages: Vec<_> = replies.iter().map(|r| r.message.as_str()).collect();
    assert_eq!(messages, ["A", "B", "C"]);
    assert!(replies.iter().all(|r| r.peer == CLIENT_ID));
}
