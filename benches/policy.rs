//! Policy decisions at 10, 1,000 and 100,000 rules, and compile time.
//!
//! Realistic mix: each rule names its peers by exact SPIFFE ID, by `ns/*` prefix or
//! by namespace, and its operations by methods plus an exact path, a prefix or a
//! `{*}` template. Half the requests are allowed by a rule at a random position,
//! half match nothing (default deny). `decide/*` uses the per-connection
//! precomputation (`Policy::for_peer`) as the enforcement layer does;
//! `decide_uncached/*` calls `Policy::evaluate` directly. `compile/*` parses JSON and
//! builds the index; the peak heap of one 100,000-rule compile is printed.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use meshless::policy::{PeerRules, Policy, RequestAttrs};
use meshless::{Identity, SpiffeId};

/// Counts live and peak heap bytes.
struct Counting;
static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static CALLS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; we only count.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            CALLS.fetch_add(1, Ordering::Relaxed);
            let now = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// xorshift, so runs are reproducible.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A rule and one request it allows: (json, peer id, method, path).
fn rule(i: usize, namespaces: usize) -> (String, String, &'static str, String) {
    let ns = i % namespaces;
    let peer = format!("spiffe://example.org/ns/ns{ns}/sa/sa{i}");
    let from = match i % 3 {
        0 => format!(r#"{{"identities":["{peer}"]}}"#),
        1 => format!(r#"{{"identities":["spiffe://example.org/ns/ns{ns}/*"]}}"#),
        _ => format!(r#"{{"namespaces":["ns{ns}"]}}"#),
    };
    let (paths, path) = match i % 3 {
        0 => (format!(r#"["/svc{i}/health"]"#), format!("/svc{i}/health")),
        1 => (format!(r#"["/svc{i}/*"]"#), format!("/svc{i}/orders/7")),
        _ => (
            format!(r#"["/svc{i}/items/{{*}}"]"#),
            format!("/svc{i}/items/42"),
        ),
    };
    let methods = if i.is_multiple_of(2) {
        r#"["GET"]"#
    } else {
        r#"["GET","POST"]"#
    };
    let json = format!(
        r#"{{"name":"r{i}","action":"allow","from":[{from}],"to":[{{"methods":{methods},"paths":{paths},"ports":[8443]}}]}}"#
    );
    (json, peer, "GET", path)
}

fn policy_json(n: usize) -> String {
    let namespaces = (n / 10).max(1);
    let rules: Vec<String> = (0..n).map(|i| rule(i, namespaces).0).collect();
    format!(
        r#"{{"default":"deny","local_trust_domains":["example.org"],"rules":[{}]}}"#,
        rules.join(",")
    )
}

/// 1,000 requests: half allowed by a random rule, half matching nothing.
fn requests(n: usize) -> Vec<(Identity, &'static str, String)> {
    let namespaces = (n / 10).max(1);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    (0..1000)
        .map(|k| {
            let i = rng.below(n);
            let (_, peer, method, path) = rule(i, namespaces);
            let (peer, path) = if k % 2 == 0 {
                (peer, path)
            } else {
                (
                    format!("spiffe://example.org/ns/other{i}/sa/x"),
                    format!("/nothing/{i}"),
                )
            };
            (
                Identity::from(peer.parse::<SpiffeId>().unwrap()),
                method,
                path,
            )
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    for n in [10usize, 1_000, 100_000] {
        let policy = Policy::from_json(&policy_json(n)).unwrap();
        let reqs = requests(n);
        let conns: Vec<PeerRules> = reqs
            .iter()
            .map(|(id, _, _)| policy.for_peer(Some(id), None))
            .collect();
        // Sanity: the mix is what it claims.
        let allowed = reqs
            .iter()
            .filter(|(id, m, p)| {
                let a = RequestAttrs::connection(Some(id), None, Some(8443)).with_request(m, p);
                policy.evaluate(&a).is_allowed()
            })
            .count();
        assert_eq!(allowed, 500, "half the requests are allowed");
        let before = CALLS.load(Ordering::Relaxed);
        for (k, (id, m, p)) in reqs.iter().enumerate() {
            let a = RequestAttrs::connection(Some(id), None, Some(8443)).with_request(m, p);
            black_box(conns[k].evaluate(&policy, &a));
            black_box(policy.evaluate(&a));
        }
        eprintln!(
            "policy/decide/{n}: {} heap allocations in 2,000 decisions",
            CALLS.load(Ordering::Relaxed) - before
        );

        let mut k = 0;
        c.bench_function(&format!("policy/decide/{n}"), |b| {
            b.iter(|| {
                k = (k + 1) % reqs.len();
                let (id, m, p) = &reqs[k];
                let a = RequestAttrs::connection(Some(id), None, Some(8443)).with_request(m, p);
                black_box(conns[k].evaluate(&policy, black_box(&a)))
            })
        });
        c.bench_function(&format!("policy/decide_uncached/{n}"), |b| {
            b.iter(|| {
                k = (k + 1) % reqs.len();
                let (id, m, p) = &reqs[k];
                let a = RequestAttrs::connection(Some(id), None, Some(8443)).with_request(m, p);
                black_box(policy.evaluate(black_box(&a)))
            })
        });
        c.bench_function(&format!("policy/for_peer/{n}"), |b| {
            b.iter(|| {
                k = (k + 1) % reqs.len();
                black_box(policy.for_peer(Some(&reqs[k].0), None))
            })
        });
    }
    let mut group = c.benchmark_group("policy/compile");
    group.sample_size(10);
    for n in [1_000usize, 100_000] {
        let text = policy_json(n);
        if n == 100_000 {
            let before = LIVE.load(Ordering::Relaxed);
            PEAK.store(before, Ordering::Relaxed);
            let p = Policy::from_json(&text).unwrap();
            let peak = PEAK.load(Ordering::Relaxed) - before;
            let kept = LIVE.load(Ordering::Relaxed) - before;
            eprintln!(
                "policy/compile/{n}: peak heap {:.1} MB, retained {:.1} MB, json {:.1} MB, {} index entries",
                peak as f64 / 1e6,
                kept as f64 / 1e6,
                text.len() as f64 / 1e6,
                p.index_entries()
            );
        }
        group.bench_function(format!("{n}"), |b| {
            b.iter_batched(
                || text.clone(),
                |t| black_box(Policy::from_json(&t).unwrap()),
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
