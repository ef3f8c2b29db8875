//! Reloads: certificates and policies, on SIGHUP and when their files change. A file
//! that fails to load never replaces the last good version; the failure is logged and
//! counted (`meshless_reloads_total{kind, result}`).

use std::path::PathBuf;
use std::time::Duration;

use meshless::metrics::{Metrics, ReloadKind};
use meshless::policy::PolicyHandle;
use meshless::tls::{FileSource, FileSourceBuilder};

/// Everything that can be reloaded.
pub struct Reloader {
    pub tls: FileSourceBuilder,
    pub files: FileSource,
    pub policies: Vec<(PathBuf, PolicyHandle)>,
}

impl Reloader {
    /// Reloads everything now (SIGHUP).
    pub async fn reload_all(&self) {
        tracing::info!(target: "proxy", "reloading certificates and policies");
        match self.tls.load().await {
            Ok(material) => {
                tracing::info!(target: "proxy", id = %material.svid().spiffe_id(), "certificates reloaded");
                self.files.source().replace(material);
                Metrics::global().reload(ReloadKind::Certificates, true);
            }
            Err(err) => {
                tracing::warn!(
                    target: "proxy",
                    error = %err,
                    "certificate reload failed; keeping the last good certificates"
                );
                Metrics::global().reload(ReloadKind::Certificates, false);
            }
        }
        for (path, handle) in &self.policies {
            // reload_from logs and counts success and failure itself.
            let _ = handle.reload_from(path);
        }
    }

    /// Polls the policy files every `interval` and reloads those whose content changed
    /// (the file source watches the certificates on its own, and both count their
    /// reloads). Runs until dropped.
    pub async fn watch(&self, interval: Duration) {
        let mut seen: Vec<Option<Vec<u8>>> = Vec::new();
        for (path, _) in &self.policies {
            seen.push(tokio::fs::read(path).await.ok());
        }
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        loop {
            ticker.tick().await;
            for ((path, handle), seen) in self.policies.iter().zip(seen.iter_mut()) {
                let now = tokio::fs::read(path).await.ok();
                if now.is_some() && now != *seen {
                    *seen = now;
                    let _ = handle.reload_from(path);
                }
            }
        }
    }
}
