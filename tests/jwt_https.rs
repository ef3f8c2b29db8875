//! JWKS fetched over real HTTPS from a loopback server (rustls, certificate generated at
//! test time): first fetch, rotation on refresh, last good keys kept when the endpoint
//! fails, and refusal of an untrusted server.

#[path = "jwt_common/mod.rs"]
mod common;

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use http::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use meshless::jwt::{JwksError, JwksSource, JwtIssuer, JwtVerifier, TokenError};
use meshless::testing::TestJwtKey;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// What the endpoint answers: (status, body).
type Served = Arc<Mutex<(StatusCode, String)>>;

/// An HTTPS server on 127.0.0.1 for `localhost`; returns its port and certificate.
async fn serve(served: Served) -> (u16, CertificateDer<'static>) {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let der = cert.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.signing_key.serialize_der()));
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![der.clone()], key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            let served = served.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                    let (status, body) = served.lock().unwrap().clone();
                    let body = if req.uri().path() == "/jwks.json" {
                        body
                    } else {
                        String::new()
                    };
                    let mut res = Response::new(body);
                    *res.status_mut() = status;
                    async move { Ok::<_, Infallible>(res) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), svc)
                    .await;
            });
        }
    });
    (port, der)
}

fn client(trusted: Option<CertificateDer<'static>>) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    if let Some(cert) = trusted {
        roots.add(cert).unwrap();
    }
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetches_rotates_and_keeps_last_good_keys() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let k = keys();
        let served: Served = Arc::new(Mutex::new((StatusCode::OK, TestJwtKey::jwks(&[&k.rsa]))));
        let (port, cert) = serve(served.clone()).await;
        let url = format!("https://localhost:{port}/jwks.json");
        // A long refresh period: the test drives refreshes itself.
        let source =
            JwksSource::fetch_jwks_https(&url, client(Some(cert)), Duration::from_secs(3600))
                .await
                .unwrap();
        let v =
            JwtVerifier::new([JwtIssuer::new(ISS, source.clone()).unwrap().audience(AUD)]).unwrap();
        let old = k.rsa.sign(&claims("")).unwrap();
        let new = k.ec.sign(&claims("")).unwrap();
        assert!(v.verify_at(&old, NOW).is_ok());
        assert_eq!(source.refresh().await, Ok(false));

        served.lock().unwrap().1 = TestJwtKey::jwks(&[&k.ec]);
        assert_eq!(source.refresh().await, Ok(true));
        assert!(v.verify_at(&new, NOW).is_ok());
        assert_eq!(
            v.verify_at(&old, NOW).unwrap_err().reason(),
            &TokenError::UnknownKid("rsa-1".into())
        );

        // The endpoint fails: last good keys stay, the error is reported.
        served.lock().unwrap().0 = StatusCode::INTERNAL_SERVER_ERROR;
        assert!(matches!(
            source.refresh().await,
            Err(JwksError::Fetch { .. })
        ));
        assert!(matches!(source.last_error(), Some(JwksError::Fetch { .. })));
        assert!(v.verify_at(&new, NOW).is_ok());
        // It serves garbage: same.
        *served.lock().unwrap() = (StatusCode::OK, "<html>".into());
        assert!(matches!(source.refresh().await, Err(JwksError::Json(_))));
        assert!(v.verify_at(&new, NOW).is_ok());
        // It recovers.
        served.lock().unwrap().1 = TestJwtKey::jwks(&[&k.ec, &k.ed]);
        assert_eq!(source.refresh().await, Ok(true));
        assert!(source.last_error().is_none());
    })
    .await
    .expect("bounded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_refresh_picks_up_new_keys() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let k = keys();
        let served: Served = Arc::new(Mutex::new((StatusCode::OK, TestJwtKey::jwks(&[&k.rsa]))));
        let (port, cert) = serve(served.clone()).await;
        let url = format!("https://localhost:{port}/jwks.json");
        let source =
            JwksSource::fetch_jwks_https(&url, client(Some(cert)), Duration::from_millis(50))
                .await
                .unwrap();
        served.lock().unwrap().1 = TestJwtKey::jwks(&[&k.ed]);
        // Bounded by the timeout above; no assertion on how fast.
        while source.keys().find("ed-1").is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(source.keys().find("rsa-1").is_empty());
    })
    .await
    .expect("background refresh within the bound");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_untrusted_servers_plain_http_and_bad_first_fetch() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let served: Served = Arc::new(Mutex::new((StatusCode::OK, TestJwtKey::jwks(&[&keys().ec]))));
        let (port, cert) = serve(served.clone()).await;
        let url = format!("https://localhost:{port}/jwks.json");
        let untrusted = JwksSource::fetch_jwks_https(&url, client(None), Duration::from_secs(60)).await;
        assert!(matches!(untrusted, Err(JwksError::Fetch { ref message, .. }) if message.starts_with("tls")), "{untrusted:?}");
        let plain = format!("http://localhost:{port}/jwks.json");
        assert!(matches!(
            JwksSource::fetch_jwks_https(&plain, client(Some(cert.clone())), Duration::from_secs(60)).await,
            Err(JwksError::Fetch { .. })
        ));
        let missing = format!("https://localhost:{port}/other");
        assert!(matches!(
            JwksSource::fetch_jwks_https(&missing, client(Some(cert)), Duration::from_secs(60)).await,
            Err(JwksError::Json(_))
        ));
    })
    .await
    .expect("bounded");
}

/// An Istio `RequestAuthentication` with a `jwksUri` becomes a working issuer through
/// `JwtRule::to_issuer_https`; `to_issuer` refuses it with a clear error.
#[cfg(feature = "yaml")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn istio_request_authentication_with_jwks_uri() {
    use meshless::policy::{Policy, RequestAuthnError};
    tokio::time::timeout(Duration::from_secs(60), async {
        let k = keys();
        let served: Served = Arc::new(Mutex::new((StatusCode::OK, TestJwtKey::jwks(&[&k.ec]))));
        let (port, cert) = serve(served).await;
        let policy = Policy::from_yaml(&format!(
            "apiVersion: security.istio.io/v1\nkind: RequestAuthentication\nmetadata: {{name: idp, namespace: shop}}\nspec:\n  jwtRules:\n  - issuer: \"{ISS}\"\n    audiences: [\"{AUD}\"]\n    jwksUri: \"https://localhost:{port}/jwks.json\"\n"
        ))
        .unwrap();
        let rule = &policy.request_authentication()[0].rules[0];
        assert!(matches!(
            rule.to_issuer(),
            Err(RequestAuthnError::JwksUriNeedsHttps { .. })
        ));
        let issuer = rule
            .to_issuer_https(client(Some(cert)), Duration::from_secs(3600))
            .await
            .unwrap();
        let v = JwtVerifier::new([issuer]).unwrap();
        let token = k.ec.sign(&claims("")).unwrap();
        assert_eq!(
            v.verify_at(&token, NOW).unwrap().principal().as_str(),
            format!("{ISS}/user-1")
        );
        let other_aud = k
            .ec
            .sign(&claims("").replace(&format!("\"aud\":\"{AUD}\""), "\"aud\":\"x\""))
            .unwrap();
        assert!(v.verify_at(&other_aud, NOW).is_err(), "audiences are kept");
    })
    .await
    .expect("bounded");
}
