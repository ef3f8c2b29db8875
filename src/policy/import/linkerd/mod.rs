//! Linkerd policy manifests: `Server`, `HTTPRoute`, `GRPCRoute`,
//! `AuthorizationPolicy`, `ServerAuthorization`, `MeshTLSAuthentication`,
//! `NetworkAuthentication`, and the `config.linkerd.io/default-inbound-policy`
//! annotation of a `Namespace`.
//!
//! Semantics follow Linkerd's documentation and its policy controller:
//!
//! - A `Server` applies to the pods its `podSelector` selects, in its own namespace.
//!   With a [`WorkloadContext`], Servers of other namespaces or whose selector does
//!   not select this workload's labels are skipped (with their routes and
//!   authorizations), and listed in [`Policy::skipped`](crate::policy::Policy::skipped).
//!   Without one, a Server that selects by label cannot be placed, so it is refused,
//!   and so is a named `port` (a container port's name): load with
//!   `Policy::from_yaml_for` and a context with the pod's labels and named ports.
//! - A port without a `Server` gets the namespace's default inbound policy
//!   (Linkerd's own default is `all-unauthenticated`); a `Server`'s `accessPolicy`
//!   (default `deny`) decides what no authorization allows.
//! - A request goes to exactly one route of its Server (see [`ServerSpec::routes`]);
//!   a Server with routes answers requests matching none of them with 404. An
//!   authorization of a `Server` (or of the namespace) applies to every route; one of
//!   an `HTTPRoute`/`GRPCRoute` only to the requests that route wins.
//! - Every `requiredAuthenticationRefs` entry must match; a policy that references a
//!   missing object is dropped (and reported), and so is a route whose parent
//!   `Server` is not in the file (Linkerd does not accept it).
//!
//! `identityRefs`, `requiredAuthenticationRefs` and `ServerAuthorization`
//! `serviceAccounts` of kind `ServiceAccount` or `Namespace` mean identities of the
//! local trust domain only, as in Linkerd, which expands them to
//! `<sa>.<ns>.serviceaccount.identity.<control-plane-ns>.<identity trust domain>`.
//! The manifests do not say which trust domain that is, so the imported policy takes
//! Linkerd's default identity trust domain, `cluster.local`
//! ([`LINKERD_TRUST_DOMAIN`]), as its `local_trust_domains`: a peer of another trust
//! domain never matches such a reference. Linkerd's control-plane namespace is not
//! compared.
//!
//! [`ServerSpec::routes`]: crate::policy::ServerSpec::routes
//! [`WorkloadContext`]: crate::policy::WorkloadContext

mod route;
mod select;

use std::collections::BTreeMap;

use serde::Deserialize;

use self::route::{ParentRef, RouteSpecDoc};
use self::select::LabelSelector;
use crate::policy::error::PolicyError;
use crate::policy::error::yaml_error;
use crate::policy::import::document::{MetaOnly, and_sources, parse_all};
use crate::policy::model::{
    Action, DefaultPolicy, OperationSpec, PolicySpec, RouteSpec, RuleSpec, ServerSpec, SourceSpec,
};
use crate::policy::values::{Network, PortRange, TrustDomainName};
use crate::policy::workload::WorkloadContext;

/// The trust domain `ServiceAccount` and `Namespace` references mean: Linkerd's
/// default identity trust domain (`identityTrustDomain` of the control plane).
pub(crate) const LINKERD_TRUST_DOMAIN: &str = "cluster.local";

/// `metadata` as Linkerd reads it: with the labels (`ServerAuthorization` selects
/// Servers by them) and the creation time (routes are ordered by it).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LMeta {
    name: String,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    creation_timestamp: Option<String>,
}

impl LMeta {
    fn ns(&self) -> &str {
        self.namespace.as_deref().unwrap_or("default")
    }

    fn qualified(&self) -> String {
        format!("{}/{}", self.ns(), self.name)
    }
}

/// A Kubernetes object with a typed `spec`, as Linkerd reads it.
#[derive(Debug, Deserialize)]
struct Doc<S> {
    #[serde(rename = "apiVersion")]
    _api_version: String,
    kind: String,
    metadata: LMeta,
    spec: S,
    #[serde(default, rename = "status")]
    _status: Option<serde::de::IgnoredAny>,
}

impl<S> Doc<S> {
    /// `Kind namespace/name`, as errors and warnings name a document.
    fn id(&self) -> String {
        format!("{} {}", self.kind, self.metadata.qualified())
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Server {
    #[serde(default)]
    pod_selector: Option<LabelSelector>,
    #[serde(default)]
    external_workload_selector: Option<LabelSelector>,
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
struct AuthorizationPolicy {
    target_ref: Ref,
    #[serde(default)]
    required_authentication_refs: Vec<Ref>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServerAuthorization {
    server: ServerRef,
    client: Client,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServerRef {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    selector: Option<LabelSelector>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Client {
    #[serde(default)]
    networks: Option<Vec<Network>>,
    #[serde(default)]
    unauthenticated: bool,
    #[serde(default, rename = "meshTLS")]
    mesh_tls: Option<ClientMeshTls>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ClientMeshTls {
    #[serde(default, rename = "unauthenticatedTLS")]
    unauthenticated_tls: bool,
    #[serde(default)]
    identities: Option<Vec<String>>,
    #[serde(default)]
    service_accounts: Option<Vec<SaRef>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SaRef {
    name: String,
    #[serde(default)]
    namespace: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct MeshTls {
    #[serde(default)]
    identities: Option<Vec<String>>,
    #[serde(default)]
    identity_refs: Option<Vec<Ref>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NetworkAuthn {
    networks: Vec<Network>,
}

/// Linkerd objects of one file.
#[derive(Default)]
pub(crate) struct Objects {
    servers: Vec<Doc<Server>>,
    routes: Vec<(Doc<RouteSpecDoc>, bool)>,
    authz: Vec<Doc<AuthorizationPolicy>>,
    server_authz: Vec<Doc<ServerAuthorization>>,
    mtls: BTreeMap<String, Vec<SourceSpec>>,
    networks: BTreeMap<String, Vec<SourceSpec>>,
    /// `(namespace, default)` of each annotated `Namespace`.
    defaults: Vec<(String, DefaultPolicy)>,
}

fn de<T: for<'de> Deserialize<'de>>(doc: yaml_serde::Deserializer<'_>) -> Result<T, PolicyError> {
    T::deserialize(doc).map_err(|e| yaml_error(&e))
}

/// A selected Server, as the rest of the import sees it.
struct Placed {
    spec: ServerSpec,
    ns: String,
    labels: BTreeMap<String, String>,
    grpc: bool,
}

impl Objects {
    pub(crate) fn is_empty(&self) -> bool {
        self.servers.is_empty()
            && self.routes.is_empty()
            && self.authz.is_empty()
            && self.server_authz.is_empty()
    }

    /// Reads one document; false when the kind is not Linkerd's.
    pub(crate) fn read(
        &mut self,
        group: &str,
        kind: &str,
        doc: yaml_serde::Deserializer<'_>,
        _warnings: &mut Vec<String>,
    ) -> Result<bool, PolicyError> {
        match (group, kind) {
            ("policy.linkerd.io", "Server") => self.servers.push(de(doc)?),
            ("policy.linkerd.io" | "gateway.networking.k8s.io", "HTTPRoute") => {
                self.routes.push((de(doc)?, false))
            }
            ("gateway.networking.k8s.io", "GRPCRoute") => self.routes.push((de(doc)?, true)),
            ("policy.linkerd.io", "AuthorizationPolicy") => self.authz.push(de(doc)?),
            ("policy.linkerd.io", "ServerAuthorization") => self.server_authz.push(de(doc)?),
            ("policy.linkerd.io", "MeshTLSAuthentication") => {
                let o: Doc<MeshTls> = de(doc)?;
                let sources = mesh_tls_sources(&o)?;
                self.mtls.insert(o.metadata.qualified(), sources);
            }
            ("policy.linkerd.io", "NetworkAuthentication") => {
                let o: Doc<NetworkAuthn> = de(doc)?;
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
                        let policy = DefaultPolicy::from_name(d).ok_or_else(|| {
                            PolicyError::invalid(format!(
                                "`Namespace {}`: unknown `config.linkerd.io/default-inbound-policy` `{d}`",
                                o.metadata.name
                            ))
                        })?;
                        self.defaults.push((o.metadata.name.clone(), policy));
                    }
                    None => return Ok(false),
                }
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// The namespace this workload is in: the context's, or (without one) the one
    /// namespace the Servers share.
    fn home(&self, context: Option<&WorkloadContext>) -> Result<Option<String>, PolicyError> {
        match context {
            Some(ctx) => match ctx.namespace() {
                Some(ns) => Ok(Some(ns.to_owned())),
                None => Err(PolicyError::invalid(
                    "the workload context has no namespace, so Linkerd Servers cannot be placed: set `WorkloadContext::identity` (a Kubernetes-shaped SPIFFE ID or Linkerd identity) or `WorkloadContext::namespace_name`",
                )),
            },
            None => {
                let mut nss: Vec<&str> = self.servers.iter().map(|s| s.metadata.ns()).collect();
                nss.sort_unstable();
                nss.dedup();
                match nss.as_slice() {
                    [] => Ok(None),
                    [one] => Ok(Some((*one).to_owned())),
                    many => Err(PolicyError::invalid(format!(
                        "the file has Linkerd Servers of namespaces `{}`: load it with `Policy::from_yaml_for` (or `load_for`) and a `WorkloadContext` naming this workload's namespace and pod labels",
                        many.join("`, `")
                    ))),
                }
            }
        }
    }

    /// Whether Server `s` applies to this workload: `Err` with the reason when not.
    fn place(
        s: &Doc<Server>,
        home: Option<&str>,
        context: Option<&WorkloadContext>,
    ) -> Result<Result<PortRange, String>, PolicyError> {
        let id = s.id();
        let (field, selector) = match (&s.spec.pod_selector, &s.spec.external_workload_selector) {
            (Some(p), None) => ("podSelector", p),
            (None, Some(e)) => ("externalWorkloadSelector", e),
            _ => {
                return Err(PolicyError::invalid(format!(
                    "`{id}`: a Server has exactly one of `podSelector` and `externalWorkloadSelector` (`podSelector: {{}}` selects every pod of its namespace)"
                )));
            }
        };
        selector.validate(&format!("`{id}`"), field)?;
        if home.is_some_and(|h| h != s.metadata.ns()) {
            return Ok(Err(format!(
                "`{id}`: another namespace than this workload's `{}`",
                home.unwrap_or_default()
            )));
        }
        match context {
            Some(ctx) if !selector.matches(ctx.labels()) => {
                return Ok(Err(format!(
                    "`{id}`: its `{field}` does not select this workload's labels"
                )));
            }
            None if !selector.is_empty() => {
                return Err(PolicyError::invalid(format!(
                    "`{id}`: its `{field}` selects pods by label, and without a workload context meshless cannot tell whether it selects this one: load with `Policy::from_yaml_for` (or `load_for`) and a `WorkloadContext` with this pod's namespace and labels (`WorkloadContext::label`, `labels_from_file`)"
                )));
            }
            _ => {}
        }
        let port = match &s.spec.port {
            PortRef::Number(p) if *p > 0 => *p,
            PortRef::Number(p) => {
                return Err(PolicyError::invalid(format!(
                    "`{id}`: `port` `{p}` is not a port"
                )));
            }
            PortRef::Name(n) => context.and_then(|c| c.port(n)).ok_or_else(|| {
                PolicyError::invalid(format!(
                    "`{id}`: `port` names the container port `{n}`, which the workload context does not resolve: add it with `WorkloadContext::named_port(\"{n}\", <number>)` and load with `Policy::from_yaml_for` (or `load_for`)"
                ))
            })?,
        };
        Ok(Ok(PortRange {
            start: port,
            end: port,
        }))
    }

    pub(crate) fn into_spec(
        self,
        context: Option<&WorkloadContext>,
    ) -> Result<(PolicySpec, Vec<String>), PolicyError> {
        let mut warnings = Vec::new();
        let mut skipped = Vec::new();
        let home = self.home(context)?;
        let default = self.default_policy(home.as_deref(), &mut skipped, &mut warnings)?;
        let placed = self.place_servers(home.as_deref(), context, &mut skipped, &mut warnings)?;
        let mut servers: Vec<ServerSpec> = placed.iter().map(|p| p.spec.clone()).collect();
        let routes = self.attach_routes(&placed, &mut servers, &mut skipped, &mut warnings)?;
        let mut rules = Vec::new();
        self.server_authorizations(
            &placed,
            home.as_deref(),
            &mut rules,
            &mut skipped,
            &mut warnings,
        )?;
        self.authorization_policies(
            &placed,
            &routes,
            home.as_deref(),
            &mut rules,
            &mut skipped,
            &mut warnings,
        )?;
        for why in &skipped {
            warnings.push(format!("skipped {why}"));
        }
        let spec = PolicySpec {
            default,
            servers,
            rules,
            local_trust_domains: vec![TrustDomainName(LINKERD_TRUST_DOMAIN.into())],
            skipped,
            ..PolicySpec::default()
        };
        Ok((spec, warnings))
    }

    fn default_policy(
        &self,
        home: Option<&str>,
        skipped: &mut Vec<String>,
        warnings: &mut Vec<String>,
    ) -> Result<DefaultPolicy, PolicyError> {
        let mut found: Option<&(String, DefaultPolicy)> = None;
        for d in &self.defaults {
            if home.is_some_and(|h| h != d.0) {
                skipped.push(format!(
                    "`Namespace {}`: not this workload's namespace",
                    d.0
                ));
                continue;
            }
            if let Some(prev) = found.filter(|p| p.1 != d.1) {
                return Err(PolicyError::invalid(format!(
                    "namespaces `{}` and `{}` set different default inbound policies: load with a `WorkloadContext` naming this workload's namespace",
                    prev.0, d.0
                )));
            }
            found = Some(d);
        }
        Ok(match found {
            Some(d) => d.1,
            None => {
                warnings.push(
                    "no `config.linkerd.io/default-inbound-policy` given: ports without a Server use Linkerd's default `all-unauthenticated`"
                        .to_owned(),
                );
                DefaultPolicy::AllUnauthenticated
            }
        })
    }

    /// The Servers that apply to this workload, in Linkerd's order (creation time,
    /// then name); of two on one port the first wins, as in Linkerd.
    fn place_servers(
        &self,
        home: Option<&str>,
        context: Option<&WorkloadContext>,
        skipped: &mut Vec<String>,
        warnings: &mut Vec<String>,
    ) -> Result<Vec<Placed>, PolicyError> {
        let mut order: Vec<&Doc<Server>> = self.servers.iter().collect();
        order.sort_by(|a, b| created(&a.metadata, &b.metadata));
        let mut out: Vec<Placed> = Vec::new();
        for s in order {
            let id = s.id();
            let port = match Self::place(s, home, context)? {
                Ok(port) => port,
                Err(why) => {
                    skipped.push(why);
                    continue;
                }
            };
            let access = s.spec.access_policy.as_deref().unwrap_or("deny");
            let default = DefaultPolicy::from_name(access).ok_or_else(|| {
                PolicyError::invalid(format!("`{id}`: unknown `accessPolicy` `{access}`"))
            })?;
            let protocol = s.spec.proxy_protocol.as_deref().unwrap_or("unknown");
            if !matches!(
                protocol,
                "unknown" | "HTTP/1" | "HTTP/2" | "gRPC" | "opaque" | "TLS"
            ) {
                return Err(PolicyError::invalid(format!(
                    "`{id}`: unknown `proxyProtocol` `{protocol}`"
                )));
            }
            if let Some(prior) = out.iter().find(|p| p.spec.ports.contains(&port)) {
                warnings.push(format!(
                    "`{id}`: port `{}` is already selected by server `{}`; ignored, as Linkerd does",
                    port.start, prior.spec.name
                ));
                continue;
            }
            out.push(Placed {
                spec: ServerSpec {
                    name: s.metadata.qualified(),
                    ports: vec![port],
                    default,
                    routes: None,
                },
                ns: s.metadata.ns().to_owned(),
                labels: s.metadata.labels.clone(),
                grpc: protocol == "gRPC",
            });
        }
        Ok(out)
    }

    /// Attaches each route to its parent Servers; returns the ports of each attached
    /// route (by qualified name).
    fn attach_routes(
        &self,
        placed: &[Placed],
        servers: &mut [ServerSpec],
        skipped: &mut Vec<String>,
        warnings: &mut Vec<String>,
    ) -> Result<BTreeMap<String, Vec<PortRange>>, PolicyError> {
        let mut order: Vec<&(Doc<RouteSpecDoc>, bool)> = self.routes.iter().collect();
        order.sort_by(|a, b| created(&a.0.metadata, &b.0.metadata));
        let mut out: BTreeMap<String, Vec<PortRange>> = BTreeMap::new();
        for (r, grpc) in order {
            let id = r.id();
            let rname = r.metadata.qualified();
            let converted = route::convert(&id, &r.spec, *grpc)?;
            warnings.extend(converted.warnings.iter().cloned());
            if converted.matches.is_empty() {
                warnings.push(format!(
                    "`{id}`: `rules` is empty, so it matches no request; ignored"
                ));
                continue;
            }
            let mut ports = Vec::new();
            for parent in &r.spec.parent_refs {
                let pname = parent_name(parent, r.metadata.ns());
                if !is_server(parent) {
                    warnings.push(format!(
                        "`{id}`: parent `{pname}` is not a policy.linkerd.io Server; that parent is ignored"
                    ));
                    continue;
                }
                match placed.iter().position(|p| p.spec.name == pname) {
                    Some(i) if placed[i].grpc != *grpc => warnings.push(format!(
                        "`{id}`: server `{pname}` is {}, so Linkerd serves it {}; this route is ignored there",
                        if placed[i].grpc { "a gRPC server" } else { "not a gRPC server" },
                        if placed[i].grpc { "with GRPCRoutes only" } else { "with HTTPRoutes only" }
                    )),
                    Some(i) => {
                        ports.extend(servers[i].ports.iter().copied());
                        servers[i].routes.get_or_insert_with(Vec::new).push(RouteSpec {
                            name: rname.clone(),
                            hosts: converted.hosts.clone(),
                            matches: converted.matches.clone(),
                        });
                    }
                    None if self.servers.iter().any(|s| s.metadata.qualified() == pname) => {
                        skipped.push(format!("`{id}`: its parent server `{pname}` is not this workload's"));
                    }
                    None => warnings.push(format!(
                        "`{id}`: parent server `{pname}` is not in the file, so Linkerd does not accept the route: ignored, with the policies that target it"
                    )),
                }
            }
            if !ports.is_empty() {
                out.insert(rname, ports);
            }
        }
        Ok(out)
    }

    fn server_authorizations(
        &self,
        placed: &[Placed],
        home: Option<&str>,
        rules: &mut Vec<RuleSpec>,
        skipped: &mut Vec<String>,
        warnings: &mut Vec<String>,
    ) -> Result<(), PolicyError> {
        for a in &self.server_authz {
            let id = a.id();
            let ns = a.metadata.ns();
            let from = client_sources(&id, ns, &a.spec.client)?;
            if let Some(sel) = &a.spec.server.selector {
                sel.validate(&format!("`{id}`"), "server.selector")?;
            }
            let selects = |p: &Placed| {
                p.ns == ns
                    && match (&a.spec.server.name, &a.spec.server.selector) {
                        (Some(n), None) => p.spec.name == format!("{ns}/{n}"),
                        (None, Some(sel)) => sel.matches(&p.labels),
                        (None, None) => true,
                        (Some(_), Some(_)) => false,
                    }
            };
            if a.spec.server.name.is_some() && a.spec.server.selector.is_some() {
                return Err(PolicyError::invalid(format!(
                    "`{id}`: `server` has exactly one of `name` and `selector`"
                )));
            }
            let ports: Vec<PortRange> = placed
                .iter()
                .filter(|p| selects(p))
                .flat_map(|p| p.spec.ports.iter().copied())
                .collect();
            if ports.is_empty() {
                if home.is_some_and(|h| h != ns)
                    || !self.servers.is_empty() && self.names_a_known_server(a, ns)
                {
                    skipped.push(format!(
                        "`{id}`: the servers it selects are not this workload's"
                    ));
                } else {
                    warnings.push(format!("`{id}`: selects no Server in the file; dropped"));
                }
                continue;
            }
            let mut rule = RuleSpec::new(id.clone(), Action::Allow);
            rule.from = Some(from.into());
            rule.to = Some(
                vec![OperationSpec {
                    ports: Some(ports.into()),
                    ..OperationSpec::default()
                }]
                .into(),
            );
            rules.push(rule);
        }
        Ok(())
    }

    fn names_a_known_server(&self, a: &Doc<ServerAuthorization>, ns: &str) -> bool {
        self.servers.iter().any(|s| {
            s.metadata.ns() == ns
                && match (&a.spec.server.name, &a.spec.server.selector) {
                    (Some(n), _) => s.metadata.name == *n,
                    (None, Some(sel)) => sel.matches(&s.metadata.labels),
                    (None, None) => true,
                }
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn authorization_policies(
        &self,
        placed: &[Placed],
        routes: &BTreeMap<String, Vec<PortRange>>,
        home: Option<&str>,
        rules: &mut Vec<RuleSpec>,
        skipped: &mut Vec<String>,
        warnings: &mut Vec<String>,
    ) -> Result<(), PolicyError> {
        for a in &self.authz {
            let id = a.id();
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
                            parse_all(&id, std::slice::from_ref(&target))?.into(),
                        ),
                        ..SourceSpec::default()
                    }]),
                    other => {
                        return Err(PolicyError::unsupported(format!(
                            "`{id}`: `requiredAuthenticationRefs[].kind` `{}` is not supported (MeshTLSAuthentication, NetworkAuthentication, ServiceAccount)",
                            other.unwrap_or_default()
                        )));
                    }
                };
                match part {
                    Some(part) => {
                        from = and_sources(from, part)
                            .map_err(|e| PolicyError::unsupported(format!("`{id}`: {e}")))?;
                    }
                    None => missing = Some(target),
                }
            }
            if let Some(target) = missing {
                warnings.push(format!(
                    "`{id}` references `{target}`, which is not in this file: dropped (as Linkerd does)"
                ));
                continue;
            }
            let t = &a.spec.target_ref;
            let tname = format!(
                "{}/{}",
                t.namespace.as_deref().unwrap_or(ns),
                t.name.as_deref().unwrap_or_default()
            );
            let (ports, route): (Vec<PortRange>, Option<&str>) = match t.kind.as_deref() {
                Some("Server") => (
                    placed
                        .iter()
                        .filter(|p| p.spec.name == tname)
                        .flat_map(|p| p.spec.ports.iter().copied())
                        .collect(),
                    None,
                ),
                Some("HTTPRoute" | "GRPCRoute") => match routes.get_key_value(&tname) {
                    Some((name, ports)) => (ports.clone(), Some(name.as_str())),
                    None => (Vec::new(), None),
                },
                Some("Namespace") => {
                    let target_ns = t.name.as_deref().unwrap_or(ns);
                    (
                        placed
                            .iter()
                            .filter(|p| p.ns == target_ns)
                            .flat_map(|p| p.spec.ports.iter().copied())
                            .collect(),
                        None,
                    )
                }
                other => {
                    return Err(PolicyError::unsupported(format!(
                        "`{id}`: `targetRef.kind` `{}` is not supported (Server, HTTPRoute, GRPCRoute, Namespace)",
                        other.unwrap_or_default()
                    )));
                }
            };
            if ports.is_empty() {
                let elsewhere = home.is_some_and(|h| h != ns)
                    || self.servers.iter().any(|s| s.metadata.qualified() == tname)
                    || self
                        .routes
                        .iter()
                        .any(|(r, _)| r.metadata.qualified() == tname)
                    || t.kind.as_deref() == Some("Namespace");
                if elsewhere {
                    skipped.push(format!(
                        "`{id}`: its target `{tname}` is not this workload's"
                    ));
                } else {
                    warnings.push(format!(
                        "`{id}`: target `{tname}` matches nothing in this file; dropped"
                    ));
                }
                continue;
            }
            let mut rule = RuleSpec::new(id.clone(), Action::Allow);
            rule.from = (!from.iter().all(|s| *s == SourceSpec::default())).then(|| from.into());
            rule.to = Some(
                vec![OperationSpec {
                    ports: Some(ports.into()),
                    routes: route.map(|r| vec![r.to_owned()].into()),
                    ..OperationSpec::default()
                }]
                .into(),
            );
            rules.push(rule);
        }
        Ok(())
    }
}

/// Linkerd's order of Servers and routes: creation time (objects with one first),
/// then name.
fn created(a: &LMeta, b: &LMeta) -> std::cmp::Ordering {
    let by_time = match (&a.creation_timestamp, &b.creation_timestamp) {
        (Some(x), Some(y)) => x.cmp(y),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    };
    by_time.then_with(|| a.qualified().cmp(&b.qualified()))
}

fn is_server(p: &ParentRef) -> bool {
    p.kind.as_deref() == Some("Server")
        && p.group.as_deref().is_none_or(|g| g == "policy.linkerd.io")
}

fn parent_name(p: &ParentRef, ns: &str) -> String {
    format!("{}/{}", p.namespace.as_deref().unwrap_or(ns), p.name)
}

/// The peers a `ServerAuthorization` `client` admits, as Linkerd's policy controller
/// reads it: `unauthenticated: true` or `meshTLS` (exactly one), each limited to
/// `networks` (or, without them, to the cluster networks).
fn client_sources(id: &str, ns: &str, c: &Client) -> Result<Vec<SourceSpec>, PolicyError> {
    let mut out = match (c.unauthenticated, &c.mesh_tls) {
        (true, None) => vec![SourceSpec::default()],
        (false, Some(m)) => {
            let mut out = Vec::new();
            let any = m.identities.is_some() || m.service_accounts.is_some();
            if m.unauthenticated_tls && any {
                return Err(PolicyError::invalid(format!(
                    "`{id}`: `client.meshTLS` has exactly one of `unauthenticatedTLS`, `identities` and `serviceAccounts`"
                )));
            }
            if m.unauthenticated_tls {
                // Any TLS client, with or without an identity. meshless never
                // accepts TLS without a client certificate, so that is every
                // authenticated peer (and never a plaintext one).
                out.push(SourceSpec {
                    authenticated: Some(true),
                    ..SourceSpec::default()
                });
            }
            if let Some(ids) = m.identities.as_ref().filter(|v| !v.is_empty()) {
                out.push(SourceSpec {
                    identities: Some(parse_all(id, ids)?.into()),
                    ..SourceSpec::default()
                });
            }
            let sas: Vec<String> = m
                .service_accounts
                .iter()
                .flatten()
                .map(|sa| format!("{}/{}", sa.namespace.as_deref().unwrap_or(ns), sa.name))
                .collect();
            if !sas.is_empty() {
                out.push(SourceSpec {
                    service_accounts: Some(parse_all(id, &sas)?.into()),
                    ..SourceSpec::default()
                });
            }
            if out.is_empty() {
                return Err(PolicyError::invalid(format!(
                    "`{id}`: `client.meshTLS` authorizes no clients (set `identities`, `serviceAccounts` or `unauthenticatedTLS`)"
                )));
            }
            out
        }
        _ => {
            return Err(PolicyError::invalid(format!(
                "`{id}`: `client` has exactly one of `meshTLS` and `unauthenticated: true`"
            )));
        }
    };
    // Linkerd: "If unset, the server chooses a default (typically, all IPs or the
    // cluster's pod network)": its policy controller uses the cluster networks.
    let networks = match &c.networks {
        Some(n) if !n.is_empty() => n.clone(),
        _ => crate::policy::matching::default_cluster_networks(),
    };
    for s in &mut out {
        s.networks = Some(networks.clone().into());
    }
    Ok(out)
}

fn mesh_tls_sources(o: &Doc<MeshTls>) -> Result<Vec<SourceSpec>, PolicyError> {
    let name = o.id();
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
