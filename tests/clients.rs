//! Real HTTP clients on meshless's rustls configurations against `meshless::serve` over
//! loopback: reqwest on a `ClientConfigBuilder` configuration, a tonic `Channel` on
//! `MtlsConnector`, a server of the wrong identity refused with both IDs named, client
//! SVID rotation picked up without rebuilding the client, and the server configuration
//! driven by tokio-rustls directly (no resumption).

mod common;

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use common::{CLIENT_ID, SERVER_ID, STEP, server_source};
use http::uri::PathAndQuery;
use http::{Request, Response};
use hyper::body::Incoming;
use meshless::testing::TestCa;
use meshless::tls::{
    ClientConfigBuilder, ExpectedServer, FileSource, MtlsAcceptor, MtlsConnector, TlsSource,
    peer_id,
};
use meshless::{PeerIdentity, SpiffeId, TlsError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::timeout;
use tonic::Status;
use tonic_prost::ProstCodec;

const OTHER_ID: &str = "spiffe://example.org/ns/shop/sa/impostor";
const ROTATED_ID: &str = "spiffe://example.org/ns/web/sa/client-v2";

/// Serves `hello <peer> over <version>` on a meshless server.
async fn start(source: TlsSource) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let service = tower::service_fn(|req: Request<Incoming>| async move {
        let peer = req.extensions().get::<PeerIdentity>().unwrap().clone();
        let body = format!("hello {peer} over {:?}", req.version());
        Ok::<_, Infallible>(Response::new(body))
    });
    let acceptor = MtlsAcceptor::new(source).unwrap();
    tokio::spawn(meshless::serve(listener, acceptor, service));
    addr
}

fn id(s: &str) -> SpiffeId {
    s.parse().unwrap()
}

/// A reqwest client on a meshless configuration; one connection per request, so that
/// every request is a handshake.
fn reqwest_client(config: Arc<rustls::ClientConfig>) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_backend_preconfigured(Arc::unwrap_or_clone(config))
        .tls_info(true)
        .pool_max_idle_per_host(0)
        .timeout(STEP)
        .build()
        .unwrap()
}

async fn get(client: &reqwest::Client, addr: SocketAddr) -> Result<(String, SpiffeId), String> {
    let url = format!("https://127.0.0.1:{}/", addr.port());
    let response = client.get(url).send().await.map_err(|e| chain(&e))?;
    assert_eq!(response.status(), 200);
    let leaf = response
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|info| info.peer_certificate())
        .expect("tls_info is on")
        .to_vec();
    let server = meshless::svid::validate_leaf(&leaf).unwrap();
    Ok((response.text().await.unwrap(), server))
}

fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut next = err.source();
    while let Some(e) = next {
        out.push_str(": ");
        out.push_str(&e.to_string());
        next = e.source();
    }
    out
}

#[tokio::test]
async fn reqwest_gets_200_from_the_expected_server_over_h2_and_http1() {
    let ca = TestCa::new("example.org").unwrap();
    let addr = start(server_source(&ca)).await;
    let source = ca.tls_source(CLIENT_ID).unwrap();

    let config = ClientConfigBuilder::new(source.clone(), id(SERVER_ID))
        .build()
        .unwrap();
    let (body, server) = get(&reqwest_client(config), addr).await.unwrap();
    assert_eq!(body, format!("hello {CLIENT_ID} over HTTP/2.0"));
    assert_eq!(server, id(SERVER_ID));

    let config = ClientConfigBuilder::new(source, id(SERVER_ID))
        .alpn_protocols(vec![b"http/1.1".to_vec()])
        .build()
        .unwrap();
    let (body, _) = get(&reqwest_client(config), addr).await.unwrap();
    assert_eq!(body, format!("hello {CLIENT_ID} over HTTP/1.1"));
}

#[tokio::test]
async fn reqwest_accepts_servers_by_trust_domain_pattern_or_set() {
    let ca = TestCa::new("example.org").unwrap();
    let addr = start(server_source(&ca)).await;
    let source = ca.tls_source(CLIENT_ID).unwrap();
    let shop = ExpectedServer::matching("a workload of namespace `shop`", |id| {
        id.path().starts_with("/ns/shop/")
    });
    let set: BTreeSet<SpiffeId> = [id(SERVER_ID), id(OTHER_ID)].into();
    let in_set = ExpectedServer::matching("the shop servers", move |id| set.contains(id));
    let td = ExpectedServer::TrustDomain(ca.trust_domain().clone());
    for expected in [shop, in_set, td] {
        let config = ClientConfigBuilder::new(source.clone(), expected.clone())
            .build()
            .unwrap();
        let result = get(&reqwest_client(config), addr).await;
        assert!(result.is_ok(), "{expected}: {result:?}");
    }
    let web = ExpectedServer::matching("a workload of namespace `web`", |id| {
        id.path().starts_with("/ns/web/")
    });
    let config = ClientConfigBuilder::new(source, web).build().unwrap();
    let err = get(&reqwest_client(config), addr).await.unwrap_err();
    assert!(err.contains("namespace `web`"), "{err}");
}

#[tokio::test]
async fn reqwest_refuses_a_server_with_another_id_and_names_both() {
    let ca = TestCa::new("example.org").unwrap();
    let impostor = start(ca.tls_source(OTHER_ID).unwrap()).await;
    let config = ClientConfigBuilder::new(ca.tls_source(CLIENT_ID).unwrap(), id(SERVER_ID))
        .build()
        .unwrap();
    let client = reqwest_client(config);
    let url = format!("https://127.0.0.1:{}/", impostor.port());
    let err = client.get(url).send().await.unwrap_err();
    // The text reaching the caller through reqwest's source chain names both IDs.
    let text = chain(&err);
    assert!(text.contains(SERVER_ID), "{text}");
    assert!(text.contains(OTHER_ID), "{text}");
    // And the typed verdict can be recovered from it.
    let found = TlsError::from_error_chain(&err).unwrap_or_else(|| panic!("{err:#?}"));
    let TlsError::UnexpectedServerId { expected, got } = &found else {
        panic!("{found:?}")
    };
    assert_eq!(expected, &format!("`{SERVER_ID}`"));
    assert_eq!(got, &id(OTHER_ID));
    assert_eq!(
        found.to_string(),
        format!("server identity `{OTHER_ID}` is not the expected `{SERVER_ID}`")
    );
}

#[tokio::test]
async fn rotated_client_svid_is_presented_on_new_connections() {
    let ca = TestCa::new("example.org").unwrap();
    let addr = start(server_source(&ca)).await;
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, roots) = (
        dir.path().join("svid.pem"),
        dir.path().join("svid_key.pem"),
        dir.path().join("svid_bundle.pem"),
    );
    let write = |issued: &meshless::testing::TestSvid| {
        std::fs::write(&key, issued.key_pem()).unwrap();
        std::fs::write(&cert, issued.chain_pem()).unwrap();
    };
    write(&ca.issue(CLIENT_ID).unwrap());
    std::fs::write(&roots, ca.root_pem()).unwrap();
    let files = FileSource::builder(&cert, &key, &roots)
        .poll_interval(Duration::from_millis(50))
        .start()
        .await
        .unwrap();

    // One configuration, one reqwest client, for the whole test.
    let config = ClientConfigBuilder::new(files.source(), id(SERVER_ID))
        .build()
        .unwrap();
    let client = reqwest_client(config);
    let (body, _) = get(&client, addr).await.unwrap();
    assert_eq!(body, format!("hello {CLIENT_ID} over HTTP/2.0"));

    // spiffe-helper rewrites the files in place.
    write(&ca.issue(ROTATED_ID).unwrap());
    timeout(STEP, async {
        while files.status().reloads == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("reload seen");
    let (body, _) = get(&client, addr).await.unwrap();
    assert_eq!(body, format!("hello {ROTATED_ID} over HTTP/2.0"));
}

#[derive(Clone, PartialEq, prost::Message)]
struct HelloRequest {
    #[prost(string, tag = "1")]
    name: String,
}

#[derive(Clone, PartialEq, prost::Message)]
struct HelloReply {
    #[prost(string, tag = "1")]
    message: String,
}

const METHOD: &str = "/greet.Greeter/SayHello";

/// A one-method gRPC server greeting the caller by verified identity.
async fn start_grpc(source: TlsSource) -> SocketAddr {
    let say_hello = tower::service_fn(|req: tonic::Request<HelloRequest>| async move {
        let peer = req.extensions().get::<PeerIdentity>().unwrap().to_string();
        let message = format!("hello {} ({peer})", req.get_ref().name);
        Ok::<_, Status>(tonic::Response::new(HelloReply { message }))
    });
    let service = tower::service_fn(move |req: Request<Incoming>| async move {
        let mut grpc = tonic::server::Grpc::new(ProstCodec::<HelloReply, HelloRequest>::default());
        Ok::<_, Infallible>(grpc.unary(say_hello, req).await)
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = MtlsAcceptor::new(source).unwrap();
    tokio::spawn(meshless::serve(listener, acceptor, service));
    addr
}

#[tokio::test]
async fn tonic_channel_over_mtls_connector() {
    let ca = TestCa::new("example.org").unwrap();
    let addr = start_grpc(server_source(&ca)).await;
    let endpoint =
        tonic::transport::Endpoint::from_shared(format!("https://127.0.0.1:{}", addr.port()))
            .unwrap();
    let connector = MtlsConnector::new(ca.tls_source(CLIENT_ID).unwrap(), id(SERVER_ID)).unwrap();
    let channel = timeout(STEP, endpoint.connect_with_connector(connector))
        .await
        .unwrap()
        .unwrap();
    let mut client = tonic::client::Grpc::new(channel);
    client.ready().await.unwrap();
    let request = tonic::Request::new(HelloRequest {
        name: "tonic".into(),
    });
    let codec = ProstCodec::<HelloRequest, HelloReply>::default();
    let reply = timeout(
        STEP,
        client.unary(request, PathAndQuery::from_static(METHOD), codec),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(
        reply.into_inner().message,
        format!("hello tonic ({CLIENT_ID})")
    );

    // The same channel set-up against a server of another identity.
    let impostor = start_grpc(ca.tls_source(OTHER_ID).unwrap()).await;
    let endpoint =
        tonic::transport::Endpoint::from_shared(format!("https://127.0.0.1:{}", impostor.port()))
            .unwrap();
    let connector = MtlsConnector::new(ca.tls_source(CLIENT_ID).unwrap(), id(SERVER_ID)).unwrap();
    let err = timeout(STEP, endpoint.connect_with_connector(connector))
        .await
        .unwrap()
        .unwrap_err();
    let found = TlsError::from_error_chain(&err).expect("a meshless verdict in the chain");
    assert!(
        matches!(&found, TlsError::UnexpectedServerId { got, .. } if *got == id(OTHER_ID)),
        "{found:?}"
    );
    assert!(chain(&err).contains(OTHER_ID), "{}", chain(&err));
}

/// Serves `server_config` with tokio-rustls directly: each connection is told the
/// client's SPIFFE ID, read with `peer_id`.
async fn start_raw(server_config: Arc<rustls::ServerConfig>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let acceptor = tokio_rustls::TlsAcceptor::from(server_config);
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let client = peer_id(tls.get_ref().1).unwrap();
                let _ = tls.write_all(format!("{client}\n").as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    addr
}

/// Three connections from a client that resumes whenever the server lets it; the kind
/// of each handshake.
async fn handshakes(addr: SocketAddr, ca: &TestCa) -> Vec<rustls::HandshakeKind> {
    let config = ClientConfigBuilder::new(ca.tls_source(CLIENT_ID).unwrap(), id(SERVER_ID))
        .build()
        .unwrap();
    let mut resuming = Arc::unwrap_or_clone(config);
    resuming.resumption = rustls::client::Resumption::in_memory_sessions(16);
    let connector = tokio_rustls::TlsConnector::from(Arc::new(resuming));
    let mut kinds = Vec::new();
    for _ in 0..3 {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let name = "localhost".try_into().unwrap();
        let mut tls = timeout(STEP, connector.connect(name, tcp))
            .await
            .unwrap()
            .unwrap();
        let mut said = String::new();
        timeout(STEP, tls.read_to_string(&mut said))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(said, format!("{CLIENT_ID}\n"));
        let conn = tls.get_ref().1;
        assert_eq!(peer_id(conn).unwrap(), id(SERVER_ID));
        kinds.push(conn.handshake_kind().unwrap());
    }
    kinds
}

/// The server configuration, driven by tokio-rustls directly: the client is verified,
/// `peer_id` reads each side's ID, and a client that asks to resume gets a full
/// handshake every time (while the same configuration with a session cache and
/// tickets would let it resume, skipping the client-certificate verifier).
#[tokio::test]
async fn server_config_verifies_clients_and_never_resumes() {
    use rustls::HandshakeKind::{Full, Resumed};
    let ca = TestCa::new("example.org").unwrap();
    let server_config = MtlsAcceptor::builder(server_source(&ca))
        .server_config()
        .unwrap();

    let mut resumable = (*server_config).clone();
    resumable.session_storage = rustls::server::ServerSessionMemoryCache::new(16);
    resumable.send_tls13_tickets = 2;
    let addr = start_raw(Arc::new(resumable)).await;
    assert_eq!(handshakes(addr, &ca).await, [Full, Resumed, Resumed]);

    let addr = start_raw(server_config).await;
    assert_eq!(handshakes(addr, &ca).await, [Full, Full, Full]);
}
