//! [`TlsMaterial`] (our SVID plus the bundles we trust) and [`TlsSource`], the handle
//! through which acceptors, connectors and verifiers see the current material.

use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls_pki_types::UnixTime;

use super::verify::verify_chain;
use super::{BundleSet, Svid, TlsError};

/// Everything a workload needs for mutual TLS: its own [`Svid`] and the [`BundleSet`]
/// it verifies peers against.
#[derive(Clone, Debug)]
pub struct TlsMaterial {
    svid: Svid,
    bundles: BundleSet,
}

impl TlsMaterial {
    /// Pairs an SVID with bundles. When the bundles hold our own trust domain, our SVID
    /// must verify against it, so that a half-rotated pair (new certificate, old CA) is
    /// caught before it is served.
    ///
    /// # Errors
    /// [`TlsError::SvidNotTrusted`] when our SVID does not verify against our own
    /// trust domain's bundle.
    pub fn new(svid: Svid, bundles: impl Into<BundleSet>) -> Result<Self, TlsError> {
        let bundles = bundles.into();
        let id = svid.spiffe_id();
        if let Some(own) = bundles.get(id.trust_domain()) {
            let (leaf, intermediates) = svid.chain().split_first().expect("validated chain");
            verify_chain(
                own,
                id,
                leaf,
                intermediates,
                UnixTime::now(),
                webpki::KeyUsage::server_auth(),
            )
            .map_err(|e| TlsError::SvidNotTrusted {
                id: id.clone(),
                reason: e.to_string(),
            })?;
        }
        Ok(Self { svid, bundles })
    }

    /// Our SVID.
    pub fn svid(&self) -> &Svid {
        &self.svid
    }

    /// The bundles we verify peers against.
    pub fn bundles(&self) -> &BundleSet {
        &self.bundles
    }
}

/// A shared, atomically swappable view of the current [`TlsMaterial`].
///
/// Cloning is cheap and every clone sees the same material. Acceptors and connectors
/// read it at each handshake, so a [`TlsSource::replace`] (or a file reload) takes
/// effect for new handshakes at once while open connections keep going untouched.
/// Reads are lock-free (`arc-swap`).
#[derive(Clone, Debug)]
pub struct TlsSource {
    current: Arc<ArcSwap<TlsMaterial>>,
}

impl TlsSource {
    /// A source holding `material` until replaced.
    pub fn new(material: TlsMaterial) -> Self {
        Self {
            current: Arc::new(ArcSwap::from_pointee(material)),
        }
    }

    /// The material in force now.
    pub fn current(&self) -> Arc<TlsMaterial> {
        self.current.load_full()
    }

    /// Replaces the material for every new handshake.
    pub fn replace(&self, material: TlsMaterial) {
        self.current.store(Arc::new(material));
    }

    pub(crate) fn downgrade(&self) -> WeakSource {
        WeakSource(Arc::downgrade(&self.current))
    }

    pub(crate) fn load(&self) -> arc_swap::Guard<Arc<TlsMaterial>> {
        self.current.load()
    }
}

impl From<TlsMaterial> for TlsSource {
    fn from(material: TlsMaterial) -> Self {
        Self::new(material)
    }
}

/// A handle that does not keep the material alive (for background reloaders).
pub(crate) struct WeakSource(std::sync::Weak<ArcSwap<TlsMaterial>>);

impl WeakSource {
    pub(crate) fn upgrade(&self) -> Option<TlsSource> {
        self.0.upgrade().map(|current| TlsSource { current })
    }
}
