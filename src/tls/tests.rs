//! Unit tests for bundles, SVID loading and material consistency.

use base64::Engine as _;
use rustls_pki_types::UnixTime;

use super::verify::verify_peer;
use super::*;
use crate::TrustDomain;
use crate::testing::{Defect, TestCa};

const ID: &str = "spiffe://example.org/ns/web/sa/api";

fn td() -> TrustDomain {
    TrustDomain::new("example.org").unwrap()
}

fn jwks(keys: &str) -> String {
    format!(r#"{{"keys":[{keys}],"spiffe_refresh_hint":300,"spiffe_sequence":12}}"#)
}

fn x509_key(der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    format!(r#"{{"use":"x509-svid","kty":"EC","crv":"P-256","x5c":["{b64}"]}}"#)
}

#[test]
fn reads_a_spiffe_bundle_ignoring_jwt_keys() {
    let ca = TestCa::new("example.org").unwrap();
    let doc = jwks(&format!(
        r#"{},{{"use":"jwt-svid","kid":"a","kty":"EC"}},{{"use":"future-use","kty":"EC"}}"#,
        x509_key(ca.root())
    ));
    let bundle = TrustBundle::parse(td(), doc.as_bytes()).unwrap();
    assert_eq!(bundle.roots(), std::slice::from_ref(ca.root()));
    assert_eq!(bundle.sequence(), Some(12));
    assert_eq!(
        bundle.refresh_hint(),
        Some(std::time::Duration::from_secs(300))
    );
}

#[test]
fn refuses_malformed_spiffe_bundles_with_the_cause() {
    let ca = TestCa::new("example.org").unwrap();
    let b64 = base64::engine::general_purpose::STANDARD.encode(ca.root());
    let cases = [
        ("not json".to_owned(), "expected"),
        (r#"{"spiffe_sequence":1}"#.to_owned(), "`keys`"),
        (
            jwks(&format!(r#"{{"use":"x509-svid","x5c":["{b64}","{b64}"]}}"#)),
            "exactly one",
        ),
        (jwks(r#"{"use":"x509-svid"}"#), "exactly one"),
        (jwks(r#"{"use":"x509-svid","x5c":["%%%"]}"#), "base64"),
    ];
    for (doc, needle) in cases {
        let err = TrustBundle::from_spiffe_json(td(), doc.as_bytes()).unwrap_err();
        assert!(err.to_string().contains(needle), "{doc}: {err}");
        assert_eq!(err.reason(), "parse");
    }
}

#[test]
fn an_empty_spiffe_bundle_trusts_nobody() {
    let ca = TestCa::new("example.org").unwrap();
    let empty = TrustBundle::from_spiffe_json(td(), br#"{"keys":[]}"#).unwrap();
    assert!(empty.roots().is_empty());
    let leaf = ca.issue(ID).unwrap();
    let err = verify_peer(
        &BundleSet::from(empty),
        &leaf.chain()[0],
        &[],
        UnixTime::now(),
        webpki::KeyUsage::client_auth(),
        6,
    )
    .unwrap_err();
    assert!(matches!(err, TlsError::UntrustedCa { .. }), "{err}");
}

#[test]
fn refuses_a_pem_bundle_without_certificates_or_with_a_leaf() {
    let err = TrustBundle::from_pem(td(), b"# nothing here\n").unwrap_err();
    assert!(err.to_string().contains("no CERTIFICATE"), "{err}");
    let ca = TestCa::new("example.org").unwrap();
    let leaf = ca.issue(ID).unwrap();
    let err = TrustBundle::from_pem(td(), leaf.chain_pem().as_bytes()).unwrap_err();
    assert!(err.to_string().contains("root 0"), "{err}");
}

#[test]
fn loads_a_good_svid_and_refuses_broken_ones() {
    let ca = TestCa::new("example.org").unwrap();
    let good = ca.issue(ID).unwrap();
    let svid = Svid::from_pem(good.chain_pem().as_bytes(), good.key_pem().as_bytes()).unwrap();
    assert_eq!(svid.spiffe_id().as_str(), ID);
    assert!(svid.not_after().unwrap() > UnixTime::now().as_secs());

    let other = ca.issue(ID).unwrap();
    let err = Svid::new(good.chain().to_vec(), other.key()).unwrap_err();
    assert!(matches!(err, TlsError::KeyMismatch { .. }), "{err}");

    let expired = ca.issue_defective(ID, Defect::Expired).unwrap();
    let err = Svid::new(expired.chain().to_vec(), expired.key()).unwrap_err();
    assert!(matches!(err, TlsError::Expired { .. }), "{err}");

    let two = ca.issue_defective(ID, Defect::TwoUriSans).unwrap();
    let err = Svid::new(two.chain().to_vec(), two.key()).unwrap_err();
    assert!(matches!(err, TlsError::InvalidSvid(_)), "{err}");

    let err = Svid::from_pem(b"", good.key_pem().as_bytes()).unwrap_err();
    assert!(
        matches!(err, TlsError::InvalidSvid(crate::SvidError::EmptyChain)),
        "{err}"
    );
    let err = Svid::from_pem(good.chain_pem().as_bytes(), b"garbage").unwrap_err();
    assert_eq!(err.reason(), "parse");
}

#[test]
fn material_refuses_an_svid_that_its_own_bundle_does_not_trust() {
    let ca = TestCa::new("example.org").unwrap();
    let other = TestCa::new("example.org").unwrap();
    let issued = ca.issue(ID).unwrap();
    let svid = Svid::new(issued.chain().to_vec(), issued.key()).unwrap();
    let wrong = TrustBundle::new(td(), vec![other.root().clone()]).unwrap();
    let err = TlsMaterial::new(svid.clone(), wrong).unwrap_err();
    assert!(matches!(err, TlsError::SvidNotTrusted { .. }), "{err}");
    let right = TrustBundle::new(td(), vec![ca.root().clone()]).unwrap();
    assert!(TlsMaterial::new(svid, right).is_ok());
}

#[test]
fn reasons_are_distinct_snake_case_labels() {
    let id: crate::SpiffeId = ID.parse().unwrap();
    let errors = [
        TlsError::NoClientCertificate,
        TlsError::UntrustedCa { id: id.clone() },
        TlsError::Expired { id: id.clone() },
        TlsError::NotYetValid { id: id.clone() },
        TlsError::Revoked { id: id.clone() },
        TlsError::UnknownTrustDomain { id: id.clone() },
        TlsError::InvalidSvid(crate::SvidError::NoUriSan),
        TlsError::UriNameConstraintsUnsupported { id: id.clone() },
        TlsError::HandshakeTimeout(std::time::Duration::from_secs(1)),
        TlsError::FirstByteTimeout(std::time::Duration::from_secs(1)),
        TlsError::PlaintextInStrictMode(b'G'),
        TlsError::Handshake("x".into()),
    ];
    let mut seen = std::collections::BTreeSet::new();
    for err in &errors {
        let reason = err.reason();
        assert!(
            reason.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
            "{reason}"
        );
        assert!(seen.insert(reason), "duplicate reason {reason}");
    }
}
