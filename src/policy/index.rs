//! The compiled index: per-action lookup tables from identity keys and from the first
//! path segment to the (sorted) rules that could match.
//!
//! A rule is filed under the keys of one positive field of each `from` entry (exact
//! identities, `spiffe://td/path/*` prefixes, `*.suffix` DNS identities, exact
//! namespaces, service accounts, trust domains), or in `any_peer` when an entry has
//! no such field. Independently it is filed under the first path segment of its
//! `paths`, or in `any_path`. A decision looks up both sides, walks the smaller, and
//! runs the full rule check (`matching.rs`) on each candidate, so the index can only
//! make evaluation faster, never change its result. (Namespace and service-account
//! keys leave the trust domain out: the full check reads them only in the entry's
//! or the policy's trust domains.)

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};

use super::model::{RuleSpec, SourceSpec};
use super::pattern::{IdKind, PathKind, StringMatch, Tseg};
use crate::Identity;

/// A fast multiplicative hash (FxHash). The tables are built once from the policy
/// and only read afterwards, so attacker-chosen lookup keys cannot grow a chain.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct FxBuild;

pub(crate) struct Fx(u64);

impl Fx {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for Fx {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w));
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

impl BuildHasher for FxBuild {
    type Hasher = Fx;
    fn build_hasher(&self) -> Fx {
        Fx(0)
    }
}

/// Rules filed under a key. Keys are stored as 64-bit hashes: a collision can only
/// add candidates, which the full rule check then rejects, so it never changes a
/// decision; not storing the key strings saves memory and a cache miss per lookup.
type Bucket = HashMap<u64, Ids, FxBuild>;

/// The rules of one key: one inline id (the common case) or a sorted list.
#[derive(Debug)]
enum Ids {
    One(u32),
    Many(Vec<u32>),
}

impl Ids {
    fn as_slice(&self) -> &[u32] {
        match self {
            Self::One(id) => std::slice::from_ref(id),
            Self::Many(v) => v,
        }
    }

    fn push(&mut self, id: u32) {
        match self {
            Self::One(first) => *self = Self::Many(vec![*first, id]),
            Self::Many(v) => v.push(id),
        }
    }

    fn finish(&mut self) {
        if let Self::Many(v) = self {
            finish(v);
            if let [only] = v.as_slice() {
                *self = Self::One(*only);
            }
        }
    }
}

/// The hash of `parts`, as the tables store keys.
fn key(parts: &[&str]) -> u64 {
    let mut h = FxBuild.build_hasher();
    for p in parts {
        h.write(p.as_bytes());
        h.write_u8(0xff);
    }
    h.finish()
}

/// Index of the rules of one action.
#[derive(Debug, Default)]
pub(crate) struct ActionIndex {
    by_identity: Bucket,
    by_id_prefix: Bucket,
    by_dns_suffix: Bucket,
    by_namespace: Bucket,
    by_service_account: Bucket,
    by_trust_domain: Bucket,
    any_peer: Vec<u32>,
    by_first_segment: Bucket,
    any_path: Vec<u32>,
}

fn file(bucket: &mut Bucket, parts: &[&str], id: u32) {
    match bucket.entry(key(parts)) {
        std::collections::hash_map::Entry::Occupied(mut e) => e.get_mut().push(id),
        std::collections::hash_map::Entry::Vacant(e) => {
            e.insert(Ids::One(id));
        }
    }
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
                .for_each(|k| file(&mut self.by_first_segment, &[k], id)),
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
                        (IdKind::Exact, _) => file(&mut self.by_identity, &[p.as_str()], id),
                        (IdKind::DnsSuffix(sfx), _) => file(&mut self.by_dns_suffix, &[sfx], id),
                        (_, Some(prefix)) => file(&mut self.by_id_prefix, &[prefix], id),
                        _ => {}
                    }
                }
                return true;
            }
        }
        if let Some(exact) = s
            .namespaces
            .as_ref()
            .and_then(|ns| ns.iter().map(|p| p.0.exact()).collect::<Option<Vec<_>>>())
        {
            exact
                .into_iter()
                .for_each(|n| file(&mut self.by_namespace, &[n], id));
            return true;
        }
        if let Some(sas) = &s.service_accounts {
            let exact: Option<Vec<(&str, &str)>> = sas
                .iter()
                .map(|p| Some((p.namespace.exact()?, p.name.exact()?)))
                .collect();
            if let Some(exact) = exact {
                for (ns, sa) in exact {
                    file(&mut self.by_service_account, &[ns, sa], id);
                }
                return true;
            }
        }
        if let Some(tds) = &s.trust_domains {
            tds.iter()
                .for_each(|t| file(&mut self.by_trust_domain, &[&t.0], id));
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
            &mut self.by_service_account,
        ] {
            bucket.values_mut().for_each(Ids::finish);
            bucket.shrink_to_fit();
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
        let mut get = |b: &'s Bucket, k: &[&str]| {
            if let Some(v) = (!b.is_empty()).then(|| b.get(&key(k))).flatten() {
                f(v.as_slice());
            }
        };
        let text = id.as_str();
        get(&self.by_identity, &[text]);
        match id {
            Identity::Spiffe(_) => {
                if !self.by_id_prefix.is_empty() {
                    let start = "spiffe://".len();
                    for (i, _) in text[start..].match_indices('/') {
                        get(&self.by_id_prefix, &[&text[..start + i + 1]]);
                    }
                }
            }
            _ => {
                if !self.by_dns_suffix.is_empty() {
                    for (i, _) in text.match_indices('.') {
                        get(&self.by_dns_suffix, &[&text[i + 1..]]);
                    }
                }
            }
        }
        if let Some(ns) = id.namespace() {
            get(&self.by_namespace, &[ns]);
            if let Some(sa) = id.service_account() {
                get(&self.by_service_account, &[ns, sa]);
            }
        }
        get(&self.by_trust_domain, &[id.trust_domain()]);
    }

    /// Calls `f` with every slice of rules whose `to` could match `path`.
    pub(crate) fn path_slices<'s>(&'s self, path: &str, mut f: impl FnMut(&'s [u32])) {
        f(&self.any_path);
        if let Some(rest) = path.strip_prefix('/') {
            let first = rest.split('/').next().unwrap_or_default();
            let bucket = &self.by_first_segment;
            if let Some(v) = (!bucket.is_empty())
                .then(|| bucket.get(&key(&[first])))
                .flatten()
            {
                f(v.as_slice());
            }
        }
    }

    /// Approximate heap size, for the compile benchmark.
    pub(crate) fn entries(&self) -> usize {
        let b = |b: &Bucket| b.values().map(|v| v.as_slice().len()).sum::<usize>();
        b(&self.by_identity)
            + b(&self.by_id_prefix)
            + b(&self.by_dns_suffix)
            + b(&self.by_namespace)
            + b(&self.by_trust_domain)
            + b(&self.by_first_segment)
            + b(&self.by_service_account)
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

/// Up to 16 non-empty candidate slices, gathered by one walk of the tables.
pub(crate) struct Slices<'s> {
    buf: [&'s [u32]; 16],
    len: usize,
    /// More slices than fit: the caller walks the tables again instead.
    pub(crate) overflow: bool,
}

impl<'s> Slices<'s> {
    pub(crate) fn new() -> Self {
        Self {
            buf: [&[]; 16],
            len: 0,
            overflow: false,
        }
    }

    pub(crate) fn push(&mut self, s: &'s [u32]) {
        if s.is_empty() {
            return;
        }
        match self.buf.get_mut(self.len) {
            Some(slot) => {
                *slot = s;
                self.len += 1;
            }
            None => self.overflow = true,
        }
    }

    /// Total candidates (meaningless on overflow).
    pub(crate) fn cost(&self) -> usize {
        self.as_slice().iter().map(|s| s.len()).sum()
    }

    pub(crate) fn as_slice(&self) -> &[&'s [u32]] {
        &self.buf[..self.len]
    }
}
