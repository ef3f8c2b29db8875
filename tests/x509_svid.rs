//! The X.509-SVID rules over certificates from `TestCa` and from the `openssl` command
//! line, so that the parser also meets certificates it did not make.

use std::path::Path;
use std::process::Command;

use meshless::svid::{validate_chain, validate_leaf, validate_linkerd_leaf, validate_signing_cert};
use meshless::testing::{Defect, TestCa, certs_from_pem};
use meshless::{IdError, SvidError};

/// Checks that an error is the expected one.
type Check = fn(&SvidError) -> bool;

const ID: &str = "spiffe://example.org/ns/web/sa/frontend";

#[test]
fn accepts_a_good_svid_and_reads_its_id() {
    let ca = TestCa::new("example.org").unwrap();
    let svid = ca.issue(ID).unwrap();
    let id = validate_leaf(svid.leaf_der()).unwrap();
    assert_eq!(id.as_str(), ID);
    assert_eq!(id.namespace(), Some("web"));
    assert_eq!(validate_chain(svid.chain()).unwrap(), id);
}

#[test]
fn rejects_each_defect_with_its_own_reason() {
    let ca = TestCa::new("example.org").unwrap();
    let cases: Vec<(Defect, Check)> = vec![
        (Defect::NoUriSan, |e| matches!(e, SvidError::NoUriSan)),
        (Defect::DnsOnly("web.example.org".into()), |e| {
            matches!(e, SvidError::NoUriSan)
        }),
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
        (Defect::NoKeyUsage, |e| {
            matches!(e, SvidError::MissingKeyUsage)
        }),
    ];
    for (defect, check) in cases {
        let svid = ca.issue_defective(ID, defect.clone()).unwrap();
        let err = validate_leaf(svid.leaf_der()).expect_err(&format!("{defect:?} accepted"));
        assert!(check(&err), "{defect:?}: unexpected {err:?}");
        assert!(!err.to_string().is_empty());
    }
}

#[test]
fn time_and_eku_are_left_to_chain_verification() {
    // Validity periods and EKU are checked by webpki during the handshake, not by the
    // pure leaf rules: these leaves are well-formed SVIDs.
    let ca = TestCa::new("example.org").unwrap();
    for defect in [Defect::Expired, Defect::NotYetValid, Defect::ServerAuthOnly] {
        let svid = ca.issue_defective(ID, defect).unwrap();
        assert!(validate_leaf(svid.leaf_der()).is_ok());
    }
}

#[test]
fn rejects_ids_that_are_not_workload_spiffe_ids() {
    let ca = TestCa::new("example.org").unwrap();
    let root = ca.issue("spiffe://example.org").unwrap();
    assert!(matches!(
        validate_leaf(root.leaf_der()),
        Err(SvidError::RootId(_))
    ));
    for (uri, check) in [
        (
            "spiffe://Example.org/x",
            (|e| matches!(e, IdError::TrustDomainChar { .. })) as fn(&IdError) -> bool,
        ),
        ("https://example.org/x", |e| {
            matches!(e, IdError::WrongScheme(_))
        }),
        ("spiffe://example.org/a//b", |e| {
            matches!(e, IdError::EmptySegment(_))
        }),
        ("spiffe://example.org/x/", |e| {
            matches!(e, IdError::TrailingSlash(_))
        }),
    ] {
        let svid = ca.issue(uri).unwrap();
        match validate_leaf(svid.leaf_der()) {
            Err(SvidError::InvalidSpiffeId { uri: got, source }) => {
                assert_eq!(got, uri);
                assert!(check(&source), "{uri}: {source:?}");
            }
            other => panic!("{uri}: {other:?}"),
        }
    }
}

#[test]
fn chains_with_intermediates_validate_every_signer() {
    let root = TestCa::new("example.org").unwrap();
    let inter = root.intermediate().unwrap();
    let inter2 = inter.intermediate().unwrap();
    let svid = inter2.issue(ID).unwrap();
    assert_eq!(svid.chain().len(), 3);
    assert_eq!(validate_chain(svid.chain()).unwrap().as_str(), ID);
    validate_signing_cert(root.root()).unwrap();
    validate_signing_cert(inter.cert()).unwrap();

    // A leaf where a signer should be.
    let other = root.issue("spiffe://example.org/other").unwrap();
    let bad_chain = [svid.chain()[0].clone(), other.chain()[0].clone()];
    assert_eq!(validate_chain(&bad_chain), Err(SvidError::SignerNotCa));
    assert_eq!(validate_chain::<&[u8]>(&[]), Err(SvidError::EmptyChain));
}

#[test]
fn linkerd_identities_are_read_from_the_one_dns_san() {
    let ca = TestCa::new("cluster.local").unwrap();
    let name = "web.shop.serviceaccount.identity.linkerd.cluster.local";
    let cert = ca.issue_linkerd(name).unwrap();
    let id = validate_linkerd_leaf(cert.leaf_der()).unwrap();
    assert_eq!((id.service_account(), id.namespace()), ("web", "shop"));
    // A SPIFFE SVID has no DNS SAN; a plain web name is not a Linkerd identity.
    let spiffe = ca.issue(ID).unwrap();
    assert_eq!(
        validate_linkerd_leaf(spiffe.leaf_der()),
        Err(SvidError::DnsSanCount(0))
    );
    let web = ca
        .issue_defective(ID, Defect::DnsOnly("www.example.org".into()))
        .unwrap();
    assert!(matches!(
        validate_linkerd_leaf(web.leaf_der()),
        Err(SvidError::InvalidLinkerdId(_))
    ));
    // And a Linkerd certificate is not an X.509-SVID.
    assert_eq!(validate_leaf(cert.leaf_der()), Err(SvidError::NoUriSan));
}

#[test]
fn garbage_is_malformed_not_a_panic() {
    for bytes in [
        &b""[..],
        b"\x30",
        b"\x30\x03\x02\x01\x01",
        b"not a certificate at all",
    ] {
        assert!(matches!(validate_leaf(bytes), Err(SvidError::Malformed(_))));
    }
    let ca = TestCa::new("example.org").unwrap();
    let der = ca.issue(ID).unwrap().leaf_der().to_vec();
    for cut in [1, der.len() / 2, der.len() - 1] {
        assert!(validate_leaf(&der[..cut]).is_err());
    }
}

// ---- certificates made by the openssl command line ----

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl command line is installed (.ci/run installs it)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Makes a CA and a leaf with the given extension lines; returns the leaf's DER.
fn openssl_leaf(dir: &Path, name: &str, extensions: &str) -> Vec<u8> {
    if !dir.join("ca.pem").exists() {
        openssl(
            dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/O=example.org/CN=ca",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        );
    }
    std::fs::write(dir.join(format!("{name}.ext")), extensions).unwrap();
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
            "-subj",
            "/O=workload",
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            &format!("{name}.ext"),
            "-out",
            &format!("{name}.pem"),
        ],
    );
    let pem = std::fs::read_to_string(dir.join(format!("{name}.pem"))).unwrap();
    certs_from_pem(&pem).unwrap().remove(0).to_vec()
}

#[test]
fn openssl_made_certificates_meet_the_same_rules() {
    let dir = tempdir();
    let good = "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n\
                extendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=URI:spiffe://example.org/ns/a/sa/b,DNS:b.a.svc\n";
    assert_eq!(
        validate_leaf(&openssl_leaf(&dir, "good", good))
            .unwrap()
            .as_str(),
        "spiffe://example.org/ns/a/sa/b"
    );

    let cases: Vec<(&str, &str, Check)> = vec![
        (
            "noncritical",
            "keyUsage=digitalSignature\nsubjectAltName=URI:spiffe://example.org/x\n",
            |e| matches!(e, SvidError::KeyUsageNotCritical),
        ),
        (
            "twouris",
            "keyUsage=critical,digitalSignature\nsubjectAltName=URI:spiffe://example.org/x,URI:spiffe://example.org/y\n",
            |e| matches!(e, SvidError::MultipleUriSans(2)),
        ),
        (
            "caleaf",
            "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,digitalSignature\nsubjectAltName=URI:spiffe://example.org/x\n",
            |e| matches!(e, SvidError::LeafIsCa),
        ),
        (
            "certsign",
            "keyUsage=critical,digitalSignature,keyCertSign\nsubjectAltName=URI:spiffe://example.org/x\n",
            |e| matches!(e, SvidError::LeafKeyCertSign),
        ),
        (
            "crlsign",
            "keyUsage=critical,digitalSignature,cRLSign\nsubjectAltName=URI:spiffe://example.org/x\n",
            |e| matches!(e, SvidError::LeafCrlSign),
        ),
        (
            "nokeyusage",
            "subjectAltName=URI:spiffe://example.org/x\n",
            |e| matches!(e, SvidError::MissingKeyUsage),
        ),
        ("nosan", "keyUsage=critical,digitalSignature\n", |e| {
            matches!(e, SvidError::NoUriSan)
        }),
        (
            "rootid",
            "keyUsage=critical,digitalSignature\nsubjectAltName=URI:spiffe://example.org\n",
            |e| matches!(e, SvidError::RootId(_)),
        ),
        (
            "port",
            "keyUsage=critical,digitalSignature\nsubjectAltName=URI:spiffe://example.org:443/x\n",
            |e| {
                matches!(
                    e,
                    SvidError::InvalidSpiffeId {
                        source: IdError::Port(_),
                        ..
                    }
                )
            },
        ),
    ];
    for (name, ext, check) in cases {
        let err = validate_leaf(&openssl_leaf(&dir, name, ext)).expect_err(name);
        assert!(check(&err), "{name}: unexpected {err:?}");
    }
    let ca = certs_from_pem(&std::fs::read_to_string(dir.join("ca.pem")).unwrap()).unwrap();
    validate_signing_cert(&ca[0]).unwrap();
    assert!(matches!(validate_leaf(&ca[0]), Err(SvidError::NoUriSan)));
    let _ = std::fs::remove_dir_all(&dir);
}

fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "meshless-svid-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
