//! Request path and target normalization (`normalize_path`, `normalize_target`): never
//! panics, and what it accepts is read alike by every reader — the output is the input
//! decoded once (what an app that decodes sees), with the same segments as the raw
//! input (what a router matching raw bytes sees), and it holds no dot segment, no
//! empty segment, no separator other than `/`, no `%`, no control character;
//! normalizing it again changes nothing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meshless::policy::{normalize_path, normalize_target};

/// Percent-decodes once, the way an app does (no validation).
fn decode_once(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let hex = s.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b[i], hex) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

fn check_path(input: &str, out: &str) {
    if out == "*" {
        assert_eq!(input, "*");
        return;
    }
    assert!(out.starts_with('/'), "{input:?} -> {out:?}: not absolute");
    if !input.is_empty() {
        assert_eq!(decode_once(input), out.as_bytes(), "{input:?} -> {out:?}: not the decoded input");
        assert_eq!(input.split('/').count(), out.split('/').count(), "{input:?} -> {out:?}: segments");
    }
    let segments: Vec<&str> = out[1..].split('/').collect();
    for (i, seg) in segments.iter().enumerate() {
        let base = seg.split(';').next().unwrap_or_default();
        assert!(base != "." && base != "..", "{input:?} -> {out:?}: dot segment");
        assert!(!seg.is_empty() || i + 1 == segments.len(), "{input:?} -> {out:?}: empty segment");
    }
    assert!(!out.contains(['\\', '%']), "{input:?} -> {out:?}: backslash or %");
    assert!(!out.bytes().any(|b| b < 0x20 || b == 0x7f), "{input:?} -> {out:?}: control");
    let again = normalize_path(out).unwrap_or_else(|e| panic!("{input:?} -> {out:?} refused again: {e}"));
    assert_eq!(again, out, "not idempotent for {input:?}");
}

fuzz_target!(|data: &[u8]| {
    // The first byte splits the input into a request target and a Host header.
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let Ok(s) = std::str::from_utf8(rest) else {
        return;
    };
    if let Ok(out) = normalize_path(s) {
        check_path(s, &out);
    }
    let cut = usize::from(split).min(s.len());
    let (target, host) = match (s.get(..cut), s.get(cut..)) {
        (Some(t), Some(h)) => (t, h),
        _ => (s, ""),
    };
    let Ok(uri) = target.parse::<http::Uri>() else {
        return;
    };
    let header = http::HeaderValue::from_str(host).ok();
    if let Ok(t) = normalize_target(&uri, header.as_ref()) {
        check_path(uri.path(), &t.path);
        if let Some(h) = &t.host {
            assert!(!h.bytes().any(|b| b.is_ascii_uppercase()), "host {h:?} not lower case");
        }
    }
});
