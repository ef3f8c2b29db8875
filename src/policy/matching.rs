//! Matching one rule against a request: the semantics, field by field. The index
//! (`index.rs`) only chooses which rules to run through these functions.
//!
//! Each check returns the name of the first field that failed (`None` = matched), so
//! the same code answers both the hot path and `explain`.

use std::net::IpAddr;

use super::attrs::{HttpAttrs, RequestAttrs};
use super::model::{
    Action, ConditionSpec, DefaultPolicy, OperationSpec, PolicySpec, RuleSpec, SourceSpec,
};
use super::values::{Network, TrustDomainName, canonical_ip};
use crate::Identity;

/// A field present with `values`: any must match. A `not_` field: none may.
fn check<T>(
    name: &'static str,
    values: &Option<super::model::List<T>>,
    negated: bool,
    mut hit: impl FnMut(&T) -> bool,
) -> Result<(), &'static str> {
    match values {
        None => Ok(()),
        Some(vs) if vs.iter().any(&mut hit) != negated => Ok(()),
        Some(_) => Err(name),
    }
}

/// The trust domains whose identities a `from` entry without `trust_domains` reads
/// namespaces and service accounts of: the policy's `local_trust_domains`, or every
/// trust domain under `namespaces_in_any_trust_domain` (Istio).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct LocalTrust<'a> {
    domains: &'a [TrustDomainName],
    any: bool,
}

impl<'a> LocalTrust<'a> {
    pub(crate) fn of(spec: &'a PolicySpec) -> Self {
        Self {
            domains: &spec.local_trust_domains,
            any: spec.namespaces_in_any_trust_domain,
        }
    }

    fn covers(&self, trust_domain: &str) -> bool {
        self.any || self.domains.iter().any(|d| *d.0 == *trust_domain)
    }
}

/// The original client's address, for `remote_networks`, as far as it is known.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Remote {
    /// Not yet (the per-connection pre-filter): remote fields are skipped, which can
    /// only widen the candidates; the request path re-checks them.
    Later,
    /// The request's client address (`None`: unknown), and whether the rule is on the
    /// deny side (deny, audit), where an unknown address satisfies remote fields.
    Is { ip: Option<IpAddr>, deny_side: bool },
}

impl Remote {
    /// The remote address of `attrs` for a rule with `action`.
    pub(crate) fn of(attrs: &RequestAttrs<'_>, action: Action) -> Self {
        Self::Is {
            ip: attrs.remote_ip,
            deny_side: action != Action::Allow,
        }
    }
}

/// First failing field of a `from` entry for this peer. The request-level fields
/// (`request_principals`) are checked only when `http` is given: without it (the
/// per-connection pre-filter, or a TCP connection) they are ignored, which can only
/// widen the candidates; the request path re-checks them. The remote fields are
/// checked unless `remote` is [`Remote::Later`].
pub(crate) fn source_failure(
    s: &SourceSpec,
    local: LocalTrust<'_>,
    id: Option<&Identity>,
    ip: Option<IpAddr>,
    remote: Remote,
    http: Option<&HttpAttrs<'_>>,
) -> Result<(), &'static str> {
    if let Some(http) = http {
        let user = http.principal.map(crate::RequestPrincipal::as_str);
        let hit = |p: &super::values::TextPattern| user.is_some_and(|u| p.0.matches(u));
        check("request_principals", &s.request_principals, false, hit)?;
        check(
            "not_request_principals",
            &s.not_request_principals,
            true,
            hit,
        )?;
    }
    let ip = ip.map(canonical_ip);
    let id_hit = |p: &super::pattern::IdentityPattern| id.is_some_and(|i| p.matches(i));
    check("identities", &s.identities, false, id_hit)?;
    check("not_identities", &s.not_identities, true, id_hit)?;
    let td = id.map(Identity::trust_domain);
    let td_hit = |t: &super::values::TrustDomainName| td == Some(&*t.0);
    check("trust_domains", &s.trust_domains, false, td_hit)?;
    check("not_trust_domains", &s.not_trust_domains, true, td_hit)?;
    // Namespaces and service accounts are read only in the entry's trust domains
    // (already checked above) or, without them, the policy's own: `web` of a foreign
    // trust domain is not our `web`. Without one, a peer has no namespace here.
    let kube = || id.filter(|i| s.trust_domains.is_some() || local.covers(i.trust_domain()));
    let ns = s
        .namespaces
        .as_ref()
        .or(s.not_namespaces.as_ref())
        .and_then(|_| kube()?.namespace());
    let ns_hit = |p: &super::values::NamespacePattern| ns.is_some_and(|n| p.0.matches(n));
    // Said apart for `explain`: the peer's namespace exists, in another trust domain.
    let foreign = |field| match id {
        Some(i) if i.namespace().is_some() && kube().is_none() => match field {
            "namespaces" => "namespaces (the peer is of another trust domain)",
            _ => "service_accounts (the peer is of another trust domain)",
        },
        _ => field,
    };
    check("namespaces", &s.namespaces, false, ns_hit).map_err(foreign)?;
    check("not_namespaces", &s.not_namespaces, true, ns_hit)?;
    let sa = s
        .service_accounts
        .as_ref()
        .or(s.not_service_accounts.as_ref())
        .and_then(|_| kube())
        .and_then(|i| Some((i.namespace()?, i.service_account()?)));
    let sa_hit = |p: &super::values::ServiceAccountPattern| {
        sa.is_some_and(|(n, a)| p.namespace.matches(n) && p.name.matches(a))
    };
    check("service_accounts", &s.service_accounts, false, sa_hit).map_err(foreign)?;
    check(
        "not_service_accounts",
        &s.not_service_accounts,
        true,
        sa_hit,
    )?;
    let net_hit = |n: &Network| ip.is_some_and(|ip| n.contains(ip));
    check("networks", &s.networks, false, net_hit)?;
    check("not_networks", &s.not_networks, true, net_hit)?;
    match remote {
        Remote::Later => {}
        Remote::Is { ip: Some(ip), .. } => {
            let ip = canonical_ip(ip);
            let hit = |n: &Network| n.contains(ip);
            check("remote_networks", &s.remote_networks, false, hit)?;
            check("not_remote_networks", &s.not_remote_networks, true, hit)?;
        }
        // Unknown client address: a deny holds, an allow fails (see `remote_networks`).
        Remote::Is {
            ip: None,
            deny_side: true,
        } => {}
        Remote::Is { ip: None, .. } => {
            if s.remote_networks.is_some() {
                return Err("remote_networks (the client address is unknown)");
            }
            if s.not_remote_networks.is_some() {
                return Err("not_remote_networks (the client address is unknown)");
            }
        }
    }
    match s.authenticated {
        Some(want) if want != id.is_some() => Err("authenticated"),
        _ => Ok(()),
    }
}

/// First failing field of a `to` entry. With `l4`, HTTP fields are ignored (the
/// caller has already dropped allow rules that need them).
pub(crate) fn operation_failure(
    o: &OperationSpec,
    attrs: &RequestAttrs<'_>,
) -> Result<(), &'static str> {
    let port_hit = |r: &super::values::PortRange| attrs.port.is_some_and(|p| r.contains(p));
    check("ports", &o.ports, false, port_hit)?;
    check("not_ports", &o.not_ports, true, port_hit)?;
    let Some(http) = &attrs.http else {
        return Ok(());
    };
    let host_hit = |h: &super::values::HostPattern| http.host.is_some_and(|v| h.0.matches(v));
    check("hosts", &o.hosts, false, host_hit)?;
    check("not_hosts", &o.not_hosts, true, host_hit)?;
    let authority_hit =
        |a: &super::values::AuthorityPattern| http.authority.is_some_and(|v| a.0.matches(v));
    check("authorities", &o.authorities, false, authority_hit)?;
    check("not_authorities", &o.not_authorities, true, authority_hit)?;
    let method_hit = |m: &super::values::MethodPattern| m.0.matches(http.method);
    check("methods", &o.methods, false, method_hit)?;
    check("not_methods", &o.not_methods, true, method_hit)?;
    let path_hit = |p: &super::pattern::PathPattern| p.matches(http.path);
    check("paths", &o.paths, false, path_hit)?;
    check("not_paths", &o.not_paths, true, path_hit)?;
    let route_hit = |r: &String| attrs.route == Some(r.as_str());
    check("routes", &o.routes, false, route_hit)?;
    check("not_routes", &o.not_routes, true, route_hit)
}

/// Whether a condition holds.
///
/// A header is read as one field, the way an app reads it ([`header_field`]): a header
/// sent on two lines and the same values comma-joined on one are the same request. `*`
/// means present (an empty value, or one that is not text, is present); a missing
/// header matches no `values` and satisfies `not_values`.
///
/// An app may also read the field as a list and act on one element (`x-role: a,
/// debug`). `action` says which reading errs on the side of denying: for a deny or
/// audit rule, `values` match the whole field or any element and `not_values` only the
/// whole field; for an allow rule (and a route match), the reverse, so that
/// `x-tenant: acme` plus `x-tenant: globex` never passes an allow rule for `acme`. For
/// a claim, every string of a list-valued claim is tried, and every word of a
/// space-delimited one (the condition's `space_delimited`, or the claim marked so by
/// the JWT layer).
pub(crate) fn condition_holds(c: &ConditionSpec, http: &HttpAttrs<'_>, action: Action) -> bool {
    match (&c.header, &c.claim) {
        (Some(name), _) => {
            let field = http.headers.and_then(|h| header_field(h, &name.0));
            let hit = |pats: &super::model::List<super::values::TextPattern>, elements: bool| {
                field.as_deref().is_some_and(|v| {
                    pats.iter().any(|p| {
                        field_matches(&p.0, v)
                            || (elements && v.split(|b| *b == b',').any(|e| field_matches(&p.0, e)))
                    })
                })
            };
            let deny_side = action != Action::Allow;
            c.values.as_ref().is_none_or(|p| hit(p, deny_side))
                && !c.not_values.as_ref().is_some_and(|p| hit(p, !deny_side))
        }
        (None, Some(path)) => {
            let any = |pats: &super::model::List<super::values::TextPattern>| {
                http.claims.is_some_and(|claims| {
                    claims
                        .strings_in(&path.0, c.space_delimited)
                        .any(|v| pats.iter().any(|p| p.0.matches(v)))
                })
            };
            c.values.as_ref().is_none_or(any) && !c.not_values.as_ref().is_some_and(any)
        }
        (None, None) => c.values.is_none(),
    }
}

/// Header `name` as an app reads it: `None` when absent; otherwise its lines joined
/// with `,` (RFC 9110 §5.3), each comma-separated element stripped of the SP and HTAB
/// around it (what app servers strip), bytes as sent (not only UTF-8 values).
pub(crate) fn header_field<'h>(
    headers: &'h http::HeaderMap,
    name: &http::HeaderName,
) -> Option<std::borrow::Cow<'h, [u8]>> {
    let mut lines = headers.get_all(name).iter();
    let first = lines.next()?.as_bytes();
    let simple = |v: &[u8]| {
        !v.contains(&b',')
            && v.first().is_none_or(|b| !is_ows(*b))
            && v.last().is_none_or(|b| !is_ows(*b))
    };
    if lines.next().is_none() && simple(first) {
        return Some(std::borrow::Cow::Borrowed(first));
    }
    let all = headers
        .get_all(name)
        .iter()
        .map(http::HeaderValue::as_bytes);
    Some(std::borrow::Cow::Owned(join_list(all)))
}

fn is_ows(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Joins list lines with `,`, each element trimmed of SP/HTAB.
fn join_list<'a>(lines: impl Iterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, line) in lines.enumerate() {
        for (j, element) in line.split(|b| *b == b',').enumerate() {
            if i + j > 0 {
                out.push(b',');
            }
            out.extend_from_slice(element.trim_ascii());
        }
    }
    out
}

/// Whether a header field (see [`header_field`]) matches: `*` is presence; text is
/// compared after the same list canonicalization, so `a, b` in a policy is `a,b`.
fn field_matches(pattern: &super::pattern::StringMatch, value: &[u8]) -> bool {
    use super::pattern::StringMatch;
    fn canon(t: &str) -> std::borrow::Cow<'_, [u8]> {
        let b = t.as_bytes();
        let edge = |c: Option<&u8>| c.is_some_and(|c| is_ows(*c));
        if b.contains(&b',') || edge(b.first()) || edge(b.last()) {
            std::borrow::Cow::Owned(join_list(std::iter::once(b)))
        } else {
            std::borrow::Cow::Borrowed(b)
        }
    }
    match pattern {
        StringMatch::Any => true,
        StringMatch::Exact(t) => value == &*canon(t),
        StringMatch::Prefix(t) => value.starts_with(&canon(t)),
        StringMatch::Suffix(t) => value.ends_with(&canon(t)),
    }
}

/// Whether an allow/audit rule can match a TCP connection at all: not if it needs
/// HTTP attributes (Istio drops such rules from TCP policies).
pub(crate) fn needs_http(rule: &RuleSpec) -> bool {
    rule.when.is_some()
        || has_request_sources(rule)
        || rule
            .to
            .as_ref()
            .is_some_and(|to| to.iter().any(OperationSpec::has_http_fields))
}

/// Whether some `from` entry of the rule names a request-level field.
pub(crate) fn has_request_sources(rule: &RuleSpec) -> bool {
    rule.from
        .as_ref()
        .is_some_and(|from| from.iter().any(SourceSpec::has_request_fields))
}

/// Whether the rule's `from` clause must be checked again per request: some entry
/// names a request-level or a remote field, which the per-connection pre-filter skips.
pub(crate) fn rechecks_from(rule: &RuleSpec) -> bool {
    rule.from.as_ref().is_some_and(|from| {
        from.iter()
            .any(|s| s.has_request_fields() || s.has_remote_fields())
    })
}

/// Whether the rule's `from` clause matches the peer (and, with `http`, the end user;
/// unless `remote` is [`Remote::Later`], the original client's address).
pub(crate) fn from_matches(
    rule: &RuleSpec,
    local: LocalTrust<'_>,
    id: Option<&Identity>,
    ip: Option<IpAddr>,
    remote: Remote,
    http: Option<&HttpAttrs<'_>>,
) -> bool {
    rule.from.as_ref().is_none_or(|from| {
        from.iter()
            .any(|s| source_failure(s, local, id, ip, remote, http).is_ok())
    })
}

/// Whether the rule's `to` and `when` clauses match the request (the per-request
/// half; `from` is checked per connection, except its request-level and remote
/// fields, which are checked here).
pub(crate) fn request_matches(
    rule: &RuleSpec,
    local: LocalTrust<'_>,
    attrs: &RequestAttrs<'_>,
) -> bool {
    if attrs.http.is_none() && rule.action != Action::Deny && needs_http(rule) {
        return false;
    }
    if rechecks_from(rule)
        && !from_matches(
            rule,
            local,
            attrs.peer,
            attrs.source_ip,
            Remote::of(attrs, rule.action),
            attrs.http.as_ref(),
        )
    {
        return false;
    }
    let to_ok = rule
        .to
        .as_ref()
        .is_none_or(|to| to.iter().any(|o| operation_failure(o, attrs).is_ok()));
    to_ok
        && match (&attrs.http, &rule.when) {
            (Some(http), Some(when)) => when.iter().all(|c| condition_holds(c, http, rule.action)),
            _ => true,
        }
}

/// The networks of the `cluster-*` defaults when the policy names none (Linkerd's).
pub(crate) fn default_cluster_networks() -> Vec<Network> {
    [
        "10.0.0.0/8",
        "100.64.0.0/10",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "fd00::/8",
    ]
    .iter()
    .filter_map(|c| c.parse().ok())
    .map(|cidr| Network {
        cidr,
        except: Vec::new(),
    })
    .collect()
}

/// Whether a default lets the request in (`audit` does, flagged).
pub(crate) fn default_allows(
    d: DefaultPolicy,
    attrs: &RequestAttrs<'_>,
    cluster: &[Network],
) -> bool {
    let in_cluster = || {
        attrs
            .source_ip
            .map(canonical_ip)
            .is_some_and(|ip| cluster.iter().any(|n| n.contains(ip)))
    };
    match d {
        DefaultPolicy::Deny => false,
        DefaultPolicy::AllAuthenticated => attrs.peer.is_some(),
        DefaultPolicy::AllUnauthenticated | DefaultPolicy::Audit => true,
        DefaultPolicy::ClusterAuthenticated => attrs.peer.is_some() && in_cluster(),
        DefaultPolicy::ClusterUnauthenticated => in_cluster(),
    }
}

/// Whether a route match selects the request.
pub(crate) fn route_match_holds(
    m: &super::model::RouteMatchSpec,
    attrs: &RequestAttrs<'_>,
) -> bool {
    let Some(http) = &attrs.http else {
        return false;
    };
    m.paths
        .as_ref()
        .is_none_or(|ps| ps.iter().any(|p| p.matches(http.path)))
        && m.methods
            .as_ref()
            .is_none_or(|ms| ms.iter().any(|p| p.0.matches(http.method)))
        && m.headers
            .iter()
            .all(|c| condition_holds(c, http, Action::Allow))
        && m.query_params.iter().all(|q| {
            http.query
                .is_some_and(|query| super::query::has_pair(query, &q.name, &q.value))
        })
}
