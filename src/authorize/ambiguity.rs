//! Requests that the app behind the layer could read otherwise than the policy: refused
//! with 400 before any decision, wherever the layer sits.
//!
//! Each check closes one way a decision and the served request part ways (see the
//! `Authorize` docs): the app never gets a request whose method, host or headers it
//! would read differently from what was decided.

use std::fmt;

use http::{HeaderMap, Method, Request, header};

use super::headers::is_identity_header;

/// Why a request is ambiguous.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ambiguity {
    /// Both `Content-Length` and `Transfer-Encoding` (RFC 9112 §6.3).
    TwoFramings,
    /// More than one `Host` (RFC 9112 §3.2).
    TwoHosts,
    /// A header name with `_`.
    Underscore,
    /// `Connection` names an identity header.
    ConnectionNamesIdentity,
    /// A standard method spelled in another case.
    MethodCase,
    /// A method override (`X-HTTP-Method-Override`, `_method=`) naming another method.
    MethodOverride,
}

impl fmt::Display for Ambiguity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::TwoFramings => "both content-length and transfer-encoding",
            Self::TwoHosts => "more than one host header",
            Self::Underscore => "underscore in a header name",
            Self::ConnectionNamesIdentity => "connection header names an identity header",
            Self::MethodCase => "standard method not in upper case",
            Self::MethodOverride => "method override names another method",
        })
    }
}

/// The methods of RFC 9110 §9 and PATCH (RFC 5789).
const STANDARD: [Method; 9] = [
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::DELETE,
    Method::CONNECT,
    Method::OPTIONS,
    Method::TRACE,
    Method::PATCH,
];

/// Refuses what could be read two ways. `underscores`: header names with `_` are
/// allowed.
pub(crate) fn check<B>(req: &Request<B>, underscores: bool) -> Result<(), Ambiguity> {
    let headers = req.headers();
    let method = req.method().as_str();
    // One pass over the names (HeaderName comparisons of standard headers are cheap).
    let (mut te, mut cl, mut connection) = (false, false, false);
    for name in headers.keys() {
        if name == header::TRANSFER_ENCODING {
            te = true;
        } else if name == header::CONTENT_LENGTH {
            cl = true;
        } else if name == header::CONNECTION {
            connection = true;
        } else if name == header::HOST {
            if headers.get_all(header::HOST).iter().nth(1).is_some() {
                return Err(Ambiguity::TwoHosts);
            }
        } else {
            let name = name.as_str();
            if !underscores && name.as_bytes().contains(&b'_') {
                return Err(Ambiguity::Underscore);
            }
            if name.starts_with("x-")
                && OVERRIDE_HEADERS.contains(&name)
                && headers
                    .get_all(name)
                    .iter()
                    .any(|v| names_other_method(v.as_bytes(), method))
            {
                return Err(Ambiguity::MethodOverride);
            }
        }
    }
    // hyper never shows both (it drops the Content-Length, reads the body as chunked
    // and closes the connection afterwards); servers that pass both through get a 400.
    if te && cl {
        return Err(Ambiguity::TwoFramings);
    }
    if connection && names_identity_header(headers) {
        return Err(Ambiguity::ConnectionNamesIdentity);
    }
    // Standard methods are upper case: only a method with a lower-case letter can be
    // one spelled otherwise.
    if method.bytes().any(|b| b.is_ascii_lowercase())
        && STANDARD
            .iter()
            .any(|m| m.as_str() != method && m.as_str().eq_ignore_ascii_case(method))
    {
        return Err(Ambiguity::MethodCase);
    }
    // `_method=` as frameworks read it: form-decoded (`%5Fmethod`, `DEL%45TE`).
    let query_override = req.uri().query().is_some_and(|q| {
        crate::policy::query_has_value(q, "_method", |v| names_other_method(v, method))
    });
    if query_override {
        return Err(Ambiguity::MethodOverride);
    }
    Ok(())
}

/// The headers and query parameter that method-override middleware (Express's
/// `method-override`, Rails, Laravel, Symfony, ASP.NET) read as the real method.
const OVERRIDE_HEADERS: [&str; 3] = [
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
];

/// Whether a method override names a method other than the request's own: the app
/// would serve `DELETE` while the policy decided on `POST`.
fn names_other_method(value: &[u8], method: &str) -> bool {
    !value.trim_ascii().eq_ignore_ascii_case(method.as_bytes())
}

/// Whether `Connection` names `l5d-client-id` or `x-forwarded-client-cert` (in any
/// spelling): a hop that honours it would remove the value the layer sets.
fn names_identity_header(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .flat_map(|v| v.as_bytes().split(|b| *b == b','))
        .any(|token| is_identity_header(token.trim_ascii()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: &str, headers: &[(&str, &str)]) -> Request<()> {
        let mut b = Request::builder().method(method).uri("/x");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap()
    }

    #[test]
    fn refuses_each_ambiguity() {
        let cases: [(Request<()>, Ambiguity); 12] = [
            (
                req(
                    "POST",
                    &[("content-length", "1"), ("transfer-encoding", "chunked")],
                ),
                Ambiguity::TwoFramings,
            ),
            (
                req("GET", &[("host", "a"), ("host", "b")]),
                Ambiguity::TwoHosts,
            ),
            (req("GET", &[("x_user", "a")]), Ambiguity::Underscore),
            (
                req("GET", &[("connection", "close, L5D-Client-Id")]),
                Ambiguity::ConnectionNamesIdentity,
            ),
            (
                req("GET", &[("connection", "x_forwarded_client_cert")]),
                Ambiguity::ConnectionNamesIdentity,
            ),
            (req("delete", &[]), Ambiguity::MethodCase),
            (req("Get", &[]), Ambiguity::MethodCase),
            (
                req("POST", &[("x-http-method-override", "DELETE")]),
                Ambiguity::MethodOverride,
            ),
            (
                req("POST", &[("X-HTTP-Method", "delete")]),
                Ambiguity::MethodOverride,
            ),
            (
                Request::post("/x?a=1&_method=DELETE").body(()).unwrap(),
                Ambiguity::MethodOverride,
            ),
            (
                Request::post("/x?%5Fmethod=DEL%45TE").body(()).unwrap(),
                Ambiguity::MethodOverride,
            ),
            (
                Request::post("/x?_%6Dethod=DELETE").body(()).unwrap(),
                Ambiguity::MethodOverride,
            ),
        ];
        for (r, want) in cases {
            assert_eq!(check(&r, false), Err(want), "{r:?}");
        }
    }

    #[test]
    fn lets_plain_requests_through() {
        for r in [
            req(
                "GET",
                &[("host", "a"), ("connection", "keep-alive, upgrade")],
            ),
            req("PURGE", &[]),
            req("purge", &[]),
            req("DELETE", &[("x-user", "a")]),
            req("POST", &[("x-http-method-override", "POST")]),
        ] {
            assert_eq!(check(&r, false), Ok(()), "{r:?}");
        }
        assert_eq!(check(&req("GET", &[("x_user", "a")]), true), Ok(()));
    }
}
