//! [`MtlsStream`]: an accepted connection, mutual TLS or (permissive mode) plaintext.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

/// An accepted connection: mutual TLS, or plaintext when the acceptor is permissive and
/// the peer did not speak TLS.
#[derive(Debug)]
#[non_exhaustive]
pub enum MtlsStream {
    /// A completed mutual-TLS session.
    Tls(Box<TlsStream<TcpStream>>),
    /// A plaintext connection (permissive mode only).
    Plain(TcpStream),
}

impl MtlsStream {
    /// The ALPN protocol agreed on, if any (`h2` or `http/1.1`).
    pub fn alpn_protocol(&self) -> Option<&[u8]> {
        match self {
            Self::Tls(tls) => tls.get_ref().1.alpn_protocol(),
            Self::Plain(_) => None,
        }
    }

    /// True for a TLS connection.
    pub fn is_tls(&self) -> bool {
        matches!(self, Self::Tls(_))
    }

    /// The underlying TCP stream.
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Self::Tls(tls) => tls.get_ref().0,
            Self::Plain(tcp) => tcp,
        }
    }
}

impl AsyncRead for MtlsStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Tls(tls) => Pin::new(tls.as_mut()).poll_read(cx, buf),
            Self::Plain(tcp) => Pin::new(tcp).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for MtlsStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Tls(tls) => Pin::new(tls.as_mut()).poll_write(cx, buf),
            Self::Plain(tcp) => Pin::new(tcp).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Tls(tls) => Pin::new(tls.as_mut()).poll_write_vectored(cx, bufs),
            Self::Plain(tcp) => Pin::new(tcp).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Self::Tls(tls) => tls.is_write_vectored(),
            Self::Plain(tcp) => tcp.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Tls(tls) => Pin::new(tls.as_mut()).poll_flush(cx),
            Self::Plain(tcp) => Pin::new(tcp).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Tls(tls) => Pin::new(tls.as_mut()).poll_shutdown(cx),
            Self::Plain(tcp) => Pin::new(tcp).poll_shutdown(cx),
        }
    }
}
