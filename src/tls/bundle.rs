//! Trust bundles: the roots of one trust domain ([`TrustBundle`]), and the bundles of
//! every trust domain we trust, for federation ([`BundleSet`]).

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, TrustAnchor};
use std::sync::Arc;

use webpki::{CertRevocationList, OwnedCertRevocationList};

use super::TlsError;
use super::constraints::has_uri_name_constraints;
use crate::TrustDomain;
use crate::svid::validate_signing_cert;

/// The root certificates of one trust domain, with that domain's optional CRLs.
///
/// A bundle authenticates only SPIFFE IDs of its own trust domain: the verifiers pick
/// the bundle by the trust domain of the peer's ID, so a federated domain's CA can
/// never vouch for an identity of another domain.
///
/// ```
/// # #[cfg(feature = "testing")] {
/// use meshless::tls::TrustBundle;
/// let ca = meshless::testing::TestCa::new("example.org")?;
/// let bundle = TrustBundle::from_pem(ca.trust_domain().clone(), ca.root_pem().as_bytes())?;
/// assert_eq!(bundle.roots().len(), 1);
/// # }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct TrustBundle {
    trust_domain: TrustDomain,
    roots: Vec<CertificateDer<'static>>,
    anchors: Vec<TrustAnchor<'static>>,
    crl_ders: Vec<CertificateRevocationListDer<'static>>,
    crls: Arc<Vec<CertRevocationList<'static>>>,
    uri_constrained: bool,
    sequence: Option<u64>,
    refresh_hint: Option<Duration>,
}

impl fmt::Debug for TrustBundle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrustBundle")
            .field("trust_domain", &self.trust_domain)
            .field("roots", &self.roots.len())
            .field("crls", &self.crls.len())
            .field("sequence", &self.sequence)
            .finish()
    }
}

impl TrustBundle {
    /// A bundle of `roots` (DER) for `trust_domain`. Each root must be a signing
    /// certificate (cA=true, keyCertSign). An empty bundle trusts nothing, as the
    /// SPIFFE bundle format specifies.
    ///
    /// # Errors
    /// [`TlsError::Parse`] naming the first unusable root.
    pub fn new(
        trust_domain: TrustDomain,
        roots: Vec<CertificateDer<'static>>,
    ) -> Result<Self, TlsError> {
        let what = |i: usize| format!("root {i} of trust bundle for `{trust_domain}`");
        let mut anchors = Vec::with_capacity(roots.len());
        let mut uri_constrained = false;
        for (i, root) in roots.iter().enumerate() {
            validate_signing_cert(root).map_err(|e| TlsError::parse(what(i), e))?;
            let anchor = webpki::anchor_from_trusted_cert(root)
                .map_err(|e| TlsError::parse(what(i), format!("{e:?}")))?;
            uri_constrained |= has_uri_name_constraints(root);
            anchors.push(anchor.to_owned());
        }
        Ok(Self {
            trust_domain,
            roots,
            anchors,
            crl_ders: Vec::new(),
            crls: Arc::default(),
            uri_constrained,
            sequence: None,
            refresh_hint: None,
        })
    }

    /// Parses PEM `CERTIFICATE` blocks (the `ca.crt` / `bundle.pem` files written by
    /// cert-manager, spiffe-helper and Kubernetes Secrets).
    ///
    /// # Errors
    /// [`TlsError::Parse`] for bad PEM, a file without any certificate, or an unusable
    /// root.
    pub fn from_pem(trust_domain: TrustDomain, pem: &[u8]) -> Result<Self, TlsError> {
        let roots = CertificateDer::pem_slice_iter(pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| TlsError::parse(format!("PEM bundle for `{trust_domain}`"), e))?;
        if roots.is_empty() {
            // Unlike a SPIFFE bundle with an empty `keys` list (an explicit "trust
            // nothing"), a PEM file without certificates is a truncated or wrong file.
            return Err(TlsError::parse(
                format!("PEM bundle for `{trust_domain}`"),
                "no CERTIFICATE block found",
            ));
        }
        Self::new(trust_domain, roots)
    }

    /// Parses a SPIFFE bundle (a JWKS document). Keys with `use: "x509-svid"` become
    /// roots (each must carry exactly one certificate in `x5c`); JWT keys and keys of
    /// unknown use are ignored, as the SPIFFE Trust Domain and Bundle spec requires.
    ///
    /// # Errors
    /// [`TlsError::Parse`] for invalid JSON, a missing `keys` member, an x509-svid key
    /// without exactly one certificate, or an unusable root.
    pub fn from_spiffe_json(trust_domain: TrustDomain, json: &[u8]) -> Result<Self, TlsError> {
        let what = format!("SPIFFE bundle for `{trust_domain}`");
        let doc: serde_json::Value =
            serde_json::from_slice(json).map_err(|e| TlsError::parse(&what, e))?;
        let keys = doc
            .get("keys")
            .and_then(|k| k.as_array())
            .ok_or_else(|| TlsError::parse(&what, "`keys` array is missing"))?;
        let mut roots = Vec::new();
        for (i, key) in keys.iter().enumerate() {
            if key.get("use").and_then(|u| u.as_str()) != Some("x509-svid") {
                continue;
            }
            let x5c = key.get("x5c").and_then(|x| x.as_array());
            let [cert] = x5c.map(Vec::as_slice).unwrap_or_default() else {
                return Err(TlsError::parse(
                    &what,
                    format!(
                        "key {i}: an x509-svid key must carry exactly one certificate in `x5c`"
                    ),
                ));
            };
            let der = cert
                .as_str()
                .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
                .ok_or_else(|| {
                    TlsError::parse(&what, format!("key {i}: `x5c` is not base64 DER"))
                })?;
            roots.push(CertificateDer::from(der));
        }
        let mut bundle = Self::new(trust_domain, roots)?;
        bundle.sequence = doc.get("spiffe_sequence").and_then(|s| s.as_u64());
        bundle.refresh_hint = doc
            .get("spiffe_refresh_hint")
            .and_then(|s| s.as_u64())
            .map(Duration::from_secs);
        Ok(bundle)
    }

    /// Parses either format: a document starting with `{` as a SPIFFE bundle, anything
    /// else as PEM.
    ///
    /// # Errors
    /// As [`TrustBundle::from_pem`] and [`TrustBundle::from_spiffe_json`].
    pub fn parse(trust_domain: TrustDomain, bytes: &[u8]) -> Result<Self, TlsError> {
        match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'{') => Self::from_spiffe_json(trust_domain, bytes),
            _ => Self::from_pem(trust_domain, bytes),
        }
    }

    /// Adds certificate revocation lists (DER) of this trust domain's CAs. Revoked
    /// certificates are refused; certificates whose status no CRL covers are accepted.
    ///
    /// # Errors
    /// [`TlsError::Parse`] for a CRL webpki cannot parse.
    pub fn with_crls(
        mut self,
        crls: impl IntoIterator<Item = CertificateRevocationListDer<'static>>,
    ) -> Result<Self, TlsError> {
        self.crl_ders.extend(crls);
        let mut parsed: Vec<CertRevocationList<'static>> = Vec::with_capacity(self.crl_ders.len());
        for (i, crl) in self.crl_ders.iter().enumerate() {
            let crl = OwnedCertRevocationList::from_der(crl)
                .map_err(|e| TlsError::parse(format!("CRL {i} for `{}`", self.trust_domain), e))?;
            parsed.push(crl.into());
        }
        self.crls = Arc::new(parsed);
        Ok(self)
    }

    /// Adds CRLs from PEM `X509 CRL` blocks.
    ///
    /// # Errors
    /// [`TlsError::Parse`] for bad PEM or an unparsable CRL.
    pub fn with_crls_pem(self, pem: &[u8]) -> Result<Self, TlsError> {
        let crls = CertificateRevocationListDer::pem_slice_iter(pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| TlsError::parse(format!("PEM CRLs for `{}`", self.trust_domain), e))?;
        self.with_crls(crls)
    }

    /// The trust domain.
    pub fn trust_domain(&self) -> &TrustDomain {
        &self.trust_domain
    }

    /// The root certificates.
    pub fn roots(&self) -> &[CertificateDer<'static>] {
        &self.roots
    }

    /// `spiffe_sequence` of a SPIFFE bundle, if it had one.
    pub fn sequence(&self) -> Option<u64> {
        self.sequence
    }

    /// `spiffe_refresh_hint` of a SPIFFE bundle, if it had one.
    pub fn refresh_hint(&self) -> Option<Duration> {
        self.refresh_hint
    }

    pub(crate) fn anchors(&self) -> &[TrustAnchor<'static>] {
        &self.anchors
    }

    pub(crate) fn crls(&self) -> &[CertRevocationList<'static>] {
        &self.crls
    }

    pub(crate) fn has_uri_constrained_root(&self) -> bool {
        self.uri_constrained
    }
}

/// The bundles of every trust domain we accept peers from, keyed by trust domain.
///
/// Our own domain's bundle and any federated domains' bundles live side by side; a
/// peer is verified only against the bundle of its own ID's trust domain.
#[derive(Clone, Debug, Default)]
pub struct BundleSet {
    bundles: BTreeMap<TrustDomain, TrustBundle>,
}

impl BundleSet {
    /// An empty set (trusts nobody).
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) the bundle of its trust domain.
    pub fn with(mut self, bundle: TrustBundle) -> Self {
        self.insert(bundle);
        self
    }

    /// Adds (or replaces) the bundle of its trust domain; returns the one replaced.
    pub fn insert(&mut self, bundle: TrustBundle) -> Option<TrustBundle> {
        self.bundles.insert(bundle.trust_domain.clone(), bundle)
    }

    /// The bundle of `trust_domain`.
    pub fn get(&self, trust_domain: &TrustDomain) -> Option<&TrustBundle> {
        self.bundles.get(trust_domain)
    }

    /// The trust domains present.
    pub fn trust_domains(&self) -> impl Iterator<Item = &TrustDomain> {
        self.bundles.keys()
    }

    /// The number of trust domains.
    pub fn len(&self) -> usize {
        self.bundles.len()
    }

    /// True when no bundle is present.
    pub fn is_empty(&self) -> bool {
        self.bundles.is_empty()
    }
}

impl From<TrustBundle> for BundleSet {
    fn from(bundle: TrustBundle) -> Self {
        Self::new().with(bundle)
    }
}

impl FromIterator<TrustBundle> for BundleSet {
    fn from_iter<I: IntoIterator<Item = TrustBundle>>(iter: I) -> Self {
        let mut set = Self::new();
        for bundle in iter {
            set.insert(bundle);
        }
        set
    }
}
