//! Parking idle HTTP/1 connections.
//!
//! hyper's HTTP/1 connection keeps an 8 KiB read buffer and an 8 KiB write buffer for
//! its whole life, which is most of what an idle keep-alive connection costs. When a
//! connection is idle between requests, [`serve`](super::serve) takes the TLS stream
//! back out of hyper ([`http1::UpgradeableConnection::into_parts`]), waits for the next
//! request's bytes on the bare stream, and builds a fresh hyper connection for it
//! (nginx does the same with its buffers at keep-alive).
//!
//! Rebuilding costs about a microsecond and a half, a tenth of a hello-world request,
//! so a busy peer (its request came within 10 ms of the last park) is not parked after
//! every request: its connection parks once a once-a-second check finds it quiet.
//!
//! "Idle" has to be exact, or bytes or state would be lost. A connection parks when
//! hyper's future is pending with no request in flight (a response counts until hyper
//! drops its body), nothing written since the last successful flush, no shutdown
//! begun, and a last request that had no body (so none is left to drain) and asked for
//! no upgrade. hyper is then waiting for the next request head. It hands back the
//! bytes it read but did not parse (pipelined requests), and [`ParkIo`] replays them
//! to the next connection. A hyper connection that has not yet dispatched a request is
//! not parked, so a request head arriving in pieces never rebuilds one in a loop.
//!
//! [`http1::UpgradeableConnection::into_parts`]: hyper::server::conn::http1::UpgradeableConnection::into_parts

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::activity::{Activity, SHUTTING_DOWN, WRITE_BUFFERED};
use crate::tls::MtlsStream;

/// The stream under a parkable hyper connection: records what hyper does with it in the
/// connection's [`Activity`], and first replays the bytes a parked connection had read.
pub(super) struct ParkIo {
    stream: MtlsStream,
    unread: Bytes,
    activity: Arc<Activity>,
}

impl ParkIo {
    pub(super) fn new(stream: MtlsStream, activity: Arc<Activity>) -> Self {
        Self {
            stream,
            unread: Bytes::new(),
            activity,
        }
    }

    /// Takes the stream back from a parked connection, with the bytes hyper had read
    /// and not parsed.
    pub(super) fn parked(mut self, unread: Bytes) -> Self {
        debug_assert!(
            self.unread.is_empty(),
            "a parked connection had unread bytes"
        );
        // `unread` is a view of hyper's whole read buffer: keep only the bytes.
        self.unread = if unread.is_empty() {
            Bytes::new()
        } else {
            Bytes::copy_from_slice(&unread)
        };
        self
    }

    pub(super) fn stream(&self) -> &MtlsStream {
        &self.stream
    }

    /// Bytes that are already here: the next hyper connection can start at once.
    pub(super) fn has_unread(&self) -> bool {
        !self.unread.is_empty()
    }
}

impl AsyncRead for ParkIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.unread.is_empty() {
            let n = this.unread.len().min(buf.remaining());
            buf.put_slice(&this.unread[..n]);
            this.unread.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for ParkIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.activity.park.set(WRITE_BUFFERED);
        Pin::new(&mut this.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.activity.park.set(WRITE_BUFFERED);
        Pin::new(&mut this.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(Pin::new(&mut this.stream).poll_flush(cx))?;
        this.activity.park.clear(WRITE_BUFFERED);
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.activity.park.set(SHUTTING_DOWN);
        Pin::new(&mut this.stream).poll_shutdown(cx)
    }
}
