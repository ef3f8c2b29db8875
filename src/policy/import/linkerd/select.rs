//! Kubernetes label selectors, as Linkerd's `Server.podSelector` and
//! `ServerAuthorization.server.selector` use them: `matchLabels` and
//! `matchExpressions` (`In`, `NotIn`, `Exists`, `DoesNotExist`), all ANDed; an empty
//! selector selects everything.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::policy::error::PolicyError;

/// A `LabelSelector`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct LabelSelector {
    #[serde(default)]
    match_labels: Option<BTreeMap<String, String>>,
    #[serde(default)]
    match_expressions: Option<Vec<Requirement>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Requirement {
    key: String,
    operator: String,
    #[serde(default)]
    values: Option<Vec<String>>,
}

impl LabelSelector {
    /// True for `{}`: it selects every object (of its namespace).
    pub(crate) fn is_empty(&self) -> bool {
        self.match_labels.as_ref().is_none_or(BTreeMap::is_empty)
            && self.match_expressions.as_ref().is_none_or(Vec::is_empty)
    }

    /// Refuses operators Kubernetes does not know and values it would refuse
    /// (`In`/`NotIn` need values, `Exists`/`DoesNotExist` take none).
    pub(crate) fn validate(&self, object: &str, field: &str) -> Result<(), PolicyError> {
        for (i, r) in self.match_expressions.iter().flatten().enumerate() {
            let n = r.values.as_ref().map_or(0, Vec::len);
            let ok = match r.operator.as_str() {
                "In" | "NotIn" => n > 0,
                "Exists" | "DoesNotExist" => n == 0,
                other => {
                    return Err(PolicyError::unsupported(format!(
                        "{object}: `{field}.matchExpressions[{i}].operator` `{other}` is not a label selector operator (In, NotIn, Exists, DoesNotExist)"
                    )));
                }
            };
            if !ok {
                return Err(PolicyError::invalid(format!(
                    "{object}: `{field}.matchExpressions[{i}]` (`{}` `{}`): In and NotIn need `values`, Exists and DoesNotExist take none",
                    r.key, r.operator
                )));
            }
        }
        Ok(())
    }

    /// Whether the selector selects an object with these labels.
    pub(crate) fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let by_label = self
            .match_labels
            .iter()
            .flatten()
            .all(|(k, v)| labels.get(k) == Some(v));
        by_label
            && self.match_expressions.iter().flatten().all(|r| {
                let value = labels.get(&r.key);
                let listed = || value.is_some_and(|v| r.values.iter().flatten().any(|x| x == v));
                match r.operator.as_str() {
                    "In" => listed(),
                    // Kubernetes: NotIn also selects objects without the label.
                    "NotIn" => !listed(),
                    "Exists" => value.is_some(),
                    "DoesNotExist" => value.is_none(),
                    _ => false,
                }
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sel(yaml: &str) -> LabelSelector {
        yaml_serde::from_str(yaml).unwrap()
    }

    #[test]
    fn label_selector_follows_kubernetes() {
        let labels = BTreeMap::from([
            ("app".to_owned(), "voting-svc".to_owned()),
            ("environment".to_owned(), "prod".to_owned()),
        ]);
        assert!(sel("{}").matches(&labels) && sel("{}").is_empty());
        assert!(sel("matchLabels: {app: voting-svc}").matches(&labels));
        assert!(!sel("matchLabels: {app: emoji-svc}").matches(&labels));
        let exprs = "matchExpressions:\n- {key: app, operator: In, values: [voting-svc, emoji-svc]}\n- {key: environment, operator: NotIn, values: [dev]}";
        assert!(sel(exprs).matches(&labels));
        let dev = BTreeMap::from([
            ("app".to_owned(), "emoji-svc".to_owned()),
            ("environment".to_owned(), "dev".to_owned()),
        ]);
        assert!(!sel(exprs).matches(&dev));
        // NotIn selects objects without the label.
        assert!(
            sel("matchExpressions: [{key: tier, operator: NotIn, values: [x]}]").matches(&labels)
        );
        assert!(sel("matchExpressions: [{key: app, operator: Exists}]").matches(&labels));
        assert!(!sel("matchExpressions: [{key: app, operator: DoesNotExist}]").matches(&labels));
        assert!(
            sel("matchExpressions: [{key: app, operator: Gt, values: [1]}]")
                .validate("s", "podSelector")
                .is_err()
        );
        assert!(
            sel("matchExpressions: [{key: app, operator: In}]")
                .validate("s", "podSelector")
                .is_err()
        );
        assert!(
            sel("matchExpressions: [{key: app, operator: Exists, values: [a]}]")
                .validate("s", "podSelector")
                .is_err()
        );
    }
}
