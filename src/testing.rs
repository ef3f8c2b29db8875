//! A throwaway certificate authority for tests (feature `testing`).
//!
//! [`TestCa`] creates a root for a trust domain (and intermediates below it) and issues
//! X.509-SVIDs for any SPIFFE ID — including deliberately broken ones, so that tests can
//! check that each is refused. Keys are ECDSA P-256; certificates are generated with
//! rcgen in memory, in milliseconds. Never use this outside tests.
//!
//! ```
//! use meshless::testing::{Defect, TestCa};
//! let ca = TestCa::new("example.org")?;
//! let good = ca.issue("spiffe://example.org/ns/web/sa/frontend")?;
//! assert!(meshless::svid::validate_leaf(good.leaf_der()).is_ok());
//! let bad = ca.issue_defective("spiffe://example.org/ns/web/sa/frontend", Defect::TwoUriSans)?;
//! assert!(meshless::svid::validate_leaf(bad.leaf_der()).is_err());
//! # Ok::<(), meshless::testing::TestCaError>(())
//! ```

use std::fmt;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use time::{Duration, OffsetDateTime};

use crate::{IdError, TrustDomain};

/// Why the test CA could not do what was asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TestCaError {
    /// The trust domain name is invalid.
    #[error(transparent)]
    Id(#[from] IdError),
    /// rcgen refused the parameters.
    #[error("rcgen: {0}")]
    Rcgen(#[from] rcgen::Error),
    /// The TLS layer refused the material.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    /// Writing PEM files failed.
    #[error("writing `{path}`: {source}")]
    Io {
        /// The file being written.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// A deliberate flaw in an issued certificate, to test that it is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Defect {
    /// No URI SAN at all (a DNS SAN instead).
    NoUriSan,
    /// A second URI SAN besides the SPIFFE ID.
    TwoUriSans,
    /// basicConstraints cA=true on the leaf.
    CaLeaf,
    /// keyUsage with keyCertSign on the leaf.
    KeyCertSign,
    /// keyUsage without digitalSignature.
    NoDigitalSignature,
    /// No keyUsage extension.
    NoKeyUsage,
    /// Valid from two days ago until yesterday.
    Expired,
    /// Valid from tomorrow.
    NotYetValid,
    /// Only a DNS SAN with this name (a Linkerd-style or web certificate).
    DnsOnly(String),
    /// Only serverAuth in extendedKeyUsage (unusable as a client certificate).
    ServerAuthOnly,
}

/// A root (or intermediate) certificate authority for one trust domain.
pub struct TestCa {
    trust_domain: TrustDomain,
    params: CertificateParams,
    key: KeyPair,
    /// This CA's own certificate.
    cert: CertificateDer<'static>,
    /// This CA's certificate and the intermediates above it, root excluded (empty
    /// for a root): what an issued leaf's chain carries after the leaf.
    chain: Vec<CertificateDer<'static>>,
    root: CertificateDer<'static>,
}

impl fmt::Debug for TestCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestCa")
            .field("trust_domain", &self.trust_domain)
            .field("intermediates", &self.chain.len())
            .finish_non_exhaustive()
    }
}

/// An issued certificate chain with its private key.
pub struct TestSvid {
    chain: Vec<CertificateDer<'static>>,
    key: PrivatePkcs8KeyDer<'static>,
}

impl fmt::Debug for TestSvid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestSvid")
            .field("chain_len", &self.chain.len())
            .finish_non_exhaustive()
    }
}

fn ca_params(trust_domain: &TrustDomain, name: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::OrganizationName, trust_domain.as_str());
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.subject_alt_names = vec![SanType::URI(
        trust_domain
            .id()
            .to_string()
            .try_into()
            .expect("a SPIFFE ID is IA5"),
    )];
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::days(1);
    params.not_after = now + Duration::days(365);
    params.use_authority_key_identifier_extension = true;
    params
}

impl TestCa {
    /// A new self-signed root for `trust_domain`.
    ///
    /// # Errors
    /// [`TestCaError::Id`] for an invalid trust domain name.
    pub fn new(trust_domain: &str) -> Result<Self, TestCaError> {
        let trust_domain = TrustDomain::new(trust_domain)?;
        let params = ca_params(&trust_domain, "meshless test root");
        let key = KeyPair::generate()?;
        let root = params.self_signed(&key)?.der().clone();
        Ok(Self {
            trust_domain,
            params,
            key,
            cert: root.clone(),
            chain: Vec::new(),
            root,
        })
    }

    /// A new intermediate CA signed by this one, in the same trust domain. SVIDs it
    /// issues carry the intermediates in their chain.
    ///
    /// # Errors
    /// [`TestCaError::Rcgen`] if signing fails.
    pub fn intermediate(&self) -> Result<Self, TestCaError> {
        let params = ca_params(&self.trust_domain, "meshless test intermediate");
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer())?.der().clone();
        let chain = std::iter::once(cert.clone())
            .chain(self.chain.iter().cloned())
            .collect();
        Ok(Self {
            trust_domain: self.trust_domain.clone(),
            params,
            key,
            cert,
            chain,
            root: self.root.clone(),
        })
    }

    fn issuer(&self) -> Issuer<'_, &KeyPair> {
        Issuer::from_params(&self.params, &self.key)
    }

    /// The trust domain this CA belongs to.
    pub fn trust_domain(&self) -> &TrustDomain {
        &self.trust_domain
    }

    /// The root certificate (the trust anchor to put in a bundle).
    pub fn root(&self) -> &CertificateDer<'static> {
        &self.root
    }

    /// The root certificate as PEM.
    pub fn root_pem(&self) -> String {
        pem("CERTIFICATE", &self.root)
    }

    /// This CA's own certificate.
    pub fn cert(&self) -> &CertificateDer<'static> {
        &self.cert
    }

    /// Issues a valid X.509-SVID for `spiffe_id`: valid for a day, ECDSA P-256,
    /// keyUsage digitalSignature (critical), extendedKeyUsage serverAuth + clientAuth.
    ///
    /// The ID is not checked against this CA's trust domain, so that tests can make a
    /// CA of one domain mint an ID of another.
    ///
    /// # Errors
    /// [`TestCaError::Rcgen`] if `spiffe_id` is not IA5 text or signing fails.
    pub fn issue(&self, spiffe_id: &str) -> Result<TestSvid, TestCaError> {
        self.issue_params(self.leaf_params(spiffe_id)?)
    }

    /// Issues an SVID for `spiffe_id` carrying `defect`.
    ///
    /// # Errors
    /// [`TestCaError::Rcgen`] if the parameters are not encodable or signing fails.
    pub fn issue_defective(
        &self,
        spiffe_id: &str,
        defect: Defect,
    ) -> Result<TestSvid, TestCaError> {
        let mut params = self.leaf_params(spiffe_id)?;
        let now = OffsetDateTime::now_utc();
        match defect {
            Defect::NoUriSan => params.subject_alt_names = vec![dns_san("workload.example")?],
            Defect::TwoUriSans => params
                .subject_alt_names
                .push(SanType::URI("https://example.org/other".try_into()?)),
            Defect::CaLeaf => params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained),
            Defect::KeyCertSign => params.key_usages.push(KeyUsagePurpose::KeyCertSign),
            Defect::NoDigitalSignature => {
                params.key_usages = vec![KeyUsagePurpose::KeyEncipherment]
            }
            Defect::NoKeyUsage => params.key_usages.clear(),
            Defect::Expired => {
                params.not_before = now - Duration::days(2);
                params.not_after = now - Duration::days(1);
            }
            Defect::NotYetValid => {
                params.not_before = now + Duration::days(1);
                params.not_after = now + Duration::days(2);
            }
            Defect::DnsOnly(name) => params.subject_alt_names = vec![dns_san(&name)?],
            Defect::ServerAuthOnly => {
                params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
            }
        }
        self.issue_params(params)
    }

    /// Issues a certificate for a Linkerd identity: its only SAN is the DNS name
    /// `identity` (e.g. `web.shop.serviceaccount.identity.linkerd.cluster.local`).
    ///
    /// # Errors
    /// [`TestCaError::Rcgen`] if the name is not IA5 text or signing fails.
    pub fn issue_linkerd(&self, identity: &str) -> Result<TestSvid, TestCaError> {
        let mut params = self.leaf_params("spiffe://unused.invalid/x")?;
        params.subject_alt_names = vec![dns_san(identity)?];
        self.issue_params(params)
    }

    /// Issues a valid SVID for `spiffe_id` that also carries DNS SANs (e.g. `localhost`,
    /// for clients such as curl that check the server's hostname).
    ///
    /// # Errors
    /// [`TestCaError::Rcgen`] if a name is not IA5 text or signing fails.
    pub fn issue_with_dns_sans(
        &self,
        spiffe_id: &str,
        dns_names: &[&str],
    ) -> Result<TestSvid, TestCaError> {
        let mut params = self.leaf_params(spiffe_id)?;
        for name in dns_names {
            params.subject_alt_names.push(dns_san(name)?);
        }
        self.issue_params(params)
    }

    /// Issues a valid SVID whose validity runs from `not_before` to `not_after`.
    ///
    /// # Errors
    /// [`TestCaError::Rcgen`] if signing fails.
    pub fn issue_valid_between(
        &self,
        spiffe_id: &str,
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
    ) -> Result<TestSvid, TestCaError> {
        let mut params = self.leaf_params(spiffe_id)?;
        params.not_before = not_before;
        params.not_after = not_after;
        self.issue_params(params)
    }

    /// A CRL signed by this CA that revokes `revoked`, as PEM (valid for a day).
    ///
    /// # Errors
    /// [`TestCaError::Rcgen`] if a certificate cannot be parsed or signing fails.
    pub fn crl_pem(&self, revoked: &[&TestSvid]) -> Result<String, TestCaError> {
        use x509_cert::der::Decode as _;
        let now = OffsetDateTime::now_utc();
        let mut revoked_certs = Vec::with_capacity(revoked.len());
        for svid in revoked {
            let cert = x509_cert::Certificate::from_der(svid.leaf_der())
                .map_err(|_| rcgen::Error::CouldNotParseCertificate)?;
            revoked_certs.push(rcgen::RevokedCertParams {
                serial_number: cert
                    .tbs_certificate
                    .serial_number
                    .as_bytes()
                    .to_vec()
                    .into(),
                revocation_time: now - Duration::minutes(5),
                reason_code: Some(rcgen::RevocationReason::KeyCompromise),
                invalidity_date: None,
            });
        }
        let params = rcgen::CertificateRevocationListParams {
            this_update: now - Duration::minutes(5),
            next_update: now + Duration::days(1),
            crl_number: rcgen::SerialNumber::from(1u64),
            issuing_distribution_point: None,
            revoked_certs,
            key_identifier_method: rcgen::KeyIdMethod::Sha256,
        };
        Ok(params.signed_by(&self.issuer())?.pem()?)
    }

    fn leaf_params(&self, spiffe_id: &str) -> Result<CertificateParams, TestCaError> {
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::OrganizationName, "meshless test workload");
        params.subject_alt_names = vec![SanType::URI(spiffe_id.try_into()?)];
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::hours(1);
        params.not_after = now + Duration::days(1);
        params.use_authority_key_identifier_extension = true;
        Ok(params)
    }

    fn issue_params(&self, params: CertificateParams) -> Result<TestSvid, TestCaError> {
        let key = KeyPair::generate()?;
        let leaf = params.signed_by(&key, &self.issuer())?.der().clone();
        let chain = std::iter::once(leaf)
            .chain(self.chain.iter().cloned())
            .collect();
        Ok(TestSvid {
            chain,
            key: PrivatePkcs8KeyDer::from(key.serialize_der()),
        })
    }
}

fn dns_san(name: &str) -> Result<SanType, TestCaError> {
    Ok(SanType::DnsName(name.try_into()?))
}

fn pem(label: &str, der: &[u8]) -> String {
    pem::encode(&pem::Pem::new(label, der))
}

impl TestSvid {
    /// The leaf certificate's DER bytes.
    pub fn leaf_der(&self) -> &[u8] {
        &self.chain[0]
    }

    /// The chain: leaf first, then any intermediates (never the root).
    pub fn chain(&self) -> &[CertificateDer<'static>] {
        &self.chain
    }

    /// The private key, as rustls takes it.
    pub fn key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(self.key.clone_key())
    }

    /// The chain as PEM, leaf first.
    pub fn chain_pem(&self) -> String {
        self.chain.iter().map(|c| pem("CERTIFICATE", c)).collect()
    }

    /// The private key as PKCS#8 PEM.
    pub fn key_pem(&self) -> String {
        pem("PRIVATE KEY", self.key.secret_pkcs8_der())
    }

    /// Writes `<name>.pem` (chain) and `<name>.key` (key) into `dir` and returns their
    /// paths, for clients such as curl that read files.
    ///
    /// # Errors
    /// [`TestCaError::Io`] if a file cannot be written.
    pub fn write_pem(&self, dir: &Path, name: &str) -> Result<(PathBuf, PathBuf), TestCaError> {
        let cert = dir.join(format!("{name}.pem"));
        let key = dir.join(format!("{name}.key"));
        for (path, text) in [(&cert, self.chain_pem()), (&key, self.key_pem())] {
            std::fs::write(path, text).map_err(|source| TestCaError::Io {
                path: path.clone(),
                source,
            })?;
        }
        Ok((cert, key))
    }
}

/// Parses PEM text into certificates (a small convenience over `rustls-pki-types`).
///
/// # Errors
/// The PEM error, as text.
pub fn certs_from_pem(pem: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())
}

impl TestCa {
    /// This CA's trust bundle (its root), as the TLS layer takes it.
    ///
    /// # Errors
    /// [`TestCaError::Tls`] if the TLS layer refuses the root (it never should).
    pub fn bundle(&self) -> Result<crate::tls::TrustBundle, TestCaError> {
        Ok(crate::tls::TrustBundle::new(
            self.trust_domain.clone(),
            vec![self.root.clone()],
        )?)
    }

    /// Issues an SVID for `spiffe_id` and wraps it, with this CA's bundle, into the
    /// [`TlsSource`](crate::tls::TlsSource) an acceptor or connector takes: one line
    /// from a test CA to a workload's TLS identity.
    ///
    /// ```
    /// let ca = meshless::testing::TestCa::new("example.org")?;
    /// let source = ca.tls_source("spiffe://example.org/ns/shop/sa/orders")?;
    /// let acceptor = meshless::MtlsAcceptor::new(source)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`TestCaError`] if issuing fails or the TLS layer refuses the SVID.
    pub fn tls_source(&self, spiffe_id: &str) -> Result<crate::tls::TlsSource, TestCaError> {
        let issued = self.issue(spiffe_id)?;
        let svid = crate::tls::Svid::new(issued.chain().to_vec(), issued.key())?;
        let material = crate::tls::TlsMaterial::new(svid, self.bundle()?)?;
        Ok(crate::tls::TlsSource::new(material))
    }
}
#[cfg(feature = "jwt")]
pub use crate::jwt::test_keys::{TestJwtKey, TestJwtKeyError};

/// The bytes a rustls client sends first: one whole TLS ClientHello (TLS 1.2 and 1.3,
/// SNI `localhost`), for tests of what a server does with a client that sends it
/// slowly, or only in part, or and then stops.
pub fn client_hello() -> Vec<u8> {
    let config = rustls::ClientConfig::builder_with_provider(crate::tls::provider())
        .with_safe_default_protocol_versions()
        .expect("the crate's provider supports the default versions")
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    let name = rustls_pki_types::ServerName::try_from("localhost").expect("a valid DNS name");
    let mut conn = rustls::ClientConnection::new(std::sync::Arc::new(config), name)
        .expect("a client configuration rustls built itself");
    let mut out = Vec::new();
    while conn.wants_write() {
        // Writing into a Vec cannot fail.
        let _ = conn.write_tls(&mut out);
    }
    out
}
