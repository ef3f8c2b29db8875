//! The response body of [`Authorize`](super::Authorize): the inner service's body, or
//! the short body of a denial.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use pin_project::pin_project;

/// The body of a response from [`Authorize`](super::Authorize): either the inner
/// service's body, untouched, or the few bytes of a denial.
#[pin_project(project = AuthzBodyProj)]
#[derive(Debug)]
pub struct AuthzBody<B> {
    #[pin]
    kind: Kind<B>,
}

#[pin_project(project = KindProj)]
#[derive(Debug)]
enum Kind<B> {
    Inner(#[pin] B),
    Full(Option<Bytes>),
}

impl<B> AuthzBody<B> {
    pub(crate) fn inner(body: B) -> Self {
        Self {
            kind: Kind::Inner(body),
        }
    }

    pub(crate) fn full(bytes: Bytes) -> Self {
        Self {
            kind: Kind::Full((!bytes.is_empty()).then_some(bytes)),
        }
    }
}

impl<B> Default for AuthzBody<B> {
    fn default() -> Self {
        Self {
            kind: Kind::Full(None),
        }
    }
}

impl<B> Body for AuthzBody<B>
where
    B: Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        match self.project().kind.project() {
            KindProj::Inner(body) => body.poll_frame(cx),
            KindProj::Full(data) => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Inner(body) => body.is_end_stream(),
            Kind::Full(data) => data.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Inner(body) => body.size_hint(),
            Kind::Full(data) => SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64)),
        }
    }
}
