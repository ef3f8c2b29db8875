//! Inbound listeners: mutual TLS in, the policy enforced, plaintext to the app.
//!
//! - `http`: [`meshless::serve_with_graceful_shutdown`] terminates mTLS with the
//!   library's `MtlsAcceptor` (ALPN `h2` and `http/1.1`, hyper's server for the version
//!   agreed on) and attaches each connection's `PeerIdentity`; the library's
//!   [`AuthorizeLayer`] decides every request, strips client-sent identity headers and
//!   sets `l5d-client-id` / `x-forwarded-client-cert`; [`AppForward`] sends allowed
//!   requests to the app in the app's protocol: HTTP/1.1 over the connections of an
//!   [`Http1Pool`], h2 over hyper-util's client.
//! - `tcp`: [`ConnectionAuthorizer`] decides once per connection, then bytes are copied
//!   both ways until either side closes or a policy change no longer allows the peer.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::uri::{Authority, Scheme};
use http::{Method, Request, StatusCode, Version};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use meshless::authorize::{AuthorizeLayer, ConnectionAuthorizer};
use meshless::policy::PolicyHandle;
use meshless::tls::TlsSource;
use meshless::{MtlsAcceptor, PeerIdentity};
use tokio::net::{TcpListener, TcpStream};

use crate::app_pool::{AppBody, Http1Pool};
use crate::config::{AppProtocol, Inbound, Mode, Protocol};
use crate::forward::{self, ProxyResult};
use crate::limits::{AppBudget, Limits, Overloaded};
use crate::shutdown::{Shutdown, Tracker};

/// Builds the acceptor for an inbound listener.
pub fn acceptor(source: &TlsSource, config: &Inbound) -> Result<MtlsAcceptor, meshless::TlsError> {
    let mut builder = config
        .limits
        .acceptor(MtlsAcceptor::builder(source.clone()));
    if config.protocol == Protocol::Tcp {
        // Opaque TCP: no ALPN, so a client offering its own protocol name (or none)
        // is not refused for want of `h2` / `http/1.1`.
        builder = builder.alpn_protocols(Vec::new());
    }
    match config.mode {
        Mode::Strict => builder.build(),
        Mode::Permissive => builder.permissive().build(),
    }
}

/// Serves an `http` inbound listener until `shutdown`, then drains.
pub async fn serve_http(
    listener: TcpListener,
    config: &Inbound,
    acceptor: MtlsAcceptor,
    policy: PolicyHandle,
    shutdown: Shutdown,
) -> std::io::Result<()> {
    let forward = AppForward::new(config.forward, config.app_protocol(), &config.limits);
    // Hop-by-hop headers go first, as they arrive: the policy then decides on exactly
    // the headers the app will get, and a `Connection` header naming `l5d-client-id`
    // cannot remove the value the layer sets after it.
    let mut authorize = AuthorizeLayer::new(policy).forward_identity_headers();
    if config.allow_underscores_in_header_names {
        authorize = authorize.allow_underscores_in_header_names();
    }
    let service = tower::ServiceBuilder::new()
        .map_request(without_hop_by_hop)
        .layer(authorize)
        .service(forward);
    let server = config.limits.server(acceptor);
    server
        .graceful_shutdown(shutdown.wait())
        .serve(listener, service)
        .await
}

/// The request with its hop-by-hop headers removed.
fn without_hop_by_hop(mut req: Request<Incoming>) -> Request<Incoming> {
    forward::strip_hop_by_hop(req.headers_mut());
    req
}

/// Forwards authorized requests to the app. One shared instance: cloning it (once per
/// connection and once per request, as hyper does) is a reference-count increment.
#[derive(Clone)]
pub struct AppForward(Arc<AppInner>);

struct AppInner {
    authority: Authority,
    http1: Http1Pool,
    h2: Client<HttpConnector, Incoming>,
    protocol: AppProtocol,
    budget: AppBudget,
    response_timeout: Duration,
}

impl AppForward {
    fn new(app: SocketAddr, protocol: AppProtocol, limits: &Limits) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(5)));
        let h2 = Client::builder(TokioExecutor::new())
            .http2_only(true)
            .build(connector);
        let authority =
            Authority::try_from(app.to_string()).expect("a socket address is an authority");
        Self(Arc::new(AppInner {
            authority,
            // Never more idle connections than may be busy: with those at the app, the
            // proxy's connections to it stay within `max_app_connections`.
            http1: Http1Pool::new(app, Duration::from_secs(90), limits.max_app_connections),
            h2,
            protocol,
            budget: AppBudget::new(limits),
            response_timeout: limits.app_response_timeout(),
        }))
    }

    fn call_app(&self, mut req: Request<Incoming>) -> BoxFuture {
        if req.method() == Method::CONNECT {
            // No tunnels: the proxy forwards requests, and Upgrade is hop-by-hop here too.
            let res = forward::local(StatusCode::NOT_IMPLEMENTED, "CONNECT is not supported\n");
            return Box::pin(std::future::ready(Ok(res)));
        }
        let this = &*self.0;
        let client_version = req.version();
        let h2 = match this.protocol {
            AppProtocol::Http1 => false,
            AppProtocol::H2 => true,
            AppProtocol::Auto => client_version == Version::HTTP_2,
        };
        let version = if h2 {
            Version::HTTP_2
        } else if client_version == Version::HTTP_10 {
            // HTTP/1.0 stays 1.0; HTTP/2 clients are spoken for in HTTP/1.1.
            Version::HTTP_10
        } else {
            Version::HTTP_11
        };
        forward::retarget(&mut req, Scheme::HTTP, &this.authority, version);
        let this = self.0.clone();
        Box::pin(async move {
            let permit = match this.budget.admit().await {
                Ok(permit) => permit,
                Err(why) => return Ok(overloaded(why, &this.authority)),
            };
            let response = async {
                if h2 {
                    let res = this.h2.request(req).await?;
                    Ok(res.map(AppBody::from))
                } else {
                    this.http1.send(req).await
                }
            };
            // Dropped at the timeout, the request is cancelled and its HTTP/1.1
            // connection closed: the app cannot hold the place any longer.
            match tokio::time::timeout(this.response_timeout, response).await {
                Ok(res) => answer(
                    res.map(|res| res.map(|body| body.holding(permit))),
                    client_version,
                    &this.authority,
                ),
                Err(_) => {
                    tracing::warn!(
                        target: "proxy::inbound",
                        app = %this.authority,
                        timeout = ?this.response_timeout,
                        "the app did not answer in time"
                    );
                    Ok(forward::local(
                        StatusCode::GATEWAY_TIMEOUT,
                        "gateway timeout\n",
                    ))
                }
            }
        })
    }
}

/// The 503 for a request the app budget did not let through.
fn overloaded(why: Overloaded, app: &Authority) -> http::Response<forward::ProxyBody> {
    tracing::warn!(target: "proxy::inbound", app = %app, reason = ?why, "app overloaded: 503");
    let mut res = forward::local(StatusCode::SERVICE_UNAVAILABLE, "service unavailable\n");
    res.headers_mut().insert(
        http::header::RETRY_AFTER,
        http::HeaderValue::from_static("1"),
    );
    res
}

type BoxFuture = Pin<Box<dyn Future<Output = ProxyResult> + Send>>;

/// The app's response for the client, or a 502 (logged) when the app failed.
fn answer(
    res: Result<http::Response<AppBody>, Box<dyn std::error::Error + Send + Sync>>,
    client_version: Version,
    app: &Authority,
) -> ProxyResult {
    match res {
        Ok(res) => Ok(forward::relay(res, client_version)),
        Err(err) => {
            tracing::warn!(
                target: "proxy::inbound",
                app = %app,
                error = %forward::error_chain(&*err),
                "app request failed"
            );
            Ok(forward::local(StatusCode::BAD_GATEWAY, "bad gateway\n"))
        }
    }
}

impl tower::Service<Request<Incoming>> for AppForward {
    type Response = http::Response<forward::ProxyBody>;
    type Error = std::convert::Infallible;
    type Future = BoxFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Incoming>) -> Self::Future {
        self.call_app(req)
    }
}

/// Serves a `tcp` inbound listener until `shutdown`, then waits for open connections
/// (bounded by the caller).
pub async fn serve_tcp(
    listener: TcpListener,
    app: SocketAddr,
    acceptor: MtlsAcceptor,
    policy: PolicyHandle,
    shutdown: Shutdown,
) -> std::io::Result<()> {
    let authz = ConnectionAuthorizer::new(policy);
    let tracker = Tracker::default();
    loop {
        let tcp = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => tcp,
                Err(err) => {
                    tracing::warn!(target: "proxy::inbound", error = %err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = shutdown.wait() => break,
        };
        let conn = TcpConn {
            acceptor: acceptor.clone(),
            authz: authz.clone(),
            app,
        };
        let guard = tracker.guard();
        // Open connections are not cut here at shutdown: they may finish within the
        // drain bound that `main` puts around this listener.
        tokio::spawn(async move {
            conn.run(tcp).await;
            drop(guard);
        });
    }
    drop(listener);
    tracker.wait().await;
    Ok(())
}

struct TcpConn {
    acceptor: MtlsAcceptor,
    authz: ConnectionAuthorizer,
    app: SocketAddr,
}

impl TcpConn {
    async fn run(self, tcp: TcpStream) {
        let _ = tcp.set_nodelay(true);
        let Ok((mut stream, peer)) = self.acceptor.accept(tcp).await else {
            return; // the acceptor logged why
        };
        if !self.authz.check(&peer).is_allowed() {
            return; // denied: dropping the stream closes the connection
        }
        self.forward(&mut stream, &peer).await;
    }

    async fn forward(&self, stream: &mut meshless::tls::MtlsStream, peer: &PeerIdentity) {
        let connect = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(self.app));
        let mut app = match connect.await {
            Ok(Ok(app)) => app,
            Ok(Err(err)) => {
                tracing::warn!(target: "proxy::inbound", app = %self.app, error = %err, "app connect failed");
                return;
            }
            Err(_) => {
                tracing::warn!(target: "proxy::inbound", app = %self.app, "app connect timed out");
                return;
            }
        };
        let _ = app.set_nodelay(true);
        let copied = self
            .authz
            .guard(peer, tokio::io::copy_bidirectional(stream, &mut app))
            .await;
        if let Some(Err(err)) = copied {
            tracing::debug!(target: "proxy::inbound", error = %err, "tcp connection ended with an error");
        }
    }
}
