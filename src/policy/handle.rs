//! [`PolicyHandle`]: the policy in force, swapped atomically on reload. Readers take a
//! lock-free snapshot; a policy that fails to load never replaces the last good one.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use arc_swap::{ArcSwap, Guard};

use super::compiled::Policy;
use super::error::PolicyError;
use super::workload::WorkloadContext;
use crate::metrics::{Metrics, ReloadKind};

/// A shared, atomically swappable [`Policy`].
///
/// ```
/// use meshless::policy::{Policy, PolicyHandle};
/// let handle = PolicyHandle::new(Policy::deny_all());
/// let bad = handle.reload_from("/nonexistent/policy.yaml");
/// assert!(bad.is_err());
/// assert_eq!(handle.current().rule_count(), 0); // the last good policy stays
/// assert_eq!(handle.reload_counts().failed, 1);
/// ```
#[derive(Clone)]
pub struct PolicyHandle {
    current: Arc<ArcSwap<Policy>>,
    state: Arc<State>,
}

struct State {
    /// The workload the policy is read for (manifests), on every reload too.
    context: Option<WorkloadContext>,
    ok: AtomicU64,
    failed: AtomicU64,
    last_error: Mutex<Option<Arc<PolicyError>>>,
    metrics: Mutex<Arc<Metrics>>,
}

impl Default for State {
    fn default() -> Self {
        Self {
            context: None,
            ok: AtomicU64::default(),
            failed: AtomicU64::default(),
            last_error: Mutex::default(),
            metrics: Mutex::new(Metrics::global().clone()),
        }
    }
}

/// How many reloads succeeded and failed (for metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReloadCounts {
    /// Reloads that replaced the policy.
    pub succeeded: u64,
    /// Reloads rejected (the previous policy stayed in force).
    pub failed: u64,
}

impl std::fmt::Debug for PolicyHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyHandle")
            .field("rules", &self.load().rule_count())
            .field("reloads", &self.reload_counts())
            .finish()
    }
}

impl PolicyHandle {
    /// A handle holding `policy`.
    pub fn new(policy: Policy) -> Self {
        Self {
            current: Arc::new(ArcSwap::from_pointee(policy)),
            state: Arc::new(State::default()),
        }
    }

    /// Loads `path` ([`Policy::load`]) into a new handle.
    ///
    /// # Errors
    ///
    /// The load error: there is no previous policy to fall back to.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, PolicyError> {
        Ok(Self::new(Policy::load(path)?))
    }

    /// Loads `path` for one workload ([`Policy::load_for`]) into a new handle; reloads
    /// ([`reload_from`](Self::reload_from), [`watch`](Self::watch)) read it for the
    /// same workload.
    ///
    /// # Errors
    ///
    /// As [`Policy::load_for`].
    pub fn from_file_for(
        path: impl AsRef<Path>,
        context: WorkloadContext,
    ) -> Result<Self, PolicyError> {
        let policy = Policy::load_for(path, &context)?;
        Ok(Self {
            current: Arc::new(ArcSwap::from_pointee(policy)),
            state: Arc::new(State {
                context: Some(context),
                ..State::default()
            }),
        })
    }

    /// Counts reloads (`meshless_reloads_total{kind="policy"}`) into `metrics` instead
    /// of [`Metrics::global`]. Applies to every clone of this handle.
    #[must_use]
    pub fn metrics(self, metrics: Arc<Metrics>) -> Self {
        *self
            .state
            .metrics
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = metrics;
        self
    }

    fn count_reload(&self, ok: bool) {
        self.state
            .metrics
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .reload(ReloadKind::Policy, ok);
    }

    /// A cheap, lock-free snapshot for one decision.
    pub fn load(&self) -> Guard<Arc<Policy>> {
        self.current.load()
    }

    /// An owned snapshot, to keep for a connection's lifetime.
    pub fn current(&self) -> Arc<Policy> {
        self.current.load_full()
    }

    /// Replaces the policy.
    pub fn store(&self, policy: Policy) {
        self.current.store(Arc::new(policy));
    }

    /// Loads `path` and, if it is valid, puts it in force. On error the previous
    /// policy stays, the error is kept ([`last_error`](Self::last_error)) and counted
    /// (here and in the handle's [`Metrics`]).
    ///
    /// # Errors
    ///
    /// The load error.
    pub fn reload_from(&self, path: impl AsRef<Path>) -> Result<(), Arc<PolicyError>> {
        let path = path.as_ref();
        match Policy::load_file(path, self.state.context.as_ref()) {
            // The policy, the error and the metric are recorded before the counts move,
            // so whoever sees a count also sees what it counted.
            Ok(policy) => {
                self.store(policy);
                *self.lock_error() = None;
                self.count_reload(true);
                self.state.ok.fetch_add(1, Ordering::Release);
                tracing::info!(target: "meshless::policy", path = %path.display(), "policy reloaded");
                Ok(())
            }
            Err(e) => {
                let e = Arc::new(e);
                *self.lock_error() = Some(e.clone());
                self.count_reload(false);
                self.state.failed.fetch_add(1, Ordering::Release);
                tracing::warn!(target: "meshless::policy", error = %e, "policy reload rejected; keeping the last good policy");
                Err(e)
            }
        }
    }

    fn lock_error(&self) -> std::sync::MutexGuard<'_, Option<Arc<PolicyError>>> {
        self.state
            .last_error
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Why the latest reload failed; `None` once a reload succeeds.
    pub fn last_error(&self) -> Option<Arc<PolicyError>> {
        self.lock_error().clone()
    }

    /// Reload successes and failures so far.
    pub fn reload_counts(&self) -> ReloadCounts {
        ReloadCounts {
            succeeded: self.state.ok.load(Ordering::Acquire),
            failed: self.state.failed.load(Ordering::Acquire),
        }
    }

    /// Polls `path` every `interval` on a background thread and reloads when the
    /// file behind it changes. Symlinks are resolved on every poll, so a Kubernetes
    /// ConfigMap volume's `..data` swap is seen. Dropping the returned
    /// [`FileWatcher`] stops the thread. The file's state when `watch` is called
    /// is taken as the one already loaded.
    pub fn watch(&self, path: impl Into<PathBuf>, interval: Duration) -> FileWatcher {
        let path = path.into();
        let stop = Arc::new(AtomicBool::new(false));
        let handle = self.clone();
        let flag = stop.clone();
        // Taken before the thread starts: a change made right after `watch` returns
        // must be seen, however late the thread gets scheduled.
        let mut seen = fingerprint(&path);
        let thread = std::thread::Builder::new()
            .name("meshless-policy-watch".into())
            .spawn(move || {
                while !flag.load(Ordering::Acquire) {
                    std::thread::park_timeout(interval);
                    if flag.load(Ordering::Acquire) {
                        break;
                    }
                    let now = fingerprint(&path);
                    if now != seen {
                        seen = now;
                        let _ = handle.reload_from(&path);
                    }
                }
            })
            .ok();
        FileWatcher { stop, thread }
    }
}

/// What identifies a version of the file: the resolved path, its size, its
/// modification time, and its contents.
fn fingerprint(path: &Path) -> Option<(PathBuf, u64, Option<SystemTime>, Vec<u8>)> {
    let real = std::fs::canonicalize(path).ok()?;
    let meta = std::fs::metadata(&real).ok()?;
    let contents = std::fs::read(&real).ok()?;
    Some((real, meta.len(), meta.modified().ok(), contents))
}

/// The background reload thread of [`PolicyHandle::watch`]; stops when dropped.
#[derive(Debug)]
pub struct FileWatcher {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for FileWatcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}
