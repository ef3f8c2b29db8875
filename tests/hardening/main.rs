//! Hardening suite: adversarial certificates, TLS and HTTP inputs, hostile policy
//! files, slow clients, floods, rotation and reload under load, and graceful shutdown,
//! all through the public server stack (`meshless::serve` + `MtlsAcceptor` +
//! `AuthorizeLayer`) over loopback with certificates made at test time.
//!
//! Fast cases run in every `cargo test`; the slow ones are `#[ignore]`d and run by
//! `scripts/hardening.sh` (figures go to RELIABILITY.md).

#[path = "../common/mod.rs"]
mod common;

mod certs;
mod faults;
mod fuzz_corpus;
mod http_confusion;
mod policy_files;
mod rotation;
mod support;
