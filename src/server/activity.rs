//! What a connection is doing: requests started and in flight (for the idle check),
//! what hyper did with the stream (for parking, [`ParkState`]), the service wrapper that
//! counts requests and attaches the peer, and the wait for a request's first bytes.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Request, Response};
use tokio::sync::watch;
use tower_service::Service;

use crate::PeerIdentity;
use crate::tls::MtlsStream;

/// Requests started and in flight on one connection, for the idle check, and what
/// parking an HTTP/1 connection needs to know.
#[derive(Debug)]
pub(super) struct Activity {
    pub(super) started: AtomicU64,
    pub(super) active: AtomicUsize,
    pub(super) park: ParkState,
    pub(super) idle_timeout: Duration,
}

impl Activity {
    pub(super) fn new(idle_timeout: Duration) -> Self {
        Self {
            started: AtomicU64::new(0),
            active: AtomicUsize::new(0),
            park: ParkState::default(),
            idle_timeout,
        }
    }

    /// The HTTP/1 connection waits for its next request and has nothing else to do.
    pub(super) fn parkable(&self) -> bool {
        self.active.load(Ordering::Relaxed) == 0 && self.park.is_idle()
    }
}

/// Counts one request in flight until dropped: it rides in the response future, then
/// in the response body, so a response still being streamed counts.
pub(super) struct InFlight(Arc<Activity>);

impl InFlight {
    pub(super) fn new(activity: &Arc<Activity>) -> Self {
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
    pub(super) struct Tracked<F> {
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
    pub(super) struct TrackedBody<B> {
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

/// Completes once a whole idle timeout passes with no request in flight and none
/// started.
pub(super) async fn idle_check(activity: &Activity) {
    quiet(activity, activity.idle_timeout, |a| {
        a.active.load(Ordering::Relaxed) == 0
    })
    .await;
    let idle = activity.idle_timeout;
    tracing::debug!(target: "meshless::server", "closing a connection idle for {idle:?}");
}

/// Completes at the first check, one every `period`, that finds no request started
/// since the check before and `settled(activity)`.
pub(super) async fn quiet(activity: &Activity, period: Duration, settled: fn(&Activity) -> bool) {
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
pub(super) struct AddPeer<S> {
    pub(super) inner: S,
    pub(super) peer: PeerIdentity,
    pub(super) activity: Arc<Activity>,
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

/// Bytes were written (or offered) since the last successful flush.
pub(super) const WRITE_BUFFERED: u8 = 1;
/// Shutdown of the stream has begun.
pub(super) const SHUTTING_DOWN: u8 = 1 << 1;
/// The current hyper connection has dispatched no request yet, or its last request
/// had a body or asked for an upgrade.
const NOT_BETWEEN_REQUESTS: u8 = 1 << 2;

/// What the I/O and the service saw of the current hyper connection, for
/// [`Activity::parkable`].
#[derive(Debug, Default)]
pub(super) struct ParkState(AtomicU8);

impl ParkState {
    pub(super) fn set(&self, flags: u8) {
        self.0.fetch_or(flags, Ordering::Relaxed);
    }

    pub(super) fn clear(&self, flags: u8) {
        self.0.fetch_and(!flags, Ordering::Relaxed);
    }

    /// A new hyper connection starts on the stream.
    pub(super) fn connection_built(&self) {
        self.0.store(NOT_BETWEEN_REQUESTS, Ordering::Relaxed);
    }

    /// A request was dispatched; `unfinished` when hyper may still have its body to
    /// read, or may hand the stream to an upgrade.
    pub(super) fn request_dispatched(&self, unfinished: bool) {
        if unfinished {
            self.set(NOT_BETWEEN_REQUESTS);
        } else {
            self.clear(NOT_BETWEEN_REQUESTS);
        }
    }

    /// With no request in flight: hyper waits for the next request, with nothing
    /// left to write.
    pub(super) fn is_idle(&self) -> bool {
        self.0.load(Ordering::Relaxed) == 0
    }
}

/// Waits until `stream` has request bytes to read, or the peer closed; false on an
/// error, or when `idle` completes or shutdown begins first.
pub(super) async fn first_bytes(
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
