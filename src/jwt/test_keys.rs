//! Throwaway JWT signing keys for tests (features `jwt` + `testing`), re-exported as
//! `meshless::testing::TestJwtKey`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey};
use rcgen::{KeyPair, RsaKeySize};
use serde_json::Value;

/// Why a test key could not be made or used.
#[derive(Debug, thiserror::Error)]
#[error("test jwt key: {0}")]
pub struct TestJwtKeyError(String);

fn err(e: impl std::fmt::Display) -> TestJwtKeyError {
    TestJwtKeyError(e.to_string())
}

/// A signing key generated at test time, with its public JWK, that mints tokens —
/// including deliberately broken ones, through [`sign_raw`](Self::sign_raw).
///
/// ```
/// use meshless::testing::TestJwtKey;
/// let key = TestJwtKey::generate("k1", "ES256")?;
/// let jwks = TestJwtKey::jwks(&[&key]);
/// let token = key.sign(r#"{"iss":"https://idp.test","sub":"u1","aud":"api","exp":4102444800}"#)?;
/// assert_eq!(token.split('.').count(), 3);
/// # let _ = jwks;
/// # Ok::<(), meshless::testing::TestJwtKeyError>(())
/// ```
pub struct TestJwtKey {
    kid: String,
    alg: Algorithm,
    key: EncodingKey,
    jwk: Value,
}

impl TestJwtKey {
    /// A fresh key for `alg` (`RS256`/`RS384`/`RS512`/`PS256`/`PS384`/`PS512` make a
    /// 2048-bit RSA key, `ES256` a P-256 key, `ES384` a P-384 key, `EdDSA` an Ed25519
    /// key), known by `kid`.
    ///
    /// # Errors
    /// [`TestJwtKeyError`] for another algorithm, or when key generation fails.
    pub fn generate(kid: &str, alg: &str) -> Result<Self, TestJwtKeyError> {
        let alg: Algorithm = alg.parse().map_err(err)?;
        let mut ed_public = None;
        let key = match alg {
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512 => {
                let pair = KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, RsaKeySize::_2048)
                    .map_err(err)?;
                EncodingKey::from_rsa_pem(pair.serialize_pem().as_bytes()).map_err(err)?
            }
            Algorithm::ES256 | Algorithm::ES384 => {
                let curve = if alg == Algorithm::ES256 {
                    &rcgen::PKCS_ECDSA_P256_SHA256
                } else {
                    &rcgen::PKCS_ECDSA_P384_SHA384
                };
                let pair = KeyPair::generate_for(curve).map_err(err)?;
                EncodingKey::from_ec_pem(pair.serialize_pem().as_bytes()).map_err(err)?
            }
            Algorithm::EdDSA => {
                let pair = KeyPair::generate_for(&rcgen::PKCS_ED25519).map_err(err)?;
                ed_public = Some(URL_SAFE_NO_PAD.encode(pair.public_key_raw()));
                EncodingKey::from_ed_pem(pair.serialize_pem().as_bytes()).map_err(err)?
            }
            other => return Err(err(format!("`{other:?}` is not an asymmetric algorithm"))),
        };
        // jsonwebtoken derives public JWKs from PKCS#8 v1 Ed25519 keys only; rcgen
        // writes v2, so the Ed25519 JWK is written from the raw public key.
        let mut jwk = match ed_public {
            Some(x) => serde_json::json!({"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "x": x}),
            None => serde_json::to_value(Jwk::from_encoding_key(&key, alg).map_err(err)?)
                .map_err(err)?,
        };
        if let Value::Object(map) = &mut jwk {
            map.insert("kid".into(), Value::String(kid.into()));
        }
        Ok(Self {
            kid: kid.into(),
            alg,
            key,
            jwk,
        })
    }

    /// The key's `kid`.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public JWK (with `kid` and `alg`), as JSON.
    pub fn jwk(&self) -> String {
        self.jwk.to_string()
    }

    /// The public JWK as a SPIFFE bundle `jwt-svid` entry (`use: "jwt-svid"`).
    pub fn jwt_svid_jwk(&self) -> String {
        let mut jwk = self.jwk.clone();
        if let Value::Object(map) = &mut jwk {
            map.insert("use".into(), Value::String("jwt-svid".into()));
        }
        jwk.to_string()
    }

    /// A JWKS document of `keys`.
    pub fn jwks(keys: &[&TestJwtKey]) -> String {
        let keys: Vec<String> = keys.iter().map(|k| k.jwk()).collect();
        format!(r#"{{"keys":[{}]}}"#, keys.join(","))
    }

    /// A SPIFFE bundle document holding `keys` as `jwt-svid` keys.
    pub fn spiffe_bundle(keys: &[&TestJwtKey]) -> String {
        let keys: Vec<String> = keys.iter().map(|k| k.jwt_svid_jwk()).collect();
        format!(r#"{{"spiffe_sequence":1,"keys":[{}]}}"#, keys.join(","))
    }

    /// A token with header `{"alg": <alg>, "typ": "JWT", "kid": <kid>}` and `claims`
    /// (JSON text, used as given).
    ///
    /// # Errors
    /// [`TestJwtKeyError`] when signing fails.
    pub fn sign(&self, claims: &str) -> Result<String, TestJwtKeyError> {
        let header = format!(
            r#"{{"alg":"{:?}","typ":"JWT","kid":"{}"}}"#,
            self.alg, self.kid
        );
        self.sign_raw(&header, claims)
    }

    /// A token of exactly this header and claims text, signed with this key and its
    /// algorithm whatever the header says (for tokens that lie about their `alg`,
    /// `kid`, `typ` or `crit`).
    ///
    /// # Errors
    /// [`TestJwtKeyError`] when signing fails.
    pub fn sign_raw(&self, header: &str, claims: &str) -> Result<String, TestJwtKeyError> {
        let message = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(claims)
        );
        let sig =
            jsonwebtoken::crypto::sign(message.as_bytes(), &self.key, self.alg).map_err(err)?;
        Ok(format!("{message}.{sig}"))
    }
}

impl std::fmt::Debug for TestJwtKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestJwtKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish()
    }
}
