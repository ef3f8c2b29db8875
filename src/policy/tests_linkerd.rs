//! Linkerd manifests shaped like the ones in Linkerd's docs ("Authorization policy"
//! reference, "Restricting access to services" with emojivoto, "Per-route policy"
//! with booksapp, the HTTPRoute and GRPCRoute references) and the linkerd-viz and
//! multicluster charts, read for one workload. Each decision cites the sentence of
//! the docs (or the behaviour of Linkerd's policy controller and proxy) behind it.

use super::tests::{decide, ip};
use super::*;
use crate::{Identity, LinkerdId};

fn linkerd(sa: &str, ns: &str) -> Identity {
    Identity::from(
        LinkerdId::parse(&format!(
            "{sa}.{ns}.serviceaccount.identity.linkerd.cluster.local"
        ))
        .unwrap(),
    )
}

fn pod(ns: &str, app: &str) -> WorkloadContext {
    WorkloadContext::new()
        .namespace_name(ns)
        .label("app", app)
        .named_port("grpc", 8080)
        .named_port("prom", 8801)
}

fn req<'a>(
    id: Option<&'a Identity>,
    port: u16,
    method: &'a str,
    path: &'a str,
) -> RequestAttrs<'a> {
    RequestAttrs::connection(id, ip("10.1.2.3"), Some(port)).with_request(method, path)
}

/// The emojivoto policies of one repository: Servers for two workloads (one by a
/// named port, as the reference's `emoji-grpc` example), and their authorizations.
const EMOJIVOTO: &str = r#"
apiVersion: policy.linkerd.io/v1beta1
kind: Server
metadata:
  namespace: emojivoto
  name: emoji-grpc
  labels: {app: emoji-svc}
spec:
  podSelector:
    matchLabels:
      app: emoji-svc
  port: grpc
  proxyProtocol: gRPC
---
apiVersion: policy.linkerd.io/v1beta1
kind: Server
metadata:
  namespace: emojivoto
  name: voting-grpc
  labels: {app: voting-svc}
spec:
  podSelector:
    matchLabels:
      app: voting-svc
  port: grpc
  proxyProtocol: gRPC
---
apiVersion: policy.linkerd.io/v1beta1
kind: ServerAuthorization
metadata:
  namespace: emojivoto
  name: emoji-grpc
spec:
  server:
    selector:
      matchLabels:
        app: emoji-svc
  client:
    meshTLS:
      identities:
        - "*.emojivoto.serviceaccount.identity.linkerd.cluster.local"
---
apiVersion: policy.linkerd.io/v1beta1
kind: ServerAuthorization
metadata:
  namespace: emojivoto
  name: voting-grpc
spec:
  server:
    name: voting-grpc
  client:
    meshTLS:
      serviceAccounts:
        - name: web
"#;

#[test]
fn a_server_applies_only_to_the_pods_it_selects() {
    let vote = "/emojivoto.v1.VotingService/VoteDoughnut";
    let bot = linkerd("vote-bot", "emojivoto");
    // "A `Server` selects a port on a set of pods in the same namespace as the
    // server": the voting pod gets voting-grpc only, whose authorization names `web`.
    let voting = Policy::from_yaml_for(EMOJIVOTO, &pod("emojivoto", "voting-svc")).unwrap();
    assert_eq!(voting.spec().servers.len(), 1);
    let d = decide(&voting, &req(Some(&bot), 8080, "POST", vote));
    assert_eq!(
        (d.verdict(), d.rule()),
        (Verdict::Deny, "emojivoto/voting-grpc/default:deny")
    );
    let web = linkerd("web", "emojivoto");
    let d = decide(&voting, &req(Some(&web), 8080, "POST", vote));
    assert_eq!(
        (d.verdict(), d.rule()),
        (Verdict::Allow, "ServerAuthorization emojivoto/voting-grpc")
    );
    // The emoji pod: "The `*` prefix can be used to match all identities in a
    // domain", so every emojivoto account, vote-bot included, may call it; the voting
    // server and its authorization are skipped, never merged.
    let emoji = Policy::from_yaml_for(EMOJIVOTO, &pod("emojivoto", "emoji-svc")).unwrap();
    let d = decide(
        &emoji,
        &req(
            Some(&bot),
            8080,
            "POST",
            "/emojivoto.v1.EmojiService/ListAll",
        ),
    );
    assert_eq!(
        (d.verdict(), d.rule()),
        (Verdict::Allow, "ServerAuthorization emojivoto/emoji-grpc")
    );
    let other = linkerd("web", "elsewhere");
    assert!(!decide(&emoji, &req(Some(&other), 8080, "POST", "/x/y")).is_allowed());
    let skipped = emoji.skipped().join("\n");
    assert!(
        skipped.contains("Server emojivoto/voting-grpc"),
        "{skipped}"
    );
    assert!(
        skipped.contains("ServerAuthorization emojivoto/voting-grpc"),
        "{skipped}"
    );
    assert!(
        emoji
            .explain(&req(None, 8080, "POST", "/x/y"))
            .to_string()
            .contains("voting-grpc")
    );
    // A pod of another namespace gets none of them.
    let elsewhere = Policy::from_yaml_for(EMOJIVOTO, &pod("shop", "emoji-svc")).unwrap();
    assert!(elsewhere.spec().servers.is_empty());
    assert!(
        elsewhere
            .skipped()
            .iter()
            .any(|s| s.contains("another namespace"))
    );
}

#[test]
fn named_ports_and_selectors_need_the_workload_context() {
    // The port is a container port's name ("A port name or number. Only ports in a
    // pod spec's `ports` are considered"): it resolves through the context.
    let e = Policy::from_yaml_for(
        EMOJIVOTO,
        &WorkloadContext::new()
            .namespace_name("emojivoto")
            .label("app", "emoji-svc"),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("Server emojivoto/emoji-grpc") && e.contains("named_port(\"grpc\""),
        "{e}"
    );
    // Without a context, a podSelector that selects by label cannot be placed.
    let e = Policy::from_yaml(EMOJIVOTO).unwrap_err().to_string();
    assert!(
        e.contains("podSelector") && e.contains("from_yaml_for"),
        "{e}"
    );
    // `podSelector: {}` selects every pod of the namespace; a number needs no context.
    let all = EMOJIVOTO
        .replace(
            "  podSelector:\n    matchLabels:\n      app: voting-svc\n  port: grpc",
            "  podSelector: {}\n  port: 9090",
        )
        .replace(
            "  podSelector:\n    matchLabels:\n      app: emoji-svc\n  port: grpc",
            "  podSelector: {}\n  port: 8080",
        );
    let p = Policy::from_yaml(&all).unwrap();
    assert_eq!(p.spec().servers.len(), 2);
}

#[test]
fn match_expressions_select_as_in_kubernetes() {
    // The reference's `backend-services` example: In and NotIn, ANDed.
    let text = r#"
apiVersion: policy.linkerd.io/v1beta1
kind: Server
metadata: {namespace: emojivoto, name: backend-services}
spec:
  podSelector:
    matchExpressions:
      - { key: app, operator: In, values: [voting-svc, emoji-svc] }
      - { key: environment, operator: NotIn, values: [dev] }
  port: 8080
  proxyProtocol: "HTTP/2"
"#;
    let prod = pod("emojivoto", "voting-svc").label("environment", "prod");
    assert_eq!(
        Policy::from_yaml_for(text, &prod)
            .unwrap()
            .spec()
            .servers
            .len(),
        1
    );
    let dev = pod("emojivoto", "voting-svc").label("environment", "dev");
    assert!(
        Policy::from_yaml_for(text, &dev)
            .unwrap()
            .spec()
            .servers
            .is_empty()
    );
    let web = pod("emojivoto", "web-svc");
    assert!(
        Policy::from_yaml_for(text, &web)
            .unwrap()
            .spec()
            .servers
            .is_empty()
    );
    let bad = text.replace("operator: NotIn", "operator: Gt");
    let e = Policy::from_yaml_for(&bad, &prod).unwrap_err().to_string();
    assert!(
        e.contains("Server emojivoto/backend-services") && e.contains("operator"),
        "{e}"
    );
}

const SERVER_AUTHZ: &str = r#"
apiVersion: policy.linkerd.io/v1beta1
kind: Server
metadata: {namespace: emojivoto, name: web-http}
spec:
  podSelector: {matchLabels: {app: web-svc}}
  port: 8080
  proxyProtocol: HTTP/1
---
apiVersion: policy.linkerd.io/v1beta1
kind: Server
metadata: {namespace: emojivoto, name: prom}
spec:
  podSelector: {matchLabels: {app: web-svc}}
  port: prom
---
apiVersion: policy.linkerd.io/v1beta1
kind: ServerAuthorization
metadata: {namespace: emojivoto, name: web-public}
spec:
  server:
    name: web-http
  client:
    unauthenticated: true
    networks:
      - cidr: 0.0.0.0/0
      - cidr: ::/0
---
apiVersion: policy.linkerd.io/v1beta1
kind: ServerAuthorization
metadata: {namespace: emojivoto, name: prom-prometheus}
spec:
  server:
    name: prom
  client:
    meshTLS:
      serviceAccounts:
        - namespace: linkerd-viz
          name: prometheus
"#;

#[test]
fn server_authorization_clients_as_linkerd_reads_them() {
    let p = Policy::from_yaml_for(SERVER_AUTHZ, &pod("emojivoto", "web-svc")).unwrap();
    // "A boolean value that authorizes unauthenticated clients", from any address
    // the `networks` list: plaintext from the internet is allowed on web-http.
    let outside =
        RequestAttrs::connection(None, ip("203.0.113.9"), Some(8080)).with_request("GET", "/");
    assert_eq!(
        decide(&p, &outside).rule(),
        "ServerAuthorization emojivoto/web-public"
    );
    // serviceAccounts: "The ServiceAccount's namespace. If unset, the
    // authorization's namespace is used" — here it is set to linkerd-viz.
    let prom = linkerd("prometheus", "linkerd-viz");
    let scrape = RequestAttrs::connection(Some(&prom), ip("10.2.0.5"), Some(8801))
        .with_request("GET", "/metrics");
    assert!(decide(&p, &scrape).is_allowed());
    let web = linkerd("prometheus", "emojivoto");
    let wrong = RequestAttrs::connection(Some(&web), ip("10.2.0.5"), Some(8801))
        .with_request("GET", "/metrics");
    assert!(!decide(&p, &wrong).is_allowed());
    // `networks`: "If unset, the server chooses a default (typically, all IPs or the
    // cluster's pod network)" — Linkerd's policy controller uses the cluster
    // networks, so prometheus calling from outside them is denied.
    let far = RequestAttrs::connection(Some(&prom), ip("203.0.113.9"), Some(8801))
        .with_request("GET", "/metrics");
    assert!(!decide(&p, &far).is_allowed());
    // "A `client` object must contain _exactly one_ of" meshTLS and unauthenticated.
    let both = SERVER_AUTHZ.replace(
        "    unauthenticated: true\n",
        "    unauthenticated: true\n    meshTLS: {identities: [\"*\"]}\n",
    );
    let e = Policy::from_yaml_for(&both, &pod("emojivoto", "web-svc"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("ServerAuthorization emojivoto/web-public") && e.contains("client"),
        "{e}"
    );
}

/// booksapp's authors service, per-route: the docs' `authors-get-route`, plus a more
/// specific route under the same prefix.
const BOOKS: &str = r#"
apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata: {name: authors-server, namespace: booksapp}
spec:
  podSelector: {matchLabels: {app: authors}}
  port: 7001
  proxyProtocol: HTTP/1
---
apiVersion: policy.linkerd.io/v1beta2
kind: HTTPRoute
metadata: {name: authors-get-route, namespace: booksapp}
spec:
  parentRefs:
    - {name: authors-server, kind: Server, group: policy.linkerd.io}
  rules:
    - matches:
      - path: {value: "/authors.json"}
        method: GET
      - path: {value: "/authors/", type: "PathPrefix"}
        method: GET
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: authors-admin-route, namespace: booksapp}
spec:
  parentRefs:
    - {name: authors-server, kind: Server, group: policy.linkerd.io}
  rules:
    - matches:
      - path: {value: "/authors/admin", type: "PathPrefix"}
---
apiVersion: policy.linkerd.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: authors-get-policy, namespace: booksapp}
spec:
  targetRef: {group: policy.linkerd.io, kind: HTTPRoute, name: authors-get-route}
  requiredAuthenticationRefs:
    - {name: authors-get-authn, kind: MeshTLSAuthentication, group: policy.linkerd.io}
---
apiVersion: policy.linkerd.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: authors-admin-policy, namespace: booksapp}
spec:
  targetRef: {group: gateway.networking.k8s.io, kind: HTTPRoute, name: authors-admin-route}
  requiredAuthenticationRefs:
    - {name: webapp, kind: ServiceAccount}
---
apiVersion: policy.linkerd.io/v1alpha1
kind: MeshTLSAuthentication
metadata: {name: authors-get-authn, namespace: booksapp}
spec:
  identities:
    - "books.booksapp.serviceaccount.identity.linkerd.cluster.local"
    - "webapp.booksapp.serviceaccount.identity.linkerd.cluster.local"
"#;

#[test]
fn a_request_gets_only_the_authorizations_of_its_one_route() {
    let p = Policy::from_yaml_for(BOOKS, &pod("booksapp", "authors")).unwrap();
    let books = linkerd("books", "booksapp");
    let webapp = linkerd("webapp", "booksapp");
    let d = decide(&p, &req(Some(&books), 7001, "GET", "/authors/1.json"));
    assert_eq!(d.rule(), "AuthorizationPolicy booksapp/authors-get-policy");
    // "A given HTTP request can only match one HTTPRoute": GET /authors/admin/x
    // matches both routes; the longer prefix wins, and only webapp may use it —
    // books, allowed on authors-get-route, is denied here.
    let d = decide(&p, &req(Some(&books), 7001, "GET", "/authors/admin/x"));
    assert_eq!(
        (d.verdict(), d.rule()),
        (Verdict::Deny, "booksapp/authors-server/default:deny")
    );
    let d = decide(&p, &req(Some(&webapp), 7001, "DELETE", "/authors/admin/x"));
    assert_eq!(
        d.rule(),
        "AuthorizationPolicy booksapp/authors-admin-policy"
    );
    // The proxy "rejects those requests with a 404 error" when no route matches.
    assert_eq!(
        decide(&p, &req(Some(&webapp), 7001, "DELETE", "/authors/1.json")).verdict(),
        Verdict::NotFound
    );
    let e = p
        .explain(&req(Some(&books), 7001, "GET", "/authors/admin/x"))
        .to_string();
    assert!(
        e.contains("routed to `booksapp/authors-admin-route`"),
        "{e}"
    );
}

#[test]
fn route_precedence_follows_linkerd() {
    let route = |name: &str, extra: &str| {
        format!(
            "---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {{name: {name}, namespace: booksapp}}\nspec:\n  parentRefs: [{{name: authors-server, kind: Server, group: policy.linkerd.io}}]\n{extra}"
        )
    };
    let policy = |name: &str| {
        format!(
            "---\napiVersion: policy.linkerd.io/v1alpha1\nkind: AuthorizationPolicy\nmetadata: {{name: {name}, namespace: booksapp}}\nspec:\n  targetRef: {{group: gateway.networking.k8s.io, kind: HTTPRoute, name: {name}}}\n  requiredAuthenticationRefs: [{{name: webapp, kind: ServiceAccount}}]\n"
        )
    };
    let server = &BOOKS[..BOOKS
        .find("---\napiVersion: policy.linkerd.io/v1beta2")
        .unwrap()];
    let text = [
        server.to_owned(),
        route(
            "a-any",
            "  rules: [{matches: [{path: {type: PathPrefix, value: /}}]}]\n",
        ),
        route(
            "b-header",
            "  rules: [{matches: [{headers: [{name: x-canary, value: \"1\"}]}]}]\n",
        ),
        route("c-method", "  rules: [{matches: [{method: POST}]}]\n"),
        route("d-host", "  hostnames: [\"*.example.com\"]\n"),
        policy("a-any"),
        policy("b-header"),
        policy("c-method"),
        policy("d-host"),
    ]
    .concat();
    let p = Policy::from_yaml_for(&text, &pod("booksapp", "authors")).unwrap();
    let webapp = linkerd("webapp", "booksapp");
    let canary = super::tests::headers(&[("x-canary", "1")]);
    let rule = |a: RequestAttrs<'_>| decide(&p, &a).rule().to_owned();
    let base = || req(Some(&webapp), 7001, "POST", "/x");
    // Ties go to the first route by name (Linkerd: creation time, then name).
    assert_eq!(
        rule(req(Some(&webapp), 7001, "GET", "/x")),
        "AuthorizationPolicy booksapp/a-any"
    );
    // Linkerd's proxy ranks header matches above a method match.
    assert_eq!(
        rule(base().with_headers(&canary)),
        "AuthorizationPolicy booksapp/b-header"
    );
    assert_eq!(rule(base()), "AuthorizationPolicy booksapp/c-method");
    // A route whose hostnames match beats every route without hostnames; Gateway
    // API: `*.example.com` matches names under it, not `example.com` itself.
    assert_eq!(
        rule(base().with_host("api.example.com")),
        "AuthorizationPolicy booksapp/d-host"
    );
    assert_eq!(
        rule(base().with_host("example.com")),
        "AuthorizationPolicy booksapp/c-method"
    );
}

#[test]
fn route_hostnames_are_enforced() {
    // HTTPRoute `hostnames`: "A set of hostnames that should match against the HTTP
    // Host header". A request for another host matches no route: 404.
    let text = BOOKS.replace(
        "metadata: {name: authors-get-route, namespace: booksapp}\nspec:\n",
        "metadata: {name: authors-get-route, namespace: booksapp}\nspec:\n  hostnames: [authors.booksapp.svc.cluster.local]\n",
    );
    let p = Policy::from_yaml_for(&text, &pod("booksapp", "authors")).unwrap();
    let books = linkerd("books", "booksapp");
    let at = |host| req(Some(&books), 7001, "GET", "/authors.json").with_host(host);
    assert!(decide(&p, &at("authors.booksapp.svc.cluster.local")).is_allowed());
    assert_eq!(decide(&p, &at("evil.example")).verdict(), Verdict::NotFound);
}

#[test]
fn grpc_routes_match_service_and_method() {
    let text = r#"
apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata: {namespace: emojivoto, name: voting-grpc}
spec:
  podSelector: {matchLabels: {app: voting-svc}}
  port: grpc
  proxyProtocol: gRPC
---
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {namespace: emojivoto, name: vote-doughnut}
spec:
  parentRefs: [{name: voting-grpc, kind: Server, group: policy.linkerd.io}]
  rules:
    - matches:
      - method: {type: Exact, service: emojivoto.v1.VotingService, method: VoteDoughnut}
---
apiVersion: policy.linkerd.io/v1alpha1
kind: AuthorizationPolicy
metadata: {namespace: emojivoto, name: vote-doughnut}
spec:
  targetRef: {group: gateway.networking.k8s.io, kind: GRPCRoute, name: vote-doughnut}
  requiredAuthenticationRefs: [{name: web, kind: ServiceAccount}]
"#;
    let p = Policy::from_yaml_for(text, &pod("emojivoto", "voting-svc")).unwrap();
    let web = linkerd("web", "emojivoto");
    let d = decide(
        &p,
        &req(
            Some(&web),
            8080,
            "POST",
            "/emojivoto.v1.VotingService/VoteDoughnut",
        ),
    );
    assert_eq!(d.rule(), "AuthorizationPolicy emojivoto/vote-doughnut");
    // Another method of the service matches no route of the server.
    let other = req(
        Some(&web),
        8080,
        "POST",
        "/emojivoto.v1.VotingService/VotePoop",
    );
    assert_eq!(decide(&p, &other).verdict(), Verdict::NotFound);
    // gRPC is POST only.
    let get = req(
        Some(&web),
        8080,
        "GET",
        "/emojivoto.v1.VotingService/VoteDoughnut",
    );
    assert_eq!(decide(&p, &get).verdict(), Verdict::NotFound);
}

#[test]
fn a_route_without_its_server_never_widens_access() {
    // Linkerd's policy controller does not accept a route whose parent Server does
    // not exist, so the policies that target it apply nowhere; the Server's own
    // `accessPolicy` (deny) still holds.
    let text = BOOKS.replace(
        "kind: HTTPRoute\nmetadata: {name: authors-admin-route, namespace: booksapp}\nspec:\n  parentRefs:\n    - {name: authors-server,",
        "kind: HTTPRoute\nmetadata: {name: authors-admin-route, namespace: booksapp}\nspec:\n  parentRefs:\n    - {name: no-such-server,",
    );
    let p = Policy::from_yaml_for(&text, &pod("booksapp", "authors")).unwrap();
    let w = p.warnings().join("\n");
    assert!(
        w.contains("HTTPRoute booksapp/authors-admin-route") && w.contains("not in the file"),
        "{w}"
    );
    let webapp = linkerd("webapp", "booksapp");
    assert_eq!(
        decide(&p, &req(Some(&webapp), 7001, "DELETE", "/authors/admin")).verdict(),
        Verdict::NotFound
    );
}

#[test]
fn unsupported_route_fields_name_the_document_and_field() {
    let ctx = pod("booksapp", "authors");
    // Gateway API: "Support: Implementation-specific (RegularExpression)" — not
    // supported here; `Exact` is (see `query_params_*` below).
    let query = BOOKS.replace(
        "      - path: {value: \"/authors/admin\", type: \"PathPrefix\"}\n",
        "      - path: {value: \"/authors/admin\", type: \"PathPrefix\"}\n        queryParams: [{name: a, value: b}, {type: RegularExpression, name: c, value: \"d.*\"}]\n",
    );
    let e = Policy::from_yaml_for(&query, &ctx).unwrap_err().to_string();
    assert!(
        e.contains("HTTPRoute booksapp/authors-admin-route")
            && e.contains("rules[0].matches[0].queryParams[1]")
            && e.contains("RegularExpression"),
        "{e}"
    );
    let filters = BOOKS.replace(
        "    - matches:\n      - path: {value: \"/authors/admin\"",
        "    - filters: [{type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: x, value: y}]}}]\n      matches:\n      - path: {value: \"/authors/admin\"",
    );
    let e = Policy::from_yaml_for(&filters, &ctx)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("HTTPRoute booksapp/authors-admin-route") && e.contains("filters"),
        "{e}"
    );
}

/// The booksapp `authors-server` with HTTPRoutes attached to it, each targeted by an
/// AuthorizationPolicy of the same name that lets `webapp` in: the rule of a
/// decision names the route the request went to.
fn authors_with_routes(routes: &[(&str, &str)]) -> Policy {
    let server = &BOOKS[..BOOKS
        .find("---\napiVersion: policy.linkerd.io/v1beta2")
        .unwrap()];
    let mut text = server.to_owned();
    for (name, rules) in routes {
        text.push_str(&format!(
            "---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {{name: {name}, namespace: booksapp}}\nspec:\n  parentRefs: [{{name: authors-server, kind: Server, group: policy.linkerd.io}}]\n  rules:\n{rules}"
        ));
        text.push_str(&format!(
            "---\napiVersion: policy.linkerd.io/v1alpha1\nkind: AuthorizationPolicy\nmetadata: {{name: {name}, namespace: booksapp}}\nspec:\n  targetRef: {{group: gateway.networking.k8s.io, kind: HTTPRoute, name: {name}}}\n  requiredAuthenticationRefs: [{{name: webapp, kind: ServiceAccount}}]\n"
        ));
    }
    Policy::from_yaml_for(&text, &pod("booksapp", "authors")).unwrap()
}

/// Where `GET path?query` (with `headers`) from webapp goes: the route's name, or
/// `404` when the server has routes and none matches.
fn routed_to(p: &Policy, target: &str, headers: &[(&'static str, &'static str)]) -> String {
    let webapp = linkerd("webapp", "booksapp");
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (target, None),
    };
    let headers = super::tests::headers(headers);
    let d = decide(
        p,
        &req(Some(&webapp), 7001, "GET", path)
            .with_query(query)
            .with_headers(&headers),
    );
    match d.verdict() {
        Verdict::NotFound => "404".to_owned(),
        _ => d
            .rule()
            .strip_prefix("AuthorizationPolicy booksapp/")
            .unwrap_or(d.rule())
            .to_owned(),
    }
}

/// The routes of the Gateway API's mesh conformance test for query parameter
/// matching (`tests/mesh/httproute-query-param-matching.yaml`), one HTTPRoute per
/// rule, named for what it matches, and the guide's "ORing matches" rule
/// (`guides/user-guides/http-query-param-matching.md`).
fn conformance_routes() -> Policy {
    authors_with_routes(&[
        (
            "whale",
            "  - matches:\n    - queryParams:\n      - {name: animal, value: whale}\n",
        ),
        (
            "dolphin",
            "  - matches:\n    - queryParams:\n      - {name: animal, value: dolphin}\n",
        ),
        (
            "path1-whale",
            "  - matches:\n    - path: {type: PathPrefix, value: /path1}\n      queryParams:\n      - {name: animal, value: whale}\n",
        ),
        (
            "version-one-whale",
            "  - matches:\n    - headers:\n      - {name: version, value: one}\n      queryParams:\n      - {name: animal, value: whale}\n",
        ),
        (
            "shark-or-kraken",
            "  - matches:\n    - path: {type: PathPrefix, value: /path3}\n      queryParams:\n      - {name: animal, value: shark}\n    - path: {type: PathPrefix, value: /path4}\n      headers:\n      - {name: version, value: three}\n      queryParams:\n      - {name: animal, value: kraken}\n",
        ),
        (
            "path5",
            "  - matches:\n    - path: {type: PathPrefix, value: /path5}\n",
        ),
        (
            "hydra",
            "  - matches:\n    - queryParams:\n      - {name: animal, value: hydra}\n",
        ),
        (
            "v3-dolphin-blue-or-big-whale",
            "  - matches:\n    - queryParams:\n      - {name: animal, value: dolphin}\n      - {name: color, value: blue}\n    - queryParams:\n      - {name: ANIMAL, value: Whale}\n",
        ),
    ])
}

#[test]
fn query_params_route_requests_as_the_gateway_api_conformance_test_expects() {
    let p = conformance_routes();
    // "QueryParams specifies HTTP query parameter matchers. Multiple match values are
    // ANDed together" — the conformance test's expectations, request by request.
    for (target, headers, want) in [
        ("/?animal=whale", &[][..], "whale"),
        ("/?animal=dolphin", &[], "dolphin"),
        ("/?animal=whale&otherparam=irrelevant", &[], "whale"),
        ("/?animal=dolphin&color=yellow", &[], "dolphin"),
        // "When no rules matching a request have been successfully attached to the
        // parent a request is coming from, a HTTP 404 status code MUST be returned."
        ("/?color=blue", &[], "404"),
        ("/?animal=dog", &[], "404"),
        ("/?animal=whaledolphin", &[], "404"),
        ("/", &[], "404"),
        // Combinations with path and header matches.
        ("/path1?animal=whale", &[], "path1-whale"),
        ("/?animal=whale", &[("version", "one")], "version-one-whale"),
        // "Ensure that combinations of matches which are OR'd together match even if
        // only one of them is used in the request."
        ("/path3?animal=shark", &[], "shark-or-kraken"),
        (
            "/path4?animal=kraken",
            &[("version", "three")],
            "shark-or-kraken",
        ),
        // "... which are ANDed together do not match when only a subset of match
        // types is used in the request."
        ("/?animal=shark", &[], "404"),
        ("/path4?animal=kraken", &[], "404"),
        // "For requests that satisfy multiple matches, ensure precedence order defined
        // by the Gateway API spec is maintained": the path prefix first.
        ("/path5?animal=hydra", &[], "path5"),
    ] {
        assert_eq!(routed_to(&p, target, headers), want, "{target} {headers:?}");
    }
    // The path is matched without the query: `/path5?x` is still under `/path5`.
    assert_eq!(routed_to(&p, "/path5?animal=whale", &[]), "path5");
}

#[test]
fn query_param_names_and_values_match_exactly() {
    let p = conformance_routes();
    // Gateway API: "Name is the name of the HTTP query param to be matched. This must
    // be an exact string match"; the guide: "OR the query parameter `ANIMAL=Whale` is
    // present" — a rule of its own, apart from `animal=whale`.
    assert_eq!(
        routed_to(&p, "/?ANIMAL=Whale", &[]),
        "v3-dolphin-blue-or-big-whale"
    );
    assert_eq!(routed_to(&p, "/?ANIMAL=whale", &[]), "404");
    assert_eq!(routed_to(&p, "/?animal=Whale", &[]), "404");
    assert_eq!(routed_to(&p, "/?Animal=whale", &[]), "404");
}

#[test]
fn more_query_param_matches_win_and_rank_above_a_method() {
    let p = conformance_routes();
    // Gateway API precedence: "Largest number of query param matches" — `dolphin`
    // (one) and the guide's `animal=dolphin AND color=blue` (two) both match; the
    // tie would go to `dolphin`, first by name.
    assert_eq!(
        routed_to(&p, "/?animal=dolphin&color=blue", &[]),
        "v3-dolphin-blue-or-big-whale"
    );
    assert_eq!(
        routed_to(&p, "/?color=blue&animal=dolphin", &[]),
        "v3-dolphin-blue-or-big-whale"
    );
    // Linkerd's proxy orders a match by path, headers, query params and then method
    // (`RequestMatch`'s `Ord`), where the Gateway API lists the method before
    // headers: `a-get` (a method) loses to `whale` (a query param), though it comes
    // first by name.
    let p = authors_with_routes(&[
        ("a-get", "  - matches:\n    - method: GET\n"),
        (
            "whale",
            "  - matches:\n    - queryParams:\n      - {name: animal, value: whale}\n",
        ),
        (
            "whale-version",
            "  - matches:\n    - headers:\n      - {name: version, value: one}\n",
        ),
    ]);
    assert_eq!(routed_to(&p, "/?animal=whale", &[]), "whale");
    assert_eq!(routed_to(&p, "/?animal=dolphin", &[]), "a-get");
    // ... and a header match above a query param match.
    assert_eq!(
        routed_to(&p, "/?animal=whale", &[("version", "one")]),
        "whale-version"
    );
}

#[test]
fn query_params_are_decoded_as_linkerds_proxy_decodes_them() {
    // Linkerd's proxy (`MatchQueryParam::is_match`) reads the query with
    // `form_urlencoded::parse` and compares each decoded pair with the route's name
    // and value: `%XX` and `+` are decoded in the request, never in the route, and
    // any pair of a repeated parameter may match.
    let p = authors_with_routes(&[
        (
            "find",
            "  - matches:\n    - queryParams:\n      - {name: q, value: \"a b\"}\n",
        ),
        (
            "plus",
            "  - matches:\n    - queryParams:\n      - {name: op, value: \"a+b\"}\n",
        ),
        (
            "whale",
            "  - matches:\n    - queryParams:\n      - {name: animal, value: whale}\n",
        ),
    ]);
    assert_eq!(routed_to(&p, "/?q=a%20b", &[]), "find");
    assert_eq!(routed_to(&p, "/?q=a+b", &[]), "find");
    assert_eq!(routed_to(&p, "/?%71=a%20b", &[]), "find");
    assert_eq!(routed_to(&p, "/?q=a%2520b", &[]), "404");
    assert_eq!(routed_to(&p, "/?op=a%2Bb", &[]), "plus");
    assert_eq!(routed_to(&p, "/?op=a+b", &[]), "404");
    // Gateway API: "If a query param is repeated in an HTTP request, the behavior is
    // purposely left undefined"; Linkerd matches if any value does.
    assert_eq!(routed_to(&p, "/?animal=dog&animal=whale", &[]), "whale");
    assert_eq!(routed_to(&p, "/?animal=whale&animal=dog", &[]), "whale");
}

#[test]
fn only_the_first_query_param_match_of_a_name_is_considered() {
    // Gateway API: "If multiple entries specify equivalent query param names, only the
    // first entry with an equivalent name MUST be considered for a match. Subsequent
    // entries with an equivalent query param name MUST be ignored." Ignored even when
    // of a type meshless refuses, and reported.
    let server = &BOOKS[..BOOKS
        .find("---\napiVersion: policy.linkerd.io/v1beta2")
        .unwrap()];
    let text = format!(
        "{server}---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {{name: whale, namespace: booksapp}}\nspec:\n  parentRefs: [{{name: authors-server, kind: Server, group: policy.linkerd.io}}]\n  rules:\n  - matches:\n    - queryParams:\n      - {{name: animal, value: whale}}\n      - {{name: animal, value: dolphin}}\n      - {{name: animal, type: RegularExpression, value: \".*\"}}\n"
    );
    let p = Policy::from_yaml_for(&text, &pod("booksapp", "authors")).unwrap();
    let w = p.warnings().join("\n");
    assert!(
        w.contains("HTTPRoute booksapp/whale")
            && w.contains("rules[0].matches[0].queryParams[1]")
            && w.contains("rules[0].matches[0].queryParams[2]"),
        "{w}"
    );
    let webapp = linkerd("webapp", "booksapp");
    let get = |q| {
        decide(
            &p,
            &req(Some(&webapp), 7001, "GET", "/").with_query(Some(q)),
        )
        .verdict()
    };
    // Routed (then denied: no policy targets the route), not 404.
    assert_eq!(get("animal=whale"), Verdict::Deny);
    assert_eq!(get("animal=dolphin"), Verdict::NotFound);
}

#[test]
fn native_query_params_read_the_same_in_yaml_toml_and_json() {
    let yaml = "servers:\n  - name: web\n    ports: [8080]\n    routes:\n      - name: v2\n        matches:\n          - paths: [\"/search\"]\n            query_params: [{name: version, value: \"2\"}]\nrules:\n  - {name: v2-open, action: allow, to: [{routes: [v2]}]}\n";
    let toml = "[[servers]]\nname = \"web\"\nports = [8080]\n[[servers.routes]]\nname = \"v2\"\n[[servers.routes.matches]]\npaths = [\"/search\"]\nquery_params = [{name = \"version\", value = \"2\"}]\n[[rules]]\nname = \"v2-open\"\naction = \"allow\"\nto = [{routes = [\"v2\"]}]\n";
    let json = r#"{"servers": [{"name": "web", "ports": [8080], "routes": [{"name": "v2", "matches": [{"paths": ["/search"], "query_params": [{"name": "version", "value": "2"}]}]}]}], "rules": [{"name": "v2-open", "action": "allow", "to": [{"routes": ["v2"]}]}]}"#;
    let all = [
        Policy::from_yaml(yaml).unwrap(),
        Policy::from_toml(toml).unwrap(),
        Policy::from_json(json).unwrap(),
    ];
    for p in &all {
        assert_eq!(p.spec(), all[0].spec());
        let get = |q| {
            decide(
                p,
                &RequestAttrs::connection(None, ip("10.1.2.3"), Some(8080))
                    .with_request("GET", "/search")
                    .with_query(q),
            )
            .verdict()
        };
        assert_eq!(get(Some("version=2")), Verdict::Allow);
        assert_eq!(get(Some("version=3")), Verdict::NotFound);
        assert_eq!(get(None), Verdict::NotFound);
    }
    // Unknown fields are errors, and a name is required.
    assert!(Policy::from_yaml(&yaml.replace("value: \"2\"", "value: \"2\", type: Exact")).is_err());
    assert!(Policy::from_yaml(&yaml.replace("name: version", "name: \"\"")).is_err());
}
