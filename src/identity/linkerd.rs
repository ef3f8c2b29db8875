//! Linkerd workload identities: DNS names of the form
//! `<sa>.<ns>.serviceaccount.identity.<control-plane-ns>.<trust-domain>`.

use std::fmt;
use std::str::FromStr;

const MARKER: &str = ".serviceaccount.identity.";
const MAX_DNS_NAME_LEN: usize = 253;

/// Why a DNS name is not a Linkerd workload identity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LinkerdIdError {
    /// The name lacks the `.serviceaccount.identity.` part.
    #[error(
        "`{0}` is not a Linkerd identity: expected `<sa>.<ns>.serviceaccount.identity.<control-plane-ns>.<trust-domain>`"
    )]
    Shape(String),
    /// A label is empty, too long, or not a lowercase RFC 1123 label.
    #[error(
        "`{name}` has an invalid DNS label `{label}`: labels are 1-63 lowercase letters, digits or `-`, starting and ending with a letter or digit"
    )]
    Label {
        /// The whole name.
        name: String,
        /// The offending label.
        label: String,
    },
    /// The name is longer than a DNS name may be.
    #[error("Linkerd identity is {0} bytes long, more than the 253 a DNS name may have")]
    TooLong(usize),
}

/// A Linkerd workload identity, the only DNS SAN of a Linkerd proxy's certificate:
/// `<sa>.<ns>.serviceaccount.identity.<control-plane-ns>.<trust-domain>`.
///
/// This is an opt-in second identity scheme beside SPIFFE IDs, for peers whose
/// certificates were issued by Linkerd's identity controller.
///
/// ```
/// use meshless::LinkerdId;
/// let id: LinkerdId = "web.shop.serviceaccount.identity.linkerd.cluster.local".parse()?;
/// assert_eq!(id.service_account(), "web");
/// assert_eq!(id.namespace(), "shop");
/// assert_eq!(id.control_plane_namespace(), "linkerd");
/// assert_eq!(id.trust_domain(), "cluster.local");
/// # Ok::<(), meshless::LinkerdIdError>(())
/// ```
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LinkerdId {
    name: Box<str>,
    /// Byte offsets of the end of `<sa>`, the end of `<ns>`, and the end of the
    /// control-plane namespace.
    sa_end: usize,
    ns_end: usize,
    cp_end: usize,
}

impl LinkerdId {
    /// Parses and validates a Linkerd identity.
    ///
    /// # Errors
    /// [`LinkerdIdError`] when the shape or a DNS label is wrong.
    pub fn parse(name: &str) -> Result<Self, LinkerdIdError> {
        if name.len() > MAX_DNS_NAME_LEN {
            return Err(LinkerdIdError::TooLong(name.len()));
        }
        let shape = || LinkerdIdError::Shape(name.to_owned());
        let marker = name.find(MARKER).ok_or_else(shape)?;
        let (sa_ns, after) = (&name[..marker], &name[marker + MARKER.len()..]);
        let ns_start = sa_ns.rfind('.').ok_or_else(shape)? + 1;
        let cp_len = after.find('.').ok_or_else(shape)?;
        for label in sa_ns.split('.').chain(after.split('.')) {
            if !is_rfc1123_label(label) {
                return Err(LinkerdIdError::Label {
                    name: name.to_owned(),
                    label: label.to_owned(),
                });
            }
        }
        Ok(Self {
            name: name.into(),
            sa_end: ns_start - 1,
            ns_end: marker,
            cp_end: marker + MARKER.len() + cp_len,
        })
    }

    /// The whole DNS name.
    pub fn as_str(&self) -> &str {
        &self.name
    }

    /// The Kubernetes service account.
    pub fn service_account(&self) -> &str {
        &self.name[..self.sa_end]
    }

    /// The Kubernetes namespace.
    pub fn namespace(&self) -> &str {
        &self.name[self.sa_end + 1..self.ns_end]
    }

    /// The namespace of the Linkerd control plane that issued the identity.
    pub fn control_plane_namespace(&self) -> &str {
        &self.name[self.ns_end + MARKER.len()..self.cp_end]
    }

    /// The mesh's trust domain, such as `cluster.local`.
    pub fn trust_domain(&self) -> &str {
        &self.name[self.cp_end + 1..]
    }
}

fn is_rfc1123_label(label: &str) -> bool {
    let b = label.as_bytes();
    let ok = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    (1..=63).contains(&b.len())
        && ok(&b[0])
        && ok(&b[b.len() - 1])
        && b.iter().all(|c| ok(c) || *c == b'-')
}

impl FromStr for LinkerdId {
    type Err = LinkerdIdError;
    fn from_str(s: &str) -> Result<Self, LinkerdIdError> {
        Self::parse(s)
    }
}

impl TryFrom<&str> for LinkerdId {
    type Error = LinkerdIdError;
    fn try_from(s: &str) -> Result<Self, LinkerdIdError> {
        Self::parse(s)
    }
}

impl fmt::Display for LinkerdId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

impl fmt::Debug for LinkerdId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LinkerdId({:?})", &*self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_parts() {
        let id =
            LinkerdId::parse("web-1.shop.serviceaccount.identity.linkerd.cluster.local").unwrap();
        assert_eq!(id.service_account(), "web-1");
        assert_eq!(id.namespace(), "shop");
        assert_eq!(id.control_plane_namespace(), "linkerd");
        assert_eq!(id.trust_domain(), "cluster.local");
        assert_eq!(
            id.to_string(),
            "web-1.shop.serviceaccount.identity.linkerd.cluster.local"
        );
        let dotted = LinkerdId::parse("a.b.ns.serviceaccount.identity.l5d.td").unwrap();
        assert_eq!(
            (dotted.service_account(), dotted.namespace()),
            ("a.b", "ns")
        );
        assert_eq!(dotted.trust_domain(), "td");
    }

    #[test]
    fn rejects_malformed_names() {
        for bad in [
            "",
            "web.shop.svc.cluster.local",
            "shop.serviceaccount.identity.linkerd.cluster.local",
            "web.shop.serviceaccount.identity.linkerd",
            "web.shop.serviceaccount.identity.",
            ".shop.serviceaccount.identity.linkerd.cluster.local",
            "Web.shop.serviceaccount.identity.linkerd.cluster.local",
            "web.shop.serviceaccount.identity.linkerd.cluster..local",
            "web.shop.serviceaccount.identity.linkerd.cluster.local.",
            "-web.shop.serviceaccount.identity.linkerd.cluster.local",
            "web_1.shop.serviceaccount.identity.linkerd.cluster.local",
            "spiffe://cluster.local/ns/shop/sa/web",
        ] {
            assert!(LinkerdId::parse(bad).is_err(), "{bad:?} accepted");
        }
        let long = format!("{}.ns.serviceaccount.identity.l5d.td", "a".repeat(64));
        assert!(matches!(
            LinkerdId::parse(&long),
            Err(LinkerdIdError::Label { .. })
        ));
        let huge = format!("a.ns.serviceaccount.identity.l5d.{}", ["x"; 120].join("."));
        assert!(matches!(
            LinkerdId::parse(&huge),
            Err(LinkerdIdError::TooLong(_))
        ));
    }
}
