//! Connection-level (L4) authorization over real mTLS: an echo service behind
//! `MtlsAcceptor` + `ConnectionAuthorizer`.

use std::sync::Arc;
use std::time::Duration;

use meshless::authorize::ConnectionAuthorizer;
use meshless::metrics::Metrics;
use meshless::policy::{Policy, PolicyHandle};
use meshless::testing::TestCa;
use meshless::{MtlsAcceptor, MtlsConnector, SpiffeId};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::timeout;

const SERVER: &str = "spiffe://example.org/ns/db/sa/redis";
const T: Duration = Duration::from_secs(10);

const POLICY: &str = r#"
default: deny
local_trust_domains: [example.org]
rules:
  - name: cache-clients
    action: allow
    from: [{namespaces: ["web"]}]
  - name: http-only-rule
    action: allow
    from: [{namespaces: ["batch"]}]
    to: [{methods: ["GET"]}]
"#;

struct Echo {
    port: u16,
    ca: TestCa,
    policy: PolicyHandle,
    metrics: Arc<Metrics>,
}

async fn start() -> Echo {
    let ca = TestCa::new("example.org").unwrap();
    let policy = PolicyHandle::new(Policy::from_yaml(POLICY).unwrap());
    let metrics = Arc::new(Metrics::new());
    let authz = ConnectionAuthorizer::new(policy.clone())
        .metrics(metrics.clone())
        .recheck_interval(Duration::from_millis(20));
    let acceptor = MtlsAcceptor::new(ca.tls_source(SERVER).unwrap()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let (acceptor, authz) = (acceptor.clone(), authz.clone());
            tokio::spawn(async move {
                let Ok((mut stream, peer)) = acceptor.accept(tcp).await else {
                    return;
                };
                if !authz.check(&peer).is_allowed() {
                    return; // dropping the stream closes the connection
                }
                authz
                    .guard(&peer, async {
                        let mut buf = [0u8; 1024];
                        loop {
                            match stream.read(&mut buf).await {
                                Ok(0) | Err(_) => break,
                                Ok(n) => {
                                    if stream.write_all(&buf[..n]).await.is_err() {
                                        break;
                                    }
                                }
                            }
                        }
                    })
                    .await;
            });
        }
    });
    Echo {
        port,
        ca,
        policy,
        metrics,
    }
}

impl Echo {
    async fn connect(&self, id: &str) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
        let expected: SpiffeId = SERVER.parse().unwrap();
        let connector = MtlsConnector::new(self.ca.tls_source(id).unwrap(), expected).unwrap();
        let uri = format!("https://127.0.0.1:{}", self.port).parse().unwrap();
        timeout(T, connector.connect(uri))
            .await
            .unwrap()
            .unwrap()
            .into_inner()
            .0
    }
}

/// Writes `msg` and reads the echo; `None` when the server closed the connection.
async fn echo(
    stream: &mut tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
    msg: &[u8],
) -> Option<Vec<u8>> {
    stream.write_all(msg).await.ok()?;
    let mut buf = vec![0u8; msg.len()];
    match timeout(T, stream.read_exact(&mut buf)).await.unwrap() {
        Ok(_) => Some(buf),
        Err(_) => None,
    }
}

#[tokio::test]
async fn allowed_peer_gets_its_bytes_echoed_and_denied_peer_is_closed() {
    let server = start().await;
    let mut web = server
        .connect("spiffe://example.org/ns/web/sa/frontend")
        .await;
    assert_eq!(echo(&mut web, b"PING").await.as_deref(), Some(&b"PING"[..]));

    let mut other = server.connect("spiffe://example.org/ns/other/sa/x").await;
    assert_eq!(echo(&mut other, b"PING").await, None);

    // An allow rule that needs HTTP fields never matches a TCP connection (Istio).
    let mut batch = server.connect("spiffe://example.org/ns/batch/sa/job").await;
    assert_eq!(echo(&mut batch, b"PING").await, None);

    let text = server.metrics.render();
    assert!(
        text.contains(r#"inbound_tcp_authz_allow_total{authz="cache-clients",tls="true"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"inbound_tcp_authz_deny_total{authz="default:deny",tls="true"} 2"#),
        "{text}"
    );
}

#[tokio::test]
async fn open_connections_are_closed_when_a_policy_change_no_longer_allows_them() {
    let server = start().await;
    let mut web = server
        .connect("spiffe://example.org/ns/web/sa/frontend")
        .await;
    assert!(echo(&mut web, b"one").await.is_some());

    // An unrelated change keeps the connection.
    server
        .policy
        .store(Policy::from_yaml(&POLICY.replace("batch", "jobs")).unwrap());
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(echo(&mut web, b"two").await.is_some());

    // Removing the rule closes it.
    server
        .policy
        .store(Policy::from_yaml("default: deny\n").unwrap());
    let mut buf = [0u8; 8];
    let n = timeout(T, web.read(&mut buf)).await.unwrap().unwrap_or(0);
    assert_eq!(n, 0, "the server closed the connection");
    let text = server.metrics.render();
    assert!(
        text.contains(r#"inbound_tcp_authz_terminate_total{authz="default:deny",tls="true"} 1"#),
        "{text}"
    );
}
