//! Finding the token in a request, and removing it before the inner service sees it.

use http::header::COOKIE;
use http::uri::PathAndQuery;
use http::{HeaderMap, HeaderName, HeaderValue, Uri};

use super::TokenError;
use super::issuer::TokenLocation;

/// What the request carries: no token, or one token (found at the locations in the
/// bitmask).
pub(crate) enum Found<'a> {
    None,
    One(&'a str, u64),
}

/// Looks for tokens at every configured location. Two different tokens, an empty
/// token, or a location holding something that is not a token (a header value other
/// than `<prefix><token>`, a `Cookie` header that is not text) is a rejection: what the
/// layer cannot read is never passed on unverified. No credential at any location is
/// [`Found::None`].
pub(crate) fn find<'a>(
    headers: &'a HeaderMap,
    uri: &'a Uri,
    locations: &[TokenLocation],
) -> Result<Found<'a>, TokenError> {
    let mut found: Option<&'a str> = None;
    let mut mask = 0u64;
    for (i, loc) in locations.iter().enumerate() {
        let mut record = |token: &'a str| -> Result<(), TokenError> {
            if token.is_empty() {
                return Err(TokenError::Malformed("empty token"));
            }
            match found {
                Some(t) if t != token => return Err(TokenError::MultipleTokens),
                // The same token twice in one place (two equal headers) is two tokens.
                Some(_) if mask & (1 << i) != 0 => return Err(TokenError::MultipleTokens),
                _ => {}
            }
            found = Some(token);
            mask |= 1 << i;
            Ok(())
        };
        match loc {
            TokenLocation::Header { name, prefix } => {
                for value in headers.get_all(name) {
                    match header_token(value, prefix) {
                        Some(token) => record(token)?,
                        // Read by another location of the same header (another
                        // prefix): that location records it.
                        None if read_elsewhere(locations, name, value) => {}
                        None => return Err(TokenError::Unreadable(name.clone())),
                    }
                }
            }
            TokenLocation::Query(name) => {
                for (k, v) in query_pairs(uri.query().unwrap_or("")) {
                    if k == &**name {
                        record(v)?;
                    }
                }
            }
            TokenLocation::Cookie(name) => {
                for value in headers.get_all(COOKIE) {
                    // Our cookie may be in a header we cannot read: refuse it rather
                    // than let the request through as if it had no token.
                    let text = value.to_str().map_err(|_| TokenError::Unreadable(COOKIE))?;
                    for (k, v) in cookie_pairs(text) {
                        if k == &**name {
                            record(v)?;
                        }
                    }
                }
            }
        }
    }
    Ok(match found {
        Some(t) => Found::One(t, mask),
        None => Found::None,
    })
}

/// The token in a header value that is exactly `prefix` (its letters matched
/// case-insensitively, as RFC 9110 §11.1 makes auth schemes case-insensitive) followed
/// by one RFC 6750 `b64token`. For the default `Bearer ` prefix that is
/// `Bearer <token>` with one space; another scheme, no token, a second space, trailing
/// whitespace or a list of credentials is not a token.
fn header_token<'a>(value: &'a HeaderValue, prefix: &str) -> Option<&'a str> {
    let bytes = value.as_bytes();
    let (head, token) = bytes.split_at_checked(prefix.len())?;
    if !head.eq_ignore_ascii_case(prefix.as_bytes()) || !is_b64token(token) {
        return None;
    }
    // A b64token is ASCII.
    std::str::from_utf8(token).ok()
}

/// Whether another header location with this header name reads `value`.
fn read_elsewhere(locations: &[TokenLocation], header: &HeaderName, value: &HeaderValue) -> bool {
    locations.iter().any(|loc| {
        matches!(loc, TokenLocation::Header { name, prefix }
            if name == header && header_token(value, prefix).is_some())
    })
}

/// RFC 6750 §2.1: `b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
/// A compact JWS is one.
fn is_b64token(token: &[u8]) -> bool {
    let end = token.iter().rposition(|&b| b != b'=').map_or(0, |i| i + 1);
    end > 0
        && token[..end]
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b))
}

/// `name=value` pairs of a query string, raw (a JWT needs no percent-encoding; an
/// encoded one fails verification rather than being decoded twice somewhere).
fn query_pairs(query: &str) -> impl Iterator<Item = (&str, &str)> {
    query.split('&').filter_map(|pair| pair.split_once('='))
}

fn cookie_pairs(header: &str) -> impl Iterator<Item = (&str, &str)> {
    header.split(';').filter_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        let v = v.trim();
        let v = v
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(v);
        Some((k.trim(), v))
    })
}

/// Removes the token from the locations in `mask`: matching header values are
/// dropped (other values of the same header stay), the cookie is cut out of the
/// `Cookie` header.
pub(crate) fn strip(
    headers: &mut HeaderMap,
    uri: &mut Uri,
    locations: &[TokenLocation],
    mask: u64,
) {
    for (i, loc) in locations.iter().enumerate() {
        if mask & (1 << i) == 0 {
            continue;
        }
        match loc {
            TokenLocation::Header { name, prefix } => {
                let kept: Vec<HeaderValue> = headers
                    .get_all(name)
                    .iter()
                    .filter(|v| header_token(v, prefix).is_none())
                    .cloned()
                    .collect();
                headers.remove(name);
                for v in kept {
                    headers.append(name.clone(), v);
                }
            }
            TokenLocation::Query(name) => strip_query(uri, name),
            TokenLocation::Cookie(name) => {
                let rewritten: Vec<HeaderValue> = headers
                    .get_all(COOKIE)
                    .iter()
                    .filter_map(|v| match v.to_str() {
                        Err(_) => Some(v.clone()),
                        Ok(text) => {
                            let rest: Vec<&str> = text
                                .split(';')
                                .filter(|pair| {
                                    pair.split_once('=')
                                        .is_none_or(|(k, _)| k.trim() != &**name)
                                })
                                .map(str::trim)
                                .filter(|p| !p.is_empty())
                                .collect();
                            if rest.is_empty() {
                                None
                            } else {
                                HeaderValue::from_str(&rest.join("; ")).ok()
                            }
                        }
                    })
                    .collect();
                headers.remove(COOKIE);
                for v in rewritten {
                    headers.append(COOKIE, v);
                }
            }
        }
    }
}

/// Removes every `name=…` pair from the query (the rest is kept byte for byte).
fn strip_query(uri: &mut Uri, name: &str) {
    let Some(query) = uri.query() else { return };
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| pair.split_once('=').is_none_or(|(k, _)| k != name))
        .collect();
    let pq = if kept.is_empty() {
        uri.path().to_owned()
    } else {
        format!("{}?{}", uri.path(), kept.join("&"))
    };
    let mut parts = std::mem::take(uri).into_parts();
    // The new path-and-query is a subset of a valid one, so it parses.
    parts.path_and_query = PathAndQuery::try_from(pq).ok();
    if let Ok(new) = Uri::from_parts(parts) {
        *uri = new;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn locs() -> Vec<TokenLocation> {
        vec![
            TokenLocation::bearer(),
            TokenLocation::Cookie("session".into()),
        ]
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    fn unreadable(h: &HeaderMap, locs: &[TokenLocation]) -> Option<HeaderName> {
        match find(h, &Uri::default(), locs) {
            Err(TokenError::Unreadable(name)) => Some(name),
            _ => None,
        }
    }

    #[test]
    fn finds_bearer_with_the_scheme_in_any_case() {
        for value in ["Bearer a.b.c", "bearer a.b.c", "BEARER a.b.c"] {
            let h = headers(&[("authorization", value)]);
            assert!(
                matches!(
                    find(&h, &Uri::default(), &locs()),
                    Ok(Found::One("a.b.c", 1))
                ),
                "{value:?}"
            );
        }
        // Every b64token character, and trailing padding.
        let h = headers(&[("authorization", "Bearer aZ09-._~+/b==")]);
        assert!(matches!(
            find(&h, &Uri::default(), &locs()),
            Ok(Found::One("aZ09-._~+/b==", 1))
        ));
    }

    #[test]
    fn authorization_other_than_one_bearer_token_is_unreadable() {
        for value in [
            "Basic dXNlcjpwYXNz",
            "Token a.b.c",
            "Bearer",
            "Bearer ",
            "Bearer  ",
            "Bearer  a.b.c",
            "Bearer a.b.c ",
            "Bearer\ta.b.c",
            "Bearera.b.c",
            " Bearer a.b.c",
            "Bearer a.b c",
            "Bearer a=b.c",
            "Bearer =",
            "Bearer a.b.c, Bearer d.e.f",
            "Bearer a.b.c,d",
            "Bearer \"a.b.c\"",
            "",
        ] {
            let h = headers(&[("authorization", value)]);
            assert_eq!(
                unreadable(&h, &locs()),
                Some(http::header::AUTHORIZATION),
                "{value:?}"
            );
        }
        let mut h = HeaderMap::new();
        h.insert(
            "authorization",
            HeaderValue::from_bytes(b"Bearer a.b.\xc3\xa9").unwrap(),
        );
        assert_eq!(unreadable(&h, &locs()), Some(http::header::AUTHORIZATION));
    }

    #[test]
    fn a_second_authorization_header_is_a_rejection_whatever_it_holds() {
        for second in ["Basic Zm9v", "Bearer x.y.z", "Bearer a.b.c"] {
            let h = headers(&[("authorization", "Bearer a.b.c"), ("authorization", second)]);
            assert!(find(&h, &Uri::default(), &locs()).is_err(), "{second:?}");
            let h = headers(&[("authorization", second), ("authorization", "Bearer a.b.c")]);
            assert!(find(&h, &Uri::default(), &locs()).is_err(), "{second:?}");
        }
    }

    #[test]
    fn a_header_is_unreadable_only_when_no_location_of_that_name_reads_it() {
        let locs = vec![
            TokenLocation::bearer(),
            TokenLocation::Header {
                name: http::header::AUTHORIZATION,
                prefix: "JWT ".into(),
            },
        ];
        let h = headers(&[("authorization", "JWT a.b.c")]);
        assert!(matches!(
            find(&h, &Uri::default(), &locs),
            Ok(Found::One("a.b.c", 2))
        ));
        let h = headers(&[("authorization", "Basic Zm9v")]);
        assert_eq!(unreadable(&h, &locs), Some(http::header::AUTHORIZATION));
        // A custom header with no prefix: the whole value is the token.
        let locs = vec![TokenLocation::Header {
            name: HeaderName::from_static("x-jwt"),
            prefix: "".into(),
        }];
        let h = headers(&[("x-jwt", "a.b.c")]);
        assert!(matches!(
            find(&h, &Uri::default(), &locs),
            Ok(Found::One("a.b.c", 1))
        ));
        let h = headers(&[("x-jwt", "Bearer a.b.c")]);
        assert_eq!(
            unreadable(&h, &locs),
            Some(HeaderName::from_static("x-jwt"))
        );
    }

    #[test]
    fn a_cookie_header_that_is_not_text_is_unreadable_when_a_cookie_is_read() {
        let mut h = HeaderMap::new();
        h.insert(
            "cookie",
            HeaderValue::from_bytes(b"theme=\xff; session=a.b.c").unwrap(),
        );
        assert_eq!(unreadable(&h, &locs()), Some(COOKIE));
        // Without a cookie location, the Cookie header is not looked at.
        assert!(matches!(
            find(&h, &Uri::default(), &[TokenLocation::bearer()]),
            Ok(Found::None)
        ));
    }

    #[test]
    fn no_credential_anywhere_is_no_token() {
        let h = headers(&[("cookie", "theme=dark"), ("x-other", "Basic Zm9v")]);
        assert!(matches!(
            find(&h, &"/p?q=1".parse().unwrap(), &locs()),
            Ok(Found::None)
        ));
        assert!(matches!(
            find(&HeaderMap::new(), &Uri::default(), &locs()),
            Ok(Found::None)
        ));
    }

    #[test]
    fn two_tokens_are_rejected_even_when_equal_in_one_header() {
        let h = headers(&[
            ("authorization", "Bearer a.b.c"),
            ("authorization", "Bearer x.y.z"),
        ]);
        assert!(matches!(
            find(&h, &Uri::default(), &locs()),
            Err(TokenError::MultipleTokens)
        ));
        let h = headers(&[
            ("authorization", "Bearer a.b.c"),
            ("authorization", "Bearer a.b.c"),
        ]);
        assert!(matches!(
            find(&h, &Uri::default(), &locs()),
            Err(TokenError::MultipleTokens)
        ));
        let h = headers(&[
            ("authorization", "Bearer a.b.c"),
            ("cookie", "x=1; session=d.e.f"),
        ]);
        assert!(matches!(
            find(&h, &Uri::default(), &locs()),
            Err(TokenError::MultipleTokens)
        ));
    }

    #[test]
    fn same_token_in_two_locations_is_one_token_found_twice() {
        let h = headers(&[
            ("authorization", "Bearer a.b.c"),
            ("cookie", "session=a.b.c"),
        ]);
        assert!(matches!(
            find(&h, &Uri::default(), &locs()),
            Ok(Found::One("a.b.c", 3))
        ));
    }

    #[test]
    fn empty_cookie_or_query_token_is_a_rejection() {
        let h = headers(&[("cookie", "session=; theme=dark")]);
        assert!(matches!(
            find(&h, &Uri::default(), &locs()),
            Err(TokenError::Malformed(_))
        ));
        let locs = vec![TokenLocation::Query("access_token".into())];
        let uri: Uri = "/?access_token=".parse().unwrap();
        assert!(matches!(
            find(&HeaderMap::new(), &uri, &locs),
            Err(TokenError::Malformed(_))
        ));
    }

    #[test]
    fn query_parameter_tokens_are_found_and_stripped() {
        let locs = vec![TokenLocation::Query("access_token".into())];
        let mut uri: Uri = "/a/b?x=1&access_token=t.o.k&y=2".parse().unwrap();
        let h = HeaderMap::new();
        assert!(matches!(find(&h, &uri, &locs), Ok(Found::One("t.o.k", 1))));
        strip(&mut HeaderMap::new(), &mut uri, &locs, 1);
        assert_eq!(uri, "/a/b?x=1&y=2");
        let mut uri: Uri = "http://h:8080/p?access_token=t".parse().unwrap();
        strip(&mut HeaderMap::new(), &mut uri, &locs, 1);
        assert_eq!(uri, "http://h:8080/p");
        let two: Uri = "/?access_token=a.b.c&access_token=d.e.f".parse().unwrap();
        assert!(matches!(
            find(&h, &two, &locs),
            Err(TokenError::MultipleTokens)
        ));
    }

    #[test]
    fn strip_keeps_unrelated_values_and_cookies() {
        let mut h = headers(&[
            ("authorization", "Bearer a.b.c"),
            ("authorization", "Basic Zm9v"),
            ("cookie", "theme=dark; session=a.b.c; lang=en"),
        ]);
        strip(&mut h, &mut Uri::default(), &locs(), 3);
        let auth: Vec<_> = h.get_all("authorization").iter().collect();
        assert_eq!(auth, ["Basic Zm9v"]);
        assert_eq!(h.get("cookie").unwrap(), "theme=dark; lang=en");
        let mut h = headers(&[("cookie", "session=a.b.c")]);
        strip(&mut h, &mut Uri::default(), &locs(), 2);
        assert!(h.get("cookie").is_none());
    }
}
