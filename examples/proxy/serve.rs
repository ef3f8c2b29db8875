//! The inbound HTTP accept loop: [`MtlsAcceptor`] handshakes, then the HTTP version
//! that ALPN agreed on.
//!
//! This is what `meshless::serve_with_graceful_shutdown` does, with two differences a
//! proxy wants: each handshake is counted in `inbound_tls_handshakes_total`, and a
//! connection runs hyper's HTTP/1.1 *or* HTTP/2 server as ALPN decided rather than the
//! auto-detecting one, which keeps an idle connection a few KiB smaller (plaintext
//! peers of a permissive listener still get auto-detection).

use std::fmt::Display;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use meshless::tls::MtlsStream;
use meshless::{MtlsAcceptor, PeerIdentity};
use tokio::net::TcpListener;

use crate::shutdown::{Shutdown, Tracker};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Serves `service` on `listener` until `shutdown`; then stops accepting, abandons
/// unfinished handshakes, lets in-flight requests finish and returns once every
/// connection is closed (the caller bounds the wait).
pub async fn serve<S, B>(
    listener: TcpListener,
    acceptor: MtlsAcceptor,
    service: S,
    shutdown: Shutdown,
) where
    S: tower::Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let tracker = Tracker::default();
    loop {
        let tcp = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => tcp,
                Err(err) => {
                    tracing::warn!(target: "proxy::inbound", error = %err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = shutdown.wait() => break,
        };
        let _ = tcp.set_nodelay(true);
        let (acceptor, service, stop) = (acceptor.clone(), service.clone(), shutdown.clone());
        let guard = tracker.guard();
        tokio::spawn(async move {
            let accepted = tokio::select! {
                accepted = acceptor.accept(tcp) => accepted,
                () = stop.wait() => return,
            };
            // The acceptor logs and counts refusals.
            let Ok((stream, peer)) = accepted else {
                return;
            };
            connection(stream, peer, service, stop).await;
            drop(guard);
        });
    }
    drop(listener);
    tracker.wait().await;
}

/// Serves one accepted connection in the HTTP version ALPN agreed on.
async fn connection<S, B>(stream: MtlsStream, peer: PeerIdentity, service: S, stop: Shutdown)
where
    S: tower::Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let alpn = stream.alpn_protocol().map(<[u8]>::to_vec);
    let service = TowerToHyperService::new(AddPeer {
        inner: service,
        peer: Arc::new(peer),
    });
    let io = TokioIo::new(stream);
    match alpn.as_deref() {
        Some(b"h2") => {
            let conn = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                .timer(TokioTimer::new())
                .serve_connection(io, service);
            drive(conn, stop, |c| c.graceful_shutdown()).await;
        }
        Some(b"http/1.1") => {
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .serve_connection(io, service);
            drive(conn, stop, |c| c.graceful_shutdown()).await;
        }
        // No ALPN (or plaintext in permissive mode): detect the version.
        _ => {
            let builder = auto::Builder::new(TokioExecutor::new());
            let conn = builder.serve_connection(io, service);
            drive(conn, stop, |c| c.graceful_shutdown()).await;
        }
    }
}

/// Runs `conn` to completion; at shutdown, asks it to finish gracefully first.
async fn drive<C, E>(conn: C, stop: Shutdown, graceful: fn(Pin<&mut C>))
where
    C: Future<Output = Result<(), E>>,
    E: Display,
{
    tokio::pin!(conn);
    let result = tokio::select! {
        result = conn.as_mut() => result,
        () = stop.wait() => {
            graceful(conn.as_mut());
            conn.await
        }
    };
    if let Err(err) = result {
        tracing::debug!(target: "proxy::inbound", error = %err, "connection ended with an error");
    }
}

/// Puts the connection's [`PeerIdentity`] into every request, where the authorization
/// layer reads it. (hyper clones the service for every request: the identity is shared
/// behind an `Arc` so that only the copy put into the request is made.)
#[derive(Clone)]
struct AddPeer<S> {
    inner: S,
    peer: Arc<PeerIdentity>,
}

impl<S, B> tower::Service<Request<B>> for AddPeer<S>
where
    S: tower::Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> S::Future {
        req.extensions_mut().insert(PeerIdentity::clone(&self.peer));
        self.inner.call(req)
    }
}
