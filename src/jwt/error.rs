//! Errors of the JWT layer: configuration ([`JwtConfigError`]), key sets
//! ([`JwksError`]) and rejected tokens ([`TokenError`]).

use std::path::PathBuf;

/// Why a JWKS document (or a SPIFFE bundle) could not be used. When a watched file
/// turns bad, this is what [`JwksSource::last_error`](super::JwksSource::last_error)
/// reports while the last good keys stay in force.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwksError {
    /// The file could not be read.
    #[error("cannot read JWKS file `{path}`: {message}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's message.
        message: String,
    },
    /// An HTTPS fetch failed (feature `jwt-https`).
    #[error("cannot fetch JWKS from `{url}`: {message}")]
    Fetch {
        /// The URL.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// The document is not JSON of the JWKS shape (`{"keys": [...]}`).
    #[error("JWKS is not valid: {0}")]
    Json(String),
    /// A key of a supported type is malformed (bad base64url, wrong length, weak RSA
    /// modulus, unsupported `alg`). The whole document is refused: a key set that is
    /// only partly understood is not trusted.
    #[error("JWKS key `{kid}` is invalid: {reason}")]
    Key {
        /// The key's `kid`, or its index when it has none.
        kid: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A SPIFFE bundle holds a `jwt-svid` key without a `kid`.
    #[error("SPIFFE bundle jwt-svid key #{0} has no `kid`")]
    MissingKid(usize),
    /// The document lists keys, but none of them can verify a JWT (all are of
    /// unsupported types or uses). An empty `keys` list is accepted (all keys revoked).
    #[error("JWKS lists {0} keys but none can verify JWT signatures")]
    NoUsableKeys(usize),
}

/// A configuration the JWT layer refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwtConfigError {
    /// No issuer was configured.
    #[error("a JWT layer needs at least one issuer")]
    NoIssuer,
    /// The issuer string is empty or starts with `spiffe:` (reserved for JWT-SVIDs).
    #[error("issuer `{0}` is not allowed: it must be non-empty and must not start with `spiffe:`")]
    BadIssuer(String),
    /// Two rules name the same issuer (or the same JWT-SVID trust domain).
    #[error("issuer `{0}` is configured twice")]
    DuplicateIssuer(String),
    /// No audience was configured and `allow_any_audience` was not called.
    #[error("issuer `{0}` accepts no audience: configure one, or call `allow_any_audience`")]
    NoAudience(String),
    /// JWT-SVIDs of this trust domain were configured without an audience, or with
    /// `allow_any_audience`: the JWT-SVID standard makes `aud` the token's scope, so it
    /// is always required and checked.
    #[error(
        "JWT-SVIDs of `{0}` need an audience to check: configure one, and do not call `allow_any_audience`"
    )]
    JwtSvidAudience(String),
    /// A header name is not a valid HTTP header name.
    #[error("`{0}` is not a valid header name")]
    BadHeaderName(String),
    /// A cookie name is empty or holds characters a cookie name cannot hold.
    #[error("`{0}` is not a valid cookie name")]
    BadCookieName(String),
    /// A query parameter name is empty or holds `&`, `=`, `#` or a space.
    #[error("`{0}` is not a valid query parameter name")]
    BadQueryParam(String),
    /// More token locations than the layer tracks (64) were configured.
    #[error("{0} distinct token locations configured, at most 64 are supported")]
    TooManyLocations(usize),
}

/// Why a presented token was rejected. The reason goes to the audit log (target
/// `meshless::audit`), never to the client, which only sees
/// `401` with `WWW-Authenticate: Bearer error="invalid_token"`.
///
/// Messages never contain the token itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// More than one token was presented (in one or several locations).
    #[error("more than one token presented")]
    MultipleTokens,
    /// A configured token location holds a credential the layer cannot read: a value
    /// of this header that is not the configured prefix followed by one token (for
    /// `Authorization`, anything but exactly `Bearer <token>`, such as another
    /// scheme), or a `Cookie` header that is not text. It is refused rather than
    /// passed on unverified.
    #[error("`{0}` holds a credential that is not a readable token")]
    Unreadable(http::HeaderName),
    /// The token is longer than the layer accepts.
    #[error("token is {0} bytes long, more than the 32768 accepted")]
    TooLong(usize),
    /// The token is not a compact JWS of three base64url parts with JSON header and
    /// payload.
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    /// `alg: none`: an unsigned token.
    #[error("unsigned token (`alg: none`)")]
    AlgNone,
    /// An HMAC algorithm: only asymmetric keys are trusted, so a shared-secret
    /// signature can never verify (this is the classic key-confusion attack).
    #[error("hmac algorithm `{0}` is not accepted against asymmetric keys")]
    Hmac(String),
    /// An algorithm that is unknown, or not allowed here (JWT-SVIDs allow only RS, ES
    /// and PS).
    #[error("algorithm `{0}` is not accepted")]
    UnsupportedAlg(String),
    /// The header lists critical extensions (`crit`), none of which are understood.
    #[error("token header has critical extensions (`crit`), which are not supported")]
    CriticalHeader,
    /// A JWT-SVID's `typ` is neither absent nor `JWT`/`JOSE`.
    #[error("JWT-SVID `typ` is `{0}`, expected `JWT` or `JOSE`")]
    BadType(String),
    /// The token names an issuer that is not configured (or none).
    #[error("issuer `{0}` is not trusted")]
    UnknownIssuer(String),
    /// The token is a JWT-SVID of a trust domain without a configured bundle.
    #[error("no JWT-SVID bundle for trust domain `{0}`")]
    UnknownTrustDomain(String),
    /// The token was found in a place its issuer does not take tokens from.
    #[error("token of issuer `{0}` found in a location not configured for it")]
    WrongLocation(String),
    /// The token's `kid` names no key of its issuer.
    #[error("no key with kid `{0}`")]
    UnknownKid(String),
    /// No key of the issuer fits the token's algorithm.
    #[error("no key for algorithm `{0}`")]
    NoKeyForAlg(String),
    /// The signature does not verify.
    #[error("bad signature")]
    BadSignature,
    /// `exp` is past (beyond the allowed clock skew).
    #[error("token expired at `{exp}` (now `{now}`)")]
    Expired {
        /// The token's `exp`.
        exp: i64,
        /// The verifier's clock.
        now: i64,
    },
    /// `nbf` is in the future (beyond the allowed clock skew).
    #[error("token not valid before `{nbf}` (now `{now}`)")]
    NotYetValid {
        /// The token's `nbf`.
        nbf: i64,
        /// The verifier's clock.
        now: i64,
    },
    /// A required claim is missing.
    #[error("required claim `{0}` is missing")]
    MissingClaim(&'static str),
    /// A claim has the wrong type.
    #[error("claim `{0}` has the wrong type")]
    InvalidClaim(&'static str),
    /// None of the token's audiences is accepted.
    #[error("audience `{0}` is not accepted")]
    WrongAudience(String),
}
