//! A pool of HTTP/1.1 connections to the app, for the inbound listeners.
//!
//! hyper-util's pooled client puts a connection back in its pool from a task it spawns
//! for each request, which waits until hyper is ready for the next request. Here the
//! response body puts its connection back itself once it has been read to the end: no
//! task per request, and a plain stack of idle connections instead of a map keyed by
//! scheme and authority (there is one app per listener). A connection the app closed
//! while idle is skipped; a request that could not be written on a reused connection is
//! retried on another; connections idle past the timeout are closed.
//!
//! Each connection is driven by a task of its own, as hyper-util does. (Driving it from
//! the request's task instead, as an event-loop proxy does, saved the two trips between
//! tasks but cost more CPU per request in paired runs: with the app on the same CPU, the
//! app then woke, and preempted the proxy, for nearly every request; see BENCHMARKS.md.)

use std::collections::VecDeque;
use std::error::Error as StdError;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::uri::PathAndQuery;
use http::{Request, Response, Uri, Version};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;

type BoxError = Box<dyn StdError + Send + Sync>;

/// A pool of HTTP/1.1 connections to one plaintext app. Cloning shares the pool.
#[derive(Clone)]
pub struct Http1Pool(Arc<PoolInner>);

struct PoolInner {
    addr: SocketAddr,
    /// `Host` for requests that came without one (HTTP/1.0).
    host: HeaderValue,
    /// Idle connections, the most recently used last.
    idle: Mutex<VecDeque<Idle>>,
    idle_timeout: Duration,
    max_idle: usize,
    connect_timeout: Duration,
}

struct Idle {
    send: SendRequest<Incoming>,
    since: Instant,
}

impl Http1Pool {
    /// A pool for the app at `addr`, keeping up to `max_idle` idle connections for up
    /// to `idle_timeout` each.
    pub fn new(addr: SocketAddr, idle_timeout: Duration, max_idle: usize) -> Self {
        let host = HeaderValue::from_str(&addr.to_string())
            .expect("a socket address is a valid header value");
        let pool = Self(Arc::new(PoolInner {
            addr,
            host,
            idle: Mutex::new(VecDeque::new()),
            idle_timeout,
            max_idle,
            connect_timeout: Duration::from_secs(5),
        }));
        // Closes connections idle past the timeout when no request comes to do it, and
        // ends with the pool.
        let weak = Arc::downgrade(&pool.0);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep((idle_timeout / 2).max(Duration::from_secs(1))).await;
                let Some(inner) = weak.upgrade() else { return };
                drop(Self(inner).expire(Instant::now()));
            }
        });
        pool
    }

    /// Sends `req` to the app, on an idle connection or a new one. The URI is reduced to
    /// origin form, as a request to an origin server is written (RFC 9112 §3.2.1).
    pub async fn send(&self, mut req: Request<Incoming>) -> Result<Response<AppBody>, BoxError> {
        origin_form(&mut req);
        // An HTTP/1.0 request asks the app to close the connection after answering,
        // which it need not announce: such a connection is not reused.
        let reuse = req.version() != Version::HTTP_10;
        if !req.headers().contains_key(header::HOST) {
            req.headers_mut().insert(header::HOST, self.0.host.clone());
        }
        loop {
            let (mut send, reused) = match self.checkout() {
                Some(send) => (send, true),
                None => (self.connect().await?, false),
            };
            match send.try_send_request(req).await {
                Ok(res) => {
                    let pool = reuse.then(|| self.clone());
                    return Ok(res.map(|body| AppBody::pooled(body, send, pool)));
                }
                Err(mut err) => match err.take_message() {
                    // Not written: the app closed the idle connection first. Next one.
                    Some(unsent) if reused => req = unsent,
                    _ => return Err(err.into_error().into()),
                },
            }
        }
    }

    /// The most recently used idle connection that is still open and within the idle
    /// timeout, if any.
    fn checkout(&self) -> Option<SendRequest<Incoming>> {
        let mut idle = self.0.idle.lock().unwrap_or_else(|e| e.into_inner());
        while let Some(Idle { send, since }) = idle.pop_back() {
            if since.elapsed() >= self.0.idle_timeout {
                idle.clear(); // the rest are older still
                return None;
            }
            if send.is_ready() {
                return Some(send);
            }
        }
        None
    }

    fn checkin(&self, send: SendRequest<Incoming>) {
        let now = Instant::now();
        let mut idle = self.expire(now);
        if idle.len() >= self.0.max_idle {
            idle.pop_front();
        }
        if self.0.max_idle > 0 {
            idle.push_back(Idle { send, since: now });
        }
    }

    /// Drops (and so closes) the connections idle for longer than the timeout.
    fn expire(&self, now: Instant) -> MutexGuard<'_, VecDeque<Idle>> {
        let mut idle = self.0.idle.lock().unwrap_or_else(|e| e.into_inner());
        while idle
            .front()
            .is_some_and(|oldest| now.duration_since(oldest.since) >= self.0.idle_timeout)
        {
            idle.pop_front();
        }
        idle
    }

    async fn connect(&self) -> Result<SendRequest<Incoming>, BoxError> {
        let addr = self.0.addr;
        let tcp = tokio::time::timeout(self.0.connect_timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| format!("connecting to {addr} timed out"))??;
        tcp.set_nodelay(true)?;
        let (send, conn) = http1::Builder::new().handshake(TokioIo::new(tcp)).await?;
        tokio::spawn(async move {
            if let Err(err) = conn.await {
                tracing::debug!(target: "proxy::inbound", app = %addr, error = %err, "app connection failed");
            }
        });
        Ok(send)
    }
}

/// `http://app/a?b` → `/a?b`.
fn origin_form<B>(req: &mut Request<B>) {
    if req.uri().scheme().is_some() || req.uri().authority().is_some() {
        let path = req
            .uri()
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"));
        *req.uri_mut() = Uri::from(path);
    }
}

/// A response body from the next hop. Read to its end, a pooled one puts its connection
/// back in the pool; dropped before, it closes it (HTTP/1.1 cannot abandon a response
/// and keep the connection).
pub struct AppBody {
    body: Incoming,
    /// The connection, and the pool to return it to (`None`: close it when done).
    pooled: Option<(SendRequest<Incoming>, Option<Http1Pool>)>,
    /// The request's place in the app budget, given back with the body.
    _place: Option<OwnedSemaphorePermit>,
}

impl AppBody {
    fn pooled(body: Incoming, send: SendRequest<Incoming>, pool: Option<Http1Pool>) -> Self {
        let mut this = Self {
            body,
            pooled: Some((send, pool)),
            _place: None,
        };
        if this.body.is_end_stream() {
            this.release();
        }
        this
    }

    /// The response is complete: returns the connection to the pool once hyper is ready
    /// for another request on it (at once, nearly always; not while the request body is
    /// still being written, as when the app answered before reading it all).
    fn release(&mut self) {
        if let Some((send, Some(pool))) = self.pooled.take() {
            if send.is_ready() {
                pool.checkin(send);
            } else if !send.is_closed() {
                tokio::spawn(async move {
                    let mut send = send;
                    if send.ready().await.is_ok() {
                        pool.checkin(send);
                    }
                });
            }
        }
    }
}

impl AppBody {
    /// This body, holding `place` until it is dropped.
    pub fn holding(mut self, place: OwnedSemaphorePermit) -> Self {
        self._place = Some(place);
        self
    }
}

impl From<Incoming> for AppBody {
    /// A body from hyper-util's client, which pools its connection itself.
    fn from(body: Incoming) -> Self {
        Self {
            body,
            pooled: None,
            _place: None,
        }
    }
}

impl Body for AppBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let frame = Pin::new(&mut self.body).poll_frame(cx);
        match &frame {
            Poll::Ready(None) => self.release(),
            // hyper's servers stop polling at `is_end_stream` and after trailers, without
            // waiting for the end; hyper's client has finished reading the response by then.
            Poll::Ready(Some(Ok(frame))) if frame.is_trailers() || self.body.is_end_stream() => {
                self.release();
            }
            Poll::Ready(Some(Err(_))) => self.pooled = None,
            _ => {}
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
