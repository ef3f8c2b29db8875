#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod audit;
pub mod authorize;
pub mod guide;
mod identity;
pub mod jwt;
pub mod metrics;
pub mod policy;
#[cfg(feature = "server")]
mod server;
#[cfg(feature = "testing")]
pub mod testing;
pub mod tls;

// The public surface, in one block.
pub use identity::svid;
pub use identity::{
    IdError, Identity, LinkerdId, LinkerdIdError, MAX_ID_LEN, MAX_TRUST_DOMAIN_LEN, PeerIdentity,
    SpiffeId, SvidError, TrustDomain, Unauthenticated,
};
pub use jwt::{Claims, ClaimsError, RequestPrincipal};
#[cfg(feature = "jwt")]
pub use jwt::{JwtIssuer, JwtLayer};
#[cfg(feature = "axum")]
pub use server::{BoundedStream, MissingPeerIdentity, MtlsListener, MtlsListenerBuilder};
#[cfg(feature = "server")]
pub use server::{Server, serve, serve_with_graceful_shutdown};
pub use tls::{MtlsAcceptor, MtlsConnector, TlsError};
