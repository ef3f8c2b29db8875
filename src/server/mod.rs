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
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::server::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tower_service::Service;

use crate::PeerIdentity;
use crate::tls::{MtlsAcceptor, MtlsStream};

#[cfg(feature = "axum")]
mod axum;
#[cfg(feature = "axum")]
pub use self::axum::{MissingPeerIdentity, MtlsListener};

type BoxError = Box<dyn StdError + Send + Sync>;

/// Serves `service` on `listener` over `acceptor` until the returned future is
/// dropped. See [`serve_with_graceful_shutdown`] for a clean stop.
///
/// Each connection's handshake runs in its own task, so a client that never finishes
/// its handshake delays nobody (and is closed at the acceptor's handshake timeout).
/// HTTP/1.1 or HTTP/2 is chosen by ALPN (detected from the first bytes for plaintext
/// peers of a permissive acceptor); every request carries the connection's
/// [`PeerIdentity`] in its extensions. A connection that starts no request for 30 to
/// 60 seconds while none is in flight is closed (HTTP/2 with a GOAWAY), so a silent or
/// byte-by-byte client cannot hold a connection; a long upload or a streamed response
/// keeps its connection. Accept errors (such as running out of file
/// descriptors) are logged and retried with a backoff of up to one second.
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
    F: Future<Output = ()> + Send,
{
    let (shutdown_tx, shutdown_rx) = watch::channel(());
    let (alive_tx, alive_rx) = watch::channel(());
    let mut backoff = Backoff::default();
    tokio::pin!(signal);
    loop {
        let (tcp, _) = tokio::select! {
            conn = accept_tcp(&listener, &mut backoff) => conn,
            () = &mut signal => break,
        };
        let task = ConnTask {
            acceptor: acceptor.clone(),
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

struct ConnTask {
    acceptor: MtlsAcceptor,
    shutdown: watch::Receiver<()>,
    /// Dropped when the connection ends; shutdown waits for all of these.
    _alive: watch::Receiver<()>,
}

impl ConnTask {
    async fn run<S, B>(mut self, tcp: TcpStream, service: S)
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
            Some(b"http/1.1") => Protocol::Http1,
            _ => Protocol::Detect,
        };
        if matches!(protocol, Protocol::Http1) {
            // hyper's HTTP/1 connection allocates two 8 KiB buffers up front: build it
            // when the first request bytes arrive, so that a peer holding connections
            // it never uses costs about half the memory.
            let first = tokio::select! {
                first = first_bytes(&stream) => first,
                _ = self.shutdown.changed() => return,
            };
            if !first {
                return;
            }
        }
        let activity = Arc::new(Activity::default());
        let service = TowerToHyperService::new(AddPeer {
            inner: service,
            peer,
            activity: activity.clone(),
        });
        let io = TokioIo::new(stream);
        let shutdown = self.shutdown;
        match protocol {
            Protocol::Http2 => {
                let conn = http2::Builder::new(TokioExecutor::new())
                    .timer(TokioTimer::new())
                    .serve_connection(io, service);
                drive(
                    Box::pin(conn).as_mut(),
                    shutdown,
                    OnIdle::Finish(&activity),
                    |c| {
                        c.graceful_shutdown();
                    },
                )
                .await;
            }
            Protocol::Http1 => {
                let conn = http1::Builder::new()
                    .serve_connection(io, service)
                    .with_upgrades();
                tokio::pin!(conn);
                drive(conn, shutdown, OnIdle::Drop(&activity), |c| {
                    c.graceful_shutdown();
                })
                .await;
            }
            Protocol::Detect => {
                let mut builder = auto::Builder::new(TokioExecutor::new());
                builder.http2().timer(TokioTimer::new());
                let conn = builder.serve_connection_with_upgrades(io, service);
                // Which version is known only later: drop when idle, as for HTTP/1.
                drive(
                    Box::pin(conn).as_mut(),
                    shutdown,
                    OnIdle::Drop(&activity),
                    |c| {
                        c.graceful_shutdown();
                    },
                )
                .await;
            }
        }
    }
}

/// How long a connection may go without starting a request while none is in flight
/// before it is closed (HTTP/2: sent GOAWAY). A peer that completed its handshake
/// cannot hold a connection by sending nothing, or a header a byte at a time, and idle
/// keep-alive connections are closed after 30–60 s. Checked once per period per
/// connection: hyper's own header read timeout re-arms a timer on every request, which
/// cost this server about 15 % of its keep-alive throughput.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Requests started and in flight on one connection, for the idle check.
#[derive(Debug, Default)]
struct Activity {
    started: AtomicU64,
    active: AtomicUsize,
}

/// Counts one request in flight until dropped: it rides in the response future, then
/// in the response body, so a response still being streamed counts.
struct InFlight(Arc<Activity>);

impl InFlight {
    fn new(activity: &Arc<Activity>) -> Self {
        activity.started.fetch_add(1, Ordering::Relaxed);
        activity.active.fetch_add(1, Ordering::Relaxed);
        Self(activity.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::Relaxed);
    }
}

pin_project_lite::pin_project! {
    /// A request's response future, counted in flight while it lives.
    struct Tracked<F> {
        #[pin]
        inner: F,
        in_flight: Option<InFlight>,
    }
}

impl<F, B, E> Future for Tracked<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<TrackedBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let response = std::task::ready!(this.inner.poll(cx))?;
        let in_flight = this.in_flight.take();
        Poll::Ready(Ok(response.map(|inner| TrackedBody {
            inner,
            _in_flight: in_flight,
        })))
    }
}

pin_project_lite::pin_project! {
    /// A response body, its request counted in flight until hyper drops it.
    struct TrackedBody<B> {
        #[pin]
        inner: B,
        _in_flight: Option<InFlight>,
    }
}

impl<B: http_body::Body> http_body::Body for TrackedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<B::Data>, B::Error>>> {
        self.project().inner.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Waits until `stream` has request bytes to read (or the peer closed), for at most
/// [`IDLE_TIMEOUT`]; false when the peer sent nothing in that time.
async fn first_bytes(stream: &MtlsStream) -> bool {
    // Plaintext that rustls already decrypted (sent along with the client's Finished)
    // will never make the socket readable again: don't wait for it.
    if let MtlsStream::Tls(tls) = stream
        && !tls.get_ref().1.wants_read()
    {
        return true;
    }
    matches!(
        tokio::time::timeout(IDLE_TIMEOUT, stream.tcp().readable()).await,
        Ok(Ok(()))
    )
}

/// The HTTP version of a connection. ALPN decides it for TLS peers (which keeps an
/// idle connection smaller than hyper-util's auto-detecting server); plaintext peers
/// of a permissive acceptor, and TLS peers without ALPN, are detected from the
/// first bytes.
enum Protocol {
    Http1,
    Http2,
    Detect,
}

/// What [`drive`] does with a connection that went a whole [`IDLE_TIMEOUT`]
/// with no request in flight and none started.
#[derive(Clone, Copy)]
enum OnIdle<'a> {
    /// Drop it. For HTTP/1 (and detected connections): a request head still arriving
    /// after that long is a slow client, and hyper's graceful close would wait for a
    /// first request forever.
    Drop(&'a Activity),
    /// Ask it to finish (HTTP/2 sends GOAWAY and closes once no stream is open), and
    /// drop it if it has not within another period.
    Finish(&'a Activity),
}

/// Runs `conn` to completion; at shutdown, asks it to finish gracefully first; when
/// idle, as `on_idle` says.
async fn drive<C, E>(
    mut conn: Pin<&mut C>,
    mut shutdown: watch::Receiver<()>,
    on_idle: OnIdle<'_>,
    graceful: fn(Pin<&mut C>),
) where
    C: Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    let (OnIdle::Drop(activity) | OnIdle::Finish(activity)) = on_idle;
    let idle_check = async {
        let mut seen = activity.started.load(Ordering::Relaxed);
        loop {
            tokio::time::sleep(IDLE_TIMEOUT).await;
            let now = activity.started.load(Ordering::Relaxed);
            if now == seen && activity.active.load(Ordering::Relaxed) == 0 {
                return;
            }
            seen = now;
        }
    };
    let result = tokio::select! {
        result = conn.as_mut() => result,
        () = idle_check => {
            tracing::debug!(target: "meshless::server", "closing a connection idle for {IDLE_TIMEOUT:?}");
            if let OnIdle::Drop(_) = on_idle {
                return;
            }
            graceful(conn.as_mut());
            match tokio::time::timeout(IDLE_TIMEOUT, conn.as_mut()).await {
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

/// Puts the connection's [`PeerIdentity`] into every request's extensions.
#[derive(Clone)]
struct AddPeer<S> {
    inner: S,
    peer: PeerIdentity,
    activity: Arc<Activity>,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for AddPeer<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<TrackedBody<ResBody>>;
    type Error = S::Error;
    type Future = Tracked<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        req.extensions_mut().insert(self.peer.clone());
        Tracked {
            in_flight: Some(InFlight::new(&self.activity)),
            inner: self.inner.call(req),
        }
    }
}

/// Exponential backoff for accept errors (EMFILE and friends), 5 ms to 1 s.
#[derive(Debug)]
pub(crate) struct Backoff(Duration);

impl Default for Backoff {
    fn default() -> Self {
        Self(Duration::from_millis(5))
    }
}

/// Accepts the next TCP connection, retrying errors: a connection-level error (the peer
/// gave up before we accepted) at once, a resource error (out of file descriptors,
/// memory) after a growing pause, so the loop neither spins nor exits.
pub(crate) async fn accept_tcp(
    listener: &TcpListener,
    backoff: &mut Backoff,
) -> (TcpStream, SocketAddr) {
    loop {
        match listener.accept().await {
            Ok(conn) => {
                *backoff = Backoff::default();
                return conn;
            }
            Err(err) if is_connection_error(&err) => continue,
            Err(err) => {
                tracing::warn!(
                    target: "meshless::server",
                    error = %err,
                    retry_in = ?backoff.0,
                    "accept failed"
                );
                tokio::time::sleep(backoff.0).await;
                backoff.0 = (backoff.0 * 2).min(Duration::from_secs(1));
            }
        }
    }
}

fn is_connection_error(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}
