//! Shutdown signalling and connection tracking, shared by every listener.

use std::future::Future;

use tokio::sync::watch;

/// A cloneable shutdown signal: every clone's [`Shutdown::wait`] completes once
/// [`Trigger::fire`] has been called.
#[derive(Clone, Debug)]
pub struct Shutdown(watch::Receiver<bool>);

/// Fires a [`Shutdown`].
#[derive(Debug)]
pub struct Trigger(watch::Sender<bool>);

/// A new signal and its trigger.
pub fn channel() -> (Trigger, Shutdown) {
    let (tx, rx) = watch::channel(false);
    (Trigger(tx), Shutdown(rx))
}

impl Trigger {
    /// Signals every listener to stop accepting and drain.
    pub fn fire(&self) {
        let _ = self.0.send(true);
    }
}

impl Shutdown {
    /// Completes once shutdown has been signalled (or the trigger is gone).
    pub fn wait(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.0.clone();
        async move {
            let _ = rx.wait_for(|fired| *fired).await;
        }
    }

    /// True once shutdown has been signalled.
    pub fn is_fired(&self) -> bool {
        *self.0.borrow()
    }
}

/// Counts live connections; [`Tracker::wait`] completes when none is left.
#[derive(Debug)]
pub struct Tracker(watch::Sender<()>);

/// Held by a live connection.
#[derive(Debug)]
pub struct Guard(#[allow(dead_code)] watch::Receiver<()>);

impl Default for Tracker {
    fn default() -> Self {
        Self(watch::channel(()).0)
    }
}

impl Tracker {
    /// A guard for one more live connection.
    pub fn guard(&self) -> Guard {
        Guard(self.0.subscribe())
    }

    /// Completes when every guard has been dropped.
    pub async fn wait(&self) {
        self.0.closed().await;
    }
}
