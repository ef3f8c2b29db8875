//! Keys, issuers and claims shared by the JWT test suites. Keys are generated once per
//! test binary, at test time.

#![allow(dead_code, unreachable_pub)]

use std::sync::OnceLock;

use meshless::jwt::{JwksSource, JwtIssuer, JwtVerifier};
use meshless::testing::TestJwtKey;

pub const ISS: &str = "https://idp.test";
pub const AUD: &str = "api";
pub const TD: &str = "example.org";
pub const SVID_AUD: &str = "spiffe://example.org/ns/backend/sa/api";
/// A fixed clock for `verify_at`: 2027-01-15T08:00:00Z.
pub const NOW: i64 = 1_800_000_000;

pub struct Keys {
    pub rsa: TestJwtKey,
    pub ps: TestJwtKey,
    pub ec: TestJwtKey,
    pub ec384: TestJwtKey,
    pub ed: TestJwtKey,
    /// Same kid as `rsa`, different key material: an attacker's key.
    pub rogue_rsa: TestJwtKey,
    pub svid_ec: TestJwtKey,
    pub svid_rsa: TestJwtKey,
    pub svid_ed: TestJwtKey,
}

pub fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| Keys {
        rsa: TestJwtKey::generate("rsa-1", "RS256").unwrap(),
        ps: TestJwtKey::generate("ps-1", "PS256").unwrap(),
        ec: TestJwtKey::generate("ec-1", "ES256").unwrap(),
        ec384: TestJwtKey::generate("ec-2", "ES384").unwrap(),
        ed: TestJwtKey::generate("ed-1", "EdDSA").unwrap(),
        rogue_rsa: TestJwtKey::generate("rsa-1", "RS256").unwrap(),
        svid_ec: TestJwtKey::generate("svid-ec", "ES256").unwrap(),
        svid_rsa: TestJwtKey::generate("svid-rsa", "RS384").unwrap(),
        svid_ed: TestJwtKey::generate("svid-ed", "EdDSA").unwrap(),
    })
}

pub fn idp_jwks() -> String {
    let k = keys();
    TestJwtKey::jwks(&[&k.rsa, &k.ps, &k.ec, &k.ec384, &k.ed])
}

pub fn bundle() -> String {
    let k = keys();
    TestJwtKey::spiffe_bundle(&[&k.svid_ec, &k.svid_rsa, &k.svid_ed])
}

pub fn idp_issuer() -> JwtIssuer {
    JwtIssuer::new(ISS, JwksSource::from_jwks(&idp_jwks()).unwrap())
        .unwrap()
        .audience(AUD)
}

pub fn svid_issuer() -> JwtIssuer {
    JwtIssuer::jwt_svid(
        TD.parse().unwrap(),
        JwksSource::from_spiffe_bundle(&bundle()).unwrap(),
    )
    .audience(SVID_AUD)
}

pub fn verifier() -> JwtVerifier {
    JwtVerifier::new([idp_issuer(), svid_issuer()]).unwrap()
}

/// Claims of a good IdP token, with `extra` members appended (JSON text without
/// braces, e.g. `"groups":["a"]`). Later duplicates override earlier ones.
pub fn claims(extra: &str) -> String {
    let base = format!(
        r#""iss":"{ISS}","sub":"user-1","aud":"{AUD}","exp":{}"#,
        NOW + 300
    );
    if extra.is_empty() {
        format!("{{{base}}}")
    } else {
        format!("{{{base},{extra}}}")
    }
}

/// Claims of a good JWT-SVID.
pub fn svid_claims(extra: &str) -> String {
    let base = format!(
        r#""sub":"spiffe://{TD}/ns/frontend/sa/web","aud":["{SVID_AUD}"],"exp":{}"#,
        NOW + 300
    );
    if extra.is_empty() {
        format!("{{{base}}}")
    } else {
        format!("{{{base},{extra}}}")
    }
}
