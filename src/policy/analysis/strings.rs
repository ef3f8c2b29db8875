//! One representative string per class of "which of these patterns match it".
//!
//! A [`StringMatch`](crate::policy::StringMatch) is exact, `prefix*`, `*suffix` or `*`, so the class of a value
//! `v` is fixed by whether it is empty, which exact texts it equals, and — when it
//! equals none — the longest prefix `p` and the longest suffix `s` it carries: every
//! matching prefix is a prefix of `p`, every matching suffix a suffix of `s`. So
//! `p + filler + s` is in the class of `v` as long as the filler starts with a
//! character no longer prefix continues `p` with, ends with one no longer suffix
//! precedes `s` with, and the result is no exact text. The representatives are then
//! `""`, every exact text, and one such value per pair of (prefix or nothing,
//! suffix or nothing): exactly one value per class, plus at most a few that share
//! one.

use std::collections::BTreeSet;

use super::super::pattern::StringMatch;

/// The characters fillers are made of, for each kind of value.
pub(crate) const LOWER: &[u8] = b"xqzjkwv0123456789";
/// Fillers for JWT principals (`iss/sub`: they hold a `/`).
pub(crate) const PRINCIPAL: &[u8] = b"xqzjkwv0123456789/";
/// Fillers for methods (upper-case tokens).
pub(crate) const UPPER: &[u8] = b"XQZJKWV";

/// The literal texts of a set of patterns, sorted for range queries.
#[derive(Debug, Default, Clone)]
pub(crate) struct Literals {
    exact: BTreeSet<String>,
    prefixes: BTreeSet<String>,
    /// Suffixes, reversed, so that "ends with" is a range query too.
    suffixes_rev: BTreeSet<String>,
}

impl Literals {
    /// Adds a pattern.
    pub(crate) fn add(&mut self, m: &StringMatch) {
        match m {
            StringMatch::Exact(t) => {
                self.exact.insert(t.to_string());
            }
            StringMatch::Prefix(t) => {
                self.prefixes.insert(t.to_string());
            }
            StringMatch::Suffix(t) => {
                self.suffixes_rev.insert(t.chars().rev().collect());
            }
            StringMatch::Any => {}
        }
    }

    /// Adds a literal value (an exact match).
    pub(crate) fn add_exact(&mut self, text: &str) {
        self.exact.insert(text.to_owned());
    }

    /// Adds a prefix.
    pub(crate) fn add_prefix(&mut self, text: &str) {
        self.prefixes.insert(text.to_owned());
    }

    /// Adds a suffix.
    pub(crate) fn add_suffix(&mut self, text: &str) {
        self.suffixes_rev.insert(text.chars().rev().collect());
    }

    /// Whether no pattern was added.
    pub(crate) fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.prefixes.is_empty() && self.suffixes_rev.is_empty()
    }

    /// Whether some element of `set` starts with `start`.
    fn any_starts_with(set: &BTreeSet<String>, start: &str) -> bool {
        set.range(start.to_owned()..)
            .next()
            .is_some_and(|s| s.starts_with(start))
    }

    /// One value per class (see the module docs) among the values `valid` accepts;
    /// a filled value `valid` refuses is replaced by one with a longer filler.
    pub(crate) fn representatives(
        &self,
        alphabet: &[u8],
        valid: &dyn Fn(&str) -> bool,
    ) -> Vec<String> {
        self.representatives_avoiding(alphabet, valid, &|_| false)
    }

    /// [`representatives`](Self::representatives) whose filled values are none of
    /// those `avoid` names (values that other patterns compare with as a whole).
    pub(crate) fn representatives_avoiding(
        &self,
        alphabet: &[u8],
        valid: &dyn Fn(&str) -> bool,
        avoid: &dyn Fn(&str) -> bool,
    ) -> Vec<String> {
        let filled_ok = |v: &str| valid(v) && !avoid(v);
        let mut out: Vec<String> = std::iter::once(String::new())
            .chain(self.exact.iter().cloned())
            .filter(|v| valid(v))
            .collect();
        let prefixes: Vec<&str> = std::iter::once("")
            .chain(self.prefixes.iter().map(String::as_str))
            .collect();
        let suffixes: Vec<String> = std::iter::once(String::new())
            .chain(self.suffixes_rev.iter().map(|r| r.chars().rev().collect()))
            .collect();
        for p in &prefixes {
            let Some(first) = self.first_char(p, alphabet) else {
                continue;
            };
            for s in &suffixes {
                if let Some(v) = self.fill(p, first, s, alphabet, &filled_ok) {
                    out.push(v);
                }
            }
        }
        out.sort();
        out.dedup();
        out
    }

    /// A character no longer prefix continues `p` with.
    fn first_char(&self, p: &str, alphabet: &[u8]) -> Option<char> {
        alphabet.iter().map(|&b| char::from(b)).find(|c| {
            let mut start = p.to_owned();
            start.push(*c);
            !Self::any_starts_with(&self.prefixes, &start)
        })
    }

    /// `p + first + middle + last + s`, with `last` a character no longer suffix
    /// precedes `s` with, and the middle chosen so that the value is no exact text.
    fn fill(
        &self,
        p: &str,
        first: char,
        s: &str,
        alphabet: &[u8],
        valid: &dyn Fn(&str) -> bool,
    ) -> Option<String> {
        let rev_s: String = s.chars().rev().collect();
        let last = alphabet.iter().map(|&b| char::from(b)).find(|c| {
            let mut start = rev_s.clone();
            start.push(*c);
            !Self::any_starts_with(&self.suffixes_rev, &start)
        })?;
        let middles = std::iter::once(String::new())
            .chain(alphabet.iter().map(|&b| char::from(b).to_string()))
            .chain(alphabet.iter().map(|&b| format!("{0}{0}", char::from(b))));
        for middle in middles {
            let v = format!("{p}{first}{middle}{last}{s}");
            if !self.exact.contains(&v) && valid(&v) {
                return Some(v);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(pats: &[StringMatch], v: &str) -> Vec<bool> {
        pats.iter().map(|p| p.matches(v)).collect()
    }

    #[test]
    fn every_class_of_a_value_pool_has_a_representative() {
        let pats: Vec<StringMatch> = ["/a", "/a*", "/ab*", "*b", "*/b", "*", "/a/b", "x*"]
            .iter()
            .map(|p| StringMatch::parse(p).unwrap())
            .collect();
        let mut lits = Literals::default();
        pats.iter().for_each(|p| lits.add(p));
        let reps = lits.representatives(LOWER, &|_| true);
        let classes: Vec<Vec<bool>> = reps.iter().map(|r| class(&pats, r)).collect();
        for v in [
            "", "/", "/a", "/ab", "/a/b", "/abb", "/b", "b", "xb", "x", "/ac", "/a/c", "zz",
        ] {
            assert!(classes.contains(&class(&pats, v)), "{v}: {reps:?}");
        }
    }
}
