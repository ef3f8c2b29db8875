//! The admin port: `/metrics` (OpenMetrics text of `meshless::metrics::Metrics`),
//! `/ready` (200 while serving, 503 while draining) and `/live` (200 while the process
//! runs).

use std::convert::Infallible;
use std::future::Ready;
use std::task::{Context, Poll};

use http::{Request, Response, StatusCode, header};
use hyper::body::Incoming;
use meshless::metrics::Metrics;

use crate::shutdown::Shutdown;

/// Answers the admin routes.
#[derive(Clone)]
pub struct Admin {
    shutdown: Shutdown,
}

impl Admin {
    pub fn new(shutdown: Shutdown) -> Self {
        Self { shutdown }
    }

    fn answer(&self, req: &Request<Incoming>) -> Response<String> {
        let text = |status: StatusCode, body: &str| {
            let mut res = Response::new(body.to_owned());
            *res.status_mut() = status;
            res.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            res
        };
        if req.method() != http::Method::GET && req.method() != http::Method::HEAD {
            return text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
        }
        match req.uri().path() {
            "/metrics" => Metrics::global().response(),
            "/live" => text(StatusCode::OK, "live\n"),
            "/ready" if self.shutdown.is_fired() => {
                text(StatusCode::SERVICE_UNAVAILABLE, "draining\n")
            }
            "/ready" => text(StatusCode::OK, "ready\n"),
            _ => text(StatusCode::NOT_FOUND, "not found\n"),
        }
    }
}

impl tower::Service<Request<Incoming>> for Admin {
    type Response = Response<String>;
    type Error = Infallible;
    type Future = Ready<Result<Response<String>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Incoming>) -> Self::Future {
        std::future::ready(Ok(self.answer(&req)))
    }
}
