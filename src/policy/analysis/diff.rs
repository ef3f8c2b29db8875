//! `diff`: the access one policy grants or revokes relative to another.

use std::collections::{BTreeMap, HashSet};
use std::fmt;

use serde::Serialize;

use super::super::attrs::RequestAttrs;
use super::super::compiled::Policy;
use super::super::decision::{Decision, Verdict};
use super::super::model::{DefaultPolicy, PolicySpec, RuleSpec};
use super::classes::{Side, matches};
use super::describe;
use super::probe::Probe;
use super::search::Search;
use super::space::Live;

/// Whether a region's requests gain or lose access.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    /// The old policy denies them, the new one allows them.
    Granted,
    /// The old policy allows them, the new one denies them.
    Revoked,
}

/// Where a region comes from: an entry pair of a rule only one policy has, or
/// settings (defaults, servers, trust domains) that changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Origin {
    Rule {
        new: bool,
        id: u32,
        from: Option<usize>,
        to: Option<usize>,
    },
    Settings,
}

/// A set of requests whose decision changed one way: the callers of one `from`
/// entry times the requests of one `to` entry of a rule only one of the policies
/// has (or, when settings changed, the requests they decide), with one example
/// that changed.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Region {
    /// Granted or revoked.
    pub change: Change,
    /// The rule (``rule `x` of the new policy``) or the settings behind it.
    pub cause: String,
    /// The callers, in the rule's words.
    pub callers: String,
    /// The requests, in the rule's words.
    pub requests: String,
    /// The rule's conditions (on headers and claims).
    pub conditions: Vec<String>,
    /// A request of the region whose decision changed.
    pub example: Example,
    #[serde(skip)]
    origin: Origin,
}

/// A concrete request and how each policy decides it.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Example {
    /// The caller.
    pub caller: String,
    /// The request.
    pub request: String,
    /// The old policy's decision.
    pub old: String,
    /// The new policy's decision.
    pub new: String,
}

/// The access granted and revoked between two policies: see [`diff`].
#[derive(Debug, Clone, Serialize)]
pub struct PolicyDiff<'p> {
    #[serde(skip)]
    old: &'p Policy,
    #[serde(skip)]
    new: &'p Policy,
    granted: usize,
    revoked: usize,
    regions: Vec<Region>,
}

/// The access `new` grants and revokes relative to `old`, as regions of
/// identity class × request shape, each with an example whose decision changed.
///
/// Exact: a region is reported exactly when some request in it is decided
/// differently (its example is one), and every request the two policies decide
/// differently is in a reported region of its direction. Only rules one policy has
/// and the other has not (compared without their names) can change a decision, so
/// the search looks only where such a rule may match — unless the settings
/// (defaults, servers, trust domains, cluster networks) changed too.
pub fn diff<'p>(old: &'p Policy, new: &'p Policy) -> PolicyDiff<'p> {
    let settings_changed = settings(old.spec()) != settings(new.spec());
    let focus = [changed(old, new), changed(new, old)];
    let search = Search {
        focus: (!settings_changed).then(|| focus.to_vec()),
        ..Search::new(vec![old, new])
    };
    let mut found: BTreeMap<(Change, Origin), Example> = BTreeMap::new();
    search.run(&mut |probe, decisions, live| {
        let allowed = |d: &Decision| d.verdict() == Verdict::Allow;
        let change = match (allowed(&decisions[0]), allowed(&decisions[1])) {
            (false, true) => Change::Granted,
            (true, false) => Change::Revoked,
            _ => return,
        };
        let origins = origins(&[old, new], &focus, probe, live);
        let example = || Example {
            caller: probe.caller().to_string(),
            request: probe.request().to_string(),
            old: decisions[0].to_string(),
            new: decisions[1].to_string(),
        };
        for origin in origins {
            found.entry((change, origin)).or_insert_with(example);
        }
    });
    let regions: Vec<Region> = found
        .into_iter()
        .map(|((change, origin), example)| region(old, new, change, origin, example))
        .collect();
    let granted = regions
        .iter()
        .filter(|r| r.change == Change::Granted)
        .count();
    PolicyDiff {
        old,
        new,
        granted,
        revoked: regions.len() - granted,
        regions,
    }
}

/// What decides requests besides the rules.
fn settings(spec: &PolicySpec) -> String {
    serde_json::json!([
        spec.default,
        spec.cluster_networks,
        spec.local_trust_domains,
        spec.namespaces_in_any_trust_domain,
        spec.servers,
    ])
    .to_string()
}

/// A rule as compared: everything but its name.
fn content(rule: &RuleSpec) -> String {
    let mut r = rule.clone();
    r.name.clear();
    serde_json::to_string(&r).unwrap_or_default()
}

/// The rules of `a` that `b` does not have.
fn changed(a: &Policy, b: &Policy) -> HashSet<u32> {
    let theirs: HashSet<String> = b.spec().rules.iter().map(content).collect();
    (0..a.rule_count() as u32)
        .filter(|&id| !theirs.contains(&content(a.rule(id))))
        .collect()
}

/// The changed rules' entry pairs that match the probe; settings when none does.
fn origins(
    policies: &[&Policy; 2],
    focus: &[HashSet<u32>; 2],
    probe: &Probe,
    live: &[Live],
) -> Vec<Origin> {
    let attrs = probe.attrs();
    let mut out = Vec::new();
    for (k, policy) in policies.iter().enumerate() {
        let ids = live
            .iter()
            .filter(|l| usize::from(l.policy) == k && focus[k].contains(&l.id))
            .map(|l| l.id);
        for (id, from, to) in entry_pairs(policy, ids, &attrs) {
            out.push(Origin::Rule {
                new: k == 1,
                id,
                from,
                to,
            });
        }
    }
    if out.is_empty() {
        out.push(Origin::Settings);
    }
    out
}

/// The rules among `ids` that match, each with every (`from`, `to`) entry pair
/// that does.
fn entry_pairs(
    policy: &Policy,
    ids: impl Iterator<Item = u32> + Clone,
    attrs: &RequestAttrs<'_>,
) -> Vec<(u32, Option<usize>, Option<usize>)> {
    let froms = matches(policy, ids.clone(), attrs, Side::Callers).unwrap_or_default();
    let tos = matches(policy, ids, attrs, Side::Requests).unwrap_or_default();
    let mut out = Vec::new();
    for (id, _, fs) in &froms {
        for (_, _, ts) in tos.iter().filter(|t| t.0 == *id) {
            for f in fs {
                out.extend(ts.iter().map(|t| (*id, *f, *t)));
            }
        }
    }
    out
}

fn region(old: &Policy, new: &Policy, change: Change, origin: Origin, example: Example) -> Region {
    let (cause, callers, requests, conditions) = match origin {
        Origin::Rule {
            new: is_new,
            id,
            from,
            to,
        } => {
            let policy = if is_new { new } else { old };
            let rule = policy.rule(id);
            let which = if is_new {
                "added in the new policy"
            } else {
                "removed from the old policy"
            };
            (
                format!("rule `{}` ({which})", rule.name),
                describe::source(from.and_then(|i| rule.from.as_ref()?.get(i)), policy.spec()),
                describe::operation(to.and_then(|i| rule.to.as_ref()?.get(i))),
                rule.when
                    .iter()
                    .flatten()
                    .map(describe::condition)
                    .collect(),
            )
        }
        Origin::Settings => (
            settings_words(old.spec(), new.spec()),
            settings_callers(old.spec(), new.spec(), change),
            settings_requests(old.spec(), new.spec()),
            Vec::new(),
        ),
    };
    Region {
        change,
        cause,
        callers,
        requests,
        conditions,
        example,
        origin,
    }
}

/// Which requests the changed settings decide, in words.
fn settings_requests(old: &PolicySpec, new: &PolicySpec) -> String {
    let words = match (old.servers == new.servers, new.servers.is_empty()) {
        (false, _) => "requests no rule decides, or to a changed server",
        (true, false) => "requests no rule decides, on ports no server covers",
        (true, true) => "requests no rule decides",
    };
    words.to_owned()
}

/// Who the changed defaults let in, in words.
fn settings_callers(old: &PolicySpec, new: &PolicySpec, change: Change) -> String {
    let d = match change {
        Change::Granted => new.default,
        Change::Revoked => old.default,
    };
    match (old.default == new.default, d) {
        (true, _) => "callers the changed settings decide".to_owned(),
        (false, DefaultPolicy::AllAuthenticated) => "any authenticated peer".to_owned(),
        (false, DefaultPolicy::ClusterAuthenticated) => {
            "any authenticated peer from the cluster networks".to_owned()
        }
        (false, DefaultPolicy::ClusterUnauthenticated) => {
            "any peer from the cluster networks".to_owned()
        }
        (false, _) => "any caller".to_owned(),
    }
}

/// The changed settings, in words.
fn settings_words(old: &PolicySpec, new: &PolicySpec) -> String {
    let mut parts = Vec::new();
    if old.default != new.default {
        parts.push(format!(
            "default {} → {}",
            old.default.as_str(),
            new.default.as_str()
        ));
    }
    if old.servers != new.servers {
        parts.push("servers (ports, defaults or routes)".to_owned());
    }
    if old.local_trust_domains != new.local_trust_domains
        || old.namespaces_in_any_trust_domain != new.namespaces_in_any_trust_domain
    {
        parts.push("trust domains of namespaces".to_owned());
    }
    if old.cluster_networks != new.cluster_networks {
        parts.push("cluster networks".to_owned());
    }
    format!("settings: {}", parts.join(", "))
}

impl PolicyDiff<'_> {
    /// The regions, granted first.
    pub fn regions(&self) -> &[Region] {
        &self.regions
    }

    /// Whether the new policy allows anything the old one denies.
    pub fn widens(&self) -> bool {
        self.granted > 0
    }

    /// Whether `attrs` lies in `region`.
    pub fn contains(&self, region: &Region, attrs: &RequestAttrs<'_>) -> bool {
        match region.origin {
            Origin::Settings => true,
            Origin::Rule { new, id, from, to } => {
                let policy = if new { self.new } else { self.old };
                entry_pairs(policy, std::iter::once(id), attrs).contains(&(id, from, to))
            }
        }
    }
}

impl fmt::Display for PolicyDiff<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} granted, {} revoked", self.granted, self.revoked)?;
        for r in &self.regions {
            let sign = match r.change {
                Change::Granted => "+ granted",
                Change::Revoked => "- revoked",
            };
            writeln!(f, "{sign}: {}", r.cause)?;
            writeln!(f, "    callers:  {}", r.callers)?;
            writeln!(f, "    requests: {}", r.requests)?;
            for c in &r.conditions {
                writeln!(f, "    when {c}")?;
            }
            let e = &r.example;
            writeln!(f, "    e.g. {}: {}", e.caller, e.request)?;
            writeln!(f, "         old: {}; new: {}", e.old, e.new)?;
        }
        Ok(())
    }
}
