//! [`AccessClass`]: the callers (or requests) one rule admits, minus the parts
//! deny rules take back — built from the search's probes, and tested against a
//! concrete caller or request with the real matching functions.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::super::attrs::RequestAttrs;
use super::super::compiled::Policy;
use super::super::decision::{Decision, Verdict};
use super::super::matching::{
    Remote, default_allows, operation_failure, request_matches, source_failure,
};
use super::super::model::{Action, DefaultPolicy};
use super::describe::{self, CallerKind};
use super::probe::Probe;
use super::space::Live;

/// Which half of a rule a class is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    /// `from` entries: who-can.
    Callers,
    /// `to` entries: what-can.
    Requests,
}

/// A class's origin: a rule's entry, or a default (the policy's, or a server's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Key {
    Rule { id: u32, entry: Option<usize> },
    Default { server: Option<usize> },
}

/// The callers (for `who-can`) or requests (for `what-can`) that one rule — or the
/// default — admits, except what deny rules take back.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct AccessClass {
    /// Who (or what) the class holds, in the policy's words.
    pub members: String,
    /// For callers, what kind of identity the class names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<CallerKind>,
    /// The rule that admits them (`default:<name>` for a default).
    pub rule: String,
    /// Conditions still open (headers or JWT claims the question left unsaid) that
    /// must hold too.
    pub conditions: Vec<String>,
    /// Parts of the class that deny rules take back.
    pub except: Vec<Exception>,
    /// One concrete member.
    pub example: String,
    #[serde(skip)]
    pub(crate) key: Key,
    #[serde(skip)]
    pub(crate) except_keys: Vec<(u32, Option<usize>)>,
}

/// A part of an [`AccessClass`] that a deny rule takes back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Exception {
    /// The part, in the deny rule's words.
    pub members: String,
    /// The deny rule.
    pub rule: String,
    /// The deny rule's conditions (it takes the part back only when they hold).
    pub conditions: Vec<String>,
}

/// A rule that matches: its id, action, and the entries (of one side) that match
/// (`None` for a missing clause).
pub(crate) type RuleMatch = (u32, Action, Vec<Option<usize>>);

/// A class being built: its first member, and the deny entries taken from it.
type Draft = (Option<String>, BTreeSet<(u32, Option<usize>)>);

/// The non-audit rules among `ids` that match `attrs`, each with the entries (of
/// `side`) that match; `None` when the request has no route (404).
pub(crate) fn matches(
    policy: &Policy,
    ids: impl Iterator<Item = u32>,
    attrs: &RequestAttrs<'_>,
    side: Side,
) -> Option<Vec<RuleMatch>> {
    let routed = policy.routed(attrs)?;
    let local = policy.local_trust();
    let mut out = Vec::new();
    for id in ids {
        let rule = policy.rule(id);
        if rule.action == Action::Audit || !request_matches(rule, local, &routed) {
            continue;
        }
        let remote = Remote::of(&routed, rule.action);
        let entries: Vec<Option<usize>> = match side {
            Side::Callers => match &rule.from {
                None => vec![None],
                Some(from) => (0..from.len())
                    .filter(|&i| {
                        let s = &from[i];
                        source_failure(
                            s,
                            local,
                            routed.peer,
                            routed.source_ip,
                            remote,
                            routed.http.as_ref(),
                        )
                        .is_ok()
                    })
                    .map(Some)
                    .collect(),
            },
            Side::Requests => {
                let from_ok = rule.from.as_ref().is_none_or(|from| {
                    from.iter().any(|s| {
                        source_failure(
                            s,
                            local,
                            routed.peer,
                            routed.source_ip,
                            remote,
                            routed.http.as_ref(),
                        )
                        .is_ok()
                    })
                });
                match &rule.to {
                    _ if !from_ok => Vec::new(),
                    None => vec![None],
                    Some(to) => (0..to.len())
                        .filter(|&i| operation_failure(&to[i], &routed).is_ok())
                        .map(Some)
                        .collect(),
                }
            }
        };
        if !entries.is_empty() {
            out.push((id, rule.action, entries));
        }
    }
    Some(out)
}

/// The default that decides requests to `port`: a server's, or the policy's.
pub(crate) fn default_for(policy: &Policy, port: Option<u16>) -> (Option<usize>, DefaultPolicy) {
    let spec = policy.spec();
    let server = port.and_then(|p| {
        spec.servers
            .iter()
            .position(|s| s.ports.iter().any(|r| r.contains(p)))
    });
    match server {
        Some(i) => (Some(i), spec.servers[i].default),
        None => (None, spec.default),
    }
}

/// Collects classes from probes.
pub(crate) struct Builder<'p> {
    policy: &'p Policy,
    side: Side,
    open_headers: bool,
    classes: BTreeMap<Key, Draft>,
}

impl<'p> Builder<'p> {
    pub(crate) fn new(policy: &'p Policy, side: Side, open_headers: bool) -> Self {
        Self {
            policy,
            side,
            open_headers,
            classes: BTreeMap::new(),
        }
    }

    /// Files one probe and its decision.
    pub(crate) fn add(&mut self, probe: &Probe, decision: &Decision, live: &[Live]) {
        let attrs = probe.attrs();
        let ids = live.iter().map(|l| l.id);
        let Some(ms) = matches(self.policy, ids, &attrs, self.side) else {
            return;
        };
        let example = || match self.side {
            Side::Callers => probe.caller().to_string(),
            Side::Requests => probe.request().to_string(),
        };
        let (server, default) = default_for(self.policy, probe.port);
        let default_key = Key::Default { server };
        let allows = |a| ms.iter().filter(move |m| m.1 == a);
        match decision.verdict() {
            Verdict::Allow => {
                for (id, _, entries) in allows(Action::Allow) {
                    for e in entries {
                        let c = self
                            .classes
                            .entry(Key::Rule { id: *id, entry: *e })
                            .or_default();
                        c.0.get_or_insert_with(example);
                    }
                }
                if decision.is_default() {
                    self.classes
                        .entry(default_key)
                        .or_default()
                        .0
                        .get_or_insert_with(example);
                }
            }
            Verdict::Deny if !decision.is_default() => {
                let denies: Vec<(u32, Option<usize>)> = allows(Action::Deny)
                    .flat_map(|(id, _, es)| es.iter().map(move |e| (*id, *e)))
                    .collect();
                let mut keys: Vec<Key> = allows(Action::Allow)
                    .flat_map(|(id, _, es)| {
                        es.iter().map(move |e| Key::Rule { id: *id, entry: *e })
                    })
                    .collect();
                if let Some(routed) = self.policy.routed(&attrs)
                    && default_allows(default, &routed, &self.policy.cluster)
                {
                    keys.push(default_key);
                }
                for k in keys {
                    self.classes
                        .entry(k)
                        .or_default()
                        .1
                        .extend(denies.iter().copied());
                }
            }
            _ => {}
        }
    }

    /// The classes that admit someone.
    pub(crate) fn finish(self) -> Vec<AccessClass> {
        let spec = self.policy.spec();
        let mut out = Vec::new();
        for (key, (example, except)) in &self.classes {
            let (key, except) = (*key, except.clone());
            let Some(example) = example.clone() else {
                continue;
            };
            let (members, kind, rule, conditions) = match key {
                Key::Rule { id, entry } => {
                    let (m, k) = self.entry_words(id, entry);
                    (m, k, self.policy.rule(id).name.clone(), self.conditions(id))
                }
                Key::Default { server } => {
                    let (name, d) = match server {
                        Some(i) => (
                            format!("{}/default:", spec.servers[i].name),
                            spec.servers[i].default,
                        ),
                        None => ("default:".to_owned(), spec.default),
                    };
                    let (mut m, k) = default_words(d, self.side);
                    match server {
                        Some(i) => m.push_str(&format!(" on server `{}`", spec.servers[i].name)),
                        None if !spec.servers.is_empty() => {
                            m.push_str(" on ports no server covers")
                        }
                        None => {}
                    }
                    (m, k, format!("{name}{}", d.as_str()), Vec::new())
                }
            };
            let except_keys: Vec<(u32, Option<usize>)> = except.into_iter().collect();
            let except = except_keys
                .iter()
                .map(|&(id, e)| Exception {
                    members: self.entry_words(id, e).0,
                    rule: self.policy.rule(id).name.clone(),
                    conditions: self.conditions(id),
                })
                .collect();
            out.push(AccessClass {
                members,
                kind,
                rule,
                conditions,
                except,
                example,
                key,
                except_keys,
            });
        }
        out
    }

    fn entry_words(&self, id: u32, entry: Option<usize>) -> (String, Option<CallerKind>) {
        let rule = self.policy.rule(id);
        match self.side {
            Side::Callers => {
                let s = entry.and_then(|e| rule.from.as_ref()?.get(e));
                (
                    describe::source(s, self.policy.spec()),
                    Some(describe::caller_kind(s)),
                )
            }
            Side::Requests => {
                let o = entry.and_then(|e| rule.to.as_ref()?.get(e));
                (describe::operation(o), None)
            }
        }
    }

    /// The conditions of rule `id` that the question left open.
    fn conditions(&self, id: u32) -> Vec<String> {
        let rule = self.policy.rule(id);
        rule.when
            .iter()
            .flatten()
            .filter(|c| match self.side {
                Side::Callers => c.claim.is_some() || self.open_headers,
                Side::Requests => c.header.is_some(),
            })
            .map(describe::condition)
            .collect()
    }
}

/// Who a default admits, in words.
fn default_words(d: DefaultPolicy, side: Side) -> (String, Option<CallerKind>) {
    if side == Side::Requests {
        return ("any request no rule decides".to_owned(), None);
    }
    let (words, kind) = match d {
        DefaultPolicy::AllAuthenticated => ("any authenticated peer", CallerKind::Authenticated),
        DefaultPolicy::ClusterAuthenticated => (
            "any authenticated peer from the cluster networks",
            CallerKind::Networks,
        ),
        DefaultPolicy::ClusterUnauthenticated => {
            ("any peer from the cluster networks", CallerKind::Networks)
        }
        _ => ("any caller", CallerKind::Anyone),
    };
    (format!("{words} no rule decides"), Some(kind))
}

/// Whether `attrs` is in class `c` of `policy`.
pub(crate) fn contains(
    policy: &Policy,
    c: &AccessClass,
    side: Side,
    attrs: &RequestAttrs<'_>,
) -> bool {
    let hit = |id: u32, entry: Option<usize>| {
        matches(policy, std::iter::once(id), attrs, side)
            .is_some_and(|ms| ms.iter().any(|m| m.2.contains(&entry)))
    };
    let inside = match c.key {
        Key::Rule { id, entry } => hit(id, entry),
        Key::Default { server } => {
            let (s, d) = default_for(policy, attrs.port);
            s == server
                && policy
                    .routed(attrs)
                    .is_some_and(|r| default_allows(d, &r, &policy.cluster))
        }
    };
    inside && !c.except_keys.iter().any(|&(id, e)| hit(id, e))
}
