//! Validated value patterns: strings, identities, paths. Each keeps its source text
//! (`Display`) and is checked when the policy is parsed, so a malformed pattern is a
//! load error with a line and column, never a silent widening.

use std::fmt;
use std::str::FromStr;

use crate::{Identity, LinkerdId, SpiffeId};

/// Istio's string match: exact, `prefix*`, `*suffix`, or `*` (any non-empty value).
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum StringMatch {
    /// Equal to the text.
    Exact(Box<str>),
    /// Starts with the text.
    Prefix(Box<str>),
    /// Ends with the text.
    Suffix(Box<str>),
    /// Any non-empty value.
    Any,
}

impl StringMatch {
    /// Parses a pattern; `*` may only be the whole value, its first or its last char.
    ///
    /// # Errors
    ///
    /// An empty pattern or a `*` elsewhere.
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.is_empty() {
            return Err("empty pattern".into());
        }
        if s == "*" {
            return Ok(Self::Any);
        }
        let m = if let Some(rest) = s.strip_prefix('*') {
            Self::Suffix(rest.into())
        } else if let Some(rest) = s.strip_suffix('*') {
            Self::Prefix(rest.into())
        } else {
            Self::Exact(s.into())
        };
        match &m {
            Self::Exact(t) | Self::Prefix(t) | Self::Suffix(t) if t.contains('*') => Err(format!(
                "`{s}`: `*` is allowed only as the whole value, its first or its last character"
            )),
            _ => Ok(m),
        }
    }

    /// Whether `value` matches.
    pub fn matches(&self, value: &str) -> bool {
        match self {
            Self::Exact(t) => value == &**t,
            Self::Prefix(t) => value.starts_with(&**t),
            Self::Suffix(t) => value.ends_with(&**t),
            Self::Any => !value.is_empty(),
        }
    }

    pub(crate) fn exact(&self) -> Option<&str> {
        match self {
            Self::Exact(t) => Some(t),
            _ => None,
        }
    }
}

impl fmt::Display for StringMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exact(t) => f.write_str(t),
            Self::Prefix(t) => write!(f, "{t}*"),
            Self::Suffix(t) => write!(f, "*{t}"),
            Self::Any => f.write_str("*"),
        }
    }
}

impl fmt::Debug for StringMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{self}`")
    }
}

/// A peer identity pattern.
///
/// - `*`: any authenticated peer;
/// - `spiffe://td/path`: exactly that SPIFFE ID;
/// - `spiffe://td/prefix/*`: any SPIFFE ID under that path (one or more segments);
/// - `*` as an inner path segment (`spiffe://td/ns/*/sa/web`): exactly one segment;
/// - `*/ns/web/sa/api` (`*` then whole path segments): a SPIFFE ID of any trust domain
///   whose URI ends with that path (Istio's suffix principal `*/ns/web/sa/api`);
/// - a DNS identity (Linkerd): exact, or `*.suffix` for any identity under `suffix`.
///
/// A pattern no peer could ever match is refused when the policy loads: an exact DNS
/// name that is not a Linkerd identity
/// (`<sa>.<ns>.serviceaccount.identity.<control-plane-ns>.<trust-domain>`), an
/// Istio-style principal without its scheme (`td/ns/x/sa/y`: write
/// `spiffe://td/ns/x/sa/y`), or a SPIFFE ID that breaks the SPIFFE-ID rules.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct IdentityPattern {
    text: Box<str>,
    kind: IdKind,
}

#[derive(Clone, PartialEq, Eq, Hash)]
pub(crate) enum IdKind {
    Any,
    Exact,
    /// SPIFFE pattern: trust domain, segments (`None` = `*`), open-ended last `*`.
    Spiffe {
        trust_domain: Box<str>,
        segments: Vec<Option<Box<str>>>,
        open: bool,
    },
    DnsSuffix(Box<str>),
    /// `*/a/b`: a SPIFFE ID (of any trust domain) whose URI ends with `/a/b` (Istio's
    /// suffix principal).
    SpiffeSuffix(Box<str>),
}

impl IdentityPattern {
    /// What kind of pattern this is (for the index).
    pub(crate) fn kind(&self) -> &IdKind {
        &self.kind
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// For `spiffe://td/a/b/*` (only a trailing `*`): the prefix `spiffe://td/a/b/`.
    pub(crate) fn trailing_prefix(&self) -> Option<&str> {
        match &self.kind {
            IdKind::Spiffe { segments, open, .. }
                if *open && segments[..segments.len() - 1].iter().all(Option::is_some) =>
            {
                Some(&self.text[..self.text.len() - 1])
            }
            _ => None,
        }
    }

    /// Whether `id` matches.
    pub fn matches(&self, id: &Identity) -> bool {
        match &self.kind {
            IdKind::Any => true,
            IdKind::Exact => id.as_str() == &*self.text,
            IdKind::SpiffeSuffix(suffix) => {
                id.spiffe_id().is_some() && id.as_str().ends_with(&**suffix)
            }
            IdKind::DnsSuffix(suffix) => match id {
                Identity::Linkerd(l) => {
                    let s = l.as_str();
                    s.len() > suffix.len() + 1
                        && s.ends_with(&**suffix)
                        && s.as_bytes()[s.len() - suffix.len() - 1] == b'.'
                }
                _ => false,
            },
            IdKind::Spiffe {
                trust_domain,
                segments,
                open,
            } => {
                let Some(sid) = id.spiffe_id() else {
                    return false;
                };
                if sid.trust_domain().as_str() != &**trust_domain {
                    return false;
                }
                let mut got = sid.segments();
                let Some((last, inner)) = segments.split_last() else {
                    return false;
                };
                for want in inner {
                    match (got.next(), want) {
                        (Some(g), Some(w)) if g == &**w => {}
                        (Some(_), None) => {}
                        _ => return false,
                    }
                }
                match last {
                    // A trailing `*`: one or more further segments.
                    None => *open && got.next().is_some(),
                    Some(w) => got.next() == Some(&**w) && got.next().is_none(),
                }
            }
        }
    }
}

impl FromStr for IdentityPattern {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let kind = if s == "*" {
            IdKind::Any
        } else if let Some(path) = s.strip_prefix('*').filter(|r| r.starts_with('/')) {
            // `*/ns/web/sa/api`: whole path segments, as a SPIFFE ID path has them.
            SpiffeId::parse(&format!("spiffe://x{path}")).map_err(|_| {
                format!("`{s}`: a `*/…` pattern is `*` followed by whole SPIFFE path segments (`*/ns/web/sa/api`)")
            })?;
            IdKind::SpiffeSuffix(path.into())
        } else if let Some(rest) = s.strip_prefix("spiffe://") {
            if !s.contains('*') {
                let id = SpiffeId::parse(s).map_err(|e| format!("`{s}`: {e}"))?;
                if id.is_trust_domain_id() {
                    return Err(format!(
                        "`{s}` names a trust domain, not a workload: use `trust_domains` or `{s}/*`"
                    ));
                }
                IdKind::Exact
            } else {
                let (td, path) = rest.split_once('/').unwrap_or((rest, ""));
                let placeholder: Vec<&str> = path
                    .split('/')
                    .map(|seg| if seg == "*" { "x" } else { seg })
                    .collect();
                if placeholder.iter().any(|seg| seg.contains('*')) || path.is_empty() {
                    return Err(format!(
                        "`{s}`: `*` must be a whole path segment of a spiffe id pattern"
                    ));
                }
                SpiffeId::parse(&format!("spiffe://{td}/{}", placeholder.join("/")))
                    .map_err(|e| format!("`{s}`: {e}"))?;
                let segments: Vec<Option<Box<str>>> = path
                    .split('/')
                    .map(|seg| (seg != "*").then(|| seg.into()))
                    .collect();
                IdKind::Spiffe {
                    trust_domain: td.into(),
                    open: segments.last().is_some_and(Option::is_none),
                    segments,
                }
            }
        } else {
            let (name, suffix) = match s.strip_prefix("*.") {
                Some(rest) => (rest, true),
                None => (s, false),
            };
            let valid = !name.is_empty()
                && name.len() <= 253
                && name.split('.').all(|label| {
                    !label.is_empty()
                        && label.len() <= 63
                        && label
                            .bytes()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                });
            if s.contains('/') && !s.contains("://") {
                // Istio writes principals `td/ns/x/sa/y`; here SPIFFE IDs are whole.
                return Err(format!(
                    "`{s}` is not an identity: SPIFFE IDs are written in full, `spiffe://{s}`"
                ));
            }
            if !valid {
                return Err(format!(
                    "`{s}`: not `*`, a spiffe id pattern, or a lowercase dns identity (`*.suffix` allowed)"
                ));
            }
            if suffix {
                IdKind::DnsSuffix(name.into())
            } else if let Err(e) = LinkerdId::parse(s) {
                // The only DNS identities a peer can prove are Linkerd's.
                return Err(format!("{e}, so this identity never matches a peer"));
            } else {
                IdKind::Exact
            }
        };
        Ok(Self {
            text: s.into(),
            kind,
        })
    }
}

/// A request path pattern: exact, `prefix*`, `*suffix`, `*`, or a template (Istio's
/// path templates, Envoy's URI templates) of whole segments:
///
/// - `{*}`: exactly one non-empty segment;
/// - `{**}`: one or more segments, any of them empty (Envoy's `[…/]*`: zero or more
///   characters, `/` included). It must be the last operator: literal segments may
///   follow it, `{*}` and `{**}` may not. So `/store/{**}/cart` matches `/store//cart`
///   and `/store/a/b/cart` but not `/store/cart`, and `/admin/{**}` matches `/admin/`
///   but not `/admin`.
///
/// ```
/// use meshless::policy::PathPattern;
/// let p: PathPattern = "/foo/{*}/bar/{**}".parse()?;
/// assert!(p.matches("/foo/buzz/bar/") && p.matches("/foo/buzz/bar/a/b.txt"));
/// assert!(!p.matches("/foo/buzz/bar") && !p.matches("/foo//bar/x"));
/// let p: PathPattern = "/store/{**}/cart".parse()?;
/// assert!(p.matches("/store/a/b/cart") && !p.matches("/store/cart"));
/// assert!("/{**}/a/{*}".parse::<PathPattern>().is_err());
/// # Ok::<(), String>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PathPattern {
    text: Box<str>,
    kind: PathKind,
}

#[derive(Clone, PartialEq, Eq, Hash)]
pub(crate) enum PathKind {
    Glob(StringMatch),
    Template(Vec<Tseg>),
}

#[derive(Clone, PartialEq, Eq, Hash)]
pub(crate) enum Tseg {
    Lit(Box<str>),
    One,
    /// `{**}`: only literal segments follow it.
    Rest,
}

impl Tseg {
    /// Segment kinds as [`template_matches`] reads them (and `flat` encodes them).
    pub(crate) const LIT: u8 = 0;
    pub(crate) const ONE: u8 = 1;
    pub(crate) const REST: u8 = 2;
}

/// Whether `path` matches the template of `segs` (kind, literal bytes), the segments
/// of a [`PathKind::Template`]. Shared by [`PathPattern::matches`] and the packed
/// records of `flat`, so both read a template the same way.
///
/// As Envoy's URI template regex: `/` then the segments joined by `/`, where `{*}` is
/// one or more characters other than `/` and `{**}` is zero or more characters, `/`
/// included. Since only literals follow `{**}`, it matches when the rest of the path
/// ends with `/` and those literals, joined by `/`.
pub(crate) fn template_matches<'s>(
    mut segs: impl Iterator<Item = (u8, &'s [u8])> + Clone,
    path: &[u8],
) -> bool {
    // `None` once the path is used up (`/a` has one segment, `/a/` two).
    let mut left = path.strip_prefix(b"/");
    if left.is_none() {
        return false;
    }
    while let Some((kind, lit)) = segs.next() {
        let Some(r) = left else {
            return false;
        };
        if kind == Tseg::REST {
            // `{**}` takes at least one (possibly empty) segment, then `/lit` each.
            let tail: usize = segs.clone().map(|(_, l)| l.len() + 1).sum();
            let Some(mut at) = r.len().checked_sub(tail) else {
                return false;
            };
            for (_, l) in segs {
                if r[at] != b'/' || r[at + 1..at + 1 + l.len()] != *l {
                    return false;
                }
                at += 1 + l.len();
            }
            return true;
        }
        let (seg, next) = match r.iter().position(|&b| b == b'/') {
            Some(i) => (&r[..i], Some(&r[i + 1..])),
            None => (r, None),
        };
        let ok = match kind {
            Tseg::ONE => !seg.is_empty(),
            _ => seg == lit,
        };
        if !ok {
            return false;
        }
        left = next;
    }
    left.is_none()
}

impl PathPattern {
    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub(crate) fn kind(&self) -> &PathKind {
        &self.kind
    }

    /// Whether the (normalized) `path` matches.
    pub fn matches(&self, path: &str) -> bool {
        match &self.kind {
            PathKind::Glob(m) => m.matches(path),
            PathKind::Template(segs) => template_matches(
                segs.iter().map(|s| match s {
                    Tseg::Lit(l) => (Tseg::LIT, l.as_bytes()),
                    Tseg::One => (Tseg::ONE, &[][..]),
                    Tseg::Rest => (Tseg::REST, &[][..]),
                }),
                path.as_bytes(),
            ),
        }
    }
}

impl FromStr for PathPattern {
    type Err = String;

    /// Parses a pattern written as requests are matched: in normal form (no dot or
    /// empty segments) and decoded (`/café`, `/@admin`). Escapes in the pattern are
    /// decoded (`/caf%C3%A9` matches what `/café` matches); a pattern no normalized
    /// request could match is an error.
    fn from_str(s: &str) -> Result<Self, String> {
        let not_normal = |e: super::error::PathError| match e {
            super::error::PathError::NotNormalized { normal, .. } => {
                format!("`{s}` is not normalized (requests are matched as `{normal}`)")
            }
            e => format!("`{s}`: {e}"),
        };
        let kind = if s.contains('{') || s.contains('}') {
            let Some(rest) = s.strip_prefix('/') else {
                return Err(format!("`{s}`: a path template must start with `/`"));
            };
            let raw: Vec<&str> = rest.split('/').collect();
            let mut segs = Vec::with_capacity(raw.len());
            for seg in &raw {
                segs.push(match *seg {
                    // Istio: "If a path contains `{**}`, it must be the last operator";
                    // literal segments may follow it.
                    "{*}" | "{**}" if segs.contains(&Tseg::Rest) => {
                        return Err(format!(
                            "`{s}`: `{{**}}` must be the last operator: only literal segments may follow it"
                        ));
                    }
                    "{**}" => Tseg::Rest,
                    "{*}" => Tseg::One,
                    lit if lit.contains(['{', '}', '*']) => {
                        return Err(format!(
                            "`{s}`: templates must be whole segments `{{*}}` or `{{**}}`, without `*` globs"
                        ));
                    }
                    lit => Tseg::Lit(lit.into()),
                });
            }
            // The template in normal form: the same checks as a request path, with
            // `x` standing for each placeholder.
            let sample: String = segs
                .iter()
                .map(|seg| match seg {
                    Tseg::Lit(l) => format!("/{l}"),
                    Tseg::One | Tseg::Rest => "/x".to_owned(),
                })
                .collect();
            let decoded = super::normalize::normalize_path(&sample).map_err(not_normal)?;
            if decoded != sample {
                for (seg, text) in segs.iter_mut().zip(decoded[1..].split('/')) {
                    if let Tseg::Lit(l) = seg {
                        *l = text.into();
                    }
                }
            }
            PathKind::Template(segs)
        } else {
            let m = StringMatch::parse(s).map_err(|e| format!("path {e}"))?;
            let m = match m {
                StringMatch::Exact(t) | StringMatch::Prefix(t) => {
                    if !t.starts_with('/') {
                        return Err(format!("`{s}`: a path must start with `/`"));
                    }
                    // A prefix may end inside a segment (`/admin*`) or after its slash
                    // (`/api/*`); either way it is a path in normal form.
                    if s.ends_with('*') {
                        let sample = format!("{t}x");
                        let normal =
                            super::normalize::normalize_path(&sample).map_err(not_normal)?;
                        StringMatch::Prefix(normal[..normal.len() - 1].into())
                    } else {
                        let normal = super::normalize::normalize_path(&t).map_err(not_normal)?;
                        StringMatch::Exact(normal.into())
                    }
                }
                StringMatch::Suffix(t) => StringMatch::Suffix(
                    super::normalize::decode_escapes(&t)
                        .map_err(not_normal)?
                        .into(),
                ),
                StringMatch::Any => StringMatch::Any,
            };
            PathKind::Glob(m)
        };
        Ok(Self {
            text: s.into(),
            kind,
        })
    }
}

macro_rules! text_pattern {
    ($($ty:ty),*) => {$(
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.text)
            }
        }
        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "`{}`", self.text)
            }
        }
        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.text)
            }
        }
    )*};
}
text_pattern!(IdentityPattern, PathPattern);
