//! [`JwtVerifier`]: compact JWS in, verified principal and claims (or the reason for
//! rejection) out. Pure apart from reading the clock, so it can be fuzzed.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::{Map, Value};

use super::checks::{check_audience, check_times, claim_error, parse_alg};
use super::issuer::{IssuerKind, TokenLocation};
use super::{Claims, JwtConfigError, JwtIssuer, RequestPrincipal, TokenError};
use crate::SpiffeId;

/// The longest token accepted, in bytes.
pub const MAX_TOKEN_LEN: usize = 32 * 1024;

/// Verifies tokens against a set of [`JwtIssuer`]s. The [`JwtLayer`](super::JwtLayer)
/// uses one per layer; it can also be used directly (gRPC metadata, WebSocket
/// subprotocols, message queues).
///
/// A token is routed to exactly one issuer before any key is tried: to the JWT-SVID
/// trust domain of its `sub` when that `sub` is `spiffe://<trust domain>…` for a
/// configured trust domain (it must then be a workload ID of it, or the token is
/// rejected), else to the issuer named by its `iss`. Only that issuer's keys are used,
/// and only keys whose type fits the token's `alg`; the algorithm is never chosen by
/// the token alone (no `alg: none`, no HMAC against a public key).
pub struct JwtVerifier {
    rules: Vec<Rule>,
    by_issuer: HashMap<Box<str>, usize>,
    /// The issuer-less rule ([`JwtIssuer::any_issuer`]), if any.
    any_issuer: Option<usize>,
    by_trust_domain: HashMap<Box<str>, usize>,
    pub(crate) locations: Vec<TokenLocation>,
}

struct Rule {
    issuer: JwtIssuer,
    /// Bit `i` set when `locations[i]` is one of this issuer's.
    location_mask: u64,
}

/// A token that verified: who it proves, and its claims.
#[derive(Debug, Clone)]
pub struct VerifiedToken {
    principal: RequestPrincipal,
    claims: Claims,
    pub(crate) rule: usize,
}

impl VerifiedToken {
    /// The principal, `iss/sub`.
    pub fn principal(&self) -> &RequestPrincipal {
        &self.principal
    }

    /// The verified claims.
    pub fn claims(&self) -> &Claims {
        &self.claims
    }

    /// The principal and the claims.
    pub fn into_parts(self) -> (RequestPrincipal, Claims) {
        (self.principal, self.claims)
    }
}

/// A token that did not verify: the reason, and the issuer it was routed to (when it
/// got that far), for the audit log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct JwtRejection {
    reason: TokenError,
    issuer: Option<Box<str>>,
}

impl JwtRejection {
    pub(crate) fn new(reason: TokenError, issuer: Option<Box<str>>) -> Self {
        Self { reason, issuer }
    }

    /// Why the token was rejected.
    pub fn reason(&self) -> &TokenError {
        &self.reason
    }

    /// The issuer the token was routed to, if it got that far.
    pub fn issuer(&self) -> Option<&str> {
        self.issuer.as_deref()
    }
}

#[derive(Deserialize)]
struct RawHeader<'a> {
    #[serde(borrow)]
    alg: Option<Cow<'a, str>>,
    #[serde(borrow)]
    kid: Option<Cow<'a, str>>,
    #[serde(borrow)]
    typ: Option<Cow<'a, str>>,
    crit: Option<IgnoredAny>,
}

impl JwtVerifier {
    /// A verifier for `issuers`.
    ///
    /// # Errors
    /// [`JwtConfigError`] when there is no issuer, an issuer or trust domain appears
    /// twice, an issuer accepts no audience, a JWT-SVID issuer has no audience or
    /// allows any, or more than 64 distinct token locations are configured.
    pub fn new(issuers: impl IntoIterator<Item = JwtIssuer>) -> Result<Self, JwtConfigError> {
        let mut v = Self {
            rules: Vec::new(),
            by_issuer: HashMap::new(),
            any_issuer: None,
            by_trust_domain: HashMap::new(),
            locations: Vec::new(),
        };
        for issuer in issuers {
            let index = v.rules.len();
            let duplicate = match &issuer.kind {
                IssuerKind::Oidc(iss) => v.by_issuer.insert(iss.clone(), index).is_some(),
                IssuerKind::JwtSvid(td) => v
                    .by_trust_domain
                    .insert(td.as_str().into(), index)
                    .is_some(),
                IssuerKind::AnyIssuer => v.any_issuer.replace(index).is_some(),
            };
            if duplicate {
                return Err(JwtConfigError::DuplicateIssuer(issuer.name().to_owned()));
            }
            // A JWT-SVID's audience is its scope: always required and checked.
            if matches!(issuer.kind, IssuerKind::JwtSvid(_))
                && (issuer.audiences.is_empty() || issuer.any_audience)
            {
                return Err(JwtConfigError::JwtSvidAudience(issuer.name().to_owned()));
            }
            if issuer.audiences.is_empty() && !issuer.any_audience {
                return Err(JwtConfigError::NoAudience(issuer.name().to_owned()));
            }
            let mut location_mask = 0u64;
            for loc in issuer.effective_locations() {
                let i = match v.locations.iter().position(|l| *l == loc) {
                    Some(i) => i,
                    None => {
                        v.locations.push(loc);
                        v.locations.len() - 1
                    }
                };
                if i >= 64 {
                    return Err(JwtConfigError::TooManyLocations(i + 1));
                }
                location_mask |= 1 << i;
            }
            v.rules.push(Rule {
                issuer,
                location_mask,
            });
        }
        if v.rules.is_empty() {
            return Err(JwtConfigError::NoIssuer);
        }
        Ok(v)
    }

    /// Verifies `token` against the system clock.
    ///
    /// # Errors
    /// [`JwtRejection`] saying why the token is not accepted.
    pub fn verify(&self, token: &str) -> Result<VerifiedToken, JwtRejection> {
        self.verify_at(token, unix_now())
    }

    /// Verifies `token` as if the time were `now` (seconds since the Unix epoch).
    ///
    /// # Errors
    /// [`JwtRejection`] saying why the token is not accepted.
    pub fn verify_at(&self, token: &str, now: i64) -> Result<VerifiedToken, JwtRejection> {
        let mut rule = None;
        self.check(token, now, &mut rule)
            .map_err(|reason| JwtRejection {
                reason,
                issuer: rule.map(|r| self.rules[r].issuer.name().into()),
            })
    }

    /// Verifies a token found at the locations in `found` (bitmask over `locations`).
    pub(crate) fn verify_found(
        &self,
        token: &str,
        found: u64,
        now: i64,
    ) -> Result<VerifiedToken, JwtRejection> {
        let verified = self.verify_at(token, now)?;
        let rule = &self.rules[verified.rule];
        if found & !rule.location_mask != 0 {
            let name = rule.issuer.name();
            return Err(JwtRejection {
                reason: TokenError::WrongLocation(name.to_owned()),
                issuer: Some(name.into()),
            });
        }
        Ok(verified)
    }

    pub(crate) fn forwards(&self, rule: usize) -> bool {
        self.rules[rule].issuer.forward
    }

    fn check(
        &self,
        token: &str,
        now: i64,
        routed: &mut Option<usize>,
    ) -> Result<VerifiedToken, TokenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::TooLong(token.len()));
        }
        let mut parts = token.split('.');
        let (Some(h64), Some(p64), Some(sig), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed("not three dot-separated parts"));
        };
        if h64.is_empty() || p64.is_empty() {
            return Err(TokenError::Malformed("empty header or payload"));
        }
        let header_bytes = URL_SAFE_NO_PAD
            .decode(h64)
            .map_err(|_| TokenError::Malformed("header is not base64url"))?;
        let header: RawHeader<'_> = serde_json::from_slice(&header_bytes)
            .map_err(|_| TokenError::Malformed("header is not a JSON object of string fields"))?;
        let alg = parse_alg(header.alg.as_deref())?;
        if header.crit.is_some() {
            return Err(TokenError::CriticalHeader);
        }
        if sig.is_empty() {
            return Err(TokenError::Malformed("empty signature"));
        }
        let payload_bytes = URL_SAFE_NO_PAD
            .decode(p64)
            .map_err(|_| TokenError::Malformed("payload is not base64url"))?;
        let payload: Map<String, Value> = serde_json::from_slice(&payload_bytes)
            .map_err(|_| TokenError::Malformed("payload is not a JSON object"))?;

        let index = self.route(&payload)?;
        *routed = Some(index);
        let rule = &self.rules[index].issuer;
        if let IssuerKind::JwtSvid(_) = rule.kind {
            if let Some(typ) = header.typ.as_deref()
                && typ != "JWT"
                && typ != "JOSE"
            {
                return Err(TokenError::BadType(typ.to_owned()));
            }
            if alg == Algorithm::EdDSA {
                return Err(TokenError::UnsupportedAlg("EdDSA".into()));
            }
        }

        let jwks = rule.keys.guard();
        // A token's kid selects the keys with that kid, plus any key without a kid
        // (RFC 7517 makes kid optional; Envoy tries such keys too). No kid: every key.
        let (by_kid, kidless) = match header.kid.as_deref() {
            Some(kid) => {
                let (found, kidless) = (jwks.find(kid), jwks.kidless());
                if found.is_empty() && kidless.is_empty() {
                    return Err(TokenError::UnknownKid(kid.to_owned()));
                }
                (found, kidless)
            }
            None => (jwks.keys(), &[][..]),
        };
        let candidates = by_kid.iter().chain(kidless);
        let message = &token[..h64.len() + 1 + p64.len()];
        let mut any_fit = false;
        let mut verified = false;
        for key in candidates.filter(|k| k.accepts(alg)) {
            any_fit = true;
            // A signature that is not base64url, or of the wrong length, is an error
            // here; it is a bad signature either way.
            if jsonwebtoken::crypto::verify(sig, message.as_bytes(), key.decoding_key(), alg)
                == Ok(true)
            {
                verified = true;
                break;
            }
        }
        if !any_fit {
            return Err(TokenError::NoKeyForAlg(format!("{alg:?}")));
        }
        if !verified {
            return Err(TokenError::BadSignature);
        }

        check_times(&payload, now, rule.clock_skew.as_secs())?;
        let Some(Value::String(sub)) = payload.get("sub") else {
            return Err(claim_error(&payload, "sub"));
        };
        check_audience(&payload, rule)?;
        let principal = match &rule.kind {
            IssuerKind::JwtSvid(td) => {
                // A JWT-SVID names a workload: a valid SPIFFE ID of this trust domain
                // with a path (`spiffe://td` alone is the trust domain, no workload).
                let id = SpiffeId::parse(sub)
                    .ok()
                    .filter(|id| !id.is_trust_domain_id() && id.trust_domain() == td)
                    .ok_or(TokenError::InvalidClaim("sub"))?;
                let iss = match payload.get("iss") {
                    None => None,
                    Some(Value::String(iss)) => Some(iss.as_str()),
                    Some(_) => return Err(TokenError::InvalidClaim("iss")),
                };
                RequestPrincipal::jwt_svid(id, iss)
            }
            IssuerKind::Oidc(iss) => RequestPrincipal::new(iss, sub),
            // Routed here only with a string `iss` (see `route`).
            IssuerKind::AnyIssuer => match payload.get("iss") {
                Some(Value::String(iss)) => RequestPrincipal::new(iss, sub),
                _ => return Err(TokenError::MissingClaim("iss")),
            },
        };
        Ok(VerifiedToken {
            principal,
            claims: Claims::from_map(payload).with_space_delimited(rule.space_delimited.clone()),
            rule: index,
        })
    }

    /// The rule a token belongs to: the JWT-SVID trust domain named by a `spiffe://`
    /// `sub` when it is configured (whether or not the rest of `sub` is a valid
    /// workload ID, which is checked once the signature verified), else the issuer of
    /// its `iss`.
    fn route(&self, payload: &Map<String, Value>) -> Result<usize, TokenError> {
        let trust_domain = match payload.get("sub") {
            Some(Value::String(sub)) => sub
                .strip_prefix("spiffe://")
                .map(|rest| rest.split_once('/').map_or(rest, |(td, _)| td)),
            _ => None,
        };
        if let Some(td) = trust_domain
            && let Some(&i) = self.by_trust_domain.get(td)
        {
            return Ok(i);
        }
        match payload.get("iss") {
            Some(Value::String(iss)) => match (self.by_issuer.get(iss.as_str()), self.any_issuer) {
                (Some(&i), _) | (None, Some(i)) => Ok(i),
                (None, None) => Err(TokenError::UnknownIssuer(iss.clone())),
            },
            Some(_) => Err(TokenError::InvalidClaim("iss")),
            None => match trust_domain {
                Some(td) => Err(TokenError::UnknownTrustDomain(td.to_owned())),
                None => Err(TokenError::MissingClaim("iss")),
            },
        }
    }
}

impl fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.rules.iter().map(|r| r.issuer.name()))
            .finish()
    }
}

pub(crate) fn unix_now() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(_) => 0,
    }
}

#[cfg(all(test, feature = "testing"))]
mod tests {
    use super::*;
    use crate::jwt::JwksSource;
    use crate::testing::TestJwtKey;

    const NOW: i64 = 1_800_000_000;
    const AUD: &str = "spiffe://example.org/ns/backend/sa/api";

    fn svid_verifier(key: &TestJwtKey) -> JwtVerifier {
        let bundle = JwksSource::from_spiffe_bundle(&TestJwtKey::spiffe_bundle(&[key])).unwrap();
        let svid = JwtIssuer::jwt_svid("example.org".parse().unwrap(), bundle).audience(AUD);
        JwtVerifier::new([svid]).unwrap()
    }

    fn reason(v: &JwtVerifier, key: &TestJwtKey, claims: &str) -> Option<TokenError> {
        let token = key.sign(claims).unwrap();
        v.verify_at(&token, NOW).err().map(|r| r.reason().clone())
    }

    #[test]
    fn jwt_svid_sub_must_be_a_workload_id_of_the_trust_domain() {
        let key = TestJwtKey::generate("k", "ES256").unwrap();
        let v = svid_verifier(&key);
        let exp = NOW + 60;
        let good = format!(r#"{{"sub":"spiffe://example.org/w","aud":"{AUD}","exp":{exp}}}"#);
        assert_eq!(reason(&v, &key, &good), None);
        for sub in [
            "spiffe://example.org",
            "spiffe://example.org/",
            "spiffe://example.org/ns//w",
            "spiffe://example.org/ns/../w",
            "spiffe://example.org/w%41",
            "spiffe://example.org/w?x=1",
        ] {
            let claims = format!(r#"{{"sub":"{sub}","aud":"{AUD}","exp":{exp}}}"#);
            assert_eq!(
                reason(&v, &key, &claims),
                Some(TokenError::InvalidClaim("sub")),
                "{sub}"
            );
        }
    }

    #[test]
    fn jwt_svid_audience_is_required_and_checked() {
        let key = TestJwtKey::generate("k", "ES256").unwrap();
        let v = svid_verifier(&key);
        let sub = "spiffe://example.org/w";
        let exp = NOW + 60;
        for (aud, expected) in [
            ("", TokenError::MissingClaim("aud")),
            (r#","aud":[]"#, TokenError::WrongAudience(String::new())),
            (
                r#","aud":"other""#,
                TokenError::WrongAudience("other".into()),
            ),
            (r#","aud":7"#, TokenError::InvalidClaim("aud")),
        ] {
            let claims = format!(r#"{{"sub":"{sub}","exp":{exp}{aud}}}"#);
            assert_eq!(reason(&v, &key, &claims), Some(expected), "{aud}");
        }
    }

    #[test]
    fn jwt_svid_issuers_refuse_any_audience_even_with_an_audience() {
        let bundle = || JwksSource::from_spiffe_bundle(r#"{"keys":[]}"#).unwrap();
        let td = || "example.org".parse().unwrap();
        for issuer in [
            JwtIssuer::jwt_svid(td(), bundle()),
            JwtIssuer::jwt_svid(td(), bundle()).allow_any_audience(),
            JwtIssuer::jwt_svid(td(), bundle())
                .audience(AUD)
                .allow_any_audience(),
            JwtIssuer::jwt_svid(td(), bundle())
                .allow_any_audience()
                .audience(AUD),
        ] {
            assert_eq!(
                JwtVerifier::new([issuer]).unwrap_err(),
                JwtConfigError::JwtSvidAudience("example.org".into())
            );
        }
    }
}
