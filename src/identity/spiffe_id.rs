//! SPIFFE IDs and trust domains, exactly as the SPIFFE-ID standard defines them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

const SCHEME: &str = "spiffe://";
/// The longest SPIFFE ID accepted, in bytes (SPIFFE-ID §2.3: IDs up to 2048 bytes
/// must be supported; longer ones are rejected rather than truncated).
pub const MAX_ID_LEN: usize = 2048;
/// The longest trust domain name accepted, in bytes (SPIFFE-ID §2.1).
pub const MAX_TRUST_DOMAIN_LEN: usize = 255;

/// Why a string is not a valid SPIFFE ID or trust domain.
///
/// Each variant names the rule of the SPIFFE-ID standard that the input broke.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdError {
    /// The input was empty.
    #[error("empty SPIFFE ID")]
    Empty,
    /// The input does not start with the lowercase scheme `spiffe://`.
    #[error("SPIFFE ID `{0}` must start with the lowercase scheme `spiffe://`")]
    WrongScheme(String),
    /// There is nothing between `spiffe://` and the path.
    #[error("SPIFFE ID `{0}` has no trust domain")]
    MissingTrustDomain(String),
    /// The trust domain holds a character outside `[a-z0-9._-]`.
    #[error(
        "trust domain of `{input}` contains `{ch}`: only lowercase letters, digits, `.`, `-` and `_` are allowed"
    )]
    TrustDomainChar {
        /// The whole input.
        input: String,
        /// The offending character.
        ch: char,
    },
    /// The authority carries a port (`td:8080`).
    #[error("SPIFFE ID `{0}` must not carry a port")]
    Port(String),
    /// The authority carries userinfo (`user@td`).
    #[error("SPIFFE ID `{0}` must not carry userinfo")]
    UserInfo(String),
    /// A `%` escape appears; SPIFFE IDs are never percent-encoded.
    #[error("SPIFFE ID `{0}` must not be percent-encoded")]
    PercentEncoded(String),
    /// A `?query` was found.
    #[error("SPIFFE ID `{0}` must not carry a query")]
    Query(String),
    /// A `#fragment` was found.
    #[error("SPIFFE ID `{0}` must not carry a fragment")]
    Fragment(String),
    /// The trust domain is longer than 255 bytes.
    #[error("trust domain is {0} bytes long, more than the 255 allowed")]
    TrustDomainTooLong(usize),
    /// The whole ID is longer than 2048 bytes.
    #[error("SPIFFE ID is {0} bytes long, more than the 2048 allowed")]
    TooLong(usize),
    /// A trust domain was expected, but the input is a SPIFFE ID with a path.
    #[error("`{0}` is a workload ID, not a trust domain: drop the path")]
    NotTrustDomain(String),
    /// The path contains an empty segment (`//`).
    #[error("path of `{0}` contains an empty segment")]
    EmptySegment(String),
    /// The path ends with `/`.
    #[error("path of `{0}` must not end with `/`")]
    TrailingSlash(String),
    /// The path contains a `.` or `..` segment.
    #[error("path of `{0}` contains a `.` or `..` segment")]
    DotSegment(String),
    /// A path segment holds a character outside `[A-Za-z0-9._-]`.
    #[error(
        "path of `{input}` contains `{ch}`: only letters, digits, `.`, `-` and `_` are allowed in segments"
    )]
    PathChar {
        /// The whole input.
        input: String,
        /// The offending character.
        ch: char,
    },
}

/// A SPIFFE trust domain: the authority part of a SPIFFE ID, such as `example.org`.
///
/// ```
/// use meshless::TrustDomain;
/// let td: TrustDomain = "example.org".parse()?;
/// assert_eq!(td.id().to_string(), "spiffe://example.org");
/// assert!("Example.org".parse::<TrustDomain>().is_err()); // uppercase is rejected, not folded
/// # Ok::<(), meshless::IdError>(())
/// ```
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TrustDomain(Box<str>);

impl TrustDomain {
    /// Parses a bare trust domain name (`example.org`) or the ID of a trust domain
    /// (`spiffe://example.org`, with no path).
    ///
    /// # Errors
    /// [`IdError`] naming the rule that was broken.
    pub fn new(name: &str) -> Result<Self, IdError> {
        if name.starts_with(SCHEME) || name.to_ascii_lowercase().starts_with(SCHEME) {
            let id = SpiffeId::parse(name)?;
            if !id.is_trust_domain_id() {
                return Err(IdError::NotTrustDomain(name.to_owned()));
            }
            return Ok(id.trust_domain().clone());
        }
        check_trust_domain(name, name)?;
        Ok(Self(name.into()))
    }

    /// The trust domain name, such as `example.org`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The SPIFFE ID of the trust domain itself, `spiffe://<name>`.
    pub fn id(&self) -> SpiffeId {
        SpiffeId {
            full: format!("{SCHEME}{}", self.0).into(),
            td: self.clone(),
        }
    }
}

/// A validated SPIFFE ID, such as `spiffe://example.org/ns/web/sa/frontend`.
///
/// Parsing follows the SPIFFE-ID standard strictly, like the reference Go
/// implementation: the scheme and trust domain must already be lowercase (they are
/// rejected, not folded), and the path must be a list of non-empty segments of
/// `[A-Za-z0-9._-]`, none of them `.` or `..`. `Display` prints the canonical form,
/// which parses back to an equal value.
///
/// ```
/// use meshless::SpiffeId;
/// let id: SpiffeId = "spiffe://example.org/ns/web/sa/frontend".parse()?;
/// assert_eq!(id.trust_domain().as_str(), "example.org");
/// assert_eq!(id.path(), "/ns/web/sa/frontend");
/// assert_eq!(id.namespace(), Some("web"));
/// assert_eq!(id.service_account(), Some("frontend"));
/// assert!("spiffe://example.org/a/../b".parse::<SpiffeId>().is_err());
/// # Ok::<(), meshless::IdError>(())
/// ```
#[derive(Clone)]
pub struct SpiffeId {
    full: Box<str>,
    td: TrustDomain,
}

impl SpiffeId {
    /// Parses and validates a SPIFFE ID.
    ///
    /// # Errors
    /// [`IdError`] naming the rule that was broken.
    pub fn parse(input: &str) -> Result<Self, IdError> {
        if input.is_empty() {
            return Err(IdError::Empty);
        }
        if input.len() > MAX_ID_LEN {
            return Err(IdError::TooLong(input.len()));
        }
        let Some(rest) = input.strip_prefix(SCHEME) else {
            return Err(IdError::WrongScheme(input.to_owned()));
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        if authority.is_empty() {
            return Err(IdError::MissingTrustDomain(input.to_owned()));
        }
        check_trust_domain(authority, input)?;
        check_path(path, input)?;
        Ok(Self {
            full: input.into(),
            td: TrustDomain(authority.into()),
        })
    }

    /// Builds `spiffe://<trust_domain>/<segment>/<segment>…` from path segments.
    ///
    /// ```
    /// use meshless::{SpiffeId, TrustDomain};
    /// let td = TrustDomain::new("example.org")?;
    /// let id = SpiffeId::new(&td, ["ns", "web", "sa", "frontend"])?;
    /// assert_eq!(id.to_string(), "spiffe://example.org/ns/web/sa/frontend");
    /// # Ok::<(), meshless::IdError>(())
    /// ```
    ///
    /// # Errors
    /// [`IdError`] if a segment is empty, `.`/`..`, or holds a forbidden character
    /// (including `/`), or the result is too long.
    pub fn new<I, S>(trust_domain: &TrustDomain, segments: I) -> Result<Self, IdError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut full = format!("{SCHEME}{}", trust_domain.as_str());
        for segment in segments {
            let segment = segment.as_ref();
            full.push('/');
            full.push_str(segment);
            if segment.is_empty() || segment.contains('/') {
                let err = if segment.is_empty() {
                    IdError::EmptySegment(full)
                } else {
                    IdError::PathChar {
                        input: full,
                        ch: '/',
                    }
                };
                return Err(err);
            }
        }
        Self::parse(&full)
    }

    /// The whole ID as a string, `spiffe://…`.
    pub fn as_str(&self) -> &str {
        &self.full
    }

    /// The trust domain the ID belongs to.
    pub fn trust_domain(&self) -> &TrustDomain {
        &self.td
    }

    /// The path, starting with `/`, or the empty string for a trust domain's own ID.
    pub fn path(&self) -> &str {
        &self.full[SCHEME.len() + self.td.0.len()..]
    }

    /// True when the ID has no path (`spiffe://example.org`), i.e. it names a trust
    /// domain rather than a workload. X.509-SVIDs must not carry such an ID.
    pub fn is_trust_domain_id(&self) -> bool {
        self.path().is_empty()
    }

    /// The path segments, in order.
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.path().split('/').skip(1)
    }

    /// The Kubernetes namespace, when the path is `/ns/<ns>/sa/<sa>` (the form Istio
    /// and SPIRE issue).
    pub fn namespace(&self) -> Option<&str> {
        self.kubernetes().map(|(ns, _)| ns)
    }

    /// The Kubernetes service account, when the path is `/ns/<ns>/sa/<sa>`.
    pub fn service_account(&self) -> Option<&str> {
        self.kubernetes().map(|(_, sa)| sa)
    }

    fn kubernetes(&self) -> Option<(&str, &str)> {
        let mut it = self.segments();
        match (it.next(), it.next(), it.next(), it.next(), it.next()) {
            (Some("ns"), Some(ns), Some("sa"), Some(sa), None) => Some((ns, sa)),
            _ => None,
        }
    }
}

fn check_trust_domain(name: &str, input: &str) -> Result<(), IdError> {
    if name.is_empty() {
        return Err(IdError::MissingTrustDomain(input.to_owned()));
    }
    for ch in name.chars() {
        match ch {
            'a'..='z' | '0'..='9' | '.' | '-' | '_' => {}
            ':' => return Err(IdError::Port(input.to_owned())),
            '@' => return Err(IdError::UserInfo(input.to_owned())),
            '%' => return Err(IdError::PercentEncoded(input.to_owned())),
            '?' => return Err(IdError::Query(input.to_owned())),
            '#' => return Err(IdError::Fragment(input.to_owned())),
            _ => {
                return Err(IdError::TrustDomainChar {
                    input: input.to_owned(),
                    ch,
                });
            }
        }
    }
    if name.len() > MAX_TRUST_DOMAIN_LEN {
        return Err(IdError::TrustDomainTooLong(name.len()));
    }
    Ok(())
}

fn check_path(path: &str, input: &str) -> Result<(), IdError> {
    if path.is_empty() {
        return Ok(());
    }
    // `path` starts with '/', so the first split item is empty and skipped.
    let mut segments = path.split('/').skip(1).peekable();
    while let Some(segment) = segments.next() {
        for ch in segment.chars() {
            match ch {
                'a'..='z' | 'A'..='Z' | '0'..='9' | '.' | '-' | '_' => {}
                '%' => return Err(IdError::PercentEncoded(input.to_owned())),
                '?' => return Err(IdError::Query(input.to_owned())),
                '#' => return Err(IdError::Fragment(input.to_owned())),
                _ => {
                    return Err(IdError::PathChar {
                        input: input.to_owned(),
                        ch,
                    });
                }
            }
        }
        match segment {
            "" if segments.peek().is_none() => {
                return Err(IdError::TrailingSlash(input.to_owned()));
            }
            "" => return Err(IdError::EmptySegment(input.to_owned())),
            "." | ".." => return Err(IdError::DotSegment(input.to_owned())),
            _ => {}
        }
    }
    Ok(())
}

macro_rules! string_newtype_impls {
    ($ty:ident, $parse:path, $key:tt) => {
        impl FromStr for $ty {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                $parse(s)
            }
        }

        impl TryFrom<&str> for $ty {
            type Error = IdError;
            fn try_from(s: &str) -> Result<Self, IdError> {
                $parse(s)
            }
        }

        impl TryFrom<String> for $ty {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                $parse(&s)
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.$key)
            }
        }

        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($ty), &*self.$key)
            }
        }

        impl AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                &self.$key
            }
        }

        impl Serialize for $ty {
            fn serialize<Ser: Serializer>(&self, s: Ser) -> Result<Ser::Ok, Ser::Error> {
                s.serialize_str(&self.$key)
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
                $parse(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

string_newtype_impls!(SpiffeId, SpiffeId::parse, full);
string_newtype_impls!(TrustDomain, TrustDomain::new, 0);

// Equality, order and hashing on the canonical string only: `td` is derived from it.
impl PartialEq for SpiffeId {
    fn eq(&self, other: &Self) -> bool {
        self.full == other.full
    }
}
impl Eq for SpiffeId {}
impl PartialOrd for SpiffeId {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for SpiffeId {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.full.cmp(&other.full)
    }
}
impl std::hash::Hash for SpiffeId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.full.hash(state);
    }
}

#[cfg(test)]
#[path = "spiffe_id_tests.rs"]
mod tests;
