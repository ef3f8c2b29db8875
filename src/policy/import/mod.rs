//! Importing Kubernetes manifests, as a one-way pipeline:
//!
//! 1. [`document`]: the manifest stream is read into typed documents (`metadata`,
//!    `spec`), each with its location;
//! 2. [`istio`] and [`linkerd`]: each mesh's objects are translated into the native
//!    [`PolicySpec`](crate::policy::PolicySpec), for the workload the
//!    [`WorkloadContext`](crate::policy::WorkloadContext) describes;
//! 3. this module: dispatch by `apiVersion`/`kind`, the checks that nothing is silently
//!    ignored, and the compiled [`Policy`].
//!
//! Each step uses only the ones before it. Objects of kinds that are not policy are
//! reported in the warnings; unknown kinds of a policy group, and files that authorize
//! nothing, are errors.

mod document;
mod istio;
mod linkerd;

use serde::Deserialize;

use crate::policy::compiled::Policy;
use crate::policy::error::{PolicyError, yaml_error};

/// Collected objects, in file order.
#[derive(Default)]
pub(crate) struct Manifests<'c> {
    /// The workload enforcing, when the caller said which.
    pub(crate) context: Option<&'c crate::policy::workload::WorkloadContext>,
    pub(crate) linkerd: linkerd::Objects,
    pub(crate) istio: istio::Objects,
    pub(crate) warnings: Vec<String>,
}

/// API groups whose kinds are all policy: an unknown kind there is an error, not an
/// object to skip. Groups that merely look like them (`security.istio.oi`) are caught too.
fn is_policy_group(group: &str) -> bool {
    matches!(group, "policy.linkerd.io" | "security.istio.io")
        || (group.contains("istio") || group.contains("linkerd"))
            && !matches!(
                group,
                "networking.istio.io"
                    | "telemetry.istio.io"
                    | "extensions.istio.io"
                    | "install.istio.io"
                    | "linkerd.io"
                    | "multicluster.linkerd.io"
                    | "link.l5d.io"
                    | "workload.linkerd.io"
            )
}

/// The kinds that authorize (or, for a Linkerd `Server`, deny all but what authorizes).
fn is_authorization(group: &str, kind: &str) -> bool {
    matches!(
        (group, kind),
        ("security.istio.io", "AuthorizationPolicy")
            | (
                "policy.linkerd.io",
                "AuthorizationPolicy" | "Server" | "ServerAuthorization"
            )
    )
}

fn group(api_version: &str) -> &str {
    api_version.split_once('/').map_or("", |(g, _)| g)
}

/// Parses every document of `text` and imports the policy it describes.
pub(crate) fn import(
    text: &str,
    context: Option<&crate::policy::workload::WorkloadContext>,
) -> Result<Policy, PolicyError> {
    let mut m = Manifests {
        context,
        ..Manifests::default()
    };
    let mut typed = yaml_serde::Deserializer::from_str(text);
    let (mut authorization_objects, mut request_authentications) = (0usize, 0usize);
    let mut kinds_seen: Vec<String> = Vec::new();
    for (index, doc) in yaml_serde::Deserializer::from_str(text).enumerate() {
        let value = yaml_serde::Value::deserialize(doc).map_err(|e| yaml_error(&e))?;
        let Some(doc) = typed.next() else {
            break;
        };
        if value.is_null() {
            continue;
        }
        let api = value
            .get("apiVersion")
            .and_then(|v| v.as_str())
            .unwrap_or_default();
        let kind = value
            .get("kind")
            .and_then(|v| v.as_str())
            .unwrap_or_default();
        let g = group(api);
        let document = || {
            let name = value
                .get("metadata")
                .and_then(|m| m.get("name"))
                .and_then(|n| n.as_str())
                .unwrap_or("?");
            format!(
                "document {} (`{kind}` `{name}`, apiVersion `{api}`)",
                index + 1
            )
        };
        kinds_seen.push(format!("{kind} ({api})"));
        let handled = match g {
            "policy.linkerd.io" | "gateway.networking.k8s.io" | "" => {
                m.linkerd.read(g, kind, doc, &mut m.warnings)?
            }
            "security.istio.io" => m.istio.read(kind, doc)?,
            _ => false,
        };
        if !handled {
            // A kind of a policy group that meshless does not know is most likely a
            // typo or a newer API: refusing it beats enforcing less than the file says.
            if is_policy_group(g) {
                return Err(PolicyError::unsupported(format!(
                    "{}: not a policy kind meshless knows; check the kind and apiVersion",
                    document()
                )));
            }
            m.warnings.push(format!(
                "ignored object of kind `{kind}` (apiVersion `{api}`): not a policy meshless enforces"
            ));
        } else if is_authorization(g, kind) {
            authorization_objects += 1;
        } else if (g, kind) == ("security.istio.io", "RequestAuthentication") {
            request_authentications += 1;
        }
    }
    // A file of RequestAuthentication alone configures the JWT layer
    // (`Policy::request_authentication`): it is enforced there, and Istio allows what
    // it lets through when no AuthorizationPolicy applies. Say so loudly.
    if authorization_objects == 0 && request_authentications > 0 {
        m.warnings.push(
            "no authorization policy in the manifests, only RequestAuthentication: every request with a valid token, or none, is allowed (as in Istio)".to_owned(),
        );
    } else if authorization_objects == 0 {
        let found = if kinds_seen.is_empty() {
            "nothing".to_owned()
        } else {
            kinds_seen.join(", ")
        };
        return Err(PolicyError::invalid(format!(
            "no authorization policy in the manifests (found {found}): an Istio or Linkerd \
             AuthorizationPolicy, a Linkerd Server or ServerAuthorization; loading it would \
             enforce nothing"
        )));
    }
    let (mut spec, mut warnings, peer_auth, request_auth) = match (
        m.linkerd.is_empty(),
        m.istio.has_authorization(),
    ) {
        (false, true) => {
            return Err(PolicyError::unsupported(
                "the file mixes Linkerd and Istio authorization policies: load one mesh's policies",
            ));
        }
        (false, false) => {
            let (mut spec, mut w) = m.linkerd.into_spec(m.context)?;
            let istio = m.istio.into_spec(m.context)?;
            // Istio's PeerAuthentication is enforced as rules of the Istio spec: they
            // cannot be carried into Linkerd's, so the mix is refused, never dropped.
            if !istio.spec.rules.is_empty() {
                return Err(PolicyError::unsupported(
                    "the file mixes Linkerd policies with Istio PeerAuthentication: load one mesh's policies",
                ));
            }
            spec.skipped.extend(istio.spec.skipped);
            w.extend(istio.warnings);
            (spec, w, istio.peer, istio.request)
        }
        (true, _) => {
            let i = m.istio.into_spec(m.context)?;
            (i.spec, i.warnings, i.peer, i.request)
        }
    };
    warnings.append(&mut m.warnings);
    spec.dry_run = false;
    let mut policy = Policy::compile(spec)?;
    for w in &warnings {
        tracing::warn!(target: "meshless::policy", "{w}");
    }
    policy.warnings.extend(warnings);
    policy.peer_authentication = peer_auth;
    policy.request_authentication = request_auth;
    Ok(policy)
}

#[cfg(test)]
mod tests {
    use crate::policy::Policy;

    const ALLOW_GET: &str = r#"
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-get, namespace: shop}
spec:
  action: ALLOW
  rules: [{to: [{operation: {methods: ["GET"]}}]}]
"#;

    #[test]
    fn a_file_that_authorizes_nothing_is_an_error_not_allow_all() {
        for (text, says) in [
            (
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: b}\n",
                "no authorization policy",
            ),
            (
                "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: p, namespace: shop}\nspec: {mtls: {mode: STRICT}}\n",
                "no authorization policy",
            ),
            (
                &ALLOW_GET.replace("kind: AuthorizationPolicy", "kind: AuthorisationPolicy"),
                "`AuthorisationPolicy` `allow-get`",
            ),
            (
                &ALLOW_GET.replace("security.istio.io/v1", "security.istio.oi/v1"),
                "not a policy kind meshless knows",
            ),
            (
                "apiVersion: policy.linkerd.io/v1beta1\nkind: ServerAuthorisation\nmetadata: {name: s}\nspec: {}\n",
                "document 1 (`ServerAuthorisation` `s`",
            ),
        ] {
            let err = Policy::from_yaml(text).expect_err(text).to_string();
            assert!(err.contains(says), "{err}");
        }
    }

    #[test]
    fn other_objects_beside_a_policy_are_skipped_with_a_warning() {
        let text =
            format!("{ALLOW_GET}---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c}}\n");
        let policy = Policy::from_yaml(&text).unwrap();
        assert!(
            policy.warnings().iter().any(|w| w.contains("`ConfigMap`")),
            "{:?}",
            policy.warnings()
        );
        // RequestAuthentication alone configures the JWT layer: loaded, with a warning.
        let ra = r#"
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: jwt, namespace: shop}
spec:
  jwtRules: [{issuer: "https://idp.example.com", jwksUri: "https://idp.example.com/jwks"}]
"#;
        let policy = Policy::from_yaml(ra).unwrap();
        assert!(
            policy
                .warnings()
                .iter()
                .any(|w| w.contains("only RequestAuthentication")),
            "{:?}",
            policy.warnings()
        );
    }
}
