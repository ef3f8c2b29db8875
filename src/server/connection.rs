//! One connection: its handshake, then HTTP/1.1 or HTTP/2 as ALPN agreed, until it
//! ends, goes idle, or the server shuts down.

use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::Arc;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::server::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tower_service::Service;

use crate::tls::MtlsAcceptor;

use super::BoxError;
use super::activity::{Activity, AddPeer, first_bytes, idle_check};
use super::builder::Settings;
use super::h1::serve_http1;

pub(super) struct ConnTask {
    pub(super) acceptor: MtlsAcceptor,
    pub(super) settings: Arc<Settings>,
    pub(super) shutdown: watch::Receiver<()>,
    /// Dropped when the connection ends; shutdown waits for all of these.
    pub(super) _alive: watch::Receiver<()>,
}

impl ConnTask {
    pub(super) async fn run<S, B>(mut self, tcp: TcpStream, service: S)
    where
        S: Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
        S::Future: Send + 'static,
        S::Error: Into<BoxError>,
        B: http_body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<BoxError>,
    {
        let _ = tcp.set_nodelay(true);
        // Boxed, like the HTTP/2 and detecting servers below: the task's future is as
        // large as its largest state, and an idle HTTP/1 connection (the common case)
        // should not carry the handshake's or HTTP/2's state for its whole life.
        let accepted = tokio::select! {
            accepted = Box::pin(self.acceptor.accept(tcp)) => accepted,
            _ = self.shutdown.changed() => return,
        };
        // Refusals are logged by the acceptor.
        let Ok((stream, peer)) = accepted else {
            return;
        };
        let protocol = match stream.alpn_protocol() {
            Some(b"h2") => Protocol::Http2,
            Some(b"http/1.1" | b"http/1.0") => Protocol::Http1,
            _ => Protocol::Detect,
        };
        let activity = Arc::new(Activity::new(self.settings.idle_timeout));
        let service = TowerToHyperService::new(AddPeer {
            inner: service,
            peer,
            activity: activity.clone(),
        });
        let mut shutdown = self.shutdown;
        match protocol {
            Protocol::Http2 => {
                // hyper's HTTP/2 server allocates its connection state (and sends its
                // SETTINGS) at once: build it when the client's preface arrives, as
                // hyper-util's detecting server does, so that connections that are
                // never used stay small.
                if !first_bytes(&stream, pin!(idle_check(&activity)), &mut shutdown).await {
                    return;
                }
                let conn = http2::Builder::new(TokioExecutor::new())
                    .timer(TokioTimer::new())
                    .max_concurrent_streams(self.settings.max_streams)
                    .serve_connection(TokioIo::new(stream), service);
                let conn = Box::pin(conn);
                drive(conn, &mut shutdown, &activity, OnIdle::Finish, |c| {
                    c.graceful_shutdown();
                })
                .await;
            }
            Protocol::Http1 => serve_http1(stream, service, &activity, &mut shutdown).await,
            Protocol::Detect => {
                let mut builder = auto::Builder::new(TokioExecutor::new());
                builder
                    .http2()
                    .timer(TokioTimer::new())
                    .max_concurrent_streams(self.settings.max_streams);
                let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                // Which version is known only later: drop when idle, as for HTTP/1.
                let conn = Box::pin(conn);
                drive(conn, &mut shutdown, &activity, OnIdle::Drop, |c| {
                    c.graceful_shutdown();
                })
                .await;
            }
        }
    }
}

/// The HTTP version of a connection. ALPN decides it for TLS peers (which keeps an
/// idle connection smaller than hyper-util's auto-detecting server); plaintext peers
/// of a permissive acceptor, and TLS peers without ALPN, are detected from the
/// first bytes.
pub(super) enum Protocol {
    Http1,
    Http2,
    Detect,
}

/// What [`drive`] does with a connection that went a whole idle timeout with no
/// request in flight and none started.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum OnIdle {
    /// Drop it. For detected connections (HTTP/1 or HTTP/2): a request head still
    /// arriving after that long is a slow client, and hyper's graceful close would wait
    /// for a first request forever.
    Drop,

    /// Ask it to finish (HTTP/2 sends GOAWAY and closes once no stream is open), and
    /// drop it if it has not within another period.
    Finish,
}

/// Runs `conn` to completion; at shutdown, asks it to finish gracefully first; when
/// idle, as `on_idle` says.
pub(super) async fn drive<C, E>(
    mut conn: Pin<Box<C>>,
    shutdown: &mut watch::Receiver<()>,
    activity: &Activity,
    on_idle: OnIdle,
    graceful: fn(Pin<&mut C>),
) where
    C: Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    let result = tokio::select! {
        result = conn.as_mut() => result,
        () = idle_check(activity) => {
            if on_idle == OnIdle::Drop {
                return;
            }
            graceful(conn.as_mut());
            match tokio::time::timeout(activity.idle_timeout, conn.as_mut()).await {
                Ok(result) => result,
                Err(_) => return,
            }
        }
        _ = shutdown.changed() => {
            graceful(conn.as_mut());
            conn.await
        }
    };
    if let Err(err) = result {
        tracing::debug!(target: "meshless::server", error = %err, "connection ended with an error");
    }
}
