//! JWKS fetched over HTTPS (feature `jwt-https`): a `jwks_uri` of an OIDC provider, or
//! a SPIFFE bundle endpoint, cached and refreshed in the background.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Uri, header};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use tokio_rustls::TlsConnector;

use super::JwksError;

/// The largest JWKS document accepted (1 MiB).
const MAX_BODY: usize = 1 << 20;
/// Connect + TLS handshake + response, per fetch.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) struct Remote {
    url: Box<str>,
    host: Box<str>,
    port: u16,
    authority: Box<str>,
    path: Box<str>,
    connector: TlsConnector,
}

impl Remote {
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    pub(super) fn new(url: &str, tls: Arc<ClientConfig>) -> Result<Self, JwksError> {
        let bad = |message: &str| JwksError::Fetch {
            url: url.to_owned(),
            message: message.to_owned(),
        };
        let uri: Uri = url.parse().map_err(|_| bad("not a URL"))?;
        if uri.scheme_str() != Some("https") {
            return Err(bad("only https URLs are fetched"));
        }
        let authority = uri.authority().ok_or_else(|| bad("no host"))?;
        if authority.as_str().contains('@') {
            return Err(bad("userinfo is not allowed"));
        }
        // HTTP/1.1 only: a config offering h2 would make the server pick it.
        let mut tls = (*tls).clone();
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            url: url.into(),
            host: authority
                .host()
                .trim_start_matches('[')
                .trim_end_matches(']')
                .into(),
            port: authority.port_u16().unwrap_or(443),
            authority: authority.as_str().into(),
            path: uri.path_and_query().map_or("/", |p| p.as_str()).into(),
            connector: TlsConnector::from(Arc::new(tls)),
        })
    }

    pub(super) async fn fetch(&self) -> Result<Vec<u8>, JwksError> {
        let err = |message: String| JwksError::Fetch {
            url: self.url.to_string(),
            message,
        };
        let work = async {
            let server_name = ServerName::try_from(self.host.to_string())
                .map_err(|e| format!("bad server name: {e}"))?;
            let tcp = tokio::net::TcpStream::connect((&*self.host, self.port))
                .await
                .map_err(|e| format!("connect: {e}"))?;
            let tls = self
                .connector
                .connect(server_name, tcp)
                .await
                .map_err(|e| format!("tls: {e}"))?;
            let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
                .await
                .map_err(|e| format!("http: {e}"))?;
            tokio::spawn(conn);
            let req = Request::get(&*self.path)
                .header(header::HOST, &*self.authority)
                .header(header::ACCEPT, "application/json")
                .body(Empty::<Bytes>::new())
                .map_err(|e| format!("request: {e}"))?;
            let res = sender
                .send_request(req)
                .await
                .map_err(|e| format!("http: {e}"))?;
            if !res.status().is_success() {
                return Err(format!("status {}", res.status()));
            }
            let body = Limited::new(res.into_body(), MAX_BODY)
                .collect()
                .await
                .map_err(|e| format!("body: {e}"))?;
            Ok(body.to_bytes().to_vec())
        };
        match tokio::time::timeout(FETCH_TIMEOUT, work).await {
            Ok(result) => result.map_err(err),
            Err(_) => Err(err("timed out".into())),
        }
    }
}
