//! The exhaustive search: every class of requests, one concrete [`Probe`] each,
//! decided by the real engine.
//!
//! The attributes are fixed one after the other: the peer and its address, the
//! client's address, the port, TCP or the method, the JWT principal, the path, the
//! host, the query, the headers, the claims. At each step the candidates are one
//! value per class of the patterns that the rules *still possible* (some entry of
//! each clause not yet failed) and the port's routes hold against that attribute;
//! the rest cannot tell values apart, so one value per class reaches every
//! decision the policies can make. A rule is dropped as soon as a clause cannot
//! match, which keeps the search to the rules near each caller: with 100,000
//! rules, a peer typically leaves a handful.
//!
//! Which rules are possible is only a filter: every probe is decided by
//! [`Policy::evaluate`], so a wrong filter could only miss a class, never report a
//! wrong decision, and the property tests check that none is missed.

use std::collections::HashSet;
use std::net::IpAddr;

use super::super::compiled::Policy;
use super::super::decision::Decision;
use super::super::matching::{Remote, condition_holds, needs_http, source_failure};
use super::super::model::{Action, RuleSpec, SourceSpec};
use super::nets::Addresses;
use super::peers::PeerAtoms;
use super::probe::Probe;
use super::requests::RequestAtoms;
use super::shape::{Caller, RequestShape};
use super::space::{Live, Step, route_signature};

/// What a search explores, and what it is told.
pub(crate) struct Search<'p> {
    pub(crate) policies: Vec<&'p Policy>,
    /// A fixed caller (`what-can`), else every class of callers.
    pub(crate) caller: Option<&'p Caller>,
    /// A fixed request (`who-can`), else every class of requests.
    pub(crate) shape: Option<&'p RequestShape>,
    /// Per policy, the rules worth a look (`None`: all).
    pub(crate) rules: Vec<Option<Vec<u32>>>,
    /// Per policy, the rules that changed (`diff`): a branch where none of them is
    /// possible decides alike in both policies and is skipped.
    pub(crate) focus: Option<Vec<HashSet<u32>>>,
}

/// Called with each probe and its decisions (one per policy) and the rules still
/// possible for it.
pub(crate) type Visit<'v> = dyn FnMut(&Probe, &[Decision], &[Live]) + 'v;

impl<'p> Search<'p> {
    /// A search of `policies`, with nothing fixed.
    pub(crate) fn new(policies: Vec<&'p Policy>) -> Self {
        let rules = vec![None; policies.len()];
        Self {
            policies,
            caller: None,
            shape: None,
            rules,
            focus: None,
        }
    }

    fn rule(&self, l: &Live) -> &'p RuleSpec {
        self.policies[usize::from(l.policy)].rule(l.id)
    }

    /// The rules of policy `p` worth a look.
    fn candidates(&self, p: usize) -> Box<dyn Iterator<Item = u32> + '_> {
        match &self.rules[p] {
            Some(ids) => Box::new(ids.iter().copied()),
            None => Box::new(0..self.policies[p].rule_count() as u32),
        }
    }

    /// Runs the search.
    pub(crate) fn run(&self, visit: &mut Visit<'_>) {
        let mut seen = HashSet::new();
        for (peer, ip) in self.callers() {
            let mut probe = Probe {
                peer,
                source_ip: ip,
                remote_ip: ip,
                ..Probe::default()
            };
            let live = self.peer_rules(&probe);
            // Two callers with the same rules (and entries) still possible, the same
            // standing with the defaults and, when rules read the client's address,
            // the same address, decide every request alike.
            if self.in_focus(&live) && seen.insert(self.caller_key(&probe, &live)) {
                self.step(Step::Remote, &mut probe, &live, visit);
            }
        }
    }

    /// What the rest of the search depends on, of a caller.
    fn caller_key(&self, probe: &Probe, live: &[Live]) -> (Vec<Live>, Vec<bool>, Option<IpAddr>) {
        let defaults = self
            .policies
            .iter()
            .map(|p| {
                probe
                    .source_ip
                    .is_some_and(|ip| p.cluster.iter().any(|n| n.contains(ip)))
            })
            .chain(std::iter::once(probe.peer.is_some()))
            .collect();
        let remote = live
            .iter()
            .any(|l| {
                self.rule(l)
                    .from
                    .iter()
                    .flatten()
                    .any(SourceSpec::has_remote_fields)
            })
            .then_some(probe.source_ip)
            .flatten();
        (live.to_vec(), defaults, remote)
    }

    /// The callers: the fixed one, or one per class of the rules' peer fields.
    fn callers(&self) -> Vec<(Option<crate::Identity>, Option<IpAddr>)> {
        if let Some(c) = self.caller {
            return vec![(c.peer.clone(), c.source_ip)];
        }
        let mut peers = PeerAtoms::default();
        let mut nets = Addresses::default();
        for (p, policy) in self.policies.iter().enumerate() {
            peers.add_policy(policy.spec());
            if uses_cluster(policy) {
                policy.cluster.iter().for_each(|n| nets.add(n));
            }
            for id in self.candidates(p) {
                for s in policy.rule(id).from.iter().flatten() {
                    peers.add(s);
                    s.networks
                        .iter()
                        .chain(&s.not_networks)
                        .flatten()
                        .for_each(|n| nets.add(n));
                }
            }
        }
        let ips = nets.representatives(true);
        let mut out = Vec::new();
        for peer in peers.representatives() {
            out.extend(ips.iter().map(|ip| (peer.clone(), *ip)));
        }
        out
    }

    /// The rules whose `from` can still match the peer and its address.
    fn peer_rules(&self, probe: &Probe) -> Vec<Live> {
        let mut out = Vec::new();
        for (p, policy) in self.policies.iter().enumerate() {
            let local = policy.local_trust();
            let push = |id: u32, out: &mut Vec<Live>| {
                let rule = policy.rule(id);
                if rule.action == Action::Audit {
                    return;
                }
                let ok = |s: &SourceSpec| {
                    source_failure(
                        s,
                        local,
                        probe.peer.as_ref(),
                        probe.source_ip,
                        Remote::Later,
                        None,
                    )
                    .is_ok()
                };
                if let Some(l) = Live::new(p, id, rule).keep_from(rule, ok) {
                    out.push(l);
                }
            };
            match &self.rules[p] {
                Some(ids) if ids.len() <= 512 => ids.iter().for_each(|&id| push(id, &mut out)),
                Some(ids) => {
                    let wanted: HashSet<u32> = ids.iter().copied().collect();
                    let found = policy.for_peer(probe.peer.as_ref(), probe.source_ip);
                    found
                        .ids()
                        .filter(|id| wanted.contains(id))
                        .for_each(|id| push(id, &mut out));
                }
                None => {
                    let found = policy.for_peer(probe.peer.as_ref(), probe.source_ip);
                    found.ids().for_each(|id| push(id, &mut out));
                }
            }
        }
        out
    }

    fn in_focus(&self, live: &[Live]) -> bool {
        self.focus.as_ref().is_none_or(|f| {
            live.iter()
                .any(|l| f[usize::from(l.policy)].contains(&l.id))
        })
    }

    /// Fixes the attribute of `step` to each candidate in turn, and goes on.
    fn step(&self, step: Step, probe: &mut Probe, live: &[Live], visit: &mut Visit<'_>) {
        if step == Step::Done {
            let attrs = probe.attrs();
            let decisions: Vec<Decision> =
                self.policies.iter().map(|p| p.evaluate(&attrs)).collect();
            visit(probe, &decisions, live);
            return;
        }
        let next = step.next();
        if probe.http.is_none() && step.is_http_only() {
            return self.step(next, probe, live, visit);
        }
        let atoms = self.atoms(step, probe, live);
        let mut seen = HashSet::new();
        for value in self.values(step, probe, &atoms) {
            value.apply(probe);
            let kept: Vec<Live> = live
                .iter()
                .filter_map(|l| self.keep(step, probe, *l))
                .collect();
            // Values that leave the same rules and entries possible and that the
            // routes (or conditions) cannot tell apart decide every request alike.
            if self.in_focus(&kept)
                && seen.insert((self.signature(step, probe, &kept), kept.clone()))
            {
                self.step(next, probe, &kept, visit);
            }
        }
    }

    /// What the port's routes, the defaults or the conditions see of the value of
    /// `step` in `probe`.
    fn signature(&self, step: Step, probe: &Probe, live: &[Live]) -> Vec<bool> {
        let token = probe.http.as_ref().is_some_and(|h| h.principal.is_some());
        let mut key = vec![probe.http.is_some(), token];
        if matches!(step, Step::Headers | Step::Claims) {
            key.extend(self.condition_key(probe, live));
        }
        let attrs = probe.attrs();
        for policy in &self.policies {
            let spec = policy.spec();
            for server in &spec.servers {
                let here = probe
                    .port
                    .is_some_and(|p| server.ports.iter().any(|r| r.contains(p)));
                if step == Step::Port {
                    key.push(here);
                    continue;
                }
                for route in server.routes.iter().flatten().filter(|_| here) {
                    key.extend(route_signature(step, route, &attrs));
                }
            }
        }
        key
    }

    /// Which conditions (of the rules still possible, and of the routes' header
    /// matches) hold for `probe`.
    fn condition_key(&self, probe: &Probe, live: &[Live]) -> Vec<bool> {
        let attrs = probe.attrs();
        let Some(http) = attrs.http else {
            return Vec::new();
        };
        let mut key = Vec::new();
        for l in live {
            let rule = self.rule(l);
            let conds = rule.when.iter().flatten();
            key.extend(conds.map(|c| condition_holds(c, &http, rule.action)));
        }
        for policy in &self.policies {
            let routes = policy
                .spec()
                .servers
                .iter()
                .flat_map(|s| s.routes.iter().flatten());
            for m in routes.flat_map(|r| &r.matches) {
                key.extend(
                    m.headers
                        .iter()
                        .map(|c| condition_holds(c, &http, Action::Allow)),
                );
            }
        }
        key
    }

    /// What the still-possible rules and the port's routes look at.
    fn atoms(&self, step: Step, probe: &Probe, live: &[Live]) -> RequestAtoms {
        let mut atoms = RequestAtoms::default();
        let mut nets = Addresses::default();
        for l in live {
            let rule = self.rule(l);
            for s in l.froms(rule) {
                atoms.add_source(s);
                s.remote_networks
                    .iter()
                    .chain(&s.not_remote_networks)
                    .flatten()
                    .for_each(|n| nets.add(n));
            }
            l.tos(rule).for_each(|o| atoms.add_operation(o));
            rule.when
                .iter()
                .flatten()
                .for_each(|c| atoms.add_condition(c));
        }
        for policy in &self.policies {
            for server in &policy.spec().servers {
                server.ports.iter().for_each(|r| atoms.add_ports(r));
                let here = probe
                    .port
                    .is_some_and(|p| server.ports.iter().any(|r| r.contains(p)));
                if here || step == Step::Port {
                    server
                        .routes
                        .iter()
                        .flatten()
                        .for_each(|r| atoms.add_route(r));
                }
            }
        }
        atoms.set_remote(nets);
        atoms
    }

    /// The candidates of `step`: the fixed value, or one per class.
    fn values(&self, step: Step, probe: &Probe, atoms: &RequestAtoms) -> Vec<super::space::Value> {
        super::space::values(step, self.caller, self.shape, probe, atoms)
    }

    /// `l` with the entries that fail at `step` dropped; `None` once a clause
    /// cannot match.
    fn keep(&self, step: Step, probe: &Probe, l: Live) -> Option<Live> {
        let rule = self.rule(&l);
        let policy = self.policies[usize::from(l.policy)];
        let local = policy.local_trust();
        let attrs = probe.attrs();
        match step {
            Step::Remote => {
                let remote = Remote::of(&attrs, rule.action);
                l.keep_from(rule, |s| {
                    source_failure(s, local, probe.peer.as_ref(), probe.source_ip, remote, None)
                        .is_ok()
                })
            }
            Step::Principal => l.keep_from(rule, |s| {
                let remote = Remote::of(&attrs, rule.action);
                source_failure(
                    s,
                    local,
                    probe.peer.as_ref(),
                    probe.source_ip,
                    remote,
                    attrs.http.as_ref(),
                )
                .is_ok()
            }),
            Step::Method if probe.http.is_none() => {
                (rule.action == Action::Deny || !needs_http(rule)).then_some(l)
            }
            Step::Port | Step::Method | Step::Path | Step::Host => {
                l.keep_to(rule, |o| super::space::operation_holds(o, step, probe))
            }
            Step::Headers | Step::Claims => {
                let http = attrs.http?;
                let header = step == Step::Headers;
                let holds = rule.when.iter().flatten().all(|c| {
                    c.header.is_some() != header || condition_holds(c, &http, rule.action)
                });
                holds.then_some(l)
            }
            Step::Query | Step::Done => Some(l),
        }
    }
}

/// Whether a default of `policy` (its own or a server's) reads the cluster networks.
fn uses_cluster(policy: &Policy) -> bool {
    use super::super::model::DefaultPolicy::{ClusterAuthenticated, ClusterUnauthenticated};
    let spec = policy.spec();
    std::iter::once(spec.default)
        .chain(spec.servers.iter().map(|s| s.default))
        .any(|d| matches!(d, ClusterAuthenticated | ClusterUnauthenticated))
}
