//! `examples/policy_insight` as a user runs it: on the Istio bookinfo and Linkerd
//! emojivoto manifests of `examples/policies/`, and on an audit log the real
//! `AuthorizeLayer` wrote.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use http::{Request, Response};
use meshless::audit::AuditConfig;
use meshless::authorize::AuthorizeLayer;
use meshless::policy::analysis::{read_audit_log, suggest};
use meshless::policy::{Policy, PolicyHandle, Verdict};
use meshless::{PeerIdentity, SpiffeId};
use tower::ServiceExt;

#[path = "support/example_bin.rs"]
mod example_bin;

fn binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| example_bin::build("policy_insight"))
}

/// Runs the example; returns (exit code, stdout, stderr).
fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(binary())
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const BOOKINFO: &str = "examples/policies/bookinfo.yaml";
const BOOKINFO_RATINGS: &str = "examples/policies/bookinfo-ratings.yaml";
const EMOJIVOTO: &str = "examples/policies/emojivoto.yaml";
const EMOJIVOTO_DENY: &str = "examples/policies/emojivoto-deny.yaml";

fn workload(app: &str) -> Vec<String> {
    let sa = format!("spiffe://cluster.local/ns/default/sa/bookinfo-{app}");
    vec![
        "--workload".into(),
        sa,
        "--label".into(),
        format!("app={app}"),
    ]
}

fn with<'a>(args: &[&'a str], extra: &'a [String]) -> Vec<&'a str> {
    args.iter()
        .copied()
        .chain(extra.iter().map(String::as_str))
        .collect()
}

#[test]
fn who_can_reads_each_bookinfo_workload_as_istio_applies_it() {
    let page = workload("productpage");
    let (code, out, err) = run(&with(&["who-can", "/admin", "--policy", BOOKINFO], &page));
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("any caller (rule `default/productpage-viewer`)"),
        "{out}"
    );
    let details = workload("details");
    let (_, out, _) = run(&with(
        &["who-can", "/details/0", "--policy", BOOKINFO],
        &details,
    ));
    assert!(
        out.contains("`spiffe://cluster.local/ns/default/sa/bookinfo-productpage` (rule `default/details-viewer`)"),
        "{out}"
    );
    let (_, out, _) = run(&with(
        &[
            "who-can",
            "/details/0",
            "--method",
            "POST",
            "--policy",
            BOOKINFO,
        ],
        &details,
    ));
    assert!(out.contains("nobody"), "{out}");
}

#[test]
fn diff_fails_ci_when_access_widens() {
    let ratings = workload("ratings");
    let args = with(&["diff", BOOKINFO, BOOKINFO_RATINGS], &ratings);
    let (code, out, err) = run(&args);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.starts_with("1 granted, 0 revoked"), "{out}");
    assert!(
        out.contains("rule `default/ratings-viewer` (added in the new policy)"),
        "{out}"
    );
    let mut allowed = args.clone();
    allowed.push("--allow-widen");
    assert_eq!(run(&allowed).0, 0);
    let mut json = args.clone();
    json.push("--json");
    let (_, out, _) = run(&json);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["regions"][0]["change"], "granted", "{out}");
    assert!(
        v["regions"][0]["example"]["new"]
            .as_str()
            .unwrap()
            .starts_with("allow")
    );
    // The reverse change only revokes: CI passes.
    let (code, out, _) = run(&with(&["diff", BOOKINFO_RATINGS, BOOKINFO], &ratings));
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("0 granted, 1 revoked"), "{out}");
}

#[test]
fn diff_reads_linkerd_defaults_and_servers() {
    let voting = [
        "--namespace".to_owned(),
        "emojivoto".to_owned(),
        "--label".to_owned(),
        "app=voting-svc".to_owned(),
    ];
    let (code, out, err) = run(&with(&["diff", EMOJIVOTO, EMOJIVOTO_DENY], &voting));
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("- revoked: settings: default all-authenticated → deny"),
        "{out}"
    );
    assert!(out.contains("callers:  any authenticated peer"), "{out}");
    let web = "web.emojivoto.serviceaccount.identity.linkerd.cluster.local";
    let (_, out, _) = run(&with(
        &[
            "who-can",
            "/emojivoto.v1.VotingService/VotePizza",
            "--method",
            "POST",
            "--port",
            "8080",
            "--policy",
            EMOJIVOTO,
        ],
        &voting,
    ));
    assert!(
        out.contains(&format!(
            "`{web}` (rule `AuthorizationPolicy emojivoto/voting-grpc`)"
        )),
        "{out}"
    );
}

#[test]
fn usage_and_load_errors_exit_2() {
    for args in [
        vec!["frobnicate"],
        vec!["who-can", "/x"],
        vec!["who-can", "/x", "--policy", "/nonexistent.yaml"],
        vec!["diff", BOOKINFO],
        vec!["who-can", "/x", "--policy", BOOKINFO, "--port", "http"],
    ] {
        let (code, _, err) = run(&args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(!err.is_empty());
    }
}

const CURRENT: &str = r#"
default: deny
local_trust_domains: [example.org]
rules:
  - name: web-reads
    action: allow
    from: [{namespaces: [web]}]
    to: [{methods: [GET]}]
  - name: ops-all
    action: allow
    from: [{namespaces: [ops]}]
"#;

/// Runs requests through the real layer with a JSON-lines audit log.
async fn audit_log(policy: &str, file: &Path, requests: &[(&str, &str, &str)]) {
    let audit = AuditConfig::json_lines_file(file).unwrap();
    let layer =
        AuthorizeLayer::new(PolicyHandle::new(Policy::from_yaml(policy).unwrap())).audit(audit);
    for (peer, method, path) in requests {
        let svc = tower::ServiceBuilder::new()
            .layer(layer.clone())
            .service_fn(|_req: Request<()>| async {
                Ok::<_, std::convert::Infallible>(Response::new(String::new()))
            });
        let id: SpiffeId = peer.parse().unwrap();
        let peer = PeerIdentity::authenticated(id)
            .with_remote_addr("10.1.2.3:4444".parse().unwrap())
            .with_local_addr("10.0.0.9:8443".parse().unwrap());
        let mut req = Request::builder()
            .method(*method)
            .uri(*path)
            .header("host", "api.example.org")
            .body(())
            .unwrap();
        req.extensions_mut().insert(peer);
        svc.oneshot(req).await.unwrap();
    }
}

#[tokio::test]
async fn suggest_covers_what_the_layer_let_through() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    let web = "spiffe://example.org/ns/web/sa/frontend";
    let ops = "spiffe://example.org/ns/ops/sa/admin";
    audit_log(
        CURRENT,
        &log,
        &[
            (web, "GET", "/orders/1"),
            (web, "GET", "/orders/2"),
            (web, "HEAD", "/orders/1"),
            (web, "DELETE", "/orders/1"),
            (ops, "POST", "/admin/reindex"),
        ],
    )
    .await;
    let text = std::fs::read_to_string(&log).unwrap();
    let events = read_audit_log(&text).unwrap();
    assert_eq!(events.len(), 5, "{text}");
    assert_eq!(events[3].decision, "deny");
    assert_eq!(events[0].port, Some(8443));
    let s = suggest(&events, None);
    let policy = Policy::compile(s.policy.clone()).unwrap();
    for e in events.iter().filter(|e| e.went_through()) {
        let id: SpiffeId = e.peer.parse().unwrap();
        let id = meshless::Identity::from(id);
        let attrs = meshless::policy::RequestAttrs::connection(Some(&id), None, e.port)
            .with_request(&e.method, &e.path);
        assert_eq!(policy.evaluate(&attrs).verdict(), Verdict::Allow, "{e:?}");
    }
    // The CLI writes the same policy as YAML, with `/orders/{*}` for the varying id.
    let current = dir.path().join("current.yaml");
    std::fs::write(
        &current,
        CURRENT.replace("namespaces: [ops]", "namespaces: [qa]"),
    )
    .unwrap();
    let (code, out, err) = run(&[
        "suggest",
        log.to_str().unwrap(),
        "--policy",
        current.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("/orders/{*}"), "{out}");
    assert!(out.contains("observed-frontend.web"), "{out}");
    assert!(
        !out.contains("DELETE"),
        "denied requests are not suggested: {out}"
    );
    assert!(
        out.contains("# the current policy denies 1 of them"),
        "{out}"
    );
    let yaml: String = out
        .lines()
        .filter(|l| !l.starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(Policy::from_yaml(&yaml).is_ok(), "{yaml}");
}
