//! Linkerd policy manifests: `Server`, `HTTPRoute`, `AuthorizationPolicy`,
//! `MeshTLSAuthentication`, `NetworkAuthentication`, and the
//! `config.linkerd.io/default-inbound-policy` annotation of a `Namespace`.
//!
//! Semantics follow Linkerd's documentation: a port without a `Server` gets the
//! default inbound policy (Linkerd's own default is `all-unauthenticated`); a
//! `Server`'s `accessPolicy` (default `deny`) decides what no authorization allows;
//! a `Server` with routes answers requests matching none of them with 404; every
//! `requiredAuthenticationRefs` entry must match; a policy that references a
//! missing object is dropped (and reported).
//!
//! `identityRefs` (and `requiredAuthenticationRefs`) of kind `ServiceAccount` or
//! `Namespace` mean identities of the local trust domain only, as in Linkerd, which
//! expands them to `<sa>.<ns>.serviceaccount.identity.<control-plane-ns>.<identity
//! trust domain>`. The manifests do not say which trust domain that is, so the
//! imported policy takes Linkerd's default identity trust domain, `cluster.local`
//! ([`LINKERD_TRUST_DOMAIN`]), as its `local_trust_domains`: a peer of another trust
//! domain never matches such a reference. Linkerd's control-plane namespace is not
//! compared.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::error::PolicyError;
use super::load::yaml_error;
use super::manifest::{MetaOnly, Object, and_sources, parse_all};
use super::model::{
    Action, ConditionSpec, DefaultPolicy, OperationSpec, PolicySpec, RouteMatchSpec, RouteSpec,
    RuleSpec, ServerSpec, SourceSpec,
};
use super::values::{Network, PortRange, TrustDomainName};

/// The trust domain `ServiceAccount` and `Namespace` references mean: Linkerd's
/// default identity trust domain (`identityTrustDomain` of the control plane).
pub(crate) const LINKERD_TRUST_DOMAIN: &str = "cluster.local";

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct Server {
    #[serde(default)]
    pod_selector: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    external_workload_selector: Option<serde::de::IgnoredAny>,
    port: PortRef,
    #[serde(default)]
    proxy_protocol: Option<String>,
    #[serde(default)]
    access_policy: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum PortRef {
    Number(u16),
    Name(String),
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct HttpRoute {
    #[serde(default)]
    parent_refs: Vec<Ref>,
    #[serde(default)]
    hostnames: Vec<String>,
    #[serde(default)]
    rules: Vec<RouteRule>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RouteRule {
    #[serde(default)]
    matches: Vec<RouteMatch>,
    #[serde(default, rename = "filters")]
    _filters: Option<serde::de::IgnoredAny>,
    #[serde(default, rename = "backendRefs")]
    _backend_refs: Option<serde::de::IgnoredAny>,
    #[serde(default, rename = "timeouts")]
    _timeouts: Option<serde::de::IgnoredAny>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RouteMatch {
    #[serde(default)]
    path: Option<TypedValue>,
    #[serde(default)]
    method: Option<String>,
    #[serde(default)]
    headers: Vec<HeaderMatch>,
    #[serde(default)]
    query_params: Vec<serde::de::IgnoredAny>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TypedValue {
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    value: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HeaderMatch {
    name: String,
    value: String,
    #[serde(default, rename = "type")]
    kind: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Ref {
    #[serde(default, rename = "group")]
    _group: Option<String>,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default, rename = "port")]
    _port: Option<u16>,
    #[serde(default, rename = "sectionName")]
    _section: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct AuthorizationPolicy {
    target_ref: Ref,
    #[serde(default)]
    required_authentication_refs: Vec<Ref>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct MeshTls {
    #[serde(default)]
    identities: Option<Vec<String>>,
    #[serde(default)]
    identity_refs: Option<Vec<Ref>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NetworkAuthn {
    networks: Vec<Network>,
}

/// Linkerd objects of one file.
#[derive(Default)]
pub(crate) struct Objects {
    servers: Vec<Object<Server>>,
    routes: Vec<Object<HttpRoute>>,
    authz: Vec<Object<AuthorizationPolicy>>,
    mtls: BTreeMap<String, Vec<SourceSpec>>,
    networks: BTreeMap<String, Vec<SourceSpec>>,
    default: Option<DefaultPolicy>,
}

fn de<T: for<'de> Deserialize<'de>>(doc: yaml_serde::Deserializer<'_>) -> Result<T, PolicyError> {
    T::deserialize(doc).map_err(|e| yaml_error(&e))
}

impl Objects {
    pub(crate) fn is_empty(&self) -> bool {
        self.servers.is_empty() && self.routes.is_empty() && self.authz.is_empty()
    }

    /// Reads one document; false when the kind is not Linkerd's.
    pub(crate) fn read(
        &mut self,
        group: &str,
        kind: &str,
        doc: yaml_serde::Deserializer<'_>,
        warnings: &mut Vec<String>,
    ) -> Result<bool, PolicyError> {
        match (group, kind) {
            ("policy.linkerd.io", "Server") => {
                let s: Object<Server> = de(doc)?;
                if s.spec.pod_selector.is_some() || s.spec.external_workload_selector.is_some() {
                    warnings.push(format!(
                        "server `{}`: its workload selector is not enforced in-process; this process is taken to be the selected workload",
                        s.metadata.qualified()
                    ));
                }
                self.servers.push(s);
            }
            ("policy.linkerd.io" | "gateway.networking.k8s.io", "HTTPRoute") => {
                self.routes.push(de(doc)?)
            }
            ("policy.linkerd.io", "AuthorizationPolicy") => self.authz.push(de(doc)?),
            ("policy.linkerd.io", "MeshTLSAuthentication") => {
                let o: Object<MeshTls> = de(doc)?;
                let sources = mesh_tls_sources(&o)?;
                self.mtls.insert(o.metadata.qualified(), sources);
            }
            ("policy.linkerd.io", "NetworkAuthentication") => {
                let o: Object<NetworkAuthn> = de(doc)?;
                let source = SourceSpec {
                    networks: Some(o.spec.networks.into()),
                    ..SourceSpec::default()
                };
                self.networks.insert(o.metadata.qualified(), vec![source]);
            }
            ("", "Namespace") => {
                let o: MetaOnly = de(doc)?;
                match o
                    .metadata
                    .annotations
                    .get("config.linkerd.io/default-inbound-policy")
                {
                    Some(d) => {
                        self.default = Some(DefaultPolicy::from_name(d).ok_or_else(|| {
                            PolicyError::invalid(format!(
                                "namespace `{}`: unknown default-inbound-policy `{d}`",
                                o.metadata.name
                            ))
                        })?);
                    }
                    None => return Ok(false),
                }
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    pub(crate) fn into_spec(
        self,
        _context: Option<&super::workload::WorkloadContext>,
    ) -> Result<(PolicySpec, Vec<String>), PolicyError> {
        let mut warnings = Vec::new();
        let default = self.default.unwrap_or_else(|| {
            warnings.push(
                "no `config.linkerd.io/default-inbound-policy` given: ports without a Server use Linkerd's default `all-unauthenticated`"
                    .to_owned(),
            );
            DefaultPolicy::AllUnauthenticated
        });
        let mut servers: Vec<ServerSpec> = Vec::new();
        let mut server_ns: Vec<String> = Vec::new();
        for s in &self.servers {
            let name = s.metadata.qualified();
            let port = match &s.spec.port {
                PortRef::Number(p) if *p > 0 => PortRange { start: *p, end: *p },
                PortRef::Number(p) => {
                    return Err(PolicyError::invalid(format!(
                        "server `{name}`: invalid port `{p}`"
                    )));
                }
                PortRef::Name(n) => {
                    return Err(PolicyError::unsupported(format!(
                        "server `{name}`: named port `{n}` cannot be resolved in-process; use the port number"
                    )));
                }
            };
            let access = s.spec.access_policy.as_deref().unwrap_or("deny");
            let default = DefaultPolicy::from_name(access).ok_or_else(|| {
                PolicyError::invalid(format!("server `{name}`: unknown accessPolicy `{access}`"))
            })?;
            if let Some(p) = s.spec.proxy_protocol.as_ref().filter(|p| {
                !matches!(
                    p.as_str(),
                    "unknown" | "HTTP/1" | "HTTP/2" | "gRPC" | "opaque" | "TLS"
                )
            }) {
                return Err(PolicyError::invalid(format!(
                    "server `{name}`: unknown proxyProtocol `{p}`"
                )));
            }
            servers.push(ServerSpec {
                name,
                ports: vec![port],
                default,
                routes: None,
            });
            server_ns.push(s.metadata.ns().to_owned());
        }
        // Routes, keyed by qualified name, with the ports of their parent servers.
        let mut routes: BTreeMap<String, (Vec<PortRange>, Vec<RouteMatchSpec>)> = BTreeMap::new();
        for r in &self.routes {
            let rname = r.metadata.qualified();
            if !r.spec.hostnames.is_empty() {
                warnings.push(format!(
                    "route `{rname}`: `hostnames` are not matched in-process"
                ));
            }
            let matches = route_matches(&rname, &r.spec)?;
            let mut ports = Vec::new();
            for parent in &r.spec.parent_refs {
                let pname = format!(
                    "{}/{}",
                    parent.namespace.as_deref().unwrap_or(r.metadata.ns()),
                    parent.name.as_deref().unwrap_or_default()
                );
                match servers
                    .iter_mut()
                    .find(|s| s.name == pname && parent.kind.as_deref() == Some("Server"))
                {
                    Some(s) => {
                        ports.extend(s.ports.iter().copied());
                        s.routes.get_or_insert_with(Vec::new).push(RouteSpec {
                            name: rname.clone(),
                            matches: matches.clone(),
                        });
                    }
                    None => warnings.push(format!(
                        "route `{rname}`: parent `{pname}` is not a Server in this file; ignored"
                    )),
                }
            }
            routes.insert(rname, (ports, matches));
        }
        let mut rules = Vec::new();
        for a in &self.authz {
            let aname = a.metadata.qualified();
            let ns = a.metadata.ns();
            let mut from = vec![SourceSpec::default()];
            let mut missing = None;
            for r in &a.spec.required_authentication_refs {
                let target = format!(
                    "{}/{}",
                    r.namespace.as_deref().unwrap_or(ns),
                    r.name.as_deref().unwrap_or_default()
                );
                let part = match r.kind.as_deref() {
                    Some("MeshTLSAuthentication") => self.mtls.get(&target).cloned(),
                    Some("NetworkAuthentication") => self.networks.get(&target).cloned(),
                    Some("ServiceAccount") => Some(vec![SourceSpec {
                        service_accounts: Some(
                            parse_all(&aname, std::slice::from_ref(&target))?.into(),
                        ),
                        ..SourceSpec::default()
                    }]),
                    other => {
                        return Err(PolicyError::unsupported(format!(
                            "authorization policy `{aname}`: unsupported authentication kind `{}`",
                            other.unwrap_or_default()
                        )));
                    }
                };
                match part {
                    Some(part) => {
                        from = and_sources(from, part).map_err(|e| {
                            PolicyError::unsupported(format!("authorization policy `{aname}`: {e}"))
                        })?;
                    }
                    None => missing = Some(target),
                }
            }
            if let Some(target) = missing {
                warnings.push(format!(
                    "authorization policy `{aname}` references `{target}`, which is not in this file: dropped (as Linkerd does)"
                ));
                continue;
            }
            let t = &a.spec.target_ref;
            let tname = format!(
                "{}/{}",
                t.namespace.as_deref().unwrap_or(ns),
                t.name.as_deref().unwrap_or_default()
            );
            let targets: Vec<(Vec<PortRange>, Option<RouteMatchSpec>)> = match t.kind.as_deref() {
                Some("Server") => servers
                    .iter()
                    .filter(|s| s.name == tname)
                    .map(|s| (s.ports.clone(), None))
                    .collect(),
                Some("HTTPRoute") => match routes.get(&tname) {
                    Some((ports, ms)) if ms.is_empty() => vec![(ports.clone(), None)],
                    Some((ports, ms)) => ms
                        .iter()
                        .map(|m| (ports.clone(), Some(m.clone())))
                        .collect(),
                    None => Vec::new(),
                },
                Some("Namespace") => {
                    let target_ns = t.name.as_deref().unwrap_or(ns);
                    servers
                        .iter()
                        .zip(&server_ns)
                        .filter(|(_, sns)| *sns == target_ns)
                        .map(|(s, _)| (s.ports.clone(), None))
                        .collect()
                }
                other => {
                    return Err(PolicyError::unsupported(format!(
                        "authorization policy `{aname}`: unsupported target kind `{}`",
                        other.unwrap_or_default()
                    )));
                }
            };
            if targets.is_empty() {
                warnings.push(format!("authorization policy `{aname}`: target `{tname}` matches nothing in this file; dropped"));
                continue;
            }
            let many = targets.len() > 1;
            for (i, (ports, m)) in targets.into_iter().enumerate() {
                let mut rule = RuleSpec::new(
                    if many {
                        format!("{aname}#{i}")
                    } else {
                        aname.clone()
                    },
                    Action::Allow,
                );
                rule.from = (!from.iter().all(|s| *s == SourceSpec::default()))
                    .then(|| from.clone().into());
                let mut op = OperationSpec {
                    ports: (!ports.is_empty()).then(|| ports.into()),
                    ..OperationSpec::default()
                };
                if let Some(m) = m {
                    op.paths = m.paths;
                    op.methods = m.methods;
                    rule.when = (!m.headers.is_empty()).then_some(m.headers);
                }
                rule.to = Some(vec![op].into());
                rules.push(rule);
            }
        }
        let spec = PolicySpec {
            default,
            servers,
            rules,
            local_trust_domains: vec![TrustDomainName(LINKERD_TRUST_DOMAIN.into())],
            ..PolicySpec::default()
        };
        Ok((spec, warnings))
    }
}

fn mesh_tls_sources(o: &Object<MeshTls>) -> Result<Vec<SourceSpec>, PolicyError> {
    let name = o.metadata.qualified();
    let mut out = Vec::new();
    if let Some(ids) = &o.spec.identities {
        out.push(SourceSpec {
            identities: Some(parse_all(&name, ids)?.into()),
            ..SourceSpec::default()
        });
    }
    for r in o.spec.identity_refs.iter().flatten() {
        let target_ns = r.namespace.as_deref().unwrap_or(o.metadata.ns());
        let rname = r.name.as_deref().unwrap_or("*");
        out.push(match r.kind.as_deref() {
            Some("ServiceAccount") => SourceSpec {
                service_accounts: Some(parse_all(&name, &[format!("{target_ns}/{rname}")])?.into()),
                ..SourceSpec::default()
            },
            Some("Namespace") => SourceSpec {
                namespaces: Some(parse_all(&name, &[rname.to_owned()])?.into()),
                ..SourceSpec::default()
            },
            other => {
                return Err(PolicyError::unsupported(format!(
                    "mesh tls authentication `{name}`: unsupported identityRef kind `{}`",
                    other.unwrap_or_default()
                )));
            }
        });
    }
    if out.is_empty() {
        return Err(PolicyError::invalid(format!(
            "mesh tls authentication `{name}` has neither `identities` nor `identityRefs`"
        )));
    }
    Ok(out)
}

fn route_matches(rname: &str, route: &HttpRoute) -> Result<Vec<RouteMatchSpec>, PolicyError> {
    let mut out = Vec::new();
    for rule in &route.rules {
        if rule.matches.is_empty() {
            // Gateway API: no match means PathPrefix `/`.
            out.push(RouteMatchSpec::default());
        }
        for m in &rule.matches {
            if !m.query_params.is_empty() {
                return Err(PolicyError::unsupported(format!(
                    "route `{rname}`: query parameter matches are not supported"
                )));
            }
            let mut spec = RouteMatchSpec::default();
            if let Some(p) = &m.path {
                let value = p.value.as_deref().unwrap_or("/");
                let paths = match p.kind.as_deref().unwrap_or("PathPrefix") {
                    "Exact" => vec![value.to_owned()],
                    "PathPrefix" => {
                        let base = value.trim_end_matches('/');
                        if base.is_empty() {
                            vec!["/*".to_owned()]
                        } else {
                            vec![base.to_owned(), format!("{base}/*")]
                        }
                    }
                    other => {
                        return Err(PolicyError::unsupported(format!(
                            "route `{rname}`: path match type `{other}` is not supported (use Exact or PathPrefix)"
                        )));
                    }
                };
                spec.paths = Some(parse_all(rname, &paths)?.into());
            }
            if let Some(method) = &m.method {
                spec.methods = Some(parse_all(rname, std::slice::from_ref(method))?.into());
            }
            for h in &m.headers {
                if h.kind.as_deref().is_some_and(|k| k != "Exact") {
                    return Err(PolicyError::unsupported(format!(
                        "route `{rname}`: header match type `{}` is not supported",
                        h.kind.as_deref().unwrap_or_default()
                    )));
                }
                let value = h.value.replace('*', "");
                if value != h.value {
                    return Err(PolicyError::unsupported(format!(
                        "route `{rname}`: header value `{}` contains `*`",
                        h.value
                    )));
                }
                let c = ConditionSpec::header(
                    parse_all(rname, std::slice::from_ref(&h.name))?.remove(0),
                    Some(parse_all(rname, &[value])?.into()),
                    None,
                );
                spec.headers.push(c);
            }
            out.push(spec);
        }
    }
    Ok(out)
}
