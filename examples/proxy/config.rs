//! `proxy.toml`: parsing and validation. Unknown keys are errors; relative paths are
//! resolved against the directory of the config file.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use meshless::SpiffeId;
use serde::Deserialize;

use crate::limits::Limits;

/// The whole configuration file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub identity: IdentityConfig,
    #[serde(default)]
    pub inbound: Vec<Inbound>,
    #[serde(default)]
    pub outbound: Vec<Outbound>,
    pub admin: Option<Admin>,
    #[serde(default)]
    pub runtime: Runtime,
    /// Which workload this proxy guards, for Istio/Linkerd manifests written for many.
    pub workload: Option<Workload>,
}

/// `[workload]` (optional): the pod this proxy guards. With it, Kubernetes manifests
/// apply only where the mesh would apply them (namespace, selectors, named ports); the
/// identity is the proxy's own SVID.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Workload {
    /// The downward API labels file (`key="value"` per line).
    pub labels_file: Option<PathBuf>,
    /// Labels given inline (added to those of the file).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Container port names (`http = 8080`), as Linkerd `Server.port` may name them.
    #[serde(default)]
    pub named_ports: BTreeMap<String, u16>,
    /// The namespace, when the SVID does not carry one (`/ns/<ns>/sa/<sa>`).
    pub namespace: Option<String>,
    /// Istio's root namespace (default `istio-system`).
    pub istio_root_namespace: Option<String>,
}

impl Workload {
    /// The context for the workload whose SVID is `id`.
    pub fn context(
        &self,
        id: meshless::SpiffeId,
    ) -> Result<meshless::policy::WorkloadContext, String> {
        let mut ctx = meshless::policy::WorkloadContext::new().identity(id.into());
        if let Some(file) = &self.labels_file {
            ctx = ctx.labels_from_file(file).map_err(|e| e.to_string())?;
        }
        for (k, v) in &self.labels {
            ctx = ctx.label(k, v);
        }
        for (name, port) in &self.named_ports {
            ctx = ctx.named_port(name, *port);
        }
        if let Some(ns) = &self.namespace {
            ctx = ctx.namespace_name(ns);
        }
        if let Some(root) = &self.istio_root_namespace {
            ctx = ctx.istio_root_namespace(root);
        }
        Ok(ctx)
    }
}

/// `[identity]`: our SVID and the bundles we trust.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub bundle: PathBuf,
    /// Trust domain name → bundle file of a federated domain.
    #[serde(default)]
    pub federation: BTreeMap<String, PathBuf>,
}

/// What an inbound listener speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// HTTP/1.1, HTTP/2 and gRPC, authorized per request.
    Http,
    /// Opaque TCP, authorized per connection.
    Tcp,
}

/// Whether plaintext peers are served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Mutual TLS only.
    Strict,
    /// Mutual TLS, plus plaintext as unauthenticated peers (policy decides).
    Permissive,
}

/// How the proxy talks to the app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AppProtocol {
    /// HTTP/1.1, whatever the client spoke.
    Http1,
    /// HTTP/2 with prior knowledge (h2c), for gRPC apps.
    H2,
    /// The protocol the client spoke.
    Auto,
}

/// `[[inbound]]`: mTLS in, plaintext to the app.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Inbound {
    pub listen: SocketAddr,
    pub forward: SocketAddr,
    pub protocol: Protocol,
    pub mode: Mode,
    pub policy: PathBuf,
    pub app_protocol: Option<AppProtocol>,
    /// Let header names with `_` through (refused with 400 by default: CGI-style apps
    /// read `x_user` as `x-user`).
    #[serde(default)]
    pub allow_underscores_in_header_names: bool,
    /// `[inbound.limits]`: timeouts and bounds under load.
    #[serde(default)]
    pub limits: Limits,
}

impl Inbound {
    /// The app protocol, `http1` unless configured.
    pub fn app_protocol(&self) -> AppProtocol {
        self.app_protocol.unwrap_or(AppProtocol::Http1)
    }
}

/// `[[outbound]]`: plaintext from the app, mTLS to the upstream.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Outbound {
    pub listen: SocketAddr,
    pub upstream: SocketAddr,
    pub server_identity: SpiffeId,
}

/// `[admin]`: `/metrics`, `/ready`, `/live`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Admin {
    pub listen: SocketAddr,
}

/// `[runtime]` (optional): threads, drain bound, reload polling.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Runtime {
    /// Tokio worker threads; 1 (the default) runs a current-thread runtime.
    #[serde(default = "one")]
    pub worker_threads: usize,
    /// How long SIGTERM waits for in-flight requests, in milliseconds.
    #[serde(default = "drain_ms")]
    pub drain_timeout_ms: u64,
    /// How often certificate and policy files are checked for changes, in milliseconds.
    #[serde(default = "reload_ms")]
    pub reload_interval_ms: u64,
}

fn one() -> usize {
    1
}
fn drain_ms() -> u64 {
    10_000
}
fn reload_ms() -> u64 {
    2_000
}

impl Default for Runtime {
    fn default() -> Self {
        Self {
            worker_threads: one(),
            drain_timeout_ms: drain_ms(),
            reload_interval_ms: reload_ms(),
        }
    }
}

impl Runtime {
    pub fn drain_timeout(&self) -> Duration {
        Duration::from_millis(self.drain_timeout_ms)
    }

    pub fn reload_interval(&self) -> Duration {
        Duration::from_millis(self.reload_interval_ms.max(10))
    }
}

/// Why a configuration was refused.
#[derive(Debug)]
pub enum ConfigError {
    Read(PathBuf, std::io::Error),
    Parse(PathBuf, String),
    Invalid(Vec<String>),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Read(path, e) => write!(f, "reading `{}`: {e}", path.display()),
            Self::Parse(path, e) => write!(f, "`{}`: {e}", path.display()),
            Self::Invalid(problems) => {
                write!(f, "invalid configuration:")?;
                for p in problems {
                    write!(f, "\n  - {p}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Reads, parses and validates `path`; relative paths inside are made relative to
    /// the config file's directory.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|e| ConfigError::Read(path.to_owned(), e))?;
        let mut config = Self::parse(&text).map_err(|e| ConfigError::Parse(path.to_owned(), e))?;
        let base = path.parent().unwrap_or(Path::new("."));
        config.resolve(base);
        config.validate()?;
        Ok(config)
    }

    /// Parses TOML text (no validation, no path resolution).
    pub fn parse(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| e.to_string().trim_end().to_owned())
    }

    fn resolve(&mut self, base: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        fix(&mut self.identity.cert);
        fix(&mut self.identity.key);
        fix(&mut self.identity.bundle);
        self.identity.federation.values_mut().for_each(fix);
        self.inbound.iter_mut().for_each(|i| fix(&mut i.policy));
        if let Some(file) = self.workload.as_mut().and_then(|w| w.labels_file.as_mut()) {
            fix(file);
        }
    }

    /// Cross-field checks that serde cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut problems = Vec::new();
        if self.inbound.is_empty() && self.outbound.is_empty() {
            problems.push("no [[inbound]] or [[outbound]] section: nothing to do".to_owned());
        }
        let mut seen = HashSet::new();
        let listens = self
            .inbound
            .iter()
            .map(|i| i.listen)
            .chain(self.outbound.iter().map(|o| o.listen))
            .chain(self.admin.iter().map(|a| a.listen));
        for addr in listens {
            if !seen.insert(addr) {
                problems.push(format!("listen address `{addr}` is used twice"));
            }
        }
        for inbound in &self.inbound {
            problems.extend(inbound.limits.problems(&inbound.listen.to_string()));
            if inbound.protocol == Protocol::Tcp && inbound.app_protocol.is_some() {
                problems.push(format!(
                    "inbound `{}`: `app_protocol` applies to protocol = \"http\" only",
                    inbound.listen
                ));
            }
        }
        for td in self.identity.federation.keys() {
            if let Err(e) = meshless::TrustDomain::new(td) {
                problems.push(format!("identity.federation: trust domain `{td}`: {e}"));
            }
        }
        if self.runtime.worker_threads == 0 {
            problems.push("runtime.worker_threads must be at least 1".to_owned());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(problems))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ISSUE_EXAMPLE: &str = r#"
[identity]
cert = "certs/svid.pem"        # our chain, leaf first
key = "certs/svid.key"
bundle = "certs/bundle.pem"    # roots of our own trust domain
[identity.federation]
"partner.example" = "certs/partner-bundle.pem"

[[inbound]]
listen = "127.0.0.1:8443"
forward = "127.0.0.1:8080"     # the app, plaintext
protocol = "http"              # http (HTTP/1.1 + HTTP/2 + gRPC) | tcp (opaque, L4 policy)
mode = "strict"                # strict | permissive
policy = "policy.yaml"         # native format or Linkerd/Istio manifests
app_protocol = "http1"         # how to talk to the app: http1 (default) | h2 | auto (as the client spoke)

[[outbound]]
listen = "127.0.0.1:9001"      # the app connects here in plaintext
upstream = "127.0.0.1:9443"    # another meshless proxy (or any mTLS server)
server_identity = "spiffe://example.org/ns/shop/sa/orders"

[admin]
listen = "127.0.0.1:9990"      # /metrics, /ready, /live
"#;

    #[test]
    fn loads_the_issue_example_as_written() {
        let mut config = Config::parse(ISSUE_EXAMPLE).unwrap();
        config.resolve(Path::new("/etc/proxy"));
        config.validate().unwrap();
        assert_eq!(config.inbound[0].app_protocol(), AppProtocol::Http1);
        assert_eq!(
            config.inbound[0].policy,
            Path::new("/etc/proxy/policy.yaml")
        );
        assert_eq!(
            config.identity.federation["partner.example"],
            Path::new("/etc/proxy/certs/partner-bundle.pem")
        );
        assert_eq!(config.runtime.worker_threads, 1);
    }

    #[test]
    fn rejects_unknown_keys() {
        let text = ISSUE_EXAMPLE.replace("mode = \"strict\"", "mod = \"strict\"");
        let err = Config::parse(&text).unwrap_err();
        assert!(err.contains("unknown field `mod`"), "{err}");
    }

    #[test]
    fn rejects_bad_values() {
        let text = ISSUE_EXAMPLE.replace("\"strict\"", "\"lenient\"");
        assert!(Config::parse(&text).unwrap_err().contains("lenient"));
        let text = ISSUE_EXAMPLE.replace("spiffe://example.org/ns/shop", "http://example.org");
        assert!(Config::parse(&text).is_err());
    }

    #[test]
    fn rejects_duplicate_listeners() {
        let text = ISSUE_EXAMPLE.replace("127.0.0.1:9990", "127.0.0.1:8443");
        let err = Config::parse(&text).unwrap().validate().unwrap_err();
        assert!(err.to_string().contains("`127.0.0.1:8443` is used twice"));
    }
}
