//! Two proxies chained: app → outbound (plaintext in, mTLS out) → inbound → app.

use crate::harness::*;

/// Proxy B: inbound in front of the echo app, identity SERVER_ID. Proxy A: outbound
/// to B, identity CLIENT_ID, with one listener expecting B's real ID and one
/// expecting another ID. Returns (A, B, A's good port, A's wrong-identity port).
async fn chain(ws: &Workspace) -> (Proc, Proc, u16, u16) {
    let app = echo_app().await;
    let (b_config, b_port, b_admin) = crate::http::inbound_config(ws, app.port(), "strict", "");
    let b = ws.start_proxy("b", &b_config, b_admin).await;
    let (good, wrong, a_admin) = (free_port(), free_port(), free_port());
    let a_config = format!(
        "{}[[outbound]]\nlisten = \"127.0.0.1:{good}\"\nupstream = \"127.0.0.1:{b_port}\"\n\
         server_identity = \"{SERVER_ID}\"\n\n\
         [[outbound]]\nlisten = \"127.0.0.1:{wrong}\"\nupstream = \"127.0.0.1:{b_port}\"\n\
         server_identity = \"spiffe://example.org/ns/shop/sa/payments\"\n\n\
         [admin]\nlisten = \"127.0.0.1:{a_admin}\"\n",
        ws.identity_toml("client")
    );
    let a = ws.start_proxy("a", &a_config, a_admin).await;
    (a, b, good, wrong)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chained_proxies_carry_the_outbound_identity_to_the_app() {
    let ws = Workspace::new();
    let (a, b, good, _) = chain(&ws).await;
    for version in ["--http1.1", "--http2-prior-knowledge"] {
        let (code, body) = curl(&[
            version.to_owned(),
            "-H".to_owned(),
            "l5d-client-id: spiffe://example.org/ns/evil/sa/spoof".to_owned(),
            format!("http://127.0.0.1:{good}/orders/7"),
        ])
        .await;
        assert_eq!(
            code,
            200,
            "{version}: {body}\nA:\n{}\nB:\n{}",
            a.log_text(),
            b.log_text()
        );
        assert!(body.starts_with("GET /orders/7 HTTP/1.1\n"), "{body}");
        // B verified A's SVID and says so; the spoofed header never arrives.
        assert!(
            body.contains(&format!("l5d-client-id: {CLIENT_ID}\n")),
            "{body}"
        );
        assert!(
            body.contains(&format!("host: 127.0.0.1:{good}\n")),
            "{body}"
        );
    }
    // Denied by B's policy, through the chain.
    let (code, _) = curl(&[format!("http://127.0.0.1:{good}/admin")]).await;
    assert_eq!(code, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_server_identity_is_a_502_naming_both_identities() {
    let ws = Workspace::new();
    let (a, _b, _, wrong) = chain(&ws).await;
    let (code, body) = curl(&[format!("http://127.0.0.1:{wrong}/orders")]).await;
    assert_eq!(code, 502, "{body}");
    let log = a.log_text();
    let line = log
        .lines()
        .find(|l| l.contains("upstream presented identity"))
        .unwrap_or_else(|| panic!("no log line about the identity:\n{log}"));
    assert!(line.contains(SERVER_ID), "{line}");
    assert!(
        line.contains("spiffe://example.org/ns/shop/sa/payments"),
        "{line}"
    );
}
