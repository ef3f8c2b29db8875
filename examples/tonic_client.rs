//! A tonic `Channel` over meshless mutual TLS: `Endpoint::connect_with_connector` with
//! an `MtlsConnector`, which presents the client's SPIFFE identity and accepts a server
//! only if it proves the SPIFFE ID the client expects.
//!
//! ```text
//! cargo run --example tonic_client
//! ```
//!
//! Nothing to set up: a throwaway certificate authority (`meshless::testing::TestCa`)
//! stands in for SPIRE or cert-manager. The gRPC messages are written with prost's
//! derive, so no `protoc` is needed; generated code works the same way. tonic's own
//! `tls-*` features are not needed (and, if enabled, want an `http://` URI here, since
//! the connector already speaks TLS).

use std::convert::Infallible;
use std::error::Error;

use http::Request;
use http::uri::PathAndQuery;
use hyper::body::Incoming;
use meshless::testing::TestCa;
use meshless::tls::{MtlsAcceptor, MtlsConnector, TlsSource};
use meshless::{PeerIdentity, SpiffeId, TlsError};
use tonic::Status;
use tonic::transport::Endpoint;
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

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let ca = TestCa::new("example.org")?;
    let greeter = "spiffe://example.org/ns/greet/sa/greeter";

    // Two gRPC servers on loopback: the real greeter, and a workload of the same
    // trust domain that is not the one we mean to call.
    let real = serve(ca.tls_source(greeter)?).await?;
    let impostor = serve(ca.tls_source("spiffe://example.org/ns/greet/sa/impostor")?).await?;

    let expected: SpiffeId = greeter.parse()?;
    let connector = MtlsConnector::new(
        ca.tls_source("spiffe://example.org/ns/web/sa/frontend")?,
        expected,
    )?;
    for (who, port) in [("greeter", real), ("impostor", impostor)] {
        println!("--- SayHello on 127.0.0.1:{port} ({who})");
        match say_hello(connector.clone(), port).await {
            Ok(message) => println!("    ok: {message}"),
            Err(err) => match TlsError::from_error_chain(&*err) {
                Some(refused) => println!("    refused: {refused}"),
                None => println!("    failed: {err}"),
            },
        }
    }
    Ok(())
}

/// Connects a tonic `Channel` through `connector` and calls `SayHello`.
async fn say_hello(connector: MtlsConnector, port: u16) -> Result<String, Box<dyn Error>> {
    let channel = Endpoint::from_shared(format!("https://127.0.0.1:{port}"))?
        .connect_with_connector(connector)
        .await?;
    let mut client = tonic::client::Grpc::new(channel);
    client.ready().await?;
    let request = tonic::Request::new(HelloRequest {
        name: "tonic".into(),
    });
    let path = PathAndQuery::from_static("/greet.Greeter/SayHello");
    let codec = ProstCodec::<HelloRequest, HelloReply>::default();
    let reply = client.unary(request, path, codec).await?;
    Ok(reply.into_inner().message)
}

/// Starts a meshless server with one gRPC method that greets the caller by its proven
/// identity.
async fn serve(source: TlsSource) -> Result<u16, Box<dyn Error>> {
    let say_hello = tower::service_fn(|req: tonic::Request<HelloRequest>| async move {
        let peer = req.extensions().get::<PeerIdentity>().cloned();
        let peer = peer.map(|p| p.to_string()).unwrap_or_default();
        let message = format!("hello {} ({peer})", req.get_ref().name);
        Ok::<_, Status>(tonic::Response::new(HelloReply { message }))
    });
    let service = tower::service_fn(move |req: Request<Incoming>| async move {
        let mut grpc = tonic::server::Grpc::new(ProstCodec::<HelloReply, HelloRequest>::default());
        Ok::<_, Infallible>(grpc.unary(say_hello, req).await)
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(meshless::serve(
        listener,
        MtlsAcceptor::new(source)?,
        service,
    ));
    Ok(port)
}
