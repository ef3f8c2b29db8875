//! axum extractors for what the layers attach to a request.

use axum::extract::FromRequestParts;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use http::request::Parts;

use crate::PeerIdentity;
use crate::policy::Decision;

/// The authorization [`Decision`] that let the request in.
///
/// Extracting it fails closed (500) when no [`AuthorizeLayer`](super::AuthorizeLayer)
/// ran in front of the handler, so a handler that relies on authorization cannot be
/// reached around it by a routing mistake.
///
/// ```
/// use meshless::authorize::{Authorized, Peer};
/// async fn handler(Peer(peer): Peer, Authorized(decision): Authorized) -> String {
///     format!("hello {peer}, let in by `{}`", decision.rule())
/// }
/// let app: axum::Router = axum::Router::new().route("/", axum::routing::get(handler));
/// ```
#[derive(Debug, Clone)]
pub struct Authorized(pub Decision);

/// The peer's [`PeerIdentity`], as an extractor (equivalent to extracting
/// `PeerIdentity` itself). Fails closed (500) when the request carries none.
#[derive(Debug, Clone)]
pub struct Peer(pub PeerIdentity);

/// The rejection of [`Authorized`] when no authorization layer ran.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct NotAuthorized;

impl IntoResponse for NotAuthorized {
    fn into_response(self) -> Response {
        tracing::error!(
            target: "meshless::authorize",
            "handler wants an authorization Decision but no AuthorizeLayer ran: refusing"
        );
        StatusCode::INTERNAL_SERVER_ERROR.into_response()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Authorized {
    type Rejection = NotAuthorized;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Decision>()
            .filter(|d| d.is_allowed())
            .cloned()
            .map(Authorized)
            .ok_or(NotAuthorized)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = crate::MissingPeerIdentity;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        PeerIdentity::from_request_parts(parts, state)
            .await
            .map(Peer)
    }
}
