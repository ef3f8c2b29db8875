//! `policy::analysis` at scale: `who_can` over 100,000 rules and `diff` of two
//! 10,000-rule policies (the second a pull request's revision of the first: 1% of
//! the rules dropped, 1% added).
//!
//! The rules mix what large policies hold: exact SPIFFE IDs, `ns/*` prefixes,
//! namespaces and service accounts, methods with exact paths, prefixes and `{*}`
//! templates, a deny rule per hundred rules, and a few rules on `/admin`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use meshless::policy::Policy;
use meshless::policy::analysis::{RequestShape, diff, who_can};
use serde_json::{Value, json};

/// Rule `i` of a large policy (`salt` changes its peer and path, for revisions).
fn rule(i: usize, salt: &str) -> Value {
    let ns = format!("ns{}", i % 500);
    let from = match i % 4 {
        0 => json!([{"identities": [format!("spiffe://example.org/ns/{ns}/sa/sa{i}{salt}")]}]),
        1 => json!([{"identities": [format!("spiffe://example.org/ns/{ns}{salt}/*")]}]),
        2 => json!([{"namespaces": [format!("{ns}{salt}")]}]),
        _ => json!([{"service_accounts": [format!("{ns}/sa{i}{salt}")]}]),
    };
    let path = match i % 3 {
        0 => format!("/svc{i}{salt}/items"),
        1 => format!("/svc{i}{salt}/*"),
        _ => format!("/svc{i}{salt}/{{*}}/items"),
    };
    let path = if i % 1000 == 7 {
        "/admin/*".to_owned()
    } else {
        path
    };
    let action = if i % 100 == 99 { "deny" } else { "allow" };
    json!({"name": format!("r{i}{salt}"), "action": action, "from": from,
        "to": [{"methods": ["GET", "POST"], "paths": [path], "ports": [8443]}]})
}

fn policy(rules: impl Iterator<Item = Value>) -> Policy {
    let spec = json!({"local_trust_domains": ["example.org"], "rules": rules.collect::<Vec<_>>()});
    Policy::from_json(&spec.to_string()).unwrap()
}

fn bench(c: &mut Criterion) {
    let big = policy((0..100_000).map(|i| rule(i, "")));
    let admin = RequestShape::http("GET", "/admin/users")
        .unwrap()
        .port(8443);
    let classes = who_can(&big, &admin).classes().len();
    eprintln!("who_can(100,000 rules, GET /admin/users): {classes} classes");
    c.bench_function("who_can/100000", |b| {
        b.iter(|| black_box(who_can(&big, black_box(&admin))))
    });

    let old = policy((0..10_000).map(|i| rule(i, "")));
    let revised = (0..10_000).filter(|i| i % 100 != 5).map(|i| rule(i, ""));
    let added = (0..100).map(|i| rule(i * 100 + 5, "-v2"));
    let new = policy(revised.chain(added));
    let d = diff(&old, &new);
    eprintln!(
        "diff(10,000 rules, 1% dropped, 1% added): {} regions",
        d.regions().len()
    );
    c.bench_function("diff/10000", |b| b.iter(|| black_box(diff(&old, &new))));
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = bench
}
criterion_main!(benches);
