//! The committed fuzz corpora replayed on stable in every `cargo test`: the invariants
//! of `fuzz/fuzz_targets/normalize_path.rs` and `spiffe_id.rs`, so that a regression
//! on an input the fuzzer once found is caught without nightly.

use std::path::{Path, PathBuf};

use meshless::SpiffeId;
use meshless::policy::{normalize_path, normalize_target};

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut inputs: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            (path, bytes)
        })
        .collect();
    inputs.sort();
    inputs
}

/// Percent-decodes once, the way an app does (no validation).
fn decode_once(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let hex = s
            .get(i + 1..i + 3)
            .and_then(|h| u8::from_str_radix(h, 16).ok());
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

/// The invariants of `fuzz/fuzz_targets/normalize_path.rs`: the output is the input
/// decoded once, with the raw input's segments, none of them a dot or empty segment.
fn check_path(input: &str, out: &str) {
    if out == "*" {
        assert_eq!(input, "*");
        return;
    }
    assert!(out.starts_with('/'), "{input:?} -> {out:?}");
    if !input.is_empty() {
        assert_eq!(decode_once(input), out.as_bytes(), "{input:?} -> {out:?}");
        assert_eq!(
            input.split('/').count(),
            out.split('/').count(),
            "{input:?} -> {out:?}"
        );
    }
    let segments: Vec<&str> = out[1..].split('/').collect();
    for (i, seg) in segments.iter().enumerate() {
        let base = seg.split(';').next().unwrap_or_default();
        assert!(base != "." && base != "..", "{input:?} -> {out:?}");
        assert!(
            !seg.is_empty() || i + 1 == segments.len(),
            "{input:?} -> {out:?}"
        );
    }
    assert!(
        !out.bytes()
            .any(|b| b < 0x20 || b == 0x7f || b == b'\\' || b == b'%'),
        "{input:?} -> {out:?}"
    );
    assert_eq!(
        normalize_path(out).as_deref(),
        Ok(out),
        "not a fixed point: {input:?}"
    );
}

#[test]
fn normalize_path_corpus_keeps_its_invariants() {
    let inputs = corpus("normalize_path");
    assert!(!inputs.is_empty());
    for (file, data) in &inputs {
        let Some((&split, rest)) = data.split_first() else {
            continue;
        };
        let Ok(s) = std::str::from_utf8(rest) else {
            continue;
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
            continue;
        };
        let header = http::HeaderValue::from_str(host).ok();
        if let Ok(t) = normalize_target(&uri, header.as_ref()) {
            check_path(uri.path(), &t.path);
            let host = t.host.unwrap_or_default();
            assert!(
                !host.bytes().any(|b| b.is_ascii_uppercase()),
                "{}",
                file.display()
            );
        }
    }
}

#[test]
fn spiffe_id_corpus_round_trips() {
    for (_, data) in corpus("spiffe_id") {
        let Ok(s) = std::str::from_utf8(&data) else {
            continue;
        };
        if let Ok(id) = SpiffeId::parse(s) {
            assert_eq!(id.to_string(), s);
            assert!(
                id.segments()
                    .all(|seg| !seg.is_empty() && seg != "." && seg != "..")
            );
        }
    }
}
