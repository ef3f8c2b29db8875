//! JWKS documents and SPIFFE bundles parsed into the keys that verify JWTs.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::{Map, Value};

use super::JwksError;

/// The smallest RSA modulus accepted, in bytes (2048 bits, NIST SP 800-131A).
const MIN_RSA_BYTES: usize = 256;
/// The largest RSA modulus accepted, in bytes (8192 bits).
const MAX_RSA_BYTES: usize = 1024;

/// A set of public keys that verify JWT signatures, parsed from a JWKS document
/// (RFC 7517) or from the `jwt-svid` keys of a SPIFFE bundle.
///
/// Only asymmetric keys are kept: RSA (2048 to 8192 bits), EC P-256 and P-384, and
/// Ed25519. Symmetric (`oct`) keys, encryption keys (`use: "enc"`), and key types or
/// curves that cannot verify a JWS are skipped; a key of a supported type that is
/// malformed makes the whole document invalid. Lookups by `kid` do not allocate.
///
/// ```
/// use meshless::jwt::Jwks;
/// let jwks = Jwks::from_json(r#"{"keys": [
///   {"kty": "OKP", "crv": "Ed25519", "kid": "k1",
///    "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
///   {"kty": "oct", "k": "c2VjcmV0"}
/// ]}"#)?;
/// assert_eq!(jwks.len(), 1); // the shared secret is never trusted
/// assert_eq!(jwks.find("k1").len(), 1);
/// # Ok::<(), meshless::jwt::JwksError>(())
/// ```
#[derive(Clone, Default)]
pub struct Jwks {
    /// Sorted by `kid` (keys without one first), so lookups are a binary search.
    keys: Vec<JwtKey>,
    sequence: Option<u64>,
}

/// One verification key of a [`Jwks`].
#[derive(Clone)]
pub struct JwtKey {
    kid: Option<Box<str>>,
    kind: KeyKind,
    alg: Option<Algorithm>,
    key: DecodingKey,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyKind {
    Rsa,
    P256,
    P384,
    Ed25519,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Jwks,
    SpiffeBundle,
}

impl Jwks {
    /// Parses a JWKS document. Keys with `use` absent, `sig` or `jwt-svid` are kept.
    ///
    /// # Errors
    /// [`JwksError`] when the document is not a JWKS, a supported key is malformed, or
    /// keys are listed but none of them can verify JWTs.
    pub fn from_json(json: &str) -> Result<Self, JwksError> {
        parse(json, Format::Jwks)
    }

    /// Parses a SPIFFE trust bundle (a JWKS document) and keeps its `jwt-svid` keys,
    /// each of which must have a `kid`. `x509-svid` keys are ignored; a bundle without
    /// `jwt-svid` keys is valid and verifies no JWT-SVID.
    ///
    /// # Errors
    /// [`JwksError`] as for [`Jwks::from_json`], and when a `jwt-svid` key has no `kid`.
    pub fn from_spiffe_bundle(json: &str) -> Result<Self, JwksError> {
        parse(json, Format::SpiffeBundle)
    }

    /// The keys whose `kid` is `kid`, usually zero or one. Does not allocate.
    pub fn find(&self, kid: &str) -> &[JwtKey] {
        let start = self.keys.partition_point(|k| k.kid.as_deref() < Some(kid));
        let len = self.keys[start..].partition_point(|k| k.kid.as_deref() == Some(kid));
        &self.keys[start..start + len]
    }

    /// The keys without a `kid` (sorted first).
    pub(crate) fn kidless(&self) -> &[JwtKey] {
        let n = self.keys.partition_point(|k| k.kid.is_none());
        &self.keys[..n]
    }

    /// Every key.
    pub fn keys(&self) -> &[JwtKey] {
        &self.keys
    }

    /// The number of usable keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True when no key can verify anything (every token will be rejected).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The bundle's `spiffe_sequence`, when present.
    pub fn spiffe_sequence(&self) -> Option<u64> {
        self.sequence
    }
}

impl fmt::Debug for Jwks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(&self.keys).finish()
    }
}

impl JwtKey {
    /// The key's `kid`, if it has one.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The key type: `RSA`, `EC P-256`, `EC P-384` or `Ed25519`.
    pub fn key_type(&self) -> &'static str {
        match self.kind {
            KeyKind::Rsa => "RSA",
            KeyKind::P256 => "EC P-256",
            KeyKind::P384 => "EC P-384",
            KeyKind::Ed25519 => "Ed25519",
        }
    }

    /// True when this key may verify a signature made with `alg`: the algorithm fits
    /// the key type (and curve), and the key's own `alg`, when declared, is `alg`.
    pub(crate) fn accepts(&self, alg: Algorithm) -> bool {
        self.alg.is_none_or(|own| own == alg) && fits(self.kind, alg)
    }

    pub(crate) fn decoding_key(&self) -> &DecodingKey {
        &self.key
    }
}

impl fmt::Debug for JwtKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtKey")
            .field("kid", &self.kid)
            .field("type", &self.key_type())
            .field("alg", &self.alg)
            .finish()
    }
}

fn fits(kind: KeyKind, alg: Algorithm) -> bool {
    use Algorithm::*;
    match kind {
        KeyKind::Rsa => matches!(alg, RS256 | RS384 | RS512 | PS256 | PS384 | PS512),
        KeyKind::P256 => alg == ES256,
        KeyKind::P384 => alg == ES384,
        KeyKind::Ed25519 => alg == EdDSA,
    }
}

fn parse(json: &str, format: Format) -> Result<Jwks, JwksError> {
    let doc: Map<String, Value> =
        serde_json::from_str(json).map_err(|e| JwksError::Json(e.to_string()))?;
    let Some(Value::Array(raw_keys)) = doc.get("keys") else {
        return Err(JwksError::Json("`keys` must be an array".into()));
    };
    let sequence = match doc.get("spiffe_sequence") {
        None => None,
        Some(v) => Some(v.as_u64().ok_or_else(|| {
            JwksError::Json("`spiffe_sequence` must be a non-negative integer".into())
        })?),
    };
    let mut keys = Vec::with_capacity(raw_keys.len());
    let mut candidates = 0;
    for (index, raw) in raw_keys.iter().enumerate() {
        let Value::Object(raw) = raw else {
            return Err(JwksError::Json(format!("key #{index} is not an object")));
        };
        let field = |name: &str| str_field(raw, index, name);
        let usage = field("use")?;
        let wanted = match format {
            Format::Jwks => matches!(usage, None | Some("sig" | "jwt-svid")),
            Format::SpiffeBundle => usage == Some("jwt-svid"),
        };
        if !wanted {
            continue;
        }
        let kid = field("kid")?;
        if format == Format::SpiffeBundle && kid.is_none() {
            return Err(JwksError::MissingKid(index));
        }
        candidates += 1;
        let name = kid.map_or_else(|| format!("#{index}"), str::to_owned);
        let bad = |reason: &str| JwksError::Key {
            kid: name.clone(),
            reason: reason.to_owned(),
        };
        let alg = match field("alg")? {
            None => None,
            Some(a) => match a.parse::<Algorithm>() {
                Ok(Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512) | Err(_) => continue,
                Ok(a) => Some(a),
            },
        };
        let Some((kind, key)) = decode_key(raw, index, &bad)? else {
            continue;
        };
        if let Some(alg) = alg
            && !fits(kind, alg)
        {
            return Err(bad(&format!("`alg` {alg:?} does not fit the key type")));
        }
        keys.push(JwtKey {
            kid: kid.map(Into::into),
            kind,
            alg,
            key,
        });
    }
    if keys.is_empty() && candidates > 0 {
        return Err(JwksError::NoUsableKeys(candidates));
    }
    keys.sort_by(|a, b| a.kid.cmp(&b.kid));
    Ok(Jwks { keys, sequence })
}

fn str_field<'a>(
    raw: &'a Map<String, Value>,
    index: usize,
    name: &str,
) -> Result<Option<&'a str>, JwksError> {
    match raw.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(JwksError::Json(format!(
            "key #{index}: `{name}` must be a string"
        ))),
    }
}

/// The key, or `None` for a key type this crate does not verify with.
fn decode_key(
    raw: &Map<String, Value>,
    index: usize,
    bad: &dyn Fn(&str) -> JwksError,
) -> Result<Option<(KeyKind, DecodingKey)>, JwksError> {
    let field = |name: &str| str_field(raw, index, name);
    let kty = field("kty")?;
    let b64 = |name: &str| -> Result<Vec<u8>, JwksError> {
        let text = field(name)?.ok_or_else(|| bad(&format!("`{name}` is missing")))?;
        URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|_| bad(&format!("`{name}` is not base64url")))
    };
    match kty {
        Some("RSA") => {
            let n = b64("n")?;
            let e = b64("e")?;
            let significant = n.iter().skip_while(|b| **b == 0).count();
            if !(MIN_RSA_BYTES..=MAX_RSA_BYTES).contains(&significant) {
                return Err(bad(&format!(
                    "RSA modulus of {} bits, 2048 to 8192 are accepted",
                    significant * 8
                )));
            }
            if e.is_empty() || e.len() > 8 {
                return Err(bad("RSA exponent is empty or too long"));
            }
            Ok(Some((
                KeyKind::Rsa,
                DecodingKey::from_rsa_raw_components(&n, &e),
            )))
        }
        Some("EC") => {
            let (kind, len) = match field("crv")? {
                Some("P-256") => (KeyKind::P256, 32),
                Some("P-384") => (KeyKind::P384, 48),
                _ => return Ok(None),
            };
            let (x, y) = (b64("x")?, b64("y")?);
            if x.len() != len || y.len() != len {
                return Err(bad("EC coordinates have the wrong length"));
            }
            let mut point = Vec::with_capacity(1 + 2 * len);
            point.push(0x04);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            Ok(Some((kind, DecodingKey::from_ec_der(&point))))
        }
        Some("OKP") => {
            if field("crv")? != Some("Ed25519") {
                return Ok(None);
            }
            let x = b64("x")?;
            if x.len() != 32 {
                return Err(bad("Ed25519 key is not 32 bytes"));
            }
            Ok(Some((KeyKind::Ed25519, DecodingKey::from_ed_der(&x))))
        }
        Some(_) => Ok(None),
        None => Err(bad("`kty` is missing")),
    }
}
