//! The native policy format (YAML, TOML, JSON all map to these types). Importers of
//! Linkerd and Istio manifests produce the same types, so everything is compiled and
//! evaluated one way.
//!
//! Unknown fields are errors: a typo (`identites:`) must never silently widen access.

use serde::{Deserialize, Serialize};

use super::claim::ClaimPath;
use super::pattern::{IdentityPattern, PathPattern};
use super::values::{
    AuthorityPattern, HeaderNamePattern, HostPattern, MethodPattern, NamespacePattern, Network,
    PortRange, ServiceAccountPattern, TextPattern, TrustDomainName,
};

/// A list of values in the model: a boxed slice, so a policy of 100,000 rules keeps
/// no spare capacity.
pub type List<T> = Box<[T]>;

/// A whole policy as written.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct PolicySpec {
    /// What happens when no rule decides. Absent means `deny`: meshless is deny by
    /// default (Linkerd's own cluster default is `all-unauthenticated`).
    #[serde(default)]
    pub default: DefaultPolicy,
    /// The cluster networks of the `cluster-*` defaults. Empty means Linkerd's
    /// defaults (`10.0.0.0/8`, `100.64.0.0/10`, `172.16.0.0/12`, `192.168.0.0/16`,
    /// `fd00::/8`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cluster_networks: Vec<Network>,
    /// The trust domains this deployment treats as its own (`local_trust_domains:
    /// [example.org]`). A `from` entry's `namespaces` and `service_accounts` (and
    /// their `not_` twins) name Kubernetes namespaces, and a namespace is only
    /// meaningful inside a trust domain: `web` of `example.org` and `web` of a
    /// federated `partner.example` are different teams. So an entry without
    /// `trust_domains` reads the namespace and service account only of identities of
    /// these trust domains; a peer of any other trust domain (or an unauthenticated
    /// one) has none, so it matches no `namespaces` and satisfies every
    /// `not_namespaces`. An entry that lists `trust_domains` reads them in those
    /// trust domains instead.
    ///
    /// A policy that uses `namespaces` or `service_accounts` in an entry without
    /// `trust_domains` must set this (or, for Istio's semantics,
    /// [`namespaces_in_any_trust_domain`](Self::namespaces_in_any_trust_domain)):
    /// otherwise it does not load, rather than match every trust domain. The
    /// Linkerd importer sets it to Linkerd's default identity trust domain,
    /// `cluster.local`.
    ///
    /// ```yaml
    /// local_trust_domains: [example.org]
    /// rules:
    ///   - name: web-reads
    ///     action: allow
    ///     from: [{namespaces: [web]}]          # spiffe://example.org/ns/web/... only
    ///   - name: partner-reads
    ///     action: allow
    ///     from: [{trust_domains: [partner.example], namespaces: [web]}]
    /// ```
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub local_trust_domains: Vec<TrustDomainName>,
    /// Istio's semantics, set by the Istio importer: `namespaces` and
    /// `service_accounts` of an entry without `trust_domains` match the namespace of
    /// an identity of **any** trust domain (Istio matches `source.namespaces`
    /// against `<any td>/ns/<ns>/...`), so a federated trust domain that issues
    /// `spiffe://<its td>/ns/web/...` matches `namespaces: [web]`. This relaxes
    /// [`local_trust_domains`](Self::local_trust_domains), and cannot be combined
    /// with it.
    #[serde(default, skip_serializing_if = "is_false")]
    pub namespaces_in_any_trust_domain: bool,
    /// Evaluate and log, but let every request through.
    #[serde(default, skip_serializing_if = "is_false")]
    pub dry_run: bool,
    /// Servers (Linkerd): ports with their own default and, optionally, routes; a
    /// request to a server with routes that matches none of them is answered 404.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub servers: Vec<ServerSpec>,
    /// The rules.
    #[serde(default)]
    pub rules: Vec<RuleSpec>,
    /// Documents of an imported manifest meant for other workloads, each with the
    /// reason (filled by the importers; never read from a native policy).
    #[serde(skip)]
    pub(crate) skipped: Vec<String>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// The default policy, with Linkerd's names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum DefaultPolicy {
    /// Deny everything no rule allows.
    #[default]
    Deny,
    /// Allow authenticated peers.
    AllAuthenticated,
    /// Allow every peer, authenticated or not.
    AllUnauthenticated,
    /// Allow authenticated peers from the cluster networks.
    ClusterAuthenticated,
    /// Allow any peer from the cluster networks.
    ClusterUnauthenticated,
    /// Allow everything, but flag the requests no rule allowed, for the audit log.
    Audit,
}

impl DefaultPolicy {
    /// Linkerd's name of the default.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Deny => "deny",
            Self::AllAuthenticated => "all-authenticated",
            Self::AllUnauthenticated => "all-unauthenticated",
            Self::ClusterAuthenticated => "cluster-authenticated",
            Self::ClusterUnauthenticated => "cluster-unauthenticated",
            Self::Audit => "audit",
        }
    }

    /// Parses a Linkerd default name.
    pub fn from_name(s: &str) -> Option<Self> {
        Some(match s {
            "deny" => Self::Deny,
            "all-authenticated" => Self::AllAuthenticated,
            "all-unauthenticated" => Self::AllUnauthenticated,
            "cluster-authenticated" => Self::ClusterAuthenticated,
            "cluster-unauthenticated" => Self::ClusterUnauthenticated,
            "audit" => Self::Audit,
            _ => return None,
        })
    }
}

/// What a matching rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Action {
    /// Allow, unless a `deny` rule matches too.
    Allow,
    /// Deny; wins over every `allow`.
    Deny,
    /// Log only; never changes the decision.
    Audit,
}

impl Action {
    /// The action's name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Deny => "deny",
            Self::Audit => "audit",
        }
    }
}

/// One rule: an action, and clauses that must all match (a missing clause matches
/// anything).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct RuleSpec {
    /// Unique name, reported in decisions and logs.
    pub name: String,
    /// What the rule does when it matches.
    pub action: Action,
    /// Peers: any entry matches (OR).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<List<SourceSpec>>,
    /// Operations: any entry matches (OR).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<List<OperationSpec>>,
    /// Conditions: every entry must match (AND), as in Istio.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<Vec<ConditionSpec>>,
}

impl RuleSpec {
    /// A rule with no clauses (matches everything).
    pub fn new(name: impl Into<String>, action: Action) -> Self {
        Self {
            name: name.into(),
            action,
            from: None,
            to: None,
            when: None,
        }
    }
}

/// A set of peers: every present field must match (AND); a field matches when any of
/// its values does (OR); a `not_` field matches when none of its values does.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
#[allow(missing_docs)]
pub struct SourceSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identities: Option<List<IdentityPattern>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_identities: Option<List<IdentityPattern>>,
    /// The peer's trust domain is one of these (`example.org`; the trust domain's
    /// ID `spiffe://example.org` is read as `example.org`). When present, it is also
    /// the set of trust domains whose identities this entry's `namespaces` and
    /// `service_accounts` read, in place of the policy's
    /// [`local_trust_domains`](PolicySpec::local_trust_domains).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust_domains: Option<List<TrustDomainName>>,
    /// The peer's trust domain is none of these (an unauthenticated peer has none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_trust_domains: Option<List<TrustDomainName>>,
    /// The peer's Kubernetes namespace (of `spiffe://<td>/ns/<ns>/sa/<sa>`, or of a
    /// Linkerd identity) matches one of these, and its trust domain is one of this
    /// entry's `trust_domains` or, without them, one of the policy's
    /// [`local_trust_domains`](PolicySpec::local_trust_domains) (any trust domain
    /// under [`namespaces_in_any_trust_domain`](PolicySpec::namespaces_in_any_trust_domain)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespaces: Option<List<NamespacePattern>>,
    /// The peer has no namespace in those trust domains that matches: satisfied by
    /// a peer of another trust domain and by an unauthenticated peer (add
    /// `trust_domains` or `authenticated: true` to exclude them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_namespaces: Option<List<NamespacePattern>>,
    /// The peer's `namespace/service-account` matches one of these, read in the
    /// same trust domains as `namespaces`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_accounts: Option<List<ServiceAccountPattern>>,
    /// The peer has no matching service account in those trust domains (like
    /// `not_namespaces`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_service_accounts: Option<List<ServiceAccountPattern>>,
    /// The peer's address (the other end of the connection, maybe a proxy) is in one
    /// of these (Istio's `ipBlocks`, `source.ip`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub networks: Option<List<Network>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_networks: Option<List<Network>>,
    /// The original client's address ([`RequestAttrs::remote_ip`]) is in one of these
    /// (Istio's `remoteIpBlocks`, `remote.ip`): the peer's address, or behind
    /// [`trusted_proxies`](crate::authorize::AuthorizeLayer::trusted_proxies) the one
    /// read from `X-Forwarded-For`. Checked per request (and on TCP connections, where
    /// it is the peer's address); an entry with both `networks` and
    /// `remote_networks` needs both to match.
    ///
    /// When the client's address is unknown (`X-Forwarded-For` missing or unreadable
    /// at the trusted position), this field and `not_remote_networks` fail for an
    /// `allow` or `audit` rule and hold for a `deny` rule: an unreadable header never
    /// opens an allow and never escapes a deny.
    ///
    /// [`RequestAttrs::remote_ip`]: super::RequestAttrs::remote_ip
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_networks: Option<List<Network>>,
    /// The original client's address is in none of these (see `remote_networks` for
    /// an unknown address).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_remote_networks: Option<List<Network>>,
    /// `true`: the peer proved an identity; `false`: it did not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authenticated: Option<bool>,
    /// End-user principals proven by a verified JWT (`<iss>/<sub>`, as Istio's
    /// `requestPrincipals`): exact, `prefix*`, `*suffix`, or `*` for any principal.
    /// A request without a token has no principal and matches none of them. A
    /// request-level field: HTTP only, like methods and paths.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_principals: Option<List<TextPattern>>,
    /// Principals that must not match; a request without a token satisfies it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_request_principals: Option<List<TextPattern>>,
}

impl SourceSpec {
    /// Whether the entry names a Kubernetes field (`namespaces`, `service_accounts`
    /// or a `not_` twin): one read only in the trust domains the entry or the policy
    /// names.
    pub(crate) fn has_kubernetes_fields(&self) -> bool {
        self.namespaces.is_some()
            || self.not_namespaces.is_some()
            || self.service_accounts.is_some()
            || self.not_service_accounts.is_some()
    }

    /// Whether the entry names a request-level field (`request_principals` or its
    /// `not_` twin): one that a connection cannot decide and TCP never has.
    pub fn has_request_fields(&self) -> bool {
        self.request_principals.is_some() || self.not_request_principals.is_some()
    }

    /// Whether the entry names `remote_networks` or `not_remote_networks`: fields read
    /// per request (the client behind a proxy may change from one request to the
    /// next), but not HTTP-only.
    pub(crate) fn has_remote_fields(&self) -> bool {
        self.remote_networks.is_some() || self.not_remote_networks.is_some()
    }
}

/// A set of operations, with the same algebra as [`SourceSpec`].
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
#[allow(missing_docs)]
pub struct OperationSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ports: Option<List<PortRange>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_ports: Option<List<PortRange>>,
    /// The request's host, without its port (`api.example.org`, `*.example.org`),
    /// lower case; the port is matched by `ports`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hosts: Option<List<HostPattern>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_hosts: Option<List<HostPattern>>,
    /// The request's authority as the client sent it, port included (Istio's `hosts`):
    /// `api.example.org` matches only a request without a port in its authority,
    /// `api.example.org:8443` only that port, `api.example.org:*` any port. Case
    /// insensitive; see [`AuthorityPattern`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorities: Option<List<AuthorityPattern>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_authorities: Option<List<AuthorityPattern>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub methods: Option<List<MethodPattern>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_methods: Option<List<MethodPattern>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paths: Option<List<PathPattern>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_paths: Option<List<PathPattern>>,
    /// The route the request was routed to is one of these (route names of the
    /// [`ServerSpec`] of the request's port). A request matches at most one route of
    /// its server, the one [`ServerSpec::routes`] ranks first, so a rule naming a route
    /// applies only to requests that route wins — as Linkerd applies an
    /// `AuthorizationPolicy` that targets an `HTTPRoute`. A request on a port without
    /// routes, or a TCP connection, has no route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routes: Option<List<String>>,
    /// The request was routed to none of these (a request without a route satisfies it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_routes: Option<List<String>>,
}

impl OperationSpec {
    /// Whether the entry names an HTTP-only field (hosts, authorities, methods, paths,
    /// routes).
    pub fn has_http_fields(&self) -> bool {
        self.hosts.is_some()
            || self.not_hosts.is_some()
            || self.authorities.is_some()
            || self.not_authorities.is_some()
            || self.routes.is_some()
            || self.not_routes.is_some()
            || self.methods.is_some()
            || self.not_methods.is_some()
            || self.paths.is_some()
            || self.not_paths.is_some()
    }
}

/// A condition on the request: the value of a request `header`, or of a JWT
/// `claim`, must match one of `values` (when given) and none of `not_values` (when
/// given). Exactly one of `header` and `claim` is set.
///
/// - A repeated header, or a list-valued claim, matches `values` if any of its
///   values matches, and `not_values` only if none does.
/// - A missing header, a request without a token, a missing claim, or a claim that
///   is neither a string nor a list of strings matches no `values` and satisfies
///   `not_values` (as in Istio, where `notRequestPrincipals: ["*"]` is how a policy
///   catches requests without a token). Deny by writing `values`, not `not_values`,
///   when absence must not pass.
/// - `claim: aud` and `claim: azp` are Istio's `request.auth.audiences` and
///   `request.auth.presenter`.
/// - With `space_delimited: true`, a string claim is read as the list of its
///   space-separated words (OAuth's `scope: "read write"` matches `values: ["read"]`,
///   and no longer `values: ["read write"]`), as Envoy normalizes the claims Istio
///   lists: imported Istio conditions on `scope` and `permission` set it. The JWT
///   layer can also mark claims of its tokens so (`JwtIssuer::space_delimited_claims`,
///   Istio's `spaceDelimitedClaims`; see [`Claims::space_delimited`](crate::Claims::space_delimited)),
///   and either suffices. Only top-level claims are split; a list-valued claim is
///   read as it is.
/// - Conditions are HTTP only: an `allow` rule with `when` never matches a TCP
///   connection.
///
/// ```yaml
/// when:
///   - claim: groups                    # a top-level claim
///     values: ["admin"]
///   - claim: [realm_access, roles]     # a nested claim, as a list
///     not_values: ["suspended"]
///   - header: x-tenant
///     values: ["acme"]
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(try_from = "RawCondition")]
#[non_exhaustive]
pub struct ConditionSpec {
    /// The request header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<HeaderNamePattern>,
    /// The JWT claim (of the token the JWT layer verified).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim: Option<ClaimPath>,
    /// Allowed values (any matches).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<List<TextPattern>>,
    /// Forbidden values (none may match).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_values: Option<List<TextPattern>>,
    /// Whether a string `claim` is read as its space-separated words (top-level
    /// claims only; see above).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub space_delimited: bool,
}

impl ConditionSpec {
    /// A condition on a request header.
    pub fn header(
        header: HeaderNamePattern,
        values: Option<List<TextPattern>>,
        not_values: Option<List<TextPattern>>,
    ) -> Self {
        Self {
            header: Some(header),
            claim: None,
            values,
            not_values,
            space_delimited: false,
        }
    }

    /// A condition on a JWT claim.
    pub fn claim(
        claim: ClaimPath,
        values: Option<List<TextPattern>>,
        not_values: Option<List<TextPattern>>,
    ) -> Self {
        Self {
            header: None,
            claim: Some(claim),
            values,
            not_values,
            space_delimited: false,
        }
    }

    /// Reads the claim's string value as its space-separated words (see
    /// [`ConditionSpec`]).
    #[must_use]
    pub fn space_delimited(mut self) -> Self {
        self.space_delimited = true;
        self
    }

    /// What the condition reads, for messages: ``header `x` `` or ``claim `groups` ``.
    pub fn key(&self) -> String {
        match (&self.header, &self.claim) {
            (Some(h), _) => format!("header `{h}`"),
            (None, Some(c)) => format!("claim `{c}`"),
            (None, None) => "nothing".to_owned(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCondition {
    #[serde(default)]
    header: Option<HeaderNamePattern>,
    #[serde(default)]
    claim: Option<ClaimPath>,
    #[serde(default)]
    values: Option<List<TextPattern>>,
    #[serde(default)]
    not_values: Option<List<TextPattern>>,
    #[serde(default)]
    space_delimited: bool,
}

impl TryFrom<RawCondition> for ConditionSpec {
    type Error = String;
    fn try_from(r: RawCondition) -> Result<Self, String> {
        match (&r.header, &r.claim) {
            (Some(_), Some(_)) => {
                return Err("a condition names either a `header` or a `claim`, not both".into());
            }
            (None, None) => return Err("a condition needs a `header` or a `claim`".into()),
            (Some(h), None) if r.space_delimited => {
                return Err(format!(
                    "header `{h}`: `space_delimited` applies to claims only"
                ));
            }
            (None, Some(c)) if r.space_delimited && c.0.len() > 1 => {
                return Err(format!(
                    "claim `{c}`: `space_delimited` applies to top-level claims only"
                ));
            }
            _ => {}
        }
        Ok(Self {
            header: r.header,
            claim: r.claim,
            values: r.values,
            not_values: r.not_values,
            space_delimited: r.space_delimited,
        })
    }
}

/// A server: ports with their own default policy and, optionally, routes.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ServerSpec {
    /// Name, reported in decisions.
    pub name: String,
    /// The ports the server covers.
    pub ports: Vec<PortRange>,
    /// The default for requests to this server that no rule decides (Linkerd's
    /// `accessPolicy`, itself `deny` by default).
    #[serde(default)]
    pub default: DefaultPolicy,
    /// When present, a request that matches none of these routes is answered 404.
    ///
    /// A request is routed to exactly one route, ranked as Linkerd ranks HTTPRoutes:
    /// first the host (a route whose `hosts` match exactly beats one that matches by
    /// `*.suffix`, longer beats shorter, and either beats a route without `hosts`),
    /// then its best match: the longer literal path (an exact path, or a prefix
    /// without its trailing `/`; a match without `paths` counts as `/`), then more
    /// header conditions, then more `query_params`, then a method. Ties go to the route listed first. Rules
    /// name the route they apply to with `routes`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routes: Option<Vec<RouteSpec>>,
}

/// A route of a server: any of its matches selects it.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct RouteSpec {
    /// Name of the route.
    pub name: String,
    /// The request's host must match one of these (`api.example.com`, or
    /// `*.example.com` for any name under it, as Gateway API `hostnames`); absent
    /// matches any host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hosts: Option<List<HostPattern>>,
    /// Matches (OR). Each is paths, methods, header conditions and query
    /// parameters (AND). Empty matches every request.
    pub matches: Vec<RouteMatchSpec>,
}

/// One route match: every present field must hold.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct RouteMatchSpec {
    /// Paths (any matches).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paths: Option<List<PathPattern>>,
    /// Methods (any matches).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub methods: Option<List<MethodPattern>>,
    /// Header conditions, all of which must hold.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<ConditionSpec>,
    /// Query parameters, all of which the request's query must carry (Gateway API
    /// `queryParams` of type `Exact`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub query_params: Vec<QueryParamMatch>,
}

/// A query parameter a route match requires: a `name=value` pair of the request's
/// query, read as Linkerd's proxy reads it.
///
/// - The query is decoded as `application/x-www-form-urlencoded`: `+` is a space and
///   `%XX` a byte, in names and values alike; `name` and `value` are compared with
///   the decoded text exactly (case-sensitive), and are not decoded themselves, so
///   `value: "a b"` matches `?q=a%20b` and `?q=a+b`, and `value: "a+b"` matches
///   `?q=a%2Bb`.
/// - A parameter without `=` (`?debug`) has the value `""`.
/// - A repeated parameter (`?a=1&a=2`) matches when any of its values does, as in
///   Linkerd (the Gateway API leaves this undefined: do not route on repeated
///   parameters).
/// - The path is matched without the query, and the query never changes which path
///   pattern matches.
///
/// ```yaml
/// servers:
///   - name: web
///     ports: [8080]
///     routes:
///       - name: search-v2
///         matches:
///           - paths: ["/search"]
///             query_params: [{name: version, value: "2"}]
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct QueryParamMatch {
    /// The parameter's name, as it reads decoded (not empty).
    pub name: String,
    /// The value it must have, as it reads decoded.
    pub value: String,
}

impl QueryParamMatch {
    /// A match of parameter `name` with exactly `value`.
    pub fn exact(name: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            value: value.into(),
        }
    }
}
