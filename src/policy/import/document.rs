//! Step one of the import: the documents of a manifest stream, and the values every
//! mesh translation reads from them. Knows nothing of any mesh.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::policy::error::PolicyError;
use crate::policy::model::SourceSpec;

/// `metadata` of a Kubernetes object (other metadata fields are ignored).
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct Meta {
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) namespace: Option<String>,
    #[serde(default)]
    pub(crate) annotations: BTreeMap<String, String>,
}

impl Meta {
    pub(crate) fn ns(&self) -> &str {
        self.namespace.as_deref().unwrap_or("default")
    }

    pub(crate) fn qualified(&self) -> String {
        format!("{}/{}", self.ns(), self.name)
    }
}

/// A Kubernetes object with a typed `spec`.
#[derive(Debug, Deserialize)]
pub(crate) struct Object<S> {
    #[serde(rename = "apiVersion")]
    #[allow(dead_code)]
    pub(crate) api_version: String,
    #[allow(dead_code)]
    pub(crate) kind: String,
    pub(crate) metadata: Meta,
    pub(crate) spec: S,
    #[serde(default)]
    #[allow(dead_code)]
    status: Option<serde::de::IgnoredAny>,
}

/// A Kubernetes object we only read metadata of.
#[derive(Debug, Deserialize)]
pub(crate) struct MetaOnly {
    pub(crate) metadata: Meta,
}

/// AND of two OR-lists of sources: every pair merged. Fails when both sides of a
/// pair constrain the same field (that intersection cannot be written as one entry).
pub(crate) fn and_sources(
    a: Vec<SourceSpec>,
    b: Vec<SourceSpec>,
) -> Result<Vec<SourceSpec>, String> {
    let mut out = Vec::with_capacity(a.len() * b.len());
    for x in &a {
        for y in &b {
            out.push(merge(x.clone(), y.clone())?);
        }
    }
    Ok(out)
}

fn merge(mut x: SourceSpec, y: SourceSpec) -> Result<SourceSpec, String> {
    macro_rules! take {
        ($($f:ident),*) => {$(
            if y.$f.is_some() {
                if x.$f.is_some() {
                    return Err(format!("two references both constrain `{}`", stringify!($f)));
                }
                x.$f = y.$f;
            }
        )*};
    }
    take!(
        identities,
        not_identities,
        trust_domains,
        not_trust_domains,
        namespaces,
        not_namespaces,
        service_accounts,
        not_service_accounts,
        networks,
        not_networks,
        remote_networks,
        not_remote_networks,
        authenticated,
        request_principals,
        not_request_principals
    );
    Ok(x)
}

/// Parses a list of pattern strings, reporting the object on error.
pub(crate) fn parse_all<T: std::str::FromStr<Err = String>>(
    object: &str,
    values: &[String],
) -> Result<Vec<T>, PolicyError> {
    values
        .iter()
        .map(|v| {
            v.parse()
                .map_err(|e: String| PolicyError::invalid(format!("`{object}`: {e}")))
        })
        .collect()
}

/// [`parse_all`] over an optional list.
pub(crate) fn parse_opt<T: std::str::FromStr<Err = String>>(
    object: &str,
    values: &Option<Vec<String>>,
) -> Result<Option<Box<[T]>>, PolicyError> {
    values
        .as_deref()
        .map(|v| parse_all(object, v).map(Vec::into_boxed_slice))
        .transpose()
}
