//! The questions' inputs: a [`RequestShape`] (what is asked for) and a [`Caller`]
//! (who asks).

use std::net::IpAddr;

use http::{HeaderMap, HeaderValue};

use super::super::normalize::normalize_target;
use super::AnalysisError;
use super::probe::HttpProbe;
use crate::{Claims, Identity, RequestPrincipal};

/// A request, as far as `who-can` is told: destination port, and for HTTP the
/// method, path, host and, optionally, the headers. Headers left out are *open*:
/// the answer states the header conditions callers must meet instead.
///
/// ```
/// use meshless::policy::analysis::RequestShape;
/// let shape = RequestShape::http("GET", "/admin/users")?.port(8443).host("api.example.org")?;
/// assert_eq!(shape.to_string(), "GET /admin/users (host api.example.org) to port 8443");
/// let tcp = RequestShape::tcp(5432);
/// assert_eq!(tcp.to_string(), "a TCP connection to port 5432");
/// # Ok::<(), meshless::policy::analysis::AnalysisError>(())
/// ```
#[derive(Debug, Clone)]
pub struct RequestShape {
    pub(crate) port: Option<u16>,
    pub(crate) http: Option<HttpProbe>,
    /// `Some` once headers are given (then every other header is absent).
    pub(crate) headers_given: bool,
}

impl RequestShape {
    /// An HTTP request; `target` is a path with an optional query (`/search?q=1`),
    /// normalized as the enforcement layer normalizes it.
    ///
    /// # Errors
    ///
    /// [`AnalysisError::Shape`] when the layer would reject the target with 400.
    pub fn http(method: &str, target: &str) -> Result<Self, AnalysisError> {
        let bad = |e: &dyn std::fmt::Display| AnalysisError::Shape(format!("`{target}`: {e}"));
        let uri: http::Uri = target.parse().map_err(|e| bad(&e))?;
        let normal = normalize_target(&uri, None).map_err(|e| bad(&e))?;
        Ok(Self {
            port: None,
            http: Some(HttpProbe {
                method: method.to_owned(),
                path: normal.path.to_string(),
                query: uri.query().map(str::to_owned),
                ..HttpProbe::default()
            }),
            headers_given: false,
        })
    }

    /// A TCP connection to `port`.
    pub fn tcp(port: u16) -> Self {
        Self {
            port: Some(port),
            http: None,
            headers_given: false,
        }
    }

    /// Sets the destination port.
    #[must_use]
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// Sets the `Host` (`api.example.org` or `api.example.org:8443`), normalized as
    /// the layer normalizes it.
    ///
    /// # Errors
    ///
    /// [`AnalysisError::Shape`] for a host the layer would reject.
    pub fn host(mut self, host: &str) -> Result<Self, AnalysisError> {
        let bad = |e: &dyn std::fmt::Display| AnalysisError::Shape(format!("host `{host}`: {e}"));
        let value = HeaderValue::from_str(host).map_err(|e| bad(&e))?;
        let uri = http::Uri::from_static("/");
        let normal = normalize_target(&uri, Some(&value)).map_err(|e| bad(&e))?;
        if let (Some(h), Some(a), Some(http)) = (normal.host, normal.authority, &mut self.http) {
            http.host = Some((h.to_string(), a.to_string()));
        }
        Ok(self)
    }

    /// Gives the request's headers: conditions on headers are then decided, not
    /// left open (a header not in `headers` is absent).
    #[must_use]
    pub fn headers(mut self, headers: HeaderMap) -> Self {
        if let Some(h) = &mut self.http {
            h.headers = headers;
            self.headers_given = true;
        }
        self
    }
}

impl std::fmt::Display for RequestShape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let probe = super::probe::Probe {
            port: self.port,
            http: self.http.clone(),
            ..Default::default()
        };
        probe.request().fmt(f)
    }
}

/// A caller, for `what-can` and for testing `who-can`'s answer: the peer's identity
/// (or none), its address, the original client's address behind proxies, and the
/// end user's verified JWT.
///
/// ```
/// use meshless::policy::analysis::Caller;
/// let id: meshless::SpiffeId = "spiffe://example.org/ns/web/sa/frontend".parse()?;
/// let caller = Caller::authenticated(id.into()).source_ip("10.1.2.3".parse()?);
/// assert_eq!(caller.to_string(), "spiffe://example.org/ns/web/sa/frontend from 10.1.2.3");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Caller {
    pub(crate) peer: Option<Identity>,
    pub(crate) source_ip: Option<IpAddr>,
    pub(crate) remote_ip: Option<IpAddr>,
    pub(crate) principal: Option<RequestPrincipal>,
    pub(crate) claims: Option<Claims>,
}

impl Caller {
    /// A peer that proved `identity`.
    pub fn authenticated(identity: Identity) -> Self {
        Self {
            peer: Some(identity),
            ..Self::unauthenticated()
        }
    }

    /// A peer that proved no identity.
    pub fn unauthenticated() -> Self {
        Self {
            peer: None,
            source_ip: None,
            remote_ip: None,
            principal: None,
            claims: None,
        }
    }

    /// The peer's address (also the original client's, until
    /// [`remote_ip`](Self::remote_ip) says otherwise).
    #[must_use]
    pub fn source_ip(mut self, ip: IpAddr) -> Self {
        self.source_ip = Some(ip);
        self.remote_ip = Some(ip);
        self
    }

    /// The original client's address behind a proxy (`None`: unknown).
    #[must_use]
    pub fn remote_ip(mut self, ip: Option<IpAddr>) -> Self {
        self.remote_ip = ip;
        self
    }

    /// The end user's verified JWT: its principal and claims.
    #[must_use]
    pub fn token(mut self, principal: RequestPrincipal, claims: Claims) -> Self {
        self.principal = Some(principal);
        self.claims = Some(claims);
        self
    }
}

impl std::fmt::Display for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let probe = super::probe::Probe {
            peer: self.peer.clone(),
            source_ip: self.source_ip,
            remote_ip: self.remote_ip,
            port: None,
            http: self.principal.as_ref().map(|p| HttpProbe {
                principal: Some(p.clone()),
                ..HttpProbe::default()
            }),
        };
        probe.caller().fmt(f)
    }
}
