//! Connection-level (L4) authorization for opaque TCP: decide once per connection from
//! the peer's identity, address and our port; close connections that are not allowed,
//! and those that a policy change no longer allows (as Linkerd does).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::PeerIdentity;
use crate::audit::{self, AuditConfig, RequestView};
use crate::metrics::Metrics;
use crate::policy::{Decision, PolicyHandle, RequestAttrs};

/// Authorizes whole TCP connections against a policy.
///
/// Policy rules that need HTTP attributes (methods, paths, hosts, headers) follow Istio
/// for TCP: an `allow` rule that needs them never matches, a `deny` rule ignores them.
///
/// ```no_run
/// # async fn demo(policy: meshless::policy::PolicyHandle, acceptor: meshless::MtlsAcceptor,
/// #               tcp: tokio::net::TcpStream) -> Result<(), Box<dyn std::error::Error>> {
/// use meshless::authorize::ConnectionAuthorizer;
/// let authz = ConnectionAuthorizer::new(policy);
/// let (mut stream, peer) = acceptor.accept(tcp).await?;
/// if authz.check(&peer).is_allowed() {
///     let mut app = tokio::net::TcpStream::connect("127.0.0.1:6379").await?;
///     // Copies until either side closes, or a policy change no longer allows the peer.
///     authz.guard(&peer, tokio::io::copy_bidirectional(&mut stream, &mut app)).await;
/// }
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct ConnectionAuthorizer {
    policy: PolicyHandle,
    metrics: Arc<Metrics>,
    audit: AuditConfig,
    recheck: Duration,
}

impl ConnectionAuthorizer {
    /// Authorizes against `policy`, re-checking open connections every 500 ms for a
    /// policy change.
    ///
    /// Logs, at WARN, the policy's rules that read differently on TCP connections (allow
    /// rules that need HTTP fields never match; deny rules ignore them and deny more).
    pub fn new(policy: PolicyHandle) -> Self {
        for w in policy.load().tcp_warnings() {
            tracing::warn!(target: "meshless::policy", "{w}");
        }
        Self {
            policy,
            metrics: Metrics::global().clone(),
            audit: AuditConfig::default(),
            recheck: Duration::from_millis(500),
        }
    }

    /// Counts into `metrics` instead of [`Metrics::global`].
    pub fn metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// How often [`guard`](Self::guard) looks for a policy change.
    pub fn recheck_interval(mut self, interval: Duration) -> Self {
        self.recheck = interval;
        self
    }

    /// Decides on a new connection, logs and counts the decision.
    pub fn check(&self, peer: &PeerIdentity) -> Decision {
        let decision = super::evaluate(&self.policy.load(), peer, &RequestAttrs::from_peer(peer));
        self.metrics.tcp_decision(
            decision.is_allowed(),
            decision.rule_name(),
            peer.is_authenticated(),
        );
        audit::decision(
            &self.audit,
            &decision,
            peer,
            RequestView::default(),
            &"tcp connection",
        );
        decision
    }

    /// Runs `connection` until it completes, or until a policy change no longer allows
    /// `peer` — then drops it (closing the connection), counts a termination and
    /// returns `None`.
    pub async fn guard<F: Future>(&self, peer: &PeerIdentity, connection: F) -> Option<F::Output> {
        tokio::pin!(connection);
        let mut seen = self.policy.current();
        let mut ticker = tokio::time::interval(self.recheck);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                out = &mut connection => return Some(out),
                _ = ticker.tick() => {
                    let now = self.policy.current();
                    if Arc::ptr_eq(&now, &seen) {
                        continue;
                    }
                    seen = now;
                    let decision = super::evaluate(&seen, peer, &RequestAttrs::from_peer(peer));
                    if !decision.is_allowed() {
                        self.metrics.tcp_terminated(decision.rule_name(), peer.is_authenticated());
                        audit::decision(
                            &self.audit,
                            &decision,
                            peer,
                            RequestView::default(),
                            &"open tcp connection no longer allowed after a policy change; closing",
                        );
                        return None;
                    }
                }
            }
        }
    }
}
