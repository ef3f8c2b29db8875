//! A plaintext HTTP/1.1 + h2c server with graceful shutdown, for the outbound
//! listeners (the local app connects in plaintext) and the admin port.

use std::error::Error as StdError;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

use crate::shutdown::{Shutdown, Tracker};

type BoxError = Box<dyn StdError + Send + Sync>;

/// Serves `service` on `listener` until `shutdown`; then stops accepting, lets
/// in-flight requests finish (HTTP/1.1 connections close after their response, HTTP/2
/// ones get a GOAWAY) and returns when every connection is closed.
pub async fn serve<S, B>(listener: TcpListener, service: S, shutdown: Shutdown)
where
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
                    tracing::warn!(target: "proxy", error = %err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = shutdown.wait() => break,
        };
        let _ = tcp.set_nodelay(true);
        let service = TowerToHyperService::new(service.clone());
        let guard = tracker.guard();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            let builder = auto::Builder::new(TokioExecutor::new());
            let conn = builder.serve_connection(TokioIo::new(tcp), service);
            tokio::pin!(conn);
            let result = tokio::select! {
                result = conn.as_mut() => result,
                () = stop.wait() => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(err) = result {
                tracing::debug!(target: "proxy", error = %err, "connection ended with an error");
            }
            drop(guard);
        });
    }
    drop(listener);
    tracker.wait().await;
}
