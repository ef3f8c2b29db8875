//! Handshake slots, shared fairly between source addresses.
//!
//! A slot is taken only once a peer has sent a whole ClientHello: a connection that
//! sends nothing, or a ClientHello a byte at a time, waits for its bytes without one
//! (see [`MtlsAcceptor`](super::MtlsAcceptor)). The slots bound the handshakes doing
//! cryptographic work at once, and no source address holds more than its share of them,
//! so one host completing ClientHellos and then stalling cannot take them all.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The handshake slots of one acceptor (and its clones).
#[derive(Debug)]
pub(super) struct Admission {
    total: Arc<Semaphore>,
    per_source: usize,
    /// Each source with a slot or waiting for one, and its own share.
    sources: Mutex<HashMap<IpAddr, Arc<Semaphore>>>,
}

/// A handshake slot, given back when dropped.
#[derive(Debug)]
pub(super) struct Slot<'a> {
    _total: Option<OwnedSemaphorePermit>,
    source: Option<(IpAddr, OwnedSemaphorePermit)>,
    admission: &'a Admission,
}

impl Admission {
    /// `total` slots, at most `per_source` of them for one source address.
    pub(super) fn new(total: usize, per_source: usize) -> Self {
        let total = total.max(1);
        Self {
            total: Arc::new(Semaphore::new(total)),
            per_source: per_source.clamp(1, total),
            sources: Mutex::new(HashMap::new()),
        }
    }

    /// Waits for a slot: first one of `source`'s share (when known), then one of all.
    /// A peer that gives up while waiting for the second frees the first (the slot
    /// under construction is dropped).
    pub(super) async fn acquire(&self, source: Option<IpAddr>) -> Slot<'_> {
        let mut slot = Slot {
            _total: None,
            source: None,
            admission: self,
        };
        // `acquire_owned` fails only on a closed semaphore, and these are never closed.
        if let Some(ip) = source {
            let share = self.share(ip);
            slot.source = share.acquire_owned().await.ok().map(|permit| (ip, permit));
        }
        slot._total = self.total.clone().acquire_owned().await.ok();
        slot
    }

    /// The share of `ip`, created on first use. Shares left behind by peers that gave up
    /// while waiting are swept once the map has grown.
    fn share(&self, ip: IpAddr) -> Arc<Semaphore> {
        let mut sources = self.lock();
        if sources.len() >= SWEEP_AT && !sources.contains_key(&ip) {
            sources.retain(|_, share| Arc::strong_count(share) > 1);
        }
        sources
            .entry(ip)
            .or_insert_with(|| Arc::new(Semaphore::new(self.per_source)))
            .clone()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<IpAddr, Arc<Semaphore>>> {
        self.sources.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Map size from which shares nobody uses any more are swept before adding one.
const SWEEP_AT: usize = 256;

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let Some((ip, permit)) = self.source.take() else {
            return;
        };
        let mut sources = self.admission.lock();
        drop(permit);
        // Only the map holds it: nobody else has or awaits a slot from this source.
        if sources
            .get(&ip)
            .is_some_and(|share| Arc::strong_count(share) == 1)
        {
            sources.remove(&ip);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));

    async fn blocked(admission: &Admission, source: IpAddr) -> bool {
        tokio::time::timeout(Duration::from_millis(20), admission.acquire(Some(source)))
            .await
            .is_err()
    }

    #[tokio::test]
    async fn one_source_cannot_take_every_slot() {
        let admission = Admission::new(4, 2);
        let held = [
            admission.acquire(Some(A)).await,
            admission.acquire(Some(A)).await,
        ];
        assert!(blocked(&admission, A).await, "a third slot for A");
        let b = admission.acquire(Some(B)).await;
        drop(held);
        let _a = admission.acquire(Some(A)).await;
        drop(b);
    }

    #[tokio::test]
    async fn total_bounds_all_sources_together() {
        let admission = Admission::new(2, 2);
        let _a = admission.acquire(Some(A)).await;
        let _b = admission.acquire(Some(B)).await;
        assert!(blocked(&admission, B).await);
        assert!(blocked(&admission, A).await);
    }

    #[tokio::test]
    async fn shares_are_forgotten_when_unused() {
        let admission = Admission::new(4, 1);
        drop(admission.acquire(Some(A)).await);
        assert!(admission.lock().is_empty());
        // A waiter that gave up is forgotten too, by the last holder.
        let held = admission.acquire(Some(B)).await;
        assert!(blocked(&admission, B).await);
        drop(held);
        assert!(admission.lock().is_empty(), "{:?}", admission.lock());
        // So is one that gave up waiting for a slot of all, holding its share's.
        let held = admission.acquire(Some(A)).await;
        let tight = Admission::new(1, 1);
        let _all = tight.acquire(Some(A)).await;
        assert!(blocked(&tight, B).await);
        assert_eq!(tight.lock().len(), 1, "only A's share");
        drop(held);
    }
}
