//! Prometheus / OpenMetrics counters for authorization decisions, TLS handshakes and
//! reloads.
//!
//! Names follow Linkerd's where Linkerd has one (`inbound_http_authz_allow_total`,
//! `inbound_http_authz_deny_total`, `inbound_http_route_not_found_total`,
//! `inbound_tcp_authz_allow_total`, `inbound_tcp_authz_deny_total`,
//! `inbound_tcp_authz_terminate_total`). Labels are bounded: the deciding rule's name
//! (bounded by the policy), `tls` (`true`/`false`), and for handshakes a short reason
//! from a fixed set. Raw paths and client identities are never labels.
//!
//! ```
//! use meshless::metrics::{Metrics, ReloadKind};
//! let metrics = Metrics::new(); // components count into Metrics::global() by default
//! metrics.reload(ReloadKind::Policy, true);
//! let text = metrics.render();
//! assert!(text.contains(r#"meshless_reloads_total{kind="policy",result="success"} 1"#));
//! assert!(text.ends_with("# EOF\n"));
//! ```

use std::fmt::Write as _;
use std::sync::{Arc, OnceLock};

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

/// The content type of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A label value shared with the policy (rule names are reference-counted there), so
/// counting a decision does not allocate.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct Name(Arc<str>);

impl EncodeLabelValue for Name {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> std::fmt::Result {
        encoder.write_str(&self.0)
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AuthzLabels {
    authz: Name,
    tls: bool,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HandshakeLabels {
    result: &'static str,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReloadLabels {
    kind: &'static str,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RejectLabels {
    reason: &'static str,
}

/// What a reload reloaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReloadKind {
    /// An authorization policy.
    Policy,
    /// TLS material: our SVID, trust bundles, CRLs.
    Certificates,
}

/// The counters of one meshless deployment, and the registry that renders them.
///
/// Components count into [`Metrics::global`] unless given another instance.
pub struct Metrics {
    registry: Registry,
    http_allow: Family<AuthzLabels, Counter>,
    http_deny: Family<AuthzLabels, Counter>,
    http_not_found: Family<AuthzLabels, Counter>,
    http_rejected: Family<RejectLabels, Counter>,
    tcp_allow: Family<AuthzLabels, Counter>,
    tcp_deny: Family<AuthzLabels, Counter>,
    tcp_terminate: Family<AuthzLabels, Counter>,
    handshakes: Family<HandshakeLabels, Counter>,
    reloads: Family<ReloadLabels, Counter>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh set of counters with its own registry.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let mut family = |name: &str, help: &str| {
            let f = Family::default();
            registry.register(name, help, f.clone());
            f
        };
        let http_allow = family(
            "inbound_http_authz_allow",
            "HTTP requests allowed by policy",
        );
        let http_deny = family("inbound_http_authz_deny", "HTTP requests denied by policy");
        let http_not_found = family(
            "inbound_http_route_not_found",
            "HTTP requests that matched no route of a route-scoped server",
        );
        let tcp_allow = family(
            "inbound_tcp_authz_allow",
            "TCP connections allowed by policy",
        );
        let tcp_deny = family("inbound_tcp_authz_deny", "TCP connections denied by policy");
        let tcp_terminate = family(
            "inbound_tcp_authz_terminate",
            "open TCP connections closed because a policy change no longer allows them",
        );
        let http_rejected = Family::default();
        registry.register(
            "inbound_http_rejected",
            "HTTP requests rejected before policy ran (bad path or host, missing identity)",
            http_rejected.clone(),
        );
        let handshakes = Family::default();
        registry.register(
            "inbound_tls_handshakes",
            "inbound mTLS handshakes by result and reason",
            handshakes.clone(),
        );
        let reloads = Family::default();
        registry.register(
            "meshless_reloads",
            "policy and certificate reloads by result",
            reloads.clone(),
        );
        Self {
            registry,
            http_allow,
            http_deny,
            http_not_found,
            http_rejected,
            tcp_allow,
            tcp_deny,
            tcp_terminate,
            handshakes,
            reloads,
        }
    }

    /// The process-wide instance every component uses by default.
    pub fn global() -> &'static Arc<Metrics> {
        static GLOBAL: OnceLock<Arc<Metrics>> = OnceLock::new();
        GLOBAL.get_or_init(|| Arc::new(Metrics::new()))
    }

    /// The registry, to add these counters' text to a larger exposition or to
    /// register more metrics beside them.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Renders every counter in OpenMetrics text (serve it with [`CONTENT_TYPE`]).
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// An HTTP response carrying [`render`](Self::render)'s text, for a `/metrics` route.
    pub fn response(&self) -> http::Response<String> {
        let mut res = http::Response::new(self.render());
        res.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static(CONTENT_TYPE),
        );
        res
    }

    pub(crate) fn http_decision(&self, outcome: HttpOutcome, rule: &Arc<str>, tls: bool) {
        let labels = AuthzLabels {
            authz: Name(rule.clone()),
            tls,
        };
        let family = match outcome {
            HttpOutcome::Allow => &self.http_allow,
            HttpOutcome::NotFound => &self.http_not_found,
            HttpOutcome::Deny => &self.http_deny,
        };
        family.get_or_create(&labels).inc();
    }

    pub(crate) fn http_rejected(&self, reason: &'static str) {
        self.http_rejected
            .get_or_create(&RejectLabels { reason })
            .inc();
    }

    pub(crate) fn tcp_decision(&self, allowed: bool, rule: &Arc<str>, tls: bool) {
        let labels = AuthzLabels {
            authz: Name(rule.clone()),
            tls,
        };
        let family = if allowed {
            &self.tcp_allow
        } else {
            &self.tcp_deny
        };
        family.get_or_create(&labels).inc();
    }

    pub(crate) fn tcp_terminated(&self, rule: &Arc<str>, tls: bool) {
        let labels = AuthzLabels {
            authz: Name(rule.clone()),
            tls,
        };
        self.tcp_terminate.get_or_create(&labels).inc();
    }

    /// Counts an inbound handshake; `reason` is `"ok"` for a success, else a short
    /// label such as [`TlsError::reason`](crate::TlsError::reason) returns.
    pub fn handshake(&self, result: Result<(), &'static str>) {
        let labels = match result {
            Ok(()) => HandshakeLabels {
                result: "success",
                reason: "ok",
            },
            Err(reason) => HandshakeLabels {
                result: "failure",
                reason,
            },
        };
        self.handshakes.get_or_create(&labels).inc();
    }

    /// Counts a reload attempt.
    pub fn reload(&self, kind: ReloadKind, ok: bool) {
        let labels = ReloadLabels {
            kind: match kind {
                ReloadKind::Policy => "policy",
                ReloadKind::Certificates => "certificates",
            },
            result: if ok { "success" } else { "failure" },
        };
        self.reloads.get_or_create(&labels).inc();
    }
}

/// Which counter an HTTP authorization decision goes to (Linkerd's families).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HttpOutcome {
    /// `inbound_http_authz_allow_total`.
    Allow,
    /// `inbound_http_authz_deny_total`.
    Deny,
    /// `inbound_http_route_not_found_total`.
    NotFound,
}
