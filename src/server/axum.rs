//! axum integration (feature `axum`): [`MtlsListener`] for `axum::serve`, and
//! `PeerIdentity` as an extractor.
//!
//! [`serve`](crate::serve) takes an axum `Router` as it is, and is the recommended
//! way to serve one: it bounds slow and idle clients by requests (see
//! [`MtlsListener`] for the listener's own, coarser bound).
//!
//! ```no_run
//! # async fn demo(acceptor: meshless::tls::MtlsAcceptor) -> std::io::Result<()> {
//! use axum::{Router, routing::get};
//! use meshless::PeerIdentity;
//!
//! async fn whoami(peer: PeerIdentity) -> String {
//!     peer.to_string()
//! }
//!
//! let app = Router::new().route("/whoami", get(whoami));
//! let tcp = tokio::net::TcpListener::bind("127.0.0.1:8443").await?;
//! meshless::serve(tcp, acceptor, app).await
//! # }
//! ```
//!
//! With `axum::serve` (for its graceful shutdown, or to keep an existing setup):
//!
//! ```no_run
//! # async fn demo(acceptor: meshless::tls::MtlsAcceptor) -> std::io::Result<()> {
//! # use axum::{Router, routing::get};
//! # use meshless::PeerIdentity;
//! # async fn whoami(peer: PeerIdentity) -> String { peer.to_string() }
//! use std::time::Duration;
//! use meshless::MtlsListener;
//!
//! let app = Router::new().route("/whoami", get(whoami));
//! let tcp = tokio::net::TcpListener::bind("127.0.0.1:8443").await?;
//! let listener = MtlsListener::builder(tcp, acceptor)
//!     .idle_timeout(Duration::from_secs(120))
//!     .build();
//! axum::serve(listener, app.into_make_service_with_connect_info::<PeerIdentity>()).await
//! # }
//! ```

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::extract::connect_info::{ConnectInfo, Connected};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::serve::{IncomingStream, Listener};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::bounded::BoundedStream;
use super::{Backoff, IDLE_TIMEOUT, accept_tcp};
use crate::PeerIdentity;
use crate::tls::MtlsAcceptor;

/// Connections whose handshake finished but that axum has not taken yet.
const READY_QUEUE: usize = 128;

/// An axum [`Listener`] that yields only connections whose mutual-TLS handshake
/// succeeded, with the peer's [`PeerIdentity`] as the connection address.
///
/// Prefer [`serve`](crate::serve), which serves an axum `Router` as it is
/// (`meshless::serve(tcp, acceptor, router)`): it closes a connection that starts no
/// request for 30–60 s while none is in flight, so neither a silent client, nor a
/// request head sent a byte at a time, nor an idle keep-alive connection can hold it,
/// while a long request keeps its connection. `axum::serve` has no such bound, so this
/// listener enforces its own, on bytes rather than requests (see [`BoundedStream`]):
///
/// - the acceptor's admission rules apply as under `serve` (see [`MtlsAcceptor`]'s
///   *Admission*): a connection must send its first byte within the acceptor's
///   [`first_byte_timeout`](crate::tls::MtlsAcceptorBuilder::first_byte_timeout) (5 s)
///   and finish its handshake within its
///   [`handshake_timeout`](crate::tls::MtlsAcceptorBuilder::handshake_timeout)
///   (10 s), and holds a handshake slot only once its whole ClientHello arrived;
/// - the first byte of a request must arrive within the listener's
///   [`first_byte_timeout`](MtlsListenerBuilder::first_byte_timeout) of the handshake
///   (30 s by default);
/// - after that, a connection on which nothing was read or written for an
///   [`idle_timeout`](MtlsListenerBuilder::idle_timeout) (30 s by default, checked once
///   per period, so 30–60 s) is closed. A peer sending a byte within each period keeps
///   its connection; so does a response streamed at that pace. A handler that sends
///   nothing for longer loses its connection: raise the idle timeout for such routes,
///   or use [`serve`](crate::serve), which counts requests in flight.
///
/// axum awaits `Listener::accept` serially, so handshakes run in tasks spawned by a
/// background accept loop and finished connections are handed over through a channel:
/// a client that stalls its handshake delays nobody.
///
/// Serve with `into_make_service_with_connect_info::<PeerIdentity>()` so that handlers
/// can take `PeerIdentity` as an extractor.
#[derive(Debug)]
pub struct MtlsListener {
    ready: mpsc::Receiver<(BoundedStream, PeerIdentity)>,
    local_addr: io::Result<SocketAddr>,
    accept_loop: JoinHandle<()>,
}

/// Configures an [`MtlsListener`]: its first-byte and idle timeouts.
#[derive(Debug)]
pub struct MtlsListenerBuilder {
    listener: TcpListener,
    acceptor: MtlsAcceptor,
    first_byte_timeout: Duration,
    idle_timeout: Duration,
}

impl MtlsListenerBuilder {
    /// How long after its handshake a connection may go without sending a byte (30 s
    /// by default).
    pub fn first_byte_timeout(mut self, timeout: Duration) -> Self {
        self.first_byte_timeout = timeout;
        self
    }

    /// How long a connection may go with nothing read or written before it is closed,
    /// checked once per period (30 s by default, so closed after 30–60 s).
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// Starts accepting (on the current tokio runtime).
    pub fn build(self) -> MtlsListener {
        let Self {
            listener,
            acceptor,
            first_byte_timeout,
            idle_timeout,
        } = self;
        let local_addr = listener.local_addr();
        let (tx, ready) = mpsc::channel(READY_QUEUE);
        let accept_loop = tokio::spawn(async move {
            let mut backoff = Backoff::default();
            loop {
                let (tcp, _) = tokio::select! {
                    conn = accept_tcp(&listener, &mut backoff) => conn,
                    () = tx.closed() => return,
                };
                let _ = tcp.set_nodelay(true);
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    // Refusals, and handshakes past the acceptor's timeout, are logged
                    // by the acceptor.
                    if let Ok((stream, peer)) = acceptor.accept(tcp).await {
                        // The clock starts now: time spent waiting for axum counts.
                        let stream = BoundedStream::new(stream, first_byte_timeout, idle_timeout);
                        let _ = tx.send((stream, peer)).await;
                    }
                });
            }
        });
        MtlsListener {
            ready,
            local_addr,
            accept_loop,
        }
    }
}

impl MtlsListener {
    /// Starts accepting on `listener` (on the current tokio runtime), with the default
    /// timeouts.
    pub fn new(listener: TcpListener, acceptor: MtlsAcceptor) -> Self {
        Self::builder(listener, acceptor).build()
    }

    /// A listener on `listener` with timeouts to configure; accepting starts at
    /// [`build`](MtlsListenerBuilder::build).
    pub fn builder(listener: TcpListener, acceptor: MtlsAcceptor) -> MtlsListenerBuilder {
        MtlsListenerBuilder {
            listener,
            acceptor,
            first_byte_timeout: IDLE_TIMEOUT,
            idle_timeout: IDLE_TIMEOUT,
        }
    }
}

impl Drop for MtlsListener {
    fn drop(&mut self) {
        self.accept_loop.abort();
    }
}

impl Listener for MtlsListener {
    type Io = BoundedStream;
    type Addr = PeerIdentity;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(conn) => conn,
            // The accept loop only ends when this listener is dropped.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        match &self.local_addr {
            Ok(addr) => Ok(
                PeerIdentity::unauthenticated(crate::Unauthenticated::Plaintext)
                    .with_local_addr(*addr),
            ),
            Err(err) => Err(io::Error::new(err.kind(), err.to_string())),
        }
    }
}

impl Connected<IncomingStream<'_, MtlsListener>> for PeerIdentity {
    fn connect_info(stream: IncomingStream<'_, MtlsListener>) -> Self {
        stream.remote_addr().clone()
    }
}

/// The rejection when a handler asks for a [`PeerIdentity`] that the request does not
/// carry: a wiring mistake (no meshless server, listener or identity layer in front),
/// so the request fails closed with 500 rather than running unauthenticated.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct MissingPeerIdentity;

impl IntoResponse for MissingPeerIdentity {
    fn into_response(self) -> Response {
        tracing::error!(
            target: "meshless::tls",
            "request carries no PeerIdentity: serve through meshless (serve, MtlsListener with connect info)"
        );
        StatusCode::INTERNAL_SERVER_ERROR.into_response()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for PeerIdentity {
    type Rejection = MissingPeerIdentity;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        if let Some(peer) = parts.extensions.get::<PeerIdentity>() {
            return Ok(peer.clone());
        }
        parts
            .extensions
            .get::<ConnectInfo<PeerIdentity>>()
            .map(|info| info.0.clone())
            .ok_or(MissingPeerIdentity)
    }
}
