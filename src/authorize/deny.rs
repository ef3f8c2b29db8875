//! What a refused request gets back: 403 / 404 / 400 for HTTP, a trailers-only
//! response with `grpc-status` for gRPC. Pluggable through [`OnDeny`].

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};

use crate::policy::Decision;

/// Why a request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DenyKind {
    /// The policy denied it (HTTP 403, gRPC `PERMISSION_DENIED`).
    Forbidden,
    /// A route-scoped server has no route for it (HTTP 404, gRPC `NOT_FOUND`), as
    /// Linkerd answers.
    NotFound,
    /// Its path or host was rejected before policy ran (HTTP 400, gRPC
    /// `INVALID_ARGUMENT`).
    BadRequest,
    /// No [`PeerIdentity`](crate::PeerIdentity) was attached to the request: the
    /// identity layer (or `meshless::serve`) is missing. Fails closed (HTTP 403).
    MissingIdentity,
}

impl DenyKind {
    /// A short label (`forbidden`, `not-found`, `bad-request`, `missing-identity`).
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Forbidden => "forbidden",
            Self::NotFound => "not-found",
            Self::BadRequest => "bad-request",
            Self::MissingIdentity => "missing-identity",
        }
    }

    fn http_status(self) -> StatusCode {
        match self {
            Self::Forbidden | Self::MissingIdentity => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::BadRequest => StatusCode::BAD_REQUEST,
        }
    }

    /// The gRPC status code and message.
    fn grpc(self) -> (&'static str, &'static str) {
        match self {
            Self::Forbidden | Self::MissingIdentity => ("7", "unauthorized request"),
            Self::NotFound => ("5", "no route"),
            Self::BadRequest => ("3", "invalid request path"),
        }
    }
}

/// What [`OnDeny`] is told about a refusal.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct Denial<'a> {
    /// Why the request is refused.
    pub kind: DenyKind,
    /// The policy decision, when policy ran.
    pub decision: Option<&'a Decision>,
    /// True when the request was gRPC (`content-type: application/grpc*`).
    pub grpc: bool,
}

/// Builds the response to a refused request.
///
/// The default, [`DefaultDeny`], answers like Linkerd: a short body that reveals
/// nothing about the policy (the audit log has the details). A closure
/// `Fn(&Denial) -> Response<Bytes>` is an `OnDeny` too:
///
/// ```
/// use bytes::Bytes;
/// use meshless::authorize::{AuthorizeLayer, Denial};
/// use meshless::policy::{Policy, PolicyHandle};
///
/// let handle = PolicyHandle::new(Policy::deny_all());
/// let layer = AuthorizeLayer::new(handle).on_deny(|d: &Denial<'_>| {
///     http::Response::builder()
///         .status(418)
///         .body(Bytes::from_static(b"no tea for you\n"))
///         .unwrap()
/// });
/// # let _ = layer;
/// ```
///
/// Whatever it returns, the layer adds the [`Decision`] to the response's extensions.
pub trait OnDeny: Clone + Send + Sync + 'static {
    /// The response for `denial`.
    fn response(&self, denial: &Denial<'_>) -> Response<Bytes>;
}

impl<F> OnDeny for F
where
    F: Fn(&Denial<'_>) -> Response<Bytes> + Clone + Send + Sync + 'static,
{
    fn response(&self, denial: &Denial<'_>) -> Response<Bytes> {
        self(denial)
    }
}

/// The default denial: HTTP 403 / 404 / 400 with a one-line text body, or for gRPC an
/// HTTP 200 trailers-only response with `grpc-status` 7 / 5 / 3 and a short
/// `grpc-message`.
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultDeny;

impl OnDeny for DefaultDeny {
    fn response(&self, denial: &Denial<'_>) -> Response<Bytes> {
        if denial.grpc {
            return grpc_status(denial.kind);
        }
        let status = denial.kind.http_status();
        let body = match denial.kind {
            DenyKind::NotFound => "not found\n",
            DenyKind::BadRequest => "bad request\n",
            DenyKind::Forbidden | DenyKind::MissingIdentity => "forbidden\n",
        };
        let mut res = Response::new(Bytes::from_static(body.as_bytes()));
        *res.status_mut() = status;
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        res
    }
}

fn grpc_status(kind: DenyKind) -> Response<Bytes> {
    let (code, message) = kind.grpc();
    let mut res = Response::new(Bytes::new());
    let headers = res.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    headers.insert("grpc-status", HeaderValue::from_static(code));
    headers.insert("grpc-message", HeaderValue::from_static(message));
    res
}

/// True for gRPC requests (`content-type: application/grpc`, `application/grpc+proto`, ...).
pub(crate) fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
}
