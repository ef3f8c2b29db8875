//! [`JwksSource`]s over HTTPS (feature `jwt-https`): fetched by a [`Remote`] now and
//! refreshed in the background.

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use arc_swap::ArcSwap;
use rustls::ClientConfig;

use super::JwksError;
use super::JwksSource;
use super::remote::Remote;
use super::source::{Inner, Origin, parse_bytes};

impl JwksSource {
    /// Keys from a JWKS served over HTTPS (an OIDC provider's `jwks_uri`), fetched now
    /// and then every `refresh` by a background task on the current tokio runtime.
    ///
    /// `tls` is the client configuration — its crypto provider and trusted roots are
    /// the caller's explicit choice; the ALPN offer is forced to `http/1.1`. A failed
    /// refresh keeps the last good keys and is reported by
    /// [`last_error`](Self::last_error). Bodies over 1 MiB are refused.
    ///
    /// # Errors
    /// [`JwksError`] when the URL is not `https`, or the first fetch or parse fails: a
    /// source never starts without keys.
    pub async fn fetch_jwks_https(
        url: &str,
        tls: Arc<ClientConfig>,
        refresh: Duration,
    ) -> Result<Self, JwksError> {
        Self::fetch_https(url, tls, refresh, false).await
    }

    /// The `jwt-svid` keys of a SPIFFE bundle served over HTTPS (a SPIFFE bundle
    /// endpoint with `https_web` authentication), refreshed like
    /// [`fetch_jwks_https`](Self::fetch_jwks_https).
    ///
    /// # Errors
    /// As for [`fetch_jwks_https`](Self::fetch_jwks_https).
    pub async fn fetch_spiffe_bundle_https(
        url: &str,
        tls: Arc<ClientConfig>,
        refresh: Duration,
    ) -> Result<Self, JwksError> {
        Self::fetch_https(url, tls, refresh, true).await
    }

    async fn fetch_https(
        url: &str,
        tls: Arc<ClientConfig>,
        refresh: Duration,
        spiffe_bundle: bool,
    ) -> Result<Self, JwksError> {
        let remote = Remote::new(url, tls)?;
        let bytes = remote.fetch().await?;
        let keys = parse_bytes(&bytes, spiffe_bundle)?;
        let source = Self(Arc::new(Inner {
            current: ArcSwap::from_pointee(keys),
            origin: Origin::Https(remote),
            spiffe_bundle,
            state: Mutex::new((bytes, None)),
        }));
        let weak: Weak<Inner> = Arc::downgrade(&source.0);
        let refresh = refresh.max(Duration::from_millis(10));
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(refresh).await;
                let Some(inner) = weak.upgrade() else { break };
                // Errors are recorded in the source and logged.
                let _ = JwksSource(inner).refresh().await;
            }
        });
        Ok(source)
    }

    /// Fetches an HTTPS source now (other sources: `Ok(false)`). Returns whether the
    /// keys changed.
    ///
    /// # Errors
    /// [`JwksError`] when the fetch or parse fails; the last good keys stay in force.
    pub async fn refresh(&self) -> Result<bool, JwksError> {
        let Origin::Https(remote) = &self.0.origin else {
            return self.reload();
        };
        let fetched = remote.fetch().await;
        self.0.apply(fetched, remote.url())
    }
}
