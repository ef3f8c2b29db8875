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
/// With feature `jwt-https`, keys can also be fetched from an HTTPS `jwks_uri` and
/// refreshed in the background (`JwksSource::fetch_jwks_https`), with the same
/// keep-the-last-good-keys rule.
///
/// ```
/// use meshless::jwt::JwksSource;
/// let keys = JwksSource::from_jwks(r#"{"keys": []}"#)?; // everything revoked
/// assert!(keys.keys().is_empty());
/// assert!(keys.last_error().is_none());
/// # Ok::<(), meshless::jwt::JwksError>(())
/// ```
#[derive(Clone)]
pub struct JwksSource(pub(super) Arc<Inner>);

pub(super) struct Inner {
    pub(super) current: ArcSwap<Jwks>,
    pub(super) origin: Origin,
    pub(super) spiffe_bundle: bool,
    /// The bytes of the last good load, and the last error since.
    pub(super) state: Mutex<(Vec<u8>, Option<JwksError>)>,
}

pub(super) enum Origin {
    Fixed,
    File(PathBuf),
    #[cfg(feature = "jwt-https")]
    Https(super::remote::Remote),
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
            origin: Origin::Fixed,
            spiffe_bundle,
            state: Mutex::new((Vec::new(), None)),
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
            origin: Origin::File(path.to_owned()),
            spiffe_bundle,
            state: Mutex::new((bytes, None)),
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

    /// Re-reads the file now (file sources; other sources return `Ok(false)`).
    /// Returns whether the keys changed.
    ///
    /// # Errors
    /// [`JwksError`] when the file cannot be read or parsed; the last good keys stay in
    /// force and the error is also kept for [`last_error`](Self::last_error).
    pub fn reload(&self) -> Result<bool, JwksError> {
        let Origin::File(path) = &self.0.origin else {
            return Ok(false);
        };
        let fetched = read(path);
        self.0.apply(fetched, &path.display().to_string())
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
        let state = self.0.state.lock().unwrap_or_else(|p| p.into_inner());
        state.1.clone()
    }

    /// The watched file, for a file source.
    pub fn path(&self) -> Option<&Path> {
        match &self.0.origin {
            Origin::File(path) => Some(path),
            _ => None,
        }
    }
}

impl Inner {
    /// Installs freshly read bytes if they differ from the last good ones and parse;
    /// otherwise keeps the current keys and records the error. `origin` names the
    /// file or URL in logs.
    pub(super) fn apply(
        &self,
        fetched: Result<Vec<u8>, JwksError>,
        origin: &str,
    ) -> Result<bool, JwksError> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let result = fetched.and_then(|bytes| {
            if bytes == state.0 {
                return Ok(None);
            }
            let keys = parse_bytes(&bytes, self.spiffe_bundle)?;
            Ok(Some((bytes, keys)))
        });
        match result {
            Ok(None) => {
                state.1 = None;
                Ok(false)
            }
            Ok(Some((bytes, keys))) => {
                tracing::info!(origin, keys = keys.len(), "JWKS reloaded");
                self.current.store(Arc::new(keys));
                *state = (bytes, None);
                Ok(true)
            }
            Err(e) => {
                tracing::warn!(origin, error = %e, "JWKS reload failed, keeping the last good keys");
                state.1 = Some(e.clone());
                Err(e)
            }
        }
    }
}

impl fmt::Debug for JwksSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let origin = match &self.0.origin {
            Origin::Fixed => "fixed".to_owned(),
            Origin::File(p) => p.display().to_string(),
            #[cfg(feature = "jwt-https")]
            Origin::Https(r) => r.url().to_owned(),
        };
        f.debug_struct("JwksSource")
            .field("origin", &origin)
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

pub(super) fn parse_bytes(bytes: &[u8], spiffe_bundle: bool) -> Result<Jwks, JwksError> {
    let text = std::str::from_utf8(bytes).map_err(|_| JwksError::Json("not UTF-8".into()))?;
    if spiffe_bundle {
        Jwks::from_spiffe_bundle(text)
    } else {
        Jwks::from_json(text)
    }
}
