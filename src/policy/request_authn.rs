//! Istio `RequestAuthentication`: the JWT issuers a workload accepts, loaded with the
//! policy (like `PeerAuthentication`) for the JWT layer to use.

/// An Istio `RequestAuthentication` object, as loaded from a manifest.
///
/// meshless does not verify tokens in the policy engine: build the JWT layer from
/// these rules ([`JwtRule::to_issuer`], feature `jwt`) and put it outside the
/// authorization layer, which then sees the principal and claims.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RequestAuthentication {
    /// `namespace/name` of the object.
    pub name: String,
    /// Whether the object had a workload selector or targetRef (not enforced
    /// in-process: this process is taken to be the selected workload).
    pub has_selector: bool,
    /// The `jwtRules`, one per accepted issuer.
    pub rules: Vec<JwtRule>,
}

/// One entry of `jwtRules`: an issuer, its keys, and where its tokens are found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct JwtRule {
    /// The `iss` tokens must carry; empty for a rule with only a `jwksUri`, which accepts
    /// tokens of any issuer signed by its keys (`JwtIssuer::any_issuer`).
    pub issuer: String,
    /// Accepted audiences; empty means any (Istio's behaviour, reported as a warning).
    pub audiences: Vec<String>,
    /// Inline JWKS document (`jwks`).
    pub jwks: Option<String>,
    /// JWKS URL (`jwksUri`).
    pub jwks_uri: Option<String>,
    /// Headers carrying the token (`fromHeaders`).
    pub from_headers: Vec<JwtHeader>,
    /// Query parameters carrying the token (`fromParams`).
    pub from_params: Vec<String>,
    /// Cookies carrying the token (`fromCookies`).
    pub from_cookies: Vec<String>,
    /// Whether the token is passed on to the service (`forwardOriginalToken`).
    pub forward_original_token: bool,
    /// Top-level claims of this issuer's tokens that policies read as space-separated
    /// words (`spaceDelimitedClaims`), besides `scope` and `permission`, which Istio
    /// always splits. [`JwtRule::to_issuer`] marks all of them on the verified
    /// [`Claims`](crate::Claims).
    pub space_delimited_claims: Vec<String>,
}

/// A header that carries a token (`fromHeaders[]`): the token follows `prefix`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct JwtHeader {
    /// Header name.
    pub name: String,
    /// What precedes the token in the value (`Bearer `), possibly empty.
    pub prefix: String,
}

#[cfg(feature = "jwt")]
pub use convert::RequestAuthnError;

#[cfg(feature = "jwt")]
mod convert {
    use super::{JwtRule, RequestAuthentication};
    use crate::jwt::{JwksError, JwksSource, JwtConfigError, JwtIssuer};

    /// Why a [`JwtRule`] cannot become a [`JwtIssuer`].
    #[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
    #[non_exhaustive]
    pub enum RequestAuthnError {
        /// The rule names a `jwksUri`: keys must be fetched over HTTPS, which needs
        /// feature `jwt-https` and [`JwtRule::to_issuer_https`].
        #[error(
            "issuer `{issuer}`: `jwksUri` `{uri}` must be fetched over HTTPS: enable feature `jwt-https` and use `JwtRule::to_issuer_https`"
        )]
        JwksUriNeedsHttps {
            /// The issuer.
            issuer: String,
            /// The URL.
            uri: String,
        },
        /// Both `jwks` and `jwksUri` are set.
        #[error("issuer `{0}`: `jwks` and `jwksUri` are both set; use one")]
        BothJwks(String),
        /// Neither `jwks` nor `jwksUri` is set (OpenID discovery is not supported).
        #[error(
            "issuer `{0}`: neither `jwks` nor `jwksUri` is set (OpenID discovery is not supported)"
        )]
        NoJwks(String),
        /// The keys are invalid or could not be fetched.
        #[error("issuer `{issuer}`: {source}")]
        Jwks {
            /// The issuer.
            issuer: String,
            /// Why.
            source: JwksError,
        },
        /// The JWT layer refuses the configuration.
        #[error(transparent)]
        Config(#[from] JwtConfigError),
    }

    impl JwtRule {
        /// The JWT layer's issuer for this rule, with the inline `jwks`.
        ///
        /// Token locations: the given `fromHeaders`, `fromParams` and `fromCookies`,
        /// else `Authorization: Bearer` only (unlike Envoy, the `access_token` query
        /// parameter is not read by default). No `audiences` means any audience, as in
        /// Istio.
        ///
        /// # Errors
        ///
        /// [`RequestAuthnError`]: a `jwksUri` (see
        /// [`to_issuer_https`](Self::to_issuer_https)), no or invalid keys, a bad issuer
        /// or token location.
        pub fn to_issuer(&self) -> Result<JwtIssuer, RequestAuthnError> {
            match (&self.jwks, &self.jwks_uri) {
                (Some(_), Some(_)) => Err(RequestAuthnError::BothJwks(self.issuer.clone())),
                (None, None) => Err(RequestAuthnError::NoJwks(self.issuer.clone())),
                (None, Some(uri)) => Err(RequestAuthnError::JwksUriNeedsHttps {
                    issuer: self.issuer.clone(),
                    uri: uri.clone(),
                }),
                (Some(jwks), None) => {
                    let keys =
                        JwksSource::from_jwks(jwks).map_err(|source| RequestAuthnError::Jwks {
                            issuer: self.issuer.clone(),
                            source,
                        })?;
                    self.with_keys(keys)
                }
            }
        }

        /// As [`to_issuer`](Self::to_issuer), fetching a `jwksUri` over HTTPS with
        /// `tls` and refreshing it every `refresh` (see
        /// [`JwksSource::fetch_jwks_https`]).
        ///
        /// # Errors
        ///
        /// As [`to_issuer`](Self::to_issuer), and when the first fetch fails.
        #[cfg(feature = "jwt-https")]
        pub async fn to_issuer_https(
            &self,
            tls: std::sync::Arc<rustls::ClientConfig>,
            refresh: std::time::Duration,
        ) -> Result<JwtIssuer, RequestAuthnError> {
            match (&self.jwks, &self.jwks_uri) {
                (None, Some(uri)) => {
                    let keys = JwksSource::fetch_jwks_https(uri, tls, refresh)
                        .await
                        .map_err(|source| RequestAuthnError::Jwks {
                            issuer: self.issuer.clone(),
                            source,
                        })?;
                    self.with_keys(keys)
                }
                _ => self.to_issuer(),
            }
        }

        fn with_keys(&self, keys: JwksSource) -> Result<JwtIssuer, RequestAuthnError> {
            // Istio: "The default claims 'scope' and 'permission' are always treated as
            // space-delimited regardless of this setting" (JWTRule.spaceDelimitedClaims).
            let split = ["scope", "permission"]
                .into_iter()
                .chain(self.space_delimited_claims.iter().map(String::as_str));
            // Istio: a rule with a `jwksUri` and no `issuer` accepts tokens of any issuer
            // signed by its keys.
            let issuer = if self.issuer.is_empty() {
                JwtIssuer::any_issuer(keys)
            } else {
                JwtIssuer::new(&self.issuer, keys)?
            };
            let mut issuer = issuer
                .audiences(self.audiences.iter().map(String::as_str))
                .forward_original_token(self.forward_original_token)
                .space_delimited_claims(split);
            if self.audiences.is_empty() {
                issuer = issuer.allow_any_audience();
            }
            for h in &self.from_headers {
                issuer = issuer.token_from_header(&h.name, &h.prefix)?;
            }
            for p in &self.from_params {
                issuer = issuer.token_from_query_param(p)?;
            }
            for c in &self.from_cookies {
                issuer = issuer.token_from_cookie(c)?;
            }
            Ok(issuer)
        }
    }

    impl RequestAuthentication {
        /// The issuers of every rule, with inline keys ([`JwtRule::to_issuer`]).
        ///
        /// # Errors
        ///
        /// The first rule that cannot be converted.
        pub fn to_issuers(&self) -> Result<Vec<JwtIssuer>, RequestAuthnError> {
            self.rules.iter().map(JwtRule::to_issuer).collect()
        }
    }
}
