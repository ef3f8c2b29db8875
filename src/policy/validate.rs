//! Checks that span fields (the parser has already validated every value), and the
//! load-time warnings about TCP semantics.

use std::collections::HashSet;

use super::error::PolicyError;
use super::matching::needs_http;
use super::model::{Action, ConditionSpec, OperationSpec, PolicySpec, SourceSpec};

fn nonempty<T>(
    rule: &str,
    field: &str,
    v: &Option<super::model::List<T>>,
) -> Result<(), PolicyError> {
    match v {
        Some(v) if v.is_empty() => Err(PolicyError::invalid(format!(
            "rule `{rule}`: `{field}` is an empty list (omit the field to match anything)"
        ))),
        _ => Ok(()),
    }
}

fn source(rule: &str, s: &SourceSpec) -> Result<(), PolicyError> {
    nonempty(rule, "identities", &s.identities)?;
    nonempty(rule, "not_identities", &s.not_identities)?;
    nonempty(rule, "trust_domains", &s.trust_domains)?;
    nonempty(rule, "not_trust_domains", &s.not_trust_domains)?;
    nonempty(rule, "namespaces", &s.namespaces)?;
    nonempty(rule, "not_namespaces", &s.not_namespaces)?;
    nonempty(rule, "service_accounts", &s.service_accounts)?;
    nonempty(rule, "not_service_accounts", &s.not_service_accounts)?;
    nonempty(rule, "networks", &s.networks)?;
    nonempty(rule, "not_networks", &s.not_networks)?;
    nonempty(rule, "remote_networks", &s.remote_networks)?;
    nonempty(rule, "not_remote_networks", &s.not_remote_networks)?;
    nonempty(rule, "request_principals", &s.request_principals)?;
    nonempty(rule, "not_request_principals", &s.not_request_principals)
}

fn operation(rule: &str, o: &OperationSpec) -> Result<(), PolicyError> {
    nonempty(rule, "ports", &o.ports)?;
    nonempty(rule, "not_ports", &o.not_ports)?;
    nonempty(rule, "hosts", &o.hosts)?;
    nonempty(rule, "not_hosts", &o.not_hosts)?;
    nonempty(rule, "authorities", &o.authorities)?;
    nonempty(rule, "not_authorities", &o.not_authorities)?;
    nonempty(rule, "methods", &o.methods)?;
    nonempty(rule, "not_methods", &o.not_methods)?;
    nonempty(rule, "paths", &o.paths)?;
    nonempty(rule, "not_paths", &o.not_paths)?;
    nonempty(rule, "routes", &o.routes)?;
    nonempty(rule, "not_routes", &o.not_routes)
}

pub(crate) fn condition(rule: &str, c: &ConditionSpec) -> Result<(), PolicyError> {
    nonempty(rule, "values", &c.values)?;
    nonempty(rule, "not_values", &c.not_values)?;
    if c.header.is_some() == c.claim.is_some() {
        return Err(PolicyError::invalid(format!(
            "rule `{rule}`: a condition names exactly one `header` or `claim`"
        )));
    }
    if c.values.is_none() && c.not_values.is_none() {
        return Err(PolicyError::invalid(format!(
            "rule `{rule}`: condition on {} needs `values` or `not_values`",
            c.key()
        )));
    }
    Ok(())
}

/// How many rules get their own TCP warning before the rest are summed up.
const MAX_TCP_WARNINGS: usize = 20;

/// Refuses a `from` entry whose `namespaces` or `service_accounts` would be read in no
/// trust domain: the entry names no `trust_domains` and the policy none of its own.
/// Matching them in every trust domain instead would let any federated trust domain
/// that issues `/ns/<ns>/...` IDs in (Istio's semantics, which must be asked for).
fn kubernetes_scope(
    spec: &PolicySpec,
    rule: &str,
    i: usize,
    s: &SourceSpec,
) -> Result<(), PolicyError> {
    if !s.has_kubernetes_fields()
        || s.trust_domains.is_some()
        || !spec.local_trust_domains.is_empty()
        || spec.namespaces_in_any_trust_domain
    {
        return Ok(());
    }
    let field = [
        ("namespaces", s.namespaces.is_some()),
        ("not_namespaces", s.not_namespaces.is_some()),
        ("service_accounts", s.service_accounts.is_some()),
        ("not_service_accounts", s.not_service_accounts.is_some()),
    ]
    .into_iter()
    .find_map(|(name, present)| present.then_some(name))
    .unwrap_or("namespaces");
    Err(PolicyError::invalid(format!(
        "rule `{rule}`: `from[{i}].{field}` names Kubernetes namespaces, but the policy declares no trust domain of its own: set `local_trust_domains: [<your trust domain>]` at the top of the policy, or list `trust_domains` in this `from` entry"
    )))
}

/// Validates `spec`; returns the warnings.
pub(crate) fn validate(spec: &PolicySpec) -> Result<Vec<String>, PolicyError> {
    let mut warnings = Vec::new();
    if spec.namespaces_in_any_trust_domain && !spec.local_trust_domains.is_empty() {
        return Err(PolicyError::invalid(
            "`namespaces_in_any_trust_domain` matches namespaces in every trust domain, so `local_trust_domains` would mean nothing: set one of them",
        ));
    }
    let mut http_rules = 0usize;
    let mut names = HashSet::new();
    for rule in &spec.rules {
        let name = rule.name.as_str();
        if name.trim().is_empty() {
            return Err(PolicyError::invalid("a rule has an empty `name`"));
        }
        if !names.insert(name) {
            return Err(PolicyError::invalid(format!(
                "two rules are named `{name}`"
            )));
        }
        for (clause, empty) in [
            ("from", rule.from.as_ref().is_some_and(|v| v.is_empty())),
            ("to", rule.to.as_ref().is_some_and(|v| v.is_empty())),
            ("when", rule.when.as_ref().is_some_and(Vec::is_empty)),
        ] {
            if empty {
                return Err(PolicyError::invalid(format!(
                    "rule `{name}`: `{clause}` is an empty list (omit it to match anything)"
                )));
            }
        }
        rule.from
            .iter()
            .flatten()
            .try_for_each(|s| source(name, s))?;
        rule.from
            .iter()
            .flatten()
            .enumerate()
            .try_for_each(|(i, s)| kubernetes_scope(spec, name, i, s))?;
        rule.to
            .iter()
            .flatten()
            .try_for_each(|o| operation(name, o))?;
        rule.when
            .iter()
            .flatten()
            .try_for_each(|c| condition(name, c))?;
        if needs_http(rule) {
            http_rules += 1;
            if http_rules > MAX_TCP_WARNINGS {
                continue;
            }
            warnings.push(match rule.action {
                Action::Deny => format!(
                    "rule `{name}` (deny) uses HTTP fields: on TCP connections they are ignored, so it denies every connection its other fields match"
                ),
                _ => format!(
                    "rule `{name}` ({}) uses HTTP fields: it never matches a TCP connection",
                    rule.action.as_str()
                ),
            });
        }
    }
    if http_rules > MAX_TCP_WARNINGS {
        warnings.push(format!(
            "and `{}` more rules use HTTP fields (see above for what that means on TCP connections)",
            http_rules - MAX_TCP_WARNINGS
        ));
    }
    let mut servers = HashSet::new();
    for s in &spec.servers {
        if !servers.insert(s.name.as_str()) {
            return Err(PolicyError::invalid(format!(
                "two servers are named `{}`",
                s.name
            )));
        }
        if s.ports.is_empty() {
            return Err(PolicyError::invalid(format!(
                "server `{}` has no ports",
                s.name
            )));
        }
        for route in s.routes.iter().flatten() {
            nonempty(&route.name, "hosts", &route.hosts)?;
            for m in &route.matches {
                nonempty(&route.name, "paths", &m.paths)?;
                nonempty(&route.name, "methods", &m.methods)?;
                m.headers
                    .iter()
                    .try_for_each(|c| condition(&route.name, c))?;
                if m.query_params.iter().any(|q| q.name.is_empty()) {
                    return Err(PolicyError::invalid(format!(
                        "route `{}`: a query parameter match needs a `name`",
                        route.name
                    )));
                }
            }
        }
    }
    // A route name no server has could never match: a typo, refused.
    let routes: HashSet<&str> = spec
        .servers
        .iter()
        .flat_map(|s| s.routes.iter().flatten())
        .map(|r| r.name.as_str())
        .collect();
    for rule in &spec.rules {
        for o in rule.to.iter().flatten() {
            for r in o.routes.iter().chain(&o.not_routes).flat_map(|v| v.iter()) {
                if !routes.contains(r.as_str()) {
                    return Err(PolicyError::invalid(format!(
                        "rule `{}`: route `{r}` is not a route of any server",
                        rule.name
                    )));
                }
            }
        }
    }
    Ok(warnings)
}
