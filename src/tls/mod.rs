//! Mutual TLS with SPIFFE identities: trust bundles, our own SVID, hot-swappable
//! material, SPIFFE verifiers for rustls, and the [`MtlsAcceptor`] / [`MtlsConnector`]
//! that servers and clients use. For clients and servers that take a rustls
//! configuration (reqwest, hyper-rustls, tokio-rustls), [`ClientConfigBuilder`] and
//! [`MtlsAcceptorBuilder::server_config`] build the same configurations, bound to the
//! rotating material, and [`peer_id`] reads the peer's SPIFFE ID back.
//!
//! ```no_run
//! # #[cfg(feature = "testing")]
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use meshless::tls::{MtlsAcceptor, Svid, TlsMaterial, TlsSource, TrustBundle};
//! let ca = meshless::testing::TestCa::new("example.org")?;
//! let issued = ca.issue("spiffe://example.org/ns/web/sa/api")?;
//! let svid = Svid::new(issued.chain().to_vec(), issued.key())?;
//! let bundle = TrustBundle::new(ca.trust_domain().clone(), vec![ca.root().clone()])?;
//! let acceptor = MtlsAcceptor::new(TlsSource::new(TlsMaterial::new(svid, bundle)?))?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let (tcp, _) = listener.accept().await?;
//! let (_stream, peer) = acceptor.accept(tcp).await?;
//! println!("peer proved {peer}");
//! # Ok(()) }
//! ```
//!
//! Security choices made here:
//! - Every rustls configuration is built with [`provider()`], never the process
//!   default provider.
//! - Inbound TLS session resumption is off: rustls does not re-run the client
//!   certificate verifier on resumption, so a resumed session could outlive a bundle
//!   rotation or revocation. Every connection is a full handshake.
//! - Peers are verified only against the bundle of their own trust domain.

use std::sync::{Arc, OnceLock};

use rustls::crypto::CryptoProvider;

mod acceptor;
mod admission;
mod bundle;
mod client_config;
mod connector;
mod constraints;
mod error;
mod files;
mod material;
mod peer;
mod server_config;
mod stream;
mod svid;
mod verifier;
mod verify;

pub use acceptor::{MtlsAcceptor, MtlsAcceptorBuilder};
pub use bundle::{BundleSet, TrustBundle};
pub use client_config::ClientConfigBuilder;
pub use connector::{MtlsConnection, MtlsConnector};
pub use error::TlsError;
pub use files::{FileSource, FileSourceBuilder, ReloadStatus};
pub use material::{TlsMaterial, TlsSource};
pub use peer::peer_id;
pub use stream::MtlsStream;
pub use svid::Svid;
pub use verifier::{ExpectedServer, SpiffeClientVerifier, SpiffeServerVerifier};

#[cfg(not(any(feature = "aws-lc-rs", feature = "ring")))]
compile_error!("meshless needs a crypto provider: enable feature `aws-lc-rs` or `ring`");

/// The crypto provider every meshless TLS configuration uses: aws-lc-rs with feature
/// `aws-lc-rs` (the default, preferred when both are on), else ring.
///
/// Configurations are always built with this provider explicitly, so meshless works
/// (and never panics) whatever other crates install as the process default.
pub fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| {
            #[cfg(feature = "aws-lc-rs")]
            let provider = rustls::crypto::aws_lc_rs::default_provider();
            #[cfg(all(feature = "ring", not(feature = "aws-lc-rs")))]
            let provider = rustls::crypto::ring::default_provider();
            Arc::new(provider)
        })
        .clone()
}

/// ALPN protocols a client offers: HTTP/2 first, then HTTP/1.1.
pub(crate) fn default_alpn() -> Vec<Vec<u8>> {
    vec![b"h2".to_vec(), b"http/1.1".to_vec()]
}

/// ALPN protocols a server accepts, in its order of preference: those a client offers,
/// then HTTP/1.0, which clients such as `curl --http1.0` offer alone.
pub(crate) fn default_server_alpn() -> Vec<Vec<u8>> {
    let mut alpn = default_alpn();
    alpn.push(b"http/1.0".to_vec());
    alpn
}

#[cfg(all(test, feature = "testing"))]
mod tests;
