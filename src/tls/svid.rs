//! [`Svid`]: our own X.509-SVID — certificate chain plus private key — validated on load.

use std::fmt;
use std::sync::Arc;

use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use x509_cert::Certificate;
use x509_cert::der::Decode;

use super::{TlsError, provider};
use crate::SpiffeId;
use crate::svid::validate_chain;

/// Our own X.509-SVID: a certificate chain (leaf first, then intermediates) and the
/// leaf's private key.
///
/// Construction enforces the X.509-SVID rules on the chain, checks that the key
/// belongs to the leaf, and refuses an expired leaf, so a broken or mismatched pair
/// is an error and is never served.
///
/// ```
/// # #[cfg(feature = "testing")] {
/// use meshless::tls::Svid;
/// let ca = meshless::testing::TestCa::new("example.org")?;
/// let issued = ca.issue("spiffe://example.org/ns/web/sa/api")?;
/// let svid = Svid::from_pem(issued.chain_pem().as_bytes(), issued.key_pem().as_bytes())?;
/// assert_eq!(svid.spiffe_id().as_str(), "spiffe://example.org/ns/web/sa/api");
/// # }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Svid {
    id: SpiffeId,
    key: Arc<CertifiedKey>,
}

impl fmt::Debug for Svid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Svid")
            .field("id", &self.id)
            .field("chain_len", &self.key.cert.len())
            .finish_non_exhaustive()
    }
}

impl Svid {
    /// An SVID from a DER chain (leaf first) and its private key.
    ///
    /// # Errors
    /// [`TlsError::InvalidSvid`] when the chain breaks an X.509-SVID rule,
    /// [`TlsError::Expired`] for an expired leaf, [`TlsError::KeyMismatch`] when the key
    /// cannot be loaded or is not the leaf's.
    pub fn new(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<Self, TlsError> {
        let id = validate_chain(&chain)?;
        if not_after(&chain[0]).is_some_and(|end| end < UnixTime::now().as_secs()) {
            return Err(TlsError::Expired { id });
        }
        let provider = provider();
        let signing_key =
            provider
                .key_provider
                .load_private_key(key)
                .map_err(|e| TlsError::KeyMismatch {
                    id: id.clone(),
                    reason: e.to_string(),
                })?;
        let certified = CertifiedKey::new(chain, signing_key);
        // `keys_match` compares SubjectPublicKeyInfo; an unknown result would mean the
        // provider cannot tell, which for our providers does not happen — refuse it.
        certified.keys_match().map_err(|e| TlsError::KeyMismatch {
            id: id.clone(),
            reason: e.to_string(),
        })?;
        Ok(Self {
            id,
            key: Arc::new(certified),
        })
    }

    /// An SVID from PEM: `chain` holds `CERTIFICATE` blocks (leaf first), `key` a
    /// PKCS#8, PKCS#1 or SEC1 private key.
    ///
    /// # Errors
    /// [`TlsError::Parse`] for bad PEM, then as [`Svid::new`].
    pub fn from_pem(chain: &[u8], key: &[u8]) -> Result<Self, TlsError> {
        let certs = CertificateDer::pem_slice_iter(chain)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| TlsError::parse("SVID certificate chain PEM", e))?;
        let key = PrivateKeyDer::from_pem_slice(key)
            .map_err(|e| TlsError::parse("SVID private key PEM", e))?;
        Self::new(certs, key)
    }

    /// Our SPIFFE ID.
    pub fn spiffe_id(&self) -> &SpiffeId {
        &self.id
    }

    /// The certificate chain, leaf first.
    pub fn chain(&self) -> &[CertificateDer<'static>] {
        &self.key.cert
    }

    /// The chain and key as rustls serves them.
    pub fn certified_key(&self) -> &Arc<CertifiedKey> {
        &self.key
    }

    /// The leaf's notAfter as seconds since the Unix epoch (when readable).
    pub fn not_after(&self) -> Option<u64> {
        not_after(&self.key.cert[0])
    }
}

fn not_after(der: &[u8]) -> Option<u64> {
    let cert = Certificate::from_der(der).ok()?;
    Some(
        cert.tbs_certificate
            .validity
            .not_after
            .to_unix_duration()
            .as_secs(),
    )
}
