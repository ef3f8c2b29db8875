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
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::server::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tower_service::Service;

use crate::PeerIdentity;
use crate::tls::{MtlsAcceptor, MtlsStream};

#[cfg(feature = "axum")]
mod axum;
#[cfg(feature = "axum")]
mod bounded;
mod builder;
mod park;

#[cfg(feature = "axum")]
pub use self::axum::{MissingPeerIdentity, MtlsListener, MtlsListenerBuilder};
#[cfg(feature = "axum")]
pub use self::bounded::BoundedStream;
pub use self::builder::Server;
use self::builder::Settings;
use self::park::{ParkIo, ParkState};

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
/// [`PeerIdentity`] in its extensions. A connection that starts no request for 30 to
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

struct ConnTask {
    acceptor: MtlsAcceptor,
    settings: Arc<Settings>,
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

/// Serves an HTTP/1.1 connection, parking it (see [`park`]) whenever it is idle between
/// requests: hyper's connection, and its two 8 KiB buffers, exists only while the peer
/// is using it (1,000 idle keep-alive connections through the reference proxy: about 22 →
/// 13 KiB each, BENCHMARKS.md).
async fn serve_http1<S, B>(
    stream: MtlsStream,
    mut service: TowerToHyperService<AddPeer<S>>,
    activity: &Arc<Activity>,
    shutdown: &mut watch::Receiver<()>,
) where
    S: Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let mut io = ParkIo::new(stream, activity.clone());
    // One idle check for the connection's whole life, parked or not: a timer per
    // request would cost more than parking saves.
    let mut idle = pin!(idle_check(activity));
    let mut parked_at: Option<Instant> = None;
    loop {
        if !io.has_unread() && !first_bytes(io.stream(), idle.as_mut(), shutdown).await {
            // Idle for a whole period, or shutting down: close politely.
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, io.shutdown()).await;
            return;
        }
        // A peer whose next request followed the last park closely is busy: rebuilding
        // after each of its requests would cost it throughput, so its connection parks
        // only once a tick finds it quiet.
        let busy = parked_at.is_some_and(|at| at.elapsed() < BUSY_GAP);
        activity.park.connection_built();
        let mut conn = http1::Builder::new()
            .serve_connection(TokioIo::new(io), service)
            .with_upgrades();
        let run = std::future::poll_fn(|cx| match Pin::new(&mut conn).poll(cx) {
            Poll::Ready(result) => Poll::Ready(Some(result)),
            Poll::Pending if !busy && activity.parkable() => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        });
        let result = tokio::select! {
            result = run => result,
            // Busy: park once a tick finds it parkable with no request since the last.
            () = quiet(activity, PARK_TICK, Activity::parkable), if busy => None,
            // A request head still arriving after a whole period is a slow client, and
            // hyper's graceful close would wait for it forever: drop.
            () = &mut idle => return,
            _ = shutdown.changed() => {
                Pin::new(&mut conn).graceful_shutdown();
                Some((&mut conn).await)
            }
        };
        match result {
            // Parkable, so not upgraded: an upgrade request is never parked.
            None => {
                let Some(parts) = conn.into_parts() else {
                    return;
                };
                io = parts.io.into_inner().parked(parts.read_buf);
                service = parts.service;
                parked_at = Some(Instant::now());
            }
            Some(result) => {
                if let Err(err) = result {
                    tracing::debug!(target: "meshless::server", error = %err, "connection ended with an error");
                }
                return;
            }
        }
    }
}

/// A busy HTTP/1 connection is one whose request arrived within this long of its
/// parking.
const BUSY_GAP: Duration = Duration::from_millis(10);

/// How often a busy HTTP/1 connection is checked for having gone quiet.
const PARK_TICK: Duration = Duration::from_secs(1);

/// The default idle timeout ([`Server::idle_timeout`]), also [`MtlsListener`]'s. A peer
/// that completed its handshake cannot hold a connection by sending nothing, or a
/// header a byte at a time. Checked once per period per connection: hyper's own header
/// read timeout re-arms a timer on every request, which cost this server about 15 % of
/// its keep-alive throughput.
#[cfg(feature = "axum")]
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// How long closing an idle HTTP/1 connection politely (TLS close_notify, then FIN)
/// may take before it is simply dropped.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// Requests started and in flight on one connection, for the idle check, and what
/// parking an HTTP/1 connection needs to know.
#[derive(Debug)]
struct Activity {
    started: AtomicU64,
    active: AtomicUsize,
    park: ParkState,
    idle_timeout: Duration,
}

impl Activity {
    fn new(idle_timeout: Duration) -> Self {
        Self {
            started: AtomicU64::new(0),
            active: AtomicUsize::new(0),
            park: ParkState::default(),
            idle_timeout,
        }
    }

    /// The HTTP/1 connection waits for its next request and has nothing else to do.
    fn parkable(&self) -> bool {
        self.active.load(Ordering::Relaxed) == 0 && self.park.is_idle()
    }
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

/// Waits until `stream` has request bytes to read, or the peer closed; false on an
/// error, or when `idle` completes or shutdown begins first.
async fn first_bytes(
    stream: &MtlsStream,
    idle: Pin<&mut impl Future<Output = ()>>,
    shutdown: &mut watch::Receiver<()>,
) -> bool {
    // Plaintext that rustls already decrypted (sent along with the client's Finished,
    // or after what hyper read) will never make the socket readable again: don't wait
    // for it.
    if let MtlsStream::Tls(tls) = stream
        && !tls.get_ref().1.wants_read()
    {
        return true;
    }
    tokio::select! {
        readable = stream.tcp().readable() => readable.is_ok(),
        () = idle => false,
        _ = shutdown.changed() => false,
    }
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

/// What [`drive`] does with a connection that went a whole idle timeout with no
/// request in flight and none started.
#[derive(Clone, Copy, PartialEq, Eq)]
enum OnIdle {
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
async fn drive<C, E>(
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

/// Completes once a whole idle timeout passes with no request in flight and none
/// started.
async fn idle_check(activity: &Activity) {
    quiet(activity, activity.idle_timeout, |a| {
        a.active.load(Ordering::Relaxed) == 0
    })
    .await;
    let idle = activity.idle_timeout;
    tracing::debug!(target: "meshless::server", "closing a connection idle for {idle:?}");
}

/// Completes at the first check, one every `period`, that finds no request started
/// since the check before and `settled(activity)`.
async fn quiet(activity: &Activity, period: Duration, settled: fn(&Activity) -> bool) {
    let mut seen = activity.started.load(Ordering::Relaxed);
    loop {
        tokio::time::sleep(period).await;
        let now = activity.started.load(Ordering::Relaxed);
        if now == seen && settled(activity) {
            return;
        }
        seen = now;
    }
}

/// Puts the connection's [`PeerIdentity`] into every request's extensions.
#[derive(Clone)]
struct AddPeer<S> {
    inner: S,
    peer: PeerIdentity,
    activity: Arc<Activity>,
}

// `AddPeer` never pins `inner`, so it can move whatever `S` is; hyper's HTTP/1
// connection must be `Unpin` to be taken apart when it parks.
impl<S> Unpin for AddPeer<S> {}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for AddPeer<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ReqBody: http_body::Body,
{
    type Response = Response<TrackedBody<ResBody>>;
    type Error = S::Error;
    type Future = Tracked<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        req.extensions_mut().insert(self.peer.clone());
        let unfinished = !req.body().is_end_stream()
            || req.method() == http::Method::CONNECT
            || req.headers().contains_key(http::header::UPGRADE);
        self.activity.park.request_dispatched(unfinished);
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
