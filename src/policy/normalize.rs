//! Request path and host normalization, run before any path or host rule is matched.
//!
//! What is authorized must be what is served: the enforcement layer matches the
//! normalized path and forwards that same path to the inner service, and it answers 400
//! for anything [`normalize_path`] rejects.
//!
//! ```
//! use meshless::policy::{normalize_host, normalize_path};
//! assert_eq!(normalize_path("/a/./b/../%63//d")?, "/a/c/d");
//! assert!(normalize_path("/admin%2Fusers").is_err());
//! assert_eq!(normalize_host("API.Example.org:8443"), "api.example.org");
//! # Ok::<(), meshless::policy::PathError>(())
//! ```

use std::borrow::Cow;

use super::error::PathError;

/// Normalizes a request path (without its query) the way the policy matches it.
///
/// - `%HH` of an unreserved character (`A-Z a-z 0-9 - . _ ~`) is decoded; other escapes
///   are kept, with upper-case hex digits;
/// - dot segments are removed (RFC 3986 §5.2.4) and repeated slashes merged;
/// - the empty path becomes `/`; `*` (the `OPTIONS *` target) is returned as is.
///
/// # Errors
///
/// An encoded slash or backslash (`%2F`, `%5C`), a raw backslash, NUL or any control
/// character (raw or encoded), a malformed escape, a path whose fully decoded bytes
/// are not UTF-8, a path not starting with `/`, or a dot segment with `;` parameters
/// (`/..;/admin`, `/.;x/`), which servlet containers resolve as `..` or `.`.
pub fn normalize_path(path: &str) -> Result<Cow<'_, str>, PathError> {
    let normal = normalize_segments(path)?;
    if normal.contains(';') || normal.contains("%3B") {
        let dot_with_params = normal.split('/').any(|segment| {
            let base = segment.split(';').next().unwrap_or_default();
            let base = base.split("%3B").next().unwrap_or_default();
            base.len() < segment.len() && matches!(base, "." | "..")
        });
        if dot_with_params {
            return Err(PathError::DotSegmentParameters(path.to_owned()));
        }
    }
    Ok(normal)
}

fn normalize_segments(path: &str) -> Result<Cow<'_, str>, PathError> {
    if path.is_empty() {
        return Ok(Cow::Borrowed("/"));
    }
    if path == "*" {
        return Ok(Cow::Borrowed(path));
    }
    if !path.starts_with('/') {
        return Err(PathError::NotAbsolute(path.to_owned()));
    }
    let mut needs_work = false;
    for (i, &b) in path.as_bytes().iter().enumerate() {
        match b {
            b'\\' => return Err(PathError::Backslash(path.to_owned())),
            0..=0x1f | 0x7f => return Err(PathError::ControlCharacter(escape(path))),
            b'%' => needs_work = true,
            b'/' if matches!(path.as_bytes().get(i + 1), Some(b'/' | b'.')) => needs_work = true,
            _ => {}
        }
    }
    if !needs_work {
        return Ok(Cow::Borrowed(path));
    }
    let decoded = decode_unreserved(path)?;
    Ok(Cow::Owned(remove_dot_segments(&decoded)))
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

/// Decodes unreserved escapes, validates the rest, and checks that the fully decoded
/// byte string is UTF-8.
fn decode_unreserved(path: &str) -> Result<String, PathError> {
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut fully_decoded = Vec::with_capacity(path.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b != b'%' {
            let ch_len = utf8_len(b);
            let chunk = path.get(i..i + ch_len).unwrap_or_default();
            out.push_str(chunk);
            fully_decoded.extend_from_slice(chunk.as_bytes());
            i += ch_len.max(1);
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
            0..=0x1f | 0x7f => return Err(PathError::ControlCharacter(path.to_owned())),
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(char::from(v));
            }
            _ => {
                out.push('%');
                out.push(char::from(b"0123456789ABCDEF"[usize::from(hi)]));
                out.push(char::from(b"0123456789ABCDEF"[usize::from(lo)]));
            }
        }
        fully_decoded.push(v);
        i += 3;
    }
    if std::str::from_utf8(&fully_decoded).is_err() {
        return Err(PathError::InvalidUtf8(path.to_owned()));
    }
    Ok(out)
}

fn utf8_len(first: u8) -> usize {
    match first {
        0xf0..=0xff => 4,
        0xe0..=0xef => 3,
        0xc0..=0xdf => 2,
        _ => 1,
    }
}

/// Removes `.` and `..` segments and empty segments (merging `//`), keeping a trailing
/// slash where RFC 3986 keeps one. `path` starts with `/`.
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

/// The request target as the policy sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NormalizedTarget<'a> {
    /// The normalized host, from the URI authority or the Host header.
    pub host: Option<Cow<'a, str>>,
    /// The normalized path (query removed): the path to match and to forward.
    pub path: Cow<'a, str>,
}

/// Normalizes a request's target from its URI and Host header.
///
/// # Errors
///
/// Any [`normalize_path`] error; [`PathError::HostMismatch`] when an absolute-form URI
/// or HTTP/2 `:authority` names another host than the Host header;
/// [`PathError::InvalidHost`] when the Host header is not visible ASCII.
pub fn normalize_target<'a>(
    uri: &'a http::Uri,
    host_header: Option<&'a http::HeaderValue>,
) -> Result<NormalizedTarget<'a>, PathError> {
    let path = normalize_path(uri.path())?;
    let header = match host_header {
        Some(v) => Some(
            v.to_str()
                .ok()
                .filter(|h| !h.is_empty() && !h.contains(['/', '@', ' ']))
                .ok_or_else(|| {
                    PathError::InvalidHost(String::from_utf8_lossy(v.as_bytes()).into())
                })?,
        ),
        None => None,
    };
    let authority = uri.authority().map(|a| a.as_str());
    let host = match (authority, header) {
        (Some(a), Some(h)) => {
            let (na, nh) = (normalize_host(strip_userinfo(a)), normalize_host(h));
            if na != nh {
                return Err(PathError::HostMismatch {
                    authority: a.to_owned(),
                    host: h.to_owned(),
                });
            }
            Some(na)
        }
        (Some(a), None) => Some(normalize_host(strip_userinfo(a))),
        (None, Some(h)) => Some(normalize_host(h)),
        (None, None) => None,
    };
    Ok(NormalizedTarget { host, path })
}

fn strip_userinfo(authority: &str) -> &str {
    authority.rsplit_once('@').map_or(authority, |(_, h)| h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalization_table() {
        let ok = [
            ("", "/"),
            ("/", "/"),
            ("/orders", "/orders"),
            ("/a/./b", "/a/b"),
            ("/a/b/../c", "/a/c"),
            ("/a/b/..", "/a/"),
            ("/../../etc/passwd", "/etc/passwd"),
            ("//a///b//", "/a/b/"),
            ("/%61%62c", "/abc"),
            ("/%2e%2e/admin", "/admin"),
            ("/a/%2E/b", "/a/b"),
            ("/x%7e", "/x~"),
            ("/caf%c3%a9", "/caf%C3%A9"),
            ("/a%20b", "/a%20b"),
            ("/a%2a", "/a%2A"),
            ("*", "*"),
        ];
        for (input, want) in ok {
            assert_eq!(normalize_path(input).unwrap(), want, "input {input:?}");
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
            ("/a/./b;c", "/a/b;c"),
        ] {
            assert_eq!(normalize_path(ok).unwrap(), normal, "{ok}");
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
    fn target_rejects_authority_host_mismatch() {
        let uri: http::Uri = "http://evil.example/x".parse().unwrap();
        let host = http::HeaderValue::from_static("good.example");
        assert!(matches!(
            normalize_target(&uri, Some(&host)),
            Err(PathError::HostMismatch { .. })
        ));
        let uri: http::Uri = "http://GOOD.example:80/a/../b?q=1".parse().unwrap();
        let t = normalize_target(&uri, Some(&host)).unwrap();
        assert_eq!(t.host.as_deref(), Some("good.example"));
        assert_eq!(t.path, "/b");
        let uri: http::Uri = "/x".parse().unwrap();
        let t = normalize_target(&uri, Some(&host)).unwrap();
        assert_eq!(t.host.as_deref(), Some("good.example"));
    }
}
