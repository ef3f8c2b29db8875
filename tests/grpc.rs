//! A tonic gRPC service behind `meshless::serve` + `AuthorizeLayer`, called by tonic
//! clients over mTLS (HTTP/2 negotiated by ALPN): a denied identity sees
//! `Code::PermissionDenied`, an allowed one gets its answer; with tonic's `Routes`, no
//! spelling of a denied service's path reaches it, wherever the layer sits.
//!
//! The messages are written by hand with prost's derive, so no `protoc` is needed.

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use http::uri::PathAndQuery;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use meshless::authorize::AuthorizeLayer;
use meshless::policy::{Policy, PolicyHandle};
use meshless::testing::TestCa;
use meshless::{MtlsAcceptor, MtlsConnector, PeerIdentity, SpiffeId};
use tonic::{Code, Status};
use tonic_prost::ProstCodec;

#[derive(Clone, PartialEq, prost::Message)]
struct HelloRequest {
    #[prost(string, tag = "1")]
    name: String,
}

#[derive(Clone, PartialEq, prost::Message)]
struct HelloReply {
    #[prost(string, tag = "1")]
    message: String,
}

const SERVER: &str = "spiffe://example.org/ns/greet/sa/greeter";
const METHOD: &str = "/greet.Greeter/SayHello";
const POLICY: &str = r#"
default: deny
local_trust_domains: [example.org]
rules:
  - name: web-may-greet
    action: allow
    from: [{namespaces: ["web"]}]
    to: [{paths: ["/greet.Greeter/*"], methods: ["POST"]}]
"#;

/// The unary handler: greets the caller by name and by verified identity.
#[derive(Clone)]
struct SayHello;

impl tower::Service<tonic::Request<HelloRequest>> for SayHello {
    type Response = tonic::Response<HelloReply>;
    type Error = Status;
    type Future = Ready<Result<Self::Response, Status>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Status>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: tonic::Request<HelloRequest>) -> Self::Future {
        let peer = req
            .extensions()
            .get::<PeerIdentity>()
            .map(|p| p.to_string());
        let message = format!(
            "hello {} ({})",
            req.get_ref().name,
            peer.unwrap_or_default()
        );
        ready(Ok(tonic::Response::new(HelloReply { message })))
    }
}

/// The server-side gRPC service, as tonic's generated code would write it.
#[derive(Clone)]
struct Greeter;

impl<B> tower::Service<http::Request<B>> for Greeter
where
    B: http_body::Body + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Self::Response, Infallible>> + Send>,
    >;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        Box::pin(async move {
            if req.uri().path() != METHOD {
                return Ok(Status::unimplemented("no such method").into_http());
            }
            let mut grpc =
                tonic::server::Grpc::new(ProstCodec::<HelloReply, HelloRequest>::default());
            Ok(grpc.unary(SayHello, req).await)
        })
    }
}

async fn start() -> (u16, TestCa) {
    let ca = TestCa::new("example.org").unwrap();
    let policy = PolicyHandle::new(Policy::from_yaml(POLICY).unwrap());
    let service = tower::ServiceBuilder::new()
        .layer(AuthorizeLayer::new(policy))
        .service(Greeter);
    let acceptor = MtlsAcceptor::new(ca.tls_source(SERVER).unwrap()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(meshless::serve(listener, acceptor, service));
    (port, ca)
}

async fn say_hello(port: u16, ca: &TestCa, id: &str) -> Result<String, Status> {
    call(port, ca, id, METHOD).await
}

/// Calls `path` with a `HelloRequest` as `id`.
async fn call(port: u16, ca: &TestCa, id: &str, path: &'static str) -> Result<String, Status> {
    let expected: SpiffeId = SERVER.parse().unwrap();
    let connector = MtlsConnector::new(ca.tls_source(id).unwrap(), expected).unwrap();
    let channel = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build::<_, tonic::body::Body>(connector);
    let origin = format!("https://127.0.0.1:{port}").parse().unwrap();
    let mut client = tonic::client::Grpc::with_origin(channel, origin);
    client
        .ready()
        .await
        .map_err(|e| Status::unavailable(e.to_string()))?;
    let request = tonic::Request::new(HelloRequest {
        name: "tonic".into(),
    });
    let codec = ProstCodec::<HelloRequest, HelloReply>::default();
    let call = client.unary(request, PathAndQuery::from_static(path), codec);
    let reply = tokio::time::timeout(Duration::from_secs(10), call)
        .await
        .expect("call finishes")?;
    Ok(reply.into_inner().message)
}

#[tokio::test]
async fn tonic_clients_are_authorized_by_identity() {
    let (port, ca) = start().await;
    let allowed = say_hello(port, &ca, "spiffe://example.org/ns/web/sa/frontend").await;
    assert_eq!(
        allowed.unwrap(),
        "hello tonic (spiffe://example.org/ns/web/sa/frontend)"
    );

    let denied = say_hello(port, &ca, "spiffe://example.org/ns/batch/sa/report").await;
    let status = denied.expect_err("denied identity");
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert!(
        !status.message().contains("batch"),
        "the message reveals nothing: {status:?}"
    );
}

impl tonic::server::NamedService for Greeter {
    const NAME: &'static str = "greet.Greeter";
}

/// A second service, `greet.Admin`, that the policy denies to everyone: it counts the
/// calls that reach it (there must be none).
#[derive(Clone)]
struct Admin(Arc<AtomicUsize>);

impl tonic::server::NamedService for Admin {
    const NAME: &'static str = "greet.Admin";
}

impl<B> tower::Service<http::Request<B>> for Admin {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: http::Request<B>) -> Self::Future {
        self.0.fetch_add(1, Ordering::SeqCst);
        ready(Ok(Status::ok("admin ran").into_http()))
    }
}

const ROUTES_POLICY: &str = r#"
default: deny
rules:
  - name: web-may-call
    action: allow
    from: [{identities: ["spiffe://example.org/ns/web/*"]}]
    to: [{methods: ["POST"]}]
  - name: nobody-administers
    action: deny
    to: [{paths: ["/greet.Admin/*"]}]
"#;

/// Calls `path` with a `HelloRequest` as the frontend.
async fn call_path(port: u16, ca: &TestCa, path: &'static str) -> Result<String, Status> {
    call(port, ca, "spiffe://example.org/ns/web/sa/frontend", path).await
}

#[tokio::test]
async fn no_spelling_of_a_denied_service_reaches_it_through_tonic_routes() {
    for around in [true, false] {
        let ca = TestCa::new("example.org").unwrap();
        let admin_calls = Arc::new(AtomicUsize::new(0));
        let routes = tonic::service::Routes::new(Greeter).add_service(Admin(admin_calls.clone()));
        let layer =
            AuthorizeLayer::new(PolicyHandle::new(Policy::from_yaml(ROUTES_POLICY).unwrap()));
        let acceptor = MtlsAcceptor::new(ca.tls_source(SERVER).unwrap()).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        if around {
            let service = tower::ServiceBuilder::new().layer(layer).service(routes);
            tokio::spawn(meshless::serve(listener, acceptor, service));
        } else {
            let router = routes.into_axum_router().layer(layer);
            tokio::spawn(meshless::serve(listener, acceptor, router));
        }
        let ok = call_path(port, &ca, METHOD).await;
        assert_eq!(
            ok.unwrap(),
            "hello tonic (spiffe://example.org/ns/web/sa/frontend)"
        );
        for path in [
            "/greet.Admin/Reset",
            "/greet.Admin/../greet.Greeter/SayHello",
            "/greet.Admin/%2e%2e/greet.Greeter/SayHello",
            "/greet.Greeter/../greet.Admin/Reset",
            "/greet.Greeter/%2e%2e/greet.Admin/Reset",
            "//greet.Admin/Reset",
            "/greet.Admin//Reset",
            "/greet.Admin;x/Reset",
            "/%67reet.Admin/Reset",
            "/greet.Admin/./Reset",
        ] {
            let status = call_path(port, &ca, path).await.expect_err(path);
            assert!(
                matches!(
                    status.code(),
                    Code::PermissionDenied | Code::Internal | Code::InvalidArgument
                ),
                "around={around} {path}: {status:?}"
            );
        }
        assert_eq!(admin_calls.load(Ordering::SeqCst), 0, "around={around}");
    }
}
