//! Istio manifests: `AuthorizationPolicy` (ALLOW / DENY / AUDIT),
//! `PeerAuthentication` and `RequestAuthentication`.
//!
//! End-user identity: `requestPrincipals` / `notRequestPrincipals` and the `when` key
//! `request.auth.principal` become `request_principals`; `request.auth.claims[a][b]`
//! becomes a condition on the claim path `[a, b]`, `request.auth.audiences` on the
//! `aud` claim and `request.auth.presenter` on `azp`. The top-level claims `scope` and
//! `permission` are read as space-separated words (`space_delimited`), as Istio's JWT
//! providers always normalize them; a `RequestAuthentication`'s `spaceDelimitedClaims`
//! marks further claims on the tokens of its issuer (see `istio_authn`).
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
//!
//! Scoping (`istio_scope`): with a [`WorkloadContext`](crate::policy::WorkloadContext), a
//! document applies only to workloads of its namespace (every namespace from the root
//! namespace) whose labels its `selector.matchLabels` match; the others are skipped,
//! listed by [`Policy::skipped`](crate::policy::Policy::skipped), `explain` and the warnings,
//! and never merged. When none of a file's authorization policies applies, Istio
//! allows every request, and a load warning (`ALLOW-ALL: ...`) says so. Without a
//! context no namespace scoping is applied and a label selector is an error.
//! `targetRef(s)` are always an error. `PeerAuthentication` is resolved and enforced
//! as described in `istio_peer`; `principals`, `serviceAccounts` and `trustDomains`
//! are read as described in `istio_source`.
//!
//! `hosts` / `notHosts` become `authorities`: matched, as Istio matches them against
//! `:authority`, case-insensitively against the authority with the port the client sent
//! (`example.com` matches no `example.com:8080`; write `example.com:*` for any port).
//! `ipBlocks` and `source.ip` become `networks` (the peer's address); `remoteIpBlocks`
//! and `remote.ip` become `remote_networks` (the original client's address: the peer's,
//! or the one read from `X-Forwarded-For` behind
//! [`trusted_proxies`](crate::authorize::AuthorizeLayer::trusted_proxies), Istio's
//! `numTrustedProxies`). In one `source` they are ANDed, as every field is.

mod authn;
mod peer;
mod scope;
mod source;

use serde::Deserialize;

use self::authn::{RequestAuthnSpec, request_authn};
use self::scope::{Scope, Selector, Target, TargetRef};
use crate::policy::claim::ClaimPath;
use crate::policy::error::PolicyError;
use crate::policy::error::yaml_error;
use crate::policy::import::document::{Object, and_sources, parse_all, parse_opt};
use crate::policy::model::{
    Action, ConditionSpec, DefaultPolicy, OperationSpec, PolicySpec, RuleSpec, SourceSpec,
};
use crate::policy::mtls::PeerAuthentication;
use crate::policy::request_authn::RequestAuthentication;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AuthzSpec {
    #[serde(default)]
    selector: Option<Selector>,
    #[serde(default)]
    target_ref: Option<TargetRef>,
    #[serde(default)]
    target_refs: Option<Vec<TargetRef>>,
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
    trust_domains: Option<Vec<String>>,
    not_trust_domains: Option<Vec<String>>,
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
    peer: Vec<Object<self::peer::PeerAuthnSpec>>,
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
        context: Option<&crate::policy::workload::WorkloadContext>,
    ) -> Result<Imported, PolicyError> {
        let mut warnings = Vec::new();
        let mut skipped = Vec::new();
        let mut rules = Vec::new();
        let mut any_allow = false;
        let mut applied = 0;
        for p in &self.authz {
            let name = p.metadata.qualified();
            let target = Target {
                what: "authorization policy",
                meta: &p.metadata,
                selector: p.spec.selector.as_ref(),
                target_ref: p.spec.target_ref.as_ref(),
                target_refs: p.spec.target_refs.as_deref(),
            };
            if let Scope::Skipped(why) = target.scope(context)? {
                skipped.push(why);
                continue;
            }
            applied += 1;
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
                if let Some(rule) = convert_rule(&rname, p.metadata.ns(), action, r, &mut warnings)?
                {
                    rules.push(rule);
                }
            }
        }
        if applied == 0 && !self.authz.is_empty() {
            // Istio: "If there are no ALLOW policies for the workload, allow the request."
            warnings.push(format!(
                "ALLOW-ALL: none of the {} authorization policies of this file applies to this workload, so (as in Istio) every request is allowed; check the workload context (namespace, labels) if that is not intended",
                self.authz.len()
            ));
        }
        let default = if any_allow {
            DefaultPolicy::Deny
        } else {
            DefaultPolicy::AllUnauthenticated
        };
        let mut peer_objects = Vec::new();
        for p in self.peer {
            let target = Target {
                what: "peer authentication",
                meta: &p.metadata,
                selector: p.spec.selector.as_ref(),
                target_ref: None,
                target_refs: None,
            };
            match target.scope(context)? {
                Scope::Skipped(why) => skipped.push(why),
                Scope::Applies { selected, mesh } => peer_objects.push((selected, mesh, p)),
            }
        }
        let peer = self::peer::resolve(peer_objects, &mut rules, &mut warnings)?;
        let mut request = Vec::new();
        for r in self.request {
            let target = Target {
                what: "request authentication",
                meta: &r.metadata,
                selector: r.spec.selector.as_ref(),
                target_ref: r.spec.target_ref.as_ref(),
                target_refs: r.spec.target_refs.as_deref(),
            };
            match target.scope(context)? {
                Scope::Skipped(why) => skipped.push(why),
                Scope::Applies { .. } => request.push(request_authn(r, &mut warnings)?),
            }
        }
        for why in &skipped {
            warnings.push(format!("skipped {why}"));
        }
        let spec = PolicySpec {
            default,
            rules,
            namespaces_in_any_trust_domain: true,
            skipped,
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

/// Converts one rule; `None` when Istio's literal `*` makes it match nothing.
fn convert_rule(
    name: &str,
    ns: &str,
    action: Action,
    r: &IstioRule,
    warnings: &mut Vec<String>,
) -> Result<Option<RuleSpec>, PolicyError> {
    let mut rule = RuleSpec::new(name, action);
    if let Some(from) = &r.from {
        let mut out = Vec::new();
        for f in from {
            if let Some(s) = convert_source(name, ns, &f.source, warnings)? {
                out.push(s);
            }
        }
        if out.is_empty() {
            warnings.push(format!(
                "authorization policy `{name}`: no `from` entry can match a peer, so this rule matches nothing"
            ));
            return Ok(None);
        }
        rule.from = Some(out.into());
    }
    if let Some(to) = &r.to {
        let mut out = Vec::new();
        for t in to {
            let o = &t.operation;
            port_less_hosts(name, action, o, warnings);
            out.push(OperationSpec {
                authorities: parse_opt(name, &o.hosts)?,
                not_authorities: parse_opt(name, &o.not_hosts)?,
                ports: parse_opt(name, &o.ports)?,
                not_ports: parse_opt(name, &o.not_ports)?,
                methods: parse_opt(name, &o.methods)?,
                not_methods: parse_opt(name, &o.not_methods)?,
                paths: parse_opt(name, &o.paths)?,
                not_paths: parse_opt(name, &o.not_paths)?,
                ..OperationSpec::default()
            });
        }
        rule.to = Some(out.into());
    }
    for w in r.when.iter().flatten() {
        if !apply_when(name, &mut rule, w, warnings)? {
            warnings.push(format!(
                "authorization policy `{name}`: condition `{}` can match no request, so this rule matches nothing",
                w.key
            ));
            return Ok(None);
        }
    }
    Ok(Some(rule))
}

/// One `source`: `None` when a field of it can match no peer.
fn convert_source(
    name: &str,
    ns: &str,
    s: &Source,
    warnings: &mut Vec<String>,
) -> Result<Option<SourceSpec>, PolicyError> {
    use self::source::{principals, service_accounts, trust_domains};
    let has = |v: &Option<Vec<String>>| v.is_some();
    if (has(&s.service_accounts) || has(&s.not_service_accounts))
        && (has(&s.principals)
            || has(&s.not_principals)
            || has(&s.namespaces)
            || has(&s.not_namespaces))
    {
        return Err(PolicyError::invalid(format!(
            "authorization policy `{name}`: a source sets `serviceAccounts` together with `principals` or `namespaces`, which Istio rejects"
        )));
    }
    let ids = principals(name, &s.principals, false, warnings)?;
    let not_ids = principals(name, &s.not_principals, true, warnings)?;
    if ids.is_never() {
        return Ok(None);
    }
    Ok(Some(SourceSpec {
        identities: ids.into_option(),
        not_identities: not_ids.into_option(),
        trust_domains: trust_domains(name, "trustDomains", &s.trust_domains)?,
        not_trust_domains: trust_domains(name, "notTrustDomains", &s.not_trust_domains)?,
        namespaces: parse_opt(name, &s.namespaces)?,
        not_namespaces: parse_opt(name, &s.not_namespaces)?,
        service_accounts: service_accounts(name, ns, "serviceAccounts", &s.service_accounts)?,
        not_service_accounts: service_accounts(
            name,
            ns,
            "notServiceAccounts",
            &s.not_service_accounts,
        )?,
        networks: parse_opt(name, &s.ip_blocks)?,
        not_networks: parse_opt(name, &s.not_ip_blocks)?,
        remote_networks: parse_opt(name, &s.remote_ip_blocks)?,
        not_remote_networks: parse_opt(name, &s.not_remote_ip_blocks)?,
        request_principals: parse_opt(name, &s.request_principals)?,
        not_request_principals: parse_opt(name, &s.not_request_principals)?,
        ..SourceSpec::default()
    }))
}

/// Warns about exact `hosts` without a port where missing a request widens access (a
/// DENY's `hosts`, an ALLOW's `notHosts`): Istio compares the authority exactly, so
/// `example.com` does not match `example.com:8080`, as its security best practices
/// ("Writing Host Match Policies") warn.
fn port_less_hosts(name: &str, action: Action, o: &Operation, warnings: &mut Vec<String>) {
    let (field, values) = match action {
        Action::Deny => ("hosts", &o.hosts),
        Action::Allow => ("notHosts", &o.not_hosts),
        Action::Audit => return,
    };
    let all = values.as_deref().unwrap_or_default();
    for v in all {
        let bare = !v.contains('*') && (!v.contains(':') || v.ends_with(']'));
        let any_port = format!("{v}:*");
        if bare && !all.iter().any(|w| w.eq_ignore_ascii_case(&any_port)) {
            warnings.push(format!(
                "authorization policy `{name}`: `{field}` value `{v}` matches only requests whose authority has no port (Istio compares it exactly); a request to `{v}:<port>` is not matched: add `{v}:*` if that is not intended"
            ));
        }
    }
}

/// Folds one `when` condition into the rule (conditions AND with everything);
/// `false` when the condition can match no request.
fn apply_when(
    name: &str,
    rule: &mut RuleSpec,
    w: &When,
    warnings: &mut Vec<String>,
) -> Result<bool, PolicyError> {
    if let Some(header) = w
        .key
        .strip_prefix("request.headers[")
        .and_then(|k| k.strip_suffix(']'))
    {
        if header.starts_with(':') {
            return pseudo_header(name, rule, header, w).map(|()| true);
        }
        let c = ConditionSpec::header(
            parse_all(name, &[header.to_owned()])?.remove(0),
            parse_opt(name, &w.values)?,
            parse_opt(name, &w.not_values)?,
        );
        crate::policy::validate::condition(name, &c)?;
        rule.when.get_or_insert_with(Vec::new).push(c);
        return Ok(true);
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
        // Istio configures every JWT provider to split `scope` and `permission` on
        // spaces ("The default claims 'scope' and 'permission' are always treated as
        // space-delimited", JWTRule `spaceDelimitedClaims`); top-level claims only, as
        // Envoy's payload normalization. The claims a `spaceDelimitedClaims` lists are
        // marked by the JWT layer, per issuer (`JwtRule::to_issuer`).
        let split = matches!(&*path.0, [one] if &**one == "scope" || &**one == "permission");
        let mut c = ConditionSpec::claim(
            path,
            parse_opt(name, &w.values)?,
            parse_opt(name, &w.not_values)?,
        );
        c.space_delimited = split;
        crate::policy::validate::condition(name, &c)?;
        rule.when.get_or_insert_with(Vec::new).push(c);
        return Ok(true);
    }
    let source = match w.key.as_str() {
        "source.ip" => SourceSpec {
            networks: parse_opt(name, &w.values)?,
            not_networks: parse_opt(name, &w.not_values)?,
            ..SourceSpec::default()
        },
        "remote.ip" => SourceSpec {
            remote_networks: parse_opt(name, &w.values)?,
            not_remote_networks: parse_opt(name, &w.not_values)?,
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
            use self::source::principals;
            let ids = principals(name, &w.values, false, warnings)?;
            if ids.is_never() {
                return Ok(false);
            }
            SourceSpec {
                identities: ids.into_option(),
                not_identities: principals(name, &w.not_values, true, warnings)?.into_option(),
                ..SourceSpec::default()
            }
        }
        "destination.port" => {
            let (p, np) = (parse_opt(name, &w.values)?, parse_opt(name, &w.not_values)?);
            fold_into_to(name, rule, "destination.port", "ports", p, np, |op| {
                (&mut op.ports, &mut op.not_ports)
            })?;
            return Ok(true);
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
    Ok(true)
}

/// ANDs a condition on an operation field into every `to` entry (a missing `to` is
/// one entry that matches everything).
fn fold_into_to<T: Clone>(
    name: &str,
    rule: &mut RuleSpec,
    key: &str,
    field: &str,
    values: Option<crate::policy::model::List<T>>,
    not_values: Option<crate::policy::model::List<T>>,
    get: impl Fn(
        &mut OperationSpec,
    ) -> (
        &mut Option<crate::policy::model::List<T>>,
        &mut Option<crate::policy::model::List<T>>,
    ),
) -> Result<(), PolicyError> {
    let to = rule
        .to
        .get_or_insert_with(|| vec![OperationSpec::default()].into());
    for op in to.iter_mut() {
        let (p, np) = get(op);
        if (values.is_some() && p.is_some()) || (not_values.is_some() && np.is_some()) {
            return Err(PolicyError::unsupported(format!(
                "authorization policy `{name}`: the condition `{key}` and the operation's `{field}` in one rule cannot be combined"
            )));
        }
        if p.is_none() {
            *p = values.clone();
        }
        if np.is_none() {
            *np = not_values.clone();
        }
    }
    Ok(())
}

/// `request.headers[:method]`, `[:authority]` and `[:path]`: Envoy's pseudo-headers,
/// read as `methods`, `hosts` and `paths` are (`:path` values with a query are refused:
/// `paths` ignore the query). Other pseudo-headers are refused.
fn pseudo_header(
    name: &str,
    rule: &mut RuleSpec,
    header: &str,
    w: &When,
) -> Result<(), PolicyError> {
    match header {
        ":method" => {
            let (p, np) = (parse_opt(name, &w.values)?, parse_opt(name, &w.not_values)?);
            fold_into_to(name, rule, &w.key, "methods", p, np, |op| {
                (&mut op.methods, &mut op.not_methods)
            })
        }
        // Envoy's `:authority` is what `hosts` match: the same field.
        ":authority" => {
            let (p, np) = (parse_opt(name, &w.values)?, parse_opt(name, &w.not_values)?);
            fold_into_to(name, rule, &w.key, "authorities", p, np, |op| {
                (&mut op.authorities, &mut op.not_authorities)
            })
        }
        // Envoy's `:path` carries the query too; `paths` match the path alone, so a
        // value naming a query could never be read the same way and is refused.
        ":path" => {
            let all = w
                .values
                .iter()
                .flatten()
                .chain(w.not_values.iter().flatten());
            if let Some(v) = all.into_iter().find(|v| v.contains('?')) {
                return Err(PolicyError::unsupported(format!(
                    "authorization policy `{name}`: condition key `{}` value `{v}` names a query, which meshless does not match: match the path alone",
                    w.key
                )));
            }
            let (p, np) = (parse_opt(name, &w.values)?, parse_opt(name, &w.not_values)?);
            fold_into_to(name, rule, &w.key, "paths", p, np, |op| {
                (&mut op.paths, &mut op.not_paths)
            })
        }
        _ => Err(PolicyError::unsupported(format!(
            "authorization policy `{name}`: condition key `{}` (a pseudo-header) is not supported",
            w.key
        ))),
    }
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
