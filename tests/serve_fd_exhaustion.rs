//! `meshless::serve` survives running out of file descriptors: accept fails with
//! EMFILE, the server backs off instead of exiting, and serves again once descriptors
//! are free. In its own test binary because it changes the process's fd limit.

mod common;

use std::convert::Infallible;
use std::io::Write;
use std::sync::{Arc, Mutex};

use common::*;
use http::{Request, Response};
use http_body_util::{BodyExt, Empty};
use hyper::body::{Bytes, Incoming};
use meshless::PeerIdentity;
use meshless::testing::TestCa;
use meshless::tls::{MtlsAcceptor, MtlsConnector, TlsSource};
use rlimit::Resource;
use tokio::net::TcpListener;
use tokio::time::timeout;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[tokio::test]
async fn keeps_serving_after_running_out_of_file_descriptors() {
    let log = Captured::default();
    let writer = log.clone();
    tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();

    let ca = TestCa::new("example.org").unwrap();
    let acceptor = MtlsAcceptor::new(server_source(&ca)).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let service = tower::service_fn(|req: Request<Incoming>| async move {
        let peer = req.extensions().get::<PeerIdentity>().unwrap().clone();
        Ok::<_, Infallible>(Response::new(format!("hello {peer}")))
    });
    let server = tokio::spawn(meshless::serve(listener, acceptor, service));
    let client_source = TlsSource::new(material(&ca.issue(CLIENT_ID).unwrap(), bundle(&ca)));
    let connector = MtlsConnector::new(client_source, ca.trust_domain().clone())
        .unwrap()
        .http1_only();

    // Exhaust descriptors under a low limit, then spend the last one on the client
    // socket: the server's accept now fails with EMFILE.
    let (soft, hard) = rlimit::getrlimit(Resource::NOFILE).unwrap();
    rlimit::setrlimit(Resource::NOFILE, 256.min(soft), hard).unwrap();
    let mut hog = Vec::new();
    while let Ok(file) = std::fs::File::open("/dev/null") {
        hog.push(file);
    }
    hog.pop();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    timeout(STEP, async {
        while !log.text().contains("accept failed") {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the server never met EMFILE");
    assert!(!server.is_finished(), "the server exited on EMFILE");

    // Free the descriptors: the same client is now served.
    drop(hog);
    rlimit::setrlimit(Resource::NOFILE, soft, hard).unwrap();
    let conn = timeout(STEP, connector.connect_stream(tcp, "localhost"))
        .await
        .unwrap()
        .unwrap();
    let (tls, _) = conn.into_inner();
    let (mut sender, driver) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
            .await
            .unwrap();
    tokio::spawn(driver);
    let request = Request::get("/")
        .header("host", "localhost")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = timeout(STEP, sender.send_request(request))
        .await
        .unwrap()
        .unwrap();
    let body = timeout(STEP, response.into_body().collect())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(body.to_bytes(), format!("hello {CLIENT_ID}").as_bytes());
    assert!(log.text().contains("Too many open files"), "{}", log.text());
}
