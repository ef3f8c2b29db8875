//! The compiled index: per-action lookup tables from identity keys and from the first
//! path segment to the (sorted) rules that could match.
//!
//! A rule is filed under the keys of one positive field of each `from` entry (exact
//! identities, `spiffe://td/path/*` prefixes, `*.suffix` DNS identities, exact
//! namespaces, service accounts, trust domains), or in `any_peer` when an entry has
//! no such field. Independently it is filed under the first path segment of its
//! `paths`, or in `any_path`. A decision looks up both sides, walks the smaller, and
//! runs the full rule check (`matching.rs`) on each candidate, so the index can only
//! make evaluation faster, never change its result.

use std::collections::HashMap;

use super::model::{RuleSpec, SourceSpec};
use super::pattern::{IdKind, PathKind, StringMatch, Tseg};
use crate::Identity;

type Bucket = HashMap<Box<str>, Vec<u32>>;

/// Index of the rules of one action.
#[derive(Debug, Default)]
pub(crate) struct ActionIndex {
    by_identity: Bucket,
    by_id_prefix: Bucket,
    by_dns_suffix: Bucket,
    by_namespace: Bucket,
    by_service_account: HashMap<Box<str>, Bucket>,
    by_trust_domain: Bucket,
    any_peer: Vec<u32>,
    by_first_segment: Bucket,
    any_path: Vec<u32>,
}

fn file(bucket: &mut Bucket, key: &str, id: u32) {
    bucket.entry(key.into()).or_default().push(id);
}

fn finish(v: &mut Vec<u32>) {
    v.sort_unstable();
    v.dedup();
    v.shrink_to_fit();
}

impl ActionIndex {
    pub(crate) fn insert(&mut self, id: u32, rule: &RuleSpec) {
        match &rule.from {
            None => self.any_peer.push(id),
            Some(from) => {
                for entry in from {
                    if !self.file_source(id, entry) {
                        self.any_peer.push(id);
                    }
                }
            }
        }
        let keys: Option<Vec<&str>> = rule.to.as_ref().and_then(|to| {
            let mut keys = Vec::new();
            for op in to {
                for p in op.paths.as_ref()? {
                    keys.push(first_segment_key(p.kind())?);
                }
            }
            Some(keys)
        });
        match keys {
            Some(keys) => keys
                .into_iter()
                .for_each(|k| file(&mut self.by_first_segment, k, id)),
            None => self.any_path.push(id),
        }
    }

    /// Files one `from` entry under a keyable positive field; false when it has none.
    fn file_source(&mut self, id: u32, s: &SourceSpec) -> bool {
        if let Some(ids) = &s.identities {
            let keyable = ids.iter().all(|p| {
                matches!(p.kind(), IdKind::Exact | IdKind::DnsSuffix(_))
                    || p.trailing_prefix().is_some()
            });
            if keyable {
                for p in ids {
                    match (p.kind(), p.trailing_prefix()) {
                        (IdKind::Exact, _) => file(&mut self.by_identity, p.as_str(), id),
                        (IdKind::DnsSuffix(sfx), _) => file(&mut self.by_dns_suffix, sfx, id),
                        (_, Some(prefix)) => file(&mut self.by_id_prefix, prefix, id),
                        _ => {}
                    }
                }
                return true;
            }
        }
        if let Some(ns) = &s.namespaces
            && let Some(exact) = ns.iter().map(|p| p.0.exact()).collect::<Option<Vec<_>>>()
        {
            exact
                .into_iter()
                .for_each(|n| file(&mut self.by_namespace, n, id));
            return true;
        }
        if let Some(sas) = &s.service_accounts {
            let exact: Option<Vec<(&str, &str)>> = sas
                .iter()
                .map(|p| Some((p.namespace.exact()?, p.name.exact()?)))
                .collect();
            if let Some(exact) = exact {
                for (ns, sa) in exact {
                    let inner = self.by_service_account.entry(ns.into()).or_default();
                    file(inner, sa, id);
                }
                return true;
            }
        }
        if let Some(tds) = &s.trust_domains {
            tds.iter()
                .for_each(|t| file(&mut self.by_trust_domain, &t.0, id));
            return true;
        }
        false
    }

    pub(crate) fn finish(&mut self) {
        for bucket in [
            &mut self.by_identity,
            &mut self.by_id_prefix,
            &mut self.by_dns_suffix,
            &mut self.by_namespace,
            &mut self.by_trust_domain,
            &mut self.by_first_segment,
        ] {
            bucket.values_mut().for_each(finish);
        }
        for inner in self.by_service_account.values_mut() {
            inner.values_mut().for_each(finish);
        }
        finish(&mut self.any_peer);
        finish(&mut self.any_path);
    }

    /// Calls `f` with every slice of rules whose `from` could match `id`.
    pub(crate) fn peer_slices<'s>(&'s self, id: Option<&Identity>, mut f: impl FnMut(&'s [u32])) {
        f(&self.any_peer);
        let Some(id) = id else {
            return;
        };
        let mut get = |b: &'s Bucket, k: &str| {
            if let Some(v) = b.get(k) {
                f(v);
            }
        };
        let text = id.as_str();
        get(&self.by_identity, text);
        match id {
            Identity::Spiffe(_) => {
                if !self.by_id_prefix.is_empty() {
                    let start = "spiffe://".len();
                    for (i, _) in text[start..].match_indices('/') {
                        get(&self.by_id_prefix, &text[..start + i + 1]);
                    }
                }
            }
            _ => {
                if !self.by_dns_suffix.is_empty() {
                    for (i, _) in text.match_indices('.') {
                        get(&self.by_dns_suffix, &text[i + 1..]);
                    }
                }
            }
        }
        if let Some(ns) = id.namespace() {
            get(&self.by_namespace, ns);
            if let (Some(sa), Some(inner)) = (id.service_account(), self.by_service_account.get(ns))
            {
                get(inner, sa);
            }
        }
        get(&self.by_trust_domain, id.trust_domain());
    }

    /// Calls `f` with every slice of rules whose `to` could match `path`.
    pub(crate) fn path_slices<'s>(&'s self, path: &str, mut f: impl FnMut(&'s [u32])) {
        f(&self.any_path);
        if let Some(rest) = path.strip_prefix('/') {
            let key = rest.split('/').next().unwrap_or_default();
            if let Some(v) = self.by_first_segment.get(key) {
                f(v);
            }
        }
    }

    /// Approximate heap size, for the compile benchmark.
    pub(crate) fn entries(&self) -> usize {
        let b = |b: &Bucket| b.values().map(Vec::len).sum::<usize>();
        b(&self.by_identity)
            + b(&self.by_id_prefix)
            + b(&self.by_dns_suffix)
            + b(&self.by_namespace)
            + b(&self.by_trust_domain)
            + b(&self.by_first_segment)
            + self.by_service_account.values().map(b).sum::<usize>()
            + self.any_peer.len()
            + self.any_path.len()
    }
}

/// The first path segment every path matching `kind` has, if there is one.
fn first_segment_key(kind: &PathKind) -> Option<&str> {
    match kind {
        PathKind::Glob(StringMatch::Exact(p)) => {
            let rest = p.strip_prefix('/')?;
            Some(rest.split('/').next().unwrap_or_default())
        }
        PathKind::Glob(StringMatch::Prefix(p)) => {
            let rest = p.strip_prefix('/')?;
            // Only when the prefix holds the whole first segment.
            rest.split_once('/').map(|(first, _)| first)
        }
        PathKind::Template(segs) => match segs.first()? {
            Tseg::Lit(l) => Some(l),
            Tseg::One | Tseg::Rest => None,
        },
        PathKind::Glob(_) => None,
    }
}

/// Sum of slice lengths.
pub(crate) fn cost<'s>(visit: impl FnOnce(&mut dyn FnMut(&'s [u32]))) -> usize {
    let mut n = 0;
    visit(&mut |s: &[u32]| n += s.len());
    n
}
