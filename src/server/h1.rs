//! HTTP/1.1 connections, parked while idle between requests.

use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::io::AsyncWriteExt;
use tokio::sync::watch;
use tower_service::Service;

use crate::tls::MtlsStream;

use super::BoxError;
use super::activity::{Activity, AddPeer, first_bytes, idle_check, quiet};
use super::park::ParkIo;

/// Serves an HTTP/1.1 connection, parking it (see [`park`](super::park)) whenever it is idle between
/// requests: hyper's connection, and its two 8 KiB buffers, exists only while the peer
/// is using it (1,000 idle keep-alive connections through the reference proxy: about 22 →
/// 13 KiB each, BENCHMARKS.md).
pub(super) async fn serve_http1<S, B>(
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
pub(super) const BUSY_GAP: Duration = Duration::from_millis(10);

/// How often a busy HTTP/1 connection is checked for having gone quiet.
pub(super) const PARK_TICK: Duration = Duration::from_secs(1);

/// How long closing an idle HTTP/1 connection politely (TLS close_notify, then FIN)
/// may take before it is simply dropped.
pub(super) const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);
