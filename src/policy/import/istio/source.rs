//! Istio `source` fields and principal values, read as Istio reads them.
//!
//! - `principals` are matched against `spiffe://` + the value with Istio's string
//!   match: `*` (any authenticated peer), `prefix*`, `*suffix`, exact. meshless
//!   expresses `td/path/*` (a prefix ending at a `/`) and `*/path` (a suffix of whole
//!   segments); other prefixes and suffixes are refused. A `*` anywhere else is a
//!   literal character for Istio, which no SPIFFE ID contains: such a value matches
//!   no peer, so it is dropped from the list (with a warning), and a list left empty
//!   makes its entry (or rule) match nothing, exactly as in Istio.
//! - `serviceAccounts` are `<namespace>/<name>`, or `<name>` for the policy's own
//!   namespace; Istio allows no wildcard in them, nor together with `principals` or
//!   `namespaces`.
//! - `trustDomains` / `notTrustDomains` are matched exactly (Istio also allows
//!   prefix / suffix / presence matches, which are refused here).
//! - Errors quote the value as written, never the rewritten `spiffe://` value.

use crate::policy::error::PolicyError;
use crate::policy::import::document::parse_opt;
use crate::policy::model::List;
use crate::policy::pattern::IdentityPattern;
use crate::policy::values::ServiceAccountPattern;

/// A converted list field.
pub(crate) enum Field<T> {
    /// Not written, or only negated values that can never match.
    Absent,
    /// The values.
    Values(List<T>),
    /// Written, but no value can ever match: the field never holds.
    Never,
}

impl<T> Field<T> {
    pub(crate) fn into_option(self) -> Option<List<T>> {
        match self {
            Self::Values(v) => Some(v),
            _ => None,
        }
    }

    pub(crate) fn is_never(&self) -> bool {
        matches!(self, Self::Never)
    }
}

/// One principal as written, or `None` when Istio's literal `*` makes it match no
/// peer.
fn principal(name: &str, p: &str) -> Result<Option<IdentityPattern>, PolicyError> {
    let bad = |why: &str| {
        PolicyError::unsupported(format!(
            "authorization policy `{name}`: principal `{p}` {why}"
        ))
    };
    if p.starts_with("spiffe://") {
        return Err(bad(
            "starts with `spiffe://`: Istio principals are written without it (`cluster.local/ns/default/sa/sleep`), and Istio would never match this one",
        ));
    }
    let text = if p == "*" {
        "*".to_owned()
    } else if let Some(rest) = p.strip_prefix('*') {
        if rest.contains('*') {
            return Ok(None);
        }
        if !rest.starts_with('/') {
            return Err(bad(
                "is a suffix match that does not start at a path segment; meshless expresses suffixes of whole segments (`*/ns/default/sa/sleep`)",
            ));
        }
        p.to_owned()
    } else if let Some(base) = p.strip_suffix('*') {
        if base.contains('*') {
            return Ok(None);
        }
        if !base.ends_with('/') || !base.contains('/') {
            return Err(bad(
                "is a prefix match that does not end at a path segment; meshless expresses prefixes of whole segments (`cluster.local/ns/default/*`)",
            ));
        }
        format!("spiffe://{p}")
    } else if p.contains('*') {
        return Ok(None);
    } else {
        format!("spiffe://{p}")
    };
    text.parse().map(Some).map_err(|e: String| {
        let e = e.replace(&format!("spiffe://{p}"), p);
        bad(&format!(
            "is not a peer identity Istio can match (`<trust domain>/ns/<namespace>/sa/<account>`): {e}"
        ))
    })
}

/// `principals` (or, `negated`, `notPrincipals`).
pub(crate) fn principals(
    name: &str,
    values: &Option<Vec<String>>,
    negated: bool,
    warnings: &mut Vec<String>,
) -> Result<Field<IdentityPattern>, PolicyError> {
    let Some(values) = values else {
        return Ok(Field::Absent);
    };
    let mut out = Vec::new();
    for v in values {
        match principal(name, v)? {
            Some(p) => out.push(p),
            None => warnings.push(format!(
                "authorization policy `{name}`: principal `{v}` has a `*` inside: Istio compares it literally, so it matches no peer"
            )),
        }
    }
    Ok(match (out.is_empty(), negated) {
        (false, _) => Field::Values(out.into_boxed_slice()),
        (true, true) => Field::Absent,
        (true, false) => Field::Never,
    })
}

/// `serviceAccounts` of a policy in namespace `ns`.
pub(crate) fn service_accounts(
    name: &str,
    ns: &str,
    field: &str,
    values: &Option<Vec<String>>,
) -> Result<Option<List<ServiceAccountPattern>>, PolicyError> {
    let Some(values) = values else {
        return Ok(None);
    };
    let mut full = Vec::with_capacity(values.len());
    for v in values {
        if v.contains('*') {
            return Err(PolicyError::invalid(format!(
                "authorization policy `{name}`: `{field}` value `{v}`: Istio allows no wildcard (`*`) in service accounts"
            )));
        }
        full.push(match v.split_once('/') {
            Some(_) => v.clone(),
            None => format!("{ns}/{v}"),
        });
    }
    parse_opt(name, &Some(full)).map_err(|e| {
        PolicyError::invalid(format!(
            "authorization policy `{name}`: `{field}` is `<namespace>/<name>` or `<name>`: {e}"
        ))
    })
}

/// `trustDomains` / `notTrustDomains`: exact names only.
pub(crate) fn trust_domains(
    name: &str,
    field: &str,
    values: &Option<Vec<String>>,
) -> Result<Option<List<crate::policy::values::TrustDomainName>>, PolicyError> {
    if let Some(v) = values.iter().flatten().find(|v| v.contains('*')) {
        return Err(PolicyError::unsupported(format!(
            "authorization policy `{name}`: `{field}` value `{v}`: meshless matches trust domains exactly; prefix, suffix and presence (`*`) matches are not supported"
        )));
    }
    parse_opt(name, values)
}
