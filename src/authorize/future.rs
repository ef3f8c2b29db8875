//! The response future of [`Authorize`](super::Authorize).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http::Response;
use pin_project::pin_project;

use super::body::AuthzBody;

/// Response future of [`Authorize`](super::Authorize): the inner service's future, or a
/// denial that is ready at once.
#[pin_project(project = ResponseFutureProj)]
#[derive(Debug)]
pub struct ResponseFuture<F, B> {
    #[pin]
    kind: Kind<F, B>,
}

#[pin_project(project = KindProj)]
#[derive(Debug)]
enum Kind<F, B> {
    Inner(#[pin] F),
    Denied(Option<Response<AuthzBody<B>>>),
}

impl<F, B> ResponseFuture<F, B> {
    pub(crate) fn inner(future: F) -> Self {
        Self {
            kind: Kind::Inner(future),
        }
    }

    pub(crate) fn denied(response: Response<AuthzBody<B>>) -> Self {
        Self {
            kind: Kind::Denied(Some(response)),
        }
    }
}

impl<F, B, E> Future for ResponseFuture<F, B>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<AuthzBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Inner(future) => {
                let response = ready!(future.poll(cx))?;
                Poll::Ready(Ok(response.map(AuthzBody::inner)))
            }
            KindProj::Denied(response) => Poll::Ready(Ok(response
                .take()
                .expect("ResponseFuture polled after completion"))),
        }
    }
}
