//! [`AuthorizeLayer`] and [`Authorize`]: every request is checked against the policy.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response, header};
use tower::{Layer, Service};

use super::body::AuthzBody;
use super::deny::{DefaultDeny, Denial, DenyKind, OnDeny, is_grpc};
use super::future::ResponseFuture;
use super::{ambiguity, headers};
use crate::audit::{self, AuditConfig, RequestView};
use crate::metrics::{HttpOutcome, Metrics};
use crate::policy::{
    Decision, PolicyHandle, RequestAttrs, Verdict, client_address, normalize_target,
    without_parameters,
};
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
/// 3. refuses with 400 a request that the app behind could read otherwise than the
///    policy (an HTTP/1 400 also closes the connection):
///    - a path not in normal form (`/a/../b`, `/a/%2e%2e/b`, `//a`, `%2F`, `%25`; see
///      [`normalize_path`](crate::policy::normalize_path)) — refused, never rewritten,
///      because a router may already have chosen its handler from the raw path;
///    - more than one `Host`, a `Host` that disagrees with the URI authority or HTTP/2
///      `:authority`, or an authority with userinfo, a bad port or stray colons;
///    - a method that is a standard method in another case (`delete`), which some
///      frameworks upper-case after the decision, or a method override
///      (`X-HTTP-Method-Override`, `X-HTTP-Method`, `X-Method-Override`, `_method=` in
///      the query) naming another method than the request's;
///    - a header name containing `_` (CGI-style apps read `x_user` and `x-user` as the
///      same variable), unless [`allow_underscores_in_header_names`](AuthorizeLayer::allow_underscores_in_header_names);
///    - a `Connection` header naming an identity header (a hop would drop the value
///      this layer sets), or both `Content-Length` and `Transfer-Encoding`;
/// 4. evaluates the policy on the decoded path and the authority (host and port, for
///    Istio's `hosts`) — with the original client's address for `remote_networks`
///    (the peer's, or behind [`trusted_proxies`](AuthorizeLayer::trusted_proxies) the
///    one read from `X-Forwarded-For`), with the end user's
///    [`RequestPrincipal`] and [`Claims`] when a JWT layer (`meshless::jwt::JwtLayer`,
///    feature `jwt`) outside this one verified a token — logs the decision (target
///    `meshless::audit`) and counts it. A path with `;` parameters is allowed only if
///    its reading without them (how servlet containers route `/admin;x`) is allowed too;
/// 5. on allow, hands the inner service the request unchanged (its path is the one
///    decided on) with the [`Decision`] in its extensions; on deny, answers without
///    calling the inner service (see [`OnDeny`]).
///
/// Because it refuses instead of rewriting, the layer gives the same answer wherever
/// it sits: around an axum `Router`, in `Router::layer` or `route_layer`, inside a
/// nested router, or around tonic's `Routes`. Wrapping the whole router is still the
/// recommended place: then unrouted paths are decided too.
#[derive(Clone)]
pub struct AuthorizeLayer<D = DefaultDeny> {
    shared: Arc<Shared>,
    deny: D,
}

#[derive(Clone)]
struct Shared {
    policy: PolicyHandle,
    audit: AuditConfig,
    metrics: Arc<Metrics>,
    forward_identity: bool,
    underscores: bool,
    trusted_proxies: usize,
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
                underscores: false,
                trusted_proxies: 0,
            }),
            deny: DefaultDeny,
        }
    }
}

impl<D> AuthorizeLayer<D> {
    /// The settings to change: this layer's own copy when a clone shares them (copy on
    /// write), so configuring a clone never panics and never changes the other.
    fn shared_mut(&mut self) -> &mut Shared {
        Arc::make_mut(&mut self.shared)
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

    /// Reads the original client's address, which `remote_networks` (Istio's
    /// `remoteIpBlocks` and `remote.ip`) match, from `X-Forwarded-For`, behind `n`
    /// proxies that each append the address they received the request from: the
    /// `n`-th address from the right (Istio's `numTrustedProxies`, Envoy's
    /// `xff_num_trusted_hops`). See [`client_address`] for the exact reading.
    ///
    /// The default, `0`, ignores the header (anyone can write it) and uses the peer's
    /// address. Set it only when every connection comes through such proxies: a
    /// client that reaches this server directly chooses its own address. With `n > 0`,
    /// a header that is missing, too short or unreadable at that position leaves the
    /// address unknown, which satisfies no `allow` rule naming remote networks (and
    /// every `deny` rule naming them). `networks` (`ipBlocks`) always match the peer.
    pub fn trusted_proxies(mut self, n: usize) -> Self {
        self.shared_mut().trusted_proxies = n;
        self
    }

    /// Lets requests with `_` in a header name through (refused with 400 by default).
    ///
    /// CGI-style apps (WSGI, Rack, PHP) read `x_user` and `x-user` as the same
    /// variable, so a policy deciding on one while the app reads the other can be
    /// fooled; nginx drops such headers by default and Istio recommends rejecting them.
    /// With this on, any spelling of an identity header (`l5d_client_id`) is still
    /// removed.
    pub fn allow_underscores_in_header_names(mut self) -> Self {
        self.shared_mut().underscores = true;
        self
    }
}

impl<D> fmt::Debug for AuthorizeLayer<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthorizeLayer")
            .field("forward_identity", &self.shared.forward_identity)
            .field("trusted_proxies", &self.shared.trusted_proxies)
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
        headers::strip(req.headers_mut(), self.shared.underscores);
        match self.check(&req) {
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

type Checked = Result<Decision, (DenyKind, Option<Decision>)>;

impl<S, D> Authorize<S, D> {
    /// Decides on `req`: the decision, or why it is refused.
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
        let bad_request = |why: &dyn fmt::Display| {
            shared.metrics.http_rejected("bad-request");
            audit::rejected(Some(peer), raw(), "bad-request", why);
            Err((DenyKind::BadRequest, None))
        };
        if let Err(why) = ambiguity::check(req, shared.underscores) {
            return bad_request(&why);
        }
        let target = match normalize_target(req.uri(), req.headers().get(header::HOST)) {
            Ok(target) => target,
            Err(err) => return bad_request(&err),
        };
        let host = target.host.as_deref();
        // Route `query_params` read the raw query; the path is matched without it.
        let mut attrs = RequestAttrs::from_peer(peer)
            .with_request(req.method().as_str(), &target.path)
            .with_query(req.uri().query());
        if let Some(host) = host {
            attrs = attrs.with_host(host);
        }
        if let Some(authority) = target.authority.as_deref() {
            attrs = attrs.with_authority(authority);
        }
        let remote = client_address(req.headers(), attrs.source_ip, shared.trusted_proxies);
        let attrs = attrs
            .with_remote_ip(remote)
            .with_headers(req.headers())
            .with_principal(principal)
            .with_claims(claims);
        let policy = shared.policy.load();
        let mut decision = super::evaluate(&policy, peer, &attrs);
        // `/admin;x` is `/admin` to a servlet container and `admin;x` to most other
        // routers: allowed only if both readings are.
        if decision.enforced() == Verdict::Allow
            && let Some(plain) = without_parameters(&target.path)
        {
            let second = super::evaluate(
                &policy,
                peer,
                &attrs.with_request(req.method().as_str(), &plain),
            );
            if second.enforced() != Verdict::Allow {
                decision = second;
            }
        }

        let tls = peer.is_authenticated();
        let outcome = match decision.verdict() {
            Verdict::Allow => HttpOutcome::Allow,
            Verdict::NotFound => HttpOutcome::NotFound,
            _ => HttpOutcome::Deny,
        };
        shared
            .metrics
            .http_decision(outcome, decision.rule_name(), tls);
        let view = RequestView {
            method: req.method().as_str(),
            host: host.unwrap_or(""),
            path: &target.path,
            principal,
        };
        audit::decision(&shared.audit, &decision, peer, view, &reason(&decision));

        match decision.enforced() {
            Verdict::Allow => Ok(decision),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Policy;

    #[test]
    fn configuring_a_clone_neither_panics_nor_changes_the_original() {
        let layer = AuthorizeLayer::new(PolicyHandle::new(Policy::deny_all()));
        let kept = layer.clone();
        let changed = layer.forward_identity_headers();
        assert!(changed.shared.forward_identity);
        assert!(!kept.shared.forward_identity);
        let _service = kept
            .clone()
            .layer(tower::service_fn(|_: Request<()>| async {
                Ok::<_, std::convert::Infallible>(Response::new(()))
            }));
        assert!(
            !kept
                .allow_underscores_in_header_names()
                .shared
                .forward_identity
        );
    }
}
