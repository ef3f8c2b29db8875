//! [`MtlsConnector`]: the client side of mutual TLS, usable as a hyper-util connector.

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::Uri;
#[cfg(feature = "client")]
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::{ClientConfigBuilder, ExpectedServer, TlsError, TlsSource};
use crate::PeerIdentity;
use crate::svid::validate_leaf;

/// Opens mutual-TLS connections: presents our SVID and accepts only servers whose
/// SPIFFE ID the caller expects (never a hostname check).
///
/// A tower `Service<Uri>`, so it plugs into hyper-util's legacy client:
/// `Client::builder(TokioExecutor::new()).build(connector)`. Each response then carries
/// the server's [`PeerIdentity`] in its extensions.
///
/// Client-side session resumption is off, so every connection re-verifies the server
/// against the material in force.
#[derive(Clone)]
pub struct MtlsConnector {
    tls: TlsConnector,
    expected: ExpectedServer,
    timeout: Duration,
}

impl fmt::Debug for MtlsConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MtlsConnector")
            .field("expected", &self.expected)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl MtlsConnector {
    /// A connector presenting the SVID of `source`, verifying servers against its
    /// bundles and accepting only `expected` server IDs.
    ///
    /// # Errors
    /// [`TlsError::Config`] if rustls refuses the configuration.
    pub fn new(
        source: impl Into<TlsSource>,
        expected: impl Into<ExpectedServer>,
    ) -> Result<Self, TlsError> {
        let builder = ClientConfigBuilder::new(source, expected);
        let expected = builder.expected().clone();
        let config = builder.build()?;
        Ok(Self {
            tls: TlsConnector::from(config),
            expected,
            timeout: Duration::from_secs(10),
        })
    }

    /// Bounds TCP connect plus handshake (default 10 s).
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Only offer HTTP/1.1 over ALPN (for clients that cannot speak HTTP/2).
    #[must_use]
    pub fn http1_only(self) -> Self {
        let mut config = (*self.tls.config().clone()).clone();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Self {
            tls: TlsConnector::from(Arc::new(config)),
            ..self
        }
    }

    /// The rustls configuration this connector uses (see [`ClientConfigBuilder`]), for
    /// clients that take one, such as reqwest. It follows rotation of the source.
    pub fn client_config(&self) -> Arc<ClientConfig> {
        self.tls.config().clone()
    }

    /// The servers this connector accepts.
    pub fn expected(&self) -> &ExpectedServer {
        &self.expected
    }

    /// Connects to the authority of `uri` (port defaults to 443 for `https`, 80 for
    /// `http`) and runs the handshake.
    ///
    /// # Errors
    /// [`TlsError`] for a missing host, a connect or handshake failure, a server that
    /// fails verification, or [`TlsError::UnexpectedServerId`].
    pub async fn connect(&self, uri: Uri) -> Result<MtlsConnection, TlsError> {
        let host = uri
            .host()
            .ok_or_else(|| TlsError::Config(format!("URI `{uri}` has no host")))?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = uri.port_u16().unwrap_or(match uri.scheme_str() {
            Some("http") => 80,
            _ => 443,
        });
        let timeout = self.timeout;
        let attempt = async {
            let tcp = TcpStream::connect((host.as_str(), port)).await?;
            tcp.set_nodelay(true)?;
            self.connect_stream(tcp, &host).await
        };
        tokio::time::timeout(timeout, attempt)
            .await
            .unwrap_or(Err(TlsError::HandshakeTimeout(timeout)))
    }

    /// Runs the client handshake over an already connected `tcp`; `server_name` is only
    /// sent as SNI (an IP address sends none).
    ///
    /// # Errors
    /// As [`MtlsConnector::connect`].
    pub async fn connect_stream(
        &self,
        tcp: TcpStream,
        server_name: &str,
    ) -> Result<MtlsConnection, TlsError> {
        let name = ServerName::try_from(server_name.to_owned())
            .map_err(|e| TlsError::Config(format!("server name `{server_name}`: {e}")))?;
        let remote = tcp.peer_addr().ok();
        let local = tcp.local_addr().ok();
        let tls = self
            .tls
            .connect(name, tcp)
            .await
            .map_err(TlsError::from_handshake)?;
        let leaf = tls
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|c| c.first())
            .ok_or_else(|| TlsError::Handshake("server sent no certificate".into()))?;
        let mut peer = PeerIdentity::authenticated(validate_leaf(leaf)?);
        if let Some(remote) = remote {
            peer = peer.with_remote_addr(remote);
        }
        if let Some(local) = local {
            peer = peer.with_local_addr(local);
        }
        Ok(MtlsConnection {
            io: TokioIo::new(tls),
            peer,
        })
    }
}

impl tower_service::Service<Uri> for MtlsConnector {
    type Response = MtlsConnection;
    type Error = TlsError;
    type Future = Pin<Box<dyn Future<Output = Result<MtlsConnection, TlsError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), TlsError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { this.connect(uri).await })
    }
}

/// A client connection made by [`MtlsConnector`], with the server's proven identity.
#[derive(Debug)]
pub struct MtlsConnection {
    io: TokioIo<TlsStream<TcpStream>>,
    peer: PeerIdentity,
}

impl MtlsConnection {
    /// The server's proven identity.
    pub fn peer(&self) -> &PeerIdentity {
        &self.peer
    }

    /// The TLS stream, for use without hyper.
    pub fn into_inner(self) -> (TlsStream<TcpStream>, PeerIdentity) {
        (self.io.into_inner(), self.peer)
    }

    #[cfg(feature = "client")]
    fn is_h2(&self) -> bool {
        self.io.inner().get_ref().1.alpn_protocol() == Some(b"h2")
    }
}

#[cfg(feature = "client")]
impl Connection for MtlsConnection {
    fn connected(&self) -> Connected {
        let connected = Connected::new().extra(self.peer.clone());
        if self.is_h2() {
            connected.negotiated_h2()
        } else {
            connected
        }
    }
}

impl hyper::rt::Read for MtlsConnection {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for MtlsConnection {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}
