//! Inbound HTTP: mTLS terminated, policy enforced per request, forwarded to the app.

use std::process::Stdio;
use std::time::Duration;

use crate::harness::*;

/// A config with one `http` inbound listener in `mode` in front of `app`, and an admin
/// port. Returns (config, inbound port, admin port).
pub fn inbound_config(ws: &Workspace, app: u16, mode: &str, extra: &str) -> (String, u16, u16) {
    let port = free_port();
    let admin = free_port();
    ws.write("policy.yaml", POLICY);
    let config = format!(
        "{}[[inbound]]\nlisten = \"127.0.0.1:{port}\"\nforward = \"127.0.0.1:{app}\"\n\
         protocol = \"http\"\nmode = \"{mode}\"\npolicy = \"policy.yaml\"\n{extra}\n\
         [admin]\nlisten = \"127.0.0.1:{admin}\"\n",
        ws.identity_toml("svid")
    );
    (config, port, admin)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_allowed_gets_200_denied_403_untrusted_fails_the_handshake() {
    let ws = Workspace::new();
    let app = echo_app().await;
    let (config, port, admin) = inbound_config(&ws, app.port(), "strict", "");
    let proxy = ws.start_proxy("proxy", &config, admin).await;

    // curl's default over TLS is HTTP/2 (ALPN); the app speaks HTTP/1.1.
    let (code, body) = curl(&mtls_args(&ws, port, "/orders", Some("client"))).await;
    assert_eq!(code, 200, "{body}\n{}", proxy.log_text());
    assert!(body.starts_with("GET /orders HTTP/1.1\n"), "{body}");
    assert!(
        body.contains(&format!("l5d-client-id: {CLIENT_ID}\n")),
        "{body}"
    );
    assert!(
        body.contains(&format!("x-forwarded-client-cert: URI={CLIENT_ID}\n")),
        "{body}"
    );
    assert!(
        body.contains(&format!("host: localhost:{port}\n")),
        "{body}"
    );

    let mut h1 = vec!["--http1.1".to_owned()];
    h1.extend(mtls_args(&ws, port, "/orders", Some("client")));
    let (code, body) = curl(&h1).await;
    assert_eq!(code, 200);
    assert!(body.starts_with("GET /orders HTTP/1.1\n"), "{body}");

    // Allowed peer, denied path; other peer, denied everywhere but /healthz.
    assert_eq!(
        curl(&mtls_args(&ws, port, "/admin/x", Some("client")))
            .await
            .0,
        403
    );
    assert_eq!(
        curl(&mtls_args(&ws, port, "/orders", Some("other")))
            .await
            .0,
        403
    );
    let (code, body) = curl(&mtls_args(&ws, port, "/healthz", Some("other"))).await;
    assert_eq!(code, 200);
    assert!(
        body.contains(&format!("l5d-client-id: {OTHER_ID}\n")),
        "{body}"
    );

    // Same SPIFFE ID from an untrusted CA, and no certificate: no HTTP at all.
    let (code, body) = curl(&mtls_args(&ws, port, "/orders", Some("rogue"))).await;
    assert_eq!(code, 0, "{body}");
    let (code, body) = curl(&mtls_args(&ws, port, "/healthz", None)).await;
    assert_eq!(code, 0, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spoofed_identity_headers_are_replaced_by_the_verified_identity() {
    let ws = Workspace::new();
    let app = echo_app().await;
    let (config, port, admin) = inbound_config(&ws, app.port(), "strict", "");
    let _proxy = ws.start_proxy("proxy", &config, admin).await;
    let mut args = vec![
        "-H".to_owned(),
        "l5d-client-id: spiffe://example.org/ns/web/sa/frontend".to_owned(),
        "-H".to_owned(),
        "x-forwarded-client-cert: URI=spiffe://example.org/ns/web/sa/frontend".to_owned(),
    ];
    args.extend(mtls_args(&ws, port, "/healthz", Some("other")));
    let (code, body) = curl(&args).await;
    assert_eq!(code, 200);
    assert!(
        body.contains(&format!("l5d-client-id: {OTHER_ID}\n")),
        "{body}"
    );
    assert!(
        body.contains(&format!("x-forwarded-client-cert: URI={OTHER_ID}\n")),
        "{body}"
    );
    // And the spoofed header does not let the other workload through.
    let mut args = vec!["-H".to_owned(), format!("l5d-client-id: {CLIENT_ID}")];
    args.extend(mtls_args(&ws, port, "/orders", Some("other")));
    assert_eq!(curl(&args).await.0, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwards_to_python_http_server() {
    let ws = Workspace::new();
    let site = ws.path("site");
    std::fs::create_dir(&site).unwrap();
    std::fs::write(site.join("hello.txt"), "hello from python\n").unwrap();
    let app_port = free_port();
    let child = std::process::Command::new("python3")
        .args([
            "-m",
            "http.server",
            &app_port.to_string(),
            "--bind",
            "127.0.0.1",
            "--directory",
        ])
        .arg(&site)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 (install it to run this test)");
    let _python = Proc {
        child,
        log: ws.path("python.log"),
    };
    let (config, port, admin) = inbound_config(&ws, app_port, "strict", "");
    let _proxy = ws.start_proxy("proxy", &config, admin).await;
    // python may take a moment to listen (seconds on a loaded machine): retry a
    // bounded number of times.
    let mut last = (0, String::new());
    for _ in 0..300 {
        last = curl(&mtls_args(&ws, port, "/hello.txt", Some("client"))).await;
        if last.0 == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(last, (200, "hello from python\n".to_owned()));
    assert_eq!(
        curl(&mtls_args(&ws, port, "/hello.txt", Some("other")))
            .await
            .0,
        403
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permissive_mode_serves_plaintext_as_unauthenticated() {
    let ws = Workspace::new();
    let app = echo_app().await;
    let (config, port, admin) = inbound_config(&ws, app.port(), "permissive", "");
    let _proxy = ws.start_proxy("proxy", &config, admin).await;
    let (code, body) = curl(&[format!("http://127.0.0.1:{port}/healthz")]).await;
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("l5d-client-id: -\n"), "{body}");
    assert_eq!(
        curl(&[format!("http://127.0.0.1:{port}/orders")]).await.0,
        403
    );
    assert_eq!(
        curl(&mtls_args(&ws, port, "/orders", Some("client")))
            .await
            .0,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_down_is_a_502() {
    let ws = Workspace::new();
    let (config, port, admin) = inbound_config(&ws, free_port(), "strict", "");
    let _proxy = ws.start_proxy("proxy", &config, admin).await;
    assert_eq!(
        curl(&mtls_args(&ws, port, "/orders", Some("client")))
            .await
            .0,
        502
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_serves_metrics_ready_and_live() {
    let ws = Workspace::new();
    let app = echo_app().await;
    let (config, port, admin) = inbound_config(&ws, app.port(), "strict", "");
    let _proxy = ws.start_proxy("proxy", &config, admin).await;
    assert_eq!(
        curl(&mtls_args(&ws, port, "/orders", Some("client")))
            .await
            .0,
        200
    );
    assert_eq!(
        curl(&mtls_args(&ws, port, "/orders", Some("other")))
            .await
            .0,
        403
    );
    let (code, _) = curl(&mtls_args(&ws, port, "/orders", Some("rogue"))).await;
    assert_eq!(code, 0);
    let (code, metrics) = curl(&[format!("http://127.0.0.1:{admin}/metrics")]).await;
    assert_eq!(code, 200);
    assert!(
        metrics.contains("inbound_tls_handshakes_total{result=\"success\",reason=\"ok\"} 2"),
        "{metrics}"
    );
    let untrusted = "inbound_tls_handshakes_total{result=\"failure\",reason=\"untrusted_ca\"} 1";
    assert!(metrics.contains(untrusted), "{metrics}");
    assert!(
        metrics.contains("inbound_http_authz_allow_total{authz=\"frontend\",tls=\"true\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("inbound_http_authz_deny_total{authz=\"default:deny\",tls=\"true\"} 1"),
        "{metrics}"
    );
    assert_eq!(
        curl(&[format!("http://127.0.0.1:{admin}/live")]).await.0,
        200
    );
    assert_eq!(
        curl(&[format!("http://127.0.0.1:{admin}/nope")]).await.0,
        404
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_validates_config_certificates_and_policies() {
    let ws = Workspace::new();
    let (config, _, _) = inbound_config(&ws, free_port(), "strict", "");
    let mut good = ws.spawn_proxy("good", &config, &["--check"]);
    assert_eq!(good.wait_exit(STEP).await, Some(0), "{}", good.log_text());
    let out = std::fs::read_to_string(ws.path("good.out")).unwrap();
    assert!(out.contains(&format!("identity: {SERVER_ID}")), "{out}");

    // A policy with a typo: named with its file and line.
    ws.write(
        "bad-policy.yaml",
        "default: deny\nrules:\n  - name: x\n    acton: allow\n",
    );
    let bad = config.replace("policy.yaml", "bad-policy.yaml");
    let mut proc = ws.spawn_proxy("bad", &bad, &["--check"]);
    assert_eq!(proc.wait_exit(STEP).await, Some(1));
    let err = proc.log_text();
    assert!(
        err.contains("bad-policy.yaml") && err.contains("acton"),
        "{err}"
    );

    // A key that does not fit the certificate.
    ws.issue_client(OTHER_ID, "stray");
    let mismatched = config.replace("svid.key", "stray.key");
    let mut proc = ws.spawn_proxy("mismatch", &mismatched, &["--check"]);
    assert_eq!(proc.wait_exit(STEP).await, Some(1));
    assert!(proc.log_text().contains("identity:"), "{}", proc.log_text());

    // An unknown key in the config.
    let unknown = config.replace("mode = ", "moed = ");
    let mut proc = ws.spawn_proxy("unknown", &unknown, &["--check"]);
    assert_eq!(proc.wait_exit(STEP).await, Some(1));
    assert!(
        proc.log_text().contains("unknown field `moed`"),
        "{}",
        proc.log_text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_in_flight_requests_and_exits_0() {
    let ws = Workspace::new();
    let app = echo_app().await;
    let (config, port, admin) = inbound_config(&ws, app.port(), "strict", "");
    let mut proxy = ws.start_proxy("proxy", &config, admin).await;
    // The app takes 1.5 s to answer /slow.
    let args = mtls_args(&ws, port, "/slow", Some("client"));
    let in_flight = tokio::spawn(async move { curl(&args).await });
    // Wait until the proxy has authorized it (the audit line), i.e. it is in flight.
    let deadline = std::time::Instant::now() + STEP;
    while !proxy.log_text().contains("/slow") {
        assert!(
            std::time::Instant::now() < deadline,
            "request never reached the proxy"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    proxy.signal("TERM");
    let (code, body) = tokio::time::timeout(STEP, in_flight)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(code, 200, "in-flight request was cut: {body}");
    assert!(body.starts_with("GET /slow"), "{body}");
    assert_eq!(proxy.wait_exit(STEP).await, Some(0), "{}", proxy.log_text());
    // Nothing listens any more.
    assert_eq!(
        curl(&mtls_args(&ws, port, "/orders", Some("client")))
            .await
            .0,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_protocol_h2_and_auto_speak_to_the_app_as_configured() {
    let ws = Workspace::new();
    let app = echo_app().await;
    for (app_protocol, h1_client_sees, h2_client_sees) in [
        ("h2", "HTTP/2.0", "HTTP/2.0"),
        ("auto", "HTTP/1.1", "HTTP/2.0"),
        ("http1", "HTTP/1.1", "HTTP/1.1"),
    ] {
        let extra = format!("app_protocol = \"{app_protocol}\"\n");
        let (config, port, admin) = inbound_config(&ws, app.port(), "strict", &extra);
        let proxy = ws.start_proxy(app_protocol, &config, admin).await;
        for (flag, expected) in [("--http1.1", h1_client_sees), ("--http2", h2_client_sees)] {
            let mut args = vec![flag.to_owned()];
            args.extend(mtls_args(&ws, port, "/orders", Some("client")));
            let (code, body) = curl(&args).await;
            assert_eq!(
                code,
                200,
                "{app_protocol} {flag}: {body}\n{}",
                proxy.log_text()
            );
            let first = body.lines().next().unwrap_or("");
            assert_eq!(
                first,
                format!("GET /orders {expected}"),
                "{app_protocol} {flag}"
            );
        }
    }
}
