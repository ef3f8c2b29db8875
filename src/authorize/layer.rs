//! [`AuthorizeLayer`] and [`Authorize`]: every request is checked against the policy.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::uri::PathAndQuery;
use http::{Request, Response, Uri, header};
use tower::{Layer, Service};

use super::body::AuthzBody;
use super::deny::{DefaultDeny, Denial, DenyKind, OnDeny, is_grpc};
use super::future::ResponseFuture;
use super::headers;
use crate::audit::{self, AuditConfig, RequestView};
use crate::metrics::Metrics;
use crate::policy::{Decision, PolicyHandle, RequestAttrs, Verdict, normalize_target};
use crate::{Claims, RequestPrincipal};

/// A [`Layer`] that authorizes every request against a policy.
///
/// ```
/// use meshless::authorize::AuthorizeLayer;
/// use meshless::policy::{Policy, PolicyHandle};
///
/// let policy = Policy::from_yaml(r#"
/// default: deny
/// rules:
///   - name: frontend-reads
///     action: allow
///     from: [{identities: ["spiffe://example.org/ns/web/sa/frontend"]}]
///     to: [{methods: ["GET"]}]
/// "#)?;
/// let layer = AuthorizeLayer::new(PolicyHandle::new(policy));
/// let service = tower::ServiceBuilder::new()
///     .layer(layer)
///     .service_fn(|_req: http::Request<String>| async {
///         Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
///     });
/// # let _ = service;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// Per request, [`Authorize`]:
/// 1. removes `l5d-client-id` and `x-forwarded-client-cert` (anyone can send them);
/// 2. reads the [`PeerIdentity`](crate::PeerIdentity) that `meshless::serve` (or the
///    axum listener) put in the request's extensions — a request without one is
///    refused with 403 (fail closed: the identity layer is missing);
/// 3. refuses with 400 a request carrying both `Content-Length` and
///    `Transfer-Encoding`, and normalizes the path and host (400 when they are
///    ambiguous: encoded slashes, a Host that disagrees with the authority, ...); an
///    HTTP/1 400 also closes the connection;
/// 4. evaluates the policy — with the end user's [`RequestPrincipal`] and [`Claims`]
///    when a JWT layer (`meshless::jwt::JwtLayer`, feature `jwt`) outside this
///    one verified a token — logs the decision (target `meshless::audit`) and counts it;
/// 5. on allow, hands the inner service the request with the **normalized** path (what
///    was authorized is what is served) and the [`Decision`] in its extensions; on deny,
///    answers without calling the inner service (see [`OnDeny`]).
#[derive(Clone)]
pub struct AuthorizeLayer<D = DefaultDeny> {
    shared: Arc<Shared>,
    deny: D,
}

struct Shared {
    policy: PolicyHandle,
    audit: AuditConfig,
    metrics: Arc<Metrics>,
    forward_identity: bool,
}

impl AuthorizeLayer {
    /// Authorizes against `policy`; reloads of the handle apply to the next request.
    pub fn new(policy: PolicyHandle) -> Self {
        Self {
            shared: Arc::new(Shared {
                policy,
                audit: AuditConfig::default(),
                metrics: Metrics::global().clone(),
                forward_identity: false,
            }),
            deny: DefaultDeny,
        }
    }
}

impl<D> AuthorizeLayer<D> {
    fn shared_mut(&mut self) -> &mut Shared {
        Arc::get_mut(&mut self.shared).expect("layer configured before it is cloned")
    }

    /// Replaces how denials are answered.
    pub fn on_deny<D2: OnDeny>(self, deny: D2) -> AuthorizeLayer<D2> {
        AuthorizeLayer {
            shared: self.shared,
            deny,
        }
    }

    /// Sets how allowed requests are logged (sampling).
    pub fn audit(mut self, audit: AuditConfig) -> Self {
        self.shared_mut().audit = audit;
        self
    }

    /// Counts into `metrics` instead of [`Metrics::global`].
    pub fn metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.shared_mut().metrics = metrics;
        self
    }

    /// Sets `l5d-client-id` and `x-forwarded-client-cert` on allowed requests from the
    /// verified identity, for an application that reads them. (Incoming copies of these
    /// headers are always removed, whether or not this is on.)
    pub fn forward_identity_headers(mut self) -> Self {
        self.shared_mut().forward_identity = true;
        self
    }
}

impl<D> fmt::Debug for AuthorizeLayer<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthorizeLayer")
            .field("forward_identity", &self.shared.forward_identity)
            .finish_non_exhaustive()
    }
}

impl<S, D: Clone> Layer<S> for AuthorizeLayer<D> {
    type Service = Authorize<S, D>;

    fn layer(&self, inner: S) -> Self::Service {
        Authorize {
            inner,
            shared: self.shared.clone(),
            deny: self.deny.clone(),
        }
    }
}

/// The service built by [`AuthorizeLayer`].
#[derive(Clone)]
pub struct Authorize<S, D = DefaultDeny> {
    inner: S,
    shared: Arc<Shared>,
    deny: D,
}

impl<S: fmt::Debug, D> fmt::Debug for Authorize<S, D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authorize")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S, D, ReqBody, ResBody> Service<Request<ReqBody>> for Authorize<S, D>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    D: OnDeny,
{
    type Response = Response<AuthzBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        headers::strip(req.headers_mut());
        let checked = self
            .check(&req)
            .and_then(|(decision, new_path)| match new_path {
                None => Ok(decision),
                Some(path) => match with_path(req.uri(), &path) {
                    Some(uri) => {
                        *req.uri_mut() = uri;
                        Ok(decision)
                    }
                    None => Err((DenyKind::BadRequest, Some(decision))),
                },
            });
        match checked {
            Ok(decision) => {
                if self.shared.forward_identity
                    && let Some(peer) = super::peer_of(req.extensions()).cloned()
                {
                    headers::set(req.headers_mut(), &peer);
                }
                req.extensions_mut().insert(decision);
                ResponseFuture::inner(self.inner.call(req))
            }
            Err((kind, decision)) => {
                let denial = Denial {
                    kind,
                    decision: decision.as_ref(),
                    grpc: is_grpc(req.headers()),
                };
                let mut res = self.deny.response(&denial).map(AuthzBody::full);
                // After a malformed HTTP/1 request the connection's framing is suspect:
                // answer, then close (RFC 9112 §6.3).
                if kind == DenyKind::BadRequest && req.version() <= http::Version::HTTP_11 {
                    res.headers_mut()
                        .insert(header::CONNECTION, http::HeaderValue::from_static("close"));
                }
                if let Some(decision) = decision {
                    res.extensions_mut().insert(decision);
                }
                ResponseFuture::denied(res)
            }
        }
    }
}

type Checked = Result<(Decision, Option<String>), (DenyKind, Option<Decision>)>;

impl<S, D> Authorize<S, D> {
    /// Decides on `req`: the decision and, when normalization changed it, the path to
    /// forward; or why it is refused.
    fn check<B>(&self, req: &Request<B>) -> Checked {
        let shared = &*self.shared;
        // Put there by the JWT layer for a verified token; absent without a token.
        let principal = req.extensions().get::<RequestPrincipal>();
        let claims = req.extensions().get::<Claims>();
        let raw = || RequestView {
            method: req.method().as_str(),
            host: "",
            path: req.uri().path(),
            principal,
        };
        let Some(peer) = super::peer_of(req.extensions()) else {
            tracing::error!(
                target: "meshless::authorize",
                "request has no PeerIdentity: serve it with meshless::serve or the meshless axum listener; denying"
            );
            shared.metrics.http_rejected("missing-identity");
            audit::rejected(None, raw(), "deny", &"no identity layer");
            return Err((DenyKind::MissingIdentity, None));
        };
        // Both framings at once is a request-smuggling attempt (RFC 9112 §6.3). hyper
        // never shows both (it drops the Content-Length, reads the body as chunked and
        // closes the connection afterwards); servers that pass both through get a 400.
        if req.headers().contains_key(header::TRANSFER_ENCODING)
            && req.headers().contains_key(header::CONTENT_LENGTH)
        {
            shared.metrics.http_rejected("bad-request");
            audit::rejected(
                Some(peer),
                raw(),
                "bad-request",
                &"both content-length and transfer-encoding",
            );
            return Err((DenyKind::BadRequest, None));
        }
        let target = match normalize_target(req.uri(), req.headers().get(header::HOST)) {
            Ok(target) => target,
            Err(err) => {
                shared.metrics.http_rejected("bad-request");
                audit::rejected(Some(peer), raw(), "bad-request", &err);
                return Err((DenyKind::BadRequest, None));
            }
        };
        let host = target.host.as_deref();
        let mut attrs =
            RequestAttrs::from_peer(peer).with_request(req.method().as_str(), &target.path);
        if let Some(host) = host {
            attrs = attrs.with_host(host);
        }
        let attrs = attrs
            .with_headers(req.headers())
            .with_principal(principal)
            .with_claims(claims);
        let policy = shared.policy.load();
        let decision = super::evaluate(&policy, peer, &attrs);

        let tls = peer.is_authenticated();
        shared
            .metrics
            .http_decision(decision.verdict(), decision.rule_name(), tls);
        let view = RequestView {
            method: req.method().as_str(),
            host: host.unwrap_or(""),
            path: &target.path,
            principal,
        };
        audit::decision(&shared.audit, &decision, peer, view, &reason(&decision));

        match decision.enforced() {
            Verdict::Allow => {
                let new_path = match target.path {
                    std::borrow::Cow::Owned(path) => Some(path),
                    std::borrow::Cow::Borrowed(_) => None,
                };
                Ok((decision, new_path))
            }
            Verdict::NotFound => Err((DenyKind::NotFound, Some(decision))),
            _ => Err((DenyKind::Forbidden, Some(decision))),
        }
    }
}

/// A short account of a decision for the audit log.
fn reason(decision: &Decision) -> &'static str {
    match (decision.verdict(), decision.is_default()) {
        (Verdict::NotFound, _) => "no route matched",
        (Verdict::Allow, true) => "no rule matched; the default allows",
        (Verdict::Allow, false) => "an allow rule matched",
        (_, true) => "no allow rule matched; the default denies",
        (_, false) => "a deny rule matched",
    }
}

/// `uri` with its path replaced, keeping scheme, authority and query; `None` if the
/// result is not a valid URI (then the request is refused rather than served at a path
/// other than the one authorized).
fn with_path(uri: &Uri, path: &str) -> Option<Uri> {
    let pq = match uri.query() {
        Some(query) => format!("{path}?{query}"),
        None => path.to_owned(),
    };
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = Some(PathAndQuery::from_maybe_shared(Bytes::from(pq)).ok()?);
    Uri::from_parts(parts).ok()
}
