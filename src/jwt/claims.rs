//! [`Claims`]: the verified JSON claims of a JWT, looked up by path the way Istio's
//! `request.auth.claims[a][b]` condition keys do.

use std::fmt;
use std::sync::Arc;

use serde_json::{Map, Value};

/// The payload of a verified JWT, as the JWT layer puts it into request extensions.
///
/// Lookups follow Istio's `request.auth.claims[...]` semantics: a path names nested
/// object members (`["realm_access", "roles"]`), a claim whose value is a string yields
/// that string, and a claim whose value is a list yields each string element, so that a
/// condition matches a list-valued claim if any element matches. Values of other types
/// (numbers, booleans, objects) yield nothing: Istio only matches string and
/// list-of-string claims, and guessing a textual form would be an accidental allow.
///
/// Some issuers write a list as one space-separated string (OAuth's `scope: "read
/// write"`). Claims marked [`space_delimited`](Self::space_delimited) (the JWT layer
/// marks those its issuer lists, as Istio's `spaceDelimitedClaims` and its default
/// `scope` and `permission`) are read by authorization policies as their words;
/// [`strings`](Self::strings) still yields them as sent.
///
/// Cloning is cheap (the claims are shared).
///
/// ```
/// use meshless::Claims;
/// let claims = Claims::from_json(r#"{
///     "iss": "https://idp.example.com", "sub": "u1", "aud": ["api", "web"],
///     "groups": ["admins", "dev"], "realm": {"roles": "auditor"}, "level": 3
/// }"#)?;
/// assert!(claims.contains(&["groups"], "admins"));
/// assert_eq!(claims.strings(&["realm", "roles"]).collect::<Vec<_>>(), ["auditor"]);
/// assert!(claims.audiences().any(|a| a == "web"));
/// assert!(claims.has(&["level"]) && claims.strings(&["level"]).next().is_none());
/// # Ok::<(), meshless::ClaimsError>(())
/// ```
#[derive(Clone, PartialEq)]
pub struct Claims {
    map: Arc<Map<String, Value>>,
    /// Top-level claims that policies read as space-separated words.
    space_delimited: Arc<[Box<str>]>,
}

/// Why a claims document was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClaimsError {
    /// The text is not JSON.
    #[error("claims are not valid JSON: {0}")]
    Json(String),
    /// The JSON is not an object.
    #[error("claims must be a JSON object, found `{0}`")]
    NotObject(&'static str),
}

impl Claims {
    /// Parses a claims document (a JSON object), for tests and for callers that verify
    /// tokens by other means.
    ///
    /// # Errors
    /// [`ClaimsError`] when the text is not a JSON object.
    pub fn from_json(json: &str) -> Result<Self, ClaimsError> {
        match serde_json::from_str::<Value>(json).map_err(|e| ClaimsError::Json(e.to_string()))? {
            Value::Object(map) => Ok(Self::from_map(map)),
            other => Err(ClaimsError::NotObject(type_name(&other))),
        }
    }

    pub(crate) fn from_map(map: Map<String, Value>) -> Self {
        Self {
            map: Arc::new(map),
            space_delimited: Arc::new([]),
        }
    }

    /// Marks top-level claims whose string value authorization policies read as its
    /// space-separated words, as Envoy normalizes the claims of Istio's
    /// `spaceDelimitedClaims` (and `scope` and `permission`, which Istio always
    /// lists): `scope: "read  write"` is then `read` and `write` for a `when`
    /// condition, and no longer `read  write`. Only a string value is split, on
    /// spaces, skipping empty words (a value of spaces only stays as it is).
    ///
    /// The JWT layer marks the claims its issuer lists
    /// (`JwtIssuer::space_delimited_claims`); call this for claims verified by other
    /// means. Replaces any earlier marks.
    ///
    /// ```
    /// use meshless::Claims;
    /// let claims = Claims::from_json(r#"{"scope": "read write"}"#)?.space_delimited(["scope"]);
    /// assert!(claims.is_space_delimited("scope"));
    /// assert_eq!(claims.strings(&["scope"]).collect::<Vec<_>>(), ["read write"]);
    /// # Ok::<(), meshless::ClaimsError>(())
    /// ```
    #[must_use]
    pub fn space_delimited<S: AsRef<str>>(self, names: impl IntoIterator<Item = S>) -> Self {
        self.with_space_delimited(names.into_iter().map(|n| n.as_ref().into()).collect())
    }

    /// [`space_delimited`](Self::space_delimited) with an issuer's shared list.
    pub(crate) fn with_space_delimited(mut self, names: Arc<[Box<str>]>) -> Self {
        self.space_delimited = names;
        self
    }

    /// Whether the top-level claim `name` is marked
    /// [`space_delimited`](Self::space_delimited).
    pub fn is_space_delimited(&self, name: &str) -> bool {
        self.space_delimited.iter().any(|n| **n == *name)
    }

    /// The value at `path`, if every member along it exists.
    fn lookup(&self, path: &[&str]) -> Option<&Value> {
        let (first, rest) = path.split_first()?;
        let mut value = self.map.get(*first)?;
        for key in rest {
            value = value.as_object()?.get(*key)?;
        }
        Some(value)
    }

    /// The strings a policy condition reads at `path` (boxed segments, a policy's
    /// compiled claim path): [`strings`](Self::strings), except that a top-level
    /// claim's string value is split into its words when the condition asks for it
    /// (`split`) or the claim is marked [`space_delimited`](Self::space_delimited).
    pub(crate) fn strings_in<'a>(&'a self, path: &[Box<str>], split: bool) -> ClaimStrings<'a> {
        let value = path.split_first().and_then(|(first, rest)| {
            let mut value = self.map.get(&**first)?;
            for key in rest {
                value = value.as_object()?.get(&**key)?;
            }
            Some(value)
        });
        let mut strings = ClaimStrings::of(value);
        if let ([name], Some(Value::String(s))) = (path, value)
            && (split || self.is_space_delimited(name))
            && s.split(' ').any(|w| !w.is_empty())
        {
            // Envoy: `StrSplit(value, ' ', SkipEmpty())` replaces the string.
            strings.single = None;
            strings.words = Some(s.split(' '));
        }
        strings
    }

    pub(crate) fn get_str(&self, name: &str) -> Option<&str> {
        self.map.get(name).and_then(Value::as_str)
    }

    /// True when a claim exists at `path`, whatever its value (Istio's presence match).
    pub fn has(&self, path: &[&str]) -> bool {
        self.lookup(path).is_some()
    }

    /// The string values of the claim at `path`: the string itself, or each string
    /// element of a list. Empty when the claim is absent or of another type.
    pub fn strings<'a>(&'a self, path: &[&str]) -> ClaimStrings<'a> {
        ClaimStrings::of(self.lookup(path))
    }

    /// True when the claim at `path` is `value`, or is a list containing `value`.
    pub fn contains(&self, path: &[&str], value: &str) -> bool {
        self.strings(path).any(|s| s == value)
    }

    /// The issuer (`iss`).
    pub fn issuer(&self) -> Option<&str> {
        self.get_str("iss")
    }

    /// The subject (`sub`).
    pub fn subject(&self) -> Option<&str> {
        self.get_str("sub")
    }

    /// The audiences (`aud`, a string or a list of strings), Istio's
    /// `request.auth.audiences`.
    pub fn audiences(&self) -> ClaimStrings<'_> {
        self.strings(&["aud"])
    }

    /// The authorized presenter (`azp`), Istio's `request.auth.presenter`.
    pub fn presenter(&self) -> Option<&str> {
        self.get_str("azp")
    }

    /// The claims as compact JSON text.
    pub fn to_json(&self) -> String {
        Value::Object((*self.map).clone()).to_string()
    }
}

impl fmt::Debug for Claims {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Claims may hold personal data; show only their names.
        f.debug_set().entries(self.map.keys()).finish()
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Iterator over the string values of one claim; see [`Claims::strings`]. It does not
/// allocate.
#[derive(Debug, Clone)]
pub struct ClaimStrings<'a> {
    single: Option<&'a str>,
    list: std::slice::Iter<'a, Value>,
    /// The words of a space-delimited string (empty words skipped).
    words: Option<std::str::Split<'a, char>>,
}

impl<'a> ClaimStrings<'a> {
    fn of(value: Option<&'a Value>) -> Self {
        match value {
            Some(Value::String(s)) => Self {
                single: Some(s),
                list: [].iter(),
                words: None,
            },
            Some(Value::Array(items)) => Self {
                single: None,
                list: items.iter(),
                words: None,
            },
            _ => Self {
                single: None,
                list: [].iter(),
                words: None,
            },
        }
    }
}

impl<'a> Iterator for ClaimStrings<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        if let Some(s) = self.single.take() {
            return Some(s);
        }
        if let Some(words) = &mut self.words {
            return words.find(|w| !w.is_empty());
        }
        self.list.by_ref().find_map(Value::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> Claims {
        Claims::from_json(
            r#"{"iss":"i","sub":"s","aud":"api","azp":"cli",
                "groups":["a",1,"b",null,["c"]],
                "realm":{"roles":["r1","r2"],"deep":{"x":"y"}},
                "https://example.com/tenant":"t1","flag":true}"#,
        )
        .unwrap()
    }

    #[test]
    fn list_claims_yield_only_their_string_elements() {
        let c = claims();
        assert_eq!(c.strings(&["groups"]).collect::<Vec<_>>(), ["a", "b"]);
        assert!(c.contains(&["groups"], "b"));
        assert!(
            !c.contains(&["groups"], "c"),
            "nested lists are not flattened"
        );
        assert!(
            !c.contains(&["groups"], "1"),
            "numbers are not matched as text"
        );
    }

    #[test]
    fn nested_paths_walk_objects_only() {
        let c = claims();
        assert!(c.contains(&["realm", "roles"], "r2"));
        assert!(c.contains(&["realm", "deep", "x"], "y"));
        assert!(!c.has(&["groups", "0"]), "arrays are not indexed by path");
        assert!(!c.has(&["realm", "missing"]));
        assert!(!c.has(&[]));
        assert!(c.contains(&["https://example.com/tenant"], "t1"));
    }

    #[test]
    fn standard_claims_and_presence() {
        let c = claims();
        assert_eq!(c.audiences().collect::<Vec<_>>(), ["api"]);
        assert_eq!(c.presenter(), Some("cli"));
        assert_eq!(c.issuer(), Some("i"));
        assert_eq!(c.subject(), Some("s"));
        assert!(c.has(&["flag"]));
        assert_eq!(c.strings(&["flag"]).count(), 0);
    }

    #[test]
    fn space_delimited_claims_are_split_for_policies_only() {
        let c = Claims::from_json(
            r#"{"scope":"read  write","roles":"a b","realm":{"scope":"x y"},"blank":"  ","list":["p q"]}"#,
        )
        .unwrap()
        .space_delimited(["roles", "blank", "list"]);
        let read = |path: &[&str], split| {
            let path: Vec<Box<str>> = path.iter().map(|s| (*s).into()).collect();
            c.strings_in(&path, split).collect::<Vec<_>>()
        };
        assert_eq!(read(&["scope"], false), ["read  write"]);
        assert_eq!(read(&["scope"], true), ["read", "write"]);
        assert_eq!(read(&["roles"], false), ["a", "b"], "marked by the issuer");
        assert_eq!(read(&["realm", "scope"], true), ["x y"], "top-level only");
        assert_eq!(read(&["blank"], false), ["  "], "no words: kept as sent");
        assert_eq!(read(&["list"], false), ["p q"], "lists are not split");
        assert_eq!(c.strings(&["roles"]).collect::<Vec<_>>(), ["a b"]);
    }

    #[test]
    fn refuses_non_objects() {
        assert_eq!(
            Claims::from_json("[1]").unwrap_err(),
            ClaimsError::NotObject("array")
        );
        assert!(matches!(Claims::from_json("{"), Err(ClaimsError::Json(_))));
    }
}
