//! The same generated policies written for meshless and for cedar, decided in one
//! criterion run: 10 and 1,000 rules (cedar checks every policy on every request, so
//! larger sets are not benched for it), plus parse/compile time at 1,000.

use std::hint::black_box;
use std::str::FromStr;

use cedar_policy::{Authorizer, Context, Decision, Entities, EntityUid, PolicySet, Request};
use criterion::{Criterion, criterion_group, criterion_main};
use meshless::policy::{Policy, RequestAttrs};
use meshless::{Identity, SpiffeId};
use serde_json::json;

struct Rng(u64);
impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// Rule `i` for both engines, and a request it allows (peer, path).
fn rule(i: usize, namespaces: usize) -> (String, String, String, String) {
    let ns = i % namespaces;
    let peer = format!("spiffe://example.org/ns/ns{ns}/sa/sa{i}");
    let (from, cedar_principal, cedar_from) = match i % 3 {
        0 => (format!(r#"{{"identities":["{peer}"]}}"#), format!(r#"principal == Workload::"{peer}""#), String::new()),
        1 => (
            format!(r#"{{"identities":["spiffe://example.org/ns/ns{ns}/*"]}}"#),
            "principal".into(),
            format!(r#" && principal.id like "spiffe://example.org/ns/ns{ns}/*""#),
        ),
        _ => (format!(r#"{{"namespaces":["ns{ns}"]}}"#), "principal".into(), format!(r#" && principal.namespace == "ns{ns}""#)),
    };
    let (paths, cedar_path, path) = match i % 3 {
        0 => (format!(r#"["/svc{i}/health"]"#), format!(r#"context.path == "/svc{i}/health""#), format!("/svc{i}/health")),
        1 => (format!(r#"["/svc{i}/*"]"#), format!(r#"context.path like "/svc{i}/*""#), format!("/svc{i}/orders/7")),
        _ => (format!(r#"["/svc{i}/items/{{*}}"]"#), format!(r#"context.path like "/svc{i}/items/*""#), format!("/svc{i}/items/42")),
    };
    let (methods, cedar_methods) = if i % 2 == 0 {
        (r#"["GET"]"#, r#"context.method == "GET""#)
    } else {
        (r#"["GET","POST"]"#, r#"["GET","POST"].contains(context.method)"#)
    };
    let native = format!(
        r#"{{"name":"r{i}","action":"allow","from":[{from}],"to":[{{"methods":{methods},"paths":{paths},"ports":[8443]}}]}}"#
    );
    let cedar = format!(
        "@id(\"r{i}\")\npermit({cedar_principal}, action, resource) when {{ {cedar_methods} && {cedar_path} && context.port == 8443{cedar_from} }};\n"
    );
    (native, cedar, peer, path)
}

struct Case {
    peer: String,
    path: String,
}

fn setup(n: usize) -> (String, String, Vec<Case>) {
    let namespaces = (n / 10).max(1);
    let (mut native, mut cedar) = (Vec::new(), String::new());
    for i in 0..n {
        let (j, c, _, _) = rule(i, namespaces);
        native.push(j);
        cedar.push_str(&c);
    }
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let cases = (0..1000)
        .map(|k| {
            let i = rng.below(n);
            let (_, _, peer, path) = rule(i, namespaces);
            if k % 2 == 0 {
                Case { peer, path }
            } else {
                Case { peer: format!("spiffe://example.org/ns/other{i}/sa/x"), path: format!("/nothing/{i}") }
            }
        })
        .collect();
    (format!(r#"{{"default":"deny","local_trust_domains":["example.org"],"rules":[{}]}}"#, native.join(",")), cedar, cases)
}

fn cedar_request(c: &Case) -> (Request, Entities) {
    let principal = EntityUid::from_str(&format!("Workload::{:?}", c.peer)).unwrap();
    let ns = c.peer.split('/').nth(4).unwrap_or_default().to_owned();
    let entities = Entities::from_json_value(
        json!([{"uid": {"type": "Workload", "id": c.peer}, "attrs": {"id": c.peer, "namespace": ns}, "parents": []}]),
        None,
    )
    .unwrap();
    let context = Context::from_json_value(json!({"path": c.path, "method": "GET", "port": 8443}), None).unwrap();
    let req = Request::new(
        principal,
        EntityUid::from_str(r#"Action::"request""#).unwrap(),
        EntityUid::from_str(r#"Service::"orders""#).unwrap(),
        context,
        None,
    )
    .unwrap();
    (req, entities)
}

fn bench(c: &mut Criterion) {
    for n in [10usize, 1_000] {
        let (native, cedar, cases) = setup(n);
        let policy = Policy::from_json(&native).unwrap();
        let set = PolicySet::from_str(&cedar).unwrap();
        let ids: Vec<Identity> = cases.iter().map(|c| Identity::from(c.peer.parse::<SpiffeId>().unwrap())).collect();
        let conns: Vec<_> = ids.iter().map(|id| policy.for_peer(Some(id), None)).collect();
        let cedar_reqs: Vec<(Request, Entities)> = cases.iter().map(cedar_request).collect();
        let authorizer = Authorizer::new();
        // Both engines must decide alike, or the comparison means nothing.
        for (k, case) in cases.iter().enumerate() {
            let a = RequestAttrs::connection(Some(&ids[k]), None, Some(8443)).with_request("GET", &case.path);
            let ours = policy.evaluate(&a).is_allowed();
            let theirs = authorizer.is_authorized(&cedar_reqs[k].0, &set, &cedar_reqs[k].1).decision() == Decision::Allow;
            assert_eq!(ours, theirs, "engines disagree on {} {}", case.peer, case.path);
        }
        let mut k = 0;
        c.bench_function(&format!("compare/meshless/{n}"), |b| {
            b.iter(|| {
                k = (k + 1) % cases.len();
                let a = RequestAttrs::connection(Some(&ids[k]), None, Some(8443)).with_request("GET", &cases[k].path);
                black_box(conns[k].evaluate(&policy, black_box(&a)))
            })
        });
        c.bench_function(&format!("compare/cedar/{n}"), |b| {
            b.iter(|| {
                k = (k + 1) % cases.len();
                let (req, entities) = &cedar_reqs[k];
                black_box(authorizer.is_authorized(black_box(req), &set, entities))
            })
        });
        if n == 1_000 {
            let mut g = c.benchmark_group("compare/parse");
            g.sample_size(10);
            g.bench_function("meshless/1000", |b| b.iter(|| black_box(Policy::from_json(&native).unwrap())));
            g.bench_function("cedar/1000", |b| b.iter(|| black_box(PolicySet::from_str(&cedar).unwrap())));
            g.finish();
        }
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
