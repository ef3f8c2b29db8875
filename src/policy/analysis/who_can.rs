//! `who-can` (the callers a request admits) and `what-can` (the requests a caller
//! may make).

use std::fmt;

use serde::Serialize;

use super::super::compiled::Policy;
use super::super::matching::{condition_holds, needs_http};
use super::super::model::{Action, RuleSpec};
use super::classes::{self, AccessClass, Builder, Side};
use super::probe::Probe;
use super::search::Search;
use super::shape::{Caller, RequestShape};
use super::space::{Step, operation_holds};

/// The callers a policy lets make one request: see [`who_can`].
#[derive(Debug, Clone, Serialize)]
pub struct WhoCan<'p> {
    #[serde(skip)]
    policy: &'p Policy,
    #[serde(skip)]
    shape: RequestShape,
    request: String,
    classes: Vec<AccessClass>,
}

/// The callers `policy` lets make the request `shape`, as classes of identities
/// (exact IDs, identity patterns, namespaces, service accounts, trust domains, any
/// authenticated peer, unauthenticated peers from some networks, JWT principals),
/// each with the rule that admits it, the conditions left open (headers not in
/// `shape`, JWT claims), and the parts deny rules take back.
///
/// Exact: [`WhoCan::admits`] holds for a caller exactly when
/// [`Policy::evaluate`] allows its request (with the shape's headers).
pub fn who_can<'p>(policy: &'p Policy, shape: &RequestShape) -> WhoCan<'p> {
    let rules = rules_for(policy, shape);
    let search = Search {
        shape: Some(shape),
        rules: vec![Some(rules)],
        ..Search::new(vec![policy])
    };
    let mut builder = Builder::new(policy, Side::Callers, !shape.headers_given);
    search.run(&mut |probe, decisions, live| builder.add(probe, &decisions[0], live));
    WhoCan {
        policy,
        shape: shape.clone(),
        request: shape.to_string(),
        classes: builder.finish(),
    }
}

/// The non-audit rules whose `to` and `when` can hold for `shape`.
fn rules_for(policy: &Policy, shape: &RequestShape) -> Vec<u32> {
    let probe = Probe {
        port: shape.port,
        http: shape.http.clone(),
        ..Probe::default()
    };
    let steps: &[Step] = match &shape.http {
        Some(_) => &[Step::Port, Step::Method, Step::Path, Step::Host],
        None => &[Step::Port],
    };
    let attrs = probe.attrs();
    let fits = |rule: &RuleSpec| {
        if rule.action == Action::Audit
            || (attrs.http.is_none() && rule.action == Action::Allow && needs_http(rule))
        {
            return false;
        }
        let to = rule.to.as_ref().is_none_or(|to| {
            to.iter()
                .any(|o| steps.iter().all(|s| operation_holds(o, *s, &probe)))
        });
        let when = match (&attrs.http, shape.headers_given) {
            (Some(http), true) => rule
                .when
                .iter()
                .flatten()
                .all(|c| c.header.is_none() || condition_holds(c, http, rule.action)),
            _ => true,
        };
        to && when
    };
    (0..policy.rule_count() as u32)
        .filter(|&id| fits(policy.rule(id)))
        .collect()
}

impl WhoCan<'_> {
    /// The classes of callers admitted.
    pub fn classes(&self) -> &[AccessClass] {
        &self.classes
    }

    /// Whether `caller` is in one of the classes: exactly when the policy allows
    /// `caller` the request (with the shape's headers, none when left open).
    pub fn admits(&self, caller: &Caller) -> bool {
        let probe = combine(&self.shape, caller);
        let attrs = probe.attrs();
        self.classes
            .iter()
            .any(|c| classes::contains(self.policy, c, Side::Callers, &attrs))
    }
}

/// The request of `shape` made by `caller`.
pub(crate) fn combine(shape: &RequestShape, caller: &Caller) -> Probe {
    let mut http = shape.http.clone();
    if let Some(h) = &mut http {
        h.principal.clone_from(&caller.principal);
        h.claims.clone_from(&caller.claims);
    }
    Probe {
        peer: caller.peer.clone(),
        source_ip: caller.source_ip,
        remote_ip: caller.remote_ip,
        port: shape.port,
        http,
    }
}

impl fmt::Display for WhoCan<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "who can make {}:", self.request)?;
        write_classes(f, &self.classes, "nobody")
    }
}

/// The requests a policy lets one caller make: see [`what_can`].
#[derive(Debug, Clone, Serialize)]
pub struct WhatCan<'p> {
    #[serde(skip)]
    policy: &'p Policy,
    #[serde(skip)]
    caller: Caller,
    who: String,
    classes: Vec<AccessClass>,
}

/// The requests (methods, paths, hosts, ports, routes) `policy` lets `caller`
/// make, as classes, each with the rule that admits it, the header conditions
/// that must hold too, and the parts deny rules take back. Exact as [`who_can`].
pub fn what_can<'p>(policy: &'p Policy, caller: &Caller) -> WhatCan<'p> {
    let search = Search {
        caller: Some(caller),
        ..Search::new(vec![policy])
    };
    let mut builder = Builder::new(policy, Side::Requests, true);
    search.run(&mut |probe, decisions, live| builder.add(probe, &decisions[0], live));
    WhatCan {
        policy,
        caller: caller.clone(),
        who: caller.to_string(),
        classes: builder.finish(),
    }
}

impl WhatCan<'_> {
    /// The classes of requests allowed.
    pub fn classes(&self) -> &[AccessClass] {
        &self.classes
    }

    /// Whether the request `shape` is in one of the classes: exactly when the
    /// policy allows it to the caller.
    pub fn allows(&self, shape: &RequestShape) -> bool {
        let probe = combine(shape, &self.caller);
        let attrs = probe.attrs();
        self.classes
            .iter()
            .any(|c| classes::contains(self.policy, c, Side::Requests, &attrs))
    }
}

impl fmt::Display for WhatCan<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "what {} can reach:", self.who)?;
        write_classes(f, &self.classes, "nothing")
    }
}

fn write_classes(f: &mut fmt::Formatter<'_>, classes: &[AccessClass], none: &str) -> fmt::Result {
    if classes.is_empty() {
        return writeln!(f, "  {none}");
    }
    for c in classes {
        writeln!(f, "  - {} (rule `{}`)", c.members, c.rule)?;
        for cond in &c.conditions {
            writeln!(f, "      when {cond}")?;
        }
        for e in &c.except {
            write!(f, "      except {} (rule `{}`)", e.members, e.rule)?;
            if !e.conditions.is_empty() {
                write!(f, " when {}", e.conditions.join(" and "))?;
            }
            writeln!(f)?;
        }
        writeln!(f, "      e.g. {}", c.example)?;
    }
    Ok(())
}
