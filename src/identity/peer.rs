//! What a connection (and so every request on it) proves about its peer.

use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use arc_swap::ArcSwapOption;

use super::linkerd::LinkerdId;
use super::spiffe_id::{SpiffeId, TrustDomain};

/// A cryptographically proven workload identity.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Identity {
    /// A SPIFFE ID from an X.509-SVID whose chain was verified against the bundle of
    /// its own trust domain.
    Spiffe(SpiffeId),
    /// A Linkerd DNS identity (opt-in).
    Linkerd(LinkerdId),
}

impl Identity {
    /// The SPIFFE ID, when the identity is one.
    pub fn spiffe_id(&self) -> Option<&SpiffeId> {
        match self {
            Self::Spiffe(id) => Some(id),
            Self::Linkerd(_) => None,
        }
    }

    /// The identity as text: the SPIFFE ID or the Linkerd DNS name.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Spiffe(id) => id.as_str(),
            Self::Linkerd(id) => id.as_str(),
        }
    }

    /// The Kubernetes namespace the identity names, for either scheme.
    pub fn namespace(&self) -> Option<&str> {
        match self {
            Self::Spiffe(id) => id.namespace(),
            Self::Linkerd(id) => Some(id.namespace()),
        }
    }

    /// The Kubernetes service account the identity names, for either scheme.
    pub fn service_account(&self) -> Option<&str> {
        match self {
            Self::Spiffe(id) => id.service_account(),
            Self::Linkerd(id) => Some(id.service_account()),
        }
    }

    /// The trust domain: a SPIFFE ID's, or a Linkerd identity's DNS trust domain.
    pub fn trust_domain(&self) -> &str {
        match self {
            Self::Spiffe(id) => id.trust_domain().as_str(),
            Self::Linkerd(id) => id.trust_domain(),
        }
    }
}

impl From<SpiffeId> for Identity {
    fn from(id: SpiffeId) -> Self {
        Self::Spiffe(id)
    }
}

impl From<LinkerdId> for Identity {
    fn from(id: LinkerdId) -> Self {
        Self::Linkerd(id)
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Spiffe(id) => fmt::Debug::fmt(id, f),
            Self::Linkerd(id) => fmt::Debug::fmt(id, f),
        }
    }
}

/// Why a peer carries no identity. Policy decides whether such a peer is let in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Unauthenticated {
    /// The peer spoke plaintext (only possible in permissive mode).
    Plaintext,
    /// The peer completed TLS without a client certificate (only possible when client
    /// certificates are optional).
    NoClientCertificate,
}

impl fmt::Display for Unauthenticated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Plaintext => "plaintext",
            Self::NoClientCertificate => "no client certificate",
        })
    }
}

/// What a request carries about its peer: the proven identity, or why there is none,
/// plus the connection's addresses.
///
/// ```
/// use meshless::{PeerIdentity, SpiffeId, Unauthenticated};
/// let id: SpiffeId = "spiffe://example.org/ns/web/sa/frontend".parse()?;
/// let peer = PeerIdentity::authenticated(id.clone()).with_remote_addr("10.0.0.7:51000".parse()?);
/// assert_eq!(peer.spiffe_id(), Some(&id));
/// assert!(PeerIdentity::unauthenticated(Unauthenticated::Plaintext).identity().is_none());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// Cloning is cheap (one reference count): `meshless::serve` attaches a clone to every
/// request of a connection.
#[derive(Clone)]
pub struct PeerIdentity {
    inner: Arc<Inner>,
}

#[derive(Clone)]
struct Inner {
    auth: Result<Identity, Unauthenticated>,
    remote_addr: Option<SocketAddr>,
    local_addr: Option<SocketAddr>,
    /// The identity-dependent half of the policy, resolved on the connection's first
    /// request and shared by every later one (checked against the policy's generation,
    /// so a reload is never bypassed). Crate-private; not part of equality.
    policy_cache: Arc<ArcSwapOption<crate::policy::PeerRules>>,
    /// The identity headers for the application, built on the first request that sets
    /// them (boxed: most connections never do). Crate-private; not part of equality.
    identity_headers: OnceLock<Option<Box<crate::authorize::IdentityHeaders>>>,
}

impl PartialEq for PeerIdentity {
    fn eq(&self, other: &Self) -> bool {
        let (a, b) = (&*self.inner, &*other.inner);
        a.auth == b.auth && a.remote_addr == b.remote_addr && a.local_addr == b.local_addr
    }
}

impl Eq for PeerIdentity {}

impl PeerIdentity {
    /// A peer that proved `identity`.
    pub fn authenticated(identity: impl Into<Identity>) -> Self {
        Self::new(Ok(identity.into()))
    }

    /// A peer that proved nothing, for `reason`.
    pub fn unauthenticated(reason: Unauthenticated) -> Self {
        Self::new(Err(reason))
    }

    fn new(auth: Result<Identity, Unauthenticated>) -> Self {
        Self {
            inner: Arc::new(Inner {
                auth,
                remote_addr: None,
                local_addr: None,
                policy_cache: Arc::default(),
                identity_headers: OnceLock::new(),
            }),
        }
    }

    pub(crate) fn policy_cache(&self) -> &ArcSwapOption<crate::policy::PeerRules> {
        &self.inner.policy_cache
    }

    pub(crate) fn identity_headers(
        &self,
    ) -> &OnceLock<Option<Box<crate::authorize::IdentityHeaders>>> {
        &self.inner.identity_headers
    }

    /// Sets the peer's socket address.
    pub fn with_remote_addr(mut self, addr: SocketAddr) -> Self {
        Arc::make_mut(&mut self.inner).remote_addr = Some(addr);
        self
    }

    /// Sets our own socket address on the connection (its port is the destination port
    /// policy sees).
    pub fn with_local_addr(mut self, addr: SocketAddr) -> Self {
        Arc::make_mut(&mut self.inner).local_addr = Some(addr);
        self
    }

    /// The proven identity, if any.
    pub fn identity(&self) -> Option<&Identity> {
        self.inner.auth.as_ref().ok()
    }

    /// The proven SPIFFE ID, if the peer has one.
    pub fn spiffe_id(&self) -> Option<&SpiffeId> {
        self.identity().and_then(Identity::spiffe_id)
    }

    /// The trust domain of a proven SPIFFE ID.
    pub fn trust_domain(&self) -> Option<&TrustDomain> {
        self.spiffe_id().map(SpiffeId::trust_domain)
    }

    /// True when the peer proved an identity.
    pub fn is_authenticated(&self) -> bool {
        self.inner.auth.is_ok()
    }

    /// Why the peer is unauthenticated, if it is.
    pub fn unauthenticated_reason(&self) -> Option<Unauthenticated> {
        self.inner.auth.as_ref().err().copied()
    }

    /// The peer's socket address, when known.
    pub fn remote_addr(&self) -> Option<SocketAddr> {
        self.inner.remote_addr
    }

    /// Our socket address on the connection, when known.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.inner.local_addr
    }
}

impl fmt::Debug for PeerIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("PeerIdentity");
        match &self.inner.auth {
            Ok(id) => d.field("identity", id),
            Err(reason) => d.field("unauthenticated", reason),
        };
        d.field("remote_addr", &self.inner.remote_addr)
            .field("local_addr", &self.inner.local_addr)
            .finish()
    }
}

impl fmt::Display for PeerIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.inner.auth {
            Ok(id) => write!(f, "{id}"),
            Err(reason) => write!(f, "unauthenticated ({reason})"),
        }
    }
}
