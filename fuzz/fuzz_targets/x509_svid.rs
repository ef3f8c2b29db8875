//! X.509-SVID leaf rules over arbitrary DER: never panics, and never yields an identity
//! that an independent parser (webpki), where it parses the certificate, disagrees with:
//! the certificate must carry exactly that one URI SAN.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meshless::svid;

fuzz_target!(|data: &[u8]| {
    let _ = svid::validate_signing_cert(data);
    let _ = svid::validate_linkerd_leaf(data);
    let Ok(id) = svid::validate_leaf(data) else {
        return;
    };
    assert!(!id.is_trust_domain_id(), "an SVID must name a workload");
    // webpki is stricter on some encodings; what it cannot parse never passes a
    // handshake. What it can parse must agree with meshless on the identity.
    let der = rustls_pki_types::CertificateDer::from(data);
    let Ok(cert) = webpki::EndEntityCert::try_from(&der) else {
        return;
    };
    let uris: Vec<&str> = cert.valid_uri_names().collect();
    assert_eq!(uris, [id.as_str()], "the identity must be the certificate's one URI SAN");
});
