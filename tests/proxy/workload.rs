//! `[workload]`: a repository of Istio manifests for many workloads, enforced by the
//! proxy only where Istio would apply them to the pod it guards.

use crate::harness::*;
use crate::http::inbound_config;

/// Two workloads of namespace `shop` (the proxy's SVID is `ns/shop/sa/orders`): an
/// `allow-nothing` for the namespace, a GET-only policy for `app: orders`, and an
/// everything policy for `app: payments` that must never reach the orders pod.
const MANIFESTS: &str = r#"
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-nothing, namespace: shop}
spec: {}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: orders-readers, namespace: shop}
spec:
  selector: {matchLabels: {app: orders}}
  rules:
  - from: [{source: {principals: ["example.org/ns/web/sa/frontend"]}}]
    to: [{operation: {methods: ["GET"]}}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: payments-anything, namespace: shop}
spec:
  selector: {matchLabels: {app: payments}}
  rules: [{}]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manifests_for_other_workloads_are_not_enforced_here() {
    let ws = Workspace::new();
    let app = echo_app().await;
    let (config, port, admin) = inbound_config(&ws, app.port(), "strict", "");
    ws.write("policy.yaml", MANIFESTS);
    // Without saying which pod it guards, the proxy refuses label selectors.
    let mut check = ws.spawn_proxy("no-workload", &config, &["--check"]);
    assert_eq!(check.wait_exit(STEP).await, Some(1));
    assert!(
        check.log_text().contains("WorkloadContext"),
        "{}",
        check.log_text()
    );

    let config = format!("{config}\n[workload]\nlabels = {{ app = \"orders\" }}\n");
    let proxy = ws.start_proxy("proxy", &config, admin).await;
    let (code, body) = curl(&mtls_args(&ws, port, "/orders", Some("client"))).await;
    assert_eq!(code, 200, "{body}\n{}", proxy.log_text());
    // `payments-anything` would allow this if it were merged in.
    let mut post = vec!["-X".to_owned(), "POST".to_owned()];
    post.extend(mtls_args(&ws, port, "/orders", Some("client")));
    assert_eq!(curl(&post).await.0, 403, "{}", proxy.log_text());
    assert_eq!(
        curl(&mtls_args(&ws, port, "/orders", Some("other")))
            .await
            .0,
        403
    );
    assert!(
        proxy.log_text().contains("payments-anything"),
        "{}",
        proxy.log_text()
    );
}
