//! Path templates from observed paths: a segment that varies between paths that
//! agree everywhere else becomes `{*}` (one non-empty segment, see
//! [`PathPattern`]).

use std::collections::{BTreeMap, BTreeSet};

use super::super::pattern::PathPattern;

/// A path as segments; `None` is `{*}`.
type Row = Vec<Option<String>>;

/// The patterns for `paths`: each path, or the template of a group of paths of as
/// many segments that differ in one position (repeated until nothing merges).
/// Every pattern is checked to match the paths it stands for; a path that no
/// pattern names exactly is left out, with a note in `skipped`.
pub(crate) fn templates(paths: &BTreeSet<String>, skipped: &mut Vec<String>) -> Vec<String> {
    let mut rows: BTreeSet<Row> = BTreeSet::new();
    for p in paths {
        let literal = p.parse::<PathPattern>().ok().filter(|pat| pat.matches(p));
        if literal.is_none() || p.contains(['{', '}', '*']) {
            skipped.push(format!("path `{p}` cannot be named by a pattern"));
            continue;
        }
        rows.insert(p.split('/').skip(1).map(|s| Some(s.to_owned())).collect());
    }
    loop {
        let merged = merge_once(&rows);
        if merged == rows {
            break;
        }
        rows = merged;
    }
    let out: Vec<String> = rows.iter().map(text).collect();
    // Checked: each pattern parses and matches a path it stands for.
    out.into_iter()
        .filter(|t| {
            t.parse::<PathPattern>()
                .is_ok_and(|pat| paths.iter().any(|p| pat.matches(p)))
        })
        .collect()
}

/// Merges, for the first position where it can, rows that differ only there.
fn merge_once(rows: &BTreeSet<Row>) -> BTreeSet<Row> {
    let width = rows.iter().map(Vec::len).max().unwrap_or(0);
    for k in 0..width {
        let mut buckets: BTreeMap<Row, BTreeSet<Option<String>>> = BTreeMap::new();
        for r in rows.iter().filter(|r| r.len() > k) {
            let mut rest = r.clone();
            let v = std::mem::take(&mut rest[k]);
            buckets.entry(rest).or_default().insert(v);
        }
        // A position varies once two distinct non-empty segments share the rest.
        let varying = |vs: &BTreeSet<Option<String>>| {
            vs.len() > 1
                && vs
                    .iter()
                    .all(|v| v.as_deref().is_none_or(|s| !s.is_empty()))
        };
        if !buckets.values().any(varying) {
            continue;
        }
        let mut out = BTreeSet::new();
        for r in rows {
            let mut rest = r.clone();
            if r.len() > k {
                rest[k] = None;
                let key = {
                    let mut key = r.clone();
                    key[k] = None;
                    key
                };
                if buckets.get(&key).is_some_and(varying) {
                    out.insert(rest);
                    continue;
                }
            }
            out.insert(r.clone());
        }
        return out;
    }
    rows.clone()
}

fn text(r: &Row) -> String {
    r.iter()
        .map(|s| format!("/{}", s.as_deref().unwrap_or("{*}")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(paths: &[&str]) -> Vec<String> {
        let set = paths.iter().map(|p| (*p).to_owned()).collect();
        templates(&set, &mut Vec::new())
    }

    #[test]
    fn a_varying_segment_becomes_a_wildcard() {
        assert_eq!(t(&["/orders/1", "/orders/2"]), ["/orders/{*}"]);
        assert_eq!(
            t(&["/orders/1/items", "/orders/2/items", "/orders"]),
            ["/orders", "/orders/{*}/items"]
        );
        assert_eq!(t(&["/a/1/x", "/a/2/y"]), ["/a/1/x", "/a/2/y"]);
        assert_eq!(t(&["/"]), ["/"]);
        // `{*}` takes a non-empty segment only.
        assert_eq!(t(&["/a/", "/a/b"]), ["/a/", "/a/b"]);
    }
}
