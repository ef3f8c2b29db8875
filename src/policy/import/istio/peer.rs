//! Istio `PeerAuthentication`, enforced: the objects that apply to the workload are
//! resolved the way Istio resolves them, and a `STRICT` port becomes a deny rule for
//! peers without a proven identity.
//!
//! Resolution: the object that selects this workload by label wins over the
//! namespace-wide one (no selector, in the workload's namespace), which wins over the
//! mesh-wide one (root namespace); `UNSET` inherits from the next level, and the top
//! default is `PERMISSIVE`. `portLevelMtls` needs a selector (Istio rejects it
//! otherwise) and a port's `UNSET` inherits the workload's mode. When two objects sit
//! at one level Istio takes the oldest; a file has no creation times, so the first
//! in the file wins and the others are reported.
//!
//! Enforcement: meshless authenticates peers in its acceptor, which serves plaintext
//! only in permissive mode ([`MtlsAcceptorBuilder::permissive`]). So that a
//! permissive acceptor still honours `STRICT`, the importer adds a `deny` rule
//! `<namespace>/<name>:mtls-strict` matching unauthenticated peers on every port whose
//! resolved mode is `STRICT` (a TCP-level rule: it also closes plaintext TCP
//! connections). `PERMISSIVE` adds nothing. `DISABLE` is read as `PERMISSIVE`, with a
//! warning: meshless still accepts mutual TLS there, which proves more, never less.
//!
//! [`MtlsAcceptorBuilder::permissive`]: crate::MtlsAcceptorBuilder::permissive

use std::collections::BTreeMap;

use serde::Deserialize;

use super::scope::Selector;
use crate::policy::error::PolicyError;
use crate::policy::import::document::Object;
use crate::policy::model::{Action, OperationSpec, RuleSpec, SourceSpec};
use crate::policy::mtls::{MtlsMode, PeerAuthentication};
use crate::policy::values::PortRange;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct PeerAuthnSpec {
    #[serde(default)]
    pub(crate) selector: Option<Selector>,
    #[serde(default)]
    mtls: Option<ModeSpec>,
    #[serde(default)]
    port_level_mtls: BTreeMap<u16, ModeSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ModeSpec {
    #[serde(default = "unset")]
    mode: MtlsMode,
}

fn unset() -> MtlsMode {
    MtlsMode::Unset
}

/// Resolves the applicable objects (`(selected, mesh, object)`, in file order) to the
/// effective one, and adds its `STRICT` deny rule to `rules`.
pub(crate) fn resolve(
    objects: Vec<(bool, bool, Object<PeerAuthnSpec>)>,
    rules: &mut Vec<RuleSpec>,
    warnings: &mut Vec<String>,
) -> Result<Vec<PeerAuthentication>, PolicyError> {
    for (selected, _, o) in &objects {
        if !selected && !o.spec.port_level_mtls.is_empty() {
            return Err(PolicyError::invalid(format!(
                "peer authentication `{}`: `portLevelMtls` needs a `selector` with `matchLabels` (Istio rejects port-level settings on a namespace- or mesh-wide policy)",
                o.metadata.qualified()
            )));
        }
    }
    // Levels, most specific first: workload (selector), namespace, mesh.
    let level = |selected: bool, mesh: bool| match (selected, mesh) {
        (true, _) => 0,
        (false, false) => 1,
        (false, true) => 2,
    };
    let mut chosen: [Option<Object<PeerAuthnSpec>>; 3] = [None, None, None];
    for (selected, mesh, o) in objects {
        let slot = &mut chosen[level(selected, mesh)];
        match slot {
            Some(first) => warnings.push(format!(
                "peer authentication `{}` is ignored: `{}` applies to this workload at the same level, and (as Istio takes the oldest) the first in the file wins",
                o.metadata.qualified(),
                first.metadata.qualified()
            )),
            None => *slot = Some(o),
        }
    }
    let mode_of = |o: &Option<Object<PeerAuthnSpec>>| {
        o.as_ref()
            .and_then(|o| o.spec.mtls.as_ref())
            .map_or(MtlsMode::Unset, |m| m.mode)
    };
    let known = |m: MtlsMode| (m != MtlsMode::Unset).then_some(m);
    let mode = known(mode_of(&chosen[0]))
        .or_else(|| known(mode_of(&chosen[1])))
        .or_else(|| known(mode_of(&chosen[2])))
        .unwrap_or(MtlsMode::Permissive);
    let Some(top) = chosen.into_iter().flatten().next() else {
        return Ok(Vec::new());
    };
    let name = top.metadata.qualified();
    let port_modes: BTreeMap<u16, MtlsMode> = top
        .spec
        .port_level_mtls
        .iter()
        .map(|(p, m)| (*p, known(m.mode).unwrap_or(mode)))
        .collect();
    let disabled = std::iter::once(mode)
        .chain(port_modes.values().copied())
        .any(|m| m == MtlsMode::Disable);
    if disabled {
        warnings.push(format!(
            "peer authentication `{name}`: mode `DISABLE` is read as `PERMISSIVE`: meshless accepts plaintext there and still accepts (and verifies) mutual TLS"
        ));
    }
    let port = |p: &u16| -> Result<PortRange, PolicyError> {
        p.to_string()
            .parse()
            .map_err(|e: String| PolicyError::invalid(format!("peer authentication `{name}`: {e}")))
    };
    let strict = |m: &MtlsMode| *m == MtlsMode::Strict;
    let (ports, not_ports) = if strict(&mode) {
        let open: Vec<_> = port_modes
            .iter()
            .filter(|(_, m)| !strict(m))
            .map(|(p, _)| port(p))
            .collect::<Result<_, _>>()?;
        (None, (!open.is_empty()).then_some(open))
    } else {
        let closed: Vec<_> = port_modes
            .iter()
            .filter(|(_, m)| strict(m))
            .map(|(p, _)| port(p))
            .collect::<Result<_, _>>()?;
        (Some(closed), None)
    };
    if ports.as_ref().is_none_or(|p| !p.is_empty()) {
        let mut rule = RuleSpec::new(format!("{name}:mtls-strict"), Action::Deny);
        rule.from = Some(
            vec![SourceSpec {
                authenticated: Some(false),
                ..SourceSpec::default()
            }]
            .into(),
        );
        if ports.is_some() || not_ports.is_some() {
            rule.to = Some(
                vec![OperationSpec {
                    ports: ports.map(Vec::into_boxed_slice),
                    not_ports: not_ports.map(Vec::into_boxed_slice),
                    ..OperationSpec::default()
                }]
                .into(),
            );
        }
        rules.push(rule);
    }
    Ok(vec![PeerAuthentication {
        name,
        mode,
        port_modes,
        has_selector: top.spec.selector.is_some(),
    }])
}
