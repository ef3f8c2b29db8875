//! Linkerd `HTTPRoute` (`policy.linkerd.io` and `gateway.networking.k8s.io`) and
//! Gateway API `GRPCRoute`, as routes of the `Server`s they name as parents.
//!
//! A request goes to exactly one route of its server (see `route.rs`), and an
//! `AuthorizationPolicy` that targets a route applies only to the requests that
//! route wins. Fields meshless cannot enforce (filters, regular expression matches)
//! are refused, naming the document and the field.
//!
//! `queryParams` of type `Exact` become [`QueryParamMatch`]es, matched as Linkerd's
//! proxy matches them (see that type). As the Gateway API says, "If multiple entries
//! specify equivalent query param names, only the first entry with an equivalent
//! name MUST be considered for a match. Subsequent entries with an equivalent query
//! param name MUST be ignored": names are equivalent when equal ("This must be an
//! exact string match"), and the ignored entries are reported as warnings (the
//! Gateway API CRD declares `queryParams` a list map keyed by `name`, so the API
//! server refuses such a route: they appear only in files that never went through
//! it).

use serde::Deserialize;

use crate::policy::error::PolicyError;
use crate::policy::import::document::parse_all;
use crate::policy::model::{ConditionSpec, List, QueryParamMatch, RouteMatchSpec};
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
    query_params: Vec<QueryParamDoc>,
}

/// Gateway API `HTTPQueryParamMatch`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct QueryParamDoc {
    name: String,
    value: String,
    #[serde(default, rename = "type")]
    kind: Option<String>,
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
    /// What the conversion ignored, as the Gateway API requires.
    pub(crate) warnings: Vec<String>,
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
    let mut warnings = Vec::new();
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
            matches.push(convert_match(doc, &at, m, grpc, &mut warnings)?);
        }
    }
    if spec.rules.is_none() {
        matches.push(if grpc {
            grpc_base()
        } else {
            RouteMatchSpec::default()
        });
    }
    Ok(Converted {
        hosts,
        matches,
        warnings,
    })
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
    warnings: &mut Vec<String>,
) -> Result<RouteMatchSpec, PolicyError> {
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
    if grpc && !m.query_params.is_empty() {
        return Err(PolicyError::invalid(format!(
            "`{doc}`: `{at}.queryParams` is not a GRPCRoute field"
        )));
    }
    for (k, q) in m.query_params.iter().enumerate() {
        let field = format!("{at}.queryParams[{k}]");
        // "Subsequent entries with an equivalent query param name MUST be ignored":
        // whatever their type, since they are not considered at all.
        if let Some(first) = m.query_params[..k].iter().position(|p| p.name == q.name) {
            warnings.push(format!(
                "`{doc}`: `{field}` names `{}` as `{at}.queryParams[{first}]` does, \
                 so it is ignored (the Gateway API considers only the first)",
                q.name
            ));
            continue;
        }
        match q.kind.as_deref() {
            None | Some("Exact") => {}
            Some(other) => {
                return Err(unsupported(
                    doc,
                    &format!("{field}.type"),
                    &format!("`{other}` is not supported (use Exact)"),
                ));
            }
        }
        if q.name.is_empty() || q.value.is_empty() {
            return Err(PolicyError::invalid(format!(
                "`{doc}`: `{field}` needs a `name` and a `value` that are not empty"
            )));
        }
        spec.query_params
            .push(QueryParamMatch::exact(&q.name, &q.value));
    }
    Ok(spec)
}
