//! rustls verifiers for SPIFFE peers: [`SpiffeClientVerifier`] (server side, verifies
//! clients) and [`SpiffeServerVerifier`] (client side, verifies servers by SPIFFE ID
//! instead of hostname).

use std::fmt;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use super::verify::{DEFAULT_MAX_INTERMEDIATES, verify_peer};
use super::{TlsError, TlsSource, provider};
use crate::{SpiffeId, TrustDomain};

/// A rustls [`ClientCertVerifier`] that authenticates clients by X.509-SVID against the
/// bundle of the client's own trust domain, read from a [`TlsSource`] at each handshake.
///
/// A client certificate is mandatory unless relaxed with
/// [`SpiffeClientVerifier::allow_missing_client_certificate`]; a certificate that is
/// presented is always verified. No CA names are hinted to clients (SPIFFE clients
/// present their one SVID regardless).
#[derive(Clone)]
pub struct SpiffeClientVerifier {
    source: TlsSource,
    mandatory: bool,
    max_intermediates: usize,
}

impl SpiffeClientVerifier {
    /// A verifier reading the bundles of `source`; client certificates are mandatory.
    pub fn new(source: TlsSource) -> Self {
        Self {
            source,
            mandatory: true,
            max_intermediates: DEFAULT_MAX_INTERMEDIATES,
        }
    }

    /// Refuses clients that present more than `max` intermediate certificates
    /// ([`TlsError::ChainTooLong`]), before any of them is parsed. The default, 6, is
    /// webpki's limit on path depth; set it to the depth your CA hierarchy actually
    /// has (SPIRE, Istio and Linkerd issue leaves one or two CAs below the root).
    #[must_use]
    pub fn max_intermediates(mut self, max: usize) -> Self {
        self.max_intermediates = max;
        self
    }

    /// Lets clients finish the handshake without a certificate (they are then
    /// unauthenticated; policy decides). Presented certificates are still verified.
    #[must_use]
    pub fn allow_missing_client_certificate(mut self) -> Self {
        self.mandatory = false;
        self
    }
}

impl fmt::Debug for SpiffeClientVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpiffeClientVerifier")
            .finish_non_exhaustive()
    }
}

fn tls12(
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
) -> Result<HandshakeSignatureValid, rustls::Error> {
    verify_tls12_signature(
        message,
        cert,
        dss,
        &provider().signature_verification_algorithms,
    )
}

fn tls13(
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
) -> Result<HandshakeSignatureValid, rustls::Error> {
    verify_tls13_signature(
        message,
        cert,
        dss,
        &provider().signature_verification_algorithms,
    )
}

fn schemes() -> Vec<SignatureScheme> {
    provider()
        .signature_verification_algorithms
        .supported_schemes()
}

impl ClientCertVerifier for SpiffeClientVerifier {
    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let material = self.source.load();
        verify_peer(
            material.bundles(),
            end_entity,
            intermediates,
            now,
            webpki::KeyUsage::client_auth(),
            self.max_intermediates,
        )
        .map(|_| ClientCertVerified::assertion())
        .map_err(TlsError::into_rustls)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        tls12(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        tls13(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        schemes()
    }
}

/// Which server identities a client accepts.
///
/// There is no "any server" choice: a client always states whom it means to talk to.
#[derive(Clone)]
#[non_exhaustive]
pub enum ExpectedServer {
    /// Exactly this SPIFFE ID.
    Exact(SpiffeId),
    /// Any workload of this trust domain.
    TrustDomain(TrustDomain),
    /// Any ID the predicate accepts (with a description for error messages).
    Matching(Arc<dyn Fn(&SpiffeId) -> bool + Send + Sync>, String),
}

impl ExpectedServer {
    /// Accept IDs for which `predicate` returns true; `description` names them in errors.
    pub fn matching(
        description: impl Into<String>,
        predicate: impl Fn(&SpiffeId) -> bool + Send + Sync + 'static,
    ) -> Self {
        Self::Matching(Arc::new(predicate), description.into())
    }

    /// True when `id` is acceptable.
    pub fn accepts(&self, id: &SpiffeId) -> bool {
        match self {
            Self::Exact(want) => want == id,
            Self::TrustDomain(td) => id.trust_domain() == td,
            Self::Matching(predicate, _) => predicate(id),
        }
    }
}

impl fmt::Display for ExpectedServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exact(id) => write!(f, "`{id}`"),
            Self::TrustDomain(td) => write!(f, "trust domain `{td}`"),
            Self::Matching(_, description) => write!(f, "{description}"),
        }
    }
}

impl fmt::Debug for ExpectedServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ExpectedServer({self})")
    }
}

impl From<SpiffeId> for ExpectedServer {
    fn from(id: SpiffeId) -> Self {
        Self::Exact(id)
    }
}

impl From<TrustDomain> for ExpectedServer {
    fn from(td: TrustDomain) -> Self {
        Self::TrustDomain(td)
    }
}

/// A rustls [`ServerCertVerifier`] that authenticates servers by X.509-SVID: the chain
/// is verified against the bundle of the server's trust domain and the SPIFFE ID must
/// be one the caller expects. The TLS server name is not compared (a SPIFFE SVID
/// usually has no DNS name; rustls' WebPKI verifier would refuse it).
#[derive(Clone, Debug)]
pub struct SpiffeServerVerifier {
    source: TlsSource,
    expected: ExpectedServer,
}

impl SpiffeServerVerifier {
    /// A verifier reading the bundles of `source` and accepting `expected` servers.
    pub fn new(source: TlsSource, expected: impl Into<ExpectedServer>) -> Self {
        Self {
            source,
            expected: expected.into(),
        }
    }

    /// The servers this verifier accepts.
    pub fn expected(&self) -> &ExpectedServer {
        &self.expected
    }
}

impl ServerCertVerifier for SpiffeServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let material = self.source.load();
        let id = verify_peer(
            material.bundles(),
            end_entity,
            intermediates,
            now,
            webpki::KeyUsage::server_auth(),
            DEFAULT_MAX_INTERMEDIATES,
        )
        .map_err(TlsError::into_rustls)?;
        if !self.expected.accepts(&id) {
            return Err(TlsError::UnexpectedServerId {
                expected: self.expected.to_string(),
                got: id,
            }
            .into_rustls());
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        tls12(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        tls13(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        schemes()
    }
}
