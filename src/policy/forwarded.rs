//! The original client's address behind trusted proxies, read from `X-Forwarded-For`
//! as Envoy reads it for Istio's `remote.ip` and `remoteIpBlocks`.
//!
//! ```
//! use meshless::policy::client_address;
//! let mut headers = http::HeaderMap::new();
//! headers.insert("x-forwarded-for", "198.51.100.1, 203.0.113.7".parse()?);
//! let peer = Some("10.0.0.5".parse()?);
//! // No trusted proxy: the header is anyone's to write, the peer is the client.
//! assert_eq!(client_address(&headers, peer, 0), peer);
//! // One trusted proxy: the address it appended, the last one.
//! assert_eq!(client_address(&headers, peer, 1), Some("203.0.113.7".parse()?));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::net::IpAddr;

use http::{HeaderMap, HeaderName};

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// The address of the original client of a request that came from `peer` through
/// `trusted_proxies` proxies, each of which appended to `X-Forwarded-For` the address
/// it received the request from.
///
/// - `0`: the peer's address; the header is ignored, as anyone can write it (Istio's
///   default, `numTrustedProxies: 0`).
/// - `n > 0`: the `n`-th address from the right of `X-Forwarded-For` (its lines read
///   as one comma-separated list, each element trimmed of spaces): the one the
///   outermost trusted proxy appended. This is Envoy's `xff_num_trusted_hops`, which
///   Istio's `numTrustedProxies` sets. The addresses left of it were written by the
///   client, and are never read.
///
/// Returns `None` (unknown) when `n > 0` and the header is missing, has fewer than `n`
/// elements, or the element at that position is not a plain IPv4 or IPv6 address
/// (`unknown`, `203.0.113.7:443`, `[2001:db8::1]`, bytes that are not text). Envoy
/// falls back to the peer's address there; meshless does not, because the peer is a
/// proxy and its address must not match networks written for clients. An unknown
/// address matches no `remote_networks` and satisfies no `allow` rule that names
/// `remote_networks` or `not_remote_networks`; see
/// [`RequestAttrs::remote_ip`](super::RequestAttrs::remote_ip).
pub fn client_address(
    headers: &HeaderMap,
    peer: Option<IpAddr>,
    trusted_proxies: usize,
) -> Option<IpAddr> {
    if trusted_proxies == 0 {
        return peer;
    }
    let mut seen = 0;
    for line in headers.get_all(X_FORWARDED_FOR).iter().rev() {
        for element in line.as_bytes().rsplit(|b| *b == b',') {
            seen += 1;
            if seen == trusted_proxies {
                let text = std::str::from_utf8(element.trim_ascii()).ok()?;
                return text.parse().ok();
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn xff(lines: &[&[u8]]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for l in lines {
            h.append(X_FORWARDED_FOR, http::HeaderValue::from_bytes(l).unwrap());
        }
        h
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn counts_trusted_proxies_from_the_right_across_lines() {
        let peer = ip("10.0.0.5");
        let h = xff(&[b"192.0.2.10, 203.0.113.128", b"198.51.100.1"]);
        assert_eq!(client_address(&h, peer, 0), peer);
        assert_eq!(client_address(&h, peer, 1), ip("198.51.100.1"));
        assert_eq!(client_address(&h, peer, 2), ip("203.0.113.128"));
        assert_eq!(client_address(&h, peer, 3), ip("192.0.2.10"));
        assert_eq!(client_address(&h, peer, 4), None);
        let v6 = xff(&[b" 2001:db8::1 ,\t::ffff:10.1.2.3 "]);
        assert_eq!(client_address(&v6, peer, 1), ip("::ffff:10.1.2.3"));
        assert_eq!(client_address(&v6, peer, 2), ip("2001:db8::1"));
    }

    #[test]
    fn garbage_at_the_trusted_position_is_unknown_never_the_peer() {
        let peer = ip("10.0.0.5");
        assert_eq!(client_address(&HeaderMap::new(), peer, 1), None);
        for bad in [
            &b"unknown"[..],
            b"203.0.113.7:443",
            b"[2001:db8::1]",
            b"203.0.113.7, ",
            b"",
            b"010.0.0.1",
            b"1.2.3.4 5.6.7.8",
            b"\xff",
        ] {
            assert_eq!(client_address(&xff(&[bad]), peer, 1), None, "{bad:?}");
        }
        // What the client wrote left of the trusted position is never read.
        let h = xff(&[b"garbage, \xff, 203.0.113.7"]);
        assert_eq!(client_address(&h, peer, 1), ip("203.0.113.7"));
    }
}
