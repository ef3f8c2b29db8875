//! [`WorkloadContext`]: who is enforcing, so that mesh manifests written for many
//! workloads apply only where the mesh would apply them.
//!
//! A team keeps the policies of many workloads in one repository. Istio applies an
//! `AuthorizationPolicy` only to workloads of its namespace (all of them when it sits in
//! the root namespace, `istio-system` by default), narrowed by `selector.matchLabels`
//! or `targetRef(s)`; Linkerd applies a `Server` only to the pods its `podSelector`
//! selects, on the port it names (a number, or a container port's name). The context
//! says which workload this process is, so that the importers can do the same.
//!
//! ```
//! use meshless::policy::WorkloadContext;
//! let id: meshless::SpiffeId = "spiffe://cluster.local/ns/shop/sa/orders".parse()?;
//! let ctx = WorkloadContext::new()
//!     .identity(id.into())
//!     .label("app", "orders")
//!     .named_port("http", 8080);
//! assert_eq!(ctx.namespace(), Some("shop"));
//! assert_eq!(ctx.service_account(), Some("orders"));
//! assert_eq!(ctx.port("http"), Some(8080));
//! assert_eq!(ctx.root_namespace(), "istio-system");
//! // The labels file the Kubernetes downward API writes:
//! let ctx = ctx.labels_from_downward_api("app=\"orders\"\nversion=\"v2\"\n")?;
//! assert_eq!(ctx.labels().get("version").map(String::as_str), Some("v2"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use crate::Identity;

/// The workload enforcing a policy: its identity (and so its namespace and service
/// account), its pod labels, its named container ports, and the Istio root namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadContext {
    identity: Option<Identity>,
    namespace: Option<String>,
    labels: BTreeMap<String, String>,
    ports: BTreeMap<String, u16>,
    root_namespace: String,
}

impl Default for WorkloadContext {
    fn default() -> Self {
        Self::new()
    }
}

/// A downward API labels file that could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorkloadContextError {
    /// The file could not be read.
    #[error("cannot read `{path}`: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A line is not `key="value"`.
    #[error("line {line} of the labels file is not `key=\"value\"`: `{text}`")]
    BadLine {
        /// 1-based line number.
        line: usize,
        /// The line as written.
        text: String,
    },
}

impl WorkloadContext {
    /// An empty context: no identity, no labels, no named ports, root namespace
    /// `istio-system`.
    pub fn new() -> Self {
        Self {
            identity: None,
            namespace: None,
            labels: BTreeMap::new(),
            ports: BTreeMap::new(),
            root_namespace: "istio-system".to_owned(),
        }
    }

    /// The workload's own identity; a Kubernetes-shaped SPIFFE ID
    /// (`/ns/<namespace>/sa/<account>`) or Linkerd identity gives its namespace and
    /// service account.
    pub fn identity(mut self, identity: Identity) -> Self {
        self.identity = Some(identity);
        self
    }

    /// Sets the namespace when the identity does not carry one (or overrides it).
    pub fn namespace_name(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = Some(namespace.into());
        self
    }

    /// Adds a pod label.
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// Adds a named container port (`http` → 8080), as Linkerd `Server.port` and Gateway
    /// API `port` may name one.
    pub fn named_port(mut self, name: impl Into<String>, port: u16) -> Self {
        self.ports.insert(name.into(), port);
        self
    }

    /// Sets Istio's root namespace (`istio-system` by default): policies there apply to
    /// every workload of the mesh.
    pub fn istio_root_namespace(mut self, namespace: impl Into<String>) -> Self {
        self.root_namespace = namespace.into();
        self
    }

    /// Adds the labels of a downward API labels file (`key="value"` per line, values
    /// with Go's escapes `\"`, `\\`, `\n`).
    ///
    /// # Errors
    ///
    /// [`WorkloadContextError::BadLine`] for a line of another shape.
    pub fn labels_from_downward_api(mut self, text: &str) -> Result<Self, WorkloadContextError> {
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let bad = || WorkloadContextError::BadLine {
                line: i + 1,
                text: line.to_owned(),
            };
            let (key, value) = line.split_once('=').ok_or_else(bad)?;
            let value = unquote(value).ok_or_else(bad)?;
            if key.is_empty() {
                return Err(bad());
            }
            self.labels.insert(key.to_owned(), value);
        }
        Ok(self)
    }

    /// [`labels_from_downward_api`](Self::labels_from_downward_api) from a file (for
    /// example `/etc/podinfo/labels`).
    ///
    /// # Errors
    ///
    /// [`WorkloadContextError::Io`], or a bad line.
    pub fn labels_from_file(self, path: impl AsRef<Path>) -> Result<Self, WorkloadContextError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| WorkloadContextError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        self.labels_from_downward_api(&text)
    }

    /// The workload's identity, if set.
    pub fn workload_identity(&self) -> Option<&Identity> {
        self.identity.as_ref()
    }

    /// The workload's namespace: set explicitly, or from its identity.
    pub fn namespace(&self) -> Option<&str> {
        self.namespace
            .as_deref()
            .or_else(|| self.identity.as_ref().and_then(Identity::namespace))
    }

    /// The workload's service account, from its identity.
    pub fn service_account(&self) -> Option<&str> {
        self.identity.as_ref().and_then(Identity::service_account)
    }

    /// The pod labels.
    pub fn labels(&self) -> &BTreeMap<String, String> {
        &self.labels
    }

    /// The port a container port name stands for.
    pub fn port(&self, name: &str) -> Option<u16> {
        self.ports.get(name).copied()
    }

    /// Istio's root namespace.
    pub fn root_namespace(&self) -> &str {
        &self.root_namespace
    }

    /// Whether every `key: value` of `match_labels` is a label of this workload (an
    /// empty selector selects every workload, as in Kubernetes).
    pub fn matches_labels(&self, match_labels: &BTreeMap<String, String>) -> bool {
        match_labels
            .iter()
            .all(|(k, v)| self.labels.get(k) == Some(v))
    }
}

/// A Go-quoted string (`"..."` with `\"`, `\\`, `\n`, `\t`), as the downward API writes
/// label values.
fn unquote(s: &str) -> Option<String> {
    let inner = s.strip_prefix('"')?.strip_suffix('"')?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push(match chars.next()? {
                '"' => '"',
                '\\' => '\\',
                'n' => '\n',
                't' => '\t',
                _ => return None,
            }),
            '"' => return None,
            c => out.push(c),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downward_api_labels_are_read_and_bad_lines_refused() {
        let ctx = WorkloadContext::new()
            .labels_from_downward_api(
                "app=\"orders\"\napp.kubernetes.io/name=\"a \\\"b\\\"\"\n\nempty=\"\"\n",
            )
            .unwrap();
        assert_eq!(ctx.labels()["app"], "orders");
        assert_eq!(ctx.labels()["app.kubernetes.io/name"], "a \"b\"");
        assert_eq!(ctx.labels()["empty"], "");
        for bad in ["app=orders", "=\"x\"", "app", "app=\"a\"b\"", "app=\"\\q\""] {
            assert!(
                WorkloadContext::new()
                    .labels_from_downward_api(bad)
                    .is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn namespace_comes_from_the_identity_unless_set() {
        let id: crate::SpiffeId = "spiffe://td/ns/shop/sa/orders".parse().unwrap();
        let ctx = WorkloadContext::new().identity(id.into());
        assert_eq!(
            (ctx.namespace(), ctx.service_account()),
            (Some("shop"), Some("orders"))
        );
        assert_eq!(
            ctx.clone().namespace_name("other").namespace(),
            Some("other")
        );
        let selector = BTreeMap::from([("app".to_owned(), "orders".to_owned())]);
        assert!(!ctx.matches_labels(&selector));
        assert!(ctx.label("app", "orders").matches_labels(&selector));
        assert!(WorkloadContext::new().matches_labels(&BTreeMap::new()));
    }
}
