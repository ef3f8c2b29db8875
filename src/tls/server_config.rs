//! The `rustls::ServerConfig` behind [`MtlsAcceptor`](super::MtlsAcceptor), also handed
//! out by [`MtlsAcceptorBuilder::server_config`](super::MtlsAcceptorBuilder::server_config)
//! for servers that drive rustls themselves.

use std::fmt;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::server::{NoServerSessionStorage, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use super::{SpiffeClientVerifier, TlsError, TlsSource, provider};

/// Builds the server configuration: `verifier` for clients, the SVID `source` holds at
/// each handshake, and no resumption.
pub(crate) fn build(
    source: TlsSource,
    verifier: SpiffeClientVerifier,
    alpn: Vec<Vec<u8>>,
) -> Result<Arc<ServerConfig>, TlsError> {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_client_cert_verifier(Arc::new(verifier))
        .with_cert_resolver(Arc::new(CurrentSvid(source)));
    // rustls skips the client-certificate verifier on resumption and restores the old
    // peer certificates: no session cache and no tickets, so that every connection is
    // verified against the material in force now.
    config.session_storage = Arc::new(NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    config.alpn_protocols = alpn;
    Ok(Arc::new(config))
}

/// Serves whatever SVID the source holds at the time of each handshake.
struct CurrentSvid(TlsSource);

impl fmt::Debug for CurrentSvid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CurrentSvid")
    }
}

impl ResolvesServerCert for CurrentSvid {
    fn resolve(&self, _hello: rustls::server::ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.load().svid().certified_key().clone())
    }
}

#[cfg(all(test, feature = "testing"))]
mod tests {
    use crate::tls::MtlsAcceptor;

    #[test]
    fn server_config_never_resumes() {
        let ca = crate::testing::TestCa::new("example.org").unwrap();
        let source = ca.tls_source("spiffe://example.org/ns/a/sa/b").unwrap();
        let config = MtlsAcceptor::builder(source).server_config().unwrap();
        assert_eq!(config.send_tls13_tickets, 0);
        assert!(!config.session_storage.can_cache());
        assert_eq!(config.alpn_protocols[0], b"h2");
    }
}
