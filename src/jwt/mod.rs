//! End-user identity: JWT request authentication (Istio's `RequestAuthentication`)
//! and JWT-SVIDs.
//!
//! [`RequestPrincipal`] and [`Claims`] are what authorization policy consumes; they are
//! always available. The layer that verifies tokens and inserts them into request
//! extensions ([`JwtLayer`], [`JwtVerifier`], [`JwtIssuer`], [`JwksSource`]) needs
//! feature `jwt` (signatures are checked by `jsonwebtoken` on aws-lc-rs).
//!
//! ```
//! # #[cfg(feature = "jwt")] {
//! use std::time::Duration;
//! use meshless::jwt::{JwksSource, JwtIssuer, JwtLayer};
//! # let dir = std::env::temp_dir().join(format!("meshless-jwt-doc-{}", std::process::id()));
//! # std::fs::create_dir_all(&dir)?;
//! # std::fs::write(dir.join("jwks.json"), r#"{"keys": []}"#)?;
//! # std::fs::write(dir.join("bundle.json"), r#"{"keys": []}"#)?;
//! let idp = JwksSource::watch_jwks_file(dir.join("jwks.json"), Duration::from_secs(30))?;
//! let bundle = JwksSource::watch_spiffe_bundle_file(dir.join("bundle.json"), Duration::from_secs(30))?;
//! let layer = JwtLayer::new([
//!     JwtIssuer::new("https://accounts.example.com", idp)?.audience("orders"),
//!     JwtIssuer::jwt_svid("example.org".parse()?, bundle).audience("spiffe://example.org/orders"),
//! ])?;
//! # let _ = layer;
//! # }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod claims;
mod principal;

pub use claims::{ClaimStrings, Claims, ClaimsError};
pub use principal::RequestPrincipal;

#[cfg(feature = "jwt")]
mod checks;
#[cfg(feature = "jwt")]
mod error;
#[cfg(feature = "jwt")]
mod extract;
#[cfg(feature = "jwt-https")]
mod https_source;
#[cfg(feature = "jwt")]
mod issuer;
#[cfg(feature = "jwt")]
mod jwks;
#[cfg(feature = "jwt")]
mod layer;
#[cfg(feature = "jwt-https")]
mod remote;
#[cfg(feature = "jwt")]
mod source;
#[cfg(all(feature = "jwt", feature = "testing"))]
pub(crate) mod test_keys;
#[cfg(feature = "jwt")]
mod verifier;

#[cfg(feature = "jwt")]
pub use error::{JwksError, JwtConfigError, TokenError};
#[cfg(feature = "jwt")]
pub use issuer::{DEFAULT_CLOCK_SKEW, JwtIssuer};
#[cfg(feature = "jwt")]
pub use jwks::{Jwks, JwtKey};
#[cfg(feature = "jwt")]
pub use layer::{Jwt, JwtLayer, ResponseFuture};
#[cfg(feature = "jwt")]
pub use source::JwksSource;
#[cfg(feature = "jwt")]
pub use verifier::{JwtRejection, JwtVerifier, MAX_TOKEN_LEN, VerifiedToken};
