//! One representative address per class of "which of these networks hold it".
//!
//! CIDR blocks nest or are disjoint, so the classes are: for each block, the block
//! minus the blocks strictly inside it (when not empty), and the addresses outside
//! every block. Each such set is a union of intervals whose ends are a block's first
//! or last address, or next to one; those ends are the representatives.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::super::values::{Cidr, Network};

/// A block as an interval of 128-bit numbers, with its family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Block {
    v6: bool,
    first: u128,
    last: u128,
}

impl Block {
    /// The block of a CIDR, read back from its text (`addr/prefix`).
    fn of(cidr: &Cidr) -> Option<Self> {
        let text = cidr.to_string();
        let (addr, prefix) = text.split_once('/')?;
        let prefix: u32 = prefix.parse().ok()?;
        let (v6, bits, width) = match addr.parse::<IpAddr>().ok()? {
            IpAddr::V4(a) => (false, u128::from(u32::from(a)), 32),
            IpAddr::V6(a) => (true, u128::from(a), 128),
        };
        let host_bits = width - prefix;
        let span = if host_bits == 128 {
            u128::MAX
        } else {
            (1u128 << host_bits) - 1
        };
        Some(Self {
            v6,
            first: bits,
            last: bits | span,
        })
    }
}

fn address(v6: bool, n: u128) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::from(n))
    } else {
        IpAddr::V4(Ipv4Addr::from(u32::try_from(n).unwrap_or(u32::MAX)))
    }
}

/// The addresses of a set of networks' blocks (their CIDRs and `except`s).
#[derive(Debug, Default)]
pub(crate) struct Addresses {
    blocks: BTreeSet<Block>,
}

impl Addresses {
    /// Adds a network and its exceptions.
    pub(crate) fn add(&mut self, n: &Network) {
        for c in std::iter::once(&n.cidr).chain(&n.except) {
            if let Some(b) = Block::of(c) {
                self.blocks.insert(b);
            }
        }
    }

    /// Whether no network was added.
    pub(crate) fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }

    /// One address per class (a few classes get more than one), plus `None` (an
    /// unknown address) when `unknown`.
    pub(crate) fn representatives(&self, unknown: bool) -> Vec<Option<IpAddr>> {
        let mut points: BTreeSet<(bool, u128)> = BTreeSet::new();
        for (v6, max) in [(false, u128::from(u32::MAX)), (true, u128::MAX)] {
            points.insert((v6, 0));
            points.insert((v6, max));
            for b in self.blocks.iter().filter(|b| b.v6 == v6) {
                points.insert((v6, b.first));
                points.insert((v6, b.last));
                if let Some(before) = b.first.checked_sub(1) {
                    points.insert((v6, before));
                }
                if b.last < max {
                    points.insert((v6, b.last + 1));
                }
            }
        }
        let mut out: Vec<Option<IpAddr>> = points
            .into_iter()
            .map(|(v6, n)| Some(address(v6, n)))
            .collect();
        if self.blocks.is_empty() {
            // No network to tell addresses apart: one of each family is enough.
            out = vec![Some(address(false, 0x0a00_0001)), Some(address(true, 1))];
        }
        if unknown {
            out.push(None);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_with_a_hole_has_both_sides_represented() {
        let mut a = Addresses::default();
        let n: Network = Network::new(
            "10.0.0.0/8".parse().unwrap(),
            vec!["10.1.0.0/16".parse().unwrap()],
        )
        .unwrap();
        a.add(&n);
        let reps = a.representatives(true);
        let inside = |ip: &Option<IpAddr>| ip.is_some_and(|ip| n.contains(ip));
        assert!(reps.iter().any(inside));
        assert!(
            reps.iter()
                .flatten()
                .any(|ip| n.cidr.contains(*ip) && !n.contains(*ip))
        );
        assert!(
            reps.iter()
                .flatten()
                .any(|ip| ip.is_ipv4() && !n.cidr.contains(*ip))
        );
        assert!(reps.contains(&None));
    }
}
