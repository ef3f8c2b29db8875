//! The steps of the search, the candidate values of each, and the rules still
//! possible ([`Live`]).

use std::net::IpAddr;

use http::HeaderMap;

use super::super::attrs::RequestAttrs;
use super::super::model::{OperationSpec, RouteSpec, RuleSpec, SourceSpec};
use super::probe::{HttpProbe, Probe};
use super::requests::RequestAtoms;
use super::shape::{Caller, RequestShape};
use crate::{Claims, RequestPrincipal};

/// The attributes, in the order the search fixes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    Remote,
    Port,
    Method,
    Principal,
    Path,
    Host,
    Query,
    Headers,
    Claims,
    Done,
}

impl Step {
    /// The step after this one.
    pub(crate) fn next(self) -> Self {
        match self {
            Self::Remote => Self::Port,
            Self::Port => Self::Method,
            Self::Method => Self::Principal,
            Self::Principal => Self::Path,
            Self::Path => Self::Host,
            Self::Host => Self::Query,
            Self::Query => Self::Headers,
            Self::Headers => Self::Claims,
            Self::Claims | Self::Done => Self::Done,
        }
    }

    /// Whether only HTTP requests have this attribute.
    pub(crate) fn is_http_only(self) -> bool {
        !matches!(self, Self::Remote | Self::Port | Self::Method | Self::Done)
    }
}

/// A candidate value of one step.
#[derive(Debug, Clone)]
pub(crate) enum Value {
    /// Leave the probe as it is (the value was fixed with another).
    Keep,
    Remote(Option<IpAddr>),
    Port(Option<u16>),
    Tcp,
    Http(Box<HttpProbe>),
    Principal(Option<RequestPrincipal>),
    Path(String),
    Host(Option<(String, String)>),
    Query(Option<String>),
    Headers(HeaderMap),
    Claims(Option<Claims>),
}

impl Value {
    /// Sets the value into `probe`.
    pub(crate) fn apply(&self, probe: &mut Probe) {
        match self {
            Self::Keep => {}
            Self::Remote(ip) => probe.remote_ip = *ip,
            Self::Port(p) => probe.port = *p,
            Self::Tcp => probe.http = None,
            Self::Http(h) => probe.http = Some((**h).clone()),
            other => {
                if let Some(http) = &mut probe.http {
                    match other {
                        Self::Principal(p) => http.principal.clone_from(p),
                        Self::Path(p) => http.path.clone_from(p),
                        Self::Host(h) => http.host.clone_from(h),
                        Self::Query(q) => http.query.clone_from(q),
                        Self::Headers(h) => http.headers.clone_from(h),
                        Self::Claims(c) => http.claims.clone_from(c),
                        _ => {}
                    }
                }
            }
        }
    }
}

/// The candidates of `step`: the fixed value when the caller or the request is
/// given, else one per class of `atoms`.
pub(crate) fn values(
    step: Step,
    caller: Option<&Caller>,
    shape: Option<&RequestShape>,
    probe: &Probe,
    atoms: &RequestAtoms,
) -> Vec<Value> {
    match (step, caller, shape) {
        (Step::Remote, Some(c), _) => vec![Value::Remote(c.remote_ip)],
        (Step::Remote, None, _) => atoms
            .remotes(probe.source_ip)
            .into_iter()
            .map(Value::Remote)
            .collect(),
        (Step::Port, _, Some(s)) => vec![Value::Port(s.port)],
        (Step::Port, _, None) => atoms
            .ports()
            .into_iter()
            .map(|p| Value::Port(Some(p)))
            .collect(),
        (Step::Method, _, Some(s)) => vec![match &s.http {
            Some(h) => Value::Http(Box::new(h.clone())),
            None => Value::Tcp,
        }],
        (Step::Method, _, None) => std::iter::once(Value::Tcp)
            .chain(atoms.methods().into_iter().map(|m| {
                Value::Http(Box::new(HttpProbe {
                    method: m,
                    path: "/".to_owned(),
                    ..HttpProbe::default()
                }))
            }))
            .collect(),
        (Step::Principal, Some(c), _) => vec![Value::Principal(c.principal.clone())],
        (Step::Principal, None, _) => atoms
            .principals()
            .into_iter()
            .map(Value::Principal)
            .collect(),
        (Step::Path | Step::Host | Step::Query, _, Some(_)) => vec![Value::Keep],
        (Step::Path, _, None) => atoms.paths().into_iter().map(Value::Path).collect(),
        (Step::Host, _, None) => atoms.hosts().into_iter().map(Value::Host).collect(),
        (Step::Query, _, None) => atoms.queries().into_iter().map(Value::Query).collect(),
        (Step::Headers, _, Some(s)) if s.headers_given => vec![Value::Keep],
        (Step::Headers, _, _) => atoms.headers().into_iter().map(Value::Headers).collect(),
        (Step::Claims, Some(c), _) => vec![Value::Claims(c.claims.clone())],
        (Step::Claims, None, _) if probe.http.as_ref().is_none_or(|h| h.principal.is_none()) => {
            vec![Value::Claims(None)]
        }
        (Step::Claims, None, _) => atoms.claims().into_iter().map(Value::Claims).collect(),
        (Step::Done, ..) => vec![Value::Keep],
    }
}

/// Whether the fields of `o` that `step` fixes hold for `probe`.
pub(crate) fn operation_holds(o: &OperationSpec, step: Step, probe: &Probe) -> bool {
    fn check<T>(field: &Option<Box<[T]>>, negated: bool, hit: impl Fn(&T) -> bool) -> bool {
        field
            .as_ref()
            .is_none_or(|vs| vs.iter().any(hit) != negated)
    }
    let http = probe.http.as_ref();
    match step {
        Step::Port => {
            let hit =
                |r: &super::super::values::PortRange| probe.port.is_some_and(|p| r.contains(p));
            check(&o.ports, false, hit) && check(&o.not_ports, true, hit)
        }
        Step::Method => {
            let m = http.map_or("", |h| h.method.as_str());
            let hit = |p: &super::super::values::MethodPattern| p.0.matches(m);
            check(&o.methods, false, hit) && check(&o.not_methods, true, hit)
        }
        Step::Path => {
            let path = http.map_or("", |h| h.path.as_str());
            let hit = |p: &super::super::pattern::PathPattern| p.matches(path);
            check(&o.paths, false, hit) && check(&o.not_paths, true, hit)
        }
        Step::Host => {
            let (host, authority) = match http.and_then(|h| h.host.as_ref()) {
                Some((h, a)) => (Some(h.as_str()), Some(a.as_str())),
                None => (None, None),
            };
            let hh = |p: &super::super::values::HostPattern| host.is_some_and(|v| p.0.matches(v));
            let ah = |p: &super::super::values::AuthorityPattern| {
                authority.is_some_and(|v| p.0.matches(v))
            };
            check(&o.hosts, false, hh)
                && check(&o.not_hosts, true, hh)
                && check(&o.authorities, false, ah)
                && check(&o.not_authorities, true, ah)
        }
        _ => true,
    }
}

/// Which of a route's patterns for the attribute of `step` hold.
pub(crate) fn route_signature(
    step: Step,
    route: &RouteSpec,
    attrs: &RequestAttrs<'_>,
) -> Vec<bool> {
    let Some(http) = attrs.http else {
        return Vec::new();
    };
    match step {
        Step::Host => route
            .hosts
            .iter()
            .flatten()
            .map(|h| http.host.is_some_and(|v| h.0.matches(v)))
            .collect(),
        Step::Method => route
            .matches
            .iter()
            .flat_map(|m| m.methods.iter().flatten())
            .map(|p| p.0.matches(http.method))
            .collect(),
        Step::Path => route
            .matches
            .iter()
            .flat_map(|m| m.paths.iter().flatten())
            .map(|p| p.matches(http.path))
            .collect(),
        Step::Query => route
            .matches
            .iter()
            .flat_map(|m| &m.query_params)
            .map(|q| {
                http.query
                    .is_some_and(|query| super::super::query::has_pair(query, &q.name, &q.value))
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// A rule still possible, with the entries of its clauses still possible (bit `i`
/// for entry `i`; entries past 128 are always kept).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Live {
    pub(crate) policy: u8,
    pub(crate) id: u32,
    from: u128,
    to: u128,
}

/// The bits of a clause of `n` entries.
fn full(n: usize) -> u128 {
    if n >= 128 {
        u128::MAX
    } else {
        (1u128 << n) - 1
    }
}

impl Live {
    /// Rule `id` of policy `p`, with every entry possible.
    pub(crate) fn new(p: usize, id: u32, rule: &RuleSpec) -> Self {
        Self {
            policy: u8::try_from(p).unwrap_or(u8::MAX),
            id,
            from: full(rule.from.as_ref().map_or(128, |f| f.len())),
            to: full(rule.to.as_ref().map_or(128, |t| t.len())),
        }
    }

    /// Keeps the `from` entries `ok` accepts; `None` when none is left.
    pub(crate) fn keep_from(
        mut self,
        rule: &RuleSpec,
        ok: impl Fn(&SourceSpec) -> bool,
    ) -> Option<Self> {
        let Some(from) = &rule.from else {
            return Some(self);
        };
        self.from = filter(self.from, from, ok);
        (self.from != 0).then_some(self)
    }

    /// Keeps the `to` entries `ok` accepts; `None` when none is left.
    pub(crate) fn keep_to(
        mut self,
        rule: &RuleSpec,
        ok: impl Fn(&OperationSpec) -> bool,
    ) -> Option<Self> {
        let Some(to) = &rule.to else {
            return Some(self);
        };
        self.to = filter(self.to, to, ok);
        (self.to != 0).then_some(self)
    }

    /// The `from` entries still possible.
    pub(crate) fn froms<'r>(&self, rule: &'r RuleSpec) -> impl Iterator<Item = &'r SourceSpec> {
        let bits = self.from;
        rule.from
            .iter()
            .flat_map(|f| f.iter())
            .enumerate()
            .filter(move |(i, _)| *i >= 128 || bits >> i & 1 == 1)
            .map(|(_, s)| s)
    }

    /// The `to` entries still possible.
    pub(crate) fn tos<'r>(&self, rule: &'r RuleSpec) -> impl Iterator<Item = &'r OperationSpec> {
        let bits = self.to;
        rule.to
            .iter()
            .flat_map(|t| t.iter())
            .enumerate()
            .filter(move |(i, _)| *i >= 128 || bits >> i & 1 == 1)
            .map(|(_, o)| o)
    }
}

/// `bits` without the entries `ok` refuses (entries past 128 stay).
fn filter<T>(bits: u128, entries: &[T], ok: impl Fn(&T) -> bool) -> u128 {
    let mut out = bits;
    for (i, e) in entries.iter().enumerate().take(128) {
        if out >> i & 1 == 1 && !ok(e) {
            out &= !(1u128 << i);
        }
    }
    if entries.len() > 128 {
        out | 1 << 127
    } else {
        out
    }
}
