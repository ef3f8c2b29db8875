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

fn check_path(input: &str, out: &str) {
    if out == "*" {
        assert_eq!(input, "*");
        return;
    }
    assert!(out.starts_with('/'), "{input:?} -> {out:?}");
    for bad in ["/./", "/../", "//"] {
        assert!(!out.contains(bad), "{input:?} -> {out:?}");
    }
    assert!(
        !out.ends_with("/.") && !out.ends_with("/.."),
        "{input:?} -> {out:?}"
    );
    let upper = out.to_ascii_uppercase();
    for bad in ["%2F", "%5C", "%00", "%2E"] {
        assert!(!upper.contains(bad), "{input:?} -> {out:?}");
    }
    assert!(
        !out.bytes().any(|b| b < 0x20 || b == 0x7f || b == b'\\'),
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
