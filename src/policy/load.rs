//! Parsing policies from YAML, TOML, JSON and files.

use std::path::Path;

use super::compiled::Policy;
use super::error::{Location, PolicyError};
use super::model::PolicySpec;

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

#[cfg(feature = "yaml")]
pub(crate) fn yaml_error(e: &yaml_serde::Error) -> PolicyError {
    PolicyError::Parse {
        location: e
            .location()
            .map(|l| Location::at(l.line(), l.column()))
            .unwrap_or_default(),
        message: strip_position(&e.to_string()),
    }
}

/// Drops a parser's own " at line X column Y" suffix (the location is kept apart).
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
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
        use serde::Deserialize;
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
            return super::manifest::import(text);
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
    /// [`PolicyError::Io`], [`PolicyError::UnknownFormat`], or the parser's error
    /// with the file name attached.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, PolicyError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_text(path, &text)
    }

    pub(crate) fn from_text(path: &Path, text: &str) -> Result<Self, PolicyError> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        let result = match ext.as_deref() {
            Some("json") => Self::from_json(text),
            Some("toml") => Self::from_toml(text),
            #[cfg(feature = "yaml")]
            Some("yaml" | "yml") => Self::from_yaml(text),
            #[cfg(not(feature = "yaml"))]
            Some("yaml" | "yml") => Err(PolicyError::YamlDisabled),
            _ => {
                return Err(PolicyError::UnknownFormat {
                    path: path.to_path_buf(),
                });
            }
        };
        result.map_err(|e| e.in_file(path))
    }
}
