//! Authorization policy: who may do what, decided for every request.
//!
//! A policy is a list of rules plus a default. Each rule has an `action` (`allow`,
//! `deny`, `audit`) and up to three clauses that must all match: `from` (peers),
//! `to` (operations) and `when` (conditions). A clause is a list of entries (OR; for
//! `when`, AND as in Istio), an entry a set of fields (AND), a field a list of values
//! (OR), and every field has a `not_` twin. Any matching `deny` denies; else any
//! matching `allow` allows; else the default decides (Linkerd's names: `deny`,
//! `all-authenticated`, `all-unauthenticated`, `cluster-authenticated`,
//! `cluster-unauthenticated`, `audit`). Absent a `default`, meshless denies.
//!
//! The same policy can be written in YAML, TOML or JSON, or imported from the Linkerd
//! and Istio manifests a team already keeps. Loading never panics, and a typo is an
//! error with its line and column, never a silently wider policy; so is a value that
//! could never match (a namespace with a `/`, a trust domain with a path).
//!
//! `namespaces` and `service_accounts` name namespaces of the trust domains the policy
//! declares its own ([`PolicySpec::local_trust_domains`]), unless the entry lists
//! `trust_domains`: `web` of a federated trust domain is not the local `web`.
//!
//! ```
//! # #[cfg(feature = "yaml")] {
//! use meshless::policy::{Policy, RequestAttrs, Verdict};
//! use meshless::{Identity, SpiffeId};
//!
//! let policy = Policy::from_yaml(r#"
//! rules:
//!   - name: frontend-reads-orders
//!     action: allow
//!     from: [{identities: ["spiffe://example.org/ns/web/sa/frontend"]}]
//!     to: [{methods: [GET], paths: ["/orders/*"]}]
//! "#).unwrap();
//! let id = Identity::from("spiffe://example.org/ns/web/sa/frontend".parse::<SpiffeId>().unwrap());
//! let conn = policy.for_peer(Some(&id), None); // once per connection
//! let attrs = RequestAttrs::connection(Some(&id), None, Some(8443));
//! let get = conn.evaluate(&policy, &attrs.with_request("GET", "/orders/7"));
//! assert_eq!((get.verdict(), get.rule()), (Verdict::Allow, "frontend-reads-orders"));
//! let delete = policy.explain(&attrs.with_request("DELETE", "/orders/7"));
//! assert!(delete.to_string().starts_with("decision: deny"));
//! # }
//! ```
//!
//! TCP connections (no HTTP attributes) follow Istio: an `allow` rule that needs HTTP
//! fields (methods, paths, hosts, header or claim conditions, request principals)
//! never matches one, and a `deny` rule
//! ignores those fields and so denies more; [`Policy::warnings`] lists such rules.

mod attrs;
mod claim;
mod compiled;
mod decision;
mod error;
mod explain;
mod flat;
mod forwarded;
mod handle;
#[cfg(feature = "yaml")]
mod import;
mod index;
mod load;
mod matching;
mod model;
mod mtls;
mod normalize;
mod pattern;
mod query;
#[doc(hidden)]
pub mod reference;
mod request_authn;
mod route;
mod validate;
mod values;
mod workload;

pub mod analysis;

#[cfg(all(test, feature = "yaml"))]
mod tests;
#[cfg(all(test, feature = "yaml"))]
mod tests_enduser;
#[cfg(all(test, feature = "yaml"))]
mod tests_istio;
#[cfg(all(test, feature = "yaml"))]
mod tests_linkerd;
#[cfg(all(test, feature = "yaml"))]
mod tests_manifest;
#[cfg(all(test, feature = "yaml"))]
mod tests_trust;

pub use attrs::{HttpAttrs, RequestAttrs};
pub use claim::ClaimPath;
pub use compiled::{PeerRules, Policy};
pub use decision::{Decision, Verdict};
pub use error::{Location, PathError, PolicyError};
pub use explain::Explanation;
pub use forwarded::client_address;
pub use handle::{FileWatcher, PolicyHandle, ReloadCounts};
pub use load::MAX_POLICY_FILE_BYTES;
pub use model::{
    Action, ConditionSpec, DefaultPolicy, List, OperationSpec, PolicySpec, QueryParamMatch,
    RouteMatchSpec, RouteSpec, RuleSpec, ServerSpec, SourceSpec,
};
pub use mtls::{MtlsMode, PeerAuthentication};
pub(crate) use normalize::without_parameters;
pub use normalize::{NormalizedTarget, normalize_host, normalize_path, normalize_target};
pub use pattern::{IdentityPattern, PathPattern, StringMatch};
pub(crate) use query::any_value as query_has_value;
#[cfg(feature = "jwt")]
pub use request_authn::RequestAuthnError;
pub use request_authn::{JwtHeader, JwtRule, RequestAuthentication};
pub use values::{
    AuthorityPattern, Cidr, HeaderNamePattern, HostPattern, MethodPattern, NamespacePattern,
    Network, PortRange, ServiceAccountPattern, TextPattern, TrustDomainName,
};
pub use workload::{WorkloadContext, WorkloadContextError};
