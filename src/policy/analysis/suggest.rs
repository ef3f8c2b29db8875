//! `suggest`: the least-privilege native policy for the traffic an audit log saw.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::super::compiled::Policy;
use super::super::decision::Verdict;
use super::super::model::{Action, OperationSpec, PolicySpec, RuleSpec, SourceSpec};
use super::super::pattern::PathPattern;
use super::super::values::{MethodPattern, Network, PortRange, TextPattern};
use super::AnalysisError;
use super::peers;
use super::probe::{HttpProbe, Probe};
use crate::{Identity, RequestPrincipal};

/// One decision of the audit log, as [`AuditConfig::json_lines`] writes it (fields
/// it does not name are ignored; missing ones are empty).
///
/// [`AuditConfig::json_lines`]: crate::audit::AuditConfig::json_lines
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
#[non_exhaustive]
pub struct AuditEvent {
    /// `allow`, `deny`, `audit`, `would-deny`, `not-found`, …
    pub decision: String,
    /// The deciding rule.
    pub rule: String,
    /// The peer's identity, or `unauthenticated (…)`.
    pub peer: String,
    /// The peer's socket address.
    pub source: String,
    /// The method (empty for a TCP connection).
    pub method: String,
    /// The normalized host.
    pub host: String,
    /// The normalized path.
    pub path: String,
    /// The JWT principal (empty without a token).
    pub principal: String,
    /// The local port the peer connected to.
    pub port: Option<u16>,
}

impl AuditEvent {
    /// Whether the request went through (`allow`, `audit`, or `would-deny` of a dry
    /// run or the `audit` default).
    pub fn went_through(&self) -> bool {
        matches!(self.decision.as_str(), "allow" | "audit" | "would-deny")
    }

    /// The request as the policy sees it; `None` when the peer is not an identity.
    pub(crate) fn probe(&self) -> Option<Probe> {
        let peer = match self.peer.starts_with("unauthenticated") {
            true => None,
            false => Some(peers::parse(&self.peer)?),
        };
        let ip = self
            .source
            .parse::<std::net::SocketAddr>()
            .map(|a| a.ip())
            .or_else(|_| self.source.parse::<IpAddr>())
            .ok();
        let http = (!self.method.is_empty()).then(|| HttpProbe {
            method: self.method.clone(),
            path: self.path.clone(),
            host: (!self.host.is_empty()).then(|| (self.host.clone(), self.host.clone())),
            principal: self
                .principal
                .rsplit_once('/')
                .map(|(iss, sub)| RequestPrincipal::new(iss, sub)),
            ..HttpProbe::default()
        });
        Some(Probe {
            peer,
            source_ip: ip,
            remote_ip: ip,
            port: self.port,
            http,
        })
    }
}

/// Reads an audit log of JSON lines; blank lines are skipped.
///
/// # Errors
///
/// [`AnalysisError::AuditLog`] with the line number of a line that is not an
/// audit event.
pub fn read_audit_log(text: &str) -> Result<Vec<AuditEvent>, AnalysisError> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| AnalysisError::AuditLog {
                line: i + 1,
                message: e.to_string(),
            })
        })
        .collect()
}

/// A suggested policy: see [`suggest`].
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Suggestion {
    /// The policy: `default: deny`, one `allow` rule per caller.
    pub policy: PolicySpec,
    /// How many events went through (and are covered).
    pub covered: usize,
    /// Events left out, with the reason (a peer that is no identity, a path no
    /// pattern can name).
    pub skipped: Vec<String>,
    /// Observed requests that went through but that the current policy denies (or,
    /// in dry run, would deny), with its decision.
    pub denied_by_current: Vec<String>,
}

/// The least-privilege native policy that allows every request of `events` that
/// went through: `default: deny` and, per caller (identity and JWT principal, or
/// the addresses of unauthenticated peers), one `allow` rule whose `to` entries
/// group the methods that reached the same paths, with a path segment that varies
/// written `{*}` (`/orders/1` and `/orders/2` become `/orders/{*}`). With
/// `current`, also lists the requests that went through which `current` denies.
pub fn suggest(events: &[AuditEvent], current: Option<&Policy>) -> Suggestion {
    let mut groups: BTreeMap<(String, String), Group> = BTreeMap::new();
    let mut skipped = Vec::new();
    let mut denied = Vec::new();
    let mut covered = 0;
    for e in events.iter().filter(|e| e.went_through()) {
        let Some(probe) = e.probe() else {
            skipped.push(format!("peer `{}` is not an identity", e.peer));
            continue;
        };
        if e.method.is_empty() && e.port.is_none() {
            skipped.push(format!("a TCP connection of `{}` without its port", e.peer));
            continue;
        }
        if let Some(policy) = current {
            let d = policy.evaluate(&probe.attrs());
            if d.verdict() != Verdict::Allow {
                denied.push(format!("{}: {} — {d}", probe.caller(), probe.request()));
            }
        }
        // A TCP connection carries no token.
        let principal = match e.method.is_empty() {
            true => String::new(),
            false => e.principal.clone(),
        };
        let peer = probe
            .peer
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default();
        let key = (peer, principal);
        let g = groups.entry(key).or_default();
        match probe.source_ip {
            Some(ip) => g.ips.extend([ip]),
            None => g.unknown_ip = true,
        }
        let by_method = g.methods.entry(e.method.clone()).or_default();
        by_method.0.insert(e.port);
        if !e.method.is_empty() {
            by_method.1.insert(e.path.clone());
        }
        covered += 1;
    }
    let mut names = BTreeSet::new();
    let mut rules = Vec::new();
    for ((peer, principal), g) in &groups {
        rules.extend(group_rules(peer, principal, g, &mut names, &mut skipped));
    }
    Suggestion {
        policy: PolicySpec {
            rules,
            ..PolicySpec::default()
        },
        covered,
        skipped,
        denied_by_current: denied,
    }
}

/// What one caller did: per method, the ports and the paths.
#[derive(Debug, Default)]
struct Group {
    ips: BTreeSet<IpAddr>,
    /// Some event had no readable source address: addresses cannot narrow the rule.
    unknown_ip: bool,
    /// Per method, the ports (`None`: unknown, so ports cannot narrow the rule)
    /// and the paths.
    methods: BTreeMap<String, (BTreeSet<Option<u16>>, BTreeSet<String>)>,
}

/// The rules of one caller: one for its HTTP requests and, as an `allow` rule
/// naming HTTP fields never matches a TCP connection, one for its TCP connections.
fn group_rules(
    peer: &str,
    principal: &str,
    g: &Group,
    names: &mut BTreeSet<String>,
    skipped: &mut Vec<String>,
) -> Vec<RuleSpec> {
    let Some(source) = source(peer, principal, g, skipped) else {
        return Vec::new();
    };
    // Methods that reached the same paths on the same ports share an entry.
    let mut entries: BTreeMap<(Vec<String>, Vec<u16>), Vec<String>> = BTreeMap::new();
    let mut tcp = Vec::new();
    for (method, (ports, paths)) in &g.methods {
        // Every port known, or none named.
        let ports: Vec<u16> = match ports.contains(&None) {
            true => Vec::new(),
            false => ports.iter().flatten().copied().collect(),
        };
        if method.is_empty() {
            tcp.extend(ports);
            continue;
        }
        let templates = super::templates::templates(paths, skipped);
        entries
            .entry((templates, ports))
            .or_default()
            .push(method.clone());
    }
    let http: Option<Vec<OperationSpec>> = entries
        .into_iter()
        .map(|((paths, ports), methods)| operation(&paths, &ports, &methods))
        .collect();
    let mut out = Vec::new();
    let mut push = |suffix: &str, to: Vec<OperationSpec>| {
        let name = unique_name(peer, principal, names) + suffix;
        let mut rule = RuleSpec::new(name, Action::Allow);
        rule.from = Some(Box::new([source.clone()]));
        rule.to = Some(to.into_boxed_slice());
        out.push(rule);
    };
    match http {
        Some(to) if !to.is_empty() => push("", to),
        Some(_) => {}
        None => skipped.push(format!("requests of `{peer}` that no pattern can name")),
    }
    if !tcp.is_empty() {
        push("-tcp", vec![operation(&[], &tcp, &[]).unwrap_or_default()]);
    }
    out
}

/// The `from` entry of a caller.
fn source(peer: &str, principal: &str, g: &Group, skipped: &mut Vec<String>) -> Option<SourceSpec> {
    let mut source = SourceSpec::default();
    if peer.is_empty() {
        source.authenticated = Some(false);
        let nets: Option<Vec<Network>> =
            g.ips.iter().map(|ip| ip.to_string().parse().ok()).collect();
        source.networks = nets
            .filter(|n| !n.is_empty() && !g.unknown_ip)
            .map(Vec::into_boxed_slice);
    } else {
        source.identities = Some(Box::new([peer.parse().ok()?]));
    }
    if !principal.is_empty() {
        let exact = (!principal.contains('*')).then(|| principal.parse::<TextPattern>().ok());
        let Some(p) = exact.flatten() else {
            skipped.push(format!("principal `{principal}` cannot be named exactly"));
            return None;
        };
        source.request_principals = Some(Box::new([p]));
    }
    Some(source)
}

fn operation(paths: &[String], ports: &[u16], methods: &[String]) -> Option<OperationSpec> {
    let mut o = OperationSpec::default();
    let http: Vec<&String> = methods.iter().filter(|m| !m.is_empty()).collect();
    if !http.is_empty() {
        let ms: Option<Vec<MethodPattern>> = http.iter().map(|m| m.parse().ok()).collect();
        o.methods = Some(ms?.into_boxed_slice());
        let ps: Option<Vec<PathPattern>> = paths.iter().map(|p| p.parse().ok()).collect();
        o.paths = Some(ps?.into_boxed_slice());
    }
    if !ports.is_empty() {
        let rs = ports.iter().map(|&p| PortRange { start: p, end: p });
        o.ports = Some(rs.collect());
    }
    Some(o)
}

/// A rule name from the caller: `observed-<sa>.<ns>`, or the whole identity.
fn unique_name(peer: &str, principal: &str, names: &mut BTreeSet<String>) -> String {
    let who = peers::parse(peer)
        .and_then(|id: Identity| Some(format!("{}.{}", id.service_account()?, id.namespace()?)))
        .unwrap_or_else(|| match peer {
            "" => "unauthenticated".to_owned(),
            p => p.trim_start_matches("spiffe://").replace('/', "."),
        });
    let base = match principal {
        "" => format!("observed-{who}"),
        p => format!("observed-{who}-jwt-{}", p.rsplit('/').next().unwrap_or(p)),
    };
    let name = (1..)
        .map(|i| {
            if i == 1 {
                base.clone()
            } else {
                format!("{base}-{i}")
            }
        })
        .find(|n| !names.contains(n))
        .unwrap_or(base);
    names.insert(name.clone());
    name
}

impl Suggestion {
    /// The policy as YAML, ready for `Policy::from_yaml`.
    ///
    /// # Errors
    ///
    /// [`AnalysisError::Yaml`] if serialization fails.
    #[cfg(feature = "yaml")]
    pub fn to_yaml(&self) -> Result<String, AnalysisError> {
        yaml_serde::to_string(&self.policy).map_err(|e| AnalysisError::Yaml(e.to_string()))
    }
}
