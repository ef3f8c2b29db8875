//! The audit log: one event per decision on target `meshless::audit`, with stable
//! fields, captured from a real tracing subscriber.

use http::{Request, Response, StatusCode};
use meshless::audit::AuditConfig;
use meshless::authorize::AuthorizeLayer;
use meshless::policy::{Policy, PolicyHandle};
use meshless::{PeerIdentity, SpiffeId, Unauthenticated};
use tower::ServiceExt;

#[path = "support/log_capture.rs"]
mod log_capture;

/// Runs `requests` (peer, path) through a layer over `policy` and returns the audit lines.
async fn audit_lines(
    policy: &str,
    audit: AuditConfig,
    requests: &[(PeerIdentity, &str)],
) -> (Vec<StatusCode>, Vec<String>) {
    log_capture::start();
    let layer =
        AuthorizeLayer::new(PolicyHandle::new(Policy::from_yaml(policy).unwrap())).audit(audit);
    let mut statuses = Vec::new();
    for (peer, path) in requests {
        let svc = tower::ServiceBuilder::new()
            .layer(layer.clone())
            .service_fn(|_req: Request<()>| async {
                Ok::<_, std::convert::Infallible>(Response::new(String::new()))
            });
        let mut req = Request::get(*path)
            .header("host", "api.example.org")
            .body(())
            .unwrap();
        req.extensions_mut().insert(peer.clone());
        statuses.push(svc.oneshot(req).await.unwrap().status());
    }
    let lines = log_capture::text()
        .lines()
        .filter(|l| l.contains("meshless::audit"))
        .map(str::to_owned)
        .collect();
    (statuses, lines)
}

fn peer(id: &str) -> PeerIdentity {
    PeerIdentity::authenticated(id.parse::<SpiffeId>().unwrap())
        .with_remote_addr("10.1.2.3:4444".parse().unwrap())
}

const POLICY: &str = r#"
default: deny
local_trust_domains: [example.org]
rules:
  - name: web-reads
    action: allow
    from: [{namespaces: ["web"]}]
  - name: watch-exports
    action: audit
    to: [{paths: ["/export*"]}]
"#;

#[tokio::test]
async fn denials_and_allowed_requests_are_logged_with_stable_fields() {
    let (statuses, lines) = audit_lines(
        POLICY,
        AuditConfig::default(),
        &[
            (peer("spiffe://example.org/ns/web/sa/a"), "/%69tems"),
            (peer("spiffe://example.org/ns/ops/sa/b"), "/items"),
            (
                PeerIdentity::unauthenticated(Unauthenticated::Plaintext),
                "/items",
            ),
            (peer("spiffe://example.org/ns/web/sa/a"), "/export/all"),
        ],
    )
    .await;
    assert_eq!(
        statuses,
        [
            StatusCode::OK,
            StatusCode::FORBIDDEN,
            StatusCode::FORBIDDEN,
            StatusCode::OK
        ]
    );
    assert_eq!(lines.len(), 4, "{lines:#?}");
    let allowed = &lines[0];
    for field in [
        "decision=\"allow\"",
        "rule=\"web-reads\"",
        "peer=spiffe://example.org/ns/web/sa/a",
        "source=10.1.2.3:4444",
        "method=\"GET\"",
        "host=\"api.example.org\"",
        "path=\"/items\"",
        "dry_run=false",
    ] {
        assert!(allowed.contains(field), "{field} missing in {allowed}");
    }
    assert!(allowed.starts_with("DEBUG"), "{allowed}");
    let denied = &lines[1];
    assert!(
        denied.starts_with(" INFO")
            && denied.contains("decision=\"deny\"")
            && denied.contains("rule=\"default:deny\""),
        "{denied}"
    );
    assert!(
        lines[2].contains("peer=unauthenticated (plaintext)"),
        "{}",
        lines[2]
    );
    assert!(
        lines[3].contains("decision=\"audit\"") && lines[3].contains("audit=watch-exports"),
        "{}",
        lines[3]
    );
}

#[tokio::test]
async fn the_audit_default_logs_would_deny_and_sampling_mutes_only_allowed_requests() {
    let (statuses, lines) = audit_lines(
        "default: audit\n",
        AuditConfig::default().sample_allowed(0),
        &[(peer("spiffe://example.org/ns/ops/sa/b"), "/anything")],
    )
    .await;
    assert_eq!(statuses, [StatusCode::OK]);
    assert_eq!(
        lines.len(),
        1,
        "audit decisions are never sampled away: {lines:#?}"
    );
    assert!(lines[0].contains("decision=\"would-deny\""), "{}", lines[0]);

    let (_, lines) = audit_lines(
        POLICY,
        AuditConfig::default().sample_allowed(0),
        &[
            (peer("spiffe://example.org/ns/web/sa/a"), "/items"),
            (peer("spiffe://example.org/ns/ops/sa/b"), "/items"),
        ],
    )
    .await;
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert!(lines[0].contains("decision=\"deny\""));

    let (_, lines) = audit_lines(
        POLICY,
        AuditConfig::default().sample_allowed(3),
        &vec![(peer("spiffe://example.org/ns/web/sa/a"), "/items"); 9],
    )
    .await;
    assert_eq!(lines.len(), 3, "one in three: {lines:#?}");
}

#[tokio::test]
async fn the_request_principal_is_logged() {
    log_capture::start();
    let policy = Policy::from_yaml(
        "rules:\n  - name: users\n    action: allow\n    from: [{request_principals: [\"https://idp.example.com/*\"]}]\n",
    )
    .unwrap();
    let layer = AuthorizeLayer::new(PolicyHandle::new(policy));
    let mut statuses = Vec::new();
    for principal in [
        Some(meshless::RequestPrincipal::new(
            "https://idp.example.com",
            "alice",
        )),
        None,
    ] {
        let svc = tower::ServiceBuilder::new()
            .layer(layer.clone())
            .service_fn(|_req: Request<()>| async {
                Ok::<_, std::convert::Infallible>(Response::new(String::new()))
            });
        let mut req = Request::get("/items")
            .header("host", "api.example.org")
            .body(())
            .unwrap();
        req.extensions_mut()
            .insert(peer("spiffe://example.org/ns/web/sa/a"));
        if let Some(p) = principal {
            req.extensions_mut().insert(p);
        }
        statuses.push(svc.oneshot(req).await.unwrap().status());
    }
    assert_eq!(statuses, [StatusCode::OK, StatusCode::FORBIDDEN]);
    let lines: Vec<String> = log_capture::text()
        .lines()
        .filter(|l| l.contains("meshless::audit"))
        .map(str::to_owned)
        .collect();
    assert_eq!(lines.len(), 2, "{lines:#?}");
    assert!(
        lines[0].contains("principal=https://idp.example.com/alice")
            && lines[0].contains("rule=\"users\""),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].contains("principal= ") && lines[1].contains("decision=\"deny\""),
        "{}",
        lines[1]
    );
}

/// Rules that read differently on TCP are a WARN where TCP connections are decided
/// (`ConnectionAuthorizer`), and only a DEBUG line for an HTTP-only policy.
#[test]
fn tcp_semantics_warnings_are_raised_where_tcp_is_decided() {
    log_capture::start();
    let policy = PolicyHandle::new(Policy::from_yaml(POLICY).unwrap());
    let _layer = AuthorizeLayer::new(policy.clone());
    let warn = |text: &str| {
        text.lines()
            .filter(|l| l.contains("WARN") && l.contains("never matches a TCP connection"))
            .count()
    };
    let http_only = log_capture::text();
    assert!(
        http_only.contains("watch-exports") && http_only.contains("DEBUG"),
        "{http_only}"
    );
    assert_eq!(warn(&http_only), 0, "{http_only}");
    let _tcp = meshless::authorize::ConnectionAuthorizer::new(policy);
    let with_tcp = log_capture::text();
    assert_eq!(warn(&with_tcp), 1, "{with_tcp}");
}
