//! [`MtlsAcceptor`]: the server side of mutual TLS, strict or permissive.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::ServerConfig;
use tokio::net::TcpStream;
use tokio_rustls::LazyConfigAcceptor;

use super::admission::Admission;
use super::{
    MtlsStream, SpiffeClientVerifier, TlsError, TlsSource, default_server_alpn, server_config,
};
use crate::metrics::Metrics;
use crate::svid::validate_leaf;
use crate::{PeerIdentity, Unauthenticated};

/// The first byte of a TLS record carrying a handshake message (a ClientHello).
const TLS_HANDSHAKE: u8 = 0x16;

/// `timeout` plus up to a quarter more, chosen by the peer's source port: a burst of
/// silent connections is then closed over a spread of time rather than all in the same
/// instant, which would hold up the good clients served on the same thread.
fn spread(timeout: Duration, port: u16) -> Duration {
    // Fibonacci hashing scatters consecutive ports over [0, 1024).
    let slot = u32::from(port).wrapping_mul(2_654_435_769) >> 22;
    timeout + timeout / 4 * slot / 1024
}

/// Accepts TCP connections as mutual TLS and proves each peer's SPIFFE ID.
///
/// Strict by default: a client must present a valid X.509-SVID of a trust domain we
/// have a bundle for. [`MtlsAcceptorBuilder::permissive`] additionally serves peers
/// that do not speak TLS at all, as [`Unauthenticated::Plaintext`] (policy decides).
///
/// ## Admission
///
/// A connection goes through three stages, and holds a handshake slot only in the last:
///
/// 1. **First byte.** A connection that sends nothing is closed after
///    [`first_byte_timeout`](MtlsAcceptorBuilder::first_byte_timeout) (default 5 s, up to
///    a quarter more to spread a burst), holding nothing but its socket and a timer.
/// 2. **ClientHello.** The peer's ClientHello is read whole, still without a slot,
///    within the [`handshake_timeout`](MtlsAcceptorBuilder::handshake_timeout)
///    (default 10 s, counted from the first byte): a client that sends it a byte at a
///    time is closed then, having cost a small buffer.
/// 3. **Handshake.** The cryptographic handshake takes one of
///    [`max_concurrent_handshakes`](MtlsAcceptorBuilder::max_concurrent_handshakes)
///    slots (default 1,024), of which one source address holds at most
///    [`max_handshakes_per_source`](MtlsAcceptorBuilder::max_handshakes_per_source)
///    (default a quarter); later ones wait, within the same handshake timeout.
///
/// So silent and slow connections never delay a client that sends its ClientHello at
/// once: it finds a slot free unless that many handshakes are truly under way. For
/// comparison: nginx allows 60 s for a handshake (`ssl_handshake_timeout`) and bounds
/// only connections (`worker_connections`, default 512); Envoy closes a connection its
/// TLS inspector has not classified within 15 s (`listener_filters_timeout`) and bounds
/// neither handshakes nor connections by default.
///
/// Cloning is cheap; clones share configuration and the handshake slots.
#[derive(Clone)]
pub struct MtlsAcceptor {
    inner: Arc<Inner>,
}

struct Inner {
    config: Arc<ServerConfig>,
    permissive: bool,
    optional_client_cert: bool,
    first_byte_timeout: Duration,
    timeout: Duration,
    limits: (usize, usize),
    admission: Admission,
    metrics: Arc<Metrics>,
}

impl fmt::Debug for MtlsAcceptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MtlsAcceptor")
            .field("permissive", &self.inner.permissive)
            .field("first_byte_timeout", &self.inner.first_byte_timeout)
            .field("handshake_timeout", &self.inner.timeout)
            .field("max_concurrent_handshakes", &self.inner.limits.0)
            .field("max_handshakes_per_source", &self.inner.limits.1)
            .finish_non_exhaustive()
    }
}

/// Builds an [`MtlsAcceptor`].
#[derive(Debug)]
#[must_use]
pub struct MtlsAcceptorBuilder {
    source: TlsSource,
    permissive: bool,
    optional_client_cert: bool,
    first_byte_timeout: Duration,
    timeout: Duration,
    max_handshakes: usize,
    max_per_source: Option<usize>,
    metrics: Option<Arc<Metrics>>,
    max_intermediates: Option<usize>,
    alpn: Vec<Vec<u8>>,
}

impl MtlsAcceptorBuilder {
    /// Also accept plaintext: a connection whose first byte is not a TLS handshake
    /// record is served without TLS and its peer is
    /// [`Unauthenticated::Plaintext`]. Connections that do start TLS are still held to
    /// mutual TLS. Use during a migration, with a policy that decides what
    /// unauthenticated peers may do.
    pub fn permissive(mut self) -> Self {
        self.permissive = true;
        self
    }

    /// Lets TLS clients that present no certificate in: their peer is
    /// [`Unauthenticated::NoClientCertificate`] and policy decides. A certificate that
    /// is presented is still verified and refused if invalid.
    pub fn allow_missing_client_certificate(mut self) -> Self {
        self.optional_client_cert = true;
        self
    }

    /// How long a new connection may stay silent before its first byte (default 5 s;
    /// each connection gets up to a quarter more, so that a burst of silent connections
    /// is not closed all at once). It holds no handshake slot meanwhile; see
    /// [Admission](MtlsAcceptor#admission).
    pub fn first_byte_timeout(mut self, timeout: Duration) -> Self {
        self.first_byte_timeout = timeout;
        self
    }

    /// How long a peer has to finish its handshake once its first byte arrived
    /// (default 10 s): reading its ClientHello, waiting for a slot, and the handshake.
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The most handshakes past their ClientHello run at once (default 1,024); later
    /// ones wait for a slot.
    pub fn max_concurrent_handshakes(mut self, max: usize) -> Self {
        self.max_handshakes = max.max(1);
        self
    }

    /// The most of those slots one source IP address holds at once (default a quarter
    /// of [`max_concurrent_handshakes`](Self::max_concurrent_handshakes), at least 1);
    /// its later handshakes wait for one of its own to finish.
    pub fn max_handshakes_per_source(mut self, max: usize) -> Self {
        self.max_per_source = Some(max.max(1));
        self
    }

    /// Counts handshakes (`inbound_tls_handshakes_total`) into `metrics` instead of
    /// [`Metrics::global`].
    pub fn metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// The most intermediate certificates a client may present (default 6, webpki's
    /// limit on path depth); a longer chain is refused with
    /// [`TlsError::ChainTooLong`] before any certificate in it is parsed. See
    /// [`SpiffeClientVerifier::max_intermediates`].
    pub fn max_intermediates(mut self, max: usize) -> Self {
        self.max_intermediates = Some(max);
        self
    }

    /// ALPN protocols, most preferred first (default `h2`, `http/1.1`, `http/1.0`).
    pub fn alpn_protocols(mut self, protocols: Vec<Vec<u8>>) -> Self {
        self.alpn = protocols;
        self
    }

    /// The `rustls::ServerConfig` the acceptor would use, for servers that drive rustls
    /// themselves (tokio-rustls, hyper-rustls, a QUIC stack).
    ///
    /// It guarantees what the acceptor's TLS does: a client certificate is required
    /// (unless [`allow_missing_client_certificate`](Self::allow_missing_client_certificate))
    /// and verified against the bundle of the client's own trust domain, read from the
    /// source at each handshake, as is the SVID presented; the crate's
    /// [`provider()`](super::provider) is used; and there is **no resumption** (no session
    /// cache, no tickets). rustls does not re-run the client-certificate verifier when it
    /// resumes a session and restores the old peer certificates, so a caller that turns
    /// resumption back on lets a client whose certificate was since revoked, or whose
    /// trust bundle was rotated away, resume as the identity it had; every SPIFFE ID read
    /// from such a connection must then be re-derivable from a fresh verification.
    /// Permissive mode, the handshake timeout and the bound on concurrent handshakes are
    /// the acceptor's and do not apply. Read the verified ID with
    /// [`peer_id`](super::peer_id).
    ///
    /// # Errors
    /// [`TlsError::Config`] if rustls refuses the configuration.
    pub fn server_config(self) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let mut verifier = SpiffeClientVerifier::new(self.source.clone());
        if self.optional_client_cert {
            verifier = verifier.allow_missing_client_certificate();
        }
        if let Some(max) = self.max_intermediates {
            verifier = verifier.max_intermediates(max);
        }
        server_config::build(self.source, verifier, self.alpn)
    }

    /// Builds the acceptor.
    ///
    /// # Errors
    /// [`TlsError::Config`] if rustls refuses the configuration.
    pub fn build(self) -> Result<MtlsAcceptor, TlsError> {
        let (permissive, optional_client_cert) = (self.permissive, self.optional_client_cert);
        let (first_byte_timeout, timeout) = (self.first_byte_timeout, self.timeout);
        let total = self.max_handshakes;
        let per_source = self.max_per_source.unwrap_or(total / 4).clamp(1, total);
        let metrics = self
            .metrics
            .clone()
            .unwrap_or_else(|| Metrics::global().clone());
        let config = self.server_config()?;
        Ok(MtlsAcceptor {
            inner: Arc::new(Inner {
                config,
                permissive,
                optional_client_cert,
                first_byte_timeout,
                timeout,
                limits: (total, per_source),
                admission: Admission::new(total, per_source),
                metrics,
            }),
        })
    }
}

impl MtlsAcceptor {
    /// A strict acceptor with default settings.
    ///
    /// # Errors
    /// As [`MtlsAcceptorBuilder::build`].
    pub fn new(source: impl Into<TlsSource>) -> Result<Self, TlsError> {
        Self::builder(source).build()
    }

    /// A builder, strict unless told otherwise.
    pub fn builder(source: impl Into<TlsSource>) -> MtlsAcceptorBuilder {
        MtlsAcceptorBuilder {
            source: source.into(),
            permissive: false,
            optional_client_cert: false,
            first_byte_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(10),
            max_handshakes: 1024,
            max_per_source: None,
            metrics: None,
            max_intermediates: None,
            alpn: default_server_alpn(),
        }
    }

    /// The rustls configuration this acceptor uses (see
    /// [`MtlsAcceptorBuilder::server_config`]).
    pub fn server_config(&self) -> Arc<ServerConfig> {
        self.inner.config.clone()
    }

    /// True when plaintext peers are served.
    pub fn is_permissive(&self) -> bool {
        self.inner.permissive
    }

    /// The handshake timeout.
    pub fn handshake_timeout(&self) -> Duration {
        self.inner.timeout
    }

    /// The first-byte timeout.
    pub fn first_byte_timeout(&self) -> Duration {
        self.inner.first_byte_timeout
    }

    /// Runs the handshake on `tcp` and returns the stream with the peer's proven
    /// identity (and both socket addresses). Refusals are logged (target
    /// `meshless::tls`) with their [`TlsError::reason`]; every handshake is counted in
    /// the acceptor's [`Metrics`] (by default [`Metrics::global`]) as
    /// `inbound_tls_handshakes_total{result, reason}`.
    ///
    /// The stages, their timeouts and the handshake slots are described under
    /// [Admission](MtlsAcceptor#admission).
    ///
    /// # Errors
    /// The reason the peer was refused: a [`TlsError`] certificate rejection,
    /// [`TlsError::PlaintextInStrictMode`], [`TlsError::FirstByteTimeout`],
    /// [`TlsError::HandshakeTimeout`], or a protocol or I/O failure.
    pub async fn accept(&self, tcp: TcpStream) -> Result<(MtlsStream, PeerIdentity), TlsError> {
        let remote = tcp.peer_addr().ok();
        let result = self.admit(tcp, remote).await;
        let metrics = &self.inner.metrics;
        match &result {
            Ok((_, peer)) if !peer.is_authenticated() => {}
            Ok(_) => metrics.handshake(Ok(())),
            Err(err) => metrics.handshake(Err(err.reason())),
        }
        match result {
            Ok((stream, peer)) => {
                tracing::debug!(target: "meshless::tls", peer = %peer, remote = ?remote, "accepted");
                Ok((stream, peer))
            }
            // A peer that connects and leaves, or connects and says nothing (TCP health
            // checks, scanners, a flood of silent connections), is routine: thousands of
            // warnings at once would cost more than the connections. Everything else is a
            // refusal worth a warning.
            Err(err @ (TlsError::Io(_) | TlsError::FirstByteTimeout(_))) => {
                tracing::debug!(
                    target: "meshless::tls",
                    reason = err.reason(),
                    remote = ?remote,
                    error = %err,
                    "connection failed before the handshake finished"
                );
                Err(err)
            }
            Err(err) => {
                tracing::warn!(
                    target: "meshless::tls",
                    reason = err.reason(),
                    remote = ?remote,
                    error = %err,
                    "refused connection"
                );
                Err(err)
            }
        }
    }

    /// The three stages of admission, each under its own deadline.
    /// `remote` is the peer's address, read once by [`accept`](Self::accept).
    async fn admit(
        &self,
        tcp: TcpStream,
        remote: Option<SocketAddr>,
    ) -> Result<(MtlsStream, PeerIdentity), TlsError> {
        let wait = self.inner.first_byte_timeout;
        let mut first = [0u8; 1];
        let port = remote.map_or(0, |a| a.port());
        match tokio::time::timeout(spread(wait, port), tcp.peek(&mut first)).await {
            Err(_) => return Err(TlsError::FirstByteTimeout(wait)),
            Ok(Ok(0)) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "peer closed the connection before sending anything",
                )
                .into());
            }
            Ok(read) => read?,
        };
        let timeout = self.inner.timeout;
        tokio::time::timeout(timeout, self.handshake(tcp, remote, first[0]))
            .await
            .unwrap_or(Err(TlsError::HandshakeTimeout(timeout)))
    }

    async fn handshake(
        &self,
        tcp: TcpStream,
        remote: Option<SocketAddr>,
        first: u8,
    ) -> Result<(MtlsStream, PeerIdentity), TlsError> {
        let addrs = (remote, tcp.local_addr().ok());
        let with_addrs = |mut peer: PeerIdentity| {
            if let Some(remote) = addrs.0 {
                peer = peer.with_remote_addr(remote);
            }
            if let Some(local) = addrs.1 {
                peer = peer.with_local_addr(local);
            }
            peer
        };
        if first != TLS_HANDSHAKE {
            if self.inner.permissive {
                let peer = PeerIdentity::unauthenticated(Unauthenticated::Plaintext);
                return Ok((MtlsStream::Plain(tcp), with_addrs(peer)));
            }
            return Err(TlsError::PlaintextInStrictMode(first));
        }
        // The whole ClientHello first, without a slot; then a slot for the handshake.
        let hello = LazyConfigAcceptor::new(rustls::server::Acceptor::default(), tcp)
            .await
            .map_err(TlsError::from_handshake)?;
        let _slot = self.inner.admission.acquire(addrs.0.map(|a| a.ip())).await;
        let tls = hello
            .into_stream(self.inner.config.clone())
            .await
            .map_err(TlsError::from_handshake)?;
        let Some(leaf) = tls.get_ref().1.peer_certificates().and_then(|c| c.first()) else {
            if self.inner.optional_client_cert {
                let peer = PeerIdentity::unauthenticated(Unauthenticated::NoClientCertificate);
                return Ok((MtlsStream::Tls(Box::new(tls)), with_addrs(peer)));
            }
            return Err(TlsError::NoClientCertificate);
        };
        // The verifier accepted this leaf moments ago; re-reading its ID is cheap.
        let id = validate_leaf(leaf)?;
        Ok((
            MtlsStream::Tls(Box::new(tls)),
            with_addrs(PeerIdentity::authenticated(id)),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_byte_timeout_is_spread_over_a_quarter_more() {
        let base = Duration::from_secs(4);
        let spread: Vec<Duration> = (40_000..41_000)
            .map(|port| super::spread(base, port))
            .collect();
        assert!(spread.iter().all(|d| *d >= base && *d < base + base / 4));
        // Consecutive ports land all over the quarter, not in one corner of it.
        let late = spread.iter().filter(|d| **d >= base + base / 8).count();
        assert!(
            (400..600).contains(&late),
            "{late} of 1000 in the later half"
        );
    }
}
