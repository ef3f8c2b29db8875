//! JwtVerifier against tokens minted at test time with RSA, ECDSA and Ed25519 keys:
//! every acceptance and rejection rule, clock-skew edges, JWT-SVIDs, JWKS parsing,
//! and key rotation in a watched JWKS file.

#[path = "jwt_common/mod.rs"]
mod common;

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::*;
use meshless::jwt::{
    Jwks, JwksError, JwksSource, JwtConfigError, JwtIssuer, JwtVerifier, TokenError,
};
use meshless::testing::TestJwtKey;

fn reason(v: &JwtVerifier, token: &str) -> TokenError {
    v.verify_at(token, NOW).unwrap_err().reason().clone()
}

#[test]
fn accepts_rsa_pss_ecdsa_and_eddsa_tokens() {
    let v = verifier();
    let k = keys();
    for key in [&k.rsa, &k.ps, &k.ec, &k.ec384, &k.ed] {
        let token = key.sign(&claims(r#""groups":["dev","admins"]"#)).unwrap();
        let ok = v
            .verify_at(&token, NOW)
            .unwrap_or_else(|e| panic!("{key:?}: {e}"));
        assert_eq!(ok.principal().as_str(), "https://idp.test/user-1");
        assert_eq!(ok.principal().issuer(), Some(ISS));
        assert!(ok.principal().spiffe_id().is_none());
        assert!(ok.claims().contains(&["groups"], "admins"));
    }
}

#[test]
fn token_without_kid_is_tried_against_fitting_keys() {
    let k = keys();
    let token = k.ec.sign_raw(r#"{"alg":"ES256"}"#, &claims("")).unwrap();
    assert!(verifier().verify_at(&token, NOW).is_ok());
}

#[test]
fn rejects_bad_signatures() {
    let v = verifier();
    let k = keys();
    // An attacker's key under a trusted kid.
    let forged = k.rogue_rsa.sign(&claims("")).unwrap();
    assert_eq!(reason(&v, &forged), TokenError::BadSignature);
    // A genuine signature over different claims.
    let good = k.ec.sign(&claims("")).unwrap();
    let other = k.ec.sign(&claims(r#""sub":"admin""#)).unwrap();
    let parts: Vec<&str> = good.split('.').collect();
    let other_payload = other.split('.').nth(1).unwrap();
    let spliced = format!("{}.{}.{}", parts[0], other_payload, parts[2]);
    assert_eq!(reason(&v, &spliced), TokenError::BadSignature);
    // A signature that is not base64url.
    let garbage = format!("{}.{}.!!!", parts[0], parts[1]);
    assert_eq!(reason(&v, &garbage), TokenError::BadSignature);
}

#[test]
fn rejects_wrong_issuer_and_audience() {
    let v = verifier();
    let k = keys();
    let t = k.ec.sign(&claims(r#""iss":"https://evil.test""#)).unwrap();
    assert_eq!(
        reason(&v, &t),
        TokenError::UnknownIssuer("https://evil.test".into())
    );
    let t =
        k.ec.sign(r#"{"sub":"u","aud":"api","exp":1900000000}"#)
            .unwrap();
    assert_eq!(reason(&v, &t), TokenError::MissingClaim("iss"));
    let t = k.ec.sign(&claims(r#""aud":"other""#)).unwrap();
    assert_eq!(reason(&v, &t), TokenError::WrongAudience("other".into()));
    let t = k.ec.sign(&claims(r#""aud":["x","y"]"#)).unwrap();
    assert_eq!(reason(&v, &t), TokenError::WrongAudience("x,y".into()));
    let t = k.ec.sign(&claims(r#""aud":["x","api"]"#)).unwrap();
    assert!(
        v.verify_at(&t, NOW).is_ok(),
        "any accepted audience suffices"
    );
    let t = k.ec.sign(&claims(r#""aud":["api",7]"#)).unwrap();
    assert_eq!(reason(&v, &t), TokenError::InvalidClaim("aud"));
    let t =
        k.ec.sign(&format!(r#"{{"iss":"{ISS}","sub":"u","exp":{}}}"#, NOW + 9))
            .unwrap();
    assert_eq!(reason(&v, &t), TokenError::MissingClaim("aud"));
}

#[test]
fn rejection_names_the_issuer_it_was_routed_to() {
    let k = keys();
    let t = k.ec.sign(&claims(r#""aud":"other""#)).unwrap();
    let rejection = verifier().verify_at(&t, NOW).unwrap_err();
    assert_eq!(rejection.issuer(), Some(ISS));
    let rejection = verifier().verify_at("x.y", NOW).unwrap_err();
    assert_eq!(rejection.issuer(), None);
}

#[test]
fn allow_any_audience_accepts_tokens_with_or_without_aud() {
    let issuer = JwtIssuer::new(ISS, JwksSource::from_jwks(&idp_jwks()).unwrap())
        .unwrap()
        .allow_any_audience();
    let v = JwtVerifier::new([issuer]).unwrap();
    let k = keys();
    assert!(
        v.verify_at(&k.ec.sign(&claims(r#""aud":"zzz""#)).unwrap(), NOW)
            .is_ok()
    );
    let no_aud = format!(r#"{{"iss":"{ISS}","sub":"u","exp":{}}}"#, NOW + 9);
    assert!(v.verify_at(&k.ec.sign(&no_aud).unwrap(), NOW).is_ok());
}

#[test]
fn clock_skew_edges_of_exp_and_nbf() {
    let v = verifier();
    let k = keys();
    let at = |extra: String| reason_or_ok(&v, &k.ed.sign(&claims(&extra)).unwrap());
    // Default skew 60 s: valid while now < exp + 60.
    assert_eq!(at(format!(r#""exp":{}"#, NOW - 59)), None);
    assert_eq!(
        at(format!(r#""exp":{}"#, NOW - 60)),
        Some(TokenError::Expired {
            exp: NOW - 60,
            now: NOW
        })
    );
    // nbf: valid once now + 60 >= nbf.
    assert_eq!(at(format!(r#""nbf":{}"#, NOW + 60)), None);
    assert_eq!(
        at(format!(r#""nbf":{}"#, NOW + 61)),
        Some(TokenError::NotYetValid {
            nbf: NOW + 61,
            now: NOW
        })
    );
    // Fractional NumericDates (RFC 7519 §2).
    assert_eq!(at(format!(r#""exp":{}.5"#, NOW - 60)), None);
    assert!(at(format!(r#""exp":{}.5"#, NOW - 61)).is_some());

    let strict = JwtVerifier::new([idp_issuer().clock_skew(Duration::ZERO)]).unwrap();
    let t = |exp: i64| k.ed.sign(&claims(&format!(r#""exp":{exp}"#))).unwrap();
    assert!(strict.verify_at(&t(NOW + 1), NOW).is_ok());
    assert!(matches!(
        reason(&strict, &t(NOW)),
        TokenError::Expired { .. }
    ));
}

fn reason_or_ok(v: &JwtVerifier, token: &str) -> Option<TokenError> {
    v.verify_at(token, NOW).err().map(|e| e.reason().clone())
}

#[test]
fn exp_and_sub_are_required_and_typed() {
    let v = verifier();
    let k = keys();
    let no_exp = format!(r#"{{"iss":"{ISS}","sub":"u","aud":"{AUD}"}}"#);
    assert_eq!(
        reason(&v, &k.ec.sign(&no_exp).unwrap()),
        TokenError::MissingClaim("exp")
    );
    let t = k.ec.sign(&claims(r#""exp":"tomorrow""#)).unwrap();
    assert_eq!(reason(&v, &t), TokenError::InvalidClaim("exp"));
    let t = k.ec.sign(&claims(r#""nbf":null"#)).unwrap();
    assert_eq!(reason(&v, &t), TokenError::InvalidClaim("nbf"));
    let no_sub = format!(r#"{{"iss":"{ISS}","aud":"{AUD}","exp":{}}}"#, NOW + 9);
    assert_eq!(
        reason(&v, &k.ec.sign(&no_sub).unwrap()),
        TokenError::MissingClaim("sub")
    );
    let t = k.ec.sign(&claims(r#""sub":42"#)).unwrap();
    assert_eq!(reason(&v, &t), TokenError::InvalidClaim("sub"));
}

fn b64(s: &str) -> String {
    URL_SAFE_NO_PAD.encode(s)
}

#[test]
fn rejects_unsigned_and_hmac_tokens() {
    let v = verifier();
    let payload = b64(&claims(""));
    for none in ["none", "None", "NONE"] {
        let t = format!("{}.{payload}.", b64(&format!(r#"{{"alg":"{none}"}}"#)));
        assert_eq!(reason(&v, &t), TokenError::AlgNone);
        let t = format!("{}.{payload}.c2ln", b64(&format!(r#"{{"alg":"{none}"}}"#)));
        assert_eq!(reason(&v, &t), TokenError::AlgNone);
    }
    // The key-confusion attack: HS256 keyed with the issuer's public RSA key material.
    let jwk: serde_json::Value = serde_json::from_str(&keys().rsa.jwk()).unwrap();
    let secret = jwk["n"].as_str().unwrap().as_bytes().to_vec();
    let header = jsonwebtoken::Header {
        kid: Some("rsa-1".into()),
        ..jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256)
    };
    let claims_value: serde_json::Value = serde_json::from_str(&claims("")).unwrap();
    let t = jsonwebtoken::encode(
        &header,
        &claims_value,
        &jsonwebtoken::EncodingKey::from_secret(&secret),
    )
    .unwrap();
    assert_eq!(reason(&v, &t), TokenError::Hmac("HS256".into()));
}

#[test]
fn algorithm_must_fit_the_key_type_and_declared_alg() {
    let v = verifier();
    let k = keys();
    // The RSA key declares RS256: a PS256 signature by the same key is refused.
    let header = r#"{"alg":"PS256","kid":"rsa-1"}"#;
    let t = k.ps.sign_raw(header, &claims("")).unwrap();
    assert_eq!(reason(&v, &t), TokenError::NoKeyForAlg("PS256".into()));
    // An EC key asked to verify RS256.
    let t = k
        .rsa
        .sign_raw(r#"{"alg":"RS256","kid":"ec-1"}"#, &claims(""))
        .unwrap();
    assert_eq!(reason(&v, &t), TokenError::NoKeyForAlg("RS256".into()));
    // A P-256 key for ES384.
    let t = k
        .ec384
        .sign_raw(r#"{"alg":"ES384","kid":"ec-1"}"#, &claims(""))
        .unwrap();
    assert_eq!(reason(&v, &t), TokenError::NoKeyForAlg("ES384".into()));
    let t = format!("{}.{}.c2ln", b64(r#"{"alg":"RS1"}"#), b64(&claims("")));
    assert_eq!(reason(&v, &t), TokenError::UnsupportedAlg("RS1".into()));
}

#[test]
fn rejects_unknown_kid() {
    let t = keys()
        .ec
        .sign_raw(r#"{"alg":"ES256","kid":"gone"}"#, &claims(""))
        .unwrap();
    assert_eq!(
        reason(&verifier(), &t),
        TokenError::UnknownKid("gone".into())
    );
}

#[test]
fn rejects_critical_headers() {
    let h = r#"{"alg":"ES256","kid":"ec-1","crit":["b64"],"b64":false}"#;
    let t = keys().ec.sign_raw(h, &claims("")).unwrap();
    assert_eq!(reason(&verifier(), &t), TokenError::CriticalHeader);
}

#[test]
fn rejects_malformed_tokens() {
    let v = verifier();
    let good = keys().ec.sign(&claims("")).unwrap();
    let p: Vec<&str> = good.split('.').collect();
    let cases = [
        String::new(),
        "abc".into(),
        "a.b".into(),
        format!("{good}.extra"),
        format!(".{}.{}", p[1], p[2]),
        format!("{}..{}", p[0], p[2]),
        format!("{}.{}.", p[0], p[1]),
        format!("{}=.{}.{}", p[0], p[1], p[2]),
        format!("{}.{}.{}", b64("not json"), p[1], p[2]),
        format!("{}.{}.{}", b64(r#"{"alg":5}"#), p[1], p[2]),
        format!("{}.{}.{}", b64(r#"{"kid":"ec-1"}"#), p[1], p[2]),
        format!(
            "{}.{}.{}",
            b64(r#"{"alg":"ES256","alg":"ES256"}"#),
            p[1],
            p[2]
        ),
        format!("{}.{}.{}", p[0], b64("[1,2]"), p[2]),
        format!("{}.{}.{}", p[0], b64("{"), p[2]),
        format!("{}.{}.{}", p[0], "%%%", p[2]),
    ];
    for t in &cases {
        let r = reason(&v, t);
        assert!(matches!(r, TokenError::Malformed(_)), "{t:?}: {r:?}");
    }
    let long = format!("{}.{}.{}", p[0], "A".repeat(40_000), p[2]);
    assert_eq!(reason(&v, &long), TokenError::TooLong(long.len()));
}

#[test]
fn jwt_svid_is_verified_against_its_trust_domain_bundle() {
    let v = verifier();
    let k = keys();
    for key in [&k.svid_ec, &k.svid_rsa] {
        let ok = v
            .verify_at(&key.sign(&svid_claims("")).unwrap(), NOW)
            .unwrap();
        let id = ok.principal().spiffe_id().expect("a JWT-SVID");
        assert_eq!(id.as_str(), "spiffe://example.org/ns/frontend/sa/web");
        assert_eq!(ok.principal().as_str(), id.as_str());
    }
    // With an issuer the principal is iss/sub, as Istio writes it.
    let t = k
        .svid_ec
        .sign(&svid_claims(r#""iss":"https://oidc.example.org""#))
        .unwrap();
    let ok = v.verify_at(&t, NOW).unwrap();
    assert_eq!(
        ok.principal().as_str(),
        "https://oidc.example.org/spiffe://example.org/ns/frontend/sa/web"
    );
}

#[test]
fn jwt_svid_rules() {
    let v = verifier();
    let k = keys();
    let exp = NOW + 300;
    let sub = "spiffe://example.org/ns/frontend/sa/web";
    let no_aud = format!(r#"{{"sub":"{sub}","exp":{exp}}}"#);
    assert_eq!(
        reason(&v, &k.svid_ec.sign(&no_aud).unwrap()),
        TokenError::MissingClaim("aud")
    );
    let no_exp = format!(r#"{{"sub":"{sub}","aud":"{SVID_AUD}"}}"#);
    assert_eq!(
        reason(&v, &k.svid_ec.sign(&no_exp).unwrap()),
        TokenError::MissingClaim("exp")
    );
    let t = k
        .svid_ec
        .sign(&svid_claims(r#""aud":"spiffe://example.org/other""#))
        .unwrap();
    assert!(matches!(reason(&v, &t), TokenError::WrongAudience(_)));
    for typ in ["JWT", "JOSE"] {
        let h = format!(r#"{{"alg":"ES256","kid":"svid-ec","typ":"{typ}"}}"#);
        assert!(
            v.verify_at(&k.svid_ec.sign_raw(&h, &svid_claims("")).unwrap(), NOW)
                .is_ok()
        );
    }
    let h = r#"{"alg":"ES256","kid":"svid-ec","typ":"at+jwt"}"#;
    let t = k.svid_ec.sign_raw(h, &svid_claims("")).unwrap();
    assert_eq!(reason(&v, &t), TokenError::BadType("at+jwt".into()));
    // EdDSA is not a JWT-SVID algorithm, even with an Ed25519 key in the bundle.
    let t = k.svid_ed.sign(&svid_claims("")).unwrap();
    assert_eq!(reason(&v, &t), TokenError::UnsupportedAlg("EdDSA".into()));
    // `sub` must be a workload ID: the trust domain's own ID names no workload.
    for sub in [
        "spiffe://example.org",
        "spiffe://example.org/",
        "spiffe://example.org/a//b",
    ] {
        let t = k
            .svid_ec
            .sign(&svid_claims(&format!(r#""sub":"{sub}""#)))
            .unwrap();
        assert_eq!(reason(&v, &t), TokenError::InvalidClaim("sub"), "{sub}");
    }
    // Another trust domain has no bundle here.
    let t = k
        .svid_ec
        .sign(&svid_claims(r#""sub":"spiffe://other.org/ns/a/sa/b""#))
        .unwrap();
    assert_eq!(
        reason(&v, &t),
        TokenError::UnknownTrustDomain("other.org".into())
    );
}

#[test]
fn idp_cannot_mint_jwt_svids_of_a_configured_trust_domain() {
    let v = verifier();
    let k = keys();
    // The IdP's key signs a token claiming a workload identity of example.org: it is
    // routed to example.org's bundle, which does not hold that key.
    let t = k.ec.sign(&claims(r#""sub":"spiffe://example.org/ns/db/sa/admin","aud":"spiffe://example.org/ns/backend/sa/api""#)).unwrap();
    assert_eq!(reason(&v, &t), TokenError::UnknownKid("ec-1".into()));
    let t = k.ec.sign_raw(r#"{"alg":"ES256"}"#, &claims(r#""sub":"spiffe://example.org/ns/db/sa/admin","aud":"spiffe://example.org/ns/backend/sa/api""#)).unwrap();
    assert_eq!(reason(&v, &t), TokenError::BadSignature);
    // A SPIFFE-looking sub of an unconfigured trust domain is just an IdP subject.
    let t =
        k.ec.sign(&claims(r#""sub":"spiffe://other.org/x""#))
            .unwrap();
    let ok = v.verify_at(&t, NOW).unwrap();
    assert_eq!(
        ok.principal().as_str(),
        "https://idp.test/spiffe://other.org/x"
    );
    assert!(ok.principal().spiffe_id().is_none());
}

#[test]
fn configuration_errors() {
    let keys = || JwksSource::from_jwks(r#"{"keys":[]}"#).unwrap();
    assert_eq!(JwtVerifier::new([]).unwrap_err(), JwtConfigError::NoIssuer);
    assert!(matches!(
        JwtIssuer::new("", keys()),
        Err(JwtConfigError::BadIssuer(_))
    ));
    assert!(matches!(
        JwtIssuer::new("spiffe://example.org", keys()),
        Err(JwtConfigError::BadIssuer(_))
    ));
    let no_aud = JwtIssuer::new(ISS, keys()).unwrap();
    assert_eq!(
        JwtVerifier::new([no_aud]).unwrap_err(),
        JwtConfigError::NoAudience(ISS.into())
    );
    // A JWT-SVID's audience is always checked: no audience, or any audience even
    // alongside one, is refused.
    let svid = || JwtIssuer::jwt_svid(TD.parse().unwrap(), keys());
    for issuer in [
        svid(),
        svid().allow_any_audience(),
        svid().audience(SVID_AUD).allow_any_audience(),
    ] {
        assert_eq!(
            JwtVerifier::new([issuer]).unwrap_err(),
            JwtConfigError::JwtSvidAudience(TD.into())
        );
    }
    let a = JwtIssuer::new(ISS, keys()).unwrap().audience("x");
    assert_eq!(
        JwtVerifier::new([a.clone(), a]).unwrap_err(),
        JwtConfigError::DuplicateIssuer(ISS.into())
    );
    assert!(matches!(
        JwtIssuer::new(ISS, keys())
            .unwrap()
            .token_from_header("bad header", ""),
        Err(JwtConfigError::BadHeaderName(_))
    ));
    assert!(matches!(
        JwtIssuer::new(ISS, keys())
            .unwrap()
            .token_from_cookie("a=b"),
        Err(JwtConfigError::BadCookieName(_))
    ));
}

#[test]
fn jwks_parsing_keeps_only_usable_asymmetric_keys() {
    let k = keys();
    let doc = format!(
        r#"{{"keys":[{},{{"kty":"oct","k":"c2VjcmV0","kid":"hmac"}},
            {{"kty":"RSA","use":"enc","n":"AQAB","e":"AQAB"}},
            {{"kty":"EC","crv":"P-521","x":"AA","y":"AA"}}]}}"#,
        k.ec.jwk()
    );
    let jwks = Jwks::from_json(&doc).unwrap();
    assert_eq!(jwks.len(), 1);
    assert_eq!(jwks.find("ec-1").len(), 1);
    assert!(jwks.find("hmac").is_empty());
    assert!(matches!(
        Jwks::from_json(r#"{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}"#),
        Err(JwksError::NoUsableKeys(1))
    ));
    // 1024-bit RSA.
    let weak = format!(
        r#"{{"keys":[{{"kty":"RSA","kid":"w","n":"{}","e":"AQAB"}}]}}"#,
        b64(&"x".repeat(128))
    );
    assert!(matches!(Jwks::from_json(&weak), Err(JwksError::Key { .. })));
    let bad_ec = r#"{"keys":[{"kty":"EC","crv":"P-256","kid":"e","x":"AAAA","y":"AAAA"}]}"#;
    assert!(matches!(
        Jwks::from_json(bad_ec),
        Err(JwksError::Key { .. })
    ));
    assert!(matches!(
        Jwks::from_json(r#"{"nokeys":[]}"#),
        Err(JwksError::Json(_))
    ));
    assert!(matches!(Jwks::from_json("[]"), Err(JwksError::Json(_))));
    assert!(Jwks::from_json(r#"{"keys":[]}"#).unwrap().is_empty());
}

#[test]
fn spiffe_bundle_keeps_jwt_svid_keys_and_requires_kid() {
    let k = keys();
    let x509 = r#"{"kty":"EC","use":"x509-svid","crv":"P-256","x":"AA","y":"AA","x5c":["AA"]}"#;
    let doc = format!(
        r#"{{"spiffe_sequence":7,"keys":[{x509},{},{}]}}"#,
        k.svid_ec.jwt_svid_jwk(),
        k.ec.jwk()
    );
    let jwks = Jwks::from_spiffe_bundle(&doc).unwrap();
    assert_eq!(jwks.len(), 1, "only the jwt-svid key");
    assert_eq!(jwks.spiffe_sequence(), Some(7));
    let only_x509 = format!(r#"{{"keys":[{x509}]}}"#);
    assert!(Jwks::from_spiffe_bundle(&only_x509).unwrap().is_empty());
    let mut no_kid: serde_json::Value = serde_json::from_str(&k.svid_ec.jwt_svid_jwk()).unwrap();
    no_kid.as_object_mut().unwrap().remove("kid");
    let doc = format!(r#"{{"keys":[{no_kid}]}}"#);
    assert_eq!(
        Jwks::from_spiffe_bundle(&doc).unwrap_err(),
        JwksError::MissingKid(0)
    );
}

#[test]
fn duplicate_kids_are_all_tried() {
    let k = keys();
    let jwks = TestJwtKey::jwks(&[&k.rogue_rsa, &k.rsa]);
    let issuer = JwtIssuer::new(ISS, JwksSource::from_jwks(&jwks).unwrap())
        .unwrap()
        .audience(AUD);
    let v = JwtVerifier::new([issuer]).unwrap();
    assert!(v.verify_at(&k.rsa.sign(&claims("")).unwrap(), NOW).is_ok());
    assert!(
        v.verify_at(&k.rogue_rsa.sign(&claims("")).unwrap(), NOW)
            .is_ok()
    );
}

struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("meshless-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Writes `path` atomically, the way Kubernetes and cert tooling do.
fn write_atomic(path: &std::path::Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[test]
fn key_rotation_in_a_jwks_file_keeps_last_good_keys() {
    let dir = TempDir::new("jwks-rotation");
    let path = dir.0.join("jwks.json");
    let k = keys();
    write_atomic(&path, &TestJwtKey::jwks(&[&k.rsa]));
    // A long poll: this test drives reloads itself.
    let source = JwksSource::watch_jwks_file(&path, Duration::from_secs(3600)).unwrap();
    let v = JwtVerifier::new([JwtIssuer::new(ISS, source.clone()).unwrap().audience(AUD)]).unwrap();
    let old = k.rsa.sign(&claims("")).unwrap();
    let new = k.ec.sign(&claims("")).unwrap();
    assert!(v.verify_at(&old, NOW).is_ok());
    assert_eq!(reason(&v, &new), TokenError::UnknownKid("ec-1".into()));
    assert_eq!(source.reload(), Ok(false), "unchanged file");

    // Rotation with overlap, then retirement of the old key.
    write_atomic(&path, &TestJwtKey::jwks(&[&k.rsa, &k.ec]));
    assert_eq!(source.reload(), Ok(true));
    assert!(v.verify_at(&old, NOW).is_ok() && v.verify_at(&new, NOW).is_ok());
    write_atomic(&path, &TestJwtKey::jwks(&[&k.ec]));
    assert_eq!(source.reload(), Ok(true));
    assert_eq!(reason(&v, &old), TokenError::UnknownKid("rsa-1".into()));
    assert!(v.verify_at(&new, NOW).is_ok());

    // A broken file keeps the last good keys and reports why.
    write_atomic(&path, "{\"keys\": [");
    assert!(matches!(source.reload(), Err(JwksError::Json(_))));
    assert!(matches!(source.last_error(), Some(JwksError::Json(_))));
    assert!(v.verify_at(&new, NOW).is_ok());
    std::fs::remove_file(&path).unwrap();
    assert!(matches!(source.reload(), Err(JwksError::Io { .. })));
    assert!(v.verify_at(&new, NOW).is_ok());
    write_atomic(&path, &TestJwtKey::jwks(&[&k.ed]));
    assert_eq!(source.reload(), Ok(true));
    assert!(source.last_error().is_none());
    assert!(v.verify_at(&k.ed.sign(&claims("")).unwrap(), NOW).is_ok());
}

#[test]
fn watcher_picks_up_a_symlink_swapped_bundle() {
    // The layout of a Kubernetes ConfigMap volume: bundle.json -> ..data/bundle.json,
    // ..data -> a timestamped directory, swapped by renaming a new symlink over it.
    let dir = TempDir::new("jwks-watch");
    let k = keys();
    let v1 = dir.0.join("..v1");
    let v2 = dir.0.join("..v2");
    std::fs::create_dir(&v1).unwrap();
    std::fs::create_dir(&v2).unwrap();
    std::fs::write(
        v1.join("bundle.json"),
        TestJwtKey::spiffe_bundle(&[&k.svid_ec]),
    )
    .unwrap();
    std::fs::write(
        v2.join("bundle.json"),
        TestJwtKey::spiffe_bundle(&[&k.svid_rsa]),
    )
    .unwrap();
    std::os::unix::fs::symlink("..v1", dir.0.join("..data")).unwrap();
    std::os::unix::fs::symlink("..data/bundle.json", dir.0.join("bundle.json")).unwrap();

    let source =
        JwksSource::watch_spiffe_bundle_file(dir.0.join("bundle.json"), Duration::from_millis(20))
            .unwrap();
    assert_eq!(source.keys().find("svid-ec").len(), 1);
    std::os::unix::fs::symlink("..v2", dir.0.join("..data_tmp")).unwrap();
    std::fs::rename(dir.0.join("..data_tmp"), dir.0.join("..data")).unwrap();
    // Bounded wait for the background poller; no assertion on how fast it is.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while source.keys().find("svid-rsa").is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "watcher never reloaded"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(source.keys().find("svid-ec").is_empty());
    assert!(source.last_error().is_none());
}

#[test]
fn a_source_never_starts_without_keys() {
    let dir = TempDir::new("jwks-missing");
    assert!(matches!(
        JwksSource::watch_jwks_file(dir.0.join("nope.json"), Duration::from_secs(60)),
        Err(JwksError::Io { .. })
    ));
    std::fs::write(dir.0.join("bad.json"), "{}").unwrap();
    assert!(matches!(
        JwksSource::watch_jwks_file(dir.0.join("bad.json"), Duration::from_secs(60)),
        Err(JwksError::Json(_))
    ));
}

#[test]
fn keys_without_kid_are_tried_for_tokens_with_kid() {
    // A single-key JWKS often omits kid; the token's kid then selects nothing by name.
    let k = keys();
    let mut jwk: serde_json::Value = serde_json::from_str(&k.ec.jwk()).unwrap();
    jwk.as_object_mut().unwrap().remove("kid");
    let jwks = format!(r#"{{"keys":[{jwk}]}}"#);
    let issuer = JwtIssuer::new(ISS, JwksSource::from_jwks(&jwks).unwrap())
        .unwrap()
        .audience(AUD);
    let v = JwtVerifier::new([issuer]).unwrap();
    assert!(v.verify_at(&k.ec.sign(&claims("")).unwrap(), NOW).is_ok());
    // Still only with the right key material.
    let other = TestJwtKey::generate("ec-1", "ES256").unwrap();
    assert_eq!(
        reason(&v, &other.sign(&claims("")).unwrap()),
        TokenError::BadSignature
    );
}

#[test]
fn an_issuer_less_rule_accepts_any_issuer_signed_by_its_keys_after_the_named_ones() {
    // Istio: "Either the issuer claim or a JWKSUri is required ... the issuer claim may
    // be dynamic": a jwtRule with only a jwksUri accepts tokens of any issuer signed by
    // its keys.
    let k = keys();
    let dynamic = JwksSource::from_jwks(&TestJwtKey::jwks(&[&k.rsa])).unwrap();
    let v = JwtVerifier::new([idp_issuer(), JwtIssuer::any_issuer(dynamic).audience(AUD)]).unwrap();
    // Any `iss` no named issuer claims, signed by the issuer-less rule's key: its own
    // `iss/sub` is the principal.
    let t = k
        .rsa
        .sign(&claims(r#""iss":"https://tenant-7.idp.test""#))
        .unwrap();
    let verified = v.verify_at(&t, NOW).unwrap();
    assert_eq!(
        verified.principal().as_str(),
        "https://tenant-7.idp.test/user-1"
    );
    // Signed by a key the issuer-less rule does not hold: refused.
    let t =
        k.ec.sign(&claims(r#""iss":"https://tenant-7.idp.test""#))
            .unwrap();
    assert!(v.verify_at(&t, NOW).is_err());
    // A named issuer keeps its own keys: its `iss` is never checked against the
    // issuer-less rule's.
    let t = k.ec.sign(&claims("")).unwrap();
    assert_eq!(
        v.verify_at(&t, NOW).unwrap().principal().as_str(),
        format!("{ISS}/user-1")
    );
    // The principal needs an `iss`; and the audience is still checked.
    let t = k
        .rsa
        .sign(&format!(r#"{{"sub":"u","aud":"{AUD}","exp":{}}}"#, NOW + 9))
        .unwrap();
    assert_eq!(reason(&v, &t), TokenError::MissingClaim("iss"));
    let t = k
        .rsa
        .sign(&claims(r#""iss":"https://x.test","aud":"other""#))
        .unwrap();
    assert_eq!(reason(&v, &t), TokenError::WrongAudience("other".into()));
    // One issuer-less rule per verifier.
    let two = [
        JwtIssuer::any_issuer(JwksSource::from_jwks(&idp_jwks()).unwrap()).audience(AUD),
        JwtIssuer::any_issuer(JwksSource::from_jwks(&idp_jwks()).unwrap()).audience(AUD),
    ];
    assert!(matches!(
        JwtVerifier::new(two),
        Err(JwtConfigError::DuplicateIssuer(_))
    ));
}
