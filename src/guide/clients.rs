//! Clients: calling other services as your workload.
//!
//! A meshless client presents the workload's current SVID and accepts a server only if
//! it proves a SPIFFE ID the caller expects ([`ExpectedServer`]: an exact ID, a trust
//! domain, or a predicate for a pattern or a set). The hostname in the URL is used to
//! connect and sent as SNI, never compared: SVIDs usually carry no DNS name, and the
//! name that matters is the SPIFFE ID. Both the SVID and the trust bundles are read from
//! the [`TlsSource`] at each handshake, so a rotation needs no rebuilt client, and
//! session resumption is off, so every connection re-verifies the server.
//!
//! | client | how |
//! | --- | --- |
//! | hyper-util | [`MtlsConnector`] as the connector; responses carry the server's `PeerIdentity` |
//! | reqwest | [`ClientConfigBuilder`] → `ClientBuilder::tls_backend_preconfigured` (`examples/reqwest_client.rs`) |
//! | tonic | `Endpoint::connect_with_connector(MtlsConnector)` (`examples/tonic_client.rs`); tonic's `tls-*` features are not needed |
//! | tokio-rustls, hyper-rustls, others | [`ClientConfigBuilder`]; [`peer_id`] reads the server's ID from the connection |
//!
//! ```no_run
//! # async fn run(source: meshless::tls::TlsSource) -> Result<(), Box<dyn std::error::Error>> {
//! use meshless::tls::ClientConfigBuilder;
//! use meshless::{SpiffeId, TlsError};
//! let orders: SpiffeId = "spiffe://example.org/ns/shop/sa/orders".parse()?;
//! let config = ClientConfigBuilder::new(source, orders).build()?;
//! let client = reqwest::Client::builder()
//!     .tls_backend_preconfigured(std::sync::Arc::unwrap_or_clone(config))
//!     .build()?;
//! match client.get("https://orders.shop:8443/orders").send().await {
//!     Ok(response) => println!("{}", response.status()),
//!     // A server with another identity: "server identity `…` is not the expected `…`".
//!     Err(err) => println!("{}", TlsError::from_error_chain(&err).map_or(err.to_string(), |e| e.to_string())),
//! }
//! # Ok(()) }
//! ```
//!
//! reqwest takes the configuration by value; the clone shares the certificate resolver
//! and the verifier, so it follows rotation like the original. With reqwest 0.13, the
//! `rustls-no-provider` feature is enough (meshless brings its own crypto provider);
//! enable `http2` too, or offer only `http/1.1` with
//! [`ClientConfigBuilder::alpn_protocols`].
//!
//! # Resumption
//!
//! rustls does not re-run certificate verification when it resumes a session: the
//! resumed connection's peer certificates are those of the earlier full handshake. On
//! the client, a resumed session could reach a server whose certificate was revoked or
//! whose trust bundle was rotated away since; on the server, a client could resume as an
//! identity it no longer holds. meshless's configurations therefore turn resumption
//! off on both sides ([`ClientConfigBuilder`],
//! [`MtlsAcceptorBuilder::server_config`]). A caller who turns it back on saves a round
//! trip per connection and loses that guarantee.
//!
//! [`ExpectedServer`]: crate::tls::ExpectedServer
//! [`TlsSource`]: crate::tls::TlsSource
//! [`MtlsConnector`]: crate::MtlsConnector
//! [`ClientConfigBuilder`]: crate::tls::ClientConfigBuilder
//! [`ClientConfigBuilder::alpn_protocols`]: crate::tls::ClientConfigBuilder::alpn_protocols
//! [`MtlsAcceptorBuilder::server_config`]: crate::tls::MtlsAcceptorBuilder::server_config
//! [`peer_id`]: crate::tls::peer_id
