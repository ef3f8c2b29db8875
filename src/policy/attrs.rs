//! What a decision looks at: the peer, the connection, and (for HTTP) the request.

use std::net::IpAddr;

use http::HeaderMap;

use crate::{Claims, Identity, PeerIdentity, RequestPrincipal};

/// The attributes of a request (or, without HTTP attributes, of a TCP connection)
/// that the policy decides on.
///
/// The path must already be normalized ([`normalize_path`](super::normalize_path)) and
/// the host normalized ([`normalize_host`](super::normalize_host)); the enforcement
/// layer does both and forwards the normalized path.
///
/// ```
/// use meshless::policy::RequestAttrs;
/// use meshless::{Identity, SpiffeId};
/// let id = Identity::from("spiffe://example.org/ns/web/sa/frontend".parse::<SpiffeId>()?);
/// let conn = RequestAttrs::connection(Some(&id), Some("10.1.2.3".parse()?), Some(8443));
/// let req = conn
///     .with_request("GET", "/orders/7")
///     .with_query(Some("fields=id%2Cstatus"))
///     .with_host("api.example.org")
///     .with_authority("api.example.org:8443");
/// // Behind a proxy, the original client's address (here as if read from
/// // `X-Forwarded-For`):
/// let req = req.with_remote_ip(Some("203.0.113.7".parse()?));
/// assert!(conn.is_connection() && !req.is_connection());
/// // End-user identity, as the JWT layer puts it into the request extensions:
/// let user = meshless::RequestPrincipal::new("https://idp.example.com", "alice");
/// let claims = meshless::Claims::from_json(r#"{"groups": ["admin"]}"#)?;
/// let req = req.with_principal(Some(&user)).with_claims(Some(&claims));
/// assert_eq!(req.http.unwrap().principal.unwrap().as_str(), "https://idp.example.com/alice");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct RequestAttrs<'a> {
    /// The peer's proven identity; `None` for an unauthenticated peer.
    pub peer: Option<&'a Identity>,
    /// The peer's IP address (Istio's `source.ip`, `ipBlocks`): the address of the
    /// connection's other end, which may be a proxy.
    pub source_ip: Option<IpAddr>,
    /// The address of the original client (Istio's `remote.ip`, `remoteIpBlocks`), what
    /// `remote_networks` are matched against: the peer's address when no proxy stands
    /// in front (the default of the constructors), or the one the enforcement layer
    /// reads from `X-Forwarded-For` behind
    /// [`trusted_proxies`](crate::authorize::AuthorizeLayer::trusted_proxies) (see
    /// [`client_address`](super::client_address)). `None` when that address is
    /// unknown: then no `allow` or `audit` rule naming `remote_networks` or
    /// `not_remote_networks` matches, and every `deny` rule naming them does.
    pub remote_ip: Option<IpAddr>,
    /// The destination (local) port.
    pub port: Option<u16>,
    /// HTTP attributes; `None` for an opaque TCP connection.
    pub http: Option<HttpAttrs<'a>>,
    /// The route of the port's server the request was routed to, set by the
    /// policy itself while deciding (never by the caller).
    pub(crate) route: Option<&'a str>,
}

/// The HTTP part of [`RequestAttrs`].
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct HttpAttrs<'a> {
    /// The request method (`GET`).
    pub method: &'a str,
    /// The path as [`normalize_path`](super::normalize_path) decodes it, without query.
    pub path: &'a str,
    /// The raw query string, as the request carried it after `?` (not decoded; route
    /// `query_params` decode it themselves, see
    /// [`QueryParamMatch`](super::QueryParamMatch)). `None` without a `?`.
    pub query: Option<&'a str>,
    /// The normalized host (lower case, no port).
    pub host: Option<&'a str>,
    /// The normalized authority: the host with the port the client sent
    /// (`api.example.org:8443`), or the host alone when it sent none; see
    /// [`NormalizedTarget::authority`](super::NormalizedTarget::authority).
    pub authority: Option<&'a str>,
    /// The request headers.
    pub headers: Option<&'a HeaderMap>,
    /// The end-user principal of a verified JWT; `None` when the request carried no
    /// token (a request with an invalid token never reaches the policy).
    pub principal: Option<&'a RequestPrincipal>,
    /// The claims of that JWT.
    pub claims: Option<&'a Claims>,
}

impl<'a> RequestAttrs<'a> {
    /// The attributes of a TCP connection (no HTTP attributes).
    pub fn connection(
        peer: Option<&'a Identity>,
        source_ip: Option<IpAddr>,
        port: Option<u16>,
    ) -> Self {
        Self {
            peer,
            source_ip,
            remote_ip: source_ip,
            port,
            http: None,
            route: None,
        }
    }

    /// The connection attributes of `peer`: identity, remote IP, and the port of its
    /// local address.
    pub fn from_peer(peer: &'a PeerIdentity) -> Self {
        Self::connection(
            peer.identity(),
            peer.remote_addr().map(|a| a.ip()),
            peer.local_addr().map(|a| a.port()),
        )
    }

    /// Adds the HTTP method and normalized path.
    pub fn with_request(mut self, method: &'a str, path: &'a str) -> Self {
        self.http = Some(HttpAttrs {
            method,
            path,
            query: self.http.and_then(|h| h.query),
            host: self.http.and_then(|h| h.host),
            authority: self.http.and_then(|h| h.authority),
            headers: self.http.and_then(|h| h.headers),
            principal: self.http.and_then(|h| h.principal),
            claims: self.http.and_then(|h| h.claims),
        });
        self
    }

    /// Adds the raw query string, `uri.query()` (only meaningful after
    /// [`with_request`](Self::with_request)).
    pub fn with_query(mut self, query: Option<&'a str>) -> Self {
        if let Some(h) = &mut self.http {
            h.query = query;
        }
        self
    }

    /// Adds the normalized host (only meaningful after [`with_request`](Self::with_request)).
    pub fn with_host(mut self, host: &'a str) -> Self {
        if let Some(h) = &mut self.http {
            h.host = Some(host);
        }
        self
    }

    /// Adds the normalized authority, host and port as the client sent them (only
    /// meaningful after [`with_request`](Self::with_request)).
    pub fn with_authority(mut self, authority: &'a str) -> Self {
        if let Some(h) = &mut self.http {
            h.authority = Some(authority);
        }
        self
    }

    /// Sets the original client's address (`None`: unknown), in place of the peer's
    /// address the constructors put there.
    pub fn with_remote_ip(mut self, remote_ip: Option<IpAddr>) -> Self {
        self.remote_ip = remote_ip;
        self
    }

    /// Adds the request headers (only meaningful after [`with_request`](Self::with_request)).
    pub fn with_headers(mut self, headers: &'a HeaderMap) -> Self {
        if let Some(h) = &mut self.http {
            h.headers = Some(headers);
        }
        self
    }

    /// Adds the end-user principal of a verified JWT, as the JWT layer puts it into
    /// the request extensions (only meaningful after
    /// [`with_request`](Self::with_request): principals are request-level).
    pub fn with_principal(mut self, principal: Option<&'a RequestPrincipal>) -> Self {
        if let Some(h) = &mut self.http {
            h.principal = principal;
        }
        self
    }

    /// Adds the claims of that JWT (only meaningful after
    /// [`with_request`](Self::with_request)).
    pub fn with_claims(mut self, claims: Option<&'a Claims>) -> Self {
        if let Some(h) = &mut self.http {
            h.claims = claims;
        }
        self
    }

    /// True for a TCP connection decision (no HTTP attributes).
    pub fn is_connection(&self) -> bool {
        self.http.is_none()
    }
}
