//! `PolicyHandle` reloads: a Kubernetes ConfigMap volume's `..data` symlink swap is
//! picked up, and a broken file keeps the last good policy and reports why.

use std::os::unix::fs::symlink;
use std::path::Path;
use std::time::{Duration, Instant};

use meshless::policy::{PolicyHandle, RequestAttrs, Verdict};

const ALLOW_GET: &str =
    "default: deny\nrules:\n  - name: get\n    action: allow\n    to: [{methods: [GET]}]\n";
const ALLOW_ALL: &str = "default: all-unauthenticated\n";
const BROKEN: &str = "default: deny\nrules:\n  - name: get\n    actoin: allow\n";

/// Writes `contents` as a new `..data_N` directory and swaps `..data` to it
/// atomically, the way the kubelet updates a ConfigMap volume.
fn publish(dir: &Path, n: u32, contents: &str) {
    let data = dir.join(format!("..data_{n}"));
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("policy.yaml"), contents).unwrap();
    let tmp = dir.join("..data_tmp");
    symlink(data.file_name().unwrap(), &tmp).unwrap();
    std::fs::rename(&tmp, dir.join("..data")).unwrap();
}

fn wait_for(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn verdict(handle: &PolicyHandle, method: &str) -> Verdict {
    let attrs = RequestAttrs::connection(None, None, Some(80)).with_request(method, "/");
    handle.load().evaluate(&attrs).verdict()
}

#[test]
fn watcher_follows_configmap_swaps_and_keeps_last_good_policy() {
    let dir = tempfile::tempdir().unwrap();
    publish(dir.path(), 1, ALLOW_GET);
    let file = dir.path().join("policy.yaml");
    symlink("..data/policy.yaml", &file).unwrap();

    let handle = PolicyHandle::from_file(&file).unwrap();
    assert_eq!(verdict(&handle, "POST"), Verdict::Deny);
    let _watcher = handle.watch(&file, Duration::from_millis(20));

    publish(dir.path(), 2, ALLOW_ALL);
    wait_for("the first reload", || handle.reload_counts().succeeded == 1);
    assert_eq!(verdict(&handle, "POST"), Verdict::Allow);
    assert!(handle.last_error().is_none());

    publish(dir.path(), 3, BROKEN);
    wait_for("the rejected reload", || handle.reload_counts().failed == 1);
    assert_eq!(
        verdict(&handle, "POST"),
        Verdict::Allow,
        "last good policy stays"
    );
    let err = handle.last_error().unwrap().to_string();
    assert!(
        err.contains("actoin") && err.contains("policy.yaml:4"),
        "{err}"
    );

    publish(dir.path(), 4, ALLOW_GET);
    wait_for("the recovery", || handle.reload_counts().succeeded == 2);
    assert_eq!(verdict(&handle, "POST"), Verdict::Deny);
    assert!(handle.last_error().is_none());
}

#[test]
fn snapshots_are_consistent_across_a_swap() {
    let handle = PolicyHandle::new(meshless::policy::Policy::deny_all());
    let snapshot = handle.current();
    handle.store(
        meshless::policy::Policy::from_json(r#"{"default":"all-unauthenticated"}"#).unwrap(),
    );
    let attrs = RequestAttrs::connection(None, None, None);
    assert_eq!(snapshot.evaluate(&attrs).verdict(), Verdict::Deny);
    assert_eq!(handle.load().evaluate(&attrs).verdict(), Verdict::Allow);
    let clone = handle.clone();
    clone.store(meshless::policy::Policy::deny_all());
    assert_eq!(
        handle.load().evaluate(&attrs).verdict(),
        Verdict::Deny,
        "clones share the policy"
    );
}
