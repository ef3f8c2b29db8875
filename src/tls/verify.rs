//! The SPIFFE peer verification both verifiers share: read the leaf's SPIFFE ID, pick
//! the bundle of that ID's trust domain, verify the chain with webpki against those
//! roots only, then apply the X.509-SVID leaf rules.

use rustls_pki_types::{CertificateDer, UnixTime};
use webpki::{EndEntityCert, KeyUsage, RevocationOptionsBuilder, UnknownStatusPolicy};

use super::constraints::has_uri_name_constraints;
use super::{BundleSet, TlsError, TrustBundle, provider};
use crate::SpiffeId;
use crate::svid::{validate_leaf, validate_signing_cert};

/// The most intermediates a peer may present by default: webpki's own limit on the
/// depth of a path (six CAs between leaf and root), so the default refuses no chain
/// that could verify; the limit bounds the certificates parsed before that.
pub(crate) const DEFAULT_MAX_INTERMEDIATES: usize = 6;

/// Verifies a peer's chain and returns its SPIFFE ID.
///
/// The leaf rules run first because the trust domain that selects the bundle comes from
/// the leaf's one URI SAN; a leaf with zero or two URI SANs has no trust domain to
/// select. Presented intermediates must be signing certificates (webpki checks
/// basicConstraints but not keyUsage).
pub(crate) fn verify_peer(
    bundles: &BundleSet,
    end_entity: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    now: UnixTime,
    usage: KeyUsage,
    max_intermediates: usize,
) -> Result<SpiffeId, TlsError> {
    // Counted first: nothing of an over-long chain is parsed.
    if intermediates.len() > max_intermediates {
        return Err(TlsError::ChainTooLong {
            presented: intermediates.len(),
            max: max_intermediates,
        });
    }
    let id = validate_leaf(end_entity)?;
    let Some(bundle) = bundles.get(id.trust_domain()) else {
        return Err(TlsError::UnknownTrustDomain { id });
    };
    verify_chain(bundle, &id, end_entity, intermediates, now, usage)?;
    for cert in intermediates {
        validate_signing_cert(cert)?;
    }
    Ok(id)
}

/// Verifies `end_entity` against `bundle`'s roots (and CRLs) with webpki.
pub(crate) fn verify_chain(
    bundle: &TrustBundle,
    id: &SpiffeId,
    end_entity: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    now: UnixTime,
    usage: KeyUsage,
) -> Result<(), TlsError> {
    let cert = EndEntityCert::try_from(end_entity).map_err(|e| TlsError::BadCertificate {
        id: id.clone(),
        reason: format!("{e:?}"),
    })?;
    let crl_refs: Vec<_> = bundle.crls().iter().collect();
    let revocation = match RevocationOptionsBuilder::new(&crl_refs) {
        // Certificates no CRL speaks about are fine: CRLs are an optional deny list.
        Ok(builder) => Some(
            builder
                .with_status_policy(UnknownStatusPolicy::Allow)
                .build(),
        ),
        Err(_) => None,
    };
    let algorithms = provider().signature_verification_algorithms.all;
    cert.verify_for_usage(
        algorithms,
        bundle.anchors(),
        intermediates,
        now,
        usage,
        revocation,
        None,
    )
    .map(|_| ())
    .map_err(|e| map_webpki(e, bundle, id, intermediates))
}

fn map_webpki(
    err: webpki::Error,
    bundle: &TrustBundle,
    id: &SpiffeId,
    intermediates: &[CertificateDer<'_>],
) -> TlsError {
    let id = id.clone();
    match err {
        // A signature that no trusted key made is an untrusted issuer too (e.g. a rogue
        // CA that copies a trusted root's name).
        webpki::Error::UnknownIssuer | webpki::Error::InvalidSignatureForPublicKey => {
            TlsError::UntrustedCa { id }
        }
        webpki::Error::CertExpired { .. } => TlsError::Expired { id },
        webpki::Error::CertNotValidYet { .. } => TlsError::NotYetValid { id },
        webpki::Error::CertRevoked => TlsError::Revoked { id },
        webpki::Error::NameConstraintViolation
            if bundle.has_uri_constrained_root()
                || intermediates.iter().any(|c| has_uri_name_constraints(c)) =>
        {
            TlsError::UriNameConstraintsUnsupported { id }
        }
        other => TlsError::BadCertificate {
            id,
            reason: format!("{other:?}"),
        },
    }
}
