//! Reading the peer's SPIFFE ID back from a rustls connection.

use rustls::CommonState;

use super::TlsError;
use crate::SpiffeId;

/// The SPIFFE ID of the peer of a finished rustls handshake: the one URI SAN of the
/// leaf certificate the peer presented, read with the crate's X.509-SVID rules.
///
/// Works on any rustls connection (`ClientConnection` and `ServerConnection` deref to
/// [`CommonState`]; with tokio-rustls, `stream.get_ref().1`). The ID is *verified* only
/// when the connection was made with a meshless configuration
/// ([`ClientConfigBuilder`](super::ClientConfigBuilder),
/// [`MtlsAcceptorBuilder::server_config`](super::MtlsAcceptorBuilder::server_config),
/// or a [`SpiffeServerVerifier`](super::SpiffeServerVerifier) /
/// [`SpiffeClientVerifier`](super::SpiffeClientVerifier)): this function parses, it does
/// not verify a chain. With resumption enabled, rustls restores the certificates of the
/// earlier full handshake, so the ID is the one verified then.
///
/// ```
/// # #[cfg(feature = "testing")] {
/// use meshless::tls::{ClientConfigBuilder, peer_id};
/// # let ca = meshless::testing::TestCa::new("example.org")?;
/// # let source = ca.tls_source("spiffe://example.org/ns/web/sa/frontend")?;
/// let expected: meshless::TrustDomain = "example.org".parse()?;
/// let config = ClientConfigBuilder::new(source, expected).build()?;
/// let conn = rustls::ClientConnection::new(config, "orders.shop".try_into()?)?;
/// // Before the handshake, there is no peer to name.
/// assert!(peer_id(&conn).is_err());
/// # }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// [`TlsError::Handshake`] while the handshake is running or when the peer presented no
/// certificate; [`TlsError::InvalidSvid`] when its leaf is not an X.509-SVID.
pub fn peer_id(conn: &CommonState) -> Result<SpiffeId, TlsError> {
    if conn.is_handshaking() {
        return Err(TlsError::Handshake("the handshake has not finished".into()));
    }
    let leaf = conn
        .peer_certificates()
        .and_then(|chain| chain.first())
        .ok_or_else(|| TlsError::Handshake("peer presented no certificate".into()))?;
    Ok(crate::svid::validate_leaf(leaf)?)
}
