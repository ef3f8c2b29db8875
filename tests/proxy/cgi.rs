//! An unmodified app that reads requests the CGI way (Python's stdlib `wsgiref`,
//! `tests/proxy/cgi_app.py`) behind the proxy: it must never see a forged identity, nor
//! a method, path, host or header that a deny rule forbids, whatever the client sends
//! over HTTP/1.1, HTTP/2 or plaintext in permissive mode.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;

use crate::harness::*;
use crate::http::inbound_config;

/// The frontend may do anything the deny rules do not forbid; anyone may read
/// `/healthz` (the plaintext peer in permissive mode).
const POLICY: &str = r#"
default: deny
rules:
  - name: frontend
    action: allow
    from: [{identities: ["spiffe://example.org/ns/web/sa/frontend"]}]
  - name: health
    action: allow
    to: [{paths: ["/healthz"]}]
  - name: no-admin
    action: deny
    to: [{paths: ["/admin", "/admin/*", "/@admin", "/café"]}]
  - name: no-delete
    action: deny
    to: [{methods: ["DELETE"]}]
  - name: no-internal-host
    action: deny
    to: [{hosts: ["admin.internal"]}]
  - name: no-debug-role
    action: deny
    when: [{header: x-role, values: ["debug"]}]
"#;

/// Starts the WSGI app on a free port; returns it with its port.
fn start_app(ws: &Workspace) -> (Proc, u16) {
    let port = free_port();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/proxy/cgi_app.py");
    let child = std::process::Command::new("python3")
        .arg(script)
        .arg(port.to_string())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(ws.path("wsgi.log")).unwrap())
        .spawn()
        .expect("python3 (install it to run this test)");
    let log = ws.path("wsgi.log");
    (Proc { child, log }, port)
}

/// What the app read, or `None` when the proxy answered itself.
fn app_view(body: &str) -> Option<BTreeMap<String, String>> {
    let rest = body.strip_prefix("APP\n")?;
    Some(
        rest.lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
    )
}

/// Checks one exchange: refused by the proxy (400/403, or the HTTP/2 stream reset by
/// hyper for a malformed `:authority`, which curl reports as 0), or served with
/// nothing the policy forbids and the verified identity (or none) in the identity
/// variables.
fn check(what: &str, identity: Option<&str>, (status, body): &(u16, String)) -> bool {
    let Some(env) = app_view(body) else {
        assert!(
            *status == 400 || *status == 403 || (*status == 0 && body.is_empty()),
            "{what}: proxy answered {status}: {body}"
        );
        return false;
    };
    assert_eq!(*status, 200, "{what}: {body}");
    let get = |k: &str| env.get(k).map(String::as_str);
    assert_eq!(get("HTTP_L5D_CLIENT_ID"), identity, "{what}: {body}");
    let xfcc = identity.map(|id| format!("URI={id}"));
    assert_eq!(
        get("HTTP_X_FORWARDED_CLIENT_CERT"),
        xfcc.as_deref(),
        "{what}: {body}"
    );
    assert_ne!(get("METHOD"), Some("DELETE"), "{what}: {body}");
    let path = get("PATH").unwrap_or_default();
    assert!(
        !path.starts_with("/admin") && path != "/@admin" && path != "/café",
        "{what}: the app served {path}: {body}"
    );
    assert_ne!(get("HOST"), Some("admin.internal"), "{what}: {body}");
    let role = get("HTTP_X_ROLE").unwrap_or_default();
    assert!(
        !role.split(',').any(|r| r.trim() == "debug"),
        "{what}: the app read x-role {role:?}"
    );
    true
}

/// Hostile requests as curl arguments (before the URL), with the HTTP versions they
/// are sent in.
fn hostile() -> Vec<(&'static str, Vec<&'static str>, bool)> {
    let h = |v: &'static str| vec!["-H", v];
    // (what, curl args, also over HTTP/2)
    let mut cases = vec![
        (
            "forged l5d-client-id",
            h("l5d-client-id: spiffe://example.org/ns/x/sa/forged"),
            true,
        ),
        (
            "mixed-case l5d-client-id",
            h("L5D-Client-Id: spiffe://example.org/ns/x/sa/forged"),
            true,
        ),
        (
            "l5d_client_id",
            h("l5d_client_id: spiffe://example.org/ns/x/sa/forged"),
            true,
        ),
        (
            "L5D_CLIENT_ID",
            h("L5D_CLIENT_ID: spiffe://example.org/ns/x/sa/forged"),
            true,
        ),
        (
            "x_forwarded_client_cert",
            h("x_forwarded_client_cert: URI=spiffe://forged"),
            true,
        ),
        (
            "forged xfcc",
            h("X-Forwarded-Client-Cert: URI=spiffe://forged"),
            true,
        ),
        (
            "Connection names l5d-client-id",
            vec![
                "-H",
                "Connection: l5d-client-id",
                "-H",
                "l5d-client-id: spiffe://forged",
            ],
            false,
        ),
        (
            "Connection names xfcc",
            h("Connection: X-Forwarded-Client-Cert"),
            false,
        ),
        (
            "Connection names x-role",
            vec!["-H", "Connection: x-role", "-H", "x-role: debug"],
            false,
        ),
        ("delete", vec!["-X", "delete"], true),
        ("Delete", vec!["-X", "Delete"], true),
        ("DELETE", vec!["-X", "DELETE"], true),
        (
            "method override",
            vec!["-X", "POST", "-H", "X-HTTP-Method-Override: DELETE"],
            true,
        ),
        (
            "method override, lower case",
            vec!["-X", "POST", "-H", "x-http-method-override: delete"],
            true,
        ),
        ("host admin.internal", h("Host: admin.internal"), true),
        ("host ADMIN.INTERNAL.", h("Host: ADMIN.INTERNAL."), true),
        ("host with port", h("Host: admin.internal:8443"), true),
        (
            "host with a port of letters",
            h("Host: admin.internal:abc"),
            true,
        ),
        (
            "host with two colons",
            h("Host: admin.internal:443:1"),
            true,
        ),
        ("x-role debug", h("x-role: debug"), true),
        ("x-role padded", h("x-role:   debug  "), true),
        ("X-ROLE", h("X-ROLE: debug"), true),
        ("x_role", h("x_role: debug"), true),
        (
            "x-role twice",
            vec!["-H", "x-role: viewer", "-H", "x-role: debug"],
            true,
        ),
        ("x-role list", h("x-role: viewer, debug"), true),
    ];
    for path in [
        "/admin",
        "/admin/x",
        "/orders/../admin",
        "/orders/%2e%2e/admin",
        "/orders/.%2E/admin/x",
        "//admin",
        "/admin//x",
        "/%61dmin",
        "/%40admin",
        "/caf%C3%A9",
        "/caf%c3%a9",
        "/admin;x",
        "/admin%3Bx",
        "/admin%2Fx",
        "/orders/..;/admin",
        "/%2561dmin",
    ] {
        cases.push((path, vec!["--path-as-is", path], true));
    }
    cases
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cgi_app_behind_the_proxy_never_sees_a_forged_identity_or_a_denied_attribute() {
    let ws = Workspace::new();
    let (_app, app_port) = start_app(&ws);
    let (config, port, admin) = inbound_config(&ws, app_port, "strict", "");
    ws.write("policy.yaml", POLICY);
    let proxy = ws.start_proxy("proxy", &config, admin).await;

    // The app may take a moment to listen: a bounded number of tries.
    let mut ready = (0, String::new());
    for _ in 0..300 {
        ready = curl(&mtls_args(&ws, port, "/orders", Some("client"))).await;
        if ready.0 == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        check("control", Some(CLIENT_ID), &ready),
        "{}",
        proxy.log_text()
    );

    let mut served = 0;
    for (what, args, h2_too) in hostile() {
        let versions: &[&str] = if h2_too {
            &["--http1.1", "--http2"]
        } else {
            &["--http1.1"]
        };
        for version in versions {
            let (path, extra) = match args.iter().position(|a| a.starts_with('/')) {
                Some(i) => (args[i], &args[..i]),
                None => ("/orders", &args[..]),
            };
            let mut full: Vec<String> = vec![(*version).to_owned()];
            full.extend(extra.iter().map(|a| (*a).to_owned()));
            full.extend(mtls_args(&ws, port, path, Some("client")));
            let result = curl(&full).await;
            if check(&format!("{what} {version}"), Some(CLIENT_ID), &result) {
                served += 1;
            }
        }
    }
    // Identity spoofing with allowed attributes is served, with the true identity.
    assert!(
        served >= 4,
        "only {served} hostile requests reached the app"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plaintext_peer_in_permissive_mode_cannot_name_itself_to_a_cgi_app() {
    let ws = Workspace::new();
    let (_app, app_port) = start_app(&ws);
    let (config, port, admin) = inbound_config(&ws, app_port, "permissive", "");
    ws.write("policy.yaml", POLICY);
    let _proxy = ws.start_proxy("proxy", &config, admin).await;
    let url = format!("http://127.0.0.1:{port}/healthz");
    let mut ready = (0, String::new());
    for _ in 0..300 {
        ready = curl(std::slice::from_ref(&url)).await;
        if ready.0 == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(check("control", None, &ready));
    for forged in [
        "l5d-client-id: spiffe://example.org/ns/web/sa/frontend",
        "l5d_client_id: spiffe://example.org/ns/web/sa/frontend",
        "L5D_CLIENT_ID: spiffe://example.org/ns/web/sa/frontend",
        "x_forwarded_client_cert: URI=spiffe://example.org/ns/web/sa/frontend",
    ] {
        for version in ["--http1.1", "--http2-prior-knowledge"] {
            let args = [
                version.to_owned(),
                "-H".to_owned(),
                forged.to_owned(),
                url.clone(),
            ];
            let result = curl(&args).await;
            check(&format!("{forged} {version}"), None, &result);
        }
    }
}
