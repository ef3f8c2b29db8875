//! The per-request half of each rule (`to` ports, methods and paths) packed into one
//! 64-byte record, so that checking a candidate rule touches one cache line instead
//! of following the boxed fields of its `RuleSpec` (about ten dependent loads, each a
//! cache miss once the policy outgrows the CPU caches).
//!
//! Only the common shape is packed: no `when`, no request-level or remote `from`
//! fields, and `to` entries made of at most one port range, standard methods and
//! paths short enough to fit. Any other rule is marked [`Flat::SLOW`] and checked by
//! `matching::request_matches`, which remains the definition of the semantics; the
//! tests below check that both agree.

use super::attrs::HttpAttrs;
use super::matching::rechecks_from;
use super::model::{OperationSpec, RuleSpec};
use super::pattern::{PathKind, StringMatch, Tseg};

/// Bytes of encoded `to` entries a record holds.
const CODE: usize = 62;

/// The standard methods, one bit each; any other method is [`OTHER_METHOD`].
const METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
];
const OTHER_METHOD: u16 = 1 << 15;
/// A `to` entry without `methods`: every bit, including [`OTHER_METHOD`].
const ANY_METHOD: u16 = u16::MAX;

// Path pattern kinds in the code.
const P_EXACT: u8 = 0;
const P_PREFIX: u8 = 1;
const P_SUFFIX: u8 = 2;
const P_ANY: u8 = 3;
const P_TEMPLATE: u8 = 4;
// Template segment kinds.
const S_LIT: u8 = Tseg::LIT;
const S_ONE: u8 = Tseg::ONE;
const S_REST: u8 = Tseg::REST;

fn method_bit(method: &str) -> u16 {
    METHODS
        .iter()
        .position(|m| *m == method)
        .map_or(OTHER_METHOD, |i| 1 << i)
}

/// One rule's request half.
///
/// Layout of `code`: `entries` `to` entries, each
/// `[has ports: u8][port start: u16][port end: u16][method mask: u16][path count: u8]`
/// followed by
/// its paths, each `[kind: u8][len: u8][bytes]`; a template's bytes are segments
/// `[kind: u8][len: u8][bytes]`. Integers are little-endian.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
pub(crate) struct Flat {
    /// `to` entries in `code`; [`Flat::SLOW`] when the rule is not packed,
    /// [`Flat::ANY`] when it has no `to` clause.
    entries: u8,
    code: [u8; CODE],
}

impl std::fmt::Debug for Flat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Flat")
            .field("entries", &self.entries)
            .finish_non_exhaustive()
    }
}

impl Flat {
    const SLOW: u8 = u8::MAX;
    const ANY: u8 = u8::MAX - 1;

    const fn slow() -> Self {
        Self {
            entries: Self::SLOW,
            code: [0; CODE],
        }
    }

    /// Packs `rule`, or marks it slow.
    pub(crate) fn new(rule: &RuleSpec) -> Self {
        if rule.when.is_some() || rechecks_from(rule) {
            return Self::slow();
        }
        let Some(to) = &rule.to else {
            return Self {
                entries: Self::ANY,
                code: [0; CODE],
            };
        };
        let mut out = Writer {
            code: [0; CODE],
            len: 0,
        };
        let packed = u8::try_from(to.len())
            .ok()
            .filter(|&n| n < Self::ANY)
            .filter(|_| to.iter().all(|op| out.operation(op).is_some()));
        match packed {
            Some(entries) => Self {
                entries,
                code: out.code,
            },
            None => Self::slow(),
        }
    }

    /// Whether the packed `to` clause matches: `None` when the rule is not packed.
    #[inline]
    pub(crate) fn matches(&self, port: Option<u16>, http: &HttpAttrs<'_>) -> Option<bool> {
        match self.entries {
            Self::SLOW => None,
            Self::ANY => Some(true),
            n => Some(self.any_entry(n, port, http)),
        }
    }

    fn any_entry(&self, n: u8, port: Option<u16>, http: &HttpAttrs<'_>) -> bool {
        let method = method_bit(http.method);
        let mut r = Reader {
            code: &self.code,
            at: 0,
        };
        for _ in 0..n {
            let (has_ports, start, end) = (r.u8(), r.u16(), r.u16());
            let (mask, paths) = (r.u16(), r.u8());
            let port_ok = has_ports == 0 || port.is_some_and(|p| (start..=end).contains(&p));
            let mut ok = port_ok && mask & method != 0;
            let mut any_path = paths == 0;
            for _ in 0..paths {
                let (kind, text) = (r.u8(), r.bytes());
                any_path = any_path || (ok && path_matches(kind, text, http.path.as_bytes()));
            }
            ok = ok && any_path;
            if ok {
                return true;
            }
        }
        false
    }
}

fn path_matches(kind: u8, pattern: &[u8], path: &[u8]) -> bool {
    match kind {
        P_EXACT => path == pattern,
        P_PREFIX => path.starts_with(pattern),
        P_SUFFIX => path.ends_with(pattern),
        P_ANY => !path.is_empty(),
        _ => template_matches(pattern, path),
    }
}

/// `PathPattern::matches` for an encoded template.
fn template_matches(segments: &[u8], path: &[u8]) -> bool {
    super::pattern::template_matches(Segments { code: segments }, path)
}

/// The encoded segments of a template, as `(kind, literal)`.
#[derive(Clone)]
struct Segments<'c> {
    code: &'c [u8],
}

impl<'c> Iterator for Segments<'c> {
    type Item = (u8, &'c [u8]);

    fn next(&mut self) -> Option<(u8, &'c [u8])> {
        let (&kind, rest) = self.code.split_first()?;
        let (&len, rest) = rest.split_first()?;
        let (lit, rest) = rest.split_at_checked(usize::from(len))?;
        self.code = rest;
        Some((kind, lit))
    }
}

struct Writer {
    code: [u8; CODE],
    len: usize,
}

impl Writer {
    fn put(&mut self, bytes: &[u8]) -> Option<()> {
        let end = self.len.checked_add(bytes.len())?;
        self.code.get_mut(self.len..end)?.copy_from_slice(bytes);
        self.len = end;
        Some(())
    }

    fn text(&mut self, kind: u8, text: &[u8]) -> Option<()> {
        self.put(&[kind, u8::try_from(text.len()).ok()?])?;
        self.put(text)
    }

    /// Packs one `to` entry; `None` when it has a field this layout cannot hold.
    fn operation(&mut self, op: &OperationSpec) -> Option<()> {
        let simple = op.hosts.is_none()
            && op.not_hosts.is_none()
            && op.authorities.is_none()
            && op.not_authorities.is_none()
            && op.routes.is_none()
            && op.not_routes.is_none()
            && op.not_ports.is_none()
            && op.not_methods.is_none()
            && op.not_paths.is_none();
        if !simple {
            return None;
        }
        let (has_ports, start, end) = match op.ports.as_deref() {
            None => (0, 0, 0),
            Some([r]) if r.start <= r.end => (1, r.start, r.end),
            Some(_) => return None,
        };
        let mask = match &op.methods {
            None => ANY_METHOD,
            Some(ms) => ms.iter().try_fold(0u16, |mask, m| match &m.0 {
                StringMatch::Exact(m) if method_bit(m) != OTHER_METHOD => {
                    Some(mask | method_bit(m))
                }
                _ => None,
            })?,
        };
        let paths = op.paths.as_deref().unwrap_or_default();
        if op.paths.is_some() && paths.is_empty() {
            return None; // an empty list matches nothing; rejected at load anyway
        }
        self.put(&[has_ports])?;
        self.put(&start.to_le_bytes())?;
        self.put(&end.to_le_bytes())?;
        self.put(&mask.to_le_bytes())?;
        self.put(&[u8::try_from(paths.len()).ok()?])?;
        for p in paths {
            match p.kind() {
                PathKind::Glob(StringMatch::Exact(t)) => self.text(P_EXACT, t.as_bytes())?,
                PathKind::Glob(StringMatch::Prefix(t)) => self.text(P_PREFIX, t.as_bytes())?,
                PathKind::Glob(StringMatch::Suffix(t)) => self.text(P_SUFFIX, t.as_bytes())?,
                PathKind::Glob(StringMatch::Any) => self.text(P_ANY, b"")?,
                PathKind::Template(segs) => {
                    let mut inner = Writer {
                        code: [0; CODE],
                        len: 0,
                    };
                    for s in segs {
                        match s {
                            Tseg::Lit(l) => inner.text(S_LIT, l.as_bytes())?,
                            Tseg::One => inner.text(S_ONE, b"")?,
                            Tseg::Rest => inner.text(S_REST, b"")?,
                        }
                    }
                    self.text(P_TEMPLATE, &inner.code[..inner.len])?;
                }
            }
        }
        Some(())
    }
}

/// Reads what [`Writer`] wrote (the code is only ever produced by it).
struct Reader<'c> {
    code: &'c [u8],
    at: usize,
}

impl<'c> Reader<'c> {
    fn u8(&mut self) -> u8 {
        let b = self.code.get(self.at).copied().unwrap_or_default();
        self.at += 1;
        b
    }

    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    fn bytes(&mut self) -> &'c [u8] {
        let len = usize::from(self.u8());
        let start = self.at.min(self.code.len());
        let end = (start + len).min(self.code.len());
        self.at = start + len;
        &self.code[start..end]
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::policy::RequestAttrs;
    use crate::policy::matching::{LocalTrust, request_matches};
    use crate::policy::model::Action;

    fn op(ports: Option<&str>, methods: Option<&[&str]>, paths: Option<&[&str]>) -> String {
        let mut fields = Vec::new();
        if let Some(p) = ports {
            fields.push(format!(r#""ports":[{p}]"#));
        }
        if let Some(m) = methods {
            fields.push(format!(r#""methods":{m:?}"#));
        }
        if let Some(p) = paths {
            fields.push(format!(r#""paths":{p:?}"#));
        }
        format!("{{{}}}", fields.join(","))
    }

    fn rule(to: &[String]) -> RuleSpec {
        let json = format!(r#"{{"name":"r","action":"allow","to":[{}]}}"#, to.join(","));
        serde_json::from_str(&json).unwrap()
    }

    const PATHS: &[&str] = &[
        "/",
        "/a",
        "/a/",
        "/a/b",
        "/a*",
        "/a/*",
        "*",
        "*/b",
        "*.json",
        "/a/{*}",
        "/{*}/b",
        "/a/{**}",
        "/{**}",
        "/a/{*}/c/{**}",
        "/a/{**}/b",
        "/{**}/b",
        "/a/{**}/",
        "/{**}/c/d",
        "/ab/b.json",
    ];
    const REQUEST_PATHS: &[&str] = &[
        "/",
        "/a",
        "/a/",
        "/a/b",
        "/ab",
        "/a/b/c",
        "/a//b",
        "/x/b",
        "/b",
        "/a/b.json",
        "/ab/b.json",
        "/a/x/c/d",
        "/a/x/c",
        "/a/x/y/b",
        "/q/c/d",
        "",
    ];
    const REQUEST_METHODS: &[&str] = &["GET", "POST", "HEAD", "PATCH", "PURGE", "get"];

    fn arb_op() -> impl Strategy<Value = String> {
        let ports = prop::option::of(prop_oneof![
            Just("8443".to_owned()),
            Just(r#""8000-8999""#.to_owned()),
            Just(r#"80,443"#.to_owned()),
        ]);
        let methods = prop::option::of(prop::sample::subsequence(
            vec!["GET", "POST", "HEAD", "PATCH", "PURGE", "DELETE"],
            1..4,
        ));
        let paths = prop::option::of(prop::sample::subsequence(PATHS.to_vec(), 1..4));
        (ports, methods, paths)
            .prop_map(|(po, m, pa)| op(po.as_deref(), m.as_deref(), pa.as_deref()))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// The packed record decides exactly as `request_matches` on the spec.
        #[test]
        fn packed_agrees_with_spec(
            to in prop::collection::vec(arb_op(), 0..4),
            path in prop::sample::select(REQUEST_PATHS),
            method in prop::sample::select(REQUEST_METHODS),
            port in prop::option::of(prop::sample::select(vec![80u16, 443, 8443, 8500, 9000])),
        ) {
            let rule = if to.is_empty() { RuleSpec::new("r", Action::Allow) } else { rule(&to) };
            let flat = Flat::new(&rule);
            let attrs = RequestAttrs::connection(None, None, port).with_request(method, path);
            let spec = request_matches(&rule, LocalTrust::default(), &attrs);
            if let Some(fast) = flat.matches(port, attrs.http.as_ref().unwrap()) {
                prop_assert_eq!(fast, spec, "rule {:?}", rule.to);
            }
        }
    }

    #[test]
    fn common_rules_are_packed_and_odd_ones_are_not() {
        let packed = rule(&[op(
            Some("8443"),
            Some(&["GET", "POST"]),
            Some(&["/svc/items/{*}"]),
        )]);
        assert_ne!(Flat::new(&packed).entries, Flat::SLOW);
        let long = format!("/{}", "x".repeat(80));
        for odd in [
            rule(&[op(Some("80,443"), None, None)]),
            rule(&[op(None, Some(&["PURGE"]), None)]),
            rule(&[op(None, Some(&["GE*"]), None)]),
            rule(&[op(None, None, Some(&[long.as_str()]))]),
            rule(&[r#"{"hosts":["a.example"]}"#.to_owned()]),
            rule(&[r#"{"authorities":["a.example:443"]}"#.to_owned()]),
            rule(&[r#"{"not_paths":["/a"]}"#.to_owned()]),
        ] {
            assert_eq!(Flat::new(&odd).entries, Flat::SLOW, "{:?}", odd.to);
        }
        // The client behind a proxy changes per request: its `from` is re-checked.
        let remote: RuleSpec = serde_json::from_str(
            r#"{"name":"r","action":"allow","from":[{"remote_networks":["10.0.0.0/8"]}],"to":[{"methods":["GET"]}]}"#,
        )
        .unwrap();
        assert_eq!(Flat::new(&remote).entries, Flat::SLOW);
    }
}
