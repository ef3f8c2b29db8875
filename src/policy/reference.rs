//! A deliberately naive reference evaluator, for property tests and fuzzing: it walks
//! every rule in order and matches each field by re-reading the pattern *text*, with
//! none of the compiled index or the parsed pattern kinds. The compiled [`Policy`]
//! must always agree with it.
//!
//! [`Policy`]: super::Policy

use std::net::IpAddr;

use super::attrs::RequestAttrs;
use super::decision::Verdict;
use super::model::{Action, DefaultPolicy, OperationSpec, PolicySpec, RuleSpec, SourceSpec};

/// The reference outcome: verdict, deciding rule name (as [`Decision::rule`]), and
/// the audit rules that matched.
///
/// [`Decision::rule`]: super::Decision::rule
pub type Outcome = (Verdict, String, Vec<String>);

fn glob(pat: &str, v: &str) -> bool {
    if pat == "*" {
        !v.is_empty()
    } else if let Some(s) = pat.strip_prefix('*') {
        v.ends_with(s)
    } else if let Some(p) = pat.strip_suffix('*') {
        v.starts_with(p)
    } else {
        pat == v
    }
}

fn identity(pat: &str, id: &str) -> bool {
    if pat == "*" {
        return true;
    }
    if let Some(sfx) = pat.strip_prefix('*').filter(|r| r.starts_with('/')) {
        return id.starts_with("spiffe://") && id.ends_with(sfx);
    }
    if let Some(sfx) = pat.strip_prefix("*.") {
        return !id.starts_with("spiffe://")
            && id.len() > sfx.len() + 1
            && id.ends_with(&format!(".{sfx}"));
    }
    if !pat.contains('*') {
        return pat == id;
    }
    let p: Vec<&str> = pat.split('/').collect();
    let v: Vec<&str> = id.split('/').collect();
    for (i, ps) in p.iter().enumerate() {
        let last = i == p.len() - 1;
        match v.get(i) {
            None => return false,
            Some(vs) if *ps == "*" => {
                if vs.is_empty() {
                    return false;
                }
                if last {
                    return true;
                }
            }
            Some(vs) if ps == vs => {}
            Some(_) => return false,
        }
    }
    p.len() == v.len()
}

/// Patterns are written as requests are matched, decoded; escapes in them are decoded.
fn pct_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match (
            b[i],
            s.get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok()),
        ) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn path(pat: &str, v: &str) -> bool {
    let pat = &pct_decode(pat);
    if !pat.contains('{') {
        return glob(pat, v);
    }
    let p: Vec<&str> = pat.split('/').collect();
    let s: Vec<&str> = v.split('/').collect();
    template(&p, &s)
}

/// Pattern segments against path segments: `{*}` takes one non-empty segment, `{**}`
/// one or more of any kind (every count is tried), a literal its equal.
fn template(p: &[&str], s: &[&str]) -> bool {
    match (p.split_first(), s.split_first()) {
        (None, None) => true,
        (Some((&"{**}", pr)), Some(_)) => (1..=s.len()).any(|n| template(pr, &s[n..])),
        (Some((&"{*}", pr)), Some((x, sr))) => !x.is_empty() && template(pr, sr),
        (Some((lit, pr)), Some((x, sr))) => lit == x && template(pr, sr),
        _ => false,
    }
}

fn bits(ip: IpAddr) -> (u128, u32) {
    match ip {
        IpAddr::V4(a) => (u128::from(u32::from(a)), 32),
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => (u128::from(u32::from(v4)), 32),
            None => (u128::from(a), 128),
        },
    }
}

fn in_cidr(cidr: &str, ip: IpAddr) -> bool {
    let (addr, len) = cidr.split_once('/').unwrap_or((cidr, ""));
    let Ok(net) = addr.parse::<IpAddr>() else {
        return false;
    };
    let (nb, width) = bits(net);
    let (ib, iwidth) = bits(ip);
    let len: u32 = len.parse().unwrap_or(width);
    width == iwidth && (len == 0 || (nb ^ ib) >> (width - len) == 0)
}

fn any<T>(values: &Option<super::model::List<T>>, negated: bool, f: impl Fn(String) -> bool) -> bool
where
    T: std::fmt::Display,
{
    match values {
        None => true,
        Some(vs) => vs.iter().any(|v| f(v.to_string())) != negated,
    }
}

fn source(spec: &PolicySpec, s: &SourceSpec, a: &RequestAttrs<'_>, action: Action) -> bool {
    let id = a.peer.map(|i| i.as_str().to_owned());
    let td = a.peer.map(|i| i.trust_domain().to_owned());
    // Namespaces and service accounts exist only in the entry's trust domains, else
    // in the policy's own ones (in every one under Istio's semantics).
    let homes: Vec<String> = match &s.trust_domains {
        Some(tds) => tds.iter().map(ToString::to_string).collect(),
        None => spec
            .local_trust_domains
            .iter()
            .map(ToString::to_string)
            .collect(),
    };
    let any_home = s.trust_domains.is_none() && spec.namespaces_in_any_trust_domain;
    let kube = a
        .peer
        .filter(|i| any_home || homes.iter().any(|h| h == i.trust_domain()));
    let ns = kube.and_then(|i| i.namespace().map(str::to_owned));
    let sa = kube.and_then(|i| Some(format!("{}/{}", i.namespace()?, i.service_account()?)));
    let idm = |p: String| id.as_deref().is_some_and(|i| identity(&p, i));
    let tdm = |p: String| td.as_deref() == Some(p.as_str());
    let nsm = |p: String| ns.as_deref().is_some_and(|n| glob(&p, n));
    let sam = |p: String| {
        sa.as_deref().is_some_and(|v| {
            if p == "*" {
                return true;
            }
            let (pn, ps) = p.split_once('/').unwrap_or_default();
            let (vn, vs) = v.split_once('/').unwrap_or_default();
            glob(pn, vn) && glob(ps, vs)
        })
    };
    let net_at = |ip: Option<IpAddr>, n: &super::values::Network| {
        ip.is_some_and(|ip| {
            in_cidr(&n.cidr.to_string(), ip)
                && !n.except.iter().any(|e| in_cidr(&e.to_string(), ip))
        })
    };
    let net = |n: &super::values::Network| net_at(a.source_ip, n);
    // The client's address: when unknown, remote fields hold for deny and audit rules
    // and fail for allow rules.
    let remote_field = |nets: &Option<super::model::List<super::values::Network>>, negated| match (
        nets,
        a.remote_ip,
    ) {
        (None, _) => true,
        (Some(_), None) => action != Action::Allow,
        (Some(ns), ip) => ns.iter().any(|n| net_at(ip, n)) != negated,
    };
    // Request-level: checked only for HTTP requests (ignored on TCP, where the
    // allow rules naming them were already dropped).
    let user = a.http.map(|h| h.principal.map(|p| p.to_string()));
    let userm = |p: String| user.clone().flatten().is_some_and(|u| glob(&p, &u));
    let users = user.is_none()
        || (any(&s.request_principals, false, userm)
            && any(&s.not_request_principals, true, userm));
    users
        && any(&s.identities, false, idm)
        && any(&s.not_identities, true, idm)
        && any(&s.trust_domains, false, tdm)
        && any(&s.not_trust_domains, true, tdm)
        && any(&s.namespaces, false, nsm)
        && any(&s.not_namespaces, true, nsm)
        && any(&s.service_accounts, false, sam)
        && any(&s.not_service_accounts, true, sam)
        && s.networks.as_ref().is_none_or(|ns| ns.iter().any(net))
        && !s.not_networks.as_ref().is_some_and(|ns| ns.iter().any(net))
        && remote_field(&s.remote_networks, false)
        && remote_field(&s.not_remote_networks, true)
        && s.authenticated.is_none_or(|want| want == a.peer.is_some())
}

fn operation(o: &OperationSpec, a: &RequestAttrs<'_>) -> bool {
    let portm = |p: String| {
        let (lo, hi) = p.split_once('-').unwrap_or((&p, &p));
        let (lo, hi) = (
            lo.parse::<u16>().unwrap_or(1),
            hi.parse::<u16>().unwrap_or(0),
        );
        a.port.is_some_and(|x| lo <= x && x <= hi)
    };
    let ports = any(&o.ports, false, portm) && any(&o.not_ports, true, portm);
    let Some(h) = &a.http else {
        return ports;
    };
    let hostm = |p: String| h.host.is_some_and(|v| glob(&p, v));
    let authm = |p: String| h.authority.is_some_and(|v| glob(&p, v));
    let methm = |p: String| glob(&p, h.method);
    let pathm = |p: String| path(&p, h.path);
    ports
        && any(&o.hosts, false, hostm)
        && any(&o.not_hosts, true, hostm)
        && any(&o.authorities, false, authm)
        && any(&o.not_authorities, true, authm)
        && any(&o.methods, false, methm)
        && any(&o.not_methods, true, methm)
        && any(&o.paths, false, pathm)
        && any(&o.not_paths, true, pathm)
        && any(&o.routes, false, |r| a.route == Some(r.as_str()))
        && any(&o.not_routes, true, |r| a.route == Some(r.as_str()))
}

/// A header as one field: the lines joined with `,`, each element trimmed, bytes read
/// as Latin-1 so that every byte is kept; `None` when absent.
fn header_field(a: &RequestAttrs<'_>, name: &str) -> Option<String> {
    let headers = a.http.and_then(|h| h.headers)?;
    let lines: Vec<String> = headers
        .get_all(name)
        .iter()
        .map(|v| v.as_bytes().iter().map(|&b| char::from(b)).collect())
        .collect();
    if lines.is_empty() {
        return None;
    }
    Some(canonical_list(&lines.join(",")))
}

fn canonical_list(text: &str) -> String {
    text.split(',')
        .map(|e| e.trim_matches([' ', '\t']))
        .collect::<Vec<_>>()
        .join(",")
}

/// The string values of a claim: the claims re-read from their JSON text, walked
/// member by member; a top-level string split into its words when the condition or
/// the token's issuer says it is space-delimited (and it has any).
fn claim_values(a: &RequestAttrs<'_>, path: &super::claim::ClaimPath, split: bool) -> Vec<String> {
    let Some(claims) = a.http.and_then(|h| h.claims) else {
        return Vec::new();
    };
    let segments: Vec<&str> = path.segments().collect();
    let split = segments.len() == 1 && (split || claims.is_space_delimited(segments[0]));
    let mut v: serde_json::Value = serde_json::from_str(&claims.to_json()).unwrap_or_default();
    for seg in path.segments() {
        v = match v {
            serde_json::Value::Object(mut m) => m.remove(seg).unwrap_or_default(),
            _ => serde_json::Value::Null,
        };
    }
    match v {
        serde_json::Value::String(s) if split && s.contains(|c: char| c != ' ') => s
            .split(' ')
            .filter(|w| !w.is_empty())
            .map(str::to_owned)
            .collect(),
        serde_json::Value::String(s) => vec![s],
        serde_json::Value::Array(items) => items
            .into_iter()
            .filter_map(|i| match i {
                serde_json::Value::String(s) => Some(s),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// A header condition: the whole field, and for the side that denies also each
/// comma-separated element (see `matching::condition_holds`).
fn condition(c: &super::model::ConditionSpec, a: &RequestAttrs<'_>, action: Action) -> bool {
    let hit = |ps: &super::model::List<super::values::TextPattern>, elements: bool| match (
        &c.header, &c.claim,
    ) {
        (Some(h), _) => header_field(a, h.0.as_str()).is_some_and(|v| {
            let mut readings = vec![v.clone()];
            if elements {
                readings.extend(v.split(',').map(str::to_owned));
            }
            ps.iter().any(|p| {
                let p: String = p.to_string().bytes().map(char::from).collect();
                p == "*" || readings.iter().any(|r| glob(&canonical_list(&p), r))
            })
        }),
        (None, Some(path)) => claim_values(a, path, c.space_delimited)
            .iter()
            .any(|v| ps.iter().any(|p| glob(&p.to_string(), v))),
        (None, None) => false,
    };
    let deny_side = action != Action::Allow;
    c.values.as_ref().is_none_or(|p| hit(p, deny_side))
        && !c.not_values.as_ref().is_some_and(|p| hit(p, !deny_side))
}

fn rule(spec: &PolicySpec, r: &RuleSpec, a: &RequestAttrs<'_>) -> bool {
    let http_fields = r.when.is_some()
        || r.from
            .iter()
            .flatten()
            .any(|s| s.request_principals.is_some() || s.not_request_principals.is_some())
        || r.to.iter().flatten().any(|o| {
            o.hosts.is_some()
                || o.not_hosts.is_some()
                || o.authorities.is_some()
                || o.not_authorities.is_some()
                || o.routes.is_some()
                || o.not_routes.is_some()
                || o.methods.is_some()
                || o.not_methods.is_some()
                || o.paths.is_some()
                || o.not_paths.is_some()
        });
    if a.http.is_none() && r.action != Action::Deny && http_fields {
        return false;
    }
    let from = r
        .from
        .as_ref()
        .is_none_or(|f| f.iter().any(|s| source(spec, s, a, r.action)));
    let to =
        r.to.as_ref()
            .is_none_or(|t| t.iter().any(|o| operation(o, a)));
    let when = a.http.is_none() || r.when.iter().flatten().all(|c| condition(c, a, r.action));
    from && to && when
}

/// A route's rank: host kind and length, literal path length, headers, query
/// parameters, method.
type RouteRank = (u8, usize, usize, usize, usize, bool);

/// The query as `name=value` pairs, decoded the obvious way: split on `&`, drop
/// empty pieces, split at the first `=`, turn `+` into a space, then decode `%XX`.
fn query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (n, v) = match p.find('=') {
                Some(i) => (&p[..i], &p[i + 1..]),
                None => (p, ""),
            };
            (
                pct_decode(&n.replace('+', " ")),
                pct_decode(&v.replace('+', " ")),
            )
        })
        .collect()
}

/// The literal length of a path pattern, read from its text: an exact path's
/// length, a prefix's (or a template's text before its first `{`) without the
/// trailing `/`, at least 1.
fn literal_len(p: &str) -> usize {
    let p = pct_decode(p);
    let lit = if let Some(i) = p.find('{') {
        p[..i].trim_end_matches('/').len()
    } else if p.starts_with('*') {
        1
    } else if let Some(prefix) = p.strip_suffix('*') {
        prefix.trim_end_matches('/').len()
    } else {
        p.len()
    };
    lit.max(1)
}

/// Evaluates `attrs` against `spec` the slow, obvious way.
pub fn evaluate(spec: &PolicySpec, attrs: &RequestAttrs<'_>) -> Outcome {
    let server = spec.servers.iter().find(|s| {
        s.ports
            .iter()
            .any(|p| attrs.port.is_some_and(|x| p.start <= x && x <= p.end))
    });
    let mut routed = *attrs;
    if let (Some(routes), Some(h)) = (server.and_then(|s| s.routes.as_ref()), &attrs.http) {
        // Every route that matches, with its rank: host (0 none, 1 `*.suffix`, 2
        // exact; then length), then the best match's literal path length, header
        // count, query parameter count and method; the first of the best wins.
        let mut best: Option<(RouteRank, &str)> = None;
        for r in routes {
            let host = match &r.hosts {
                None => Some((0, 0)),
                Some(hs) => hs
                    .iter()
                    .map(ToString::to_string)
                    .filter(|p| h.host.is_some_and(|v| glob(p, v)))
                    .map(|p| match p.strip_prefix('*') {
                        Some(rest) => (1, rest.len()),
                        None => (2, p.len()),
                    })
                    .max(),
            };
            let Some((hk, hl)) = host else { continue };
            let ranks: Vec<(usize, usize, usize, bool)> = if r.matches.is_empty() {
                vec![(1, 0, 0, false)]
            } else {
                r.matches
                    .iter()
                    .filter(|m| {
                        (m.paths.is_none()
                            || m.paths
                                .iter()
                                .flatten()
                                .any(|p| path(&p.to_string(), h.path)))
                            && m.methods
                                .as_ref()
                                .is_none_or(|ms| ms.iter().any(|p| glob(&p.to_string(), h.method)))
                            && m.headers.iter().all(|c| condition(c, attrs, Action::Allow))
                            && m.query_params.iter().all(|q| {
                                query_pairs(h.query.unwrap_or_default())
                                    .iter()
                                    .any(|(n, v)| *n == q.name && *v == q.value)
                            })
                    })
                    .map(|m| {
                        let len = m.paths.as_ref().map_or(1, |ps| {
                            ps.iter()
                                .map(ToString::to_string)
                                .filter(|p| path(p, h.path))
                                .map(|p| literal_len(&p))
                                .max()
                                .unwrap_or(1)
                        });
                        (
                            len,
                            m.headers.len(),
                            m.query_params.len(),
                            m.methods.is_some(),
                        )
                    })
                    .collect()
            };
            let Some((pl, hd, qp, me)) = ranks.into_iter().max() else {
                continue;
            };
            let rank = (hk, hl, pl, hd, qp, me);
            if best.is_none_or(|(b, _)| rank > b) {
                best = Some((rank, r.name.as_str()));
            }
        }
        match best {
            Some((_, name)) => routed.route = Some(name),
            None => return (Verdict::NotFound, "route-not-found".into(), Vec::new()),
        }
    }
    let attrs = &routed;
    let matching: Vec<&RuleSpec> = spec.rules.iter().filter(|r| rule(spec, r, attrs)).collect();
    let audits = matching
        .iter()
        .filter(|r| r.action == Action::Audit)
        .map(|r| r.name.clone())
        .collect();
    for action in [Action::Deny, Action::Allow] {
        if let Some(r) = matching.iter().find(|r| r.action == action) {
            let v = if action == Action::Deny {
                Verdict::Deny
            } else {
                Verdict::Allow
            };
            return (v, r.name.clone(), audits);
        }
    }
    let (default, name) = match server {
        Some(s) => (
            s.default,
            format!("{}/default:{}", s.name, s.default.as_str()),
        ),
        None => (spec.default, format!("default:{}", spec.default.as_str())),
    };
    let cluster: Vec<String> = if spec.cluster_networks.is_empty() {
        [
            "10.0.0.0/8",
            "100.64.0.0/10",
            "172.16.0.0/12",
            "192.168.0.0/16",
            "fd00::/8",
        ]
        .map(String::from)
        .to_vec()
    } else {
        spec.cluster_networks
            .iter()
            .map(|n| n.cidr.to_string())
            .collect()
    };
    let in_cluster = attrs.source_ip.is_some_and(|ip| {
        spec.cluster_networks.is_empty() && cluster.iter().any(|c| in_cidr(c, ip))
            || spec.cluster_networks.iter().any(|n| {
                in_cidr(&n.cidr.to_string(), ip)
                    && !n.except.iter().any(|e| in_cidr(&e.to_string(), ip))
            })
    });
    let allow = match default {
        DefaultPolicy::Deny => false,
        DefaultPolicy::AllAuthenticated => attrs.peer.is_some(),
        DefaultPolicy::AllUnauthenticated | DefaultPolicy::Audit => true,
        DefaultPolicy::ClusterAuthenticated => attrs.peer.is_some() && in_cluster,
        DefaultPolicy::ClusterUnauthenticated => in_cluster,
    };
    (
        if allow { Verdict::Allow } else { Verdict::Deny },
        name,
        audits,
    )
}
