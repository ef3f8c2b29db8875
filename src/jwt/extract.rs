//! Finding the token in a request, and removing it before the inner service sees it.

use http::header::COOKIE;
use http::uri::PathAndQuery;
use http::{HeaderMap, HeaderValue, Uri};

use super::TokenError;
use super::issuer::TokenLocation;

/// What the request carries: no token, one token (found at the locations in the
/// bitmask), or something that is a rejection on its own.
pub(crate) enum Found<'a> {
    None,
    One(&'a str, u64),
}

/// Looks for tokens at every configured location. Two different tokens, or a token
/// location holding an empty or non-UTF-8 token, is a rejection.
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
                    if let Some(token) = header_token(value, prefix)? {
                        record(token)?;
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
                    // A Cookie header that is not text cannot hold our cookie.
                    let Ok(text) = value.to_str() else { continue };
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

/// The token in a header value, if the value starts with `prefix`.
fn header_token<'a>(value: &'a HeaderValue, prefix: &str) -> Result<Option<&'a str>, TokenError> {
    let bytes = value.as_bytes();
    // `Authorization: Bearer` with nothing after it is an empty token, not no token.
    let scheme = prefix.trim_end().as_bytes();
    if !scheme.is_empty() && bytes.trim_ascii().eq_ignore_ascii_case(scheme) {
        return Ok(Some(""));
    }
    if bytes.len() < prefix.len() || !bytes[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
    {
        return Ok(None);
    }
    let text = value
        .to_str()
        .map_err(|_| TokenError::Malformed("token is not visible ASCII"))?;
    Ok(Some(text[prefix.len()..].trim()))
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
                    .filter(|v| !matches!(header_token(v, prefix), Ok(Some(_))))
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

    #[test]
    fn finds_bearer_case_insensitively_and_ignores_other_schemes() {
        let h = headers(&[("authorization", "bearer a.b.c")]);
        assert!(matches!(
            find(&h, &Uri::default(), &locs()),
            Ok(Found::One("a.b.c", 1))
        ));
        let h = headers(&[("authorization", "Basic dXNlcjpwYXNz")]);
        assert!(matches!(
            find(&h, &Uri::default(), &locs()),
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
    fn empty_bearer_is_a_rejection() {
        for value in ["Bearer  ", "Bearer", "bearer "] {
            let h = headers(&[("authorization", value)]);
            assert!(
                matches!(
                    find(&h, &Uri::default(), &locs()),
                    Err(TokenError::Malformed(_))
                ),
                "{value:?}"
            );
        }
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
