//! Errors of policy loading and request normalization.

use std::fmt;
use std::path::PathBuf;

/// Where in a policy source an error was found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Location {
    /// The file, when the policy was loaded from one.
    pub file: Option<PathBuf>,
    /// 1-based line, when the parser reports it.
    pub line: Option<usize>,
    /// 1-based column, when the parser reports it.
    pub column: Option<usize>,
}

impl Location {
    pub(crate) fn at(line: usize, column: usize) -> Self {
        Self {
            file: None,
            line: Some(line),
            column: Some(column),
        }
    }

    /// Line and column of byte `offset` in `text` (both 1-based).
    pub(crate) fn of_offset(text: &str, offset: usize) -> Self {
        let offset = offset.min(text.len());
        let before = text.as_bytes().get(..offset).unwrap_or_default();
        let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
        let line_start = before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |p| p + 1);
        Self::at(line, offset - line_start + 1)
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut wrote = false;
        if let Some(file) = &self.file {
            write!(f, "{}", file.display())?;
            wrote = true;
        }
        if let Some(line) = self.line {
            if wrote {
                f.write_str(":")?;
            }
            write!(f, "{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
            wrote = true;
        }
        if !wrote {
            f.write_str("<policy>")?;
        }
        Ok(())
    }
}

/// Why a policy could not be loaded. A policy that fails to load is never partially
/// applied: the caller keeps whatever policy it had.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The source is not valid YAML/TOML/JSON, has an unknown field, or a value that
    /// does not validate (identity, CIDR, pattern, port, action).
    #[error("{location}: {message}")]
    Parse {
        /// Where the parser stopped.
        location: Location,
        /// The parser's account, with the offending input in backticks.
        message: String,
    },
    /// The document parsed but breaks a rule that spans several fields (for example
    /// two rules with one name).
    #[error("{location}: {message}")]
    Invalid {
        /// The file, when known (parsers give no line for these).
        location: Location,
        /// What is wrong, naming the rule or object.
        message: String,
    },
    /// A Kubernetes manifest uses a feature meshless cannot enforce safely (Istio
    /// `CUSTOM`, regular-expression routes, named ports, ...).
    #[error("{location}: {message}")]
    Unsupported {
        /// The file, when known.
        location: Location,
        /// What is unsupported and why.
        message: String,
    },
    /// The policy file could not be read.
    #[error("cannot read `{}`: {source}", path.display())]
    Io {
        /// The path that was read.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file extension does not say which format the file is in.
    #[error("cannot tell the format of `{}`: use .yaml, .yml, .toml or .json", path.display())]
    UnknownFormat {
        /// The path.
        path: PathBuf,
    },
    /// The file is larger than [`MAX_POLICY_FILE_BYTES`](super::MAX_POLICY_FILE_BYTES);
    /// it is refused from its size, without being read.
    #[error("policy file `{}` is `{size}` bytes; the limit is `{max}`", path.display())]
    TooLarge {
        /// The path.
        path: PathBuf,
        /// Its size (or the bytes read before giving up).
        size: u64,
        /// The limit.
        max: u64,
    },
    /// YAML support is compiled out (feature `yaml`).
    #[error("yaml policies need the `yaml` feature")]
    YamlDisabled,
}

impl PolicyError {
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::Invalid {
            location: Location::default(),
            message: message.into(),
        }
    }

    #[cfg_attr(not(feature = "yaml"), allow(dead_code))]
    pub(crate) fn unsupported(message: impl Into<String>) -> Self {
        Self::Unsupported {
            location: Location::default(),
            message: message.into(),
        }
    }

    /// The location of the error, when it has one.
    pub fn location(&self) -> Option<&Location> {
        match self {
            Self::Parse { location, .. }
            | Self::Invalid { location, .. }
            | Self::Unsupported { location, .. } => Some(location),
            _ => None,
        }
    }

    /// Attaches the file name to the error's location.
    pub(crate) fn in_file(mut self, path: &std::path::Path) -> Self {
        if let Self::Parse { location, .. }
        | Self::Invalid { location, .. }
        | Self::Unsupported { location, .. } = &mut self
        {
            location.file = Some(path.to_path_buf());
        }
        self
    }
}

/// Why a request path or authority was rejected before policy ran. The enforcement
/// layer answers 400 for all of these.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PathError {
    /// `%2F` or `%5C`: an encoded separator could smuggle a path past a rule.
    #[error("encoded slash or backslash in path `{0}`")]
    EncodedSeparator(String),
    /// A raw backslash.
    #[error("backslash in path `{0}`")]
    Backslash(String),
    /// NUL or another control character, raw or percent-encoded.
    #[error("control character in path `{0}`")]
    ControlCharacter(String),
    /// `%25`: an encoded `%` is double encoding, read one way by the policy and another
    /// by an app that decodes twice.
    #[error("encoded `%` (`%25`) in path `{0}`")]
    EncodedPercent(String),
    /// A dot segment (`.`, `..`, raw or encoded) or an empty segment (`//`): a router
    /// matching the raw path and an app resolving it would read different paths, so
    /// the request is refused rather than decided on one reading.
    #[error("path `{path}` is not in normal form (send `{normal}`)")]
    NotNormalized {
        /// The path as sent.
        path: String,
        /// Its RFC 3986 resolution with empty segments merged.
        normal: String,
    },
    /// A `%` not followed by two hex digits.
    #[error("malformed percent-encoding in path `{0}`")]
    BadPercentEncoding(String),
    /// The decoded path is not UTF-8.
    #[error("path `{0}` is not valid utf-8 after decoding")]
    InvalidUtf8(String),
    /// A dot segment carrying `;` parameters (`/..;/admin`): RFC 3986 makes it an
    /// ordinary segment, but servlet containers drop the parameters and then resolve
    /// it as `..`, so the application would serve another path than the one matched.
    #[error("dot segment with `;` parameters in path `{0}`")]
    DotSegmentParameters(String),
    /// The path does not start with `/` (and is not `*`).
    #[error("path `{0}` is not absolute")]
    NotAbsolute(String),
    /// The request target's authority and the Host header name different hosts.
    #[error("authority `{authority}` disagrees with host header `{host}`")]
    HostMismatch {
        /// The authority of the absolute-form URI or `:authority`.
        authority: String,
        /// The Host header.
        host: String,
    },
    /// The Host header is not valid.
    #[error("invalid host `{0}`")]
    InvalidHost(String),
}

/// A YAML parse error as a [`PolicyError`] with its location.
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
pub(crate) fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}
