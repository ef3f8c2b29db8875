//! `examples/policy_check` as a user runs it: one file of manifests for many
//! workloads, asked what one workload decides (`--workload`, `--label`,
//! `--named-port`). The first output line is always `decision: allow|deny|not-found`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

#[path = "support/example_bin.rs"]
mod example_bin;

/// The compiled example, built once.
fn binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| example_bin::build("policy_check"))
}

/// Runs the example; returns (exit code, stdout, stderr).
fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(binary()).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Istio's "Authorization on HTTP traffic" task for bookinfo, in our words: an
/// `allow-nothing` policy for the namespace, then per-workload ALLOW policies chosen by
/// `selector.matchLabels`.
const BOOKINFO: &str = r#"
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-nothing, namespace: default}
spec: {}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: productpage-viewer, namespace: default}
spec:
  selector: {matchLabels: {app: productpage}}
  action: ALLOW
  rules:
  - to: [{operation: {methods: ["GET"]}}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: details-viewer, namespace: default}
spec:
  selector: {matchLabels: {app: details}}
  action: ALLOW
  rules:
  - from: [{source: {principals: ["cluster.local/ns/default/sa/bookinfo-productpage"]}}]
    to: [{operation: {methods: ["GET"]}}]
"#;

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn each_workload_gets_only_the_policies_istio_applies_to_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "bookinfo.yaml", BOOKINFO);
    let productpage = "spiffe://cluster.local/ns/default/sa/bookinfo-productpage";
    let reviews = "spiffe://cluster.local/ns/default/sa/bookinfo-reviews";
    let ask = |workload: &str, label: &str, peer: &str, method: &str| {
        let (code, out, err) = run(&[
            "--policy",
            &file,
            "--workload",
            workload,
            "--label",
            label,
            "--peer",
            peer,
            "--method",
            method,
            "--path",
            "/x",
        ]);
        assert_eq!(code, 0, "{err}");
        out.lines().next().unwrap_or_default().to_owned()
    };
    let details = "spiffe://cluster.local/ns/default/sa/bookinfo-details";
    // "allow GET ... to the productpage workload" from anyone.
    assert_eq!(
        ask(productpage, "app=productpage", reviews, "GET"),
        "decision: allow"
    );
    assert_eq!(
        ask(productpage, "app=productpage", reviews, "POST"),
        "decision: deny"
    );
    // "details-viewer ... allows the cluster.local/ns/default/sa/bookinfo-productpage
    // service account to access the details workload through GET".
    assert_eq!(
        ask(details, "app=details", productpage, "GET"),
        "decision: allow"
    );
    assert_eq!(
        ask(details, "app=details", reviews, "GET"),
        "decision: deny"
    );
    // ratings: only `allow-nothing` applies to it.
    let ratings = "spiffe://cluster.local/ns/default/sa/bookinfo-ratings";
    assert_eq!(
        ask(ratings, "app=ratings", productpage, "GET"),
        "decision: deny"
    );
    // A workload of another namespace: no policy applies, and Istio allows ("If there
    // are no ALLOW policies for the workload, allow the request"), loudly.
    let other = "spiffe://cluster.local/ns/foo/sa/bookinfo-details";
    let (code, out, err) = run(&[
        "--policy",
        &file,
        "--workload",
        other,
        "--label",
        "app=details",
        "--peer",
        reviews,
        "--method",
        "DELETE",
        "--path",
        "/x",
    ]);
    assert_eq!(
        (code, out.lines().next()),
        (0, Some("decision: allow")),
        "{err}"
    );
    assert!(err.contains("ALLOW-ALL"), "{err}");
    // The explanation names what was skipped for this workload.
    let (_, out, _) = run(&[
        "--policy",
        &file,
        "--workload",
        details,
        "--label",
        "app=details",
        "--peer",
        reviews,
        "--method",
        "GET",
        "--path",
        "/x",
    ]);
    assert!(out.contains("productpage-viewer"), "{out}");
}

#[test]
fn a_manifest_that_selects_by_label_needs_the_workload() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "bookinfo.yaml", BOOKINFO);
    let (code, _, err) = run(&["--policy", &file, "--method", "GET", "--path", "/x"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("from_yaml_for") || err.contains("WorkloadContext"),
        "{err}"
    );
    // A Linkerd Server on a named port: the name must be resolved.
    let server = r#"
apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata: {namespace: emojivoto, name: web-http}
spec:
  podSelector: {matchLabels: {app: web-svc}}
  port: http
  proxyProtocol: HTTP/1
"#;
    let file = write(dir.path(), "server.yaml", server);
    let web = "spiffe://cluster.local/ns/emojivoto/sa/web";
    let base = [
        "--policy",
        &file,
        "--workload",
        web,
        "--label",
        "app=web-svc",
        "--port",
        "8080",
    ];
    let (code, _, err) = run(&base);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("named_port"), "{err}");
    let mut args = base.to_vec();
    args.extend(["--named-port", "http=8080", "--peer", web]);
    let (code, out, err) = run(&args);
    assert_eq!(code, 0, "{err}");
    // A Server with no authorization denies every connection to its port.
    assert_eq!(out.lines().next(), Some("decision: deny"), "{out}");
}
