//! Answers operators' questions about a policy, exactly (see
//! `meshless::policy::analysis`): who can make a request, what a caller can reach,
//! what a change grants or revokes, and the least-privilege policy for observed
//! traffic.
//!
//! ```text
//! cargo run --example policy_insight -- who-can /admin --policy examples/policies/orders.yaml
//! cargo run --example policy_insight -- who-can --method POST --path /orders --port 8443 \
//!     --host api.example.org --header x-tenant=acme --policy orders.yaml
//! cargo run --example policy_insight -- what-can --peer spiffe://example.org/ns/web/sa/frontend \
//!     --policy orders.yaml
//! cargo run --example policy_insight -- diff old.yaml new.yaml [--allow-widen] [--json]
//! cargo run --example policy_insight -- suggest audit.jsonl [--policy current.yaml] > least.yaml
//! ```
//!
//! Every command reads native, Istio and Linkerd files, with the workload flags of
//! `policy_check` (`--workload`, `--namespace`, `--label`, `--labels-file`,
//! `--named-port`, `--istio-root-namespace`) for manifests written for many
//! workloads. `--json` prints JSON instead of text.
//!
//! Exit codes: 0; 1 when `diff` finds granted access (unless `--allow-widen`), for CI;
//! 2 for usage errors and files that do not load.

use std::net::IpAddr;
use std::process::ExitCode;

use http::HeaderMap;
use meshless::Identity;
use meshless::policy::Policy;
use meshless::policy::analysis::{
    Caller, RequestShape, diff, read_audit_log, suggest, what_can, who_can,
};

#[macro_use]
#[path = "shared/policy_files.rs"]
mod policy_files;

const USAGE: &str = concat!(
    "usage: policy_insight who-can [PATH] [--method M] [--path P] [--port N] [--host H] [--header k=v]... --policy FILE\n",
    "       policy_insight what-can --peer ID|none [--source-ip ADDR] [--claims JSON] --policy FILE\n",
    "       policy_insight diff OLD NEW [--allow-widen]\n",
    "       policy_insight suggest AUDIT_LOG [--policy CURRENT]\n",
    "  every command: [--json] ",
    workload_usage!()
);

/// The command line, parsed.
#[derive(Default)]
struct Args {
    command: String,
    positional: Vec<String>,
    policy: Option<String>,
    method: Option<String>,
    path: Option<String>,
    port: Option<u16>,
    host: Option<String>,
    headers: HeaderMap,
    peer: Option<Identity>,
    source_ip: Option<IpAddr>,
    token: Option<(meshless::RequestPrincipal, meshless::Claims)>,
    json: bool,
    allow_widen: bool,
    workload: policy_files::Workload,
}

fn parse_args(mut it: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut args = Args {
        command: it.next().ok_or(USAGE)?,
        ..Args::default()
    };
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "--help" | "-h" => return Err(USAGE.to_owned()),
            "--json" => args.json = true,
            "--allow-widen" => args.allow_widen = true,
            f if !f.starts_with("--") => args.positional.push(flag),
            _ => {
                let value = it
                    .next()
                    .ok_or_else(|| format!("`{flag}` needs a value\n{USAGE}"))?;
                take(&mut args, &flag, value)?;
            }
        }
    }
    Ok(args)
}

fn take(args: &mut Args, flag: &str, value: String) -> Result<(), String> {
    let number = |what: &str| format!("{flag}: `{value}` is not {what}");
    match flag {
        "--policy" => args.policy = Some(value),
        "--method" => args.method = Some(value),
        "--path" => args.path = Some(value),
        "--host" => args.host = Some(value),
        "--port" => args.port = Some(value.parse().map_err(|_| number("a port"))?),
        "--source-ip" => args.source_ip = Some(value.parse().map_err(|_| number("an address"))?),
        "--peer" if value == "none" => args.peer = None,
        "--peer" => args.peer = Some(policy_files::identity(flag, &value)?),
        "--claims" => args.token = Some(policy_files::token(&value)?),
        "--header" => {
            let (name, val) = policy_files::header(&value)?;
            args.headers.append(name, val);
        }
        other if args.workload.take(other, &value)? => {}
        other => return Err(format!("unknown argument `{other}`\n{USAGE}")),
    }
    Ok(())
}

/// What a command printed, and the exit code.
type Outcome = Result<(String, u8), String>;

fn main() -> ExitCode {
    let outcome = parse_args(std::env::args().skip(1)).and_then(|args| run(&args));
    match outcome {
        Ok((out, code)) => {
            print!("{out}");
            ExitCode::from(code)
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(2)
        }
    }
}

fn run(args: &Args) -> Outcome {
    match args.command.as_str() {
        "who-can" => who(args),
        "what-can" => what(args),
        "diff" => changes(args),
        "suggest" => least(args),
        other => Err(format!("unknown command `{other}`\n{USAGE}")),
    }
}

fn load(args: &Args, file: Option<&String>) -> Result<Policy, String> {
    let file = file.ok_or_else(|| format!("--policy is required\n{USAGE}"))?;
    let policy = args.workload.load(file)?;
    for w in policy.warnings() {
        eprintln!("warning: {w}");
    }
    Ok(policy)
}

fn print(json: bool, value: &impl serde::Serialize, text: &dyn std::fmt::Display) -> String {
    match json {
        true => serde_json::to_string_pretty(value).unwrap_or_default() + "\n",
        false => text.to_string(),
    }
}

fn who(args: &Args) -> Outcome {
    let policy = load(args, args.policy.as_ref())?;
    let path = args.path.as_ref().or(args.positional.first());
    let shape = match (path, &args.method) {
        (None, None) => RequestShape::tcp(args.port.ok_or("a TCP question needs --port")?),
        (None, Some(_)) => return Err(format!("--method needs a path\n{USAGE}")),
        (Some(p), m) => {
            let mut s =
                RequestShape::http(m.as_deref().unwrap_or("GET"), p).map_err(|e| e.to_string())?;
            if let Some(port) = args.port {
                s = s.port(port);
            }
            if let Some(h) = &args.host {
                s = s.host(h).map_err(|e| e.to_string())?;
            }
            if !args.headers.is_empty() {
                s = s.headers(args.headers.clone());
            }
            s
        }
    };
    let answer = who_can(&policy, &shape);
    Ok((print(args.json, &answer, &answer), 0))
}

fn what(args: &Args) -> Outcome {
    let policy = load(args, args.policy.as_ref())?;
    let mut caller = match &args.peer {
        Some(id) => Caller::authenticated(id.clone()),
        None => Caller::unauthenticated(),
    };
    if let Some(ip) = args.source_ip {
        caller = caller.source_ip(ip);
    }
    if let Some((principal, claims)) = &args.token {
        caller = caller.token(principal.clone(), claims.clone());
    }
    let answer = what_can(&policy, &caller);
    Ok((print(args.json, &answer, &answer), 0))
}

fn changes(args: &Args) -> Outcome {
    let [old, new] = args.positional.as_slice() else {
        return Err(format!("diff takes two policy files\n{USAGE}"));
    };
    let (old, new) = (load(args, Some(old))?, load(args, Some(new))?);
    let d = diff(&old, &new);
    let code = u8::from(d.widens() && !args.allow_widen);
    Ok((print(args.json, &d, &d), code))
}

fn least(args: &Args) -> Outcome {
    let [log] = args.positional.as_slice() else {
        return Err(format!("suggest takes one audit log\n{USAGE}"));
    };
    let text = std::fs::read_to_string(log).map_err(|e| format!("cannot read `{log}`: {e}"))?;
    let events = read_audit_log(&text).map_err(|e| format!("`{log}`: {e}"))?;
    let current = args
        .policy
        .as_ref()
        .map(|p| load(args, Some(p)))
        .transpose()?;
    let s = suggest(&events, current.as_ref());
    if args.json {
        return Ok((print(true, &s, &""), 0));
    }
    let mut out = s.to_yaml().map_err(|e| e.to_string())?;
    out.push_str(&format!(
        "# {} requests that went through are covered\n",
        s.covered
    ));
    for skipped in &s.skipped {
        out.push_str(&format!("# left out: {skipped}\n"));
    }
    if current.is_some() {
        out.push_str(&format!(
            "# the current policy denies {} of them\n",
            s.denied_by_current.len()
        ));
        for d in &s.denied_by_current {
            out.push_str(&format!("#   {d}\n"));
        }
    }
    Ok((out, 0))
}
