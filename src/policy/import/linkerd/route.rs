//! Linkerd `HTTPRoute` (`policy.linkerd.io` and `gateway.networking.k8s.io`) and
//! Gateway API `GRPCRoute`, as routes of the `Server`s they name as parents.
//!
//! A request goes to exactly one route of its server (see `route.rs`), and an
//! `AuthorizationPolicy` that targets a route applies only to the requests that
//! route wins. Fields meshless cannot enforce (filters, query parameter and regular
//! expression matches) are refused, naming the document and the field.

use serde::Deserialize;

use crate::policy::error::PolicyError;
use crate::policy::import::document::parse_all;
use crate::policy::model::{ConditionSpec, List, RouteMatchSpec};
use crate::policy::values::HostPattern;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ParentRef {
    #[serde(default)]
    pub(crate) group: Option<String>,
    #[serde(default)]
    pub(crate) kind: Option<String>,
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) namespace: Option<String>,
    /// Linkerd binds a route to a `Server` parent whatever the port says.
    #[serde(default, rename = "port")]
    _port: Option<u16>,
    #[serde(default, rename = "sectionName")]
    _section: Option<String>,
}

/// `HTTPRoute.spec` or `GRPCRoute.spec`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct RouteSpecDoc {
    #[serde(default)]
    pub(crate) parent_refs: Vec<ParentRef>,
    #[serde(default)]
    hostnames: Vec<String>,
    #[serde(default)]
    rules: Option<Vec<RouteRule>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RouteRule {
    #[serde(default)]
    matches: Vec<RouteMatch>,
    #[serde(default)]
    filters: Option<Vec<serde::de::IgnoredAny>>,
    #[serde(default, rename = "backendRefs")]
    _backend_refs: Option<serde::de::IgnoredAny>,
    #[serde(default, rename = "timeouts")]
    _timeouts: Option<serde::de::IgnoredAny>,
    #[serde(default, rename = "name")]
    _name: Option<String>,
    #[serde(default)]
    session_persistence: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    retry: Option<serde::de::IgnoredAny>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RouteMatch {
    #[serde(default)]
    path: Option<TypedValue>,
    /// HTTPRoute: a method name; GRPCRoute: `{type, service, method}`.
    #[serde(default)]
    method: Option<MethodMatch>,
    #[serde(default)]
    headers: Vec<HeaderMatch>,
    #[serde(default)]
    query_params: Vec<serde::de::IgnoredAny>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum MethodMatch {
    Http(String),
    Grpc(GrpcMethod),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GrpcMethod {
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    service: Option<String>,
    #[serde(default)]
    method: Option<String>,
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

/// A route converted: its hosts and matches.
pub(crate) struct Converted {
    pub(crate) hosts: Option<List<HostPattern>>,
    pub(crate) matches: Vec<RouteMatchSpec>,
}

fn unsupported(doc: &str, field: &str, why: &str) -> PolicyError {
    PolicyError::unsupported(format!("`{doc}`: `{field}` {why}"))
}

/// Converts a route; `doc` is `HTTPRoute ns/name` or `GRPCRoute ns/name`, `grpc`
/// says which.
pub(crate) fn convert(
    doc: &str,
    spec: &RouteSpecDoc,
    grpc: bool,
) -> Result<Converted, PolicyError> {
    let hosts = if spec.hostnames.is_empty() {
        None
    } else {
        Some(parse_all(doc, &spec.hostnames)?.into())
    };
    let mut matches = Vec::new();
    // Gateway API: `rules` defaults to one rule matching every request.
    for (i, rule) in spec.rules.iter().flatten().enumerate() {
        if rule.filters.as_ref().is_some_and(|f| !f.is_empty()) {
            return Err(unsupported(
                doc,
                &format!("rules[{i}].filters"),
                "are not applied in-process (remove them, or apply them in the app)",
            ));
        }
        if rule.session_persistence.is_some() || rule.retry.is_some() {
            return Err(unsupported(
                doc,
                &format!("rules[{i}].sessionPersistence/retry"),
                "are not supported in-process",
            ));
        }
        if rule.matches.is_empty() {
            // Gateway API: no match means PathPrefix `/` (any RPC for gRPC).
            matches.push(if grpc {
                grpc_base()
            } else {
                RouteMatchSpec::default()
            });
        }
        for (j, m) in rule.matches.iter().enumerate() {
            let at = format!("rules[{i}].matches[{j}]");
            matches.push(convert_match(doc, &at, m, grpc)?);
        }
    }
    if spec.rules.is_none() {
        matches.push(if grpc {
            grpc_base()
        } else {
            RouteMatchSpec::default()
        });
    }
    Ok(Converted { hosts, matches })
}

fn grpc_base() -> RouteMatchSpec {
    RouteMatchSpec {
        methods: Some(vec!["POST".parse().unwrap_or_else(|_| unreachable!())].into()),
        ..RouteMatchSpec::default()
    }
}

fn convert_match(
    doc: &str,
    at: &str,
    m: &RouteMatch,
    grpc: bool,
) -> Result<RouteMatchSpec, PolicyError> {
    if !m.query_params.is_empty() {
        return Err(unsupported(
            doc,
            &format!("{at}.queryParams"),
            "are not supported (match on path, method and headers)",
        ));
    }
    let mut spec = if grpc {
        grpc_base()
    } else {
        RouteMatchSpec::default()
    };
    match (&m.method, grpc) {
        (None, _) => {}
        (Some(MethodMatch::Http(method)), false) => {
            spec.methods = Some(parse_all(doc, std::slice::from_ref(method))?.into());
        }
        (Some(MethodMatch::Grpc(g)), true) => {
            if g.kind.as_deref().is_some_and(|k| k != "Exact") {
                return Err(unsupported(
                    doc,
                    &format!("{at}.method.type"),
                    &format!(
                        "`{}` is not supported (use Exact)",
                        g.kind.as_deref().unwrap_or_default()
                    ),
                ));
            }
            // Linkerd matches `/<service>/<method>`, each part exactly.
            let path = match (g.service.as_deref(), g.method.as_deref()) {
                (Some(s), Some(m)) => Some(format!("/{s}/{m}")),
                (Some(s), None) => Some(format!("/{s}/*")),
                (None, Some(m)) => Some(format!("/{{*}}/{m}")),
                (None, None) => None,
            };
            if let Some(p) = path {
                spec.paths = Some(parse_all(doc, &[p])?.into());
            }
        }
        (Some(_), _) => {
            return Err(PolicyError::invalid(format!(
                "`{doc}`: `{at}.method` has the shape of the other route kind"
            )));
        }
    }
    if let Some(p) = &m.path {
        if grpc {
            return Err(PolicyError::invalid(format!(
                "`{doc}`: `{at}.path` is not a GRPCRoute field"
            )));
        }
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
                return Err(unsupported(
                    doc,
                    &format!("{at}.path.type"),
                    &format!("`{other}` is not supported (use Exact or PathPrefix)"),
                ));
            }
        };
        spec.paths = Some(parse_all(doc, &paths)?.into());
    }
    for (k, h) in m.headers.iter().enumerate() {
        if h.kind.as_deref().is_some_and(|k| k != "Exact") {
            return Err(unsupported(
                doc,
                &format!("{at}.headers[{k}].type"),
                &format!(
                    "`{}` is not supported (use Exact)",
                    h.kind.as_deref().unwrap_or_default()
                ),
            ));
        }
        if h.value.contains('*') {
            return Err(unsupported(
                doc,
                &format!("{at}.headers[{k}].value"),
                &format!(
                    "`{}` contains `*`, which an exact match cannot express here",
                    h.value
                ),
            ));
        }
        spec.headers.push(ConditionSpec::header(
            parse_all(doc, std::slice::from_ref(&h.name))?.remove(0),
            Some(parse_all(doc, std::slice::from_ref(&h.value))?.into()),
            None,
        ));
    }
    Ok(spec)
}
