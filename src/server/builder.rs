//! [`Server`]: the settings of [`serve`](super::serve), and serving with them.

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower_service::Service;

use super::{Backoff, BoxError, ConnTask, accept_tcp};
use crate::tls::MtlsAcceptor;

/// An HTTP/1.1 + HTTP/2 server over an [`MtlsAcceptor`], with its settings.
/// [`serve`](super::serve) is `Server::new(acceptor).serve(listener, service)`.
///
/// ```no_run
/// # async fn demo(acceptor: meshless::tls::MtlsAcceptor) -> std::io::Result<()> {
/// # let service = tower::service_fn(|_: http::Request<hyper::body::Incoming>| async {
/// #     Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
/// # });
/// use std::time::Duration;
/// use meshless::Server;
///
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8443").await?;
/// Server::new(acceptor)
///     .idle_timeout(Duration::from_secs(60))
///     .http2_max_concurrent_streams(50)
///     .graceful_shutdown(async { tokio::signal::ctrl_c().await.ok(); })
///     .serve(listener, service)
///     .await
/// # }
/// ```
///
/// Bind the listener with a backlog sized for bursts (`tokio::net::TcpSocket::listen`;
/// `TcpListener::bind` asks for 1,024): a burst that overflows it leaves clients
/// waiting through seconds of SYN-ACK retries before the server even sees them.
///
/// The limits on connections that have not finished their handshake (first-byte and
/// handshake timeouts, handshake slots per source) are the acceptor's: see
/// [`MtlsAcceptor`]'s *Admission*. The defaults beside nginx's and Envoy's:
///
/// | setting | meshless | nginx | Envoy |
/// | --- | --- | --- | --- |
/// | silent connection closed after | 5 s (acceptor) | 60 s (`client_header_timeout` / `ssl_handshake_timeout`) | 15 s (`listener_filters_timeout`) |
/// | handshake timeout | 10 s (acceptor) | 60 s | none by default |
/// | concurrent handshakes | 1,024, 256 per source (acceptor) | bounded only by `worker_connections` | unbounded |
/// | idle connection closed after | 30–60 s ([`idle_timeout`](Self::idle_timeout)) | 75 s (`keepalive_timeout`) | 1 h (`idle_timeout`) |
/// | HTTP/2 streams per connection | 100 ([`http2_max_concurrent_streams`](Self::http2_max_concurrent_streams)) | 128 | 2³¹−1 |
#[must_use]
pub struct Server {
    acceptor: MtlsAcceptor,
    settings: Settings,
    signal: Pin<Box<dyn Future<Output = ()> + Send>>,
}

/// What every connection of a [`Server`] is served with.
#[derive(Debug, Clone, Copy)]
pub(super) struct Settings {
    /// See [`Server::idle_timeout`].
    pub(super) idle_timeout: Duration,
    /// See [`Server::http2_max_concurrent_streams`].
    pub(super) max_streams: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::from_secs(30),
            max_streams: 100,
        }
    }
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("acceptor", &self.acceptor)
            .field("idle_timeout", &self.settings.idle_timeout)
            .field("http2_max_concurrent_streams", &self.settings.max_streams)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// A server over `acceptor`, with the default settings; it runs until its future
    /// is dropped (see [`graceful_shutdown`](Self::graceful_shutdown)).
    pub fn new(acceptor: MtlsAcceptor) -> Self {
        Self {
            acceptor,
            settings: Settings::default(),
            signal: Box::pin(std::future::pending()),
        }
    }

    /// How long a connection may go without starting a request while none is in
    /// flight before it is closed (default 30 s; HTTP/2 gets a GOAWAY). Checked once
    /// per period, so an idle connection lasts one to two periods; a silent client,
    /// or one sending a request head a byte at a time, cannot hold a connection longer.
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.settings.idle_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// The most HTTP/2 streams one client connection has open at once (default 100);
    /// the client is told in its SETTINGS and hyper refuses streams beyond it.
    pub fn http2_max_concurrent_streams(mut self, max: u32) -> Self {
        self.settings.max_streams = max.max(1);
        self
    }

    /// Stops when `signal` completes: no new connections, in-flight requests finish
    /// (HTTP/1.1 connections close after their current response, HTTP/2 connections get
    /// a GOAWAY), unfinished handshakes are abandoned, and [`serve`](Self::serve)
    /// returns once every connection is closed. Bound the drain with a timeout around
    /// it if needed.
    pub fn graceful_shutdown(mut self, signal: impl Future<Output = ()> + Send + 'static) -> Self {
        self.signal = Box::pin(signal);
        self
    }

    /// Serves `service` on `listener`; see [`serve`](super::serve) for what each
    /// connection gets.
    ///
    /// # Errors
    /// None in practice: accept errors are retried, connection errors end only their
    /// connection.
    pub async fn serve<S, B>(self, listener: TcpListener, service: S) -> io::Result<()>
    where
        S: Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
        S::Future: Send + 'static,
        S::Error: Into<BoxError>,
        B: http_body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<BoxError>,
    {
        let Self {
            acceptor,
            settings,
            mut signal,
        } = self;
        let settings = Arc::new(settings);
        let (shutdown_tx, shutdown_rx) = watch::channel(());
        let (alive_tx, alive_rx) = watch::channel(());
        let mut backoff = Backoff::default();
        loop {
            let (tcp, _) = tokio::select! {
                conn = accept_tcp(&listener, &mut backoff) => conn,
                () = &mut signal => break,
            };
            let task = ConnTask {
                acceptor: acceptor.clone(),
                settings: settings.clone(),
                shutdown: shutdown_rx.clone(),
                _alive: alive_rx.clone(),
            };
            tokio::spawn(task.run(tcp, service.clone()));
        }
        drop(listener);
        tracing::debug!(target: "meshless::server", "shutting down: draining connections");
        let _ = shutdown_tx.send(());
        drop(alive_rx);
        alive_tx.closed().await;
        Ok(())
    }
}
