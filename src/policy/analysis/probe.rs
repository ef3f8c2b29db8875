//! [`Probe`]: one concrete request (or TCP connection), as the search builds it and
//! the real engine decides it.

use std::fmt;
use std::net::IpAddr;

use http::HeaderMap;

use super::super::attrs::RequestAttrs;
use crate::{Claims, Identity, RequestPrincipal};

/// A concrete request: every attribute the policy reads.
#[derive(Debug, Clone, Default)]
pub(crate) struct Probe {
    pub(crate) peer: Option<Identity>,
    pub(crate) source_ip: Option<IpAddr>,
    pub(crate) remote_ip: Option<IpAddr>,
    pub(crate) port: Option<u16>,
    pub(crate) http: Option<HttpProbe>,
}

/// The HTTP half of a [`Probe`].
#[derive(Debug, Clone, Default)]
pub(crate) struct HttpProbe {
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) query: Option<String>,
    /// The host and the authority it came with.
    pub(crate) host: Option<(String, String)>,
    pub(crate) headers: HeaderMap,
    pub(crate) principal: Option<RequestPrincipal>,
    pub(crate) claims: Option<Claims>,
}

impl Probe {
    /// The attributes the policy decides on.
    pub(crate) fn attrs(&self) -> RequestAttrs<'_> {
        let conn = RequestAttrs::connection(self.peer.as_ref(), self.source_ip, self.port)
            .with_remote_ip(self.remote_ip);
        let Some(h) = &self.http else {
            return conn;
        };
        let attrs = conn
            .with_request(&h.method, &h.path)
            .with_query(h.query.as_deref())
            .with_headers(&h.headers)
            .with_principal(h.principal.as_ref())
            .with_claims(h.claims.as_ref());
        match &h.host {
            Some((host, authority)) => attrs.with_host(host).with_authority(authority),
            None => attrs,
        }
    }

    /// The caller half, in words: `spiffe://td/ns/web/sa/x from 10.0.0.1`.
    pub(crate) fn caller(&self) -> Words<'_> {
        Words(self, true)
    }

    /// The request half, in words: `GET /orders/x on port 8443`.
    pub(crate) fn request(&self) -> Words<'_> {
        Words(self, false)
    }
}

/// A half of a probe, displayed.
pub(crate) struct Words<'a>(&'a Probe, bool);

impl fmt::Display for Words<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = self.0;
        if self.1 {
            match &p.peer {
                Some(id) => write!(f, "{id}")?,
                None => f.write_str("an unauthenticated peer")?,
            }
            if let Some(ip) = p.source_ip {
                write!(f, " from {ip}")?;
            }
            if p.remote_ip != p.source_ip {
                match p.remote_ip {
                    Some(ip) => write!(f, " (client {ip})")?,
                    None => f.write_str(" (client address unknown)")?,
                }
            }
            if let Some(u) = p.http.as_ref().and_then(|h| h.principal.as_ref()) {
                write!(f, " with a JWT of `{}`", u.as_str())?;
            }
            if let Some(c) = p.http.as_ref().and_then(|h| h.claims.as_ref()) {
                write!(f, " claims {}", c.to_json())?;
            }
            return Ok(());
        }
        match &p.http {
            None => f.write_str("a TCP connection")?,
            Some(h) => {
                write!(f, "{} {}", h.method, h.path)?;
                if let Some(q) = &h.query {
                    write!(f, "?{q}")?;
                }
                if let Some((_, authority)) = &h.host {
                    write!(f, " (host {authority})")?;
                }
                for (name, value) in &h.headers {
                    write!(
                        f,
                        " [{name}: {}]",
                        String::from_utf8_lossy(value.as_bytes())
                    )?;
                }
            }
        }
        match p.port {
            Some(port) => write!(f, " to port {port}"),
            None => Ok(()),
        }
    }
}
