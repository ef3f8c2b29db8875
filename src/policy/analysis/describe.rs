//! Entries and conditions in the users' words: SPIFFE IDs, namespaces, service
//! accounts, trust domains, networks, JWT principals; methods, paths, ports, hosts.

use std::fmt::Display;

use serde::Serialize;

use super::super::model::{ConditionSpec, OperationSpec, PolicySpec, SourceSpec};
use super::super::pattern::{IdKind, StringMatch};
use super::super::values::Network;

/// What kind of callers a class names, by its most telling field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum CallerKind {
    /// Exact SPIFFE IDs or Linkerd identities.
    Identities,
    /// Identity patterns (`spiffe://td/ns/web/*`, `*.web.serviceaccount…`).
    IdentityPatterns,
    /// Service accounts (`namespace/name`).
    ServiceAccounts,
    /// Namespaces.
    Namespaces,
    /// Trust domains.
    TrustDomains,
    /// Peers of certain addresses (authenticated or not).
    Networks,
    /// Any authenticated peer.
    Authenticated,
    /// Peers without an identity.
    Unauthenticated,
    /// End users with a verified JWT of certain principals.
    Principals,
    /// Anyone: no condition on the caller.
    Anyone,
}

/// The kind of callers an entry names (`None`: no `from` clause, anyone).
pub(crate) fn caller_kind(s: Option<&SourceSpec>) -> CallerKind {
    let Some(s) = s else {
        return CallerKind::Anyone;
    };
    if let Some(ids) = &s.identities {
        if ids.iter().all(|p| matches!(p.kind(), IdKind::Exact)) {
            return CallerKind::Identities;
        }
        if ids.iter().any(|p| !matches!(p.kind(), IdKind::Any)) {
            return CallerKind::IdentityPatterns;
        }
        return CallerKind::Authenticated;
    }
    if s.service_accounts.is_some() {
        CallerKind::ServiceAccounts
    } else if s.namespaces.is_some() {
        CallerKind::Namespaces
    } else if s.trust_domains.is_some() {
        CallerKind::TrustDomains
    } else if s.authenticated == Some(false) {
        CallerKind::Unauthenticated
    } else if s.request_principals.is_some() {
        CallerKind::Principals
    } else if s.networks.is_some() || s.remote_networks.is_some() {
        CallerKind::Networks
    } else if s.authenticated == Some(true) {
        CallerKind::Authenticated
    } else {
        CallerKind::Anyone
    }
}

/// `a`, `a or b`, `a, b or c`, each in backticks.
fn list<T: Display>(items: &[T]) -> String {
    let quoted: Vec<String> = items.iter().map(|i| format!("`{i}`")).collect();
    match quoted.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
    }
}

/// A field's values, listed.
fn opt<T: Display>(v: &Option<Box<[T]>>) -> Option<String> {
    v.as_deref().map(list)
}

/// Networks, listed (`10.0.0.0/8 except 10.1.0.0/16`).
fn nets(v: &Option<Box<[Network]>>) -> Option<String> {
    let words: Vec<String> = v
        .as_deref()?
        .iter()
        .map(|n| {
            let except: Vec<String> = n.except.iter().map(ToString::to_string).collect();
            match except.is_empty() {
                true => n.cidr.to_string(),
                false => format!("{} except {}", n.cidr, except.join(", ")),
            }
        })
        .collect();
    Some(list(&words))
}

/// Where an entry reads namespaces: its trust domains, the policy's, or any.
fn scope(s: &SourceSpec, spec: &PolicySpec) -> String {
    match (&s.trust_domains, spec.namespaces_in_any_trust_domain) {
        (Some(_), _) => String::new(),
        (None, true) => " (of any trust domain)".to_owned(),
        (None, false) => format!(" of trust domain {}", list(&spec.local_trust_domains)),
    }
}

/// A `from` entry in words: ``namespace `web` of trust domain `example.org` ``.
pub(crate) fn source(s: Option<&SourceSpec>, spec: &PolicySpec) -> String {
    let Some(s) = s else {
        return "any caller".to_owned();
    };
    let ids = s.identities.as_deref().map(|ids| {
        if ids.iter().any(|p| matches!(p.kind(), IdKind::Any)) {
            "any authenticated peer".to_owned()
        } else {
            list(ids)
        }
    });
    let sc = scope(s, spec);
    let authenticated = s.authenticated.map(|a| match a {
        true => "authenticated".to_owned(),
        false => "unauthenticated peers".to_owned(),
    });
    let fields: [(&str, Option<String>); 15] = [
        ("", ids),
        ("not identity ", opt(&s.not_identities)),
        (
            "service account ",
            opt(&s.service_accounts).map(|v| v + &sc),
        ),
        ("not service account ", opt(&s.not_service_accounts)),
        ("namespace ", opt(&s.namespaces).map(|v| v + &sc)),
        ("not namespace ", opt(&s.not_namespaces)),
        ("trust domain ", opt(&s.trust_domains)),
        ("not of trust domain ", opt(&s.not_trust_domains)),
        ("", authenticated),
        ("from ", nets(&s.networks)),
        ("not from ", nets(&s.not_networks)),
        ("client in ", nets(&s.remote_networks)),
        ("client not in ", nets(&s.not_remote_networks)),
        ("with a JWT of principal ", opt(&s.request_principals)),
        (
            "without a JWT of principal ",
            opt(&s.not_request_principals),
        ),
    ];
    join(fields, "any caller")
}

/// The present fields, `label value`, comma-separated; `none` without any.
fn join<const N: usize>(fields: [(&str, Option<String>); N], none: &str) -> String {
    let parts: Vec<String> = fields
        .into_iter()
        .filter_map(|(label, v)| v.map(|v| format!("{label}{v}")))
        .collect();
    if parts.is_empty() {
        none.to_owned()
    } else {
        parts.join(", ")
    }
}

/// A `to` entry in words: ``method `GET` or `HEAD`, path `/orders/*`, port `8443` ``.
pub(crate) fn operation(o: Option<&OperationSpec>) -> String {
    let Some(o) = o else {
        return "any request".to_owned();
    };
    let fields = [
        ("method ", opt(&o.methods)),
        ("method not ", opt(&o.not_methods)),
        ("path ", opt(&o.paths)),
        ("path not ", opt(&o.not_paths)),
        ("host ", opt(&o.hosts)),
        ("host not ", opt(&o.not_hosts)),
        ("authority ", opt(&o.authorities)),
        ("authority not ", opt(&o.not_authorities)),
        ("route ", opt(&o.routes)),
        ("route not ", opt(&o.not_routes)),
        ("port ", opt(&o.ports)),
        ("port not ", opt(&o.not_ports)),
    ];
    join(fields, "any request")
}

/// A condition in words: ``header `x-tenant` is `acme` or `globex` ``.
pub(crate) fn condition(c: &ConditionSpec) -> String {
    let mut out = c.key();
    match &c.values {
        // `*`: any non-empty value.
        Some(v) if v.len() == 1 && matches!(v[0].0, StringMatch::Any) => {
            out.push_str(" is set (any non-empty value)")
        }
        Some(v) => out.push_str(&format!(" is {}", list(v))),
        None => {}
    }
    if let Some(v) = &c.not_values {
        out.push_str(&format!(
            "{} not {}",
            if c.values.is_some() { " and" } else { " is" },
            list(v)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_read_as_users_write_them() {
        let spec: PolicySpec =
            serde_json::from_str(r#"{"local_trust_domains": ["example.org"]}"#).unwrap();
        let s: SourceSpec = serde_json::from_str(
            r#"{"namespaces": ["web"], "not_identities": ["spiffe://example.org/ns/web/sa/x"]}"#,
        )
        .unwrap();
        assert_eq!(
            source(Some(&s), &spec),
            "not identity `spiffe://example.org/ns/web/sa/x`, namespace `web` of trust domain `example.org`"
        );
        assert_eq!(caller_kind(Some(&s)), CallerKind::Namespaces);
        let o: OperationSpec = serde_json::from_str(
            r#"{"methods": ["GET", "HEAD"], "paths": ["/orders/*"], "ports": [8443]}"#,
        )
        .unwrap();
        assert_eq!(
            operation(Some(&o)),
            "method `GET` or `HEAD`, path `/orders/*`, port `8443`"
        );
    }
}
