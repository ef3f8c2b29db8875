//! `explain`: a human-readable account of a decision, like `linkerd diagnostics
//! policy` — which rule decided, and for a deny, the rules that came closest and the
//! field that failed.

use std::fmt;

use super::attrs::RequestAttrs;
use super::compiled::Policy;
use super::decision::{Decision, Verdict};
use super::matching::{
    LocalTrust, Remote, condition_holds, needs_http, operation_failure, source_failure,
};
use super::model::{Action, RuleSpec};

/// How many near misses an explanation lists.
const CLOSEST: usize = 5;

/// The account of one decision. `Display` prints it.
#[derive(Debug, Clone)]
pub struct Explanation {
    decision: Decision,
    request: String,
    matched: Vec<String>,
    closest: Vec<String>,
    notes: Vec<String>,
    skipped: Vec<String>,
}

impl Explanation {
    /// The decision explained (the same as [`Policy::evaluate`]'s).
    pub fn decision(&self) -> &Decision {
        &self.decision
    }

    /// The near misses: `action `name`: clause: field` lines.
    pub fn closest(&self) -> &[String] {
        &self.closest
    }

    /// The manifest documents skipped at load because they are meant for other
    /// workloads, with the reason ([`Policy::skipped`]).
    pub fn skipped(&self) -> &[String] {
        &self.skipped
    }
}

/// Checks every clause of `rule`; returns how many passed and why the others failed.
fn diagnose(
    rule: &RuleSpec,
    local: LocalTrust<'_>,
    attrs: &RequestAttrs<'_>,
) -> (usize, Vec<String>) {
    let mut passed = 0;
    let mut why = Vec::new();
    match &rule.from {
        None => passed += 1,
        Some(from) => {
            let fails: Vec<String> = from
                .iter()
                .enumerate()
                .filter_map(|(i, s)| {
                    let remote = Remote::of(attrs, rule.action);
                    source_failure(
                        s,
                        local,
                        attrs.peer,
                        attrs.source_ip,
                        remote,
                        attrs.http.as_ref(),
                    )
                    .err()
                    .map(|f| format!("from[{i}].{f}"))
                })
                .collect();
            if fails.len() < from.len() {
                passed += 1;
            } else {
                why.push(format!("peer does not match {}", fails.join(", ")));
            }
        }
    }
    if attrs.http.is_none() && rule.action != Action::Deny && needs_http(rule) {
        why.push("needs HTTP attributes, so it never matches a TCP connection".to_owned());
        return (passed, why);
    }
    match &rule.to {
        None => passed += 1,
        Some(to) => {
            let fails: Vec<String> = to
                .iter()
                .enumerate()
                .filter_map(|(i, o)| {
                    operation_failure(o, attrs)
                        .err()
                        .map(|f| format!("to[{i}].{f}"))
                })
                .collect();
            if fails.len() < to.len() {
                passed += 1;
            } else {
                why.push(format!("operation does not match {}", fails.join(", ")));
            }
        }
    }
    match (&rule.when, &attrs.http) {
        (Some(when), Some(http)) => {
            let fails: Vec<String> = when
                .iter()
                .enumerate()
                .filter(|(_, c)| !condition_holds(c, http, rule.action))
                .map(|(i, c)| format!("when[{i}] ({})", c.key()))
                .collect();
            if fails.is_empty() {
                passed += 1;
            } else {
                why.push(format!("condition fails: {}", fails.join(", ")));
            }
        }
        _ => passed += 1,
    }
    (passed, why)
}

impl Policy {
    /// Explains the decision on `attrs`. Slow (it checks every rule); for humans and
    /// the `policy_check` example, not the request path.
    pub fn explain(&self, attrs: &RequestAttrs<'_>) -> Explanation {
        let decision = self.evaluate(attrs);
        // Rules see the request with the route it went to, as `evaluate` does.
        let routed = self.routed(attrs);
        let attrs = routed.as_ref().unwrap_or(attrs);
        let mut matched = Vec::new();
        let mut misses = Vec::new();
        for rule in &self.spec.rules {
            let (passed, why) = diagnose(rule, self.local_trust(), attrs);
            if why.is_empty() {
                matched.push(format!("{} `{}`", rule.action.as_str(), rule.name));
            } else {
                misses.push((passed, rule, why));
            }
        }
        // Near misses that could have changed the outcome: for a deny, allow rules;
        // for an allow, deny rules.
        let relevant = |a: Action| match decision.verdict() {
            Verdict::Allow => a == Action::Deny,
            _ => a == Action::Allow,
        };
        misses.retain(|(_, r, _)| relevant(r.action));
        misses.sort_by_key(|m| std::cmp::Reverse(m.0));
        let closest = misses
            .into_iter()
            .take(CLOSEST)
            .map(|(_, r, why)| format!("{} `{}`: {}", r.action.as_str(), r.name, why.join("; ")))
            .collect();
        let mut notes = Vec::new();
        if self.is_dry_run() {
            notes.push("dry-run: the policy is evaluated and logged, never enforced".to_owned());
        }
        if decision.verdict() == Verdict::NotFound {
            notes.push("the server has routes and none matched: answered 404".to_owned());
        } else if let Some(route) = attrs.route {
            notes.push(format!(
                "routed to `{route}`: only rules naming it (or no route) apply"
            ));
        }
        Explanation {
            request: describe(attrs),
            decision,
            matched,
            closest,
            notes,
            skipped: self.skipped.clone(),
        }
    }
}

fn describe(attrs: &RequestAttrs<'_>) -> String {
    let mut s = match attrs.peer {
        Some(id) => format!("peer `{id}`"),
        None => "unauthenticated peer".to_owned(),
    };
    if let Some(ip) = attrs.source_ip {
        s.push_str(&format!(", source `{ip}`"));
    }
    match attrs.remote_ip {
        Some(ip) if attrs.remote_ip != attrs.source_ip => {
            s.push_str(&format!(", client `{ip}`"));
        }
        None if attrs.source_ip.is_some() => s.push_str(", client address unknown"),
        _ => {}
    }
    if let Some(port) = attrs.port {
        s.push_str(&format!(", port `{port}`"));
    }
    match &attrs.http {
        Some(h) => {
            s.push_str(&format!(", `{} {}`", h.method, h.path));
            if let Some(q) = h.query {
                s.push_str(&format!(", query `{q}`"));
            }
            match (h.host, h.authority) {
                (_, Some(authority)) => s.push_str(&format!(", authority `{authority}`")),
                (Some(host), None) => s.push_str(&format!(", host `{host}`")),
                (None, None) => {}
            }
            match h.principal {
                Some(p) => s.push_str(&format!(", request principal `{p}`")),
                None => s.push_str(", no request principal (no token)"),
            }
        }
        None => s.push_str(", TCP connection (no HTTP attributes)"),
    }
    s
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "decision: {}", self.decision.enforced())?;
        if self.decision.dry_run() {
            writeln!(f, "would be: {}", self.decision.verdict())?;
        }
        writeln!(f, "decided by: {}", self.decision.rule())?;
        writeln!(f, "request: {}", self.request)?;
        if self.matched.is_empty() {
            writeln!(f, "matching rules: none")?;
        } else {
            writeln!(f, "matching rules:")?;
            for m in &self.matched {
                writeln!(f, "  {m}")?;
            }
        }
        if !self.closest.is_empty() {
            writeln!(f, "closest rules:")?;
            for c in &self.closest {
                writeln!(f, "  {c}")?;
            }
        }
        for n in &self.notes {
            writeln!(f, "note: {n}")?;
        }
        if !self.skipped.is_empty() {
            writeln!(f, "skipped (meant for other workloads, never merged):")?;
            for s in &self.skipped {
                writeln!(f, "  {s}")?;
            }
        }
        Ok(())
    }
}
