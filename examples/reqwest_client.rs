//! reqwest over meshless mutual TLS: the client presents its SPIFFE identity and accepts
//! a server only if it proves the SPIFFE ID the client expects.
//!
//! ```text
//! cargo run --example reqwest_client
//! ```
//!
//! Nothing to set up: a throwaway certificate authority (`meshless::testing::TestCa`)
//! stands in for SPIRE or cert-manager. In production the client's material comes from
//! `meshless::tls::FileSource`, and a rotated SVID is presented on the next connection
//! without rebuilding the client.

use std::convert::Infallible;
use std::error::Error;

use http::{Request, Response};
use hyper::body::Incoming;
use meshless::testing::TestCa;
use meshless::tls::{ClientConfigBuilder, MtlsAcceptor, TlsSource};
use meshless::{PeerIdentity, SpiffeId, TlsError};

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let ca = TestCa::new("example.org")?;
    let orders = "spiffe://example.org/ns/shop/sa/orders";

    // Two servers on loopback: the real `orders`, and a workload of the same trust
    // domain that is not the one we mean to call.
    let real = serve(ca.tls_source(orders)?).await?;
    let impostor = serve(ca.tls_source("spiffe://example.org/ns/shop/sa/impostor")?).await?;

    // The client: our SVID, and the one server identity we accept.
    let expected: SpiffeId = orders.parse()?;
    let config = ClientConfigBuilder::new(
        ca.tls_source("spiffe://example.org/ns/web/sa/frontend")?,
        expected,
    )
    .build()?;
    let client = reqwest::Client::builder()
        .tls_backend_preconfigured(std::sync::Arc::unwrap_or_clone(config))
        .build()?;

    for (who, port) in [("orders", real), ("impostor", impostor)] {
        let url = format!("https://127.0.0.1:{port}/orders");
        println!("--- GET {url} ({who})");
        match client.get(&url).send().await {
            Ok(response) => println!("    {}: {}", response.status(), response.text().await?),
            // The verifier's verdict travels through reqwest's error chain.
            Err(err) => match TlsError::from_error_chain(&err) {
                Some(refused) => println!("    refused: {refused}"),
                None => println!("    failed: {err}"),
            },
        }
    }
    Ok(())
}

/// Starts a meshless server that answers with the caller's proven identity.
async fn serve(source: TlsSource) -> Result<u16, Box<dyn Error>> {
    let service = tower::service_fn(|req: Request<Incoming>| async move {
        let peer = req.extensions().get::<PeerIdentity>().cloned();
        let peer = peer.map(|p| p.to_string()).unwrap_or_default();
        Ok::<_, Infallible>(Response::new(format!("hello {peer}")))
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
