#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod identity;
pub mod jwt;
#[cfg(feature = "testing")]
pub mod testing;

// The public surface, in one block.
pub use identity::svid;
pub use identity::{
    IdError, Identity, LinkerdId, LinkerdIdError, MAX_ID_LEN, MAX_TRUST_DOMAIN_LEN, PeerIdentity,
    SpiffeId, SvidError, TrustDomain, Unauthenticated,
};
pub use jwt::{Claims, ClaimsError, RequestPrincipal};
#[cfg(feature = "jwt")]
pub use jwt::{JwtIssuer, JwtLayer};
