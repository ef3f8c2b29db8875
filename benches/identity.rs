//! Identity hot paths: parsing a SPIFFE ID, and reading + validating the identity of
//! an X.509-SVID leaf (what happens once per mTLS handshake).

use criterion::{Criterion, criterion_group, criterion_main};
use meshless::testing::TestCa;
use meshless::{LinkerdId, SpiffeId, svid};
use std::hint::black_box;

fn identity(c: &mut Criterion) {
    let mut g = c.benchmark_group("identity");
    let id = "spiffe://example.org/ns/payments/sa/checkout-api";
    g.bench_function("spiffe_id_parse", |b| {
        b.iter(|| SpiffeId::parse(black_box(id)).unwrap())
    });
    let long = format!("spiffe://example.org/{}", ["segment"; 200].join("/"));
    g.bench_function("spiffe_id_parse_1.6KB", |b| {
        b.iter(|| SpiffeId::parse(black_box(&long)).unwrap())
    });
    let l5d = "checkout.payments.serviceaccount.identity.linkerd.cluster.local";
    g.bench_function("linkerd_id_parse", |b| {
        b.iter(|| LinkerdId::parse(black_box(l5d)).unwrap())
    });

    let ca = TestCa::new("example.org").unwrap();
    let cert = ca.issue(id).unwrap();
    let der = cert.leaf_der();
    g.bench_function("x509_svid_validate_leaf", |b| {
        b.iter(|| svid::validate_leaf(black_box(der)).unwrap())
    });
    // The baseline: webpki parsing the same leaf, which every handshake pays anyway.
    let cert_der = rustls_pki_types::CertificateDer::from(der);
    g.bench_function("baseline_webpki_parse_leaf", |b| {
        b.iter(|| {
            webpki::EndEntityCert::try_from(black_box(&cert_der))
                .map(|_| ())
                .unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, identity);
criterion_main!(benches);
