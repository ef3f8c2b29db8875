//! The outcome of evaluating a request: data, not an error.

use std::fmt;
use std::sync::Arc;

use super::model::DefaultPolicy;

/// What the policy says about a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Verdict {
    /// Let it through.
    Allow,
    /// Refuse it (HTTP 403, gRPC `PERMISSION_DENIED`, TCP close).
    Deny,
    /// The request's server has routes and none matched: Linkerd answers 404 (gRPC
    /// `NOT_FOUND`). Never produced for a TCP connection.
    NotFound,
}

impl Verdict {
    /// Lower-case name (`allow`, `deny`, `not-found`).
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Deny => "deny",
            Self::NotFound => "not-found",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    Rule,
    Default(DefaultPolicy),
    NoRoute,
}

/// A decision: the verdict, what decided it, the audit rules that matched, and
/// whether the policy is in dry-run mode.
///
/// Cloning is cheap (reference-counted names); a decision can be stored in request
/// extensions.
#[derive(Debug, Clone)]
pub struct Decision {
    pub(crate) verdict: Verdict,
    pub(crate) name: Arc<str>,
    pub(crate) source: Source,
    pub(crate) audits: Vec<Arc<str>>,
    pub(crate) dry_run: bool,
}

impl Decision {
    /// The verdict the policy reached. In dry-run mode this is what *would* have
    /// happened; use [`enforced`](Self::enforced) for what to do.
    pub fn verdict(&self) -> Verdict {
        self.verdict
    }

    /// The verdict to enforce: [`Verdict::Allow`] in dry-run mode, else
    /// [`verdict`](Self::verdict).
    pub fn enforced(&self) -> Verdict {
        if self.dry_run {
            Verdict::Allow
        } else {
            self.verdict
        }
    }

    /// True when the request may proceed ([`enforced`](Self::enforced) is allow).
    pub fn is_allowed(&self) -> bool {
        self.enforced() == Verdict::Allow
    }

    /// The name of the deciding rule; for a default, `default:<name>` (for example
    /// `default:deny`, or `default:all-authenticated` ); for an unmatched route,
    /// `route-not-found`. With servers, defaults read `<server>/default:<name>`.
    pub fn rule(&self) -> &str {
        &self.name
    }

    /// True when no rule decided and the default (policy or server) did.
    pub fn is_default(&self) -> bool {
        matches!(self.source, Source::Default(_))
    }

    /// The default policy that decided, if one did.
    pub fn default_policy(&self) -> Option<DefaultPolicy> {
        match self.source {
            Source::Default(d) => Some(d),
            _ => None,
        }
    }

    /// Names of the `audit` rules that matched, in policy order.
    pub fn audit_rules(&self) -> impl ExactSizeIterator<Item = &str> {
        self.audits.iter().map(|a| &**a)
    }

    /// True when the request should go to the audit log: audit rules matched, or
    /// the `audit` default let it in.
    pub fn is_audited(&self) -> bool {
        !self.audits.is_empty() || self.source == Source::Default(DefaultPolicy::Audit)
    }

    /// True when the policy is in dry-run mode (decisions are logged, not enforced).
    pub fn dry_run(&self) -> bool {
        self.dry_run
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} by `{}`", self.verdict, self.name)?;
        if !self.audits.is_empty() {
            write!(f, " (audit: ")?;
            for (i, a) in self.audits.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "`{a}`")?;
            }
            f.write_str(")")?;
        }
        if self.dry_run {
            f.write_str(" [dry-run: not enforced]")?;
        }
        Ok(())
    }
}
