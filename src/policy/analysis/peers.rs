//! Representative peers: one identity (or none) per class of "which `from` fields
//! of these entries hold for it".
//!
//! A SPIFFE ID is a trust domain and path segments. The fields compare the trust
//! domain for equality, segments for equality with the literals of wildcard
//! patterns (`spiffe://td/ns/*/sa/api`, `*/sa/api`), the whole ID with exact IDs,
//! and a Kubernetes-shaped path's namespace and service account (`/ns/<ns>/sa/<sa>`)
//! with [`StringMatch`](crate::policy::StringMatch) patterns. So per trust domain (each named one, and one no
//! pattern names) and per path length, the candidates are the product of, per
//! segment, its literals plus one fresh segment — and at the namespace and
//! service-account positions, one value per class of those patterns
//! ([`strings`](super::strings)). Exact IDs and exact service accounts are added
//! as they are rather than multiplied in. Linkerd identities get the same
//! namespace and service-account classes, under each Linkerd trust domain.

use std::collections::BTreeSet;

use super::super::model::{PolicySpec, SourceSpec};
use super::super::pattern::IdKind;
use super::strings::{LOWER, Literals};
use crate::{Identity, LinkerdId, SpiffeId};

/// A fresh path segment (no pattern's literal).
const FRESH_SEGMENTS: [&str; 3] = ["x9q", "x9q0", "x9q1"];

/// What the peers' fields of a set of `from` entries look at.
#[derive(Debug, Default)]
pub(crate) struct PeerAtoms {
    trust_domains: BTreeSet<String>,
    linkerd_domains: BTreeSet<String>,
    exact: BTreeSet<String>,
    /// Wildcard SPIFFE patterns: trust domain, segment count, whether a trailing
    /// `*` takes more segments, and the segments (`None` for `*`).
    wildcard: Vec<(String, usize, bool, Vec<Option<String>>)>,
    /// `*/a/b` patterns: their segments.
    suffixes: Vec<Vec<String>>,
    dns_suffixes: BTreeSet<String>,
    namespaces: Literals,
    accounts: Literals,
    /// Exact `namespace/name` service accounts.
    pairs: BTreeSet<(String, String)>,
    /// Segments of exact IDs at the namespace and service-account positions, never
    /// used as fillers.
    avoid: BTreeSet<String>,
}

impl PeerAtoms {
    /// The atoms of a policy's own settings (its local trust domains).
    pub(crate) fn add_policy(&mut self, spec: &PolicySpec) {
        for td in &spec.local_trust_domains {
            self.trust_domains.insert(td.as_str().to_owned());
        }
    }

    /// Adds the peer fields of a `from` entry.
    pub(crate) fn add(&mut self, s: &SourceSpec) {
        for p in s.identities.iter().chain(&s.not_identities).flatten() {
            match p.kind() {
                IdKind::Any => {}
                IdKind::Exact => self.add_exact(p.as_str()),
                IdKind::Spiffe {
                    trust_domain,
                    segments,
                    open,
                } => {
                    self.trust_domains.insert(trust_domain.to_string());
                    let segs = segments.iter().map(|s| s.as_deref().map(str::to_owned));
                    self.wildcard.push((
                        trust_domain.to_string(),
                        segments.len(),
                        *open,
                        segs.collect(),
                    ));
                }
                IdKind::SpiffeSuffix(sfx) => self
                    .suffixes
                    .push(sfx.split('/').skip(1).map(str::to_owned).collect()),
                IdKind::DnsSuffix(sfx) => {
                    self.dns_suffixes.insert(sfx.to_string());
                }
            }
        }
        for td in s.trust_domains.iter().chain(&s.not_trust_domains).flatten() {
            self.trust_domains.insert(td.as_str().to_owned());
        }
        for ns in s.namespaces.iter().chain(&s.not_namespaces).flatten() {
            self.namespaces.add(&ns.0);
        }
        for sa in s
            .service_accounts
            .iter()
            .chain(&s.not_service_accounts)
            .flatten()
        {
            match (sa.namespace.exact(), sa.name.exact()) {
                (Some(n), Some(a)) => {
                    self.pairs.insert((n.to_owned(), a.to_owned()));
                }
                _ => {
                    self.namespaces.add(&sa.namespace);
                    self.accounts.add(&sa.name);
                }
            }
        }
    }

    fn add_exact(&mut self, text: &str) {
        self.exact.insert(text.to_owned());
        if let Some(id) = parse(text) {
            let td = id.trust_domain().to_owned();
            if matches!(id, Identity::Linkerd(_)) {
                self.linkerd_domains.insert(td.clone());
            }
            self.trust_domains.insert(td);
            self.avoid.extend(id.namespace().map(str::to_owned));
            self.avoid.extend(id.service_account().map(str::to_owned));
        }
    }

    /// The candidates: no identity, then identities.
    pub(crate) fn representatives(&self) -> Vec<Option<Identity>> {
        let mut ids: BTreeSet<String> = self.exact.clone();
        let avoid = |v: &str| self.avoid.contains(v);
        let valid = |v: &str| {
            !v.is_empty()
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
                && v != "."
                && v != ".."
        };
        let namespaces = self
            .namespaces
            .representatives_avoiding(LOWER, &valid, &avoid);
        let accounts = self
            .accounts
            .representatives_avoiding(LOWER, &valid, &avoid);
        let mut domains: Vec<String> = self.trust_domains.iter().cloned().collect();
        domains.push(fresh_domain(&self.trust_domains));
        for td in &domains {
            self.spiffe_paths(td, &namespaces, &accounts, &mut ids);
            for (n, a) in &self.pairs {
                ids.insert(format!("spiffe://{td}/ns/{n}/sa/{a}"));
            }
        }
        let mut linkerd: Vec<String> = self.linkerd_domains.iter().cloned().collect();
        linkerd.push("cluster.local".to_owned());
        for td in &linkerd {
            let pairs = self.pairs.iter().map(|(n, a)| (n.as_str(), a.as_str()));
            let classes = namespaces
                .iter()
                .flat_map(|n| accounts.iter().map(move |a| (n.as_str(), a.as_str())));
            for (n, a) in classes.chain(pairs) {
                ids.insert(format!("{a}.{n}.serviceaccount.identity.linkerd.{td}"));
            }
        }
        for sfx in &self.dns_suffixes {
            ids.insert(format!("x9q.{sfx}"));
            ids.insert(format!("x9q.x9q.serviceaccount.identity.linkerd.{sfx}"));
        }
        std::iter::once(None)
            .chain(ids.iter().filter_map(|t| parse(t)).map(Some))
            .collect()
    }

    /// SPIFFE IDs of trust domain `td`: per path length, the product of each
    /// position's literals and a fresh segment.
    fn spiffe_paths(
        &self,
        td: &str,
        namespaces: &[String],
        accounts: &[String],
        out: &mut BTreeSet<String>,
    ) {
        let mine: Vec<_> = self.wildcard.iter().filter(|w| w.0 == td).collect();
        let longest = mine
            .iter()
            .map(|w| w.1)
            .chain(self.suffixes.iter().map(Vec::len))
            .max()
            .unwrap_or(0);
        for n in 1..=longest.max(4) + 1 {
            let mut sets: Vec<BTreeSet<String>> = vec![BTreeSet::new(); n];
            for (_, len, open, segs) in &mine {
                if *len == n || (*open && n >= *len) {
                    for (i, s) in segs.iter().enumerate() {
                        sets[i].extend(s.clone());
                    }
                }
            }
            for sfx in self.suffixes.iter().filter(|s| s.len() <= n) {
                for (i, s) in sfx.iter().enumerate() {
                    sets[n - sfx.len() + i].insert(s.clone());
                }
            }
            if n == 4 {
                sets[0].insert("ns".to_owned());
                sets[2].insert("sa".to_owned());
                sets[1].extend(namespaces.iter().cloned());
                sets[3].extend(accounts.iter().cloned());
            }
            for set in &mut sets {
                if let Some(f) = FRESH_SEGMENTS.iter().find(|f| !set.contains(**f)) {
                    set.insert((*f).to_owned());
                }
            }
            product(&sets, &mut |segs| {
                out.insert(format!("spiffe://{td}/{}", segs.join("/")));
            });
        }
    }
}

/// Calls `f` with every choice of one element per set.
fn product(sets: &[BTreeSet<String>], f: &mut dyn FnMut(&[&str])) {
    fn go<'a>(sets: &'a [BTreeSet<String>], acc: &mut Vec<&'a str>, f: &mut dyn FnMut(&[&str])) {
        match sets.split_first() {
            None => f(acc),
            Some((first, rest)) => {
                for v in first {
                    acc.push(v);
                    go(rest, acc, f);
                    acc.pop();
                }
            }
        }
    }
    go(sets, &mut Vec::with_capacity(sets.len()), f);
}

/// A trust domain no pattern names.
fn fresh_domain(known: &BTreeSet<String>) -> String {
    (0..)
        .map(|i| format!("x{i}.invalid"))
        .find(|d| !known.contains(d))
        .unwrap_or_default()
}

/// An identity from its text: a SPIFFE ID or a Linkerd identity.
pub(crate) fn parse(text: &str) -> Option<Identity> {
    if text.starts_with("spiffe://") {
        SpiffeId::parse(text)
            .ok()
            .filter(|id| !id.is_trust_domain_id())
            .map(Identity::from)
    } else {
        LinkerdId::parse(text).ok().map(Identity::from)
    }
}
