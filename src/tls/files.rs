//! [`FileSource`]: TLS material read from files and reloaded when they change.
//!
//! Works with the layouts of cert-manager's csi-driver-spiffe (`tls.crt`, `tls.key`,
//! `ca.crt`), spiffe-helper (`svid.pem`, `svid_key.pem`, `svid_bundle.pem`) and
//! Kubernetes Secret volumes, which swap a `..data` symlink atomically: files are read
//! through their paths (following symlinks) and compared by content, so any kind of
//! replacement is seen.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use super::{BundleSet, Svid, TlsError, TlsMaterial, TlsSource, TrustBundle};
use crate::TrustDomain;
use crate::metrics::{Metrics, ReloadKind};

/// Builds a [`FileSource`].
#[derive(Debug, Clone)]
#[must_use]
pub struct FileSourceBuilder {
    cert: PathBuf,
    key: PathBuf,
    bundle: PathBuf,
    federated: Vec<(TrustDomain, PathBuf)>,
    crls: Vec<(TrustDomain, PathBuf)>,
    interval: Duration,
    metrics: Option<Arc<Metrics>>,
}

impl FileSourceBuilder {
    /// Counts reloads (`meshless_reloads_total{kind="certificates"}`) into `metrics`
    /// instead of [`Metrics::global`].
    pub fn metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    fn count_reload(&self, ok: bool) {
        let metrics = self.metrics.as_ref().unwrap_or_else(|| Metrics::global());
        metrics.reload(ReloadKind::Certificates, ok);
    }

    /// Adds the bundle (PEM or SPIFFE JSON) of a federated trust domain.
    pub fn federated_bundle(mut self, trust_domain: TrustDomain, path: impl Into<PathBuf>) -> Self {
        self.federated.push((trust_domain, path.into()));
        self
    }

    /// Adds a PEM file of CRLs for the CAs of `trust_domain`.
    pub fn crls(mut self, trust_domain: TrustDomain, path: impl Into<PathBuf>) -> Self {
        self.crls.push((trust_domain, path.into()));
        self
    }

    /// How often the files are checked (default 5 s).
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.interval = interval.max(Duration::from_millis(10));
        self
    }

    fn paths(&self) -> Vec<&Path> {
        let mut paths = vec![
            self.cert.as_path(),
            self.key.as_path(),
            self.bundle.as_path(),
        ];
        paths.extend(self.federated.iter().map(|(_, p)| p.as_path()));
        paths.extend(self.crls.iter().map(|(_, p)| p.as_path()));
        paths
    }

    async fn read_all(&self) -> Result<Vec<Vec<u8>>, TlsError> {
        let mut contents = Vec::new();
        for path in self.paths() {
            let bytes = tokio::fs::read(path)
                .await
                .map_err(|e| TlsError::read_file(path, e))?;
            contents.push(bytes);
        }
        Ok(contents)
    }

    /// Parses file contents read in the order of [`FileSourceBuilder::paths`].
    fn parse(&self, contents: &[Vec<u8>]) -> Result<TlsMaterial, TlsError> {
        let svid = Svid::from_pem(&contents[0], &contents[1])?;
        let own = svid.spiffe_id().trust_domain().clone();
        let mut domains = vec![(own, &contents[2])];
        let federated = self.federated.iter().zip(&contents[3..]);
        domains.extend(federated.map(|((td, _), bytes)| (td.clone(), bytes)));
        let mut bundles = BundleSet::new();
        for (td, bytes) in domains {
            let mut bundle = TrustBundle::parse(td.clone(), bytes)?;
            let crls = self.crls.iter().zip(&contents[3 + self.federated.len()..]);
            for ((crl_td, _), crl_bytes) in crls {
                if *crl_td == td {
                    bundle = bundle.with_crls_pem(crl_bytes)?;
                }
            }
            bundles.insert(bundle);
        }
        TlsMaterial::new(svid, bundles)
    }

    /// Reads and validates the files once, without watching them.
    ///
    /// # Errors
    /// The first file that cannot be read, parsed or validated.
    pub async fn load(&self) -> Result<TlsMaterial, TlsError> {
        self.parse(&self.read_all().await?)
    }

    /// Loads the files and starts watching them from a task on the current tokio
    /// runtime. The task stops once every clone of the [`TlsSource`] is dropped.
    ///
    /// # Errors
    /// As [`FileSourceBuilder::load`]: a source never starts without material.
    pub async fn start(self) -> Result<FileSource, TlsError> {
        let contents = self.read_all().await?;
        let source = TlsSource::new(self.parse(&contents)?);
        let status = Arc::new(Status::default());
        let watch = Watch {
            config: self,
            seen: contents,
            status: status.clone(),
        };
        let weak = source.downgrade();
        tokio::spawn(watch.run(weak));
        Ok(FileSource { source, status })
    }
}

#[derive(Debug, Default)]
struct Status {
    reloads: AtomicU64,
    failures: AtomicU64,
    last_error: Mutex<Option<(TlsError, SystemTime)>>,
}

/// The outcome of the reloads so far, for logs and metrics.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ReloadStatus {
    /// Successful reloads since start (the initial load excluded).
    pub reloads: u64,
    /// Failed reload attempts since start.
    pub failures: u64,
    /// The error of the latest attempt and when it happened, if that attempt failed.
    pub last_error: Option<(TlsError, SystemTime)>,
}

struct Watch {
    config: FileSourceBuilder,
    seen: Vec<Vec<u8>>,
    status: Arc<Status>,
}

impl Watch {
    async fn run(mut self, source: super::material::WeakSource) {
        let mut ticker = tokio::time::interval(self.config.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        loop {
            ticker.tick().await;
            let Some(source) = source.upgrade() else {
                return;
            };
            self.poll(&source).await;
        }
    }

    async fn poll(&mut self, source: &TlsSource) {
        let outcome = match self.config.read_all().await {
            Ok(contents) if contents == self.seen => return,
            Ok(contents) => {
                let parsed = self.config.parse(&contents);
                if parsed.is_err()
                    && self
                        .config
                        .read_all()
                        .await
                        .is_ok_and(|again| again != contents)
                {
                    // The files changed while they were read (a rotation in progress):
                    // a mixed snapshot is no verdict on the new files; the next tick
                    // reads them again.
                    return;
                }
                self.seen = contents;
                parsed
            }
            Err(err) => Err(err),
        };
        let mut last = self
            .status
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match outcome {
            Ok(material) => {
                tracing::info!(
                    target: "meshless::tls",
                    id = %material.svid().spiffe_id(),
                    "reloaded TLS material from files"
                );
                source.replace(material);
                self.status.reloads.fetch_add(1, Ordering::Relaxed);
                self.config.count_reload(true);
                *last = None;
            }
            Err(err) => {
                // A missing file during a swap is retried at the next tick anyway, so
                // only unchanged-but-broken content stays failed.
                if matches!(err, TlsError::ReadFile { .. }) {
                    self.seen.clear();
                }
                tracing::warn!(
                    target: "meshless::tls",
                    reason = err.reason(),
                    error = %err,
                    "TLS material reload failed; keeping the last good material"
                );
                self.status.failures.fetch_add(1, Ordering::Relaxed);
                self.config.count_reload(false);
                *last = Some((err, SystemTime::now()));
            }
        }
    }
}

/// TLS material from files, reloaded when they change.
///
/// ```no_run
/// # async fn demo() -> Result<(), meshless::tls::TlsError> {
/// use meshless::tls::{FileSource, MtlsAcceptor};
/// let files = FileSource::builder("/var/run/secrets/spiffe/tls.crt",
///                                 "/var/run/secrets/spiffe/tls.key",
///                                 "/var/run/secrets/spiffe/ca.crt")
///     .start()
///     .await?;
/// let acceptor = MtlsAcceptor::new(files.source())?;
/// # Ok(()) }
/// ```
///
/// A replacement that cannot be read, parsed or validated (including a key that does
/// not fit the certificate, or a certificate that does not chain to the bundle) is
/// refused: the last good material stays in force, the failure is logged (target
/// `meshless::tls`) and visible in [`FileSource::status`].
#[derive(Debug, Clone)]
pub struct FileSource {
    source: TlsSource,
    status: Arc<Status>,
}

impl FileSource {
    /// Watches `cert` (PEM chain, leaf first), `key` (PEM private key) and `bundle` (PEM
    /// roots or SPIFFE bundle JSON of our own trust domain).
    pub fn builder(
        cert: impl Into<PathBuf>,
        key: impl Into<PathBuf>,
        bundle: impl Into<PathBuf>,
    ) -> FileSourceBuilder {
        FileSourceBuilder {
            cert: cert.into(),
            key: key.into(),
            bundle: bundle.into(),
            federated: Vec::new(),
            crls: Vec::new(),
            interval: Duration::from_secs(5),
            metrics: None,
        }
    }

    /// The live material, for acceptors and connectors.
    pub fn source(&self) -> TlsSource {
        self.source.clone()
    }

    /// Reload counters and the latest error.
    pub fn status(&self) -> ReloadStatus {
        let last = self
            .status
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        ReloadStatus {
            reloads: self.status.reloads.load(Ordering::Relaxed),
            failures: self.status.failures.load(Ordering::Relaxed),
            last_error: last.clone(),
        }
    }

    /// The error of the latest reload attempt, if it failed.
    pub fn last_error(&self) -> Option<TlsError> {
        self.status().last_error.map(|(err, _)| err)
    }
}
