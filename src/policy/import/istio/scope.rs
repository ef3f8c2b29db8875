//! Which Istio objects apply to the workload enforcing: `metadata.namespace`,
//! `selector.matchLabels` and `targetRef(s)`, read as Istio reads them.
//!
//! - A policy applies to the workloads of its own namespace, or to every workload
//!   when it sits in the root namespace ([`WorkloadContext::root_namespace`],
//!   `istio-system` by default). A document without `metadata.namespace` is in
//!   `default`.
//! - `selector.matchLabels` narrows that to the workloads carrying every label.
//! - `targetRef(s)` bind a policy to a `Gateway`, `GatewayClass`, `Service` or
//!   `ServiceEntry`: Istio enforces those at gateways and waypoints, never at the
//!   sidecar of the pods behind them, and a [`WorkloadContext`] cannot say which
//!   gateway or service this process is. Such a document is refused (a clear error
//!   naming the document and the field), rather than guessed at.
//! - Without a context (`Policy::from_yaml`), no namespace scoping is applied (every
//!   document is taken to be meant for this process, as before), and a document that
//!   selects by label is refused: the error says to load it with
//!   `Policy::from_yaml_for` and a `WorkloadContext` carrying the pod labels.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::policy::error::PolicyError;
use crate::policy::import::document::Meta;
use crate::policy::workload::WorkloadContext;

/// Istio's `WorkloadSelector`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct Selector {
    #[serde(default)]
    match_labels: BTreeMap<String, String>,
}

/// Istio's `PolicyTargetReference`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TargetRef {
    #[serde(default)]
    group: Option<String>,
    kind: String,
    name: String,
    #[serde(default)]
    namespace: Option<String>,
}

/// Where a document says it applies.
pub(crate) struct Target<'a> {
    /// `authorization policy`, `request authentication`, `peer authentication`.
    pub(crate) what: &'static str,
    pub(crate) meta: &'a Meta,
    pub(crate) selector: Option<&'a Selector>,
    pub(crate) target_ref: Option<&'a TargetRef>,
    pub(crate) target_refs: Option<&'a [TargetRef]>,
}

/// How a document applies to the workload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Scope {
    /// It applies; `selected` when a non-empty `selector` chose this workload (more
    /// specific than a namespace-wide document), `mesh` when it sits in the root
    /// namespace.
    Applies { selected: bool, mesh: bool },
    /// It is meant for other workloads: the reason.
    Skipped(String),
}

impl Target<'_> {
    /// Decides whether the document applies to `ctx`'s workload.
    ///
    /// # Errors
    ///
    /// A `targetRef(s)` (never resolvable in-process), both `selector` and
    /// `targetRef(s)`, or (without a context) a label selector.
    pub(crate) fn scope(&self, ctx: Option<&WorkloadContext>) -> Result<Scope, PolicyError> {
        let name = self.meta.qualified();
        let what = self.what;
        let refs: Vec<(&str, &TargetRef)> = self
            .target_ref
            .map(|r| ("targetRef", r))
            .into_iter()
            .chain(
                self.target_refs
                    .into_iter()
                    .flatten()
                    .map(|r| ("targetRefs", r)),
            )
            .collect();
        if self.selector.is_some() && !refs.is_empty() {
            return Err(PolicyError::invalid(format!(
                "{what} `{name}`: `selector` and `{}` are both set; Istio accepts only one of them",
                refs[0].0
            )));
        }
        let ns = self.meta.ns();
        let mesh = ctx.is_some_and(|c| ns == c.root_namespace());
        if let Some(ctx) = ctx
            && !mesh
        {
            match ctx.namespace() {
                None => {
                    return Err(PolicyError::invalid(format!(
                        "{what} `{name}`: the workload context has no namespace to compare `metadata.namespace` (`{ns}`) with; give the context the workload's identity (`WorkloadContext::identity`) or `namespace_name`"
                    )));
                }
                Some(own) if own != ns => {
                    return Ok(Scope::Skipped(format!(
                        "{what} `{name}`: it applies to namespace `{ns}`, and this workload is in `{own}`"
                    )));
                }
                Some(_) => {}
            }
        }
        if let Some((field, r)) = refs.first() {
            let group = r.group.as_deref().unwrap_or("");
            let at = r
                .namespace
                .as_deref()
                .map(|n| format!(" in namespace `{n}`"))
                .unwrap_or_default();
            return Err(PolicyError::unsupported(format!(
                "{what} `{name}`: `{field}` names {} `{}` (group `{group}`){at}: Istio enforces such a policy at that gateway or waypoint, not at the workloads behind it, and meshless cannot tell which one this process is; use `selector.matchLabels` to apply it to this workload, or leave the document out of the file",
                r.kind, r.name
            )));
        }
        let Some(selector) = self.selector.filter(|s| !s.match_labels.is_empty()) else {
            return Ok(Scope::Applies {
                selected: false,
                mesh,
            });
        };
        let Some(ctx) = ctx else {
            return Err(PolicyError::invalid(format!(
                "{what} `{name}`: `selector.matchLabels` ({}) selects workloads by label: load the file with `Policy::from_yaml_for` (or `Policy::load_for`) and a `WorkloadContext` carrying the pod labels, so that it applies only where Istio would apply it",
                labels(&selector.match_labels)
            )));
        };
        if ctx.matches_labels(&selector.match_labels) {
            Ok(Scope::Applies {
                selected: true,
                mesh,
            })
        } else {
            Ok(Scope::Skipped(format!(
                "{what} `{name}`: `selector.matchLabels` ({}) does not match this workload's labels ({})",
                labels(&selector.match_labels),
                labels(ctx.labels())
            )))
        }
    }
}

fn labels(l: &BTreeMap<String, String>) -> String {
    if l.is_empty() {
        return "none".to_owned();
    }
    l.iter()
        .map(|(k, v)| format!("`{k}={v}`"))
        .collect::<Vec<_>>()
        .join(", ")
}
