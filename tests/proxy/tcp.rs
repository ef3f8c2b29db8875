//! Inbound TCP: L4 policy per connection, then bytes copied both ways.

use std::time::Duration;

use meshless::MtlsConnector;
use meshless::tls::ExpectedServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::time::timeout;

use crate::harness::*;

const TCP_POLICY: &str = r#"
default: deny
rules:
  - name: frontend
    action: allow
    from: [{identities: ["spiffe://example.org/ns/web/sa/frontend"]}]
"#;

/// A TCP echo server.
async fn echo_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = tcp.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    port
}

/// Connects as `id` (an SVID from the workspace CA), sends `ping`, returns what came back.
async fn ping(ws: &Workspace, port: u16, id: &str) -> Result<Vec<u8>, String> {
    let source = ws.ca.tls_source(id).unwrap();
    let expected: meshless::SpiffeId = SERVER_ID.parse().unwrap();
    let connector = MtlsConnector::new(source, ExpectedServer::Exact(expected)).unwrap();
    let uri = format!("https://127.0.0.1:{port}").parse().unwrap();
    let conn = connector.connect(uri).await.map_err(|e| e.to_string())?;
    let (mut tls, _) = conn.into_inner();
    tls.write_all(b"ping").await.map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; 4];
    let read = timeout(STEP, tls.read_exact(&mut buf))
        .await
        .expect("read timed out");
    read.map_err(|e| e.to_string())?;
    Ok(buf)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_mode_copies_bytes_for_allowed_peers_and_closes_denied_ones() {
    let ws = Workspace::new();
    let echo = echo_server().await;
    ws.write("tcp-policy.yaml", TCP_POLICY);
    let (port, admin) = (free_port(), free_port());
    let config = format!(
        "{}[[inbound]]\nlisten = \"127.0.0.1:{port}\"\nforward = \"127.0.0.1:{echo}\"\n\
         protocol = \"tcp\"\nmode = \"strict\"\npolicy = \"tcp-policy.yaml\"\n\n\
         [admin]\nlisten = \"127.0.0.1:{admin}\"\n",
        ws.identity_toml("svid")
    );
    let proxy = ws.start_proxy("tcp", &config, admin).await;
    assert_eq!(
        ping(&ws, port, CLIENT_ID).await.unwrap(),
        b"ping",
        "{}",
        proxy.log_text()
    );
    let denied = ping(&ws, port, OTHER_ID).await;
    assert!(denied.is_err(), "denied peer got {denied:?}");
    let (_, metrics) = curl(&[format!("http://127.0.0.1:{admin}/metrics")]).await;
    assert!(
        metrics.contains("inbound_tcp_authz_allow_total{authz=\"frontend\",tls=\"true\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("inbound_tcp_authz_deny_total{authz=\"default:deny\",tls=\"true\"} 1"),
        "{metrics}"
    );

    // A policy change closes the open connection of a peer it no longer allows.
    let source = ws.ca.tls_source(CLIENT_ID).unwrap();
    let expected: meshless::SpiffeId = SERVER_ID.parse().unwrap();
    let connector = MtlsConnector::new(source, ExpectedServer::Exact(expected)).unwrap();
    let conn = connector
        .connect(format!("https://127.0.0.1:{port}").parse().unwrap())
        .await
        .unwrap();
    let (mut tls, _) = conn.into_inner();
    tls.write_all(b"ping").await.unwrap();
    let mut buf = [0u8; 4];
    timeout(STEP, tls.read_exact(&mut buf))
        .await
        .unwrap()
        .unwrap();
    ws.write("tcp-policy.yaml", "default: deny\n");
    proxy.signal("HUP");
    let mut rest = Vec::new();
    let closed = timeout(Duration::from_secs(10), tls.read_to_end(&mut rest)).await;
    assert!(
        closed.is_ok(),
        "connection still open after the policy no longer allows it"
    );
}
