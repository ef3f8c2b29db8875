//! Captures tracing output per test thread through one global subscriber.
//!
//! A scoped subscriber per test (`set_default`) races with the process-wide callsite
//! interest cache when tests run in parallel, so some events are occasionally lost.
//! One global subscriber writing into a thread-local buffer avoids that: each
//! `#[tokio::test]` (a current-thread runtime) reads back exactly its own events.
//! Include with `#[path = "support/log_capture.rs"] mod log_capture;`.

use std::cell::RefCell;
use std::io::Write;
use std::sync::Once;

thread_local! {
    static LOG: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

struct ThreadBuf;

impl Write for ThreadBuf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        LOG.with(|l| l.borrow_mut().extend_from_slice(b));
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Starts capturing this thread's events (DEBUG and up, no timestamps, no colours)
/// from now on.
pub fn start() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_target(true)
            .without_time()
            .with_writer(|| ThreadBuf)
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("no other global subscriber");
    });
    LOG.with(|l| l.borrow_mut().clear());
}

/// What this thread logged since [`start`].
pub fn text() -> String {
    LOG.with(|l| String::from_utf8_lossy(&l.borrow()).into_owned())
}
