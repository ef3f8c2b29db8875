//! [`ClientConfigBuilder`]: a `rustls::ClientConfig` bound to rotating material, for
//! HTTP clients that take a rustls configuration (reqwest, hyper-rustls, tokio-rustls).

use std::fmt;
use std::sync::Arc;

use rustls::client::{ResolvesClientCert, Resumption};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, SignatureScheme};

use super::{ExpectedServer, SpiffeServerVerifier, TlsError, TlsSource, default_alpn, provider};

/// Builds an `Arc<rustls::ClientConfig>` that presents our current SVID and accepts
/// only servers proving an expected SPIFFE ID.
///
/// What the configuration guarantees, for every handshake it makes:
/// - the client certificate is the SVID the [`TlsSource`] holds *at that handshake*
///   (a rotation, by [`TlsSource::replace`] or a [`FileSource`](super::FileSource)
///   reload, needs no rebuild);
/// - the server's chain is verified against the bundle of the server's own trust
///   domain, read from the same source at that handshake, and its SPIFFE ID must be
///   one [`ExpectedServer`] accepts; a mismatch fails the handshake with
///   [`TlsError::UnexpectedServerId`], which names both IDs. The hostname is sent as
///   SNI but never compared;
/// - session resumption is off, so every connection is a full handshake that
///   re-verifies the server against the material in force;
/// - the crypto provider is meshless's own ([`provider()`]), whatever the process
///   default is.
///
/// **Enabling resumption** (by editing `resumption` on a copy of the configuration)
/// trades those guarantees for a saved round trip: rustls does not re-run the
/// verifier when it resumes, so a connection could be resumed with a server whose
/// certificate was revoked, whose trust bundle was rotated away, or that is no longer
/// the identity expected (the ID is checked only in the full handshake, and the
/// resumed connection's peer certificates are the ones from that earlier handshake).
/// meshless's own [`MtlsConnector`](super::MtlsConnector) never resumes.
///
/// ```
/// # #[cfg(feature = "testing")] {
/// use meshless::SpiffeId;
/// use meshless::tls::ClientConfigBuilder;
/// let ca = meshless::testing::TestCa::new("example.org")?;
/// let source = ca.tls_source("spiffe://example.org/ns/web/sa/frontend")?;
/// let orders: SpiffeId = "spiffe://example.org/ns/shop/sa/orders".parse()?;
/// let config = ClientConfigBuilder::new(source, orders).build()?;
/// // reqwest takes the configuration by value; the clone shares the certificate
/// // resolver and the verifier, so it still follows rotation:
/// // reqwest::Client::builder().tls_backend_preconfigured((*config).clone())
/// assert!(config.client_auth_cert_resolver.has_certs());
/// # }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct ClientConfigBuilder {
    source: TlsSource,
    expected: ExpectedServer,
    alpn: Vec<Vec<u8>>,
}

impl ClientConfigBuilder {
    /// A configuration presenting the SVID of `source` and accepting `expected`
    /// servers (an exact [`SpiffeId`](crate::SpiffeId), a
    /// [`TrustDomain`](crate::TrustDomain), or [`ExpectedServer::matching`] for a
    /// pattern or a set).
    pub fn new(source: impl Into<TlsSource>, expected: impl Into<ExpectedServer>) -> Self {
        Self {
            source: source.into(),
            expected: expected.into(),
            alpn: default_alpn(),
        }
    }

    /// ALPN protocols offered, most preferred first (default `h2`, `http/1.1`). Offer
    /// only `http/1.1` to a client that cannot speak HTTP/2.
    pub fn alpn_protocols(mut self, protocols: Vec<Vec<u8>>) -> Self {
        self.alpn = protocols;
        self
    }

    /// The servers the configuration accepts.
    pub fn expected(&self) -> &ExpectedServer {
        &self.expected
    }

    /// Builds the configuration.
    ///
    /// # Errors
    /// [`TlsError::Config`] if rustls refuses the configuration.
    pub fn build(self) -> Result<Arc<ClientConfig>, TlsError> {
        let verifier = SpiffeServerVerifier::new(self.source.clone(), self.expected);
        let mut config = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Config(e.to_string()))?
            // A SPIFFE verifier replaces hostname verification: SVIDs usually carry
            // no DNS name, and the identity that matters is the SPIFFE ID.
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_client_cert_resolver(Arc::new(CurrentSvid(self.source)));
        // Resumption skips the verifier: see the type's docs.
        config.resumption = Resumption::disabled();
        config.alpn_protocols = self.alpn;
        Ok(Arc::new(config))
    }
}

/// Presents whatever SVID the source holds at the time of each handshake.
struct CurrentSvid(TlsSource);

impl fmt::Debug for CurrentSvid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CurrentSvid")
    }
}

impl ResolvesClientCert for CurrentSvid {
    fn resolve(&self, _hints: &[&[u8]], _schemes: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        Some(self.0.load().svid().certified_key().clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}
