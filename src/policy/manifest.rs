//! Multi-document Kubernetes manifests: dispatch by `apiVersion`/`kind` to the
//! Linkerd and Istio importers, which produce the native [`PolicySpec`].
//!
//! Every document is deserialized with its location (line and column relative to
//! the whole file). Objects of other kinds are reported in the warnings, never
//! silently dropped.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::compiled::Policy;
use super::error::PolicyError;
use super::load::yaml_error;
use super::model::SourceSpec;

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

/// Collected objects, in file order.
#[derive(Default)]
pub(crate) struct Manifests<'c> {
    /// The workload enforcing, when the caller said which.
    pub(crate) context: Option<&'c super::workload::WorkloadContext>,
    pub(crate) linkerd: super::linkerd::Objects,
    pub(crate) istio: super::istio::Objects,
    pub(crate) warnings: Vec<String>,
}

fn group(api_version: &str) -> &str {
    api_version.split_once('/').map_or("", |(g, _)| g)
}

/// Parses every document of `text` and imports the policy it describes.
pub(crate) fn import(
    text: &str,
    context: Option<&super::workload::WorkloadContext>,
) -> Result<Policy, PolicyError> {
    let mut m = Manifests {
        context,
        ..Manifests::default()
    };
    let mut typed = yaml_serde::Deserializer::from_str(text);
    for doc in yaml_serde::Deserializer::from_str(text) {
        let value = yaml_serde::Value::deserialize(doc).map_err(|e| yaml_error(&e))?;
        let Some(doc) = typed.next() else {
            break;
        };
        if value.is_null() {
            continue;
        }
        let api = value
            .get("apiVersion")
            .and_then(|v| v.as_str())
            .unwrap_or_default();
        let kind = value
            .get("kind")
            .and_then(|v| v.as_str())
            .unwrap_or_default();
        let g = group(api);
        let handled = match g {
            "policy.linkerd.io" | "gateway.networking.k8s.io" | "" => {
                m.linkerd.read(g, kind, doc, &mut m.warnings)?
            }
            "security.istio.io" => m.istio.read(kind, doc)?,
            _ => false,
        };
        if !handled {
            m.warnings.push(format!(
                "ignored object of kind `{kind}` (apiVersion `{api}`): not a policy meshless enforces"
            ));
        }
    }
    let (mut spec, mut warnings, peer_auth, request_auth) = match (
        m.linkerd.is_empty(),
        m.istio.has_authorization(),
    ) {
        (false, true) => {
            return Err(PolicyError::unsupported(
                "the file mixes Linkerd and Istio authorization policies: load one mesh's policies",
            ));
        }
        (false, false) => {
            let (spec, mut w) = m.linkerd.into_spec(m.context)?;
            let istio = m.istio.into_spec(m.context)?;
            w.extend(istio.warnings);
            (spec, w, istio.peer, istio.request)
        }
        (true, _) => {
            let i = m.istio.into_spec(m.context)?;
            (i.spec, i.warnings, i.peer, i.request)
        }
    };
    warnings.append(&mut m.warnings);
    spec.dry_run = false;
    let mut policy = Policy::compile(spec)?;
    for w in &warnings {
        tracing::warn!(target: "meshless::policy", "{w}");
    }
    policy.warnings.extend(warnings);
    policy.peer_authentication = peer_auth;
    policy.request_authentication = request_auth;
    Ok(policy)
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
