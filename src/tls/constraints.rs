//! Detection of URI name constraints, which webpki refuses to evaluate.
//!
//! webpki (≥ 0.103.12) fails closed on any chain whose CA constrains URI names, with
//! the same `NameConstraintViolation` it uses for real violations. SPIFFE deployments
//! sometimes constrain their intermediates to `spiffe://td` URIs; when such a chain is
//! refused, the error should say so rather than blame the peer.

use x509_cert::Certificate;
use x509_cert::der::Decode;
use x509_cert::der::oid::AssociatedOid;
use x509_cert::ext::pkix::NameConstraints;
use x509_cert::ext::pkix::name::GeneralName;

/// True when `der` is a certificate whose nameConstraints extension names a URI subtree
/// (permitted or excluded). Unparsable input is `false`: this only explains an error
/// webpki already reported.
pub(crate) fn has_uri_name_constraints(der: &[u8]) -> bool {
    let Ok(cert) = Certificate::from_der(der) else {
        return false;
    };
    let extensions = cert.tbs_certificate.extensions.unwrap_or_default();
    extensions
        .iter()
        .filter(|ext| ext.extn_id == NameConstraints::OID)
        .filter_map(|ext| NameConstraints::from_der(ext.extn_value.as_bytes()).ok())
        .any(|nc| {
            nc.permitted_subtrees
                .iter()
                .chain(nc.excluded_subtrees.iter())
                .flatten()
                .any(|subtree| matches!(subtree.base, GeneralName::UniformResourceIdentifier(_)))
        })
}
