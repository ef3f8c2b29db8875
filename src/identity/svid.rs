//! X.509-SVID rules (SPIFFE X509-SVID §4, §5): pure functions from DER bytes to an
//! identity. No chain or signature verification happens here — that is webpki's job in
//! the transport — only the rules the SPIFFE standard adds on top of RFC 5280.
//!
//! ```
//! # #[cfg(feature = "testing")] {
//! use meshless::{svid, testing::TestCa};
//! let ca = TestCa::new("example.org")?;
//! let cert = ca.issue("spiffe://example.org/ns/web/sa/frontend")?;
//! let id = svid::validate_leaf(cert.leaf_der())?;
//! assert_eq!(id.as_str(), "spiffe://example.org/ns/web/sa/frontend");
//! # }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use x509_cert::Certificate;
use x509_cert::der::Decode;
use x509_cert::der::oid::{AssociatedOid, ObjectIdentifier};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{BasicConstraints, KeyUsage, SubjectAltName};

use super::linkerd::{LinkerdId, LinkerdIdError};
use super::spiffe_id::{IdError, SpiffeId};

/// Why a certificate is not a valid X.509-SVID (or SVID signing certificate).
///
/// A certificate that breaks a rule is rejected with the rule it broke; it is never
/// silently treated as "unauthenticated".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SvidError {
    /// The bytes are not a DER X.509 certificate.
    #[error("certificate is not valid DER X.509: {0}")]
    Malformed(String),
    /// An extension appears twice (RFC 5280 §4.2 forbids it).
    #[error("certificate carries extension {0} more than once")]
    DuplicateExtension(String),
    /// The leaf has no URI SAN.
    #[error(
        "leaf certificate has no URI SAN: an X.509-SVID carries its SPIFFE ID as exactly one URI SAN"
    )]
    NoUriSan,
    /// The leaf has more than one URI SAN.
    #[error("leaf certificate has {0} URI SANs: an X.509-SVID must have exactly one")]
    MultipleUriSans(usize),
    /// The URI SAN is not a valid SPIFFE ID.
    #[error("URI SAN `{uri}` is not a valid SPIFFE ID: {source}")]
    InvalidSpiffeId {
        /// The URI SAN as found in the certificate.
        uri: String,
        /// The rule it broke.
        source: IdError,
    },
    /// The SPIFFE ID names a trust domain, not a workload.
    #[error("SPIFFE ID `{0}` has no path: an X.509-SVID must name a workload, not a trust domain")]
    RootId(SpiffeId),
    /// The leaf has basicConstraints `cA=true`.
    #[error("leaf certificate is a CA (basicConstraints cA=true): an X.509-SVID leaf must not be")]
    LeafIsCa,
    /// The keyUsage extension is missing.
    #[error("certificate has no keyUsage extension, which X.509-SVIDs require")]
    MissingKeyUsage,
    /// The keyUsage extension is not marked critical.
    #[error("keyUsage extension is not marked critical, as X.509-SVIDs require")]
    KeyUsageNotCritical,
    /// The leaf lacks `digitalSignature`.
    #[error("leaf keyUsage lacks digitalSignature, which X.509-SVID leaves require")]
    NoDigitalSignature,
    /// The leaf may sign certificates.
    #[error("leaf keyUsage has keyCertSign: an X.509-SVID leaf must not sign certificates")]
    LeafKeyCertSign,
    /// The leaf may sign CRLs.
    #[error("leaf keyUsage has cRLSign: an X.509-SVID leaf must not sign CRLs")]
    LeafCrlSign,
    /// A certificate above the leaf is not a CA.
    #[error("signing certificate is not a CA (basicConstraints cA is not true)")]
    SignerNotCa,
    /// A certificate above the leaf lacks `keyCertSign`.
    #[error("signing certificate's keyUsage lacks keyCertSign")]
    SignerNoKeyCertSign,
    /// The chain is empty.
    #[error("certificate chain is empty")]
    EmptyChain,
    /// A Linkerd leaf must carry exactly one DNS SAN.
    #[error("leaf certificate has {0} DNS SANs: a Linkerd identity certificate has exactly one")]
    DnsSanCount(usize),
    /// The DNS SAN is not a Linkerd identity.
    #[error(transparent)]
    InvalidLinkerdId(#[from] LinkerdIdError),
}

/// The parts of a certificate the SVID rules look at.
struct Facts {
    uris: Vec<String>,
    dns_names: Vec<String>,
    is_ca: bool,
    /// `(critical, usage)`, when the extension is present.
    key_usage: Option<(bool, KeyUsage)>,
}

fn facts(der: &[u8]) -> Result<Facts, SvidError> {
    let cert = Certificate::from_der(der).map_err(|e| SvidError::Malformed(e.to_string()))?;
    let mut facts = Facts {
        uris: Vec::new(),
        dns_names: Vec::new(),
        is_ca: false,
        key_usage: None,
    };
    let extensions = cert.tbs_certificate.extensions.unwrap_or_default();
    let mut seen: Vec<ObjectIdentifier> = Vec::with_capacity(extensions.len());
    for ext in &extensions {
        if seen.contains(&ext.extn_id) {
            return Err(SvidError::DuplicateExtension(ext.extn_id.to_string()));
        }
        seen.push(ext.extn_id);
        let value = ext.extn_value.as_bytes();
        let malformed = |e: x509_cert::der::Error| {
            SvidError::Malformed(format!("extension {}: {e}", ext.extn_id))
        };
        if ext.extn_id == SubjectAltName::OID {
            for name in SubjectAltName::from_der(value).map_err(malformed)?.0 {
                match name {
                    GeneralName::UniformResourceIdentifier(uri) => facts.uris.push(uri.to_string()),
                    GeneralName::DnsName(dns) => facts.dns_names.push(dns.to_string()),
                    _ => {}
                }
            }
        } else if ext.extn_id == BasicConstraints::OID {
            facts.is_ca = BasicConstraints::from_der(value).map_err(malformed)?.ca;
        } else if ext.extn_id == KeyUsage::OID {
            facts.key_usage = Some((ext.critical, KeyUsage::from_der(value).map_err(malformed)?));
        }
    }
    Ok(facts)
}

fn check_leaf_usage(facts: &Facts) -> Result<(), SvidError> {
    if facts.is_ca {
        return Err(SvidError::LeafIsCa);
    }
    let (critical, usage) = facts.key_usage.as_ref().ok_or(SvidError::MissingKeyUsage)?;
    if !critical {
        return Err(SvidError::KeyUsageNotCritical);
    }
    if !usage.digital_signature() {
        return Err(SvidError::NoDigitalSignature);
    }
    if usage.key_cert_sign() {
        return Err(SvidError::LeafKeyCertSign);
    }
    if usage.crl_sign() {
        return Err(SvidError::LeafCrlSign);
    }
    Ok(())
}

/// Applies the X.509-SVID leaf rules to a DER certificate and returns its SPIFFE ID.
///
/// The rules: exactly one URI SAN (URIs of every scheme count), which is a valid SPIFFE
/// ID with a non-root path; basicConstraints cA false (or absent); keyUsage present,
/// critical, with digitalSignature and without keyCertSign and cRLSign; no extension
/// repeated. Other SAN types (DNS names, IPs) are allowed.
///
/// # Errors
/// The first rule the certificate breaks, as an [`SvidError`].
pub fn validate_leaf(der: &[u8]) -> Result<SpiffeId, SvidError> {
    let facts = facts(der)?;
    let uri = match facts.uris.as_slice() {
        [] => return Err(SvidError::NoUriSan),
        [uri] => uri,
        many => return Err(SvidError::MultipleUriSans(many.len())),
    };
    let id = SpiffeId::parse(uri).map_err(|source| SvidError::InvalidSpiffeId {
        uri: uri.clone(),
        source,
    })?;
    if id.is_trust_domain_id() {
        return Err(SvidError::RootId(id));
    }
    check_leaf_usage(&facts)?;
    Ok(id)
}

/// Applies the rules for certificates that sign X.509-SVIDs (intermediates and roots):
/// basicConstraints cA true and keyUsage with keyCertSign.
///
/// # Errors
/// [`SvidError::SignerNotCa`] or [`SvidError::SignerNoKeyCertSign`], or a parse error.
pub fn validate_signing_cert(der: &[u8]) -> Result<(), SvidError> {
    let facts = facts(der)?;
    if !facts.is_ca {
        return Err(SvidError::SignerNotCa);
    }
    match facts.key_usage {
        Some((_, usage)) if usage.key_cert_sign() => Ok(()),
        Some(_) => Err(SvidError::SignerNoKeyCertSign),
        None => Err(SvidError::MissingKeyUsage),
    }
}

/// Validates a chain loaded as one's own SVID (leaf first, then intermediates) and
/// returns the leaf's SPIFFE ID.
///
/// # Errors
/// [`SvidError::EmptyChain`], or the first rule the leaf or an intermediate breaks.
pub fn validate_chain<C: AsRef<[u8]>>(chain: &[C]) -> Result<SpiffeId, SvidError> {
    let (leaf, intermediates) = chain.split_first().ok_or(SvidError::EmptyChain)?;
    let id = validate_leaf(leaf.as_ref())?;
    for cert in intermediates {
        validate_signing_cert(cert.as_ref())?;
    }
    Ok(id)
}

/// Reads the Linkerd identity of a leaf: exactly one DNS SAN that is a Linkerd
/// workload identity, not a CA, and (when keyUsage is present) digitalSignature without
/// keyCertSign. URI SANs are ignored.
///
/// # Errors
/// [`SvidError`] naming the broken rule.
pub fn validate_linkerd_leaf(der: &[u8]) -> Result<LinkerdId, SvidError> {
    let facts = facts(der)?;
    let name = match facts.dns_names.as_slice() {
        [name] => name,
        names => return Err(SvidError::DnsSanCount(names.len())),
    };
    let id = LinkerdId::parse(name)?;
    if facts.is_ca {
        return Err(SvidError::LeafIsCa);
    }
    if let Some((_, usage)) = &facts.key_usage {
        if !usage.digital_signature() {
            return Err(SvidError::NoDigitalSignature);
        }
        if usage.key_cert_sign() {
            return Err(SvidError::LeafKeyCertSign);
        }
    }
    Ok(id)
}
