//! [`JwtLayer`] and the [`Jwt`] service: request authentication for tower.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::WWW_AUTHENTICATE;
use http::{HeaderValue, Request, Response, StatusCode};
use pin_project::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use super::extract::{self, Found};
use super::verifier::unix_now;
use super::{JwtConfigError, JwtIssuer, JwtRejection, JwtVerifier};

/// A tower layer that authenticates the end user of each request by a JWT, like
/// Istio's `RequestAuthentication`.
///
/// - A valid token puts its [`RequestPrincipal`](crate::RequestPrincipal) (`iss/sub`)
///   and [`Claims`](crate::Claims) into the request extensions, and is removed from the
///   request unless its issuer forwards it.
/// - A present but invalid token — bad signature, unknown issuer or `kid`, wrong
///   audience, expired, not yet valid, `alg: none`, HMAC, malformed, or more than one
///   token — is answered `401` with `WWW-Authenticate: Bearer error="invalid_token"`
///   and an empty body; the inner service is not called. The reason goes to a tracing
///   event on target `meshless::audit` (fields `decision="unauthenticated"`,
///   `reason`, `issuer`), never to the client.
/// - So is a credential the layer cannot read at a configured token location, which
///   is never passed on unverified: an `Authorization` value that is not exactly
///   `Bearer <token>` (another scheme such as `Basic`, no token, two spaces, a list),
///   a second `Authorization` header, a value of a custom token header without its
///   prefix, or a `Cookie` header that is not text when a cookie is read. The scheme
///   is matched case-insensitively (RFC 9110 §11.1); the token must be an RFC 6750
///   `b64token`, which every JWT is.
/// - No credential at any configured location: the request goes on without a
///   principal, and authorization policy decides (as in Istio: add a rule requiring
///   `request_principals` to demand one).
///
/// ```
/// use meshless::jwt::{JwksSource, JwtIssuer, JwtLayer};
/// let keys = JwksSource::from_jwks(r#"{"keys": []}"#)?;
/// let layer = JwtLayer::new([JwtIssuer::new("https://idp.example.com", keys)?.audience("api")])?;
/// let svc = tower::ServiceBuilder::new()
///     .layer(layer)
///     .service_fn(|req: http::Request<String>| async move {
///         let who = req.extensions().get::<meshless::RequestPrincipal>().map(|p| p.to_string());
///         Ok::<_, std::convert::Infallible>(http::Response::new(who.unwrap_or_default()))
///     });
/// # let _ = svc;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct JwtLayer {
    verifier: Arc<JwtVerifier>,
}

impl JwtLayer {
    /// A layer accepting tokens of `issuers`.
    ///
    /// # Errors
    /// [`JwtConfigError`] as for [`JwtVerifier::new`].
    pub fn new(issuers: impl IntoIterator<Item = JwtIssuer>) -> Result<Self, JwtConfigError> {
        Ok(Self::from_verifier(Arc::new(JwtVerifier::new(issuers)?)))
    }

    /// A layer around an existing verifier (shared with other layers or code).
    pub fn from_verifier(verifier: Arc<JwtVerifier>) -> Self {
        Self { verifier }
    }

    /// The verifier.
    pub fn verifier(&self) -> &Arc<JwtVerifier> {
        &self.verifier
    }
}

impl fmt::Debug for JwtLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtLayer")
            .field("issuers", &self.verifier)
            .finish()
    }
}

impl<S> Layer<S> for JwtLayer {
    type Service = Jwt<S>;

    fn layer(&self, inner: S) -> Jwt<S> {
        Jwt {
            inner,
            verifier: self.verifier.clone(),
        }
    }
}

/// The service [`JwtLayer`] wraps around an inner service.
#[derive(Clone)]
pub struct Jwt<S> {
    inner: S,
    verifier: Arc<JwtVerifier>,
}

impl<S> Jwt<S> {
    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: fmt::Debug> fmt::Debug for Jwt<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Jwt")
            .field("inner", &self.inner)
            .field("issuers", &self.verifier)
            .finish()
    }
}

impl<S, B, ResBody> Service<Request<B>> for Jwt<S>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
    ResBody: Default,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let v = &*self.verifier;
        let outcome = match extract::find(req.headers(), req.uri(), &v.locations) {
            Ok(Found::None) => None,
            Ok(Found::One(token, mask)) => {
                Some(v.verify_found(token, mask, unix_now()).map(|t| (t, mask)))
            }
            Err(reason) => Some(Err(JwtRejection::new(reason, None))),
        };
        match outcome {
            None => {}
            Some(Ok((verified, mask))) => {
                if !v.forwards(verified.rule) {
                    let (mut parts, body) = req.into_parts();
                    extract::strip(&mut parts.headers, &mut parts.uri, &v.locations, mask);
                    req = Request::from_parts(parts, body);
                }
                tracing::debug!(target: "meshless::audit", principal = %verified.principal(), "jwt authenticated");
                let (principal, claims) = verified.into_parts();
                req.extensions_mut().insert(principal);
                req.extensions_mut().insert(claims);
            }
            Some(Err(rejection)) => {
                tracing::info!(
                    target: "meshless::audit",
                    decision = "unauthenticated",
                    reason = %rejection.reason(),
                    issuer = rejection.issuer().unwrap_or(""),
                    "request rejected: invalid jwt"
                );
                return ResponseFuture::unauthorized();
            }
        }
        ResponseFuture {
            state: State::Inner {
                future: self.inner.call(req),
            },
        }
    }
}

/// The response future of [`Jwt`]: the inner service's, or an immediate `401`.
#[pin_project]
pub struct ResponseFuture<F, ResBody> {
    #[pin]
    state: State<F, ResBody>,
}

#[pin_project(project = StateProj)]
enum State<F, ResBody> {
    Inner {
        #[pin]
        future: F,
    },
    Unauthorized {
        response: Option<Response<ResBody>>,
    },
}

/// `401` with `WWW-Authenticate: Bearer error="invalid_token"` (RFC 6750 §3.1) and an
/// empty body: nothing that tells the client why.
fn unauthorized_response<B: Default>() -> Response<B> {
    let mut response = Response::new(B::default());
    *response.status_mut() = StatusCode::UNAUTHORIZED;
    response.headers_mut().insert(
        WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer error=\"invalid_token\""),
    );
    response
}

impl<F, ResBody: Default> ResponseFuture<F, ResBody> {
    fn unauthorized() -> Self {
        Self {
            state: State::Unauthorized {
                response: Some(unauthorized_response()),
            },
        }
    }
}

impl<F, ResBody> fmt::Debug for ResponseFuture<F, ResBody> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            State::Inner { .. } => "inner",
            State::Unauthorized { .. } => "unauthorized",
        };
        f.debug_struct("ResponseFuture")
            .field("state", &state)
            .finish()
    }
}

impl<F, ResBody, E> Future for ResponseFuture<F, ResBody>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
    ResBody: Default,
{
    type Output = Result<Response<ResBody>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Inner { future } => future.poll(cx),
            // Polled again after completion: answer the same 401 rather than panic.
            StateProj::Unauthorized { response } => {
                Poll::Ready(Ok(response.take().unwrap_or_else(unauthorized_response)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send_sync_clone<T: Send + Sync + Clone + 'static>() {}

    #[test]
    fn layer_and_service_can_be_shared_across_threads() {
        send_sync_clone::<JwtLayer>();
        send_sync_clone::<Jwt<()>>();
        send_sync_clone::<crate::RequestPrincipal>();
        send_sync_clone::<crate::Claims>();
    }
}
