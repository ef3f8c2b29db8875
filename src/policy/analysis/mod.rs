//! Policy insight: who can make a request, what a caller can reach, what a change
//! grants or revokes, and the least-privilege policy for the traffic an audit log
//! saw — answered exactly, with no solver.
//!
//! - [`who_can`]: the callers a request shape admits, as classes in the policy's
//!   words (SPIFFE IDs, namespaces, service accounts, trust domains, networks, JWT
//!   principals), each with the rule that admits it, the conditions left open and
//!   the parts deny rules take back (`namespace web except spiffe://…/sa/x`).
//! - [`what_can`]: the requests (methods, paths, hosts, ports) one caller may make.
//! - [`diff`]: the access a new policy grants and revokes, as identity class ×
//!   request shape regions, each with a request whose decision changed.
//! - [`suggest`]: from the JSON lines of [`AuditConfig::json_lines`], the smallest
//!   native policy that still lets the observed traffic through.
//!
//! ```
//! # #[cfg(feature = "yaml")] {
//! use meshless::policy::Policy;
//! use meshless::policy::analysis::{Caller, RequestShape, diff, who_can};
//! use meshless::{Identity, SpiffeId};
//!
//! const WEB_READS: &str = r#"
//! local_trust_domains: [example.org]
//! rules:
//!   - name: web-reads
//!     action: allow
//!     from: [{namespaces: [web]}]
//!     to: [{methods: [GET], paths: ["/orders/*"]}]
//! "#;
//! let old = Policy::from_yaml(&format!("{WEB_READS}
//!   - name: no-scraper
//!     action: deny
//!     from: [{{identities: [\"spiffe://example.org/ns/web/sa/scraper\"]}}]
//! ")).unwrap();
//! let who = who_can(&old, &RequestShape::http("GET", "/orders/7")?);
//! let text = who.to_string();
//! assert!(text.contains("namespace `web` of trust domain `example.org` (rule `web-reads`)"));
//! assert!(text.contains("except `spiffe://example.org/ns/web/sa/scraper` (rule `no-scraper`)"));
//! let id = |s: &str| Identity::from(s.parse::<SpiffeId>().unwrap());
//! assert!(who.admits(&Caller::authenticated(id("spiffe://example.org/ns/web/sa/frontend"))));
//! assert!(!who.admits(&Caller::authenticated(id("spiffe://example.org/ns/web/sa/scraper"))));
//!
//! // A pull request drops the deny rule: `diff` says the scraper gets in.
//! let new = Policy::from_yaml(WEB_READS).unwrap();
//! let d = diff(&old, &new);
//! assert!(d.widens());
//! assert!(d.regions()[0].example.caller.starts_with("spiffe://example.org/ns/web/sa/scraper"));
//! # }
//! # Ok::<(), meshless::policy::analysis::AnalysisError>(())
//! ```
//!
//! # How the answers are exact
//!
//! A decision reads finitely many patterns, so requests fall into finitely many
//! classes that every rule treats alike. The search fixes one attribute after the
//! other (peer and address, client address, port, TCP or method, JWT principal,
//! path, host, query, headers, claims) and tries one value per class of the
//! patterns of the rules still possible, dropping rules as soon as a clause fails
//! and merging values that leave the same rules possible. Every value it builds is
//! decided by [`Policy::evaluate`] itself, so an answer is never the analysis's
//! reading of the semantics, only the engine's.
//!
//! One value per class: for string patterns (exact, `prefix*`, `*suffix`, `*`) the
//! classes are fixed by the longest prefix and suffix a value carries, and one value
//! each is built; for CIDRs, by the blocks' ends; for ports, by the ranges' ends; for
//! SPIFFE IDs and path templates, per length, by the product of the literals seen
//! at each segment plus a fresh segment (with the namespace and service-account
//! classes at their positions); for headers and claims, by the values the
//! conditions name (a header also as two values joined, for list readings). The
//! property tests (`tests/analysis_props.rs`) check on random policies and requests
//! that [`WhoCan::admits`], [`WhatCan::allows`] and [`PolicyDiff::contains`] agree
//! with [`Policy::evaluate`].
//!
//! Requests are taken to have a destination port, as every request the layer sees
//! has. Conditions left open are stated as the rule writes them; contradictory
//! ones are not simplified away.
//!
//! [`AuditConfig::json_lines`]: crate::audit::AuditConfig::json_lines
//! [`Policy::evaluate`]: super::Policy::evaluate

mod classes;
mod describe;
mod diff;
mod nets;
mod peers;
mod probe;
mod requests;
mod search;
mod shape;
mod space;
mod strings;
mod suggest;
mod templates;
mod who_can;

pub use classes::{AccessClass, Exception};
pub use describe::CallerKind;
pub use diff::{Change, Example, PolicyDiff, Region, diff};
pub use shape::{Caller, RequestShape};
pub use suggest::{AuditEvent, Suggestion, read_audit_log, suggest};
pub use who_can::{WhatCan, WhoCan, what_can, who_can};

/// Why an analysis could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AnalysisError {
    /// The request shape is one the enforcement layer rejects before policy runs.
    #[error("invalid request shape: {0}")]
    Shape(String),
    /// A line of an audit log is not an audit event.
    #[error("audit log line {line}: {message}")]
    AuditLog {
        /// 1-based line number.
        line: usize,
        /// Why it was refused.
        message: String,
    },
    /// The suggested policy could not be written as YAML.
    #[error("cannot write the policy as yaml: {0}")]
    Yaml(String),
}
#[cfg(all(test, feature = "yaml"))]
mod tests;
