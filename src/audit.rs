//! The audit log: one [`tracing`] event per authorization decision, on target
//! `meshless::audit`, with stable field names.
//!
//! | field | meaning |
//! | --- | --- |
//! | `decision` | `allow`, `deny`, `not-found`, `would-deny` (audit rule, audit default or dry run), `bad-request`, `unauthenticated` |
//! | `rule` | the deciding rule's name, or `default:<name>` |
//! | `reason` | why, in words (the failed field for a deny, the rejection for a 400) |
//! | `peer` | the proven identity, or `unauthenticated (plaintext)` |
//! | `source` | the peer's socket address |
//! | `method`, `host`, `path` | the request (the normalized path); empty for TCP |
//! | `principal` | the end-user principal of a verified JWT (`iss/sub`); empty without a token and for TCP |
//! | `dry_run` | whether the policy is in dry-run mode |
//! | `audit` | names of audit rules that matched, comma-separated |
//!
//! Denials, would-denials and rejections are logged at `INFO`; allowed requests at
//! `DEBUG`, optionally sampled ([`AuditConfig::sample_allowed`]) so that a busy
//! service is not drowned. Select them with a tracing filter such as
//! `meshless::audit=info`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::policy::{Decision, DefaultPolicy, Verdict};
use crate::{PeerIdentity, RequestPrincipal};

/// How allowed requests are logged (denials are always logged).
#[derive(Debug, Clone)]
pub struct AuditConfig {
    sample_allowed: u64,
    counter: Arc<AtomicU64>,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            sample_allowed: 1,
            counter: Arc::new(AtomicU64::new(0)),
        }
    }
}

impl AuditConfig {
    /// Logs one allowed request in `n` (`0` logs none, `1` all — the default). Denied
    /// and audited requests are never sampled away.
    pub fn sample_allowed(mut self, n: u64) -> Self {
        self.sample_allowed = n;
        self
    }

    fn take_allowed(&self) -> bool {
        match self.sample_allowed {
            0 => false,
            1 => true,
            n => self
                .counter
                .fetch_add(1, Ordering::Relaxed)
                .is_multiple_of(n),
        }
    }
}

/// What a request looked like, for the log.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct RequestView<'a> {
    pub(crate) method: &'a str,
    pub(crate) host: &'a str,
    pub(crate) path: &'a str,
    pub(crate) principal: Option<&'a RequestPrincipal>,
}

/// The request principal, formatted only when logged (empty when absent).
struct Principal<'a>(Option<&'a RequestPrincipal>);

impl std::fmt::Display for Principal<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(p) => f.write_str(p.as_str()),
            None => Ok(()),
        }
    }
}

/// Logs a policy decision.
pub(crate) fn decision(
    config: &AuditConfig,
    decision: &Decision,
    peer: &PeerIdentity,
    req: RequestView<'_>,
    reason: &dyn std::fmt::Display,
) {
    // What a stricter setting would have done: a dry run that would deny, or the
    // `audit` default letting in a request no rule allowed.
    let would_deny = (decision.dry_run() && decision.verdict() != Verdict::Allow)
        || decision.default_policy() == Some(DefaultPolicy::Audit);
    let label = if would_deny {
        "would-deny"
    } else if decision.is_audited() {
        // Audit rules let a request through but log it loudly.
        "audit"
    } else {
        decision.verdict().as_str()
    };
    let audits = Joined(decision);
    let source = Source(peer);
    // One event shape, at two levels (tracing needs the level at compile time).
    macro_rules! event {
        ($level:ident, $message:expr) => {
            tracing::$level!(
                target: "meshless::audit",
                decision = label,
                rule = decision.rule(),
                reason = %reason,
                peer = %peer,
                source = %source,
                method = req.method,
                host = req.host,
                path = req.path,
                principal = %Principal(req.principal),
                dry_run = decision.dry_run(),
                audit = %audits,
                "{}",
                $message
            )
        };
    }
    if decision.verdict() == Verdict::Allow && !decision.is_audited() {
        // Checked first, so that a busy service with allowed-request logging off pays
        // nothing here.
        if tracing::enabled!(target: "meshless::audit", tracing::Level::DEBUG)
            && config.take_allowed()
        {
            event!(debug, "request allowed");
        }
    } else if decision.is_allowed() {
        event!(info, "request allowed");
    } else {
        event!(info, "request denied");
    }
}

/// The audit rules of a decision, comma-separated, formatted only when logged.
struct Joined<'a>(&'a Decision);

impl std::fmt::Display for Joined<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, name) in self.0.audit_rules().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(name)?;
        }
        Ok(())
    }
}

/// The peer's address, formatted only when logged.
struct Source<'a>(&'a PeerIdentity);

impl std::fmt::Display for Source<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0.remote_addr() {
            Some(addr) => write!(f, "{addr}"),
            None => Ok(()),
        }
    }
}

/// Logs a request rejected before policy ran (400, or a missing identity layer).
pub(crate) fn rejected(
    peer: Option<&PeerIdentity>,
    req: RequestView<'_>,
    decision: &str,
    reason: &dyn std::fmt::Display,
) {
    let peer = peer
        .map(|p| p.to_string())
        .unwrap_or_else(|| "unknown (no identity layer)".into());
    tracing::info!(
        target: "meshless::audit",
        decision,
        rule = "",
        reason = %reason,
        peer = %peer,
        source = "",
        method = req.method,
        host = req.host,
        path = req.path,
        principal = %Principal(req.principal),
        dry_run = false,
        audit = "",
        "request rejected"
    );
}
