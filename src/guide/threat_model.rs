//! The threat model: what meshless defends against, and what it leaves to the platform.
//!
//! meshless enforces, inside one process, that every peer proves a workload identity
//! and that the policy allows what it asks. It is as strong as the identities it is
//! given and the policy it is told; it does not issue identities, and it does not run
//! the machine.
//!
//! # What meshless defends against
//!
//! - **Anyone on the network.** Every connection is mutual TLS (TLS 1.2 or 1.3 with
//!   rustls's safe defaults): traffic cannot be read or altered, and an address proves
//!   nothing. A peer without a valid X.509-SVID of a trusted trust domain is refused at
//!   the handshake; a strict acceptor refuses plaintext outright.
//! - **Impersonation across trust domains.** A peer is verified only against the
//!   bundle of its own trust domain, so a federated (or compromised) CA of domain `b`
//!   cannot mint identities of domain `a`.
//! - **Malformed or over-broad certificates.** The X.509-SVID rules are enforced on
//!   the leaf (exactly one URI SAN, not a CA, digitalSignature, no certificate signing)
//!   and on presented intermediates; each failure is refused with its reason, never
//!   downgraded to "unauthenticated". Chains longer than a configured bound are refused
//!   before they are parsed.
//! - **Revoked or rotated-away identities.** CRLs in the bundle are checked; session
//!   resumption is off, so a revocation or a bundle rotation applies to the next
//!   connection instead of a resumed one (see [`clients`](super::clients)).
//! - **Talking to the wrong server.** Clients check the server's SPIFFE ID against what
//!   the caller expects, not a hostname that DNS could redirect.
//! - **Forged identity headers.** `l5d-client-id`, `x-forwarded-client-cert` and their
//!   `_` spellings arriving from the network are removed; the application reads the
//!   proven [`PeerIdentity`](crate::PeerIdentity). A service that forgot the identity
//!   layer fails closed.
//! - **Reading a request two ways.** Paths not in normal form, encoded slashes,
//!   ambiguous hosts, lower-case standard methods and `_` header names are refused with
//!   400, so the request the policy decides on is the request the app serves.
//! - **Policy mistakes at load time.** A typo, an unknown field, a value that could
//!   never match, or a manifest that authorizes nothing is an error with its location,
//!   never a silently wider policy; a broken reload keeps the last good policy.
//! - **Slow or abundant handshakes.** Handshakes have a timeout and a bound on how many
//!   run at once; TLS material that fails to reload keeps the last good material.
//!
//! # What meshless leaves to the platform
//!
//! - **Node and process compromise.** Whoever can read the workload's private key (root
//!   on the node, a debugger attached to the process, a volume mounted elsewhere) *is*
//!   the workload until the certificate expires or is revoked. Keep SVIDs short-lived
//!   and the key files readable by the workload alone.
//! - **The CA.** meshless trusts the roots it is given. The CA's keys (SPIRE server,
//!   cert-manager issuer, Istio or Linkerd trust anchor), who may write the Secret or
//!   the bundle file, and how federated bundles are exchanged are the platform's
//!   security, not meshless's.
//! - **Attestation.** Which process receives which SVID is decided by the issuer (SPIRE's
//!   node and workload attestation, Kubernetes service accounts for csi-driver-spiffe).
//!   meshless proves the identity the issuer granted; it cannot tell whether the grant
//!   was right.
//! - **Network policy and egress.** Which peers can reach the port at all, and where the
//!   workload may connect out to, belong to Kubernetes `NetworkPolicy`, the CNI or a
//!   firewall. meshless's policy decides what an authenticated peer may do once
//!   connected, and clients check whom they reached; neither stops a connection from
//!   being attempted.
//! - **Resource exhaustion beyond handshakes.** Connection floods, request rates, body
//!   sizes, slow request bodies and per-tenant quotas need limits of their own: tower
//!   layers (timeouts, concurrency and rate limits, body limits), the accept loop's file
//!   descriptor budget, and the platform's load balancer.
//! - **The policy's content.** meshless enforces what the policy says. Deny by default
//!   and `explain` help; reviewing who may do what is the team's job.
//! - **Permissive choices.** [`permissive`](crate::tls::MtlsAcceptorBuilder::permissive),
//!   [`allow_missing_client_certificate`](crate::tls::MtlsAcceptorBuilder::allow_missing_client_certificate),
//!   `dry_run` and an `audit` default relax enforcement by design, for migrations; their
//!   names say so.
//! - **Clocks.** Certificate validity is judged by the local clock; a node with a wrong
//!   clock accepts expired certificates or refuses fresh ones.
//! - **Everything inside the process.** The application's own bugs, its dependencies and
//!   side channels run with the workload's identity and key.
