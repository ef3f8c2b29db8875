//! Deployment recipes: where the certificates and the policy come from.
//!
//! meshless reads its TLS material from files ([`FileSource`]) and reloads it when the
//! files change, the way every SPIFFE issuer on Kubernetes delivers it. A replacement
//! that does not parse, whose key does not fit, or that does not chain to the bundle is
//! refused: the last good material stays in force, the error is logged (target
//! `meshless::tls`) and shown by [`FileSource::status`], and open connections are never
//! dropped. The policy comes from a file too ([`PolicyHandle::from_file`], reloaded by
//! [`PolicyHandle::watch`], the last good policy kept on error).
//!
//! # SPIRE, with spiffe-helper
//!
//! [spiffe-helper](https://github.com/spiffe/spiffe-helper) runs beside the workload
//! (a sidecar container or a second process), fetches the X.509-SVID from the SPIRE
//! agent's Workload API and rewrites three files before each expiry:
//!
//! ```text
//! # helper.conf
//! agent_address = "/run/spire/sockets/agent.sock"
//! cert_dir = "/run/svid"
//! svid_file_name = "svid.pem"
//! svid_key_file_name = "svid_key.pem"
//! svid_bundle_file_name = "svid_bundle.pem"
//! daemon_mode = true
//! ```
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use meshless::tls::{FileSource, MtlsAcceptor};
//! let files = FileSource::builder("/run/svid/svid.pem", "/run/svid/svid_key.pem", "/run/svid/svid_bundle.pem")
//!     .start()
//!     .await?;
//! let acceptor = MtlsAcceptor::new(files.source())?;
//! # let _ = acceptor; Ok(()) }
//! ```
//!
//! Bundles of federated trust domains go in with
//! [`FileSourceBuilder::federated_bundle`](crate::tls::FileSourceBuilder::federated_bundle)
//! (PEM or SPIFFE bundle JSON), each trusted for its own trust domain only.
//!
//! # cert-manager, with csi-driver-spiffe
//!
//! cert-manager's csi-driver-spiffe mounts a volume in which it keeps `tls.crt`,
//! `tls.key` and `ca.crt` for the pod's service account
//! (`spiffe://<trust domain>/ns/<namespace>/sa/<service account>`), renewing them
//! before expiry:
//!
//! ```yaml
//! # in the pod spec
//! volumes:
//!   - name: spiffe
//!     csi:
//!       driver: spiffe.csi.cert-manager.io
//!       readOnly: true
//! containers:
//!   - name: orders
//!     volumeMounts:
//!       - name: spiffe
//!         mountPath: /var/run/secrets/spiffe.io
//! ```
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use meshless::tls::FileSource;
//! let dir = std::path::Path::new("/var/run/secrets/spiffe.io");
//! let files = FileSource::builder(dir.join("tls.crt"), dir.join("tls.key"), dir.join("ca.crt"))
//!     .start()
//!     .await?;
//! # let _ = files; Ok(()) }
//! ```
//!
//! # A Kubernetes Secret
//!
//! A Secret (type `kubernetes.io/tls` plus a `ca.crt` key) mounted as a volume has the
//! same three files. The kubelet updates it by writing a new hidden directory and
//! swapping a `..data` symlink atomically; [`FileSource`] reads through the paths and
//! compares contents, so it sees the swap. (A Secret mounted with `subPath` is never
//! updated by the kubelet: mount the whole volume.) Whoever writes the Secret, an
//! operator or a CI job, is then your CA: see the [threat model](super::threat_model).
//!
//! # Linkerd or Istio manifests
//!
//! A team that already writes Linkerd `Server` / `HTTPRoute` / `AuthorizationPolicy` /
//! `MeshTLSAuthentication` or Istio `AuthorizationPolicy` / `PeerAuthentication` /
//! `RequestAuthentication` manifests can enforce them in-process. A repository of
//! manifests covers many workloads; the [`WorkloadContext`] says which one this process
//! is, so that each manifest applies only where the mesh would apply it (Istio: its
//! namespace or the root namespace, narrowed by `selector.matchLabels`; Linkerd: the
//! `Server`'s `podSelector` and port, which may be a container port's name). Documents
//! for other workloads are skipped and listed, never merged.
//!
//! ```no_run
//! use meshless::policy::{Policy, PolicyHandle, WorkloadContext};
//! # fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let me: meshless::SpiffeId = "spiffe://cluster.local/ns/shop/sa/orders".parse()?;
//! let context = WorkloadContext::new()
//!     .identity(me.into())                       // namespace `shop`, service account `orders`
//!     .labels_from_file("/etc/podinfo/labels")?  // the downward API's labels file
//!     .named_port("http", 8080);                 // Linkerd `Server.port: http`
//!
//! // Check once, e.g. in CI or at start-up: what applies, and what was skipped.
//! let policy = Policy::load_for("/etc/meshless/policies.yaml", &context)?;
//! for skipped in policy.skipped() {
//!     println!("not for this workload: {skipped}");
//! }
//!
//! // Serve with a handle that reloads the file for the same workload.
//! let handle = PolicyHandle::from_file_for("/etc/meshless/policies.yaml", context)?;
//! let _watcher = handle.watch("/etc/meshless/policies.yaml", std::time::Duration::from_secs(2));
//! # Ok(()) }
//! ```
//!
//! A Linkerd identity reference to a `ServiceAccount` or `Namespace` means trust domain
//! `cluster.local`; Istio principals keep Istio's reading (any trust domain). Give the
//! workload certificates of the same trust domain the manifests name, and keep the
//! mesh's `PeerAuthentication` in `STRICT` in mind: meshless's acceptor is strict unless
//! built [`permissive`](crate::tls::MtlsAcceptorBuilder::permissive).
//!
//! `cargo run --example policy_check -- --policy FILE --workload ID --label app=orders
//! --method GET --path /x` shows what one workload decides, and why.
//!
//! [`FileSource`]: crate::tls::FileSource
//! [`FileSource::status`]: crate::tls::FileSource::status
//! [`PolicyHandle::from_file`]: crate::policy::PolicyHandle::from_file
//! [`PolicyHandle::watch`]: crate::policy::PolicyHandle::watch
//! [`WorkloadContext`]: crate::policy::WorkloadContext
