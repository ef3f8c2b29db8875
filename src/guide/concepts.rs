//! Concepts: identity, trust domain, bundle, policy, decision.
//!
//! # Identity
//!
//! A workload's identity is a [SPIFFE ID](https://spiffe.io), a URI such as
//! `spiffe://cluster.local/ns/shop/sa/orders`: a trust domain (`cluster.local`) and a
//! path that names the workload within it. Kubernetes platforms (SPIRE's default
//! templates, Istio, cert-manager's csi-driver-spiffe) write the path as
//! `/ns/<namespace>/sa/<service account>`, and [`SpiffeId::namespace`] and
//! [`SpiffeId::service_account`] read it back. Linkerd's DNS-style identities
//! (`orders.shop.serviceaccount.identity.linkerd.cluster.local`) are a second, opt-in
//! scheme ([`LinkerdId`]).
//!
//! An identity is *proven*, never inferred from an address or a header: the peer
//! presents an X.509-SVID (a certificate whose one URI SAN is its SPIFFE ID) and proves
//! it holds the key during the TLS handshake. What a request carries is a
//! [`PeerIdentity`]: the proven identity, or [`Unauthenticated`] with the reason (a
//! plaintext peer in permissive mode), plus the socket addresses.
//!
//! ```
//! use meshless::{SpiffeId, TrustDomain};
//! let id: SpiffeId = "spiffe://cluster.local/ns/shop/sa/orders".parse()?;
//! assert_eq!(id.trust_domain(), &"cluster.local".parse::<TrustDomain>()?);
//! assert_eq!((id.namespace(), id.service_account()), (Some("shop"), Some("orders")));
//! // Exactly the SPIFFE-ID standard: no uppercase folding, no dot segments.
//! assert!("spiffe://Cluster.local/ns/shop".parse::<SpiffeId>().is_err());
//! assert!("spiffe://cluster.local/ns/../sa".parse::<SpiffeId>().is_err());
//! # Ok::<(), meshless::IdError>(())
//! ```
//!
//! # Trust domain
//!
//! The trust domain is the authority that issues identities: one CA hierarchy (a SPIRE
//! server, a cert-manager issuer, Istio's or Linkerd's CA). Every identity belongs to
//! exactly one. Two clusters with different roots are two trust domains, even if both
//! call themselves `cluster.local`; federating them means trusting each one's bundle
//! *for its own name only*.
//!
//! # Bundle
//!
//! A [`TrustBundle`] holds the root certificates (and optional CRLs) of one trust
//! domain; a [`BundleSet`] holds one bundle per trust domain we trust. A certificate
//! claiming `spiffe://a/...` is verified only against `a`'s roots: the CA of a federated
//! domain `b` cannot mint identities of `a`. Our own SVID plus the bundles form
//! [`TlsMaterial`]; a [`TlsSource`] shares the current material with every acceptor,
//! connector and verifier and swaps it atomically on rotation.
//!
//! # Policy
//!
//! A [`Policy`] says who may do what: rules with an action (`allow`, `deny`, `audit`)
//! and clauses `from` (peers), `to` (operations) and `when` (conditions), plus a
//! default, which is `deny` unless said otherwise. It is written in YAML, TOML or JSON,
//! or imported from Linkerd and Istio manifests, and kept outside the code so that it
//! can be reviewed, versioned and reloaded ([`PolicyHandle`]) without a restart. A
//! policy file that does not load is an error with its line and column, and the last
//! good policy stays in force.
//!
//! # Decision
//!
//! A [`Decision`] is the policy's answer for one request: a verdict, the rule that
//! decided (or `default`), and for a denial the reason. A denial is data, not an error;
//! evaluation cannot fail, and anything unexpected is a denial with a reason.
//! [`AuthorizeLayer`] turns a denial into 403 (or gRPC `PERMISSION_DENIED`), logs it
//! (target `meshless::audit`) and counts it; [`Policy::explain`] says why in words.
//!
//! ```
//! # #[cfg(feature = "yaml")] {
//! use meshless::policy::{Policy, RequestAttrs, Verdict};
//! use meshless::{Identity, SpiffeId};
//!
//! let policy = Policy::from_yaml(r#"
//! default: deny
//! rules:
//!   - name: frontend-reads-orders
//!     action: allow
//!     from: [{identities: ["spiffe://example.org/ns/web/sa/frontend"]}]
//!     to: [{methods: [GET], paths: ["/orders/*"]}]
//! "#)?;
//! let frontend: SpiffeId = "spiffe://example.org/ns/web/sa/frontend".parse()?;
//! let frontend = Identity::from(frontend);
//! let attrs = RequestAttrs::connection(Some(&frontend), None, Some(8443));
//! let read = policy.evaluate(&attrs.with_request("GET", "/orders/7"));
//! assert_eq!((read.verdict(), read.rule()), (Verdict::Allow, "frontend-reads-orders"));
//! let delete = policy.evaluate(&attrs.with_request("DELETE", "/orders/7"));
//! assert_eq!(delete.verdict(), Verdict::Deny);
//! assert!(delete.is_default());
//! # }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! [`SpiffeId::namespace`]: crate::SpiffeId::namespace
//! [`SpiffeId::service_account`]: crate::SpiffeId::service_account
//! [`LinkerdId`]: crate::LinkerdId
//! [`PeerIdentity`]: crate::PeerIdentity
//! [`Unauthenticated`]: crate::Unauthenticated
//! [`TrustBundle`]: crate::tls::TrustBundle
//! [`BundleSet`]: crate::tls::BundleSet
//! [`TlsMaterial`]: crate::tls::TlsMaterial
//! [`TlsSource`]: crate::tls::TlsSource
//! [`Policy`]: crate::policy::Policy
//! [`Policy::explain`]: crate::policy::Policy::explain
//! [`PolicyHandle`]: crate::policy::PolicyHandle
//! [`Decision`]: crate::policy::Decision
//! [`AuthorizeLayer`]: crate::authorize::AuthorizeLayer
