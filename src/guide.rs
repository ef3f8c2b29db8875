//! The meshless guide: concepts, deployment recipes, the threat model, and how to test
//! your own service. Documentation only; nothing here is code you call.
//!
//! Modelled on rustls's `manual`: each chapter is a module, read in order or on its
//! own.
//!
//! 1. [`concepts`] — identity, trust domain, bundle, policy, decision: the five words
//!    the rest of the crate is built on.
//! 2. [`deployment`] — where certificates and policies come from in production: SPIRE's
//!    spiffe-helper, cert-manager's csi-driver-spiffe, a Kubernetes Secret, and the
//!    Linkerd or Istio manifests a team already keeps.
//! 3. [`clients`] — calling other services: hyper through [`MtlsConnector`], reqwest and
//!    anything else that takes a `rustls::ClientConfig`, tonic `Channel`s.
//! 4. [`threat_model`] — what meshless defends against, and what it leaves to the
//!    platform.
//! 5. [`testing`] — testing your own service over real mutual TLS with
//!    [`TestCa`](crate::testing::TestCa) (feature `testing`).
//!
//! In one paragraph: every connection is mutual TLS; the peer proves a SPIFFE ID with
//! an X.509-SVID that chains to the bundle of *its own* trust domain; a deny-by-default
//! policy, kept outside the code, decides per request what that identity may do; the
//! decision is logged and counted; the application reads the proven identity and never
//! a header that claims one.
//!
//! [`MtlsConnector`]: crate::MtlsConnector

pub mod clients;
pub mod concepts;
pub mod deployment;
pub mod testing;
pub mod threat_model;
