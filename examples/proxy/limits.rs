//! `[inbound.limits]`: what bounds a listener under load, and the app budget that
//! enforces its app side.
//!
//! The client side is the library's: first-byte and handshake timeouts and handshake
//! slots ([`MtlsAcceptor`]), idle timeout and HTTP/2 streams per connection
//! ([`meshless::Server`]). The app side is here: at most `max_app_connections`
//! requests are at the app at once (each HTTP/1.1 request holds one app connection
//! until its response is read, so this bounds the proxy's connections to the app too);
//! up to `max_app_queue` more wait up to `app_queue_timeout_ms` and then get 503; an app
//! that has not started its response within `app_response_timeout_ms` gets the request
//! cancelled (its connection closed) and the client a 504.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use meshless::MtlsAcceptor;
use meshless::tls::MtlsAcceptorBuilder;
use serde::Deserialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// `[inbound.limits]` (optional); every key has a default.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// A new connection that sends nothing is closed after this long.
    pub first_byte_timeout_ms: u64,
    /// The TLS handshake must finish within this long of the first byte.
    pub handshake_timeout_ms: u64,
    /// Handshakes past their ClientHello at once.
    pub max_concurrent_handshakes: usize,
    /// Of those, the most one source address holds (default: a quarter).
    pub max_handshakes_per_source: Option<usize>,
    /// A connection with no request for this long is closed (checked once per period).
    pub idle_timeout_ms: u64,
    /// HTTP/2 streams one client connection may have open.
    pub max_concurrent_streams: u32,
    /// Requests at the app at once (and so HTTP/1.1 connections to it).
    pub max_app_connections: usize,
    /// Requests waiting for one of those; beyond, 503 at once.
    pub max_app_queue: usize,
    /// How long a request waits in that queue before its 503.
    pub app_queue_timeout_ms: u64,
    /// How long the app has to start its response before the client gets 504.
    pub app_response_timeout_ms: u64,
}

impl Default for Limits {
    /// The defaults: the library's for the client side, Envoy's circuit-breaker
    /// defaults (1,024 connections, 1,024 pending requests) and route timeout (15 s) for
    /// the app side.
    fn default() -> Self {
        Self {
            first_byte_timeout_ms: 5_000,
            handshake_timeout_ms: 10_000,
            max_concurrent_handshakes: 1024,
            max_handshakes_per_source: None,
            idle_timeout_ms: 30_000,
            max_concurrent_streams: 100,
            max_app_connections: 1024,
            max_app_queue: 1024,
            app_queue_timeout_ms: 5_000,
            app_response_timeout_ms: 15_000,
        }
    }
}

impl Limits {
    /// What is wrong with these limits, if anything.
    pub fn problems(&self, listener: &str) -> Vec<String> {
        let zero = [
            ("first_byte_timeout_ms", self.first_byte_timeout_ms),
            ("handshake_timeout_ms", self.handshake_timeout_ms),
            (
                "max_concurrent_handshakes",
                self.max_concurrent_handshakes as u64,
            ),
            ("idle_timeout_ms", self.idle_timeout_ms),
            (
                "max_concurrent_streams",
                u64::from(self.max_concurrent_streams),
            ),
            ("max_app_connections", self.max_app_connections as u64),
            ("app_response_timeout_ms", self.app_response_timeout_ms),
        ];
        zero.iter()
            .filter(|(_, value)| *value == 0)
            .map(|(key, _)| format!("inbound {listener}: limits.{key} must be at least 1"))
            .collect()
    }

    /// The acceptor settings of these limits.
    pub fn acceptor(&self, builder: MtlsAcceptorBuilder) -> MtlsAcceptorBuilder {
        let builder = builder
            .first_byte_timeout(ms(self.first_byte_timeout_ms))
            .handshake_timeout(ms(self.handshake_timeout_ms))
            .max_concurrent_handshakes(self.max_concurrent_handshakes);
        match self.max_handshakes_per_source {
            Some(max) => builder.max_handshakes_per_source(max),
            None => builder,
        }
    }

    /// The server settings of these limits.
    pub fn server(&self, acceptor: MtlsAcceptor) -> meshless::Server {
        meshless::Server::new(acceptor)
            .idle_timeout(ms(self.idle_timeout_ms))
            .http2_max_concurrent_streams(self.max_concurrent_streams)
    }

    pub fn app_response_timeout(&self) -> Duration {
        ms(self.app_response_timeout_ms)
    }
}

fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

/// The requests a listener may have at its app at once, and a bounded queue for more.
#[derive(Debug, Clone)]
pub struct AppBudget(Arc<BudgetInner>);

#[derive(Debug)]
struct BudgetInner {
    permits: Arc<Semaphore>,
    waiting: AtomicUsize,
    max_waiting: usize,
    queue_timeout: Duration,
}

/// Why a request was not let through to the app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overloaded {
    /// The queue was full.
    QueueFull,
    /// It waited its whole queue timeout.
    QueueTimeout,
}

impl AppBudget {
    pub fn new(limits: &Limits) -> Self {
        Self(Arc::new(BudgetInner {
            permits: Arc::new(Semaphore::new(limits.max_app_connections.max(1))),
            waiting: AtomicUsize::new(0),
            max_waiting: limits.max_app_queue,
            queue_timeout: ms(limits.app_queue_timeout_ms),
        }))
    }

    /// A place at the app, held until the permit is dropped (with the response body).
    pub async fn admit(&self) -> Result<OwnedSemaphorePermit, Overloaded> {
        let inner = &*self.0;
        if let Ok(permit) = inner.permits.clone().try_acquire_owned() {
            return Ok(permit);
        }
        let queued = inner.waiting.fetch_add(1, Ordering::Relaxed);
        let _leave = Leave(&inner.waiting);
        if queued >= inner.max_waiting {
            return Err(Overloaded::QueueFull);
        }
        match tokio::time::timeout(inner.queue_timeout, inner.permits.clone().acquire_owned()).await
        {
            Ok(Ok(permit)) => Ok(permit),
            // The semaphore is never closed.
            Ok(Err(_)) | Err(_) => Err(Overloaded::QueueTimeout),
        }
    }
}

/// Takes a request off the queue count when it leaves, however it leaves.
struct Leave<'a>(&'a AtomicUsize);

impl Drop for Leave<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(connections: usize, queue: usize) -> Limits {
        Limits {
            max_app_connections: connections,
            max_app_queue: queue,
            app_queue_timeout_ms: 50,
            ..Limits::default()
        }
    }

    #[tokio::test]
    async fn excess_requests_queue_then_get_overloaded() {
        let budget = AppBudget::new(&limits(2, 1));
        let held = [budget.admit().await.unwrap(), budget.admit().await.unwrap()];
        let queued = tokio::spawn({
            let budget = budget.clone();
            async move { budget.admit().await.map(drop) }
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(budget.admit().await.unwrap_err(), Overloaded::QueueFull);
        assert_eq!(queued.await.unwrap(), Err(Overloaded::QueueTimeout));
        drop(held);
        assert!(budget.admit().await.is_ok());
    }

    #[tokio::test]
    async fn a_queued_request_gets_the_first_freed_place() {
        let budget = AppBudget::new(&limits(1, 4));
        let held = budget.admit().await.unwrap();
        let queued = tokio::spawn({
            let budget = budget.clone();
            async move { budget.admit().await.map(drop) }
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        drop(held);
        assert_eq!(queued.await.unwrap(), Ok(()));
    }

    #[test]
    fn zero_limits_are_refused() {
        let mut limits = Limits::default();
        assert!(limits.problems("x").is_empty());
        limits.max_app_connections = 0;
        limits.first_byte_timeout_ms = 0;
        assert_eq!(limits.problems("x").len(), 2);
    }
}
