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
//!
//! [`AuditConfig::json_lines`] also writes each decision as one JSON object per line,
//! with the same fields (and `port`, the local port the peer connected to), whatever
//! the tracing filter: the input of `policy_insight suggest`, which proposes the
//! least-privilege policy for the traffic it saw. Requests rejected before policy
//! runs (400) are not decisions and are not written.
//!
//! ```
//! use meshless::audit::AuditConfig;
//! let dir = tempfile::tempdir()?;
//! let audit = AuditConfig::json_lines_file(dir.path().join("audit.jsonl"))?;
//! // AuthorizeLayer::new(policy).audit(audit)
//! # drop(audit);
//! # Ok::<(), std::io::Error>(())
//! ```

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::policy::{Decision, DefaultPolicy, Verdict};
use crate::{PeerIdentity, RequestPrincipal};

/// How allowed requests are logged (denials are always logged), and where else.
#[derive(Clone)]
pub struct AuditConfig {
    sample_allowed: u64,
    counter: Arc<AtomicU64>,
    json: Option<Arc<Mutex<dyn Write + Send>>>,
}

impl std::fmt::Debug for AuditConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditConfig")
            .field("sample_allowed", &self.sample_allowed)
            .field("json_lines", &self.json.is_some())
            .finish()
    }
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            sample_allowed: 1,
            counter: Arc::new(AtomicU64::new(0)),
            json: None,
        }
    }
}

impl AuditConfig {
    /// Also writes every decision to `writer` as a JSON line (the fields of the
    /// module docs, plus `port`), flushed after each line. Allowed requests are
    /// sampled as [`sample_allowed`](Self::sample_allowed) says. Lines are written
    /// whole, under a lock that only the JSON writer takes; a write error drops the
    /// line (and is logged at `WARN`), never the request.
    pub fn json_lines(writer: impl Write + Send + 'static) -> Self {
        Self {
            json: Some(Arc::new(Mutex::new(writer))),
            ..Self::default()
        }
    }

    /// [`json_lines`](Self::json_lines) appending to the file at `path` (created if
    /// missing).
    ///
    /// # Errors
    ///
    /// The file cannot be opened for appending.
    pub fn json_lines_file(path: impl AsRef<std::path::Path>) -> std::io::Result<Self> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(Self::json_lines(std::io::LineWriter::new(file)))
    }

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
    let plain_allow = decision.verdict() == Verdict::Allow && !decision.is_audited();
    // Sampled once, for both outputs; checked first so that a busy service with
    // allowed-request logging off pays nothing here.
    let sampled = plain_allow
        && (config.json.is_some()
            || tracing::enabled!(target: "meshless::audit", tracing::Level::DEBUG))
        && config.take_allowed();
    if let Some(json) = &config.json
        && (!plain_allow || sampled)
    {
        let line = JsonLine {
            decision: label,
            rule: decision.rule(),
            reason: reason.to_string(),
            peer: peer.to_string(),
            source: source.to_string(),
            method: req.method,
            host: req.host,
            path: req.path,
            principal: Principal(req.principal).to_string(),
            dry_run: decision.dry_run(),
            audit: audits.to_string(),
            port: peer.local_addr().map(|a| a.port()),
        };
        write_line(json, &line);
    }
    if plain_allow {
        if sampled && tracing::enabled!(target: "meshless::audit", tracing::Level::DEBUG) {
            event!(debug, "request allowed");
        }
    } else if decision.is_allowed() {
        event!(info, "request allowed");
    } else {
        event!(info, "request denied");
    }
}

/// One decision as a JSON line.
#[derive(serde::Serialize)]
struct JsonLine<'a> {
    decision: &'a str,
    rule: &'a str,
    reason: String,
    peer: String,
    source: String,
    method: &'a str,
    host: &'a str,
    path: &'a str,
    principal: String,
    dry_run: bool,
    audit: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    port: Option<u16>,
}

fn write_line(writer: &Mutex<dyn Write + Send>, line: &JsonLine<'_>) {
    let mut bytes = serde_json::to_vec(line).unwrap_or_default();
    bytes.push(b'\n');
    // A writer that panicked mid-line is still usable for the next one.
    let mut w = writer
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Err(e) = w.write_all(&bytes).and_then(|()| w.flush()) {
        tracing::warn!(target: "meshless::audit", "cannot write the JSON audit line: {e}");
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
