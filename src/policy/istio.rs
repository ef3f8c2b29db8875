//! Istio manifests: `AuthorizationPolicy` (ALLOW / DENY / AUDIT),
//! `PeerAuthentication` and `RequestAuthentication`.
//!
//! End-user identity: `requestPrincipals` / `notRequestPrincipals` and the `when` key
//! `request.auth.principal` become `request_principals`; `request.auth.claims[a][b]`
//! becomes a condition on the claim path `[a, b]`, `request.auth.audiences` on the
//! `aud` claim and `request.auth.presenter` on `azp`.
//!
//! Semantics follow Istio's documentation: any matching DENY denies; else, when no
//! ALLOW policy exists, the request is allowed; else a matching ALLOW allows and
//! anything else is denied. An ALLOW policy without rules denies everything;
//! `rules: [{}]` allows everything. AUDIT never changes a decision. `principals`
//! `td/ns/x/sa/y` mean `spiffe://td/ns/x/sa/y`. `namespaces` and `serviceAccounts`
//! match the namespace of an identity of any trust domain, as Istio's
//! `.*/ns/<ns>/.*` does: the imported policy sets `namespaces_in_any_trust_domain`.
//! CUSTOM (external authorizers) is rejected: meshless cannot call out, and skipping
//! it would allow too much.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::claim::ClaimPath;
use super::error::PolicyError;
use super::istio_authn::{RequestAuthnSpec, request_authn};
use super::load::yaml_error;
use super::manifest::{Object, and_sources, parse_all, parse_opt};
use super::model::{
    Action, ConditionSpec, DefaultPolicy, OperationSpec, PolicySpec, RuleSpec, SourceSpec,
};
use super::mtls::{MtlsMode, PeerAuthentication};
use super::request_authn::RequestAuthentication;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PeerAuthnSpec {
    #[serde(default)]
    selector: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    mtls: Option<ModeSpec>,
    #[serde(default)]
    port_level_mtls: BTreeMap<u16, ModeSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ModeSpec {
    #[serde(default = "unset")]
    mode: MtlsMode,
}

fn unset() -> MtlsMode {
    MtlsMode::Unset
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AuthzSpec {
    #[serde(default)]
    selector: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    target_ref: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    target_refs: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    action: Option<String>,
    #[serde(default, rename = "provider")]
    _provider: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    rules: Option<Vec<IstioRule>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct IstioRule {
    #[serde(default)]
    from: Option<Vec<FromEntry>>,
    #[serde(default)]
    to: Option<Vec<ToEntry>>,
    #[serde(default)]
    when: Option<Vec<When>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FromEntry {
    source: Source,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Source {
    principals: Option<Vec<String>>,
    not_principals: Option<Vec<String>>,
    request_principals: Option<Vec<String>>,
    not_request_principals: Option<Vec<String>>,
    namespaces: Option<Vec<String>>,
    not_namespaces: Option<Vec<String>>,
    service_accounts: Option<Vec<String>>,
    not_service_accounts: Option<Vec<String>>,
    ip_blocks: Option<Vec<String>>,
    not_ip_blocks: Option<Vec<String>>,
    remote_ip_blocks: Option<Vec<String>>,
    not_remote_ip_blocks: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ToEntry {
    operation: Operation,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Operation {
    hosts: Option<Vec<String>>,
    not_hosts: Option<Vec<String>>,
    ports: Option<Vec<String>>,
    not_ports: Option<Vec<String>>,
    methods: Option<Vec<String>>,
    not_methods: Option<Vec<String>>,
    paths: Option<Vec<String>>,
    not_paths: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct When {
    key: String,
    #[serde(default)]
    values: Option<Vec<String>>,
    #[serde(default)]
    not_values: Option<Vec<String>>,
}

/// Istio objects of one file.
#[derive(Default)]
pub(crate) struct Objects {
    authz: Vec<Object<AuthzSpec>>,
    peer: Vec<Object<PeerAuthnSpec>>,
    request: Vec<Object<RequestAuthnSpec>>,
}

/// What the Istio objects of a file import to.
pub(crate) struct Imported {
    pub(crate) spec: PolicySpec,
    pub(crate) warnings: Vec<String>,
    pub(crate) peer: Vec<PeerAuthentication>,
    pub(crate) request: Vec<RequestAuthentication>,
}

impl Objects {
    pub(crate) fn has_authorization(&self) -> bool {
        !self.authz.is_empty()
    }

    pub(crate) fn read(
        &mut self,
        kind: &str,
        doc: yaml_serde::Deserializer<'_>,
    ) -> Result<bool, PolicyError> {
        match kind {
            "AuthorizationPolicy" => self
                .authz
                .push(Object::deserialize(doc).map_err(|e| yaml_error(&e))?),
            "PeerAuthentication" => self
                .peer
                .push(Object::deserialize(doc).map_err(|e| yaml_error(&e))?),
            "RequestAuthentication" => self
                .request
                .push(Object::deserialize(doc).map_err(|e| yaml_error(&e))?),
            _ => return Ok(false),
        }
        Ok(true)
    }

    pub(crate) fn into_spec(
        self,
        _context: Option<&super::workload::WorkloadContext>,
    ) -> Result<Imported, PolicyError> {
        let mut warnings = Vec::new();
        let mut rules = Vec::new();
        let mut any_allow = false;
        for p in &self.authz {
            let name = p.metadata.qualified();
            if p.spec.selector.is_some()
                || p.spec.target_ref.is_some()
                || p.spec.target_refs.is_some()
            {
                warnings.push(format!(
                    "authorization policy `{name}`: its selector/targetRef is not enforced in-process; this process is taken to be the selected workload"
                ));
            }
            let dry_run = p
                .metadata
                .annotations
                .get("istio.io/dry-run")
                .is_some_and(|v| v == "true");
            let action = match p.spec.action.as_deref().unwrap_or("ALLOW") {
                "ALLOW" => Action::Allow,
                "DENY" => Action::Deny,
                "AUDIT" => Action::Audit,
                "CUSTOM" => {
                    return Err(PolicyError::unsupported(format!(
                        "authorization policy `{name}`: action `CUSTOM` (external authorizer) is not supported; refusing to load rather than skip it"
                    )));
                }
                other => {
                    return Err(PolicyError::invalid(format!(
                        "authorization policy `{name}`: unknown action `{other}`"
                    )));
                }
            };
            let istio_rules = p.spec.rules.as_deref().unwrap_or_default();
            if istio_rules.is_empty() && matches!(action, Action::Deny) {
                return Err(PolicyError::invalid(format!(
                    "authorization policy `{name}`: a DENY policy needs rules"
                )));
            }
            let action = if dry_run {
                warnings.push(format!("authorization policy `{name}` is dry-run: it is logged as audit, never enforced"));
                Action::Audit
            } else {
                any_allow |= action == Action::Allow;
                action
            };
            let many = istio_rules.len() > 1;
            for (i, r) in istio_rules.iter().enumerate() {
                let rname = if many {
                    format!("{name}[{i}]")
                } else {
                    name.clone()
                };
                rules.push(convert_rule(&rname, action, r)?);
            }
        }
        let default = if any_allow {
            DefaultPolicy::Deny
        } else {
            DefaultPolicy::AllUnauthenticated
        };
        let peer = self
            .peer
            .into_iter()
            .map(|p| PeerAuthentication {
                name: p.metadata.qualified(),
                mode: p.spec.mtls.map_or(MtlsMode::Unset, |m| m.mode),
                port_modes: p
                    .spec
                    .port_level_mtls
                    .into_iter()
                    .map(|(k, v)| (k, v.mode))
                    .collect(),
                has_selector: p.spec.selector.is_some(),
            })
            .collect();
        let request = self
            .request
            .into_iter()
            .map(|r| request_authn(r, &mut warnings))
            .collect::<Result<_, _>>()?;
        let spec = PolicySpec {
            default,
            rules,
            namespaces_in_any_trust_domain: true,
            ..PolicySpec::default()
        };
        Ok(Imported {
            spec,
            warnings,
            peer,
            request,
        })
    }
}

fn principal(name: &str, p: &str) -> Result<String, PolicyError> {
    if p == "*" || p.starts_with("spiffe://") {
        return Ok(p.to_owned());
    }
    if p.starts_with('*') || (p.ends_with('*') && !p.ends_with("/*")) {
        return Err(PolicyError::unsupported(format!(
            "authorization policy `{name}`: principal `{p}` (a suffix or mid-segment prefix) cannot be expressed; use exact ids or `td/path/*`"
        )));
    }
    Ok(format!("spiffe://{p}"))
}

fn principals_opt(
    name: &str,
    v: &Option<Vec<String>>,
) -> Result<Option<Box<[super::pattern::IdentityPattern]>>, PolicyError> {
    let ids = v
        .as_ref()
        .map(|ps| {
            ps.iter()
                .map(|p| principal(name, p))
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?;
    parse_opt(name, &ids)
}

fn convert_rule(name: &str, action: Action, r: &IstioRule) -> Result<RuleSpec, PolicyError> {
    let mut rule = RuleSpec::new(name, action);
    if let Some(from) = &r.from {
        let mut out = Vec::new();
        for f in from {
            let s = &f.source;
            let principals = |v: &Option<Vec<String>>| principals_opt(name, v);
            let ip = |a: &Option<Vec<String>>, b: &Option<Vec<String>>| {
                let all: Option<Vec<String>> = match (a, b) {
                    (None, None) => None,
                    (x, y) => Some(x.iter().chain(y).flatten().cloned().collect()),
                };
                parse_opt(name, &all)
            };
            out.push(SourceSpec {
                identities: principals(&s.principals)?,
                not_identities: principals(&s.not_principals)?,
                namespaces: parse_opt(name, &s.namespaces)?,
                not_namespaces: parse_opt(name, &s.not_namespaces)?,
                service_accounts: parse_opt(name, &s.service_accounts)?,
                not_service_accounts: parse_opt(name, &s.not_service_accounts)?,
                networks: ip(&s.ip_blocks, &s.remote_ip_blocks)?,
                not_networks: ip(&s.not_ip_blocks, &s.not_remote_ip_blocks)?,
                request_principals: parse_opt(name, &s.request_principals)?,
                not_request_principals: parse_opt(name, &s.not_request_principals)?,
                ..SourceSpec::default()
            });
        }
        rule.from = Some(out.into());
    }
    if let Some(to) = &r.to {
        let mut out = Vec::new();
        for t in to {
            let o = &t.operation;
            out.push(OperationSpec {
                hosts: parse_opt(name, &o.hosts)?,
                not_hosts: parse_opt(name, &o.not_hosts)?,
                ports: parse_opt(name, &o.ports)?,
                not_ports: parse_opt(name, &o.not_ports)?,
                methods: parse_opt(name, &o.methods)?,
                not_methods: parse_opt(name, &o.not_methods)?,
                paths: parse_opt(name, &o.paths)?,
                not_paths: parse_opt(name, &o.not_paths)?,
            });
        }
        rule.to = Some(out.into());
    }
    for w in r.when.iter().flatten() {
        apply_when(name, &mut rule, w)?;
    }
    Ok(rule)
}

/// Folds one `when` condition into the rule (conditions AND with everything).
fn apply_when(name: &str, rule: &mut RuleSpec, w: &When) -> Result<(), PolicyError> {
    if let Some(header) = w
        .key
        .strip_prefix("request.headers[")
        .and_then(|k| k.strip_suffix(']'))
    {
        let c = ConditionSpec::header(
            parse_all(name, &[header.to_owned()])?.remove(0),
            parse_opt(name, &w.values)?,
            parse_opt(name, &w.not_values)?,
        );
        super::validate::condition(name, &c)?;
        rule.when.get_or_insert_with(Vec::new).push(c);
        return Ok(());
    }
    let claim = match w.key.as_str() {
        "request.auth.audiences" => Some(ClaimPath::new(["aud"])),
        "request.auth.presenter" => Some(ClaimPath::new(["azp"])),
        key => key.strip_prefix("request.auth.claims").map(claim_path),
    };
    if let Some(path) = claim {
        let path = path.map_err(|e| {
            PolicyError::invalid(format!(
                "authorization policy `{name}`: condition key `{}`: {e}",
                w.key
            ))
        })?;
        let c = ConditionSpec::claim(
            path,
            parse_opt(name, &w.values)?,
            parse_opt(name, &w.not_values)?,
        );
        super::validate::condition(name, &c)?;
        rule.when.get_or_insert_with(Vec::new).push(c);
        return Ok(());
    }
    let source = match w.key.as_str() {
        "source.ip" | "remote.ip" => SourceSpec {
            networks: parse_opt(name, &w.values)?,
            not_networks: parse_opt(name, &w.not_values)?,
            ..SourceSpec::default()
        },
        "request.auth.principal" => SourceSpec {
            request_principals: parse_opt(name, &w.values)?,
            not_request_principals: parse_opt(name, &w.not_values)?,
            ..SourceSpec::default()
        },
        "source.namespace" => SourceSpec {
            namespaces: parse_opt(name, &w.values)?,
            not_namespaces: parse_opt(name, &w.not_values)?,
            ..SourceSpec::default()
        },
        "source.principal" => {
            let ids = |v: &Option<Vec<String>>| principals_opt(name, v);
            SourceSpec {
                identities: ids(&w.values)?,
                not_identities: ids(&w.not_values)?,
                ..SourceSpec::default()
            }
        }
        "destination.port" => {
            let (p, np) = (parse_opt(name, &w.values)?, parse_opt(name, &w.not_values)?);
            let to = rule
                .to
                .get_or_insert_with(|| vec![OperationSpec::default()].into());
            for op in to.iter_mut() {
                if (p.is_some() && op.ports.is_some()) || (np.is_some() && op.not_ports.is_some()) {
                    return Err(PolicyError::unsupported(format!(
                        "authorization policy `{name}`: `destination.port` together with `ports` cannot be combined"
                    )));
                }
                op.ports = op.ports.take().or_else(|| p.clone());
                op.not_ports = op.not_ports.take().or_else(|| np.clone());
            }
            return Ok(());
        }
        key => {
            return Err(PolicyError::unsupported(format!(
                "authorization policy `{name}`: condition key `{key}` is not supported"
            )));
        }
    };
    let from = rule
        .from
        .take()
        .map(Vec::from)
        .unwrap_or_else(|| vec![SourceSpec::default()]);
    rule.from = Some(
        and_sources(from, vec![source])
            .map_err(|e| PolicyError::unsupported(format!("authorization policy `{name}`: {e}")))?
            .into(),
    );
    Ok(())
}

/// The claim path of `[a][b]...` (what follows `request.auth.claims`).
fn claim_path(mut rest: &str) -> Result<ClaimPath, String> {
    let mut segments = Vec::new();
    while !rest.is_empty() {
        let (seg, tail) = rest
            .strip_prefix('[')
            .and_then(|r| r.split_once(']'))
            .ok_or_else(|| "claims are written `request.auth.claims[name][nested]`".to_owned())?;
        segments.push(seg);
        rest = tail;
    }
    ClaimPath::new(segments)
}
