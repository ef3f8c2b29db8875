//! Accepting TCP connections, with a backoff on resource errors.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};

/// Exponential backoff for accept errors (EMFILE and friends), 5 ms to 1 s.
#[derive(Debug)]
pub(super) struct Backoff(Duration);

impl Default for Backoff {
    fn default() -> Self {
        Self(Duration::from_millis(5))
    }
}

/// Accepts the next TCP connection, retrying errors: a connection-level error (the peer
/// gave up before we accepted) at once, a resource error (out of file descriptors,
/// memory) after a growing pause, so the loop neither spins nor exits.
pub(super) async fn accept_tcp(
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

pub(super) fn is_connection_error(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}
