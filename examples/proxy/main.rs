//! The meshless reference proxy: protects an unmodified app the way a Linkerd sidecar
//! does, built only on meshless's public API.
//!
//! ```text
//! cargo run --release --example proxy -- --config proxy.toml
//! cargo run --release --example proxy -- --config proxy.toml --check
//! ```
//!
//! - `[[inbound]]` listeners terminate mutual TLS (strict, or permissive for a
//!   migration), enforce the policy on every request (`http`) or connection (`tcp`) and
//!   forward to the app in plaintext, with `l5d-client-id` / `x-forwarded-client-cert`
//!   set from the verified identity.
//! - `[[outbound]]` listeners take plaintext HTTP from the app and forward it over
//!   mutual TLS to an upstream that must prove the configured SPIFFE ID.
//! - `[admin]`: `/metrics`, `/ready`, `/live`.
//! - SIGTERM / SIGINT: stop accepting, drain in-flight requests (bounded by
//!   `runtime.drain_timeout_ms`), exit 0. SIGHUP, or a change of the certificate or
//!   policy files: reload, keeping the last good version of anything that fails.
//!
//! Logs go to stderr through `tracing`; `PROXY_LOG` sets the filter (default `info`;
//! `meshless::audit=debug` also logs allowed requests).

mod admin;
mod app_pool;
mod config;
mod forward;
mod inbound;
mod limits;
mod outbound;
mod plain;
mod reload;
mod shutdown;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use config::{Config, Protocol};
use meshless::policy::{Policy, PolicyHandle};
use meshless::tls::{FileSource, FileSourceBuilder};
use meshless::{TlsError, TrustDomain};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

const USAGE: &str = "usage: proxy --config <proxy.toml> [--check]

  --config <path>  the configuration file (TOML)
  --check          validate the configuration and every file it names, then exit
  --help           this text";

struct Args {
    config: PathBuf,
    check: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut config = None;
    let mut check = false;
    let mut args = std::env::args_os().skip(1);
    while let Some(arg) = args.next() {
        match arg.to_str() {
            Some("--config" | "-c") => {
                let value = args.next().ok_or("`--config` needs a path")?;
                config = Some(PathBuf::from(value));
            }
            Some(s) if s.starts_with("--config=") => config = Some(PathBuf::from(&s[9..])),
            Some("--check") => check = true,
            Some("--help" | "-h") => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            _ => return Err(format!("unknown argument `{}`", arg.to_string_lossy())),
        }
    }
    let config = config.ok_or("`--config <path>` is required")?;
    Ok(Args { config, check })
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(err) => {
            eprintln!("error: {err}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    init_logging();
    let config = match Config::load(&args.config) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::FAILURE;
        }
    };
    // Every connection is a descriptor: the soft limit (often 1,024) goes up to the hard
    // one, as nginx's `worker_rlimit_nofile` and Go's runtime do.
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => tracing::debug!(target: "proxy", limit, "open-file limit"),
        Err(err) => {
            tracing::warn!(target: "proxy", error = %err, "cannot raise the open-file limit")
        }
    }
    let runtime = if config.runtime.worker_threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(config.runtime.worker_threads)
            .enable_all()
            .build()
    };
    let runtime = match runtime {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    if args.check {
        return runtime.block_on(check(&args.config, &config));
    }
    match runtime.block_on(run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(target: "proxy", "{err}");
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging() {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let spec = std::env::var("PROXY_LOG").unwrap_or_else(|_| "info".to_owned());
    let filter = spec
        .parse::<tracing_subscriber::filter::Targets>()
        .unwrap_or_else(|err| {
            eprintln!("warning: PROXY_LOG `{spec}` is invalid ({err}); using `info`");
            tracing_subscriber::filter::Targets::new().with_default(tracing::Level::INFO)
        });
    tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
        .with(filter)
        .init();
}

/// The certificate files of `[identity]`, watched every `reload_interval_ms`.
fn tls_files(config: &Config) -> Result<FileSourceBuilder, String> {
    let id = &config.identity;
    let mut builder = FileSource::builder(&id.cert, &id.key, &id.bundle)
        .poll_interval(config.runtime.reload_interval());
    for (td, path) in &id.federation {
        let td = TrustDomain::new(td).map_err(|e| format!("trust domain `{td}`: {e}"))?;
        builder = builder.federated_bundle(td, path);
    }
    Ok(builder)
}

/// `--check`: the config, the certificates and every policy, all reported at once.
async fn check(path: &Path, config: &Config) -> ExitCode {
    let mut problems = Vec::new();
    let mut own_id = None;
    match tls_files(config) {
        Ok(builder) => match builder.load().await {
            Ok(material) => {
                println!("identity: {}", material.svid().spiffe_id());
                own_id = Some(material.svid().spiffe_id().clone());
            }
            Err(err) => problems.push(format!("identity: {err}")),
        },
        Err(err) => problems.push(format!("identity.federation: {err}")),
    }
    let context = match (&config.workload, own_id) {
        (Some(w), Some(id)) => match w.context(id) {
            Ok(ctx) => Some(ctx),
            Err(err) => {
                problems.push(format!("workload: {err}"));
                None
            }
        },
        _ => None,
    };
    for inbound in &config.inbound {
        let loaded = match &context {
            Some(ctx) => Policy::load_for(&inbound.policy, ctx),
            None => Policy::load(&inbound.policy),
        };
        match loaded {
            Ok(policy) => {
                println!(
                    "inbound {} ({:?}): policy `{}`: {} rule(s)",
                    inbound.listen,
                    inbound.protocol,
                    inbound.policy.display(),
                    policy.rule_count()
                );
                for warning in policy.warnings() {
                    println!("  warning: {warning}");
                }
            }
            Err(err) => problems.push(format!(
                "inbound {}: policy `{}`: {err}",
                inbound.listen,
                inbound.policy.display()
            )),
        }
    }
    if problems.is_empty() {
        println!("{}: ok", path.display());
        ExitCode::SUCCESS
    } else {
        for problem in &problems {
            eprintln!("error: {problem}");
        }
        eprintln!("{}: {} error(s)", path.display(), problems.len());
        ExitCode::FAILURE
    }
}

#[derive(Debug, thiserror::Error)]
enum RunError {
    #[error("certificates: {0}")]
    Tls(#[from] TlsError),
    #[error("inbound {0}: policy: {1}")]
    Policy(std::net::SocketAddr, meshless::policy::PolicyError),
    #[error("cannot listen on `{0}`: {1}")]
    Bind(std::net::SocketAddr, std::io::Error),
    #[error("{0}")]
    Other(String),
}

/// Connections the kernel completes for us before we accept them (capped by
/// `net.core.somaxconn`): a burst of thousands of connections, silent ones included,
/// must not overflow it, or the kernel drops handshakes it cannot queue and their
/// clients hang for seconds of SYN-ACK retries (tokio's `bind` asks for 1,024).
const LISTEN_BACKLOG: u32 = 4096;

async fn bind(addr: std::net::SocketAddr) -> Result<TcpListener, RunError> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()
    } else {
        tokio::net::TcpSocket::new_v6()
    };
    socket
        .and_then(|socket| {
            socket.set_reuseaddr(true)?;
            socket.bind(addr)?;
            socket.listen(LISTEN_BACKLOG)
        })
        .map_err(|e| RunError::Bind(addr, e))
}

async fn run(config: Config) -> Result<(), RunError> {
    let tls = tls_files(&config).map_err(RunError::Other)?;
    let files = tls.clone().start().await?;
    let source = files.source();
    tracing::info!(target: "proxy", id = %source.current().svid().spiffe_id(), "identity loaded");

    let (trigger, shutdown) = shutdown::channel();
    let mut tasks = JoinSet::new();
    let mut policies = Vec::new();
    let context = match &config.workload {
        Some(w) => Some(
            w.context(source.current().svid().spiffe_id().clone())
                .map_err(|e| RunError::Other(format!("workload: {e}")))?,
        ),
        None => None,
    };
    for inbound in config.inbound {
        let policy = match &context {
            Some(ctx) => PolicyHandle::from_file_for(&inbound.policy, ctx.clone()),
            None => PolicyHandle::from_file(&inbound.policy),
        }
        .map_err(|e| RunError::Policy(inbound.listen, e))?;
        for warning in policy.current().warnings() {
            tracing::warn!(target: "proxy", listen = %inbound.listen, "policy: {warning}");
        }
        policies.push((inbound.policy.clone(), policy.clone()));
        let acceptor = inbound::acceptor(&source, &inbound)?;
        let listener = bind(inbound.listen).await?;
        tracing::info!(
            target: "proxy",
            listen = %inbound.listen,
            forward = %inbound.forward,
            protocol = ?inbound.protocol,
            mode = ?inbound.mode,
            "inbound listening"
        );
        let stop = shutdown.clone();
        tasks.spawn(async move {
            let result = match inbound.protocol {
                Protocol::Http => {
                    inbound::serve_http(listener, &inbound, acceptor, policy, stop).await
                }
                Protocol::Tcp => {
                    inbound::serve_tcp(listener, inbound.forward, acceptor, policy, stop).await
                }
            };
            if let Err(err) = result {
                tracing::error!(target: "proxy", listen = %inbound.listen, error = %err, "inbound stopped");
            }
        });
    }
    for outbound in config.outbound {
        let listener = bind(outbound.listen).await?;
        tracing::info!(
            target: "proxy",
            listen = %outbound.listen,
            upstream = %outbound.upstream,
            server_identity = %outbound.server_identity,
            "outbound listening"
        );
        let stop = shutdown.clone();
        let source = source.clone();
        tasks.spawn(async move {
            if let Err(err) = outbound::serve(listener, &outbound, &source, stop).await {
                tracing::error!(target: "proxy", listen = %outbound.listen, error = %err, "outbound stopped");
            }
        });
    }
    // The admin port answers until the drain is over, so /ready reports it.
    let (admin_trigger, admin_shutdown) = shutdown::channel();
    let admin = match &config.admin {
        Some(admin) => {
            let listener = bind(admin.listen).await?;
            tracing::info!(target: "proxy", listen = %admin.listen, "admin listening");
            let service = admin::Admin::new(shutdown.clone());
            Some(tokio::spawn(plain::serve(
                listener,
                service,
                admin_shutdown,
            )))
        }
        None => None,
    };

    let reloader = reload::Reloader {
        tls,
        files,
        policies,
    };
    signals(&reloader, config.runtime.reload_interval()).await?;

    tracing::info!(target: "proxy", "shutting down: draining in-flight requests");
    trigger.fire();
    let drain = config.runtime.drain_timeout();
    let drained =
        tokio::time::timeout(drain, async { while tasks.join_next().await.is_some() {} }).await;
    match drained {
        Ok(()) => tracing::info!(target: "proxy", "drained; exiting"),
        Err(_) => tracing::warn!(target: "proxy", timeout = ?drain, "drain timed out; exiting"),
    }
    admin_trigger.fire();
    if let Some(admin) = admin {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), admin).await;
    }
    Ok(())
}

/// Runs until SIGTERM or SIGINT; reloads on SIGHUP and on file changes meanwhile.
async fn signals(
    reloader: &reload::Reloader,
    interval: std::time::Duration,
) -> Result<(), RunError> {
    use tokio::signal::unix::{SignalKind, signal};
    let install = |kind| signal(kind).map_err(|e| RunError::Other(format!("signal handler: {e}")));
    let mut term = install(SignalKind::terminate())?;
    let mut int = install(SignalKind::interrupt())?;
    let mut hup = install(SignalKind::hangup())?;
    let watch = reloader.watch(interval);
    tokio::pin!(watch);
    loop {
        tokio::select! {
            _ = term.recv() => return Ok(()),
            _ = int.recv() => return Ok(()),
            _ = hup.recv() => reloader.reload_all().await,
            () = &mut watch => {}
        }
    }
}
