//! Istio `PeerAuthentication`: the mutual-TLS mode per port, for the transport.

use std::collections::BTreeMap;

use serde::Deserialize;

/// Istio mutual TLS mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
#[non_exhaustive]
pub enum MtlsMode {
    /// Inherit from the parent (treated as `PERMISSIVE` at the top, as Istio does).
    Unset,
    /// Accept only mutual TLS.
    Strict,
    /// Accept mutual TLS and plaintext.
    Permissive,
    /// Plaintext only (meshless still accepts no unauthenticated TLS).
    Disable,
}

/// An Istio `PeerAuthentication`, for the transport to configure strict or
/// permissive mode per port.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PeerAuthentication {
    /// `namespace/name` of the object.
    pub name: String,
    /// The workload-wide mode.
    pub mode: MtlsMode,
    /// Per-port overrides.
    pub port_modes: BTreeMap<u16, MtlsMode>,
    /// Whether the object had a workload selector (it is then more specific than a
    /// namespace-wide one).
    pub has_selector: bool,
}

impl PeerAuthentication {
    /// The effective mode for `port`: the port override, else the workload mode;
    /// `UNSET` resolves to `PERMISSIVE` (Istio's default).
    pub fn mode_for_port(&self, port: u16) -> MtlsMode {
        let resolve = |m: MtlsMode| if m == MtlsMode::Unset { None } else { Some(m) };
        self.port_modes
            .get(&port)
            .copied()
            .and_then(resolve)
            .or_else(|| resolve(self.mode))
            .unwrap_or(MtlsMode::Permissive)
    }
}
