//! Certificates rotated (Kubernetes `..data` symlink swaps read by `FileSource`) and the
//! policy replaced (read by `PolicyHandle::watch`) every second while clients keep
//! sending requests: no request fails, and each new policy applies from the first
//! request after its reload.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::StatusCode;
use http_body_util::Empty;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use meshless::metrics::Metrics;
use meshless::policy::PolicyHandle;
use meshless::testing::TestCa;
use meshless::tls::{FileSource, MtlsAcceptor};

use crate::support::{CLIENT, SERVER, Server, connector, request};

fn policy(generation: u32) -> String {
    format!(
        "default: deny\nrules:\n  - name: no-admin\n    action: deny\n    to: [{{paths: [\"/admin*\"]}}]\n  - name: gen-{generation}\n    action: allow\n    to: [{{paths: [\"*\"]}}]\n"
    )
}

/// Publishes a new SVID the way the kubelet updates a Secret volume: a new directory,
/// then one atomic rename of the `..data` symlink.
fn publish(dir: &Path, generation: u32, ca: &TestCa) {
    let issued = ca.issue(SERVER).unwrap();
    let version = dir.join(format!("..v{generation}"));
    std::fs::create_dir(&version).unwrap();
    std::fs::write(version.join("tls.crt"), issued.chain_pem()).unwrap();
    std::fs::write(version.join("tls.key"), issued.key_pem()).unwrap();
    std::fs::write(version.join("ca.crt"), ca.root_pem()).unwrap();
    let tmp = dir.join("..data_tmp");
    std::os::unix::fs::symlink(format!("..v{generation}"), &tmp).unwrap();
    std::fs::rename(&tmp, dir.join("..data")).unwrap();
}

fn replace(path: &Path, contents: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, contents).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn rotate_under_load(rounds: u32) {
    let ca = Arc::new(TestCa::new("example.org").unwrap());
    let dir = tempfile::tempdir().unwrap();
    publish(dir.path(), 0, &ca);
    for name in ["tls.crt", "tls.key", "ca.crt"] {
        std::os::unix::fs::symlink(format!("..data/{name}"), dir.path().join(name)).unwrap();
    }
    let metrics = Arc::new(Metrics::new());
    let files = FileSource::builder(
        dir.path().join("tls.crt"),
        dir.path().join("tls.key"),
        dir.path().join("ca.crt"),
    )
    .poll_interval(Duration::from_millis(50))
    .metrics(metrics.clone())
    .start()
    .await
    .unwrap();
    let policy_path = dir.path().join("policy.yaml");
    std::fs::write(&policy_path, policy(0)).unwrap();
    let handle = PolicyHandle::from_file(&policy_path)
        .unwrap()
        .metrics(metrics.clone());
    let _watcher = handle.watch(&policy_path, Duration::from_millis(50));
    let acceptor = MtlsAcceptor::new(files.source()).unwrap();
    let server = Server::start_with(ca.clone(), acceptor, handle.clone()).await;

    // The load: four clients, each on a fresh connection (a new handshake against the
    // current SVID) every tenth request.
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut load = Vec::new();
    for worker in 0..4 {
        let (stop, ok, failures, ca) = (stop.clone(), ok.clone(), failures.clone(), ca.clone());
        let url = server.url(&format!("/load/{worker}"));
        load.push(tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let mut c = connector(&ca, CLIENT);
                if worker % 2 == 1 {
                    c = c.http1_only();
                }
                let client: Client<_, Empty<Bytes>> =
                    Client::builder(TokioExecutor::new()).build(c);
                for _ in 0..10 {
                    n += 1;
                    match request(&client, &url).await {
                        Ok((StatusCode::OK, _)) => {
                            ok.fetch_add(1, Ordering::Relaxed);
                        }
                        other => failures
                            .lock()
                            .unwrap()
                            .push(format!("request {n}: {other:?}")),
                    }
                }
            }
        }));
    }

    let started = Instant::now();
    for generation in 1..=rounds {
        tokio::time::sleep(Duration::from_secs(1)).await;
        publish(dir.path(), generation, &ca);
        replace(&policy_path, &policy(generation));
        wait_until("the policy reload", || {
            handle.reload_counts().succeeded == u64::from(generation)
        })
        .await;
        // The first request after the reload is judged by the new policy.
        let (status, body) = server.get(CLIENT, "/check").await.unwrap();
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, format!("path=/check rule=gen-{generation}"));
        wait_until("the certificate reload", || {
            files.status().reloads == u64::from(generation)
        })
        .await;
    }
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    for task in load {
        task.await.unwrap();
    }
    let failures = failures.lock().unwrap().clone();
    let ok = ok.load(Ordering::Relaxed);
    println!(
        "figure: rotation {rounds} rounds in {elapsed:?}: {ok} requests ok, {} failed; certificate reloads {} (failures {}), policy reloads {} (failures {})",
        failures.len(),
        files.status().reloads,
        files.status().failures,
        handle.reload_counts().succeeded,
        handle.reload_counts().failed,
    );
    assert!(
        failures.is_empty(),
        "{} failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert!(ok > 0);
    assert_eq!(files.status().failures, 0, "{:?}", files.last_error());
    assert_eq!(handle.reload_counts().failed, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_and_policy_reload_under_load_fail_no_request() {
    rotate_under_load(3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "slow: 30 rounds of one second; run by scripts/hardening.sh"]
async fn hardening_rotation_and_policy_reload_under_load_30_rounds() {
    rotate_under_load(30).await;
}
