//! What `policy_check` and `policy_insight` share: reading identities from flags,
//! the workload flags, and loading a policy file for that workload.

use http::{HeaderName, HeaderValue};
use meshless::policy::{Policy, WorkloadContext};
use meshless::{Claims, Identity, LinkerdId, RequestPrincipal, SpiffeId};

/// The workload flags, for usage lines (a macro, for `concat!`).
macro_rules! workload_usage {
    () => {
        "[--workload ID] [--namespace NS] [--label k=v]... [--labels-file FILE] \
[--named-port NAME=N]... [--istio-root-namespace NS]"
    };
}

/// The flags [`Workload::take`] takes.
const FLAGS: [&str; 6] = [
    "--workload",
    "--namespace",
    "--label",
    "--labels-file",
    "--named-port",
    "--istio-root-namespace",
];

/// An identity flag's value: a SPIFFE ID or a Linkerd identity.
pub fn identity(flag: &str, value: &str) -> Result<Identity, String> {
    if value.starts_with("spiffe://") {
        let id: SpiffeId = value.parse().map_err(|e| format!("{flag}: {e}"))?;
        Ok(id.into())
    } else {
        let id = LinkerdId::parse(value).map_err(|e| format!("{flag}: {e}"))?;
        Ok(id.into())
    }
}

/// The workload a policy file is loaded for: set by any workload flag.
#[derive(Default)]
pub struct Workload(Option<WorkloadContext>);

impl Workload {
    /// Takes `flag value` when `flag` is a workload flag (`Ok(false)` when not).
    pub fn take(&mut self, flag: &str, value: &str) -> Result<bool, String> {
        if !FLAGS.contains(&flag) {
            return Ok(false);
        }
        let ctx = self.0.take().unwrap_or_default();
        let pair = |what: &str| {
            value
                .split_once('=')
                .ok_or_else(|| format!("{flag}: `{value}` is not {what}"))
        };
        let ctx = match flag {
            "--workload" => ctx.identity(identity(flag, value)?),
            "--namespace" => ctx.namespace_name(value),
            "--label" => {
                let (k, v) = pair("key=value")?;
                ctx.label(k, v)
            }
            "--labels-file" => ctx
                .labels_from_file(value)
                .map_err(|e| format!("{flag}: {e}"))?,
            "--named-port" => {
                let (name, port) = pair("NAME=NUMBER")?;
                let port = port
                    .parse()
                    .map_err(|_| format!("{flag}: `{port}` is not a port number"))?;
                ctx.named_port(name, port)
            }
            _ => ctx.istio_root_namespace(value),
        };
        self.0 = Some(ctx);
        Ok(true)
    }

    /// Loads `file` (native, Istio or Linkerd) for the workload, if one was named.
    pub fn load(&self, file: &str) -> Result<Policy, String> {
        let loaded = match &self.0 {
            Some(ctx) => Policy::load_for(file, ctx),
            None => Policy::load(file),
        };
        loaded.map_err(|e| format!("invalid policy `{file}`: {e}"))
    }
}

/// A `--header k=v` value.
pub fn header(value: &str) -> Result<(HeaderName, HeaderValue), String> {
    let (k, v) = value
        .split_once('=')
        .ok_or_else(|| format!("--header: `{value}` is not k=v"))?;
    let name =
        HeaderName::from_bytes(k.as_bytes()).map_err(|_| format!("--header: bad name `{k}`"))?;
    let val = HeaderValue::from_str(v).map_err(|_| format!("--header: bad value `{v}`"))?;
    Ok((name, val))
}

/// A `--claims JSON` value: the claims of a verified JWT, and its principal `iss/sub`.
pub fn token(value: &str) -> Result<(RequestPrincipal, Claims), String> {
    let claims = Claims::from_json(value).map_err(|e| format!("--claims: {e}"))?;
    let (Some(iss), Some(sub)) = (claims.issuer(), claims.subject()) else {
        return Err("--claims: a verified token has string `iss` and `sub`".into());
    };
    Ok((RequestPrincipal::new(iss, sub), claims))
}
