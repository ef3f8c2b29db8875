//! Request path and host normalization, run before any path or host rule is matched.
//!
//! What is authorized must be what is served, wherever the enforcement layer sits. A
//! router (axum's, or the app's behind a proxy) has often chosen its handler from the
//! raw path before the layer runs, so the layer cannot fix the path up: it can only
//! refuse what two readers could read differently. So [`normalize_path`]
//!
//! - **refuses** (the layer answers 400) any path that is not already in normal form —
//!   a dot segment, raw or encoded (`/a/../b`, `/a/%2e%2e/b`, `/..;/b`), an empty segment
//!   (`//`), an encoded separator (`%2F`, `%5C`), an encoded `%` (`%25`: double
//!   encoding), a control character, a malformed escape, or bytes that do not decode to
//!   UTF-8 — so a router matching the raw path and the policy see the same segments;
//! - **decodes** every other escape, so the policy matches what an app that decodes the
//!   path once reads (`/%40admin` is `/@admin`, `/caf%C3%A9` is `/café`).
//!
//! ```
//! use meshless::policy::{PathError, normalize_host, normalize_path};
//! assert_eq!(normalize_path("/a/%40b/caf%c3%a9")?, "/a/@b/café");
//! assert!(matches!(normalize_path("/admin/../public"), Err(PathError::NotNormalized { .. })));
//! assert!(normalize_path("/admin%2Fusers").is_err());
//! assert_eq!(normalize_host("API.Example.org:8443"), "api.example.org");
//! # Ok::<(), meshless::policy::PathError>(())
//! ```

use std::borrow::Cow;

use super::error::PathError;

/// The path as the policy matches it: `path` (without its query) with every
/// percent-escape decoded, provided the path is already in normal form.
///
/// A path in normal form starts with `/` (or is `*`, the `OPTIONS *` target) and has no
/// dot segment and no empty segment other than a trailing one (`/orders/` is fine).
/// Because such a path has the same segments before and after decoding, a router that
/// matches the raw path, an app that decodes it once and the policy all read the same
/// request. Patterns in policies are written decoded (`/café`, `/@admin`).
///
/// # Errors
///
/// [`PathError::NotNormalized`] (with the RFC 3986 resolution, for a client to send
/// instead) for a dot segment, raw or encoded, or an empty segment; an encoded slash or
/// backslash (`%2F`, `%5C`), an encoded `%` (`%25`), a raw backslash, NUL or any control
/// character (raw or encoded), a malformed escape, a path whose decoded bytes are not
/// UTF-8, a path not starting with `/`, or a dot segment with `;` parameters
/// (`/..;/admin`, `/.;x/`), which servlet containers resolve as `..` or `.`.
pub fn normalize_path(path: &str) -> Result<Cow<'_, str>, PathError> {
    if path.is_empty() {
        return Ok(Cow::Borrowed("/"));
    }
    if path == "*" {
        return Ok(Cow::Borrowed(path));
    }
    if !path.starts_with('/') {
        return Err(PathError::NotAbsolute(path.to_owned()));
    }
    let mut has_escape = false;
    for &b in path.as_bytes() {
        match b {
            b'\\' => return Err(PathError::Backslash(path.to_owned())),
            0..=0x1f | 0x7f => return Err(PathError::ControlCharacter(escape(path))),
            b'%' => has_escape = true,
            _ => {}
        }
    }
    let decoded = if has_escape {
        Cow::Owned(decode(path)?)
    } else {
        Cow::Borrowed(path)
    };
    debug_assert!(decoded.starts_with('/'));
    check_segments(path, &decoded)?;
    Ok(decoded)
}

/// Decodes the escapes of a path fragment (a suffix pattern) with the checks of
/// [`normalize_path`] but none on segments.
pub(crate) fn decode_escapes(text: &str) -> Result<Cow<'_, str>, PathError> {
    if text.bytes().any(|b| b == b'\\' || b < 0x20 || b == 0x7f) {
        return Err(PathError::ControlCharacter(escape(text)));
    }
    if text.contains('%') {
        decode(text).map(Cow::Owned)
    } else {
        Ok(Cow::Borrowed(text))
    }
}

/// Refuses dot segments (also with `;` parameters) and empty segments other than the
/// last one. `decoded` starts with `/`.
fn check_segments(path: &str, decoded: &str) -> Result<(), PathError> {
    let segments = decoded[1..].split('/');
    let count = decoded[1..].split('/').count();
    let mut not_normal = false;
    for (i, segment) in segments.enumerate() {
        let base = segment.split(';').next().unwrap_or_default();
        if matches!(base, "." | "..") {
            if base.len() < segment.len() {
                return Err(PathError::DotSegmentParameters(path.to_owned()));
            }
            not_normal = true;
        } else if segment.is_empty() && i + 1 < count {
            not_normal = true;
        }
    }
    if not_normal {
        return Err(PathError::NotNormalized {
            path: path.to_owned(),
            normal: remove_dot_segments(decoded),
        });
    }
    Ok(())
}

fn escape(s: &str) -> String {
    s.escape_default().to_string()
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Decodes every escape, refusing those that would change what the path means to a
/// reader that decodes it (separators, `%`, control characters) and a result that is
/// not UTF-8.
fn decode(path: &str) -> Result<String, PathError> {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(path.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b != b'%' {
            out.push(b);
            i += 1;
            continue;
        }
        let (Some(hi), Some(lo)) = (
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) else {
            return Err(PathError::BadPercentEncoding(path.to_owned()));
        };
        let v = hi * 16 + lo;
        match v {
            b'/' | b'\\' => return Err(PathError::EncodedSeparator(path.to_owned())),
            b'%' => return Err(PathError::EncodedPercent(path.to_owned())),
            0..=0x1f | 0x7f => return Err(PathError::ControlCharacter(escape(path))),
            _ => out.push(v),
        }
        i += 3;
    }
    String::from_utf8(out).map_err(|_| PathError::InvalidUtf8(path.to_owned()))
}

/// Removes `.` and `..` segments and empty segments (merging `//`), keeping a trailing
/// slash where RFC 3986 keeps one: the path a client should have sent. `path` starts
/// with `/`.
fn remove_dot_segments(path: &str) -> String {
    let mut stack: Vec<&str> = Vec::new();
    let mut trailing_slash = false;
    let segments: Vec<&str> = path[1..].split('/').collect();
    let last = segments.len() - 1;
    for (i, seg) in segments.into_iter().enumerate() {
        let is_last = i == last;
        match seg {
            "" | "." => trailing_slash = is_last,
            ".." => {
                stack.pop();
                trailing_slash = is_last;
            }
            _ => {
                stack.push(seg);
                trailing_slash = false;
            }
        }
    }
    let mut out = String::with_capacity(path.len());
    for seg in &stack {
        out.push('/');
        out.push_str(seg);
    }
    if stack.is_empty() || trailing_slash {
        out.push('/');
    }
    out
}

/// The second reading of a path with `;` parameters: each segment cut at its first
/// `;` and empty segments dropped, as servlet containers (Tomcat, Spring) route it.
/// `None` when the path has no `;`.
pub(crate) fn without_parameters(path: &str) -> Option<String> {
    if !path.contains(';') {
        return None;
    }
    let mut out = String::with_capacity(path.len());
    let trailing = path.ends_with('/');
    for segment in path.split('/') {
        let base = segment.split(';').next().unwrap_or_default();
        if !base.is_empty() {
            out.push('/');
            out.push_str(base);
        }
    }
    if out.is_empty() || trailing {
        out.push('/');
    }
    Some(out)
}

/// Normalizes a host for matching: ASCII lower case, port removed (`host:port` and
/// `[v6]:port`), one trailing dot removed (`example.org.` is `example.org`).
pub fn normalize_host(host: &str) -> Cow<'_, str> {
    let without_port = if let Some(rest) = host.strip_prefix('[') {
        match rest.find(']') {
            Some(end) => &host[..end + 2],
            None => host,
        }
    } else {
        match host.rsplit_once(':') {
            Some((name, port))
                if !name.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) =>
            {
                name
            }
            _ => host,
        }
    };
    let trimmed = without_port.strip_suffix('.').unwrap_or(without_port);
    if trimmed.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(trimmed.to_ascii_lowercase())
    } else {
        Cow::Borrowed(trimmed)
    }
}

/// Splits an authority `host[:port]` the one way every reader splits it, or `None`
/// when readers could disagree: userinfo (`user@host`), a port that is not 1 to 5
/// digits up to 65535, a second `:` outside brackets (`a:1:2`), an empty host, or a
/// host byte outside letters, digits, `-`, `.`, `_`, `~` (brackets: hex digits, `:`
/// and `.`). Many app servers cut the host at the first `:`, so `admin:abc` must not
/// reach them as anything but an error.
pub(crate) fn split_authority(authority: &str) -> Option<(&str, Option<&str>)> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (inner, after) = rest.split_once(']')?;
        let ok = !inner.is_empty()
            && inner
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
        if !ok {
            return None;
        }
        let host = &authority[..inner.len() + 2];
        match after {
            "" => (host, None),
            _ => (host, Some(after.strip_prefix(':')?)),
        }
    } else {
        let (host, port) = match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        };
        let ok = !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
        if !ok {
            return None;
        }
        (host, port)
    };
    if let Some(port) = port {
        let digits =
            !port.is_empty() && port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit());
        if !digits || port.parse::<u32>().ok()? > 65535 {
            return None;
        }
    }
    Some((host, port))
}

/// An authority as the policy matches it: the host as [`normalize_host`] makes it, then
/// `:` and the port as a number (`Example.ORG.:08443` is `example.org:8443`), or the
/// host alone when the authority has no port. `host` and `port` are the halves
/// [`split_authority`] returns for `authority`, which is borrowed (no allocation) when
/// it is already in that form.
pub(crate) fn normalize_authority<'a>(
    authority: &'a str,
    host: &'a str,
    port: Option<&str>,
) -> Cow<'a, str> {
    authority_of(authority, host, &host_part(host), port)
}

/// [`normalize_authority`] with the host already normalized (`normal`, from
/// [`host_part`]).
fn authority_of<'a>(
    authority: &'a str,
    host: &'a str,
    normal: &Cow<'a, str>,
    port: Option<&str>,
) -> Cow<'a, str> {
    let Some(port) = port else {
        return normal.clone();
    };
    let plain_port = port.len() == 1 || !port.starts_with('0');
    match normal {
        Cow::Borrowed(h) if h.len() == host.len() && plain_port => Cow::Borrowed(authority),
        h => Cow::Owned(format!("{h}:{}", port.parse::<u32>().unwrap_or_default())),
    }
}

/// The host half of a split authority, normalized as [`normalize_host`] does (it has
/// no port left to remove): one trailing dot removed, ASCII lower case.
fn host_part(host: &str) -> Cow<'_, str> {
    let trimmed = host.strip_suffix('.').unwrap_or(host);
    if trimmed.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(trimmed.to_ascii_lowercase())
    } else {
        Cow::Borrowed(trimmed)
    }
}

/// The request target as the policy sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NormalizedTarget<'a> {
    /// The normalized host, from the URI authority or the Host header.
    pub host: Option<Cow<'a, str>>,
    /// The normalized authority, `host` with the port the client sent (`example.org:8443`),
    /// or `host` alone when it sent none: what Istio's `hosts` are matched against.
    pub authority: Option<Cow<'a, str>>,
    /// The decoded path (query removed) that the policy matches; see [`normalize_path`].
    pub path: Cow<'a, str>,
}

/// Normalizes a request's target from its URI and Host header.
///
/// # Errors
///
/// Any [`normalize_path`] error; [`PathError::HostMismatch`] when an absolute-form URI
/// or HTTP/2 `:authority` names another host or port than the Host header (RFC 9113
/// §8.3.1); [`PathError::InvalidHost`] when either is not a plain `host[:port]` (see
/// above: userinfo, a bad port, stray colons, other bytes).
pub fn normalize_target<'a>(
    uri: &'a http::Uri,
    host_header: Option<&'a http::HeaderValue>,
) -> Result<NormalizedTarget<'a>, PathError> {
    let path = normalize_path(uri.path())?;
    let invalid =
        |s: &[u8]| PathError::InvalidHost(String::from_utf8_lossy(s).escape_default().to_string());
    let header = match host_header {
        Some(v) => {
            let text = v.to_str().map_err(|_| invalid(v.as_bytes()))?;
            Some((
                text,
                split_authority(text).ok_or_else(|| invalid(v.as_bytes()))?,
            ))
        }
        None => None,
    };
    let authority = match uri.authority() {
        Some(a) => Some((
            a.as_str(),
            split_authority(a.as_str()).ok_or_else(|| invalid(a.as_str().as_bytes()))?,
        )),
        None => None,
    };
    let chosen = match (authority, header) {
        (Some((a, (ah, ap))), Some((h, (hh, hp)))) => {
            // The same bytes agree; otherwise host (case, trailing dot) and port must.
            if a != h && (host_part(ah) != host_part(hh) || ap != hp) {
                return Err(PathError::HostMismatch {
                    authority: a.to_owned(),
                    host: h.to_owned(),
                });
            }
            Some((a, (ah, ap)))
        }
        (one @ Some(_), None) | (None, one @ Some(_)) => one,
        (None, None) => None,
    };
    let (host, authority) = match chosen {
        Some((a, (host, port))) => {
            let normal = host_part(host);
            let authority = authority_of(a, host, &normal, port);
            (Some(normal), Some(authority))
        }
        None => (None, None),
    };
    Ok(NormalizedTarget {
        host,
        authority,
        path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_in_normal_form_are_decoded() {
        let ok = [
            ("/", "/"),
            ("/orders", "/orders"),
            ("/orders/", "/orders/"),
            ("/%61%62c", "/abc"),
            ("/x%7e", "/x~"),
            ("/caf%c3%a9", "/café"),
            ("/caf%C3%A9", "/café"),
            ("/a%20b", "/a b"),
            ("/%40admin", "/@admin"),
            ("/a%2a", "/a*"),
            ("/a%3Fb", "/a?b"),
            ("/a%2ebc", "/a.bc"),
            ("/...", "/..."),
            ("*", "*"),
        ];
        for (input, want) in ok {
            assert_eq!(normalize_path(input).unwrap(), want, "input {input:?}");
        }
    }

    #[test]
    fn paths_not_in_normal_form_are_refused_with_the_normal_form() {
        for (input, normal) in [
            ("/a/./b", "/a/b"),
            ("/a/b/../c", "/a/c"),
            ("/a/b/..", "/a/"),
            ("/../../etc/passwd", "/etc/passwd"),
            ("//a///b//", "/a/b/"),
            ("/%2e%2e/admin", "/admin"),
            ("/a/%2E/b", "/a/b"),
            ("/admin/.%2e/public", "/public"),
            ("/admin//x", "/admin/x"),
            ("/.", "/"),
            ("//", "/"),
        ] {
            assert_eq!(
                normalize_path(input),
                Err(PathError::NotNormalized {
                    path: input.to_owned(),
                    normal: normal.to_owned()
                }),
                "{input}"
            );
        }
    }

    #[test]
    fn rejects_smuggling_paths() {
        for bad in [
            "/admin%2Fusers",
            "/admin%2fusers",
            "/a%5Cb",
            "/a%5cb",
            "/a\\b",
            "/a%00b",
            "/a\u{0}b",
            "/a\tb",
            "/a%0A",
            "/a%7f",
            "/a%ff",
            "/a%c3",
            "/a%zz",
            "/a%2",
            "/%2561dmin",
            "/a%25",
            "relative",
        ] {
            assert!(normalize_path(bad).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn dot_segments_with_parameters_are_refused_and_other_parameters_kept() {
        for bad in [
            "/..;/admin",
            "/public/..;/admin",
            "/public/..;jsessionid=1/admin",
            "/.;x/admin",
            "/%2e%2e;/admin",
            "/.%2E;a=b/admin",
            "/public/..%3B/admin",
            "/public/..%3b/admin",
            "/a/..;",
        ] {
            assert_eq!(
                normalize_path(bad),
                Err(PathError::DotSegmentParameters(bad.to_owned())),
                "{bad}"
            );
        }
        for (ok, normal) in [
            ("/admin;jsessionid=1", "/admin;jsessionid=1"),
            ("/a/b;v=1/c", "/a/b;v=1/c"),
            ("/a/...;/b", "/a/...;/b"),
            ("/a/;/b", "/a/;/b"),
            ("/a/x..;/b", "/a/x..;/b"),
            ("/a/b%3Bc", "/a/b;c"),
        ] {
            assert_eq!(normalize_path(ok).unwrap(), normal, "{ok}");
        }
    }

    #[test]
    fn the_parameter_free_reading_is_what_servlet_containers_route() {
        for (path, want) in [
            ("/admin;jsessionid=1", Some("/admin")),
            ("/a/b;v=1/c", Some("/a/b/c")),
            ("/;x/admin", Some("/admin")),
            ("/a/;/b/", Some("/a/b/")),
            (";", Some("/")),
            ("/orders", None),
        ] {
            assert_eq!(without_parameters(path).as_deref(), want, "{path}");
        }
    }

    #[test]
    fn clean_paths_are_borrowed() {
        assert!(matches!(
            normalize_path("/orders/1/items").unwrap(),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn host_table() {
        for (input, want) in [
            ("Example.ORG", "example.org"),
            ("example.org:8443", "example.org"),
            ("example.org.", "example.org"),
            ("[::1]:8080", "[::1]"),
            ("[FE80::1]", "[fe80::1]"),
            ("10.0.0.1:80", "10.0.0.1"),
        ] {
            assert_eq!(normalize_host(input), want);
        }
    }

    #[test]
    fn authorities_readers_could_split_differently_are_refused() {
        for ok in [
            "a",
            "a.example:443",
            "[::1]",
            "[::1]:8443",
            "a_b.local:1",
            "a.:0",
        ] {
            assert!(split_authority(ok).is_some(), "{ok}");
        }
        for bad in [
            "",
            "admin.internal:abc",
            "a:1:2",
            "a:",
            "a:123456",
            "a:65536",
            "user@a",
            "a b",
            "[::1",
            "[::1]x",
            "[::1]:",
            "[zz]",
            "a/b",
            ":80",
        ] {
            assert!(split_authority(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn the_authority_keeps_its_port_lower_cased_without_trailing_dot() {
        let uri: http::Uri = "/x".parse().unwrap();
        for (host, want_host, want_authority) in [
            (
                "API.Example.org:8443",
                "api.example.org",
                "api.example.org:8443",
            ),
            (
                "api.example.org.:0443",
                "api.example.org",
                "api.example.org:443",
            ),
            ("api.example.org", "api.example.org", "api.example.org"),
            ("[FE80::1]:80", "[fe80::1]", "[fe80::1]:80"),
        ] {
            let v = http::HeaderValue::from_str(host).unwrap();
            let t = normalize_target(&uri, Some(&v)).unwrap();
            assert_eq!(t.host.as_deref(), Some(want_host), "{host}");
            assert_eq!(t.authority.as_deref(), Some(want_authority), "{host}");
        }
        // HTTP/2 `:authority` (absolute-form URI) without a Host header.
        let uri: http::Uri = "https://Admin.Example:9443/x".parse().unwrap();
        let t = normalize_target(&uri, None).unwrap();
        assert_eq!(t.authority.as_deref(), Some("admin.example:9443"));
    }

    #[test]
    fn a_normal_authority_is_borrowed() {
        let uri: http::Uri = "/x".parse().unwrap();
        let v = http::HeaderValue::from_static("api.example.org:8443");
        let t = normalize_target(&uri, Some(&v)).unwrap();
        assert!(matches!(
            t.authority,
            Some(Cow::Borrowed("api.example.org:8443"))
        ));
    }

    #[test]
    fn target_rejects_authority_host_mismatch() {
        let host = http::HeaderValue::from_static("good.example");
        for uri in ["http://evil.example/x", "http://good.example:8080/x"] {
            let uri: http::Uri = uri.parse().unwrap();
            assert!(matches!(
                normalize_target(&uri, Some(&host)),
                Err(PathError::HostMismatch { .. })
            ));
        }
        let uri: http::Uri = "http://GOOD.example/b?q=1".parse().unwrap();
        let t = normalize_target(&uri, Some(&host)).unwrap();
        assert_eq!(t.host.as_deref(), Some("good.example"));
        assert_eq!(t.authority.as_deref(), Some("good.example"));
        assert_eq!(t.path, "/b");
        let uri: http::Uri = "/x".parse().unwrap();
        let t = normalize_target(&uri, Some(&host)).unwrap();
        assert_eq!(t.host.as_deref(), Some("good.example"));
        for bad in ["admin.internal:abc", "a:1:2", "user@a"] {
            let v = http::HeaderValue::from_static(bad);
            assert!(matches!(
                normalize_target(&uri, Some(&v)),
                Err(PathError::InvalidHost(_))
            ));
        }
        let uri: http::Uri = "http://user@good.example/x".parse().unwrap();
        assert!(normalize_target(&uri, None).is_err());
    }
}
