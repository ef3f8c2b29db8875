//! Request path and target normalization (`normalize_path`, `normalize_target`): never
//! panics, and what it accepts is a fixed point that no rule can be smuggled past —
//! normalizing again changes nothing, and the output holds no dot segment, no empty
//! segment, no encoded or raw separator other than `/`, no control character.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meshless::policy::{normalize_path, normalize_target};

fn check_path(input: &str, out: &str) {
    if out == "*" {
        assert_eq!(input, "*");
        return;
    }
    assert!(out.starts_with('/'), "{input:?} -> {out:?}: not absolute");
    for bad in ["/./", "/../", "//"] {
        assert!(!out.contains(bad), "{input:?} -> {out:?}: contains {bad:?}");
    }
    assert!(!out.ends_with("/.") && !out.ends_with("/.."), "{input:?} -> {out:?}: dot segment");
    let upper = out.to_ascii_uppercase();
    for bad in ["%2F", "%5C", "%00", "%2E"] {
        assert!(!upper.contains(bad), "{input:?} -> {out:?}: contains {bad}");
    }
    assert!(!out.contains('\\'), "{input:?} -> {out:?}: backslash");
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
