//! [`BoundedStream`]: the stream [`MtlsListener`](super::MtlsListener) hands to
//! `axum::serve`, which closes itself when its peer goes quiet.
//!
//! `axum::serve` drives hyper's connection itself, with no timer: nothing there closes
//! a connection whose peer completed its handshake and then sends nothing, or stops
//! half-way through a request, or keeps an idle connection open for ever. The stream
//! enforces that bound from below: hyper's reads and writes go through it, and it
//! fails them once the connection is quiet for too long, which ends the connection.

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

use crate::tls::MtlsStream;

/// The stream of one connection from [`MtlsListener`](super::MtlsListener): an
/// [`MtlsStream`] whose reads and writes fail (and so end the connection) when
///
/// - no byte arrives within the listener's first-byte timeout after the handshake, or
/// - later, neither a read nor a write makes progress for an idle period. Checked once
///   per period with a single timer per connection, so a quiet connection is closed
///   after one to two periods.
///
/// Progress is counted in bytes, not requests: a peer trickling a request a byte at a
/// time keeps its connection, and a handler that writes nothing for a whole period
/// loses it. [`serve`](super::serve) bounds by requests instead.
pub struct BoundedStream {
    stream: MtlsStream,
    timer: Pin<Box<Sleep>>,
    idle_timeout: Duration,
    /// A byte was read since the handshake.
    started: bool,
    /// A byte was read or written since the timer was last set.
    progress: bool,
    /// The connection was found quiet: every later read and write fails.
    expired: bool,
}

impl BoundedStream {
    pub(super) fn new(stream: MtlsStream, first_byte_timeout: Duration, idle: Duration) -> Self {
        Self {
            stream,
            timer: Box::pin(tokio::time::sleep_until(deadline(first_byte_timeout))),
            idle_timeout: idle,
            started: false,
            progress: false,
            expired: false,
        }
    }

    /// The TLS (or, from a permissive acceptor, plaintext) stream.
    pub fn get_ref(&self) -> &MtlsStream {
        &self.stream
    }

    /// Unwraps the stream; the timeouts no longer apply.
    pub fn into_inner(self) -> MtlsStream {
        self.stream
    }

    /// Called when the inner stream is not ready: the error that ends the connection
    /// once it has been quiet too long, else pending (with the timer's wake-up set).
    fn poll_quiet(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        loop {
            if self.expired {
                return Poll::Ready(quiet_error());
            }
            ready!(self.timer.as_mut().poll(cx));
            if !self.started || !self.progress {
                self.expired = true;
                tracing::debug!(
                    target: "meshless::server",
                    first_byte = !self.started,
                    "closing a quiet connection"
                );
                continue;
            }
            self.progress = false;
            let next = deadline(self.idle_timeout);
            self.timer.as_mut().reset(next);
        }
    }

    fn wrote(
        &mut self,
        result: Poll<io::Result<usize>>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<usize>> {
        match result {
            Poll::Ready(Ok(n)) => {
                self.progress |= n > 0;
                Poll::Ready(Ok(n))
            }
            Poll::Pending => self.poll_quiet(cx).map(Err),
            Poll::Ready(Err(err)) => Poll::Ready(Err(err)),
        }
    }
}

/// `timeout` from now; 30 years from now (tokio's "far future") when that overflows.
fn deadline(timeout: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(timeout)
        .unwrap_or_else(|| now + Duration::from_secs(30 * 365 * 86_400))
}

fn quiet_error() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "connection quiet for too long")
}

impl fmt::Debug for BoundedStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoundedStream")
            .field("stream", &self.stream)
            .field("idle_timeout", &self.idle_timeout)
            .field("started", &self.started)
            .field("expired", &self.expired)
            .finish_non_exhaustive()
    }
}

impl AsyncRead for BoundedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.expired {
            return Poll::Ready(Err(quiet_error()));
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.stream).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    if !this.started {
                        // From the first byte on, the timer counts idle periods.
                        this.started = true;
                        let next = deadline(this.idle_timeout);
                        this.timer.as_mut().reset(next);
                    }
                    this.progress = true;
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending => this.poll_quiet(cx).map(Err),
            Poll::Ready(Err(err)) => Poll::Ready(Err(err)),
        }
    }
}

impl AsyncWrite for BoundedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.expired {
            return Poll::Ready(Err(quiet_error()));
        }
        let result = Pin::new(&mut this.stream).poll_write(cx, buf);
        this.wrote(result, cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.expired {
            return Poll::Ready(Err(quiet_error()));
        }
        let result = Pin::new(&mut this.stream).poll_write_vectored(cx, bufs);
        this.wrote(result, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.expired {
            return Poll::Ready(Err(quiet_error()));
        }
        match Pin::new(&mut this.stream).poll_flush(cx) {
            Poll::Pending => this.poll_quiet(cx).map(Err),
            ready => ready,
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        // A peer that does not read our close_notify holds the connection no longer
        // than a quiet one.
        match Pin::new(&mut this.stream).poll_shutdown(cx) {
            Poll::Pending => this.poll_quiet(cx).map(Err),
            ready => ready,
        }
    }
}
