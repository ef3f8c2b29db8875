//! [`JwksSource`]: where an issuer's keys come from, and how they are reloaded.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use arc_swap::{ArcSwap, Guard};

use super::{Jwks, JwksError};

/// The keys of one issuer: fixed, or read from a file that is polled for changes.
///
/// A file source re-reads its file every poll interval (JWKS files are small) and
/// swaps the keys atomically when the content changed. This follows Kubernetes
/// ConfigMap and Secret volumes, which replace files through a `..data` symlink swap. A
/// file that cannot be read or parsed leaves **the last good keys in force**; the error
/// is logged and kept for [`last_error`](Self::last_error) until a later read succeeds.
/// Requests never take a lock: they read the current keys through `arc-swap`.
///
/// The polling thread holds no strong reference: it ends within one interval once
/// every clone of the source (and every layer using it) is dropped.
///
/// Fetching keys from an HTTPS `jwks_uri` is not implemented; point a file source at a
/// file that a sidecar-free job (or a mounted ConfigMap) keeps current.
///
/// ```
/// use meshless::jwt::JwksSource;
/// let keys = JwksSource::from_jwks(r#"{"keys": []}"#)?; // everything revoked
/// assert!(keys.keys().is_empty());
/// assert!(keys.last_error().is_none());
/// # Ok::<(), meshless::jwt::JwksError>(())
/// ```
#[derive(Clone)]
pub struct JwksSource(Arc<Inner>);

struct Inner {
    current: ArcSwap<Jwks>,
    file: Option<FileState>,
    spiffe_bundle: bool,
}

struct FileState {
    path: PathBuf,
    /// The bytes of the last good load, and the last error since.
    state: Mutex<(Vec<u8>, Option<JwksError>)>,
}

impl JwksSource {
    /// Fixed keys from a JWKS document.
    ///
    /// # Errors
    /// [`JwksError`] when the document is invalid.
    pub fn from_jwks(json: &str) -> Result<Self, JwksError> {
        Ok(Self::fixed(Jwks::from_json(json)?, false))
    }

    /// Fixed `jwt-svid` keys from a SPIFFE bundle document.
    ///
    /// # Errors
    /// [`JwksError`] when the bundle is invalid.
    pub fn from_spiffe_bundle(json: &str) -> Result<Self, JwksError> {
        Ok(Self::fixed(Jwks::from_spiffe_bundle(json)?, true))
    }

    /// Fixed, already parsed keys.
    pub fn from_keys(keys: Jwks) -> Self {
        Self::fixed(keys, false)
    }

    fn fixed(keys: Jwks, spiffe_bundle: bool) -> Self {
        Self(Arc::new(Inner {
            current: ArcSwap::from_pointee(keys),
            file: None,
            spiffe_bundle,
        }))
    }

    /// Keys from a JWKS file, re-read every `poll` (a background thread).
    ///
    /// # Errors
    /// [`JwksError`] when the file cannot be read or parsed now: a source never
    /// starts without keys.
    pub fn watch_jwks_file(path: impl AsRef<Path>, poll: Duration) -> Result<Self, JwksError> {
        Self::watch(path.as_ref(), poll, false)
    }

    /// The `jwt-svid` keys of a SPIFFE bundle file (as written by spiffe-helper or a
    /// SPIRE agent), re-read every `poll` (a background thread).
    ///
    /// # Errors
    /// [`JwksError`] when the file cannot be read or parsed now.
    pub fn watch_spiffe_bundle_file(
        path: impl AsRef<Path>,
        poll: Duration,
    ) -> Result<Self, JwksError> {
        Self::watch(path.as_ref(), poll, true)
    }

    fn watch(path: &Path, poll: Duration, spiffe_bundle: bool) -> Result<Self, JwksError> {
        let bytes = read(path)?;
        let keys = parse_bytes(&bytes, spiffe_bundle)?;
        let source = Self(Arc::new(Inner {
            current: ArcSwap::from_pointee(keys),
            file: Some(FileState {
                path: path.to_owned(),
                state: Mutex::new((bytes, None)),
            }),
            spiffe_bundle,
        }));
        let weak: Weak<Inner> = Arc::downgrade(&source.0);
        let poll = poll.max(Duration::from_millis(10));
        // A failure to spawn leaves a working, non-reloading source; it is reported.
        if let Err(e) = std::thread::Builder::new()
            .name("meshless-jwks".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(poll);
                    let Some(inner) = weak.upgrade() else { break };
                    // Errors are recorded in the source and logged by `reload`.
                    let _ = JwksSource(inner).reload();
                }
            })
        {
            tracing::warn!(path = %path.display(), error = %e, "cannot start the JWKS file watcher");
        }
        Ok(source)
    }

    /// Re-reads the file now (file sources; fixed sources return `Ok(false)`).
    /// Returns whether the keys changed.
    ///
    /// # Errors
    /// [`JwksError`] when the file cannot be read or parsed; the last good keys stay in
    /// force and the error is also kept for [`last_error`](Self::last_error).
    pub fn reload(&self) -> Result<bool, JwksError> {
        let Some(file) = &self.0.file else {
            return Ok(false);
        };
        let mut state = file.state.lock().unwrap_or_else(|p| p.into_inner());
        let result = read(&file.path).and_then(|bytes| {
            if bytes == state.0 {
                return Ok(None);
            }
            let keys = parse_bytes(&bytes, self.0.spiffe_bundle)?;
            Ok(Some((bytes, keys)))
        });
        match result {
            Ok(None) => {
                state.1 = None;
                Ok(false)
            }
            Ok(Some((bytes, keys))) => {
                tracing::info!(path = %file.path.display(), keys = keys.len(), "JWKS reloaded");
                self.0.current.store(Arc::new(keys));
                *state = (bytes, None);
                Ok(true)
            }
            Err(e) => {
                tracing::warn!(path = %file.path.display(), error = %e, "JWKS reload failed, keeping the last good keys");
                state.1 = Some(e.clone());
                Err(e)
            }
        }
    }

    /// The keys in force now.
    pub fn keys(&self) -> Arc<Jwks> {
        self.0.current.load_full()
    }

    /// The keys in force now, without touching a reference count (request path).
    pub(crate) fn guard(&self) -> Guard<Arc<Jwks>> {
        self.0.current.load()
    }

    /// The error of the most recent reload, if it failed (the last good keys are still
    /// in force). `None` once a reload succeeds.
    pub fn last_error(&self) -> Option<JwksError> {
        let file = self.0.file.as_ref()?;
        let state = file.state.lock().unwrap_or_else(|p| p.into_inner());
        state.1.clone()
    }

    /// The watched file, for a file source.
    pub fn path(&self) -> Option<&Path> {
        self.0.file.as_ref().map(|f| f.path.as_path())
    }
}

impl fmt::Debug for JwksSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwksSource")
            .field("path", &self.path())
            .field("spiffe_bundle", &self.0.spiffe_bundle)
            .field("keys", &self.0.current.load().len())
            .finish()
    }
}

fn read(path: &Path) -> Result<Vec<u8>, JwksError> {
    std::fs::read(path).map_err(|e| JwksError::Io {
        path: path.to_owned(),
        message: e.to_string(),
    })
}

fn parse_bytes(bytes: &[u8], spiffe_bundle: bool) -> Result<Jwks, JwksError> {
    let text = std::str::from_utf8(bytes).map_err(|_| JwksError::Json("not UTF-8".into()))?;
    if spiffe_bundle {
        Jwks::from_spiffe_bundle(text)
    } else {
        Jwks::from_json(text)
    }
}
