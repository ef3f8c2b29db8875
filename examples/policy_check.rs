//! Asks a policy file what it decides for one request, like `linkerd diagnostics
//! policy`.
//!
//! ```text
//! cargo run --example policy_check -- --policy examples/policies/orders.yaml \
//!     --peer spiffe://example.org/ns/web/sa/frontend --method GET --path /orders/7 \
//!     --port 8443 --header x-tenant=acme
//! ```
//!
//! For Kubernetes manifests written for many workloads, say which workload enforces:
//! `--workload spiffe://cluster.local/ns/shop/sa/orders --label app=orders
//! --named-port http=8080` (or `--labels-file /etc/podinfo/labels`); Istio and Linkerd
//! policies then apply only where the mesh would apply them.
//!
//! `--path` may carry a query (`--path '/search?version=2'`), which routes'
//! `query_params` (HTTPRoute `queryParams`) match.
//!
//! `--host` is the request's `Host` (`api.example.org` or `api.example.org:8443`: Istio's
//! `hosts` match the port too). Behind proxies, `--trusted-proxies N` with
//! `--header x-forwarded-for=...` sets the original client's address that
//! `remote_networks` (Istio's `remoteIpBlocks`) match, as `AuthorizeLayer::trusted_proxies`
//! reads it; without it, that address is `--source-ip`.
//!
//! For end-user rules, `--claims '{"iss":"https://idp.example.com","sub":"alice","groups":["admin"]}'`
//! stands for a verified JWT: its principal is `iss/sub`, as the JWT layer makes it.
//!
//! Prints `decision: allow` or `decision: deny` (or `decision: not-found`) first, then
//! the explanation. Without `--method`/`--path` it decides on a TCP connection. Exits
//! 0 whatever the decision; 2 when the policy or the arguments are invalid.

use std::net::IpAddr;
use std::process::ExitCode;

use http::{HeaderMap, HeaderValue};
use meshless::policy::{RequestAttrs, client_address, normalize_target};
use meshless::{Claims, Identity, RequestPrincipal};

#[macro_use]
#[path = "shared/policy_files.rs"]
mod policy_files;

const USAGE: &str = concat!(
    "usage: policy_check --policy FILE [--peer ID|none] [--source-ip ADDR] [--port N] \
[--method M --path P] [--host NAME[:PORT]] [--header k=v]... [--trusted-proxies N] [--claims JSON] ",
    workload_usage!()
);

#[derive(Default)]
struct Args {
    policy: Option<String>,
    peer: Option<Identity>,
    source_ip: Option<IpAddr>,
    port: Option<u16>,
    method: Option<String>,
    path: Option<String>,
    host: Option<String>,
    headers: HeaderMap,
    trusted_proxies: usize,
    token: Option<(RequestPrincipal, Claims)>,
    workload: policy_files::Workload,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args::default();
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--help" || flag == "-h" {
            return Err(USAGE.to_owned());
        }
        let value = it
            .next()
            .ok_or_else(|| format!("`{flag}` needs a value\n{USAGE}"))?;
        match flag.as_str() {
            "--policy" => args.policy = Some(value),
            "--peer" if value == "none" => args.peer = None,
            "--peer" => args.peer = Some(policy_files::identity("--peer", &value)?),
            "--source-ip" => {
                args.source_ip = Some(
                    value
                        .parse()
                        .map_err(|_| format!("--source-ip: `{value}` is not an address"))?,
                )
            }
            "--port" => {
                args.port = Some(
                    value
                        .parse()
                        .map_err(|_| format!("--port: `{value}` is not a port"))?,
                )
            }
            "--trusted-proxies" => {
                args.trusted_proxies = value
                    .parse()
                    .map_err(|_| format!("--trusted-proxies: `{value}` is not a number"))?;
            }
            "--method" => args.method = Some(value),
            "--path" => args.path = Some(value),
            "--host" => args.host = Some(value),
            "--header" => {
                let (name, val) = policy_files::header(&value)?;
                args.headers.append(name, val);
            }
            "--claims" => args.token = Some(policy_files::token(&value)?),
            other if args.workload.take(other, &value)? => {}
            other => return Err(format!("unknown argument `{other}`\n{USAGE}")),
        }
    }
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let Some(file) = &args.policy else {
        eprintln!("--policy is required\n{USAGE}");
        return ExitCode::from(2);
    };
    let policy = match args.workload.load(file) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    for w in policy.warnings() {
        eprintln!("warning: {w}");
    }
    let conn = RequestAttrs::connection(args.peer.as_ref(), args.source_ip, args.port);
    let explanation = match (&args.method, &args.path) {
        (None, None) => policy.explain(&conn),
        (Some(method), Some(path)) => {
            // The target as the layer reads it: the path, and the Host with its port.
            let rejected = |e: &dyn std::fmt::Display| {
                println!(
                    "decision: deny\nthe request is rejected with 400 before policy runs: {e}"
                );
                ExitCode::SUCCESS
            };
            let uri: http::Uri = match path.parse() {
                Ok(u) => u,
                Err(e) => return rejected(&e),
            };
            let host = match args.host.as_deref().map(HeaderValue::from_str).transpose() {
                Ok(h) => h,
                Err(e) => return rejected(&e),
            };
            let target = match normalize_target(&uri, host.as_ref()) {
                Ok(t) => t,
                Err(e) => return rejected(&e),
            };
            let remote = client_address(&args.headers, args.source_ip, args.trusted_proxies);
            let mut attrs = conn
                .with_request(method, &target.path)
                .with_query(uri.query())
                .with_remote_ip(remote)
                .with_headers(&args.headers)
                .with_principal(args.token.as_ref().map(|t| &t.0))
                .with_claims(args.token.as_ref().map(|t| &t.1));
            if let (Some(h), Some(a)) = (&target.host, &target.authority) {
                attrs = attrs.with_host(h).with_authority(a);
            }
            policy.explain(&attrs)
        }
        _ => {
            eprintln!("--method and --path go together\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    print!("{explanation}");
    ExitCode::SUCCESS
}
