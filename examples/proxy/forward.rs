//! Forwarding HTTP requests to the next hop: hop-by-hop headers stripped both ways, the
//! target URI rewritten, 502 when the next hop fails.

use std::convert::Infallible;
use std::error::Error as StdError;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Request, Response, StatusCode, Uri, Version};
use http_body_util::{Either, Full};

use crate::app_pool::AppBody;

/// What the proxy answers with: the next hop's body, or a short local error.
pub type ProxyBody = Either<AppBody, Full<Bytes>>;

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1), removed
/// before forwarding. `te: trailers` survives: gRPC over HTTP/2 requires it.
const HOP_BY_HOP: [HeaderName; 7] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// Removes hop-by-hop headers, including those that `Connection` names.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // Most messages have none: one pass over their few names is cheaper than hashing
    // each of ours.
    let hop = |name: &HeaderName| {
        HOP_BY_HOP.contains(name) || name == header::TE || name == header::TRAILER
    };
    if !headers.keys().any(hop) {
        return;
    }
    if headers.contains_key(header::CONNECTION) {
        let named: Vec<HeaderName> = headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
            .collect();
        for name in named {
            headers.remove(name);
        }
    }
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
    // Only `te: trailers` has meaning end to end (and only in HTTP/2).
    let te_trailers = headers
        .get_all(header::TE)
        .iter()
        .any(|v| v.as_bytes().eq_ignore_ascii_case(b"trailers"));
    headers.remove(header::TE);
    if te_trailers {
        headers.insert(header::TE, HeaderValue::from_static("trailers"));
    }
    headers.remove(header::TRAILER);
}

/// Points `req` at `scheme://authority` keeping its path and query, and sets the
/// version the next hop is spoken to in. The original authority is kept in `Host`, so
/// the next hop sees the name the client used.
pub fn retarget<B>(req: &mut Request<B>, scheme: Scheme, authority: &Authority, version: Version) {
    if !req.headers().contains_key(header::HOST)
        && let Some(original) = req.uri().authority()
        && let Ok(value) = HeaderValue::from_str(original.as_str())
    {
        req.headers_mut().insert(header::HOST, value);
    }
    let path = req
        .uri()
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| PathAndQuery::from_static("/"));
    let mut parts = http::uri::Parts::default();
    parts.scheme = Some(scheme);
    parts.authority = Some(authority.clone());
    parts.path_and_query = Some(path);
    // All parts are valid on their own: from_parts cannot fail on them.
    if let Ok(uri) = Uri::from_parts(parts) {
        *req.uri_mut() = uri;
    }
    *req.version_mut() = version;
    strip_hop_by_hop(req.headers_mut());
}

/// Prepares the next hop's response for our client: hop-by-hop headers removed, the
/// version set to the one the client spoke.
pub fn relay<B: Into<AppBody>>(
    mut res: Response<B>,
    client_version: Version,
) -> Response<ProxyBody> {
    strip_hop_by_hop(res.headers_mut());
    *res.version_mut() = client_version;
    res.map(|body| Either::Left(body.into()))
}

/// A local error response (`502 Bad Gateway`, ...), with a one-line body.
pub fn local(status: StatusCode, body: &'static str) -> Response<ProxyBody> {
    let mut res = Response::new(Either::Right(Full::new(Bytes::from_static(
        body.as_bytes(),
    ))));
    *res.status_mut() = status;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    res
}

/// The error and its causes, joined, for a log line.
pub fn error_chain(err: &(dyn StdError + 'static)) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        let text = e.to_string();
        if !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = e.source();
    }
    out
}

/// The first error of type `T` in `err`'s source chain.
pub fn find_cause<'a, T: StdError + 'static>(err: &'a (dyn StdError + 'static)) -> Option<&'a T> {
    let mut current = Some(err);
    while let Some(e) = current {
        if let Some(found) = e.downcast_ref::<T>() {
            return Some(found);
        }
        current = e.source();
    }
    None
}

/// Result type of the forwarding services (they answer errors themselves).
pub type ProxyResult = Result<Response<ProxyBody>, Infallible>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_hop_by_hop_and_connection_named_headers() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("close, x-secret"),
        );
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        h.insert(header::TE, HeaderValue::from_static("gzip"));
        h.insert("x-kept", HeaderValue::from_static("yes"));
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1, "{h:?}");
        assert_eq!(h["x-kept"], "yes");
    }

    #[test]
    fn keeps_te_trailers_for_grpc() {
        let mut h = HeaderMap::new();
        h.append(header::TE, HeaderValue::from_static("trailers"));
        strip_hop_by_hop(&mut h);
        assert_eq!(h[header::TE], "trailers");
    }

    #[test]
    fn retarget_keeps_path_query_and_original_authority() {
        let mut req = Request::builder()
            .uri("https://orders.example:8443/a/b?x=1")
            .version(Version::HTTP_2)
            .body(())
            .unwrap();
        let app: Authority = "127.0.0.1:8080".parse().unwrap();
        retarget(&mut req, Scheme::HTTP, &app, Version::HTTP_11);
        assert_eq!(req.uri(), "http://127.0.0.1:8080/a/b?x=1");
        assert_eq!(req.headers()[header::HOST], "orders.example:8443");
        assert_eq!(req.version(), Version::HTTP_11);
    }
}
