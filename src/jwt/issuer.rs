//! [`JwtIssuer`]: one trusted token issuer (Istio's `jwtRules[]` entry) — an OIDC-style
//! issuer, or the JWT-SVIDs of one SPIFFE trust domain.

use std::time::Duration;

use http::HeaderName;

use super::{JwksSource, JwtConfigError};
use crate::TrustDomain;

/// The clock skew allowed on `exp` and `nbf` unless configured (Istio and Envoy use
/// the same 60 seconds).
pub const DEFAULT_CLOCK_SKEW: Duration = Duration::from_secs(60);

/// A trusted issuer of JWTs and how its tokens are accepted.
///
/// Defaults follow Istio's `RequestAuthentication`: the token is read from
/// `Authorization: Bearer <token>`, 60 seconds of clock skew are allowed, and the token
/// is **removed** before the request reaches the inner service
/// (`forwardOriginalToken: false`). Unlike Istio, an audience must be configured (or
/// any audience explicitly allowed): a token minted for another service is not
/// accepted by default. `exp` and `sub` are always required.
///
/// ```
/// use meshless::jwt::{JwksSource, JwtIssuer};
/// let keys = JwksSource::from_jwks(r#"{"keys": []}"#)?;
/// let issuer = JwtIssuer::new("https://accounts.example.com", keys)?
///     .audience("orders-api")
///     .token_from_header("x-jwt-assertion", "")?
///     .token_from_cookie("session")?;
/// assert_eq!(issuer.name(), "https://accounts.example.com");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct JwtIssuer {
    pub(crate) kind: IssuerKind,
    pub(crate) keys: JwksSource,
    pub(crate) audiences: Vec<Box<str>>,
    pub(crate) any_audience: bool,
    pub(crate) locations: Vec<TokenLocation>,
    pub(crate) clock_skew: Duration,
    pub(crate) forward: bool,
    pub(crate) space_delimited: std::sync::Arc<[Box<str>]>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum IssuerKind {
    /// Tokens whose `iss` is this string.
    Oidc(Box<str>),
    /// JWT-SVIDs: tokens whose `sub` is a SPIFFE ID of this trust domain.
    JwtSvid(TrustDomain),
    /// Tokens of any `iss` that no other rule names, signed by these keys.
    AnyIssuer,
}

/// Where a token is read from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum TokenLocation {
    /// A header; each of its values must be `prefix` (matched case-insensitively, as
    /// RFC 9110 makes auth schemes case-insensitive) followed by one token, or it is
    /// refused as unreadable.
    Header { name: HeaderName, prefix: Box<str> },
    /// A cookie of this name.
    Cookie(Box<str>),
    /// A query parameter of this name.
    Query(Box<str>),
}

impl TokenLocation {
    pub(crate) fn bearer() -> Self {
        Self::Header {
            name: http::header::AUTHORIZATION,
            prefix: "Bearer ".into(),
        }
    }
}

impl JwtIssuer {
    /// An issuer whose tokens carry `iss` equal to `issuer` and are signed by `keys`.
    ///
    /// # Errors
    /// [`JwtConfigError::BadIssuer`] when `issuer` is empty or starts with `spiffe:`
    /// (JWT-SVIDs are configured with [`JwtIssuer::jwt_svid`]).
    pub fn new(issuer: &str, keys: JwksSource) -> Result<Self, JwtConfigError> {
        if issuer.is_empty() || issuer.starts_with("spiffe:") {
            return Err(JwtConfigError::BadIssuer(issuer.to_owned()));
        }
        Ok(Self::with_kind(IssuerKind::Oidc(issuer.into()), keys))
    }

    /// JWT-SVIDs of `trust_domain`: tokens whose `sub` is a SPIFFE ID in that trust
    /// domain, verified against the `jwt-svid` keys of its bundle (see
    /// [`JwksSource::watch_spiffe_bundle_file`]). As the JWT-SVID standard requires,
    /// `sub` must be a workload ID (a SPIFFE ID with a path, not the trust domain's
    /// own ID), `aud` and `exp` must be present, `typ` must be absent, `JWT` or `JOSE`,
    /// and the algorithm must be RS, ES or PS (256/384/512). At least one audience must
    /// be configured, and [`allow_any_audience`](Self::allow_any_audience) is refused.
    pub fn jwt_svid(trust_domain: TrustDomain, bundle: JwksSource) -> Self {
        Self::with_kind(IssuerKind::JwtSvid(trust_domain), bundle)
    }

    /// Tokens of **any issuer** that no other configured issuer names, verified against
    /// `keys`: Istio's `jwtRules` entry with a `jwksUri` and no `issuer` ("the issuer
    /// claim may be dynamic"). The principal is the token's own `iss/sub`, so `iss`
    /// must still be a string. At most one such issuer per verifier; it is tried only
    /// for tokens whose `iss` no named issuer claims.
    pub fn any_issuer(keys: JwksSource) -> Self {
        Self::with_kind(IssuerKind::AnyIssuer, keys)
    }

    fn with_kind(kind: IssuerKind, keys: JwksSource) -> Self {
        Self {
            kind,
            keys,
            audiences: Vec::new(),
            any_audience: false,
            locations: Vec::new(),
            clock_skew: DEFAULT_CLOCK_SKEW,
            forward: false,
            space_delimited: std::sync::Arc::new([]),
        }
    }

    /// Accepts tokens whose `aud` contains `audience` (may be called several times; a
    /// token is accepted if any of its audiences is accepted).
    pub fn audience(mut self, audience: &str) -> Self {
        self.audiences.push(audience.into());
        self
    }

    /// Accepts each of `audiences`.
    pub fn audiences<'a>(self, audiences: impl IntoIterator<Item = &'a str>) -> Self {
        audiences.into_iter().fold(self, Self::audience)
    }

    /// Accepts tokens whatever their audience (Envoy's behaviour with no audiences).
    /// A token minted for another service is then accepted here too: prefer
    /// [`audience`](Self::audience). Refused for JWT-SVIDs, even alongside an
    /// audience ([`JwtConfigError::JwtSvidAudience`]): a JWT-SVID's `aud` is always
    /// required and checked.
    pub fn allow_any_audience(mut self) -> Self {
        self.any_audience = true;
        self
    }

    /// Reads tokens from header `name`, after `prefix` (Istio's `fromHeaders`). The first
    /// call replaces the default `Authorization: Bearer`.
    ///
    /// # Errors
    /// [`JwtConfigError::BadHeaderName`] when `name` is not a header name.
    pub fn token_from_header(mut self, name: &str, prefix: &str) -> Result<Self, JwtConfigError> {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| JwtConfigError::BadHeaderName(name.to_owned()))?;
        self.locations.push(TokenLocation::Header {
            name,
            prefix: prefix.into(),
        });
        Ok(self)
    }

    /// Reads tokens from the cookie `name` (Istio's `fromCookies`). The first call
    /// replaces the default `Authorization: Bearer`.
    ///
    /// # Errors
    /// [`JwtConfigError::BadCookieName`] when `name` cannot be a cookie name.
    pub fn token_from_cookie(mut self, name: &str) -> Result<Self, JwtConfigError> {
        let token_char = |c: char| c.is_ascii_graphic() && !"()<>@,;:\\\"/[]?={}".contains(c);
        if name.is_empty() || !name.chars().all(token_char) {
            return Err(JwtConfigError::BadCookieName(name.to_owned()));
        }
        self.locations.push(TokenLocation::Cookie(name.into()));
        Ok(self)
    }

    /// Reads tokens from the query parameter `name` (Istio's `fromParams`). The first
    /// call replaces the default `Authorization: Bearer`. Tokens in URLs end up in
    /// access logs (RFC 6750 §2.3 advises against them), so, unlike Envoy, the
    /// `access_token` parameter is not read by default; a stripped token is removed from
    /// the URI the inner service sees.
    ///
    /// # Errors
    /// [`JwtConfigError::BadQueryParam`] when `name` is empty or holds `&`, `=`, `#`.
    pub fn token_from_query_param(mut self, name: &str) -> Result<Self, JwtConfigError> {
        if name.is_empty() || name.contains(['&', '=', '#', ' ']) {
            return Err(JwtConfigError::BadQueryParam(name.to_owned()));
        }
        self.locations.push(TokenLocation::Query(name.into()));
        Ok(self)
    }

    /// Sets the clock skew allowed on `exp` and `nbf` (default 60 s).
    pub fn clock_skew(mut self, skew: Duration) -> Self {
        self.clock_skew = skew;
        self
    }

    /// Passes the token on to the inner service after verification (Istio's
    /// `forwardOriginalToken: true`). By default it is removed, so that the inner
    /// service cannot leak or replay it.
    pub fn forward_original_token(mut self, forward: bool) -> Self {
        self.forward = forward;
        self
    }

    /// Top-level claims of this issuer's tokens that authorization policies read as
    /// space-separated words (Istio's `spaceDelimitedClaims`; see
    /// [`Claims::space_delimited`](crate::Claims::space_delimited)): with `["roles"]`,
    /// `roles: "editor admin"` matches a `when` condition on `roles` with
    /// `values: ["admin"]`. None by default; Istio always lists `scope` and
    /// `permission`, which `JwtRule::to_issuer` does too. Replaces earlier calls.
    pub fn space_delimited_claims<'a>(mut self, names: impl IntoIterator<Item = &'a str>) -> Self {
        self.space_delimited = names.into_iter().map(Box::from).collect();
        self
    }

    /// The issuer string, or the SPIFFE ID of the trust domain for JWT-SVIDs.
    pub fn name(&self) -> &str {
        match &self.kind {
            IssuerKind::Oidc(iss) => iss,
            IssuerKind::JwtSvid(td) => td.as_str(),
            IssuerKind::AnyIssuer => "*",
        }
    }

    /// Whether any audience is accepted: never for JWT-SVIDs, whatever was configured.
    pub(crate) fn accepts_any_audience(&self) -> bool {
        self.any_audience && !matches!(self.kind, IssuerKind::JwtSvid(_))
    }

    /// The token locations in force (the default when none were configured).
    pub(crate) fn effective_locations(&self) -> Vec<TokenLocation> {
        if self.locations.is_empty() {
            vec![TokenLocation::bearer()]
        } else {
            self.locations.clone()
        }
    }
}
