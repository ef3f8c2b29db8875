//! [`TlsError`]: why a connection was refused or TLS material could not be loaded.

use std::sync::Arc;
use std::time::Duration;

use crate::{SpiffeId, SvidError, TrustDomain};

/// Why a connection was refused, or why TLS material could not be loaded.
///
/// Every variant names its cause; [`TlsError::reason`] gives a short, bounded label for
/// metrics. A peer that fails verification is always refused: no variant leads to an
/// "unauthenticated" connection.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// The client completed the handshake without presenting a certificate (strict mode).
    #[error("client presented no certificate: mutual TLS requires one")]
    NoClientCertificate,
    /// The chain does not lead to a root of the bundle of the peer's trust domain.
    #[error("certificate chain of `{id}` does not lead to a root of trust domain `{}`", id.trust_domain())]
    UntrustedCa {
        /// The SPIFFE ID the certificate claims.
        id: SpiffeId,
    },
    /// The peer's certificate (or a CA above it) has expired.
    #[error("certificate of `{id}` has expired")]
    Expired {
        /// The SPIFFE ID the certificate claims.
        id: SpiffeId,
    },
    /// The peer's certificate (or a CA above it) is not valid yet.
    #[error("certificate of `{id}` is not valid yet")]
    NotYetValid {
        /// The SPIFFE ID the certificate claims.
        id: SpiffeId,
    },
    /// The peer's certificate (or a CA above it) is listed in a CRL.
    #[error("certificate of `{id}` is revoked")]
    Revoked {
        /// The SPIFFE ID the certificate claims.
        id: SpiffeId,
    },
    /// No bundle is configured for the trust domain of the peer's SPIFFE ID.
    #[error("no trust bundle for trust domain `{}` of peer `{id}`", id.trust_domain())]
    UnknownTrustDomain {
        /// The SPIFFE ID the certificate claims.
        id: SpiffeId,
    },
    /// The leaf breaks an X.509-SVID rule.
    #[error("invalid X.509-SVID: {0}")]
    InvalidSvid(#[from] SvidError),
    /// A CA in the chain carries URI name constraints, which webpki cannot evaluate and
    /// therefore rejects (fail closed).
    #[error(
        "a CA in the chain of `{id}` carries URI name constraints, which are not supported (webpki rejects such chains)"
    )]
    UriNameConstraintsUnsupported {
        /// The SPIFFE ID the certificate claims.
        id: SpiffeId,
    },
    /// Chain verification failed for another reason (bad signature, wrong extended key
    /// usage, malformed certificate, ...).
    #[error("certificate of `{id}` rejected: {reason}")]
    BadCertificate {
        /// The SPIFFE ID the certificate claims.
        id: SpiffeId,
        /// What webpki reported.
        reason: String,
    },
    /// The server proved an identity, but not the one the client expects.
    #[error("server identity `{got}` is not the expected {expected}")]
    UnexpectedServerId {
        /// What the client expects.
        expected: String,
        /// What the server proved.
        got: SpiffeId,
    },
    /// The TLS handshake did not finish in time.
    #[error("handshake did not finish within {0:?}")]
    HandshakeTimeout(Duration),
    /// The peer connected and sent nothing in time.
    #[error("peer sent nothing within {0:?} of connecting")]
    FirstByteTimeout(Duration),
    /// The peer spoke something other than TLS to a strict (mTLS-only) port.
    #[error("peer sent plaintext (first byte `{0:#04x}`) to a port that requires mutual TLS")]
    PlaintextInStrictMode(u8),
    /// The TLS handshake failed for a protocol reason.
    #[error("TLS handshake failed: {0}")]
    Handshake(String),
    /// An I/O error on the connection.
    #[error("connection error: {0}")]
    Io(#[source] Arc<std::io::Error>),
    /// A file could not be read.
    #[error("reading `{path}`: {source}")]
    ReadFile {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: Arc<std::io::Error>,
    },
    /// A certificate, key, bundle or CRL could not be parsed.
    #[error("invalid {what}: {reason}")]
    Parse {
        /// What was being parsed (e.g. `trust bundle for \`example.org\``).
        what: String,
        /// Why it failed.
        reason: String,
    },
    /// The private key does not belong to the leaf certificate, or cannot be used.
    #[error("private key does not fit certificate of `{id}`: {reason}")]
    KeyMismatch {
        /// The SPIFFE ID of the certificate.
        id: SpiffeId,
        /// Why.
        reason: String,
    },
    /// Our own SVID does not verify against the bundle of its own trust domain.
    #[error("own SVID `{id}` does not verify against its trust bundle: {reason}")]
    SvidNotTrusted {
        /// Our SPIFFE ID.
        id: SpiffeId,
        /// Why.
        reason: String,
    },
    /// A bundle was given for one trust domain but configured under another.
    #[error("bundle of trust domain `{got}` cannot be used for trust domain `{expected}`")]
    BundleMismatch {
        /// The trust domain asked for.
        expected: TrustDomain,
        /// The bundle's trust domain.
        got: TrustDomain,
    },
    /// The rustls configuration could not be built.
    #[error("TLS configuration: {0}")]
    Config(String),
    /// The peer presented more intermediate certificates than the configured limit
    /// ([`MtlsAcceptorBuilder::max_intermediates`](super::MtlsAcceptorBuilder::max_intermediates)).
    #[error("peer presented `{presented}` intermediate certificates; at most `{max}` are accepted")]
    ChainTooLong {
        /// How many intermediates the peer sent.
        presented: usize,
        /// The limit.
        max: usize,
    },
}

impl TlsError {
    /// A short, bounded label for the failure, usable as a metrics label.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::NoClientCertificate => "no_client_certificate",
            Self::UntrustedCa { .. } => "untrusted_ca",
            Self::Expired { .. } => "expired",
            Self::NotYetValid { .. } => "not_yet_valid",
            Self::Revoked { .. } => "revoked",
            Self::UnknownTrustDomain { .. } => "unknown_trust_domain",
            Self::InvalidSvid(_) => "invalid_svid",
            Self::UriNameConstraintsUnsupported { .. } => "uri_name_constraints_unsupported",
            Self::BadCertificate { .. } => "bad_certificate",
            Self::UnexpectedServerId { .. } => "unexpected_server_identity",
            Self::HandshakeTimeout(_) => "handshake_timeout",
            Self::FirstByteTimeout(_) => "first_byte_timeout",
            Self::PlaintextInStrictMode(_) => "plaintext_in_strict_mode",
            Self::Handshake(_) => "handshake",
            Self::Io(_) => "io",
            Self::ReadFile { .. } => "read_file",
            Self::Parse { .. } => "parse",
            Self::KeyMismatch { .. } => "key_mismatch",
            Self::SvidNotTrusted { .. } => "svid_not_trusted",
            Self::BundleMismatch { .. } => "bundle_mismatch",
            Self::Config(_) => "config",
            Self::ChainTooLong { .. } => "chain_too_long",
        }
    }

    /// True when the peer's certificate was examined and refused (as opposed to a
    /// timeout, a protocol or an I/O failure).
    pub fn is_certificate_rejection(&self) -> bool {
        matches!(
            self,
            Self::NoClientCertificate
                | Self::UntrustedCa { .. }
                | Self::Expired { .. }
                | Self::NotYetValid { .. }
                | Self::Revoked { .. }
                | Self::UnknownTrustDomain { .. }
                | Self::InvalidSvid(_)
                | Self::UriNameConstraintsUnsupported { .. }
                | Self::BadCertificate { .. }
                | Self::UnexpectedServerId { .. }
                | Self::ChainTooLong { .. }
        )
    }

    pub(crate) fn parse(what: impl Into<String>, reason: impl ToString) -> Self {
        Self::Parse {
            what: what.into(),
            reason: reason.to_string(),
        }
    }

    pub(crate) fn read_file(path: &std::path::Path, source: std::io::Error) -> Self {
        Self::ReadFile {
            path: path.display().to_string(),
            source: Arc::new(source),
        }
    }

    /// Finds the verdict of a meshless verifier in an error's source chain, as an HTTP
    /// client built on a meshless rustls configuration reports it (reqwest, hyper-util,
    /// tonic): for a server with the wrong identity, [`TlsError::UnexpectedServerId`]
    /// naming the expected and the presented ID.
    ///
    /// ```
    /// use meshless::TlsError;
    /// let io = std::io::Error::other(TlsError::NoClientCertificate);
    /// let found = TlsError::from_error_chain(&io);
    /// assert!(matches!(found, Some(TlsError::NoClientCertificate)));
    /// ```
    pub fn from_error_chain(err: &(dyn std::error::Error + 'static)) -> Option<Self> {
        if let Some(found) = Self::from_one(err) {
            return Some(found);
        }
        // `io::Error::source` skips the error it wraps (which may be another
        // `io::Error`, as hyper-rustls reports it): look inside it too.
        if let Some(inner) = err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            && let Some(found) = Self::from_error_chain(inner)
        {
            return Some(found);
        }
        err.source().and_then(Self::from_error_chain)
    }

    fn from_one(err: &(dyn std::error::Error + 'static)) -> Option<Self> {
        if let Some(ours) = err.downcast_ref::<Self>() {
            return Some(ours.clone());
        }
        match err.downcast_ref::<rustls::Error>()? {
            rustls::Error::InvalidCertificate(rustls::CertificateError::Other(other)) => {
                other.0.downcast_ref::<Self>().cloned()
            }
            _ => None,
        }
    }

    /// Recovers the cause of a failed handshake from the error tokio-rustls returned:
    /// our own verifier's verdict when it refused the peer, else the rustls or I/O error.
    pub(crate) fn from_handshake(err: std::io::Error) -> Self {
        let Some(inner) = err.get_ref() else {
            return Self::Io(Arc::new(err));
        };
        let Some(tls) = inner.downcast_ref::<rustls::Error>() else {
            return Self::Io(Arc::new(err));
        };
        match tls {
            rustls::Error::NoCertificatesPresented => Self::NoClientCertificate,
            rustls::Error::InvalidCertificate(rustls::CertificateError::Other(other)) => {
                match other.0.downcast_ref::<TlsError>() {
                    Some(ours) => ours.clone(),
                    None => Self::Handshake(tls.to_string()),
                }
            }
            other => Self::Handshake(other.to_string()),
        }
    }

    /// Wraps a verification verdict so that it travels through rustls and can be
    /// recovered by [`TlsError::from_handshake`].
    pub(crate) fn into_rustls(self) -> rustls::Error {
        // rustls answers `Other` with a bad_certificate alert, which is all the peer
        // needs to know; the detailed verdict stays on our side for logs and metrics.
        rustls::Error::InvalidCertificate(rustls::CertificateError::Other(rustls::OtherError(
            Arc::new(self),
        )))
    }
}

impl From<std::io::Error> for TlsError {
    fn from(err: std::io::Error) -> Self {
        Self::Io(Arc::new(err))
    }
}
