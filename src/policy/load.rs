//! Parsing policies from YAML, TOML, JSON and files.

use std::io::Read as _;
use std::path::Path;

use super::compiled::Policy;
#[cfg(feature = "yaml")]
use super::error::yaml_error;
use super::error::{Location, PolicyError, strip_position};
use super::model::PolicySpec;
use super::workload::WorkloadContext;

/// The largest policy file [`Policy::load`] reads: 64 MiB, room for hundreds of
/// thousands of rules (a Kubernetes ConfigMap holds at most 1 MiB). A larger file is
/// refused from its size, so a runaway generator or a wrong path cannot exhaust memory.
pub const MAX_POLICY_FILE_BYTES: u64 = 64 << 20;

pub(crate) fn json_error(e: &serde_json::Error) -> PolicyError {
    PolicyError::Parse {
        location: Location::at(e.line(), e.column()),
        message: strip_position(&e.to_string()),
    }
}

fn toml_error(text: &str, e: &toml::de::Error) -> PolicyError {
    PolicyError::Parse {
        location: e
            .span()
            .map(|s| Location::of_offset(text, s.start))
            .unwrap_or_default(),
        message: e.message().trim().to_owned(),
    }
}

/// The deepest `[`/`{` nesting a YAML policy may have. The YAML parser refuses more
/// than 128 levels anyway, but only after scanning the whole document in time
/// quadratic in the nesting depth (a 100 KB line of `[` took about a minute), so
/// deeper documents are refused up front.
#[cfg(feature = "yaml")]
const MAX_YAML_FLOW_NESTING: usize = 128;

/// Refuses YAML whose flow collections nest deeper than [`MAX_YAML_FLOW_NESTING`].
/// Brackets inside quoted scalars and comments are not counted; a bracket inside a
/// plain scalar is (fail closed: such a document is refused, never misread).
#[cfg(feature = "yaml")]
fn check_flow_nesting(text: &str) -> Result<(), PolicyError> {
    let (mut depth, mut quote, mut comment, mut escaped) = (0usize, None::<u8>, false, false);
    let mut prev = b'\n';
    for (offset, b) in text.bytes().enumerate() {
        match (quote, b) {
            (_, b'\n') if comment => comment = false,
            _ if comment => {}
            _ if escaped => escaped = false,
            (Some(b'"'), b'\\') => escaped = true,
            (Some(q), _) if b == q => quote = None,
            (Some(_), _) => {}
            (None, b'#') if prev.is_ascii_whitespace() => comment = true,
            (None, b'\'' | b'"') => quote = Some(b),
            (None, b'[' | b'{') => {
                depth += 1;
                if depth > MAX_YAML_FLOW_NESTING {
                    return Err(PolicyError::Parse {
                        location: Location::of_offset(text, offset),
                        message: format!(
                            "collections nested deeper than `{MAX_YAML_FLOW_NESTING}` levels"
                        ),
                    });
                }
            }
            (None, b']' | b'}') => depth = depth.saturating_sub(1),
            _ => {}
        }
        prev = b;
    }
    Ok(())
}

impl Policy {
    /// Parses and compiles a policy in the native JSON format.
    ///
    /// # Errors
    ///
    /// [`PolicyError::Parse`] with line and column for syntax errors, unknown fields
    /// and invalid values; [`PolicyError::Invalid`] for cross-field errors.
    pub fn from_json(text: &str) -> Result<Self, PolicyError> {
        let spec: PolicySpec = serde_json::from_str(text).map_err(|e| json_error(&e))?;
        Self::compile(spec)
    }

    /// Parses and compiles a policy in the native TOML format (`[[rules]]` tables).
    ///
    /// # Errors
    ///
    /// As [`from_json`](Self::from_json).
    pub fn from_toml(text: &str) -> Result<Self, PolicyError> {
        let spec: PolicySpec = toml::from_str(text).map_err(|e| toml_error(text, &e))?;
        Self::compile(spec)
    }

    /// Parses and compiles YAML: either one native policy document, or a stream of
    /// Kubernetes manifests (Linkerd `Server`, `HTTPRoute`, `AuthorizationPolicy`,
    /// `MeshTLSAuthentication`, `NetworkAuthentication`; Istio
    /// `AuthorizationPolicy`, `PeerAuthentication`).
    ///
    /// # Errors
    ///
    /// As [`from_json`](Self::from_json), plus [`PolicyError::Unsupported`] for
    /// manifest features that cannot be enforced safely.
    #[cfg(feature = "yaml")]
    pub fn from_yaml(text: &str) -> Result<Self, PolicyError> {
        Self::yaml(text, None)
    }

    /// [`from_yaml`](Self::from_yaml) for one workload: Kubernetes manifests apply only
    /// where the mesh would apply them to the workload `context` describes (Istio
    /// namespace, selector and `targetRef` scoping; Linkerd `podSelector` and named
    /// ports). A native policy is read as by `from_yaml`.
    ///
    /// # Errors
    ///
    /// As [`from_yaml`](Self::from_yaml).
    #[cfg(feature = "yaml")]
    pub fn from_yaml_for(text: &str, context: &WorkloadContext) -> Result<Self, PolicyError> {
        Self::yaml(text, Some(context))
    }

    #[cfg(feature = "yaml")]
    fn yaml(text: &str, context: Option<&WorkloadContext>) -> Result<Self, PolicyError> {
        use serde::Deserialize;
        check_flow_nesting(text)?;
        let mut docs = Vec::new();
        for (i, doc) in yaml_serde::Deserializer::from_str(text).enumerate() {
            // Stop at the first error: the iterator repeats it forever.
            let value = yaml_serde::Value::deserialize(doc).map_err(|e| yaml_error(&e))?;
            if !value.is_null() {
                docs.push((i, value));
            }
        }
        let is_manifest =
            |v: &yaml_serde::Value| v.get("apiVersion").is_some() || v.get("kind").is_some();
        if docs.iter().any(|(_, v)| is_manifest(v)) {
            return super::import::import(text, context);
        }
        match docs.as_slice() {
            [] => Err(PolicyError::invalid("the policy document is empty")),
            [(i, _)] => {
                let doc = yaml_serde::Deserializer::from_str(text)
                    .nth(*i)
                    .ok_or_else(|| PolicyError::invalid("the policy document vanished"))?;
                let spec = PolicySpec::deserialize(doc).map_err(|e| yaml_error(&e))?;
                Self::compile(spec)
            }
            more => Err(PolicyError::invalid(format!(
                "a native policy is one yaml document, found `{}`",
                more.len()
            ))),
        }
    }

    /// Loads a policy file, choosing the format by extension (`.yaml`/`.yml`,
    /// `.toml`, `.json`). Symlinks are followed, so a Kubernetes ConfigMap volume
    /// works.
    ///
    /// # Errors
    ///
    /// [`PolicyError::Io`], [`PolicyError::TooLarge`] beyond
    /// [`MAX_POLICY_FILE_BYTES`], [`PolicyError::UnknownFormat`], or the parser's error
    /// with the file name attached.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, PolicyError> {
        Self::load_file(path.as_ref(), None)
    }

    /// [`load`](Self::load) for one workload (see [`from_yaml_for`](Self::from_yaml_for)).
    ///
    /// # Errors
    ///
    /// As [`load`](Self::load).
    pub fn load_for(
        path: impl AsRef<Path>,
        context: &WorkloadContext,
    ) -> Result<Self, PolicyError> {
        Self::load_file(path.as_ref(), Some(context))
    }

    pub(crate) fn load_file(
        path: &Path,
        context: Option<&WorkloadContext>,
    ) -> Result<Self, PolicyError> {
        let io = |source| PolicyError::Io {
            path: path.to_path_buf(),
            source,
        };
        let too_large = |size| PolicyError::TooLarge {
            path: path.to_path_buf(),
            size,
            max: MAX_POLICY_FILE_BYTES,
        };
        let file = std::fs::File::open(path).map_err(io)?;
        let size = file.metadata().map_err(io)?.len();
        if size > MAX_POLICY_FILE_BYTES {
            return Err(too_large(size));
        }
        // The size can change between the check and the read: read one byte past the
        // limit at most.
        let mut text = String::new();
        file.take(MAX_POLICY_FILE_BYTES + 1)
            .read_to_string(&mut text)
            .map_err(io)?;
        if text.len() as u64 > MAX_POLICY_FILE_BYTES {
            return Err(too_large(text.len() as u64));
        }
        Self::from_text(path, &text, context)
    }

    pub(crate) fn from_text(
        path: &Path,
        text: &str,
        context: Option<&WorkloadContext>,
    ) -> Result<Self, PolicyError> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        let result = match ext.as_deref() {
            Some("json") => Self::from_json(text),
            Some("toml") => Self::from_toml(text),
            #[cfg(feature = "yaml")]
            Some("yaml" | "yml") => Self::yaml(text, context),
            #[cfg(not(feature = "yaml"))]
            Some("yaml" | "yml") => {
                let _ = context; // manifests, which use it, need the `yaml` feature
                Err(PolicyError::YamlDisabled)
            }
            _ => {
                return Err(PolicyError::UnknownFormat {
                    path: path.to_path_buf(),
                });
            }
        };
        result.map_err(|e| e.in_file(path))
    }
}
