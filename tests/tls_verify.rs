//! Who `MtlsAcceptor` lets in: real TLS handshakes over loopback with certificates made
//! at test time, each refusal checked for its reason on the server side.

mod common;

use common::*;
use meshless::testing::{Defect, TestCa};
use meshless::tls::{BundleSet, MtlsAcceptor};
use meshless::{SvidError, TlsError};
use tokio::io::AsyncWriteExt;

/// Checks that an error is the expected one.
type Check = fn(&SvidError) -> bool;

#[tokio::test]
async fn accepts_a_good_svid_with_its_identity_and_addresses() {
    let ca = TestCa::new("example.org").unwrap();
    let client = ca.issue(CLIENT_ID).unwrap();
    let peer = verdict(&ca, bundle(&ca).into(), Some(&client))
        .await
        .unwrap();
    assert_eq!(peer.spiffe_id().unwrap().as_str(), CLIENT_ID);
    assert!(peer.remote_addr().unwrap().ip().is_loopback());
    assert_ne!(peer.local_addr().unwrap().port(), 0);
}

#[tokio::test]
async fn accepts_a_chain_through_an_intermediate() {
    let ca = TestCa::new("example.org").unwrap();
    let client = ca.intermediate().unwrap().issue(CLIENT_ID).unwrap();
    let peer = verdict(&ca, bundle(&ca).into(), Some(&client))
        .await
        .unwrap();
    assert_eq!(peer.spiffe_id().unwrap().as_str(), CLIENT_ID);
}

#[tokio::test]
async fn accepts_a_client_of_a_federated_trust_domain() {
    let ca = TestCa::new("example.org").unwrap();
    let partner = TestCa::new("partner.net").unwrap();
    let client = partner.issue("spiffe://partner.net/billing").unwrap();
    let bundles = BundleSet::new().with(bundle(&ca)).with(bundle(&partner));
    let peer = verdict(&ca, bundles, Some(&client)).await.unwrap();
    assert_eq!(
        peer.spiffe_id().unwrap().as_str(),
        "spiffe://partner.net/billing"
    );
}

#[tokio::test]
async fn rejects_a_client_without_certificate() {
    let ca = TestCa::new("example.org").unwrap();
    let err = verdict(&ca, bundle(&ca).into(), None).await.unwrap_err();
    assert!(matches!(err, TlsError::NoClientCertificate), "{err}");
    assert_eq!(err.reason(), "no_client_certificate");
}

#[tokio::test]
async fn rejects_an_untrusted_ca_of_the_same_trust_domain() {
    let ca = TestCa::new("example.org").unwrap();
    let rogue = TestCa::new("example.org").unwrap();
    let client = rogue.issue(CLIENT_ID).unwrap();
    let err = verdict(&ca, bundle(&ca).into(), Some(&client))
        .await
        .unwrap_err();
    assert!(matches!(err, TlsError::UntrustedCa { .. }), "{err}");
    assert_eq!(err.reason(), "untrusted_ca");
}

#[tokio::test]
async fn rejects_an_expired_certificate() {
    let ca = TestCa::new("example.org").unwrap();
    let client = ca.issue_defective(CLIENT_ID, Defect::Expired).unwrap();
    let err = verdict(&ca, bundle(&ca).into(), Some(&client))
        .await
        .unwrap_err();
    assert!(matches!(err, TlsError::Expired { .. }), "{err}");
}

#[tokio::test]
async fn rejects_a_certificate_not_yet_valid() {
    let ca = TestCa::new("example.org").unwrap();
    let client = ca.issue_defective(CLIENT_ID, Defect::NotYetValid).unwrap();
    let err = verdict(&ca, bundle(&ca).into(), Some(&client))
        .await
        .unwrap_err();
    assert!(matches!(err, TlsError::NotYetValid { .. }), "{err}");
}

#[tokio::test]
async fn rejects_a_trust_domain_without_bundle() {
    let ca = TestCa::new("example.org").unwrap();
    let stranger = TestCa::new("other.org").unwrap();
    let client = stranger.issue("spiffe://other.org/ns/x/sa/y").unwrap();
    let err = verdict(&ca, bundle(&ca).into(), Some(&client))
        .await
        .unwrap_err();
    assert!(matches!(err, TlsError::UnknownTrustDomain { .. }), "{err}");
    assert!(err.to_string().contains("`other.org`"), "{err}");
}

#[tokio::test]
async fn rejects_a_federated_ca_minting_an_identity_of_our_domain() {
    let ca = TestCa::new("example.org").unwrap();
    let partner = TestCa::new("partner.net").unwrap();
    // partner.net's CA is trusted — for partner.net IDs only.
    let forged = partner.issue(CLIENT_ID).unwrap();
    let bundles = BundleSet::new().with(bundle(&ca)).with(bundle(&partner));
    let err = verdict(&ca, bundles, Some(&forged)).await.unwrap_err();
    match err {
        TlsError::UntrustedCa { id } => assert_eq!(id.as_str(), CLIENT_ID),
        other => panic!("expected untrusted CA, got {other}"),
    }
}

#[tokio::test]
async fn rejects_each_invalid_svid_shape_with_its_rule() {
    let ca = TestCa::new("example.org").unwrap();
    let cases: Vec<(Defect, Check)> = vec![
        (Defect::NoUriSan, |e| matches!(e, SvidError::NoUriSan)),
        (Defect::TwoUriSans, |e| {
            matches!(e, SvidError::MultipleUriSans(2))
        }),
        (Defect::CaLeaf, |e| matches!(e, SvidError::LeafIsCa)),
        (Defect::KeyCertSign, |e| {
            matches!(e, SvidError::LeafKeyCertSign)
        }),
        (Defect::NoDigitalSignature, |e| {
            matches!(e, SvidError::NoDigitalSignature)
        }),
    ];
    for (defect, check) in cases {
        let client = ca.issue_defective(CLIENT_ID, defect.clone()).unwrap();
        let err = verdict(&ca, bundle(&ca).into(), Some(&client))
            .await
            .unwrap_err();
        match &err {
            TlsError::InvalidSvid(svid_err) if check(svid_err) => {}
            other => panic!("{defect:?}: unexpected verdict {other}"),
        }
        assert_eq!(err.reason(), "invalid_svid");
    }
}

#[tokio::test]
async fn rejects_a_server_auth_only_certificate_as_client() {
    let ca = TestCa::new("example.org").unwrap();
    let client = ca
        .issue_defective(CLIENT_ID, Defect::ServerAuthOnly)
        .unwrap();
    let err = verdict(&ca, bundle(&ca).into(), Some(&client))
        .await
        .unwrap_err();
    assert!(matches!(err, TlsError::BadCertificate { .. }), "{err}");
}

#[tokio::test]
async fn rejects_plaintext_in_strict_mode() {
    let ca = TestCa::new("example.org").unwrap();
    let acceptor = MtlsAcceptor::new(server_source(&ca)).unwrap();
    let (addr, mut rx) = spawn_server(acceptor).await;
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let err = outcome(&mut rx).await.unwrap_err();
    assert!(
        matches!(err, TlsError::PlaintextInStrictMode(b'G')),
        "{err}"
    );
    assert_eq!(err.reason(), "plaintext_in_strict_mode");
}

#[tokio::test]
async fn rejects_a_leaf_whose_intermediate_cannot_sign() {
    // A chain where a leaf certificate poses as an intermediate: webpki refuses a
    // non-CA issuer, and the verdict names a certificate problem.
    let ca = TestCa::new("example.org").unwrap();
    let leaf = ca.issue(CLIENT_ID).unwrap();
    let other = ca.issue("spiffe://example.org/ns/web/sa/other").unwrap();
    let mut chain = leaf.chain().to_vec();
    chain.push(other.chain()[0].clone());
    let source = server_source(&ca);
    let acceptor = MtlsAcceptor::new(source.clone()).unwrap();
    let (addr, mut rx) = spawn_server(acceptor).await;
    let config = rustls::ClientConfig::builder_with_provider(meshless::tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(std::sync::Arc::new(
            meshless::tls::SpiffeServerVerifier::new(source, expected(&ca)),
        ))
        .with_client_auth_cert(chain, leaf.key())
        .unwrap();
    // The leaf itself chains to the root directly, so the extra certificate is the
    // only thing wrong: it must not be accepted as a signing certificate.
    let _ = talk(addr, config).await;
    let err = outcome(&mut rx).await.unwrap_err();
    assert!(
        matches!(err, TlsError::InvalidSvid(SvidError::SignerNotCa)),
        "{err}"
    );
}

#[tokio::test]
async fn rejects_a_certificate_revoked_by_a_crl_of_its_trust_domain() {
    let ca = TestCa::new("example.org").unwrap();
    let revoked = ca.issue(CLIENT_ID).unwrap();
    let still_good = ca.issue("spiffe://example.org/ns/web/sa/other").unwrap();
    let crl = ca.crl_pem(&[&revoked]).unwrap();
    let with_crl = bundle(&ca).with_crls_pem(crl.as_bytes()).unwrap();
    let err = verdict(&ca, with_crl.clone().into(), Some(&revoked))
        .await
        .unwrap_err();
    assert!(matches!(err, TlsError::Revoked { .. }), "{err}");
    let peer = verdict(&ca, with_crl.into(), Some(&still_good))
        .await
        .unwrap();
    assert!(peer.is_authenticated());
}

#[tokio::test]
async fn optional_client_certificates_yield_unauthenticated_but_still_verify() {
    let ca = TestCa::new("example.org").unwrap();
    let source = server_source(&ca);
    let acceptor = MtlsAcceptor::builder(source.clone())
        .allow_missing_client_certificate()
        .build()
        .unwrap();
    let (addr, mut rx) = spawn_server(acceptor).await;
    let said = talk(addr, client_config(&source, None, expected(&ca))).await;
    let peer = outcome(&mut rx).await.unwrap();
    assert_eq!(
        peer.unauthenticated_reason(),
        Some(meshless::Unauthenticated::NoClientCertificate)
    );
    assert_eq!(said, Ok(format!("hello {peer}\n")));
    // A presented certificate is still verified.
    let rogue = TestCa::new("example.org")
        .unwrap()
        .issue(CLIENT_ID)
        .unwrap();
    let _ = talk(addr, client_config(&source, Some(&rogue), expected(&ca))).await;
    let err = outcome(&mut rx).await.unwrap_err();
    assert!(matches!(err, TlsError::UntrustedCa { .. }), "{err}");
}
