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
pub struct Claims(Arc<Map<String, Value>>);

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
            Value::Object(map) => Ok(Self(Arc::new(map))),
            other => Err(ClaimsError::NotObject(type_name(&other))),
        }
    }

    #[cfg(feature = "jwt")]
    pub(crate) fn from_map(map: Map<String, Value>) -> Self {
        Self(Arc::new(map))
    }

    /// The value at `path`, if every member along it exists.
    fn lookup(&self, path: &[&str]) -> Option<&Value> {
        let (first, rest) = path.split_first()?;
        let mut value = self.0.get(*first)?;
        for key in rest {
            value = value.as_object()?.get(*key)?;
        }
        Some(value)
    }

    /// [`strings`](Self::strings) for a path held as boxed segments (a policy's
    /// compiled claim path), without building a `&[&str]`.
    pub(crate) fn strings_in<'a>(&'a self, path: &[Box<str>]) -> ClaimStrings<'a> {
        let value = path.split_first().and_then(|(first, rest)| {
            let mut value = self.0.get(&**first)?;
            for key in rest {
                value = value.as_object()?.get(&**key)?;
            }
            Some(value)
        });
        ClaimStrings::of(value)
    }

    pub(crate) fn get_str(&self, name: &str) -> Option<&str> {
        self.0.get(name).and_then(Value::as_str)
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
        Value::Object((*self.0).clone()).to_string()
    }
}

impl fmt::Debug for Claims {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Claims may hold personal data; show only their names.
        f.debug_set().entries(self.0.keys()).finish()
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
}

impl<'a> ClaimStrings<'a> {
    fn of(value: Option<&'a Value>) -> Self {
        match value {
            Some(Value::String(s)) => Self {
                single: Some(s),
                list: [].iter(),
            },
            Some(Value::Array(items)) => Self {
                single: None,
                list: items.iter(),
            },
            _ => Self {
                single: None,
                list: [].iter(),
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
    fn refuses_non_objects() {
        assert_eq!(
            Claims::from_json("[1]").unwrap_err(),
            ClaimsError::NotObject("array")
        );
        assert!(matches!(Claims::from_json("{"), Err(ClaimsError::Json(_))));
    }
}
