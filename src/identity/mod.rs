//! Workload identity: SPIFFE IDs, Linkerd DNS identities, the X.509-SVID rules, and
//! the [`PeerIdentity`] a request carries.
//!
//! Everything here is pure — bytes and strings in, values out, no sockets and no rustls
//! state — so it can be fuzzed and property-tested on its own.

mod linkerd;
mod peer;
mod spiffe_id;
pub mod svid;

pub use linkerd::{LinkerdId, LinkerdIdError};
pub use peer::{Identity, PeerIdentity, Unauthenticated};
pub use spiffe_id::{IdError, MAX_ID_LEN, MAX_TRUST_DOMAIN_LEN, SpiffeId, TrustDomain};
pub use svid::SvidError;
