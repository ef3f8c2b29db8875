//! TLS client setup shared by the load generators (`loadgen`, `attack`), included with
//! `#[path = "../client_tls.rs"] mod client_tls;`.
//!
//! TLS is pinned for comparability: TLS 1.3, TLS13_AES_128_GCM_SHA256, X25519, session resumption
//! disabled (every new connection is a full handshake with client auth). The server certificate is
//! not verified unless `verify_server` is set (see the top of loadgen.rs).
use std::{error::Error, sync::Arc};

use rustls::{
    client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    client::Resumption,
    crypto::aws_lc_rs as provider,
    pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer, ServerName, UnixTime},
    ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

pub type Res<T> = Result<T, Box<dyn Error + Send + Sync>>;

/// Accepts any server certificate (load generation only).
#[derive(Debug)]
struct NoServerVerify(Vec<SignatureScheme>);
impl ServerCertVerifier for NoServerVerify {
    fn verify_server_cert(
        &self, _: &CertificateDer<'_>, _: &[CertificateDer<'_>], _: &ServerName<'_>, _: &[u8], _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self, _: &[u8], _: &CertificateDer<'_>, _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn verify_tls13_signature(
        &self, _: &[u8], _: &CertificateDer<'_>, _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.clone()
    }
}

/// Client config with the client certificate `cert`/`key` and the given ALPN protocols.
pub fn client_config(ca: &str, verify_server: bool, cert: &str, key: &str, alpn: &[&[u8]]) -> Res<ClientConfig> {
    let mut p = provider::default_provider();
    p.cipher_suites = vec![provider::cipher_suite::TLS13_AES_128_GCM_SHA256];
    p.kx_groups = vec![provider::kx_group::X25519];
    let schemes = p.signature_verification_algorithms.supported_schemes();
    let builder = ClientConfig::builder_with_provider(Arc::new(p)).with_protocol_versions(&[&rustls::version::TLS13])?;
    let builder = if verify_server {
        let mut roots = RootCertStore::empty();
        for c in CertificateDer::pem_file_iter(ca)? {
            roots.add(c?)?;
        }
        builder.with_root_certificates(roots)
    } else {
        builder.dangerous().with_custom_certificate_verifier(Arc::new(NoServerVerify(schemes)))
    };
    let certs = CertificateDer::pem_file_iter(cert)?.collect::<Result<Vec<_>, _>>()?;
    let mut cfg = builder.with_client_auth_cert(certs, PrivateKeyDer::from_pem_file(key)?)?;
    cfg.resumption = Resumption::disabled();
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(cfg)
}

/// Nearest-rank percentile of sorted samples (0 when empty).
pub fn pct<T: Copy + Default>(sorted: &[T], p: f64) -> T {
    if sorted.is_empty() {
        return T::default();
    }
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}
