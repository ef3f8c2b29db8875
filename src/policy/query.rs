//! A request's query string, read as Linkerd's proxy reads it for an HTTPRoute's
//! `queryParams`: as `application/x-www-form-urlencoded` pairs (the `url` crate's
//! `form_urlencoded::parse`, which the proxy's `MatchQueryParam` calls).
//!
//! - Pairs are separated by `&`; empty pieces (`a=1&&b=2`) are skipped.
//! - A pair splits at its first `=`; a piece without `=` (`?debug`) has the value `""`.
//! - In names and values, `+` is a space and `%XX` is the byte `XX` (`%2B` is a
//!   literal `+`); a `%` not followed by two hex digits stays as it is. Decoded bytes
//!   that are not UTF-8 read as U+FFFD, as `String::from_utf8_lossy` reads them.
//! - A pair matches when its decoded name and decoded value equal the ones the
//!   policy wrote, byte for byte (case-sensitive). The policy's own text is not
//!   decoded: write the value as it reads after decoding (`a b` matches `a%20b` and
//!   `a+b`).
//! - A repeated parameter matches when any of its values does, as in Linkerd's
//!   proxy. (The Gateway API leaves repeated parameters undefined and recommends the
//!   first value; it also says routes SHOULD NOT depend on them.)
//!
//! Matching allocates nothing unless the policy's value itself contains U+FFFD.

/// Whether `query` (the raw query string, without `?`) has a pair whose decoded
/// name is `name` and decoded value is `value`.
pub(crate) fn has_pair(query: &str, name: &str, value: &str) -> bool {
    query.split('&').filter(|p| !p.is_empty()).any(|pair| {
        let (n, v) = pair.split_once('=').unwrap_or((pair, ""));
        decoded_eq(n, name) && decoded_eq(v, value)
    })
}

/// Whether `query` has a pair whose decoded name is `name` and whose decoded value
/// satisfies `pred` (method-override middleware reads `_method=` this way).
pub(crate) fn any_value(query: &str, name: &str, mut pred: impl FnMut(&[u8]) -> bool) -> bool {
    query.split('&').filter(|p| !p.is_empty()).any(|pair| {
        let (n, v) = pair.split_once('=').unwrap_or((pair, ""));
        decoded_eq(n, name) && pred(&decoded(v).collect::<Vec<u8>>())
    })
}

/// Whether `raw`, decoded as a form-urlencoded name or value, equals `want`.
fn decoded_eq(raw: &str, want: &str) -> bool {
    if want.contains('\u{FFFD}') {
        // Only here can bytes that are not UTF-8 compare equal (as U+FFFD).
        let bytes: Vec<u8> = decoded(raw).collect();
        return String::from_utf8_lossy(&bytes) == want;
    }
    // Otherwise decoded bytes that are not UTF-8 equal no `want`, lossy or not.
    decoded(raw).eq(want.bytes())
}

/// The bytes of `raw` with `+` as a space and `%XX` decoded.
fn decoded(raw: &str) -> impl Iterator<Item = u8> + '_ {
    let b = raw.as_bytes();
    let hex = |c: Option<&u8>| c.and_then(|c| char::from(*c).to_digit(16));
    let mut i = 0;
    std::iter::from_fn(move || {
        let c = *b.get(i)?;
        i += 1;
        Some(match c {
            b'+' => b' ',
            b'%' => match (hex(b.get(i)), hex(b.get(i + 1))) {
                (Some(h), Some(l)) => {
                    i += 2;
                    // Two hex digits: at most 0xff.
                    u8::try_from(h * 16 + l).unwrap_or(b'%')
                }
                _ => b'%',
            },
            c => c,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::has_pair;

    #[test]
    fn matches_as_linkerds_proxy_does() {
        // The vectors of linkerd2-proxy's `query_param_exact` test.
        assert!(has_pair("foo=bar", "foo", "bar"));
        assert!(has_pair("foo=bar&fah=bah", "foo", "bar"));
        assert!(has_pair("fah=bah&foo=bar", "foo", "bar"));
        assert!(!has_pair("foo=bah", "foo", "bar"));
        assert!(has_pair("foo", "foo", ""));
        assert!(!has_pair("foo=bah", "foo", ""));
        assert!(!has_pair("bar=foo", "foo", ""));
    }

    #[test]
    fn decodes_names_and_values_as_a_form() {
        assert!(has_pair("q=a%20b", "q", "a b"));
        assert!(has_pair("q=a+b", "q", "a b"));
        assert!(has_pair("q=a%2Bb", "q", "a+b"));
        assert!(!has_pair("q=a+b", "q", "a+b"));
        assert!(has_pair("my%20name=x", "my name", "x"));
        assert!(has_pair("q=%e9t%C3%A9", "q", "\u{FFFD}t\u{e9}"));
        assert!(!has_pair("q=%e9", "q", "\u{e9}"));
        assert!(has_pair("q=100%", "q", "100%"));
        assert!(has_pair("q=%zz%4", "q", "%zz%4"));
        assert!(has_pair("q=a=b", "q", "a=b"));
        assert!(has_pair("&&q=1&", "q", "1"));
        assert!(!has_pair("", "q", ""));
    }

    #[test]
    fn names_and_values_are_case_sensitive() {
        assert!(!has_pair("ANIMAL=whale", "animal", "whale"));
        assert!(!has_pair("animal=Whale", "animal", "whale"));
    }

    #[test]
    fn a_repeated_parameter_matches_on_any_value() {
        assert!(has_pair("a=1&a=2", "a", "2"));
        assert!(has_pair("a=1&a=2", "a", "1"));
    }
}
