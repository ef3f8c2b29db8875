//! Enforcement: tower layers that check every request (and every TCP connection)
//! against the policy, in-process.
//!
//! - [`AuthorizeLayer`] / [`Authorize`]: HTTP and gRPC authorization, answering 403,
//!   gRPC `PERMISSION_DENIED`, 404 for unmatched routes of route-scoped policies, and
//!   400 for ambiguous paths; see its docs for the exact steps.
//! - [`ConnectionAuthorizer`]: L4 authorization for opaque TCP.
//! - axum extractors [`Peer`] and [`Authorized`] (feature `axum`).
//!
//! The layer reads the [`PeerIdentity`] that
//! [`serve`](crate::serve) or the axum [`MtlsListener`](crate::MtlsListener) attaches
//! to each request; without one it refuses the request (fail closed).

mod ambiguity;
#[cfg(feature = "axum")]
mod axum;
mod body;
mod deny;
mod future;
mod headers;
mod layer;
mod tcp;

pub(crate) use self::headers::IdentityHeaders;

#[cfg(feature = "axum")]
pub use self::axum::{Authorized, NotAuthorized, Peer};
pub use body::AuthzBody;
pub use deny::{DefaultDeny, Denial, DenyKind, OnDeny};
pub use future::ResponseFuture;
pub use headers::{L5D_CLIENT_ID, X_FORWARDED_CLIENT_CERT};
pub use layer::{Authorize, AuthorizeLayer};
pub use tcp::ConnectionAuthorizer;

use std::sync::Arc;

use crate::PeerIdentity;
use crate::policy::{Decision, Policy, RequestAttrs};

/// Evaluates `attrs` with the identity-dependent half of `policy` resolved once per
/// connection: cached on the connection's `PeerIdentity`, re-resolved after a reload.
pub(crate) fn evaluate(policy: &Policy, peer: &PeerIdentity, attrs: &RequestAttrs<'_>) -> Decision {
    let cache = peer.policy_cache();
    if let Some(rules) = &*cache.load()
        && rules.is_for(policy)
    {
        return rules.evaluate(policy, attrs);
    }
    let rules = Arc::new(policy.for_connection(peer));
    let decision = rules.evaluate(policy, attrs);
    cache.store(Some(rules));
    decision
}

/// The peer identity attached to a request: by `meshless::serve` as an extension, or by
/// the axum listener as `ConnectInfo`.
pub(crate) fn peer_of(extensions: &http::Extensions) -> Option<&PeerIdentity> {
    let direct = extensions.get::<PeerIdentity>();
    #[cfg(feature = "axum")]
    let direct = direct.or_else(|| {
        extensions
            .get::<::axum::extract::ConnectInfo<PeerIdentity>>()
            .map(|info| &info.0)
    });
    direct
}
