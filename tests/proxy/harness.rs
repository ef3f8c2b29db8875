//! Running the compiled proxy example against real programs: certificates from
//! `TestCa` on disk, a small hyper app, curl, child processes killed on drop.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use meshless::testing::TestCa;
use tokio::net::TcpListener;

/// Every network step is bounded by this.
pub const STEP: Duration = Duration::from_secs(10);

pub const TD: &str = "example.org";
pub const SERVER_ID: &str = "spiffe://example.org/ns/shop/sa/orders";
pub const CLIENT_ID: &str = "spiffe://example.org/ns/web/sa/frontend";
pub const OTHER_ID: &str = "spiffe://example.org/ns/batch/sa/report";

/// A policy allowing CLIENT_ID everything except `/admin*`, and anyone `/healthz`.
pub const POLICY: &str = r#"
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
    to: [{paths: ["/admin*"]}]
"#;

/// The compiled `proxy` example, built once per test run with the same profile and
/// target directory as this test binary.
pub fn proxy_binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let exe = std::env::current_exe().expect("test executable path");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("target/<profile>/deps");
        let target_dir = profile_dir.parent().expect("target dir");
        let mut cmd = Command::new(env!("CARGO"));
        cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["build", "--example", "proxy", "--target-dir"])
            .arg(target_dir);
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            cmd.arg("--release");
        }
        let mut child = cmd.spawn().expect("run cargo build --example proxy");
        let deadline = Instant::now() + Duration::from_secs(900);
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait for cargo") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("cargo build --example proxy took more than 15 minutes");
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        assert!(status.success(), "cargo build --example proxy failed");
        profile_dir.join("examples").join("proxy")
    })
}

/// A port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process, killed (and reaped) when dropped.
pub struct Proc {
    pub child: Child,
    pub log: PathBuf,
}

impl Proc {
    /// Sends `signal` (e.g. `"TERM"`, `"HUP"`) with kill(1).
    pub fn signal(&self, signal: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{signal} failed");
    }

    /// Waits (bounded) for the process to exit and returns its exit code.
    pub async fn wait_exit(&mut self, within: Duration) -> Option<i32> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            assert!(
                Instant::now() < deadline,
                "process did not exit within {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// What the process logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A temp dir with a CA, the proxy's SVID (DNS SAN `localhost` for curl), the bundle,
/// and client certificates.
pub struct Workspace {
    pub dir: tempfile::TempDir,
    pub ca: TestCa,
}

impl Workspace {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let ca = TestCa::new(TD).unwrap();
        let ws = Self { dir, ca };
        ws.issue_server(SERVER_ID, "svid");
        std::fs::write(ws.path("bundle.pem"), ws.ca.root_pem()).unwrap();
        ws.issue_client(CLIENT_ID, "client");
        ws.issue_client(OTHER_ID, "other");
        // The right SPIFFE ID from a CA nobody trusts.
        let rogue = TestCa::new(TD).unwrap();
        rogue
            .issue(CLIENT_ID)
            .unwrap()
            .write_pem(ws.dir.path(), "rogue")
            .unwrap();
        ws
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes `<name>.pem` / `<name>.key` for a server SVID with DNS SAN `localhost`.
    pub fn issue_server(&self, id: &str, name: &str) {
        self.ca
            .issue_with_dns_sans(id, &["localhost"])
            .unwrap()
            .write_pem(self.dir.path(), name)
            .unwrap();
    }

    pub fn issue_client(&self, id: &str, name: &str) {
        self.ca
            .issue(id)
            .unwrap()
            .write_pem(self.dir.path(), name)
            .unwrap();
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// `[identity]` with this workspace's files (`svid.pem`, `svid.key`, `bundle.pem`).
    pub fn identity_toml(&self, svid: &str) -> String {
        format!(
            "[identity]\ncert = \"{svid}.pem\"\nkey = \"{svid}.key\"\nbundle = \"bundle.pem\"\n\n"
        )
    }

    /// Starts the proxy with `config` (written as `<name>.toml`), waits until its admin
    /// port at `admin` answers `/ready`.
    pub async fn start_proxy(&self, name: &str, config: &str, admin: u16) -> Proc {
        let proc = self.spawn_proxy(name, config, &[]);
        wait_ready(admin, &proc).await;
        proc
    }

    /// Spawns the proxy without waiting.
    pub fn spawn_proxy(&self, name: &str, config: &str, extra: &[&str]) -> Proc {
        let path = self.write(&format!("{name}.toml"), config);
        let log = self.path(&format!("{name}.log"));
        let child = Command::new(proxy_binary())
            .arg("--config")
            .arg(&path)
            .args(extra)
            .env("PROXY_LOG", "info,meshless::audit=debug")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(self.path(&format!("{name}.out"))).unwrap())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Proc { child, log }
    }
}

/// Polls `GET /ready` on the admin port until it answers 200.
pub async fn wait_ready(admin: u16, proc: &Proc) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (code, _) = curl(&[format!("http://127.0.0.1:{admin}/ready")]).await;
        if code == 200 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "proxy not ready within 30 s; log:\n{}",
            proc.log_text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Runs curl with `args` (plus `--silent --max-time`), returns (HTTP status or 0 for a
/// failed transfer, body).
pub async fn curl(args: &[String]) -> (u16, String) {
    let out = tokio::time::timeout(
        STEP + Duration::from_secs(2),
        tokio::process::Command::new("curl")
            .args(["--silent", "--show-error", "--max-time", "10"])
            .args(["--write-out", "\n%{http_code}"])
            .args(args)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("curl timed out")
    .expect("run curl (install it to run these tests)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (code.trim().parse().unwrap_or(0), body.to_owned())
}

/// curl arguments for `https://localhost:port<path>` with client certificate `client`
/// (`None`: no certificate).
pub fn mtls_args(ws: &Workspace, port: u16, path: &str, client: Option<&str>) -> Vec<String> {
    let mut args = vec![
        "--resolve".to_owned(),
        format!("localhost:{port}:127.0.0.1"),
        "--cacert".to_owned(),
        ws.path("bundle.pem").display().to_string(),
    ];
    if let Some(client) = client {
        args.extend([
            "--cert".to_owned(),
            ws.path(&format!("{client}.pem")).display().to_string(),
            "--key".to_owned(),
            ws.path(&format!("{client}.key")).display().to_string(),
        ]);
    }
    args.push(format!("https://localhost:{port}{path}"));
    args
}

/// The app behind the proxy: HTTP/1.1 and h2c, answering with what it received
/// (`method path version`, then the identity headers and Host).
pub async fn echo_app() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let service = hyper::service::service_fn(echo);
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tcp), service)
                    .await;
            });
        }
    });
    addr
}

async fn echo(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .map(|v| v.to_str().unwrap_or("?").to_owned())
            .unwrap_or_else(|| "-".to_owned())
    };
    let mut text = format!(
        "{} {} {:?}\nl5d-client-id: {}\nx-forwarded-client-cert: {}\nhost: {}\n",
        req.method(),
        req.uri().path(),
        req.version(),
        header("l5d-client-id"),
        header("x-forwarded-client-cert"),
        header("host"),
    );
    if req.uri().path().starts_with("/slow") {
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    let body = req.into_body().collect().await.map(|b| b.to_bytes());
    if let Ok(body) = body
        && !body.is_empty()
    {
        text.push_str(&format!("body: {}\n", String::from_utf8_lossy(&body)));
    }
    Ok(Response::new(Full::new(Bytes::from(text))))
}

/// Polls until `check` holds (bounded by STEP).
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + STEP;
    while !check().await {
        assert!(
            Instant::now() < deadline,
            "{what} did not happen within {STEP:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
