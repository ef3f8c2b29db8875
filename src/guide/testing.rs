//! Testing your own service over real mutual TLS, with
//! [`TestCa`](crate::testing::TestCa).
//!
//! Enable feature `testing` in your dev-dependencies:
//!
//! ```toml
//! [dev-dependencies]
//! meshless = { version = "0.1", features = ["testing"] }
//! ```
//!
//! [`TestCa`](crate::testing::TestCa) is a throwaway certificate authority for a trust
//! domain: it issues X.509-SVIDs for any SPIFFE ID in milliseconds, in memory, so a test
//! can start the real service on loopback with the real policy and call it as each
//! workload that matters: one that is allowed, one that is not, one from a CA the
//! service does not trust. No mocked handshakes: what passes in the test is what the
//! service does in production.
//!
//! ```
//! # #[cfg(all(feature = "testing", feature = "yaml"))]
//! # mod demo {
//! use bytes::Bytes;
//! use http_body_util::Empty;
//! use hyper_util::client::legacy::Client;
//! use hyper_util::rt::TokioExecutor;
//! use meshless::authorize::AuthorizeLayer;
//! use meshless::policy::{Policy, PolicyHandle};
//! use meshless::testing::TestCa;
//! use meshless::{MtlsAcceptor, MtlsConnector, SpiffeId};
//!
//! const ORDERS: &str = "spiffe://example.org/ns/shop/sa/orders";
//!
//! // In your crate this is `#[tokio::test] async fn frontend_may_read_batch_may_not()`.
//! pub async fn test() -> Result<(), Box<dyn std::error::Error>> {
//!     let ca = TestCa::new("example.org")?;
//!     let policy = PolicyHandle::new(Policy::from_yaml(r#"
//! default: deny
//! rules:
//!   - name: frontend-reads
//!     action: allow
//!     from: [{identities: ["spiffe://example.org/ns/web/sa/frontend"]}]
//!     to: [{methods: [GET]}]
//! "#)?);
//!     // Your service, with the layers it has in production.
//!     let app = tower::ServiceBuilder::new()
//!         .layer(AuthorizeLayer::new(policy))
//!         .service_fn(|_req: http::Request<hyper::body::Incoming>| async {
//!             Ok::<_, std::convert::Infallible>(http::Response::new("orders".to_string()))
//!         });
//!     let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//!     let url = format!("https://127.0.0.1:{}/orders", listener.local_addr()?.port());
//!     let acceptor = MtlsAcceptor::new(ca.tls_source(ORDERS)?)?;
//!     tokio::spawn(meshless::serve(listener, acceptor, app));
//!
//!     assert_eq!(get(&ca, "spiffe://example.org/ns/web/sa/frontend", &url).await?, 200);
//!     assert_eq!(get(&ca, "spiffe://example.org/ns/batch/sa/report", &url).await?, 403);
//!     // A workload of a trust domain the service does not trust is refused at the
//!     // handshake: no response at all.
//!     let stranger = TestCa::new("partner.example")?;
//!     assert!(get(&stranger, "spiffe://partner.example/ns/web/sa/frontend", &url).await.is_err());
//!     Ok(())
//! }
//!
//! /// `GET url` as `caller`, a workload of `ca`, expecting the server to be `ORDERS`.
//! async fn get(ca: &TestCa, caller: &str, url: &str) -> Result<u16, Box<dyn std::error::Error>> {
//!     let expected: SpiffeId = ORDERS.parse()?;
//!     let connector = MtlsConnector::new(ca.tls_source(caller)?, expected)?;
//!     let client = Client::builder(TokioExecutor::new()).build::<_, Empty<Bytes>>(connector);
//!     Ok(client.get(url.parse()?).await?.status().as_u16())
//! }
//! # }
//! # #[cfg(all(feature = "testing", feature = "yaml"))]
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() { demo::test().await.unwrap() }
//! # #[cfg(not(all(feature = "testing", feature = "yaml")))]
//! # fn main() {}
//! ```
//!
//! The stranger's call fails for two reasons at once (the service does not trust
//! `partner.example`, and the client, holding only its own bundle, does not trust the
//! service); a test of one reason alone gives the client a
//! [`BundleSet`](crate::tls::BundleSet) with both roots, as `examples/quickstart.rs`
//! does.
//!
//! More that [`TestCa`](crate::testing::TestCa) does for tests:
//!
//! - [`issue_defective`](crate::testing::TestCa::issue_defective) issues deliberately
//!   broken SVIDs ([`Defect`](crate::testing::Defect): two URI SANs, a CA leaf, no
//!   digitalSignature, expired, …) to check that each is refused;
//! - [`intermediate`](crate::testing::TestCa::intermediate) adds a CA below the root,
//!   [`issue_valid_between`](crate::testing::TestCa::issue_valid_between) chooses the
//!   validity period, and [`crl_pem`](crate::testing::TestCa::crl_pem) revokes;
//! - [`TestSvid::write_pem`](crate::testing::TestSvid::write_pem) and
//!   [`root_pem`](crate::testing::TestCa::root_pem) write the files a
//!   [`FileSource`](crate::tls::FileSource) reads, so a test can rotate certificates
//!   under a running server (rewrite the files, wait for
//!   [`FileSource::status`](crate::tls::FileSource::status) to count the reload);
//! - with feature `jwt`, `TestJwtKey` signs end-user tokens for the JWT layer.
//!
//! Never use [`TestCa`](crate::testing::TestCa) outside tests: its keys live in memory
//! and nothing about it is meant to protect anything.
