//! The claim and header rules a token must pass once its signature verified (and the
//! `alg` rule, before any key is tried).

use jsonwebtoken::Algorithm;
use serde_json::{Map, Value};

use super::{JwtIssuer, TokenError};

pub(super) fn parse_alg(alg: Option<&str>) -> Result<Algorithm, TokenError> {
    let alg = alg.ok_or(TokenError::Malformed("header has no `alg`"))?;
    if alg.eq_ignore_ascii_case("none") {
        return Err(TokenError::AlgNone);
    }
    match alg.parse::<Algorithm>() {
        Ok(Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512) => {
            Err(TokenError::Hmac(alg.to_owned()))
        }
        Ok(a) => Ok(a),
        Err(_) => Err(TokenError::UnsupportedAlg(alg.to_owned())),
    }
}

pub(super) fn claim_error(payload: &Map<String, Value>, name: &'static str) -> TokenError {
    if payload.contains_key(name) {
        TokenError::InvalidClaim(name)
    } else {
        TokenError::MissingClaim(name)
    }
}

/// A NumericDate claim (RFC 7519 §2: seconds, possibly fractional).
fn numeric(payload: &Map<String, Value>, name: &'static str) -> Result<Option<f64>, TokenError> {
    match payload.get(name) {
        None => Ok(None),
        Some(v) => v.as_f64().map(Some).ok_or(TokenError::InvalidClaim(name)),
    }
}

/// `exp` is required: the token is valid while `now < exp + skew` (RFC 7519 §4.1.4);
/// `nbf`, when present, requires `now + skew >= nbf` (§4.1.5).
pub(super) fn check_times(
    payload: &Map<String, Value>,
    now: i64,
    skew: u64,
) -> Result<(), TokenError> {
    let (nowf, skewf) = (now as f64, skew as f64);
    let exp = numeric(payload, "exp")?.ok_or(TokenError::MissingClaim("exp"))?;
    if nowf >= exp + skewf {
        return Err(TokenError::Expired {
            exp: exp as i64,
            now,
        });
    }
    if let Some(nbf) = numeric(payload, "nbf")?
        && nbf > nowf + skewf
    {
        return Err(TokenError::NotYetValid {
            nbf: nbf as i64,
            now,
        });
    }
    Ok(())
}

/// `aud` must name a configured audience, unless the issuer accepts any (never a
/// JWT-SVID issuer: see [`JwtIssuer::accepts_any_audience`]).
pub(super) fn check_audience(
    payload: &Map<String, Value>,
    rule: &JwtIssuer,
) -> Result<(), TokenError> {
    let any_audience = rule.accepts_any_audience();
    let auds: Vec<&str> = match payload.get("aud") {
        None if any_audience => return Ok(()),
        None => return Err(TokenError::MissingClaim("aud")),
        Some(Value::String(a)) => vec![a.as_str()],
        Some(Value::Array(items)) => items
            .iter()
            .map(Value::as_str)
            .collect::<Option<_>>()
            .ok_or(TokenError::InvalidClaim("aud"))?,
        Some(_) => return Err(TokenError::InvalidClaim("aud")),
    };
    if any_audience
        || auds
            .iter()
            .any(|a| rule.audiences.iter().any(|b| **b == **a))
    {
        return Ok(());
    }
    Err(TokenError::WrongAudience(auds.join(",")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwt::JwksSource;

    fn payload(json: &str) -> Map<String, Value> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn any_audience_is_never_honoured_for_jwt_svids() {
        // `JwtVerifier::new` refuses this configuration; the check holds without it.
        let keys = JwksSource::from_spiffe_bundle(r#"{"keys":[]}"#).unwrap();
        let svid = JwtIssuer::jwt_svid("example.org".parse().unwrap(), keys)
            .audience("a")
            .allow_any_audience();
        assert_eq!(
            check_audience(&payload("{}"), &svid),
            Err(TokenError::MissingClaim("aud"))
        );
        assert_eq!(
            check_audience(&payload(r#"{"aud":"b"}"#), &svid),
            Err(TokenError::WrongAudience("b".into()))
        );
        assert_eq!(
            check_audience(&payload(r#"{"aud":["b","a"]}"#), &svid),
            Ok(())
        );
        // An OIDC issuer may accept any audience.
        let keys = JwksSource::from_jwks(r#"{"keys":[]}"#).unwrap();
        let oidc = JwtIssuer::new("https://idp.test", keys)
            .unwrap()
            .allow_any_audience();
        assert_eq!(check_audience(&payload("{}"), &oidc), Ok(()));
        assert_eq!(check_audience(&payload(r#"{"aud":"b"}"#), &oidc), Ok(()));
    }
}
