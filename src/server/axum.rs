//! axum integration (feature `axum`): [`MtlsListener`] for `axum::serve`, and
//! `PeerIdentity` as an extractor.
//!
//! ```no_run
//! # async fn demo(acceptor: meshless::tls::MtlsAcceptor) -> std::io::Result<()> {
//! use axum::{Router, routing::get};
//! use meshless::{MtlsListener, PeerIdentity};
//!
//! async fn whoami(peer: PeerIdentity) -> String {
//!     peer.to_string()
//! }
//!
//! let app = Router::new().route("/whoami", get(whoami));
//! let tcp = tokio::net::TcpListener::bind("127.0.0.1:8443").await?;
//! let listener = MtlsListener::new(tcp, acceptor);
//! axum::serve(listener, app.into_make_service_with_connect_info::<PeerIdentity>()).await
//! # }
//! ```

use std::io;
use std::net::SocketAddr;

use axum::extract::FromRequestParts;
use axum::extract::connect_info::{ConnectInfo, Connected};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::serve::{IncomingStream, Listener};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::{Backoff, accept_tcp};
use crate::PeerIdentity;
use crate::tls::{MtlsAcceptor, MtlsStream};

/// Connections whose handshake finished but that axum has not taken yet.
const READY_QUEUE: usize = 128;

/// An axum [`Listener`] that yields only connections whose mutual-TLS handshake
/// succeeded, with the peer's [`PeerIdentity`] as the connection address.
///
/// axum awaits `Listener::accept` serially, so handshakes run in tasks spawned by a
/// background accept loop and finished connections are handed over through a channel:
/// a client that stalls its handshake delays nobody.
///
/// Serve with `into_make_service_with_connect_info::<PeerIdentity>()` so that handlers
/// can take `PeerIdentity` as an extractor.
#[derive(Debug)]
pub struct MtlsListener {
    ready: mpsc::Receiver<(MtlsStream, PeerIdentity)>,
    local_addr: io::Result<SocketAddr>,
    accept_loop: JoinHandle<()>,
}

impl MtlsListener {
    /// Starts accepting on `listener` (on the current tokio runtime).
    pub fn new(listener: TcpListener, acceptor: MtlsAcceptor) -> Self {
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
                    // Refusals are logged by the acceptor.
                    if let Ok(conn) = acceptor.accept(tcp).await {
                        let _ = tx.send(conn).await;
                    }
                });
            }
        });
        Self {
            ready,
            local_addr,
            accept_loop,
        }
    }
}

impl Drop for MtlsListener {
    fn drop(&mut self) {
        self.accept_loop.abort();
    }
}

impl Listener for MtlsListener {
    type Io = MtlsStream;
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
