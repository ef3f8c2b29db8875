//! Outbound listeners: plaintext HTTP from the local app, mutual TLS to the upstream,
//! which must prove the configured SPIFFE ID.
//!
//! The client is hyper-util's pooled client over [`MtlsConnector`]: ALPN picks HTTP/2
//! or HTTP/1.1 per upstream connection, and every new connection verifies the server's
//! SVID against our bundles and the expected ID. A server that proves another identity
//! fails the request with `502 Bad Gateway` and a log line naming both identities.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::uri::{Authority, Scheme};
use http::{Request, StatusCode, Uri, Version, header};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use meshless::tls::{MtlsConnection, TlsSource};
use meshless::{MtlsConnector, SpiffeId, TlsError};
use tokio::net::TcpListener;

use crate::config::Outbound;
use crate::forward::{self, ProxyBody, ProxyResult};
use crate::shutdown::Shutdown;

/// Serves an outbound listener until `shutdown`, then drains.
pub async fn serve(
    listener: TcpListener,
    config: &Outbound,
    source: &TlsSource,
    shutdown: Shutdown,
) -> Result<(), TlsError> {
    let service = UpstreamForward::new(source, config.upstream, config.server_identity.clone())?;
    crate::plain::serve(listener, service, shutdown).await;
    Ok(())
}

/// Dials the one configured upstream, whatever authority the request names, so that
/// the request keeps the name the app used (`:authority` / `Host`).
#[derive(Clone)]
struct FixedUpstream {
    connector: MtlsConnector,
    upstream: Uri,
}

impl tower::Service<Uri> for FixedUpstream {
    type Response = MtlsConnection;
    type Error = TlsError;
    type Future = Pin<Box<dyn Future<Output = Result<MtlsConnection, TlsError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), TlsError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _uri: Uri) -> Self::Future {
        let connector = self.connector.clone();
        let upstream = self.upstream.clone();
        Box::pin(async move { connector.connect(upstream).await })
    }
}

/// Forwards the app's requests to the upstream over mTLS.
#[derive(Clone)]
pub struct UpstreamForward(Arc<UpstreamInner>);

struct UpstreamInner {
    client: Client<FixedUpstream, Incoming>,
    upstream: Authority,
    expected: SpiffeId,
}

impl UpstreamForward {
    fn new(source: &TlsSource, upstream: SocketAddr, expected: SpiffeId) -> Result<Self, TlsError> {
        let connector = MtlsConnector::new(source.clone(), expected.clone())?
            .with_timeout(Duration::from_secs(5));
        let authority =
            Authority::try_from(upstream.to_string()).expect("a socket address is an authority");
        let upstream_uri = Uri::builder()
            .scheme(Scheme::HTTPS)
            .authority(authority.clone())
            .path_and_query("/")
            .build()
            .expect("valid URI parts");
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .build(FixedUpstream {
                connector,
                upstream: upstream_uri,
            });
        Ok(Self(Arc::new(UpstreamInner {
            client,
            upstream: authority,
            expected,
        })))
    }

    fn call_upstream(
        &self,
        mut req: Request<Incoming>,
    ) -> impl Future<Output = ProxyResult> + use<> {
        let client_version = req.version();
        // The name the app used becomes the authority of the upstream request (HTTP/2
        // `:authority`, HTTP/1.1 `Host`), so the upstream sees one consistent name.
        let authority = req
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.parse::<Authority>().ok())
            .or_else(|| req.uri().authority().cloned())
            .unwrap_or_else(|| self.0.upstream.clone());
        req.headers_mut().remove(header::HOST);
        forward::retarget(&mut req, Scheme::HTTPS, &authority, Version::HTTP_11);
        // retarget keeps an original authority in Host when there was none: drop it,
        // the URI carries it.
        req.headers_mut().remove(header::HOST);
        let client = self.0.client.clone();
        let expected = self.0.expected.clone();
        let upstream = self.0.upstream.clone();
        async move {
            match client.request(req).await {
                Ok(res) => Ok(forward::relay(res, client_version)),
                Err(err) => Ok(failure(&err, &upstream, &expected)),
            }
        }
    }
}

/// Logs why the upstream request failed and answers 502.
fn failure(
    err: &hyper_util::client::legacy::Error,
    upstream: &Authority,
    expected: &SpiffeId,
) -> http::Response<ProxyBody> {
    match forward::find_cause::<TlsError>(err) {
        Some(TlsError::UnexpectedServerId { got, .. }) => tracing::warn!(
            target: "proxy::outbound",
            upstream = %upstream,
            expected = %expected,
            presented = %got,
            "upstream presented identity `{got}`, expected `{expected}`; refusing it"
        ),
        Some(tls) => tracing::warn!(
            target: "proxy::outbound",
            upstream = %upstream,
            expected = %expected,
            reason = tls.reason(),
            error = %tls,
            "mutual TLS to the upstream failed"
        ),
        None => tracing::warn!(
            target: "proxy::outbound",
            upstream = %upstream,
            error = %forward::error_chain(err),
            "upstream request failed"
        ),
    }
    forward::local(StatusCode::BAD_GATEWAY, "bad gateway\n")
}

impl tower::Service<Request<Incoming>> for UpstreamForward {
    type Response = http::Response<ProxyBody>;
    type Error = std::convert::Infallible;
    type Future = Pin<Box<dyn Future<Output = ProxyResult> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Incoming>) -> Self::Future {
        Box::pin(self.call_upstream(req))
    }
}
