//! Which route of a server a request goes to: exactly one, ranked as Linkerd ranks
//! HTTPRoutes and GRPCRoutes, so that only that route's rules apply.
//!
//! Linkerd's docs: "A given HTTP request can only match one HTTPRoute. If multiple
//! HTTPRoutes are present that match a request, one will be picked according to the
//! Gateway API rules of precedence." Linkerd's proxy ranks a route by its host match
//! first (exact beats `*.suffix`, longer beats shorter, and any host match beats a
//! route without hostnames), then by its best match: the length of the path it
//! matched (an exact path and a prefix compare by length only), then the number of
//! header matches, query parameter matches, and finally whether it names a method.
//! On a tie the first route wins; Linkerd orders routes by creation time and then by
//! name, and the importer lists them by name.

use std::cmp::Ordering;

use super::attrs::RequestAttrs;
use super::matching::route_match_holds;
use super::model::{RouteMatchSpec, RouteSpec};
use super::pattern::{PathKind, PathPattern, StringMatch, Tseg};

/// How well a route matched a request; greater wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Rank {
    /// 0: the route names no host; 1: a `*.suffix` matched; 2: an exact host.
    host_kind: u8,
    host_len: usize,
    path_len: usize,
    headers: usize,
    /// Linkerd's proxy counts query parameter matches after headers, before the
    /// method (`RequestMatch`'s order; the Gateway API lists the method before both).
    query_params: usize,
    method: bool,
}

/// The literal length a path pattern matched by: an exact path's length, a prefix's
/// without its trailing `/` (at least 1, as `/`); a suffix or `*` counts as `/`; a
/// template counts its literal segments before the first wildcard.
pub(crate) fn path_len(p: &PathPattern) -> usize {
    match p.kind() {
        PathKind::Glob(StringMatch::Exact(t)) => t.len(),
        PathKind::Glob(StringMatch::Prefix(t)) => t.trim_end_matches('/').len().max(1),
        PathKind::Glob(_) => 1,
        PathKind::Template(segs) => {
            let lit: usize = segs
                .iter()
                .take_while(|s| matches!(s, Tseg::Lit(_)))
                .map(|s| match s {
                    Tseg::Lit(l) => l.len() + 1,
                    _ => 0,
                })
                .sum();
            lit.max(1)
        }
    }
}

/// A match's rank: path length, headers, query parameters, method.
type MatchRank = (usize, usize, usize, bool);

fn match_rank(m: &RouteMatchSpec, attrs: &RequestAttrs<'_>) -> Option<MatchRank> {
    if !route_match_holds(m, attrs) {
        return None;
    }
    let path = attrs.http.map(|h| h.path).unwrap_or_default();
    let path_len = match &m.paths {
        None => 1,
        Some(ps) => ps
            .iter()
            .filter(|p| p.matches(path))
            .map(path_len)
            .max()
            .unwrap_or(1),
    };
    Some((
        path_len,
        m.headers.len(),
        m.query_params.len(),
        m.methods.is_some(),
    ))
}

/// The rank of `route` for the request, or `None` when it does not match.
pub(crate) fn rank(route: &RouteSpec, attrs: &RequestAttrs<'_>) -> Option<Rank> {
    let host = attrs.http.and_then(|h| h.host);
    let (host_kind, host_len) = match &route.hosts {
        None => (0, 0),
        Some(hosts) => hosts
            .iter()
            .filter(|h| host.is_some_and(|v| h.0.matches(v)))
            .map(|h| match &h.0 {
                StringMatch::Exact(t) => (2, t.len()),
                StringMatch::Suffix(t) | StringMatch::Prefix(t) => (1, t.len()),
                StringMatch::Any => (1, 0),
            })
            .max()?,
    };
    let (path_len, headers, query_params, method) = if route.matches.is_empty() {
        (1, 0, 0, false)
    } else {
        route
            .matches
            .iter()
            .filter_map(|m| match_rank(m, attrs))
            .max()?
    };
    Some(Rank {
        host_kind,
        host_len,
        path_len,
        headers,
        query_params,
        method,
    })
}

/// The one route the request goes to: the best ranked, the first on a tie.
pub(crate) fn select<'r>(
    routes: &'r [RouteSpec],
    attrs: &RequestAttrs<'_>,
) -> Option<&'r RouteSpec> {
    let mut best: Option<(Rank, &RouteSpec)> = None;
    for r in routes {
        if let Some(k) = rank(r, attrs)
            && best
                .as_ref()
                .is_none_or(|(b, _)| k.cmp(b) == Ordering::Greater)
        {
            best = Some((k, r));
        }
    }
    best.map(|(_, r)| r)
}
