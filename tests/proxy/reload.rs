//! Reloads: policy and certificates, by file change and SIGHUP, the last good version
//! kept on failure, and zero failed requests while a load runs.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use meshless::tls::ExpectedServer;
use meshless::{MtlsConnector, TrustDomain};

use crate::harness::*;
use crate::http::inbound_config;

/// Replaces `name` atomically (write a sibling, rename), as config management does.
fn replace(ws: &Workspace, name: &str, text: &str) {
    let tmp = ws.path(&format!(".{name}.tmp"));
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, ws.path(name)).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_file_change_applies_and_a_broken_one_keeps_the_last_good() {
    let ws = Workspace::new();
    let app = echo_app().await;
    let extra = "[runtime]\nreload_interval_ms = 100\n";
    let (config, port, admin) = inbound_config(&ws, app.port(), "strict", "");
    let config = format!("{config}\n{extra}");
    let _proxy = ws.start_proxy("proxy", &config, admin).await;
    let other = mtls_args(&ws, port, "/orders", Some("other"));
    assert_eq!(curl(&other).await.0, 403);

    let widened = POLICY.replace(
        "[\"spiffe://example.org/ns/web/sa/frontend\"]",
        "[\"spiffe://example.org/*\"]",
    );
    replace(&ws, "policy.yaml", &widened);
    eventually("policy reload", || async { curl(&other).await.0 == 200 }).await;

    replace(
        &ws,
        "policy.yaml",
        "rules: [ {action: allow, from: [{identities: [\"bogus\"]}]} ]\n",
    );
    let metrics = format!("http://127.0.0.1:{admin}/metrics");
    eventually("failed reload counted", || async {
        curl(std::slice::from_ref(&metrics))
            .await
            .1
            .contains("meshless_reloads_total{kind=\"policy\",result=\"failure\"} 1")
    })
    .await;
    assert_eq!(
        curl(&other).await.0,
        200,
        "the last good policy must stay in force"
    );
}

/// The SPIFFE ID the proxy presents to a new connection.
async fn presented_id(ws: &Workspace, port: u16) -> String {
    let source = ws.ca.tls_source(CLIENT_ID).unwrap();
    let td = ExpectedServer::TrustDomain(TrustDomain::new(TD).unwrap());
    let connector = MtlsConnector::new(source, td).unwrap();
    let conn = connector
        .connect(format!("https://127.0.0.1:{port}").parse().unwrap())
        .await
        .unwrap();
    conn.peer().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_certificates_and_keeps_the_last_good_on_failure() {
    let ws = Workspace::new();
    let app = echo_app().await;
    // No file polling to speak of: only SIGHUP reloads here.
    let (config, port, admin) = inbound_config(&ws, app.port(), "strict", "");
    let config = format!("{config}\n[runtime]\nreload_interval_ms = 3600000\n");
    let proxy = ws.start_proxy("proxy", &config, admin).await;
    assert!(presented_id(&ws, port).await.contains(SERVER_ID));

    let v2 = "spiffe://example.org/ns/shop/sa/orders-v2";
    ws.issue_server(v2, "svid");
    assert!(
        presented_id(&ws, port).await.contains(SERVER_ID),
        "reloaded before SIGHUP"
    );
    proxy.signal("HUP");
    eventually("certificate reload", || async {
        presented_id(&ws, port).await.contains(v2)
    })
    .await;

    // A key that does not fit: refused, v2 stays.
    ws.issue_client(OTHER_ID, "stray");
    std::fs::copy(ws.path("stray.key"), ws.path("svid.key")).unwrap();
    proxy.signal("HUP");
    let metrics = format!("http://127.0.0.1:{admin}/metrics");
    eventually("failed reload counted", || async {
        curl(std::slice::from_ref(&metrics))
            .await
            .1
            .contains("meshless_reloads_total{kind=\"certificates\",result=\"failure\"} 1")
    })
    .await;
    assert!(presented_id(&ws, port).await.contains(v2));
    assert_eq!(
        curl(&mtls_args(&ws, port, "/orders", Some("client")))
            .await
            .0,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reloads_under_load_fail_no_request() {
    let ws = Workspace::new();
    let app = echo_app().await;
    let (config, port, admin) = inbound_config(&ws, app.port(), "strict", "");
    let config = format!("{config}\n[runtime]\nreload_interval_ms = 50\n");
    let proxy = ws.start_proxy("proxy", &config, admin).await;

    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut workers = Vec::new();
    for worker in 0..4 {
        let source = ws.ca.tls_source(CLIENT_ID).unwrap();
        let expected: meshless::SpiffeId = SERVER_ID.parse().unwrap();
        let mut connector = MtlsConnector::new(source, ExpectedServer::Exact(expected)).unwrap();
        if worker % 2 == 1 {
            connector = connector.http1_only();
        }
        let (stop, ok, failed) = (stop.clone(), ok.clone(), failed.clone());
        let url: http::Uri = format!("https://127.0.0.1:{port}/orders").parse().unwrap();
        workers.push(tokio::spawn(async move {
            // Odd workers open a new connection per request (handshakes during reloads).
            let mut client =
                Client::builder(TokioExecutor::new()).build::<_, Empty<Bytes>>(connector.clone());
            for _ in 0..2000 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                if worker % 2 == 1 {
                    client = Client::builder(TokioExecutor::new()).build(connector.clone());
                }
                let res = tokio::time::timeout(STEP, client.get(url.clone())).await;
                let good = match res {
                    Ok(Ok(res)) => {
                        let status = res.status();
                        let body = res.into_body().collect().await;
                        status == 200 && body.is_ok()
                    }
                    _ => false,
                };
                if good { &ok } else { &failed }.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    // Rotate the policy (same meaning, new text) and the SVID (same ID, new key) a few
    // times, by file change and by SIGHUP.
    for round in 0..5 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        replace(&ws, "policy.yaml", &format!("{POLICY}\n# round {round}\n"));
        ws.issue_server(SERVER_ID, "svid");
        proxy.signal("HUP");
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        tokio::time::timeout(Duration::from_secs(60), w)
            .await
            .unwrap()
            .unwrap();
    }
    let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    assert_eq!(
        failed,
        0,
        "{failed} failed requests of {}\n{}",
        ok + failed,
        proxy.log_text()
    );
    assert!(ok > 0);
    let (_, metrics) = curl(&[format!("http://127.0.0.1:{admin}/metrics")]).await;
    // The half-written pair a non-atomic rotation leaves for an instant may be refused
    // (and retried); what matters is that the reloads happened and nothing failed.
    for kind in ["policy", "certificates"] {
        let line = format!("meshless_reloads_total{{kind=\"{kind}\",result=\"success\"}}");
        assert!(metrics.contains(&line), "{metrics}");
    }
}
