//! Linkerd and Istio manifests, from their documentation's examples.

use super::tests::{decide, headers, ip, spiffe};
use super::*;
use crate::{Identity, LinkerdId};

fn linkerd(id: &str) -> Identity {
    Identity::from(LinkerdId::parse(id).unwrap())
}

const EMOJIVOTO: &str = r#"
apiVersion: v1
kind: Namespace
metadata:
  name: emojivoto
  annotations:
    config.linkerd.io/default-inbound-policy: all-authenticated
---
apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata:
  namespace: emojivoto
  name: voting-grpc
  labels:
    app.kubernetes.io/part-of: emojivoto
spec:
  podSelector:
    matchLabels:
      app: voting-svc
  port: 8080
  proxyProtocol: gRPC
---
apiVersion: policy.linkerd.io/v1alpha1
kind: AuthorizationPolicy
metadata:
  namespace: emojivoto
  name: voting-grpc
spec:
  targetRef:
    group: policy.linkerd.io
    kind: Server
    name: voting-grpc
  requiredAuthenticationRefs:
    - name: voting-grpc-clients
      kind: MeshTLSAuthentication
      group: policy.linkerd.io
---
apiVersion: policy.linkerd.io/v1alpha1
kind: MeshTLSAuthentication
metadata:
  namespace: emojivoto
  name: voting-grpc-clients
spec:
  identities:
    - "web.emojivoto.serviceaccount.identity.linkerd.cluster.local"
"#;

#[test]
fn linkerd_emojivoto_server_authorization() {
    let ctx = WorkloadContext::new()
        .namespace_name("emojivoto")
        .label("app", "voting-svc");
    let p = Policy::from_yaml_for(EMOJIVOTO, &ctx).unwrap();
    let web = linkerd("web.emojivoto.serviceaccount.identity.linkerd.cluster.local");
    let vote = linkerd("vote-bot.emojivoto.serviceaccount.identity.linkerd.cluster.local");
    let at = |id, port| {
        RequestAttrs::connection(Some(id), None, Some(port))
            .with_request("POST", "/emojivoto.v1.VotingService/Vote")
    };
    let d = decide(&p, &at(&web, 8080));
    assert_eq!(
        (d.verdict(), d.rule()),
        (Verdict::Allow, "AuthorizationPolicy emojivoto/voting-grpc")
    );
    let d = decide(&p, &at(&vote, 8080));
    assert_eq!(
        (d.verdict(), d.rule()),
        (Verdict::Deny, "emojivoto/voting-grpc/default:deny")
    );
    // Another port has no Server: the namespace's default-inbound-policy applies.
    let d = decide(&p, &at(&vote, 9090));
    assert_eq!(
        (d.verdict(), d.rule()),
        (Verdict::Allow, "default:all-authenticated")
    );
    assert!(!decide(&p, &RequestAttrs::connection(None, None, Some(9090))).is_allowed());
}

const BOOKS: &str = r#"
apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata:
  name: authors-server
  namespace: booksapp
spec:
  podSelector:
    matchLabels:
      app: authors
  port: 7001
  proxyProtocol: HTTP/1
---
apiVersion: policy.linkerd.io/v1beta2
kind: HTTPRoute
metadata:
  name: authors-get-route
  namespace: booksapp
spec:
  parentRefs:
    - name: authors-server
      kind: Server
      group: policy.linkerd.io
  rules:
    - matches:
      - path:
          value: "/authors.json"
        method: GET
      - path:
          value: "/authors/"
          type: "PathPrefix"
        method: GET
---
apiVersion: policy.linkerd.io/v1alpha1
kind: AuthorizationPolicy
metadata:
  name: authors-get-policy
  namespace: booksapp
spec:
  targetRef:
    group: policy.linkerd.io
    kind: HTTPRoute
    name: authors-get-route
  requiredAuthenticationRefs:
    - name: authors-get-authn
      kind: MeshTLSAuthentication
      group: policy.linkerd.io
    - name: pod-network
      kind: NetworkAuthentication
      group: policy.linkerd.io
---
apiVersion: policy.linkerd.io/v1alpha1
kind: MeshTLSAuthentication
metadata:
  name: authors-get-authn
  namespace: booksapp
spec:
  identityRefs:
    - kind: ServiceAccount
      name: books
    - kind: ServiceAccount
      name: webapp
---
apiVersion: policy.linkerd.io/v1alpha1
kind: NetworkAuthentication
metadata:
  name: pod-network
  namespace: booksapp
spec:
  networks:
  - cidr: 10.0.0.0/8
    except: ["10.9.0.0/16"]
"#;

#[test]
fn linkerd_books_route_authorization() {
    let ctx = WorkloadContext::new()
        .namespace_name("booksapp")
        .label("app", "authors");
    let p = Policy::from_yaml_for(BOOKS, &ctx).unwrap();
    let books = linkerd("books.booksapp.serviceaccount.identity.linkerd.cluster.local");
    let traffic = linkerd("traffic.booksapp.serviceaccount.identity.linkerd.cluster.local");
    let at = |id, src, m, path| {
        RequestAttrs::connection(Some(id), ip(src), Some(7001)).with_request(m, path)
    };
    for path in ["/authors.json", "/authors/1.json", "/authors"] {
        let d = decide(&p, &at(&books, "10.1.1.1", "GET", path));
        assert_eq!(d.verdict(), Verdict::Allow, "{path}: {}", d.rule());
    }
    // Both refs must match: identity and network.
    assert_eq!(
        decide(&p, &at(&books, "10.9.1.1", "GET", "/authors.json")).verdict(),
        Verdict::Deny
    );
    assert_eq!(
        decide(&p, &at(&traffic, "10.1.1.1", "GET", "/authors.json")).verdict(),
        Verdict::Deny
    );
    // Unrouted requests get 404, even from an authorized client.
    assert_eq!(
        decide(&p, &at(&books, "10.1.1.1", "DELETE", "/authors/1.json")).verdict(),
        Verdict::NotFound
    );
    assert_eq!(
        decide(&p, &at(&books, "10.1.1.1", "GET", "/authorsx")).verdict(),
        Verdict::NotFound
    );
}

#[test]
fn linkerd_reports_what_it_cannot_enforce() {
    let voting = WorkloadContext::new()
        .namespace_name("emojivoto")
        .label("app", "voting-svc");
    let named = EMOJIVOTO.replace("port: 8080", "port: grpc");
    let e = Policy::from_yaml_for(&named, &voting).unwrap_err();
    assert!(e.to_string().contains("named_port(\"grpc\""), "{e}");
    let missing = EMOJIVOTO.replace(
        "name: voting-grpc-clients\n      kind",
        "name: nobody\n      kind",
    );
    let p = Policy::from_yaml_for(&missing, &voting).unwrap();
    assert!(
        p.warnings().iter().any(|w| w.contains("dropped")),
        "{:?}",
        p.warnings()
    );
    let web = linkerd("web.emojivoto.serviceaccount.identity.linkerd.cluster.local");
    assert!(!decide(&p, &RequestAttrs::connection(Some(&web), None, Some(8080))).is_allowed());
    let authors = WorkloadContext::new()
        .namespace_name("booksapp")
        .label("app", "authors");
    let regex = BOOKS.replace("type: \"PathPrefix\"", "type: RegularExpression");
    assert!(matches!(
        Policy::from_yaml_for(&regex, &authors),
        Err(PolicyError::Unsupported { .. })
    ));
    let typo = BOOKS.replace("requiredAuthenticationRefs", "requiredAuthRefs");
    let e = Policy::from_yaml_for(&typo, &authors).unwrap_err();
    assert!(e.location().and_then(|l| l.line).is_some(), "{e}");
}

const ISTIO: &str = r#"
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: httpbin
  namespace: foo
spec:
  selector:
    matchLabels:
      app: httpbin
  action: ALLOW
  rules:
  - from:
    - source:
        principals: ["cluster.local/ns/default/sa/sleep"]
    - source:
        namespaces: ["dev"]
    to:
    - operation:
        methods: ["GET"]
        paths: ["/info*"]
  - to:
    - operation:
        paths: ["/healthz"]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: deny-method-delete
  namespace: foo
spec:
  action: DENY
  rules:
  - to:
    - operation:
        methods: ["DELETE"]
    when:
    - key: request.headers[x-token]
      notValues: ["admin"]
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata:
  name: httpbin
  namespace: foo
spec:
  selector:
    matchLabels:
      app: httpbin
  mtls:
    mode: STRICT
  portLevelMtls:
    8000:
      mode: PERMISSIVE
"#;

#[test]
fn istio_documented_examples() {
    // The policies select `app: httpbin` in namespace `foo`: load them for that pod.
    let httpbin = WorkloadContext::new()
        .namespace_name("foo")
        .label("app", "httpbin");
    let p = Policy::from_yaml_for(ISTIO, &httpbin).unwrap();
    let sleep = spiffe("spiffe://cluster.local/ns/default/sa/sleep");
    let dev = spiffe("spiffe://cluster.local/ns/dev/sa/any");
    let other = spiffe("spiffe://cluster.local/ns/prod/sa/any");
    let at = |id: Option<&'static Identity>, m, path| {
        RequestAttrs::connection(id, None, Some(8000)).with_request(m, path)
    };
    let leak = |i: Identity| -> &'static Identity { Box::leak(Box::new(i)) };
    let (sleep, dev, other) = (leak(sleep), leak(dev), leak(other));
    assert_eq!(
        decide(&p, &at(Some(sleep), "GET", "/info/x")).rule(),
        "foo/httpbin[0]"
    );
    assert!(decide(&p, &at(Some(dev), "GET", "/info")).is_allowed());
    assert!(!decide(&p, &at(Some(other), "GET", "/info")).is_allowed());
    assert_eq!(
        decide(&p, &at(None, "GET", "/healthz")).rule(),
        "foo/httpbin[1]"
    );
    // Any ALLOW policy exists, so unmatched requests are denied.
    assert_eq!(
        decide(&p, &at(Some(sleep), "POST", "/info")).rule(),
        "default:deny"
    );
    let admin = headers(&[("x-token", "admin")]);
    let d = decide(&p, &at(Some(sleep), "DELETE", "/info"));
    assert_eq!(
        (d.verdict(), d.rule()),
        (Verdict::Deny, "foo/deny-method-delete")
    );
    let d = decide(
        &p,
        &at(Some(sleep), "DELETE", "/healthz").with_headers(&admin),
    );
    assert_eq!(d.rule(), "foo/httpbin[1]");
    let pa = &p.peer_authentication()[0];
    assert_eq!(
        (pa.mode_for_port(8080), pa.mode_for_port(8000)),
        (MtlsMode::Strict, MtlsMode::Permissive)
    );
    // STRICT on 8080: a peer without a proven identity is denied there.
    let plain = RequestAttrs::connection(None, None, Some(8080)).with_request("GET", "/healthz");
    assert_eq!(decide(&p, &plain).rule(), "foo/httpbin:mtls-strict");
}

#[test]
fn istio_empty_rules_and_custom() {
    let policy = |spec: &str| {
        format!(
            "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: p\n  namespace: ns\nspec:\n{spec}"
        )
    };
    let a = RequestAttrs::connection(None, None, Some(80)).with_request("GET", "/");
    let nothing = Policy::from_yaml(&policy("  {}\n")).unwrap();
    assert!(
        !decide(&nothing, &a).is_allowed(),
        "ALLOW without rules denies all"
    );
    let all = Policy::from_yaml(&policy("  rules:\n  - {}\n")).unwrap();
    assert!(decide(&all, &a).is_allowed(), "rules: [{{}}] allows all");
    let audit = Policy::from_yaml(&policy("  action: AUDIT\n  rules:\n  - {}\n")).unwrap();
    let d = decide(&audit, &a);
    assert!(
        d.is_allowed() && d.is_audited(),
        "no ALLOW policy: allowed, audited"
    );
    let custom = Policy::from_yaml(&policy(
        "  action: CUSTOM\n  provider:\n    name: ext\n  rules:\n  - {}\n",
    ));
    assert!(custom.unwrap_err().to_string().contains("CUSTOM"));
    assert!(
        Policy::from_yaml(&policy("  action: DENY\n")).is_err(),
        "DENY needs rules"
    );
    let dry = Policy::from_yaml(&policy("  {}\n").replace(
        "namespace: ns",
        "namespace: ns\n  annotations:\n    istio.io/dry-run: \"true\"",
    ))
    .unwrap();
    assert!(
        decide(&dry, &a).is_allowed(),
        "a dry-run ALLOW policy does not enforce"
    );
}
