//! Hostile policy files: random and truncated documents, deep nesting, huge files, YAML
//! alias bombs. Each gets a clear error in bounded time, and through
//! `PolicyHandle::reload_from` / `watch` the last good policy stays in force.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use meshless::metrics::Metrics;
use meshless::policy::{Policy, PolicyError, PolicyHandle, RequestAttrs, Verdict};

use crate::support::{POLICY, Rng, counter};

const FAILED: &str = r#"meshless_reloads_total{kind="policy",result="failure"}"#;
const SUCCEEDED: &str = r#"meshless_reloads_total{kind="policy",result="success"}"#;

fn verdict(policy: &Policy, path: &str) -> Verdict {
    let attrs = RequestAttrs::connection(None, None, None).with_request("GET", path);
    policy.evaluate(&attrs).verdict()
}

/// Runs `f` on a thread with a 2 MiB stack (a tokio worker's) and waits at most 60 s,
/// so that a parser that recursed without bound or hung fails the test instead of
/// hanging or overflowing the harness.
fn bounded<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || {
            let _ = tx.send(f());
        })
        .unwrap();
    rx.recv_timeout(Duration::from_secs(60))
        .expect("the parser did not return (hang or crash)")
}

fn parse_all(text: String) -> [Result<Policy, PolicyError>; 3] {
    bounded(move || {
        [
            Policy::from_yaml(&text),
            Policy::from_json(&text),
            Policy::from_toml(&text),
        ]
    })
}

fn assert_clear(err: &PolicyError) {
    let message = err.to_string();
    assert!(
        !message.is_empty() && message.len() < 4096,
        "unclear error: {message:.200}"
    );
}

#[test]
fn random_documents_are_errors_never_panics() {
    let mut rng = Rng(0x5eed);
    let alphabet = b"{}[]:,-&*!|>'\"# \n\tabcdefrulesactionallowdeny0123456789=.";
    for round in 0..400 {
        let len = (rng.next() % 512) as usize;
        let text: String = if round % 2 == 0 {
            String::from_utf8_lossy(&rng.bytes(len)).into_owned()
        } else {
            (0..len)
                .map(|_| char::from(alphabet[(rng.next() % alphabet.len() as u64) as usize]))
                .collect()
        };
        for result in parse_all(text) {
            if let Err(e) = result {
                assert_clear(&e);
            }
        }
    }
}

#[test]
fn truncated_documents_never_load_a_wider_policy() {
    let full = Policy::from_yaml(POLICY).unwrap();
    let json = serde_json::to_string_pretty(full.spec()).unwrap();
    let toml = toml::to_string(full.spec()).unwrap();
    let mut parsed_prefixes = 0;
    for (format, text) in [("yaml", POLICY.to_owned()), ("json", json), ("toml", toml)] {
        for cut in (0..text.len()).filter(|&i| text.is_char_boundary(i)) {
            let prefix = text[..cut].to_owned();
            let result = bounded(move || match format {
                "yaml" => Policy::from_yaml(&prefix),
                "json" => Policy::from_json(&prefix),
                _ => Policy::from_toml(&prefix),
            });
            match result {
                // JSON has an end: no proper prefix of a document is one.
                Ok(_) if format == "json" => panic!("json prefix of {cut} bytes loaded"),
                // YAML and TOML prefixes can be complete documents; with the deny rule
                // first, none may let /admin through.
                Ok(policy) => {
                    parsed_prefixes += 1;
                    assert_ne!(
                        verdict(&policy, "/admin"),
                        Verdict::Allow,
                        "{format} cut at {cut}"
                    );
                }
                Err(e) => assert_clear(&e),
            }
        }
    }
    println!("figure: truncated policies that still parse (yaml+toml prefixes): {parsed_prefixes}");
}

#[test]
fn deeply_nested_documents_are_refused_without_overflowing_the_stack() {
    let depth = 100_000;
    let docs = [
        format!("rules: {}", "[".repeat(depth)),
        format!("rules: {}{}", "[".repeat(depth), "]".repeat(depth)),
        format!(
            "rules:\n{}",
            (0..1_000)
                .map(|i| format!("{}- \n", " ".repeat(i)))
                .collect::<String>()
        ),
        "{\"a\": ".repeat(depth),
        format!("{}{}", "[".repeat(depth), "]".repeat(depth)),
        format!("a = {}{}", "[".repeat(depth), "]".repeat(depth)),
        format!("a = {}1{}", "{b = ".repeat(depth), "}".repeat(depth)),
        "[a.".repeat(depth),
    ];
    for doc in docs {
        let head: String = doc.chars().take(20).collect();
        eprintln!("parsing {head:?}... ({} bytes)", doc.len());
        for result in parse_all(doc) {
            let err = result.err().unwrap_or_else(|| panic!("{head}... loaded"));
            assert_clear(&err);
        }
    }
}

#[test]
fn brackets_in_quoted_scalars_and_comments_are_not_nesting() {
    let deep = "[{".repeat(150);
    let doc = format!(
        "# {deep}\nrules:\n  - name: \"{deep} \\\" {deep}\"\n    action: allow\n  - name: '{deep}'' {deep}'\n    action: deny\n    to: [{{paths: [\"/admin*\"]}}]\n"
    );
    let policy = Policy::from_yaml(&doc).unwrap();
    assert_eq!(policy.rule_count(), 2);
    assert_eq!(verdict(&policy, "/admin"), Verdict::Deny);
    // The same brackets unquoted are refused, with their place.
    let err = Policy::from_yaml(&format!("rules: {deep}\n"))
        .err()
        .unwrap();
    assert!(
        err.to_string().contains("nested deeper than `128`"),
        "{err}"
    );
}

/// The YAML "billion laughs": nine levels of nine aliases.
fn alias_bomb(levels: usize) -> String {
    let mut doc = String::from(
        "a0: &a0 [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    for i in 1..levels {
        let refs = vec![format!("*a{}", i - 1); 9].join(",");
        doc.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
    }
    doc
}

#[test]
fn yaml_alias_bombs_are_refused() {
    let bomb = alias_bomb(10);
    let in_rules =
        format!("{bomb}rules:\n  - name: x\n    action: allow\n    to: [{{paths: *a9}}]\n");
    let in_manifest = format!(
        "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {{name: x, namespace: y}}\nspec:\n  x: &a0 [1,1,1,1,1,1,1,1,1]\n{}",
        (1..10)
            .map(|i| format!(
                "  x{i}: &a{i} [{}]\n",
                vec![format!("*a{}", i - 1); 9].join(",")
            ))
            .collect::<String>()
    );
    for doc in [bomb, in_rules, in_manifest] {
        let result = bounded(move || Policy::from_yaml(&doc));
        let Err(err) = result else {
            panic!("an alias bomb loaded");
        };
        assert_clear(&err);
    }
    // A few aliases are ordinary YAML and still work.
    let fine = "rules:\n  - name: a\n    action: allow\n    to: [{paths: &p [\"/public*\"]}]\n  - name: b\n    action: allow\n    to: [{paths: *p, methods: [GET]}]\n";
    assert_eq!(Policy::from_yaml(fine).unwrap().rule_count(), 2);
}

#[test]
fn huge_files_are_refused_quickly_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    // A sparse file beyond the size limit: refused from its size, never read.
    let sparse = dir.path().join("huge.yaml");
    std::fs::File::create(&sparse)
        .unwrap()
        .set_len(meshless::policy::MAX_POLICY_FILE_BYTES + 1)
        .unwrap();
    let err = bounded(move || Policy::load(sparse)).err().unwrap();
    assert!(matches!(err, PolicyError::TooLarge { .. }), "{err}");
    assert!(err.to_string().contains("huge.yaml"), "{err}");
    // 8 MiB of garbage under the limit: a parse error.
    let garbage = dir.path().join("garbage.json");
    std::fs::write(&garbage, Rng(9).bytes(8 << 20)).unwrap();
    let err = bounded(move || Policy::load(garbage)).err().unwrap();
    assert_clear(&err);
    // 20,000 valid rules (about 2 MiB) load.
    let mut big = String::from("default: deny\nrules:\n");
    for i in 0..20_000 {
        big.push_str(&format!(
            "  - name: r{i}\n    action: allow\n    from: [{{identities: [\"spiffe://example.org/ns/n{i}/sa/s\"]}}]\n    to: [{{paths: [\"/p{i}/*\"]}}]\n"
        ));
    }
    let path = dir.path().join("big.yaml");
    std::fs::write(&path, big).unwrap();
    let policy = bounded(move || Policy::load(path)).unwrap();
    assert_eq!(policy.rule_count(), 20_000);
}

/// Writes `contents` to `path` atomically (a rename), as Kubernetes and editors do.
fn replace(path: &Path, contents: &[u8]) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, contents).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn hostile_documents() -> Vec<Vec<u8>> {
    vec![
        b"rules: [".to_vec(),
        POLICY.as_bytes()[..POLICY.len() / 2].to_vec(),
        alias_bomb(10).into_bytes(),
        format!("rules: {}", "[".repeat(50_000)).into_bytes(),
        b"rules:\n  - name: x\n    action: alow\n".to_vec(),
        b"default: allow-everything\n".to_vec(),
        vec![0xff, 0xfe, 0x00, 0x01],
        Vec::new(),
    ]
}

#[test]
fn reload_from_keeps_the_last_good_policy_and_counts_failures() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.yaml");
    std::fs::write(&path, POLICY).unwrap();
    let metrics = Arc::new(Metrics::new());
    let handle = PolicyHandle::from_file(&path)
        .unwrap()
        .metrics(metrics.clone());
    let docs = hostile_documents();
    for (i, doc) in docs.iter().enumerate() {
        replace(&path, doc);
        let err = handle.reload_from(&path).unwrap_err();
        assert_clear(&err);
        assert_eq!(
            handle.last_error().map(|e| e.to_string()),
            Some(err.to_string())
        );
        assert_eq!(handle.reload_counts().failed, i as u64 + 1);
        assert_eq!(counter(&metrics, FAILED), i as u64 + 1);
        let current = handle.current();
        assert_eq!(verdict(&current, "/public"), Verdict::Allow);
        assert_eq!(verdict(&current, "/admin"), Verdict::Deny);
    }
    // A missing file is a failure too.
    std::fs::remove_file(&path).unwrap();
    assert!(handle.reload_from(&path).is_err());
    assert_eq!(counter(&metrics, FAILED), docs.len() as u64 + 1);
    assert_eq!(verdict(&handle.current(), "/public"), Verdict::Allow);
    // And a good file afterwards is taken.
    std::fs::write(&path, "default: deny\nrules: []\n").unwrap();
    handle.reload_from(&path).unwrap();
    assert!(handle.last_error().is_none());
    assert_eq!(verdict(&handle.current(), "/public"), Verdict::Deny);
    assert_eq!(counter(&metrics, SUCCEEDED), 1);
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn watch_keeps_the_last_good_policy_through_corrupt_and_missing_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.yaml");
    std::fs::write(&path, POLICY).unwrap();
    let metrics = Arc::new(Metrics::new());
    let handle = PolicyHandle::from_file(&path)
        .unwrap()
        .metrics(metrics.clone());
    let _watcher = handle.watch(&path, Duration::from_millis(20));
    for (i, doc) in hostile_documents().iter().enumerate() {
        replace(&path, doc);
        wait_for(&format!("the failed reload of document {i}"), || {
            handle.reload_counts().failed == i as u64 + 1
        });
        assert!(handle.last_error().is_some());
        assert_eq!(verdict(&handle.current(), "/public"), Verdict::Allow);
        assert_eq!(verdict(&handle.current(), "/admin"), Verdict::Deny);
    }
    assert_eq!(counter(&metrics, FAILED), handle.reload_counts().failed);
    std::fs::remove_file(&path).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(verdict(&handle.current(), "/public"), Verdict::Allow);
    replace(&path, b"default: deny\nrules: []\n");
    wait_for("the good reload", || handle.reload_counts().succeeded == 1);
    assert_eq!(verdict(&handle.current(), "/public"), Verdict::Deny);
    assert!(handle.last_error().is_none());
}
