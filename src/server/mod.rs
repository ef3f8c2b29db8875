//! [`serve`]: an HTTP/1.1 + HTTP/2 server over [`MtlsAcceptor`], with each request
//! carrying its connection's [`PeerIdentity`].
//!
//! ```no_run
//! # async fn demo(acceptor: meshless::tls::MtlsAcceptor) -> std::io::Result<()> {
//! use http::{Request, Response};
//! use hyper::body::Incoming;
//! use meshless::PeerIdentity;
//!
//! let service = tower::service_fn(|req: Request<Incoming>| async move {
//!     let peer = req.extensions().get::<PeerIdentity>().cloned();
//!     Ok::<_, std::convert::Infallible>(Response::new(format!("hello {peer:?}")))
//! });
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8443").await?;
//! meshless::serve(listener, acceptor, service).await
//! # }
//! ```

use std::error::Error as StdError;
use std::future::Future;
use std::io;

use http::{Request, Response};
use hyper::body::Incoming;
use tokio::net::TcpListener;
use tower_service::Service;

use crate::tls::MtlsAcceptor;

mod accept;
mod activity;
#[cfg(feature = "axum")]
mod axum;
#[cfg(feature = "axum")]
mod bounded;
mod builder;
mod connection;
mod h1;
mod park;

use self::accept::{Backoff, accept_tcp};
#[cfg(feature = "axum")]
pub use self::axum::{MissingPeerIdentity, MtlsListener, MtlsListenerBuilder};
#[cfg(feature = "axum")]
pub use self::bounded::BoundedStream;
pub use self::builder::Server;
use self::connection::ConnTask;

type BoxError = Box<dyn StdError + Send + Sync>;

/// Serves `service` on `listener` over `acceptor` until the returned future is
/// dropped, with [`Server`]'s default settings (use [`Server`] to change them). See
/// [`serve_with_graceful_shutdown`] for a clean stop.
///
/// Each connection's handshake runs in its own task, and holds a handshake slot only
/// once its whole ClientHello has arrived (see [`MtlsAcceptor`]'s *Admission*), so a
/// client that sends nothing, or its ClientHello a byte at a time, delays nobody and is
/// closed at the acceptor's first-byte or handshake timeout.
/// HTTP/1.1 or HTTP/2 is chosen by ALPN (detected from the first bytes for plaintext
/// peers of a permissive acceptor); every request carries the connection's
/// [`PeerIdentity`](crate::PeerIdentity) in its extensions. A connection that starts no request for 30 to
/// 60 seconds while none is in flight is closed (HTTP/2 with a GOAWAY), so a silent or
/// byte-by-byte client cannot hold a connection; a long upload or a streamed response
/// keeps its connection. An idle HTTP/1.1 keep-alive connection (ALPN `http/1.1`) holds
/// only its TLS session: hyper's connection and its buffers are dropped while no request
/// is under way and rebuilt when the next one arrives. They are dropped as soon as a
/// response is sent, or, for a peer sending requests back to back, once a check every
/// second finds it quiet; an idle connection is about 40 % smaller. Accept errors (such
/// as running out of file descriptors) are logged and retried with a backoff of up to
/// one second.
///
/// # Errors
/// None in practice: accept errors are retried, connection errors end only their
/// connection.
pub async fn serve<S, B>(
    listener: TcpListener,
    acceptor: MtlsAcceptor,
    service: S,
) -> io::Result<()>
where
    S: Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    serve_with_graceful_shutdown(listener, acceptor, service, std::future::pending()).await
}

/// Like [`serve`], until `signal` completes; then stops accepting, lets in-flight
/// requests finish (HTTP/1.1 connections close after their current response, HTTP/2
/// connections get a GOAWAY), abandons unfinished handshakes, and returns once every
/// connection is closed. Bound the drain with a timeout around this future if needed.
///
/// # Errors
/// As [`serve`].
pub async fn serve_with_graceful_shutdown<S, B, F>(
    listener: TcpListener,
    acceptor: MtlsAcceptor,
    service: S,
    signal: F,
) -> io::Result<()>
where
    S: Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
    F: Future<Output = ()> + Send + 'static,
{
    Server::new(acceptor)
        .graceful_shutdown(signal)
        .serve(listener, service)
        .await
}

/// The default idle timeout ([`Server::idle_timeout`]), also [`MtlsListener`]'s. A peer
/// that completed its handshake cannot hold a connection by sending nothing, or a
/// header a byte at a time. Checked once per period per connection: hyper's own header
/// read timeout re-arms a timer on every request, which cost this server about 15 % of
/// its keep-alive throughput.
#[cfg(feature = "axum")]
const IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
