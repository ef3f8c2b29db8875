//! [`ClaimPath`]: which JWT claim a `when` condition reads.

use std::fmt;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

/// The path of a JWT claim in a `when` condition.
///
/// A top-level claim is written as a string (`claim: groups`); a nested claim as the
/// list of object members leading to it (`claim: [realm_access, roles]`, Istio's
/// `request.auth.claims[realm_access][roles]`).
///
/// A string containing `.` is refused: `realm.roles` could mean the nested path or a
/// top-level claim of that name, and claim names often contain dots
/// (`https://example.com/roles`). Write a nested path as a list, and a dotted claim
/// name as a one-item list (`claim: ["https://example.com/roles"]`).
///
/// ```
/// use meshless::policy::ClaimPath;
/// let nested: ClaimPath = serde_json::from_str(r#"["realm_access", "roles"]"#)?;
/// assert_eq!(nested.segments().collect::<Vec<_>>(), ["realm_access", "roles"]);
/// assert!(serde_json::from_str::<ClaimPath>(r#""realm_access.roles""#).is_err());
/// let dotted: ClaimPath = serde_json::from_str(r#"["https://example.com/roles"]"#)?;
/// assert_eq!(dotted.segments().count(), 1);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ClaimPath(pub(crate) Box<[Box<str>]>);

impl ClaimPath {
    /// A path from its segments (the members from the top-level claim down).
    ///
    /// # Errors
    ///
    /// An empty path or an empty segment.
    pub fn new<S: AsRef<str>>(segments: impl IntoIterator<Item = S>) -> Result<Self, String> {
        let segs: Vec<Box<str>> = segments.into_iter().map(|s| s.as_ref().into()).collect();
        if segs.is_empty() {
            return Err("a claim path needs at least one claim name".into());
        }
        if segs.iter().any(|s| s.is_empty()) {
            return Err(format!(
                "claim path `{}` has an empty claim name",
                Self(segs.into())
            ));
        }
        Ok(Self(segs.into()))
    }

    /// The segments, from the top-level claim down.
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|s| &**s)
    }

    fn is_plain(&self) -> bool {
        matches!(&*self.0, [one] if !one.contains('.'))
    }
}

impl fmt::Display for ClaimPath {
    /// `groups` for a plain top-level claim, else the list form `[realm, roles]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_plain() {
            return f.write_str(&self.0[0]);
        }
        f.write_str("[")?;
        for (i, s) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(s)?;
        }
        f.write_str("]")
    }
}

impl fmt::Debug for ClaimPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{self}`")
    }
}

impl<'de> Deserialize<'de> for ClaimPath {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ClaimPath;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a claim name, or a list of claim names for a nested claim")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<ClaimPath, E> {
                if s.contains('.') {
                    let parts: Vec<&str> = s.split('.').collect();
                    return Err(E::custom(format!(
                        "claim `{s}`: a claim written as a string cannot contain `.`; write a nested claim as a list (`[{}]`), or a claim whose name has dots as a one-item list (`[\"{s}\"]`)",
                        parts.join(", ")
                    )));
                }
                ClaimPath::new([s]).map_err(E::custom)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ClaimPath, A::Error> {
                let mut segs: Vec<String> = Vec::new();
                while let Some(s) = seq.next_element::<String>()? {
                    segs.push(s);
                }
                ClaimPath::new(segs).map_err(de::Error::custom)
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for ClaimPath {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.is_plain() {
            s.serialize_str(&self.0[0])
        } else {
            s.collect_seq(self.0.iter())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_plain_nested_and_dotted_paths() {
        for json in [r#""groups""#, r#"["realm","roles"]"#, r#"["a.b"]"#] {
            let p: ClaimPath = serde_json::from_str(json).unwrap();
            assert_eq!(serde_json::to_string(&p).unwrap(), json);
        }
    }

    #[test]
    fn rejects_dotted_strings_empty_paths_and_empty_names() {
        let err = serde_json::from_str::<ClaimPath>(r#""realm.roles""#).unwrap_err();
        assert!(err.to_string().contains("[realm, roles]"), "{err}");
        assert!(serde_json::from_str::<ClaimPath>("[]").is_err());
        assert!(serde_json::from_str::<ClaimPath>(r#"["a",""]"#).is_err());
        assert!(serde_json::from_str::<ClaimPath>(r#""""#).is_err());
        assert!(serde_json::from_str::<ClaimPath>("3").is_err());
    }
}
