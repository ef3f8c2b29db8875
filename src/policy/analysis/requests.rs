//! Representative request values: ports, methods, paths, hosts and authorities,
//! queries, headers, principals and claims, one per class of the patterns that the
//! still-possible rules (and the port's routes) hold against them.

use std::collections::{BTreeMap, BTreeSet};

use http::{HeaderMap, HeaderName, HeaderValue};

use super::super::model::{ConditionSpec, OperationSpec, RouteSpec, SourceSpec};
use super::super::pattern::{PathKind, PathPattern, StringMatch, Tseg};
use super::super::values::PortRange;
use super::nets::Addresses;
use super::strings::{LOWER, Literals, PRINCIPAL, UPPER};
use crate::{Claims, RequestPrincipal};

/// What the request fields of a set of rules (and routes) look at.
#[derive(Default)]
pub(crate) struct RequestAtoms {
    ports: BTreeSet<u16>,
    methods: Literals,
    path_globs: Literals,
    templates: Vec<Vec<Tseg>>,
    /// Segments of literal paths and templates, by position, for template wildcards.
    segments: BTreeMap<usize, BTreeSet<String>>,
    hosts: Literals,
    authority_ports: BTreeSet<String>,
    authorities: Literals,
    queries: BTreeSet<String>,
    /// By header name (lower case).
    headers: BTreeMap<String, Literals>,
    claims: BTreeMap<Vec<String>, (Literals, bool)>,
    principals: Literals,
    remote: Addresses,
}

impl RequestAtoms {
    /// Adds a port range.
    pub(crate) fn add_ports(&mut self, r: &PortRange) {
        self.ports.insert(r.start);
        self.ports.insert(r.end);
        self.ports.extend(r.start.checked_sub(1).filter(|p| *p > 0));
        self.ports.extend(r.end.checked_add(1));
    }

    /// Adds the fields of a `to` entry.
    pub(crate) fn add_operation(&mut self, o: &OperationSpec) {
        for r in o.ports.iter().chain(&o.not_ports).flatten() {
            self.add_ports(r);
        }
        for m in o.methods.iter().chain(&o.not_methods).flatten() {
            self.methods.add(&m.0);
        }
        for p in o.paths.iter().chain(&o.not_paths).flatten() {
            self.add_path(p);
        }
        for h in o.hosts.iter().chain(&o.not_hosts).flatten() {
            self.hosts.add(&h.0);
        }
        for a in o.authorities.iter().chain(&o.not_authorities).flatten() {
            self.add_authority(&a.0);
        }
    }

    fn add_path(&mut self, p: &PathPattern) {
        match p.kind() {
            PathKind::Glob(m) => {
                self.path_globs.add(m);
                if let StringMatch::Exact(t) | StringMatch::Prefix(t) = m {
                    for (i, seg) in t.split('/').skip(1).enumerate() {
                        self.segments.entry(i).or_default().insert(seg.to_owned());
                    }
                }
            }
            PathKind::Template(segs) => {
                let head: Vec<&str> = segs
                    .iter()
                    .map_while(|s| match s {
                        Tseg::Lit(l) => Some(&**l),
                        _ => None,
                    })
                    .collect();
                self.path_globs.add_prefix(&format!("/{}", head.join("/")));
                for (i, s) in segs.iter().enumerate() {
                    if let Tseg::Lit(l) = s {
                        self.segments.entry(i).or_default().insert(l.to_string());
                        self.path_globs.add_suffix(&format!("/{l}"));
                    }
                }
                self.templates.push(segs.clone());
            }
        }
    }

    fn add_authority(&mut self, m: &StringMatch) {
        self.authorities.add(m);
        let text = match m {
            StringMatch::Exact(t) | StringMatch::Prefix(t) | StringMatch::Suffix(t) => t,
            StringMatch::Any => return,
        };
        let (host, port) = match text.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || text.starts_with('[') => (h, Some(p)),
            _ => (&**text, None),
        };
        self.authority_ports
            .extend(port.filter(|p| !p.is_empty()).map(str::to_owned));
        match m {
            StringMatch::Exact(_) => self.hosts.add_exact(host),
            StringMatch::Prefix(_) if port.is_none() => self.hosts.add_prefix(host),
            StringMatch::Prefix(_) => self.hosts.add_exact(host),
            _ => self.hosts.add_suffix(host),
        }
    }

    /// Adds a `when` condition or a route's header match.
    pub(crate) fn add_condition(&mut self, c: &ConditionSpec) {
        let values = c.values.iter().chain(&c.not_values).flatten();
        if let Some(h) = &c.header {
            let lits = self.headers.entry(h.0.as_str().to_owned()).or_default();
            values.for_each(|v| lits.add(&v.0));
        } else if let Some(path) = &c.claim {
            let key = path.segments().map(str::to_owned).collect();
            let (lits, split) = self.claims.entry(key).or_default();
            *split |= c.space_delimited;
            values.for_each(|v| lits.add(&v.0));
        }
    }

    /// Adds the request-level fields of a `from` entry.
    pub(crate) fn add_source(&mut self, s: &SourceSpec) {
        for p in s
            .request_principals
            .iter()
            .chain(&s.not_request_principals)
            .flatten()
        {
            self.principals.add(&p.0);
        }
    }

    /// Adds what a server's routes look at.
    pub(crate) fn add_route(&mut self, r: &RouteSpec) {
        r.hosts.iter().flatten().for_each(|h| self.hosts.add(&h.0));
        for m in &r.matches {
            m.paths.iter().flatten().for_each(|p| self.add_path(p));
            m.methods
                .iter()
                .flatten()
                .for_each(|p| self.methods.add(&p.0));
            m.headers.iter().for_each(|c| self.add_condition(c));
            let pairs: Vec<String> = m
                .query_params
                .iter()
                .map(|q| format!("{}={}", form(&q.name), form(&q.value)))
                .collect();
            if !pairs.is_empty() {
                self.queries.extend(pairs.iter().cloned());
                self.queries.insert(pairs.join("&"));
            }
        }
    }

    /// Sets the client-address networks (`remote_networks`).
    pub(crate) fn set_remote(&mut self, nets: Addresses) {
        self.remote = nets;
    }

    /// Client addresses: the peer's own (no proxy), and, when rules name client
    /// networks, one per class of them and an unknown one.
    pub(crate) fn remotes(
        &self,
        source: Option<std::net::IpAddr>,
    ) -> Vec<Option<std::net::IpAddr>> {
        let mut out = vec![source];
        if !self.remote.is_empty() {
            out.extend(
                self.remote
                    .representatives(true)
                    .into_iter()
                    .filter(|ip| *ip != source),
            );
        }
        out
    }

    /// Destination ports: one per interval between the ranges' ends.
    pub(crate) fn ports(&self) -> Vec<u16> {
        let mut out: BTreeSet<u16> = self.ports.clone();
        out.extend([1, 65535]);
        // 8080 first, for readable examples (one more port splits no class).
        std::iter::once(8080)
            .chain(out.into_iter().filter(|p| *p != 8080))
            .collect()
    }

    /// Methods.
    pub(crate) fn methods(&self) -> Vec<String> {
        let token = |v: &str| !v.is_empty() && http::Method::from_bytes(v.as_bytes()).is_ok();
        self.methods.representatives(UPPER, &token)
    }

    /// Normalized paths.
    pub(crate) fn paths(&self) -> Vec<String> {
        let normal = |v: &str| super::super::normalize_path(v).is_ok_and(|n| n == v);
        // Every path starts with `/`: as a prefix it splits no class, and it makes
        // the class of paths no other prefix matches start with it too.
        let mut globs = self.path_globs.clone();
        globs.add_prefix("/");
        let mut out: BTreeSet<String> = globs.representatives(LOWER, &normal).into_iter().collect();
        for t in &self.templates {
            self.instantiate(t, &mut |p| {
                if normal(p) {
                    out.insert(p.to_owned());
                }
            });
        }
        out.into_iter().collect()
    }

    /// Paths a template matches: each `{*}` a fresh segment or a literal seen at its
    /// position, each `{**}` one empty, one fresh or two fresh segments.
    fn instantiate(&self, t: &[Tseg], f: &mut dyn FnMut(&str)) {
        let mut options: Vec<Vec<String>> = Vec::with_capacity(t.len());
        for (i, s) in t.iter().enumerate() {
            options.push(match s {
                Tseg::Lit(l) => vec![l.to_string()],
                Tseg::One => std::iter::once("x9q".to_owned())
                    .chain(self.segments.get(&i).into_iter().flatten().cloned())
                    .filter(|s| !s.is_empty())
                    .collect(),
                Tseg::Rest => vec![String::new(), "x9q".to_owned(), "x9q/x9q".to_owned()],
            });
        }
        let mut acc = Vec::new();
        choose(&options, &mut acc, &mut |segs| {
            f(&format!("/{}", segs.join("/")))
        });
    }

    /// Hosts with their authorities: `(host, authority)`, or neither.
    pub(crate) fn hosts(&self) -> Vec<Option<(String, String)>> {
        let valid = |v: &str| {
            !v.is_empty()
                && v.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-.".contains(&b))
        };
        let mut hosts = self.hosts.representatives(LOWER, &valid);
        if hosts.is_empty() {
            hosts.push("x9q.example".to_owned());
        }
        let mut out = vec![None];
        let ports: Vec<&str> = self
            .authority_ports
            .iter()
            .map(String::as_str)
            .filter(|p| p.bytes().all(|b| b.is_ascii_digit()))
            .chain(["9"])
            .collect();
        for h in hosts {
            out.push(Some((h.clone(), h.clone())));
            if !self.authorities.is_empty() {
                out.extend(ports.iter().map(|p| Some((h.clone(), format!("{h}:{p}")))));
            }
        }
        out
    }

    /// Queries (raw, form-encoded).
    pub(crate) fn queries(&self) -> Vec<Option<String>> {
        std::iter::once(None)
            .chain(self.queries.iter().cloned().map(Some))
            .collect()
    }

    /// Header maps: per header the conditions read, absent or one value per class
    /// (and two classes joined, for list readings).
    pub(crate) fn headers(&self) -> Vec<HeaderMap> {
        let mut maps = vec![HeaderMap::new()];
        for (name, lits) in &self.headers {
            let Ok(name) = HeaderName::from_bytes(name.as_bytes()) else {
                continue;
            };
            let ok = |v: &str| HeaderValue::from_str(v).is_ok();
            let mut values: Vec<Option<String>> = std::iter::once(None)
                .chain(lits.representatives(LOWER, &ok).into_iter().map(Some))
                .collect();
            let singles: Vec<String> = values.iter().flatten().take(4).cloned().collect();
            for a in &singles {
                for b in singles.iter().filter(|b| *b != a) {
                    values.push(Some(format!("{a},{b}")));
                }
            }
            let mut next = Vec::with_capacity(maps.len() * values.len());
            for m in &maps {
                for v in &values {
                    let mut m = m.clone();
                    if let Some(v) = v.as_deref().and_then(|v| HeaderValue::from_str(v).ok()) {
                        m.insert(name.clone(), v);
                    }
                    next.push(m);
                }
            }
            maps = next;
        }
        maps
    }

    /// Request principals (`None`: no token); when conditions read claims, at
    /// least one token.
    pub(crate) fn principals(&self) -> Vec<Option<RequestPrincipal>> {
        let mut out: Vec<Option<RequestPrincipal>> = std::iter::once(None)
            .chain(
                self.principals
                    .representatives(PRINCIPAL, &|v| v.contains('/'))
                    .iter()
                    .filter_map(|v| v.rsplit_once('/'))
                    .map(|(iss, sub)| Some(RequestPrincipal::new(iss, sub))),
            )
            .collect();
        if out.len() == 1 && !self.claims.is_empty() {
            out.push(Some(RequestPrincipal::new("https://x9q.example", "x9q")));
        }
        out
    }

    /// Claims documents (`None`: no claims): per claim path the conditions read,
    /// absent, one string per class, two of them as a list, or as words.
    pub(crate) fn claims(&self) -> Vec<Option<Claims>> {
        let mut docs = vec![serde_json::Map::new()];
        for (path, (lits, split)) in &self.claims {
            let singles = lits.representatives(LOWER, &|_| true);
            let mut values: Vec<Option<serde_json::Value>> = std::iter::once(None)
                .chain(singles.iter().map(|s| Some(s.clone().into())))
                .collect();
            if let [a, b, ..] = singles.as_slice() {
                values.push(Some(serde_json::json!([a, b])));
                if *split {
                    values.push(Some(format!("{a} {b}").into()));
                }
            }
            docs = docs
                .into_iter()
                .flat_map(|d| {
                    values.iter().map(move |v| {
                        let mut d = d.clone();
                        if let Some(v) = v {
                            insert(&mut d, path, v.clone());
                        }
                        d
                    })
                })
                .collect();
        }
        docs.into_iter()
            .map(|d| Some(Claims::from_map(d)))
            .chain(self.claims.is_empty().then_some(None))
            .collect()
    }
}

/// Sets the claim at `path` (creating the objects on the way).
fn insert(
    doc: &mut serde_json::Map<String, serde_json::Value>,
    path: &[String],
    v: serde_json::Value,
) {
    let Some((last, inner)) = path.split_last() else {
        return;
    };
    let mut at = doc;
    for seg in inner {
        let next = at
            .entry(seg.clone())
            .or_insert_with(|| serde_json::Value::Object(serde_json::Map::new()));
        if !next.is_object() {
            *next = serde_json::Value::Object(serde_json::Map::new());
        }
        let serde_json::Value::Object(m) = next else {
            return;
        };
        at = m;
    }
    at.insert(last.clone(), v);
}

/// Form-encodes a query name or value (`%XX` for everything but unreserved bytes).
fn form(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            b => format!("%{b:02X}"),
        })
        .collect()
}

/// Calls `f` with every choice of one option per position.
fn choose(options: &[Vec<String>], acc: &mut Vec<String>, f: &mut dyn FnMut(&[String])) {
    match options.split_first() {
        None => f(acc),
        Some((first, rest)) => {
            for o in first {
                acc.push(o.clone());
                choose(rest, acc, f);
                acc.pop();
            }
        }
    }
}
