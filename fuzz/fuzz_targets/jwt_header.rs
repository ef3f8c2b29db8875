//! Arbitrary tokens never panic and never authenticate.
//!
//! Two shapes of input: the bytes as a whole token (splitting, base64url, lengths), and
//! the bytes as the JSON *header* of a token whose payload is perfectly valid and whose
//! signature is real but made by a key the verifier does not trust — so only a flaw in
//! header handling (alg confusion, `none`, kid tricks, `crit`) could let it through.
#![no_main]

use std::sync::OnceLock;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use libfuzzer_sys::fuzz_target;
use meshless::jwt::{JwksSource, JwtIssuer, JwtVerifier};
use meshless::testing::TestJwtKey;

const NOW: i64 = 1_800_000_000;
const CLAIMS: &str = r#"{"iss":"https://idp.fuzz","sub":"spiffe://example.org/ns/a/sa/b","aud":["api","spiffe://example.org/api"],"exp":1900000000,"nbf":1700000000}"#;

struct Setup {
    verifier: JwtVerifier,
    /// Same kids and algorithms as the trusted keys, different key material.
    untrusted: Vec<TestJwtKey>,
}

fn setup() -> &'static Setup {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    SETUP.get_or_init(|| {
        let key_for = |alg: &str| TestJwtKey::generate(alg, alg).expect("test key");
        let trusted: Vec<TestJwtKey> = ["ES256", "RS256", "EdDSA"]
            .iter()
            .map(|a| key_for(a))
            .collect();
        let untrusted = ["ES256", "RS256", "EdDSA"]
            .iter()
            .map(|a| key_for(a))
            .collect();
        let refs: Vec<&TestJwtKey> = trusted.iter().collect();
        let idp = JwtIssuer::new(
            "https://idp.fuzz",
            JwksSource::from_jwks(&TestJwtKey::jwks(&refs)).unwrap(),
        )
        .unwrap()
        .audience("api");
        let svid = JwtIssuer::jwt_svid(
            "example.org".parse().unwrap(),
            JwksSource::from_spiffe_bundle(&TestJwtKey::spiffe_bundle(&refs)).unwrap(),
        )
        .audience("spiffe://example.org/api");
        Setup {
            verifier: JwtVerifier::new([idp, svid]).unwrap(),
            untrusted,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let s = setup();
    // 1. The whole input as a token.
    if let Ok(token) = std::str::from_utf8(data) {
        assert!(
            s.verifier.verify_at(token, NOW).is_err(),
            "arbitrary token authenticated"
        );
    }
    // 2. The input as the header of an otherwise valid token, signed by each untrusted key.
    if let (Some((&pick, header)), true) = (data.split_first(), data.len() < 4096) {
        let key = &s.untrusted[usize::from(pick) % s.untrusted.len()];
        if let Ok(header) = std::str::from_utf8(header) {
            let token = key.sign_raw(header, CLAIMS).expect("signing");
            assert!(
                s.verifier.verify_at(&token, NOW).is_err(),
                "untrusted key authenticated"
            );
        }
        // And as raw header bytes with an arbitrary signature part.
        let token = format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(CLAIMS),
            URL_SAFE_NO_PAD.encode(header)
        );
        assert!(s.verifier.verify_at(&token, NOW).is_err());
    }
});
