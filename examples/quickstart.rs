//! meshless in one file: an axum service with mutual TLS and a deny-by-default policy,
//! called by an allowed workload, a denied workload, a workload from a CA the service
//! does not trust, and a plaintext client.
//!
//! ```text
//! cargo run --example quickstart
//! ```
//!
//! Nothing to set up: a throwaway certificate authority (`meshless::testing::TestCa`)
//! stands in for SPIRE, cert-manager or Istio's CA. In production the certificates come
//! from disk (`meshless::tls::FileSource`) and the policy from a file
//! (`PolicyHandle::from_file`, hot-reloaded with `watch`).

use std::error::Error;

use axum::Router;
use axum::routing::get;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use meshless::authorize::{AuthorizeLayer, Authorized, Peer};
use meshless::policy::{Policy, PolicyHandle};
use meshless::testing::TestCa;
use meshless::tls::{BundleSet, ExpectedServer, MtlsAcceptor, MtlsConnector, Svid, TlsMaterial};
use meshless::{SpiffeId, TrustDomain};

/// Who may do what. Deny by default; the frontend may read orders; anyone, even
/// unauthenticated, may read the health check.
const POLICY: &str = r#"
default: deny
rules:
  - name: frontend-reads-orders
    action: allow
    from:
      - identities: ["spiffe://example.org/ns/web/sa/frontend"]
    to:
      - methods: ["GET"]
        paths: ["/orders", "/orders/*"]
  - name: anyone-reads-health
    action: allow
    to:
      - paths: ["/healthz"]
"#;

async fn orders(Peer(peer): Peer, Authorized(decision): Authorized) -> String {
    format!("orders for {peer} (allowed by `{}`)\n", decision.rule())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    // The audit log (target `meshless::audit`: denials at INFO, allowed requests at
    // DEBUG) and TLS refusals, on stdout.
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer().without_time())
        .with(
            tracing_subscriber::filter::Targets::new()
                .with_target("meshless::audit", tracing::Level::DEBUG)
                .with_target("meshless::tls", tracing::Level::INFO),
        )
        .init();

    // 1. A trust domain, and the service's own X.509-SVID.
    let ca = TestCa::new("example.org")?;
    let server_id = "spiffe://example.org/ns/shop/sa/orders";

    // 2. The service: axum routes, and the authorization layer wrapped around the
    //    whole router, so that every request is decided before routing (unrouted
    //    paths and fallbacks too). The layer refuses any path that is not already in
    //    normal form (`/orders/../admin`, `/%2e%2e/`, `//`) instead of rewriting it,
    //    so the path it decides on is the path the router reads.
    let policy = PolicyHandle::new(Policy::from_yaml(POLICY)?);
    let router = Router::new()
        .route("/orders", get(orders))
        .route("/healthz", get(|| async { "ok\n" }));
    let app = tower::ServiceBuilder::new()
        .layer(AuthorizeLayer::new(policy))
        .service(router);

    // 3. Mutual TLS on loopback. Permissive mode also accepts plaintext, as
    //    unauthenticated peers, so that the policy (not the transport) judges them.
    let acceptor = MtlsAcceptor::builder(ca.tls_source(server_id)?)
        .permissive()
        .build()?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(meshless::serve(listener, acceptor, app));
    println!("serving {server_id} on 127.0.0.1:{port}\n");

    // 4. Clients. Each mTLS client checks the server's SPIFFE ID, not a hostname.
    let expect: SpiffeId = server_id.parse()?;
    let url = |scheme: &str, path: &str| format!("{scheme}://127.0.0.1:{port}{path}");

    let frontend = MtlsConnector::new(
        ca.tls_source("spiffe://example.org/ns/web/sa/frontend")?,
        expect.clone(),
    )?;
    call(
        "frontend (allowed)",
        frontend.clone(),
        &url("https", "/orders"),
    )
    .await;
    call(
        "frontend with a dot segment (refused: not in normal form)",
        frontend,
        &url("https", "/healthz/../orders"),
    )
    .await;

    let batch = MtlsConnector::new(
        ca.tls_source("spiffe://example.org/ns/batch/sa/report")?,
        expect.clone(),
    )?;
    call(
        "batch job (denied by policy)",
        batch,
        &url("https", "/orders"),
    )
    .await;

    // A workload of a trust domain the service has no bundle for.
    let partner = TestCa::new("partner.example")?;
    let issued = partner.issue("spiffe://partner.example/ns/web/sa/frontend")?;
    let bundles = BundleSet::new().with(ca.bundle()?).with(partner.bundle()?);
    let material = TlsMaterial::new(Svid::new(issued.chain().to_vec(), issued.key())?, bundles)?;
    let untrusted = MtlsConnector::new(
        material,
        ExpectedServer::TrustDomain(TrustDomain::new("example.org")?),
    )?;
    call(
        "partner workload (untrusted CA)",
        untrusted,
        &url("https", "/orders"),
    )
    .await;

    let plaintext = HttpConnector::new();
    call(
        "plaintext client",
        plaintext.clone(),
        &url("http", "/orders"),
    )
    .await;
    call(
        "plaintext health check",
        plaintext,
        &url("http", "/healthz"),
    )
    .await;
    Ok(())
}

/// Sends `GET url` through `connector` and prints what came back.
async fn call<C>(who: &str, connector: C, url: &str)
where
    C: tower::Service<http::Uri> + Clone + Send + Sync + 'static,
    C::Response: hyper::rt::Read
        + hyper::rt::Write
        + hyper_util::client::legacy::connect::Connection
        + Send
        + Unpin,
    C::Future: Send + Unpin,
    C::Error: Into<Box<dyn Error + Send + Sync>>,
{
    println!("--- {who}: GET {url}");
    let client = Client::builder(TokioExecutor::new()).build::<_, Empty<Bytes>>(connector);
    let result = async {
        let res = client.get(url.parse()?).await?;
        let status = res.status();
        let body = res.into_body().collect().await?.to_bytes();
        Ok::<_, Box<dyn Error + Send + Sync>>((status, body))
    };
    match tokio::time::timeout(std::time::Duration::from_secs(5), result).await {
        Ok(Ok((status, body))) => println!(
            "    {status}: {}",
            String::from_utf8_lossy(&body).trim_end()
        ),
        Ok(Err(err)) => println!("    failed: {}", error_chain(&*err)),
        Err(_) => println!("    timed out"),
    }
    // Let the server's log lines for this call print before the next one starts.
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    println!();
}

fn error_chain(err: &(dyn Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        out.push_str(": ");
        out.push_str(&e.to_string());
        source = e.source();
    }
    out
}
