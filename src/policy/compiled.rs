//! [`Policy`]: a validated, indexed policy, and its evaluation.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::attrs::RequestAttrs;
use super::decision::{Decision, Source, Verdict};
use super::error::PolicyError;
use super::flat::Flat;
use super::index::{ActionIndex, Slices};
use super::matching::{self, LocalTrust, Remote, default_allows, from_matches, request_matches};
use super::model::{Action, DefaultPolicy, PolicySpec, RouteSpec, RuleSpec};
use super::mtls::PeerAuthentication;
use super::request_authn::RequestAuthentication;
use super::validate;
use super::values::{Network, PortRange};
use crate::{Identity, PeerIdentity};

static GENERATION: AtomicU64 = AtomicU64::new(1);

/// A compiled policy: validated rules, a default, and an index that makes a decision
/// cost about the same with 10 rules or 100,000.
///
/// ```
/// use meshless::policy::{Policy, RequestAttrs, Verdict};
/// use meshless::{Identity, SpiffeId};
/// let policy = Policy::from_json(r#"{"local_trust_domains": ["example.org"],
///     "rules": [{"name": "web", "action": "allow",
///     "from": [{"namespaces": ["web"]}], "to": [{"methods": ["GET"]}]}]}"#)?;
/// let id = Identity::from("spiffe://example.org/ns/web/sa/frontend".parse::<SpiffeId>()?);
/// let req = RequestAttrs::connection(Some(&id), None, Some(8443)).with_request("GET", "/");
/// let decision = policy.evaluate(&req);
/// assert_eq!(decision.verdict(), Verdict::Allow);
/// assert_eq!(decision.rule(), "web");
/// let post = RequestAttrs::connection(Some(&id), None, Some(8443)).with_request("POST", "/");
/// assert_eq!(policy.evaluate(&post).rule(), "default:deny");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Policy {
    pub(crate) spec: PolicySpec,
    pub(crate) names: Vec<Arc<str>>,
    index: [ActionIndex; 3],
    /// The per-request half of each rule, packed (by rule id).
    flat: Box<[Flat]>,
    pub(crate) cluster: Vec<Network>,
    default_name: Arc<str>,
    servers: Vec<Server>,
    not_found_name: Arc<str>,
    pub(crate) warnings: Vec<String>,
    /// Manifest documents meant for other workloads, with the reason.
    pub(crate) skipped: Vec<String>,
    /// How many of the first `warnings` are about TCP semantics (the rest are
    /// appended by manifest import).
    tcp_warning_count: usize,
    pub(crate) peer_authentication: Vec<PeerAuthentication>,
    pub(crate) request_authentication: Vec<RequestAuthentication>,
    generation: u64,
}

#[derive(Debug)]
struct Server {
    ports: Vec<PortRange>,
    default: DefaultPolicy,
    default_name: Arc<str>,
    routes: Option<Vec<RouteSpec>>,
}

fn slot(action: Action) -> usize {
    match action {
        Action::Allow => 0,
        Action::Deny => 1,
        Action::Audit => 2,
    }
}

impl Policy {
    /// Validates and compiles a policy.
    ///
    /// # Errors
    ///
    /// [`PolicyError::Invalid`] for duplicate or empty rule names, empty lists,
    /// conditions without values, servers without ports.
    pub fn compile(mut spec: PolicySpec) -> Result<Self, PolicyError> {
        spec.rules.shrink_to_fit();
        let skipped = std::mem::take(&mut spec.skipped);
        let warnings = validate::validate(&spec)?;
        let mut index: [ActionIndex; 3] = Default::default();
        for (i, rule) in spec.rules.iter().enumerate() {
            let id = u32::try_from(i).map_err(|_| PolicyError::invalid("too many rules"))?;
            index[slot(rule.action)].insert(id, rule);
        }
        index.iter_mut().for_each(ActionIndex::finish);
        let cluster = if spec.cluster_networks.is_empty() {
            matching::default_cluster_networks()
        } else {
            spec.cluster_networks.clone()
        };
        let servers = spec
            .servers
            .iter()
            .map(|s| Server {
                ports: s.ports.clone(),
                default: s.default,
                default_name: format!("{}/default:{}", s.name, s.default.as_str()).into(),
                routes: s.routes.clone(),
            })
            .collect();
        // How rules read on TCP connections matters only where the policy decides TCP
        // connections: `ConnectionAuthorizer` repeats these at WARN.
        for w in &warnings {
            tracing::debug!(target: "meshless::policy", "{w}");
        }
        let flat = spec.rules.iter().map(Flat::new).collect();
        Ok(Self {
            flat,
            names: spec
                .rules
                .iter()
                .map(|r| Arc::from(r.name.as_str()))
                .collect(),
            default_name: format!("default:{}", spec.default.as_str()).into(),
            not_found_name: "route-not-found".into(),
            spec,
            index,
            cluster,
            servers,
            tcp_warning_count: warnings.len(),
            warnings,
            skipped,
            peer_authentication: Vec::new(),
            request_authentication: Vec::new(),
            generation: GENERATION.fetch_add(1, Ordering::Relaxed),
        })
    }

    /// A policy that denies everything (no rules, default `deny`).
    pub fn deny_all() -> Self {
        Self::compile(PolicySpec::default())
            .unwrap_or_else(|_| unreachable!("empty policy is valid"))
    }

    /// The policy as written (after import, for Kubernetes manifests).
    pub fn spec(&self) -> &PolicySpec {
        &self.spec
    }

    /// Load-time warnings: rules that cannot match TCP connections, deny rules that
    /// deny more on TCP, manifest fields that cannot be enforced in-process.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The manifest documents that were read but do not apply to this workload
    /// (another namespace, a selector its labels do not match), each with the reason.
    /// They are also listed in [`warnings`](Self::warnings) and by
    /// [`explain`](Self::explain); they never contribute a rule.
    pub fn skipped(&self) -> &[String] {
        &self.skipped
    }

    /// The warnings about rules that read differently on TCP connections.
    pub(crate) fn tcp_warnings(&self) -> &[String] {
        &self.warnings[..self.tcp_warning_count]
    }

    /// The number of rules.
    pub fn rule_count(&self) -> usize {
        self.spec.rules.len()
    }

    /// Whether the policy is in dry-run mode.
    pub fn is_dry_run(&self) -> bool {
        self.spec.dry_run
    }

    /// Istio `PeerAuthentication` objects loaded with the policy, for the transport.
    pub fn peer_authentication(&self) -> &[PeerAuthentication] {
        &self.peer_authentication
    }

    /// Istio `RequestAuthentication` objects loaded with the policy: the JWT issuers
    /// to configure the JWT layer with (see `RequestAuthentication::to_issuers`,
    /// feature `jwt`).
    pub fn request_authentication(&self) -> &[RequestAuthentication] {
        &self.request_authentication
    }

    /// Index entries (rule filings), a measure of the index's size.
    pub fn index_entries(&self) -> usize {
        self.index.iter().map(ActionIndex::entries).sum()
    }

    pub(crate) fn rule(&self, id: u32) -> &RuleSpec {
        &self.spec.rules[id as usize]
    }

    /// The trust domains whose namespaces `from` entries without `trust_domains` name.
    pub(crate) fn local_trust(&self) -> LocalTrust<'_> {
        LocalTrust::of(&self.spec)
    }

    /// Decides on a request (or, with no HTTP attributes, on a TCP connection).
    pub fn evaluate(&self, attrs: &RequestAttrs<'_>) -> Decision {
        self.decide(attrs, None)
    }

    /// Resolves the identity-dependent half of the policy for one connection, to be
    /// reused for every request on it.
    pub fn for_peer(&self, peer: Option<&Identity>, source_ip: Option<IpAddr>) -> PeerRules {
        let local = self.local_trust();
        let lists = std::array::from_fn(|slot| {
            let mut out = Vec::new();
            self.index[slot].peer_slices(peer, |s| {
                out.extend(s.iter().copied().filter(|&id| {
                    from_matches(self.rule(id), local, peer, source_ip, Remote::Later, None)
                }));
            });
            out.sort_unstable();
            out.dedup();
            out.into_boxed_slice()
        });
        PeerRules {
            generation: self.generation,
            lists,
        }
    }

    /// [`for_peer`](Self::for_peer) for a [`PeerIdentity`].
    pub fn for_connection(&self, peer: &PeerIdentity) -> PeerRules {
        self.for_peer(peer.identity(), peer.remote_addr().map(|a| a.ip()))
    }

    fn server_for(&self, port: Option<u16>) -> Option<&Server> {
        let port = port?;
        self.servers
            .iter()
            .find(|s| s.ports.iter().any(|r| r.contains(port)))
    }

    /// `attrs` with the route the request goes to (the one route of its port's server
    /// that ranks first, see [`ServerSpec::routes`](super::ServerSpec::routes));
    /// `None` when that server has routes and none matches (404). A TCP connection,
    /// or a port whose server has no routes, has no route.
    pub(crate) fn routed<'s>(&'s self, attrs: &RequestAttrs<'s>) -> Option<RequestAttrs<'s>> {
        let routes = self.server_for(attrs.port).and_then(|s| s.routes.as_ref());
        match (routes, &attrs.http) {
            (Some(routes), Some(_)) => {
                let r = super::route::select(routes, attrs)?;
                Some(RequestAttrs {
                    route: Some(r.name.as_str()),
                    ..*attrs
                })
            }
            _ => Some(RequestAttrs {
                route: None,
                ..*attrs
            }),
        }
    }

    pub(crate) fn decide(&self, attrs: &RequestAttrs<'_>, peer: Option<&PeerRules>) -> Decision {
        let peer = peer.filter(|p| p.generation == self.generation);
        let server = self.server_for(attrs.port);
        let decision = |verdict, name: &Arc<str>, source, audits| Decision {
            verdict,
            name: name.clone(),
            source,
            audits,
            dry_run: self.spec.dry_run,
        };
        let Some(routed) = self.routed(attrs) else {
            return decision(
                Verdict::NotFound,
                &self.not_found_name,
                Source::NoRoute,
                Vec::new(),
            );
        };
        let attrs = &routed;
        let audits = self.audits(attrs, peer);
        if let Some(id) = self.first(Action::Deny, attrs, peer) {
            return decision(
                Verdict::Deny,
                &self.names[id as usize],
                Source::Rule,
                audits,
            );
        }
        if let Some(id) = self.first(Action::Allow, attrs, peer) {
            return decision(
                Verdict::Allow,
                &self.names[id as usize],
                Source::Rule,
                audits,
            );
        }
        let (default, name) = match server {
            Some(s) => (s.default, &s.default_name),
            None => (self.spec.default, &self.default_name),
        };
        let verdict = if default_allows(default, attrs, &self.cluster) {
            Verdict::Allow
        } else {
            Verdict::Deny
        };
        decision(verdict, name, Source::Default(default), audits)
    }

    /// Visits the cheapest candidate slices for `action`, with the predicate that
    /// decides a candidate.
    fn visit<'s>(
        &'s self,
        action: Action,
        attrs: &RequestAttrs<'_>,
        peer: Option<&'s PeerRules>,
        mut f: impl FnMut(&'s [u32], &dyn Fn(u32) -> bool),
    ) {
        let idx = &self.index[slot(action)];
        let mut by_path = Slices::new();
        let path_cost = match attrs.http {
            Some(h) => {
                idx.path_slices(h.path, |s| by_path.push(s));
                by_path.cost()
            }
            None => usize::MAX,
        };
        if let Some(p) = peer {
            let list = &p.lists[slot(action)];
            if path_cost < list.len() {
                let pred =
                    |id: u32| list.binary_search(&id).is_ok() && self.request_matches(id, attrs);
                by_path.as_slice().iter().for_each(|s| f(s, &pred));
            } else {
                f(list, &|id| self.request_matches(id, attrs));
            }
            return;
        }
        let pred = |id: u32| {
            from_matches(
                self.rule(id),
                self.local_trust(),
                attrs.peer,
                attrs.source_ip,
                Remote::Later,
                None,
            ) && self.request_matches(id, attrs)
        };
        let mut by_peer = Slices::new();
        idx.peer_slices(attrs.peer, |s| by_peer.push(s));
        if path_cost != usize::MAX && (by_peer.overflow || path_cost < by_peer.cost()) {
            by_path.as_slice().iter().for_each(|s| f(s, &pred));
        } else if by_peer.overflow {
            idx.peer_slices(attrs.peer, |s| f(s, &pred));
        } else {
            by_peer.as_slice().iter().for_each(|s| f(s, &pred));
        }
    }

    /// The per-request half of rule `id`: from its packed record when it has one.
    #[inline]
    fn request_matches(&self, id: u32, attrs: &RequestAttrs<'_>) -> bool {
        let packed = attrs.http.as_ref().and_then(|http| {
            self.flat
                .get(id as usize)
                .and_then(|f| f.matches(attrs.port, http))
        });
        packed.unwrap_or_else(|| request_matches(self.rule(id), self.local_trust(), attrs))
    }

    /// The lowest-numbered rule of `action` that matches.
    fn first(
        &self,
        action: Action,
        attrs: &RequestAttrs<'_>,
        peer: Option<&PeerRules>,
    ) -> Option<u32> {
        let mut best: Option<u32> = None;
        self.visit(action, attrs, peer, |slice, pred| {
            for &id in slice {
                if best.is_some_and(|b| id >= b) {
                    break;
                }
                if pred(id) {
                    best = Some(id);
                    break;
                }
            }
        });
        best
    }

    fn audits(&self, attrs: &RequestAttrs<'_>, peer: Option<&PeerRules>) -> Vec<Arc<str>> {
        let mut ids = Vec::new();
        self.visit(Action::Audit, attrs, peer, |slice, pred| {
            ids.extend(slice.iter().copied().filter(|&id| pred(id)));
        });
        ids.sort_unstable();
        ids.dedup();
        ids.into_iter()
            .map(|id| self.names[id as usize].clone())
            .collect()
    }
}

/// The identity-dependent half of a policy for one connection: the rules whose
/// `from` clause matches the peer, resolved once and reused for every request.
/// Request-level `from` fields (`request_principals`) and remote ones
/// (`remote_networks`) are not resolved here (a connection carries requests of many
/// end users, and behind a proxy of many clients): they are checked per request.
///
/// Owned, so it can live in per-connection state. Evaluated against a reloaded
/// policy it is ignored (the decision falls back to a full lookup), so a reload is
/// never bypassed.
#[derive(Debug, Clone)]
pub struct PeerRules {
    generation: u64,
    lists: [Box<[u32]>; 3],
}

impl PeerRules {
    /// Decides on a request on this connection. `attrs` must describe the same peer
    /// and source address this was resolved for.
    pub fn evaluate(&self, policy: &Policy, attrs: &RequestAttrs<'_>) -> Decision {
        policy.decide(attrs, Some(self))
    }

    /// The ids of the rules whose `from` clause matched, of every action (for
    /// `analysis`).
    pub(crate) fn ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.lists.iter().flat_map(|l| l.iter().copied())
    }

    /// True when this was resolved for `policy` (not for an earlier or other one).
    pub(crate) fn is_for(&self, policy: &Policy) -> bool {
        self.generation == policy.generation
    }

    /// How many rules' `from` clauses matched the peer.
    pub fn len(&self) -> usize {
        self.lists.iter().map(|l| l.len()).sum()
    }

    /// True when no rule can match this peer (only defaults apply).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
