//! Istio `RequestAuthentication` manifests: parsed into [`RequestAuthentication`]
//! (the JWT issuers a workload accepts), with the fields meshless cannot honour
//! reported as warnings.

use serde::Deserialize;

use super::scope::{Selector, TargetRef};
use crate::policy::error::PolicyError;
use crate::policy::import::document::Object;
use crate::policy::request_authn::{JwtHeader, JwtRule, RequestAuthentication};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct RequestAuthnSpec {
    #[serde(default)]
    pub(crate) selector: Option<Selector>,
    #[serde(default)]
    pub(crate) target_ref: Option<TargetRef>,
    #[serde(default)]
    pub(crate) target_refs: Option<Vec<TargetRef>>,
    #[serde(default)]
    jwt_rules: Vec<IstioJwtRule>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct IstioJwtRule {
    #[serde(default)]
    issuer: String,
    #[serde(default)]
    audiences: Vec<String>,
    #[serde(default)]
    jwks_uri: Option<String>,
    #[serde(default)]
    jwks: Option<String>,
    #[serde(default)]
    from_headers: Vec<IstioJwtHeader>,
    #[serde(default)]
    from_params: Vec<String>,
    #[serde(default)]
    from_cookies: Vec<String>,
    #[serde(default)]
    forward_original_token: bool,
    #[serde(default)]
    output_payload_to_header: Option<String>,
    #[serde(default)]
    output_claim_to_headers: Option<Vec<serde::de::IgnoredAny>>,
    #[serde(default)]
    timeout: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    space_delimited_claims: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IstioJwtHeader {
    name: String,
    #[serde(default)]
    prefix: String,
}

pub(crate) fn request_authn(
    o: Object<RequestAuthnSpec>,
    warnings: &mut Vec<String>,
) -> Result<RequestAuthentication, PolicyError> {
    let name = o.metadata.qualified();
    let mut rules = Vec::new();
    for r in o.spec.jwt_rules {
        // Istio's validation: "issuer or jwksUri must be non-empty string". A rule with
        // a `jwksUri` and no `issuer` accepts tokens of any issuer signed by those keys
        // ("the issuer claim may be dynamic"): `JwtIssuer::any_issuer`.
        if r.issuer.is_empty() {
            if r.jwks_uri.is_none() {
                return Err(PolicyError::invalid(format!(
                    "request authentication `{name}`: a jwt rule needs an `issuer` or a `jwksUri`"
                )));
            }
            warnings.push(format!(
                "request authentication `{name}`: a jwt rule has no `issuer`: tokens of any issuer signed by its `jwksUri` keys are accepted, as in Istio"
            ));
        }
        if r.jwks.is_some() && r.jwks_uri.is_some() {
            return Err(PolicyError::invalid(format!(
                "request authentication `{name}`: issuer `{}` sets both `jwks` and `jwksUri`",
                r.issuer
            )));
        }
        let issuer = &r.issuer;
        // The CRD: `spaceDelimitedClaims` items have `minLength: 1`, `maxItems: 64`.
        if r.space_delimited_claims.iter().any(String::is_empty)
            || r.space_delimited_claims.len() > 64
        {
            return Err(PolicyError::invalid(format!(
                "request authentication `{name}`: issuer `{issuer}`: `spaceDelimitedClaims` takes at most 64 non-empty claim names"
            )));
        }
        if r.output_claim_to_headers.is_some() || r.output_payload_to_header.is_some() {
            warnings.push(format!(
                "request authentication `{name}`: issuer `{issuer}`: `outputClaimToHeaders` / `outputPayloadToHeader` are not supported; read the `Claims` request extension instead"
            ));
        }
        if r.timeout.is_some() {
            warnings.push(format!(
                "request authentication `{name}`: issuer `{issuer}`: `timeout` is ignored (the JWKS fetch uses the JWT layer's own timeout)"
            ));
        }
        if r.audiences.is_empty() {
            warnings.push(format!(
                "request authentication `{name}`: issuer `{issuer}` lists no `audiences`: as in Istio, tokens for any audience are accepted"
            ));
        }
        rules.push(JwtRule {
            issuer: r.issuer,
            audiences: r.audiences,
            jwks: r.jwks,
            jwks_uri: r.jwks_uri,
            from_headers: r
                .from_headers
                .into_iter()
                .map(|h| JwtHeader {
                    name: h.name,
                    prefix: h.prefix,
                })
                .collect(),
            from_params: r.from_params,
            from_cookies: r.from_cookies,
            forward_original_token: r.forward_original_token,
            space_delimited_claims: r.space_delimited_claims,
        });
    }
    // Scoped by the importer (`istio_scope`): only documents for this workload get here.
    let has_selector = o.spec.selector.is_some();
    Ok(RequestAuthentication {
        name,
        has_selector,
        rules,
    })
}
