//! End-user identity in policy: `request_principals`, claim conditions, TCP
//! semantics, errors, explain, and the Istio importer (`requestPrincipals`,
//! `request.auth.*`, `RequestAuthentication`).

use super::tests::{decide, spiffe};
use super::*;
use crate::{Claims, Identity, RequestPrincipal};

const ISS: &str = "https://idp.example.com";

fn user(sub: &str) -> RequestPrincipal {
    RequestPrincipal::new(ISS, sub)
}

fn claims(json: &str) -> Claims {
    Claims::from_json(json).unwrap()
}

fn peer() -> &'static Identity {
    Box::leak(Box::new(spiffe("spiffe://example.org/ns/web/sa/frontend")))
}

/// A request from the frontend workload on behalf of `principal` with `claims`.
fn req<'a>(
    method: &'a str,
    principal: Option<&'a RequestPrincipal>,
    claims: Option<&'a Claims>,
) -> RequestAttrs<'a> {
    RequestAttrs::connection(Some(peer()), None, Some(8443))
        .with_request(method, "/orders/1")
        .with_principal(principal)
        .with_claims(claims)
}

fn rule_policy(rule: &str) -> Policy {
    Policy::from_yaml(&format!("rules:\n  - name: r\n    action: allow\n{rule}")).unwrap()
}

#[test]
fn request_principal_patterns_follow_istio_string_match() {
    let alice = user("alice");
    let bob = RequestPrincipal::new("https://other.example.com", "alice");
    for (pattern, who, want) in [
        ("https://idp.example.com/alice", &alice, true),
        ("https://idp.example.com/alice", &bob, false),
        ("https://idp.example.com/*", &alice, true),
        ("https://idp.example.com/*", &bob, false),
        ("*/alice", &bob, true),
        ("*", &bob, true),
    ] {
        let p = rule_policy(&format!(
            "    from: [{{request_principals: [\"{pattern}\"]}}]\n"
        ));
        assert_eq!(
            decide(&p, &req("GET", Some(who), None)).is_allowed(),
            want,
            "{pattern} vs {who}"
        );
        assert!(
            !decide(&p, &req("GET", None, None)).is_allowed(),
            "{pattern}: no token never matches request_principals"
        );
    }
}

#[test]
fn not_request_principals_catches_requests_without_a_token() {
    // Istio's documented way to require a token: DENY notRequestPrincipals ["*"].
    let p = Policy::from_yaml(
        "default: all-unauthenticated\nrules:\n  - name: require-jwt\n    action: deny\n    from: [{not_request_principals: [\"*\"]}]\n",
    )
    .unwrap();
    let alice = user("alice");
    assert_eq!(
        decide(&p, &req("GET", None, None)).rule(),
        "require-jwt",
        "no token: denied"
    );
    assert!(decide(&p, &req("GET", Some(&alice), None)).is_allowed());
}

#[test]
fn claim_conditions_match_strings_lists_and_nested_paths() {
    let p = rule_policy(
        "    when:\n      - claim: groups\n        values: [\"admin\"]\n      - claim: [realm, roles]\n        not_values: [\"suspended*\"]\n",
    );
    let alice = user("alice");
    let cases = [
        (r#"{"groups": "admin"}"#, true),
        (r#"{"groups": ["dev", "admin"]}"#, true),
        (r#"{"groups": ["dev"]}"#, false),
        (r#"{"groups": [["admin"]]}"#, false),
        (r#"{"groups": 1}"#, false),
        (r#"{}"#, false),
        (
            r#"{"groups": ["admin"], "realm": {"roles": ["x", "suspended-1"]}}"#,
            false,
        ),
        (
            r#"{"groups": ["admin"], "realm": {"roles": "reader"}}"#,
            true,
        ),
        (r#"{"groups": ["admin"], "realm": "suspended"}"#, true),
    ];
    for (json, want) in cases {
        let c = claims(json);
        assert_eq!(
            decide(&p, &req("GET", Some(&alice), Some(&c))).is_allowed(),
            want,
            "{json}"
        );
    }
    assert!(
        !decide(&p, &req("GET", None, None)).is_allowed(),
        "no token: no claims"
    );
    let dotted =
        rule_policy("    when: [{claim: [\"https://example.com/tenant\"], values: [acme]}]\n");
    let c = claims(r#"{"https://example.com/tenant": "acme"}"#);
    assert!(decide(&dotted, &req("GET", Some(&alice), Some(&c))).is_allowed());
}

#[test]
fn the_same_connection_decides_per_request_principal() {
    // PeerRules must not pre-filter on request-level fields.
    let p = Policy::from_yaml(
        "rules:\n  - name: admins-delete\n    action: allow\n    from: [{identities: [\"spiffe://example.org/ns/web/sa/frontend\"], request_principals: [\"https://idp.example.com/*\"]}]\n    to: [{methods: [DELETE]}]\n    when: [{claim: groups, values: [admin]}]\n  - name: users-read\n    action: allow\n    from: [{request_principals: [\"*\"]}]\n    to: [{methods: [GET]}]\n",
    )
    .unwrap();
    let conn = p.for_peer(Some(peer()), None);
    let (alice, admin, dev) = (
        user("alice"),
        claims(r#"{"groups": ["admin"]}"#),
        claims(r#"{"groups": ["dev"]}"#),
    );
    let cases = [
        (req("DELETE", Some(&alice), Some(&admin)), "admins-delete"),
        (req("DELETE", Some(&alice), Some(&dev)), "default:deny"),
        (req("GET", Some(&alice), Some(&dev)), "users-read"),
        (req("GET", None, None), "default:deny"),
    ];
    for (attrs, want) in cases {
        assert_eq!(conn.evaluate(&p, &attrs).rule(), want, "{attrs:?}");
        assert_eq!(decide(&p, &attrs).rule(), want);
    }
}

#[test]
fn request_fields_are_http_only_on_tcp() {
    let p = Policy::from_yaml(
        "default: all-unauthenticated\nlocal_trust_domains: [example.org]\nrules:\n  - name: users\n    action: allow\n    from: [{request_principals: [\"*\"]}]\n  - name: no-bots\n    action: deny\n    from: [{namespaces: [web], not_request_principals: [\"*/bot\"]}]\n",
    )
    .unwrap();
    assert!(p.warnings().iter().any(|w| w.contains("`users`")));
    let tcp = RequestAttrs::connection(Some(peer()), None, Some(8443));
    // The deny rule ignores its request-level field on TCP, so it denies more.
    assert_eq!(decide(&p, &tcp).rule(), "no-bots");
    let allow_only = Policy::from_yaml(
        "rules:\n  - name: users\n    action: allow\n    from: [{request_principals: [\"*\"]}]\n",
    )
    .unwrap();
    assert_eq!(decide(&allow_only, &tcp).rule(), "default:deny");
    let explained = allow_only.explain(&tcp).to_string();
    assert!(
        explained.contains("never matches a TCP connection"),
        "{explained}"
    );
}

#[test]
fn bad_conditions_are_load_errors() {
    let load = |when: &str| {
        Policy::from_yaml(&format!(
            "rules:\n  - name: r\n    action: allow\n    when:\n      - {when}\n"
        ))
    };
    let e = load("{claim: realm.roles, values: [x]}").unwrap_err();
    assert!(e.to_string().contains("[realm, roles]"), "{e}");
    assert_eq!(e.location().and_then(|l| l.line), Some(5), "{e}");
    assert!(load("{claim: groups, header: x, values: [x]}").is_err());
    assert!(load("{values: [x]}").is_err());
    assert!(load("{claim: groups}").is_err(), "needs values");
    assert!(load("{claim: [], values: [x]}").is_err());
    assert!(load("{claims: groups, values: [x]}").is_err(), "typo");
    let empty = Policy::from_yaml(
        "rules:\n  - name: r\n    action: allow\n    from: [{request_principals: []}]\n",
    );
    assert!(empty.is_err());
}

#[test]
fn explain_names_principal_and_claim() {
    let p = rule_policy(
        "    from: [{request_principals: [\"https://idp.example.com/alice\"]}]\n    when: [{claim: groups, values: [admin]}]\n",
    );
    let bob = user("bob");
    let text = p.explain(&req("GET", Some(&bob), None)).to_string();
    assert!(text.contains("from[0].request_principals"), "{text}");
    assert!(text.contains("claim `groups`"), "{text}");
    assert!(
        text.contains("request principal `https://idp.example.com/bob`"),
        "{text}"
    );
}

/// Istio's "Authorization with JWT" task: a RequestAuthentication for
/// `testing@secure.istio.io` and an ALLOW policy on requestPrincipals and the
/// `groups` claim.
const ISTIO_JWT: &str = r#"
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata:
  name: "jwt-example"
  namespace: foo
spec:
  selector:
    matchLabels:
      app: httpbin
  jwtRules:
  - issuer: "testing@secure.istio.io"
    jwksUri: "https://raw.githubusercontent.com/istio/istio/release-1.23/security/tools/jwt/samples/jwks.json"
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: require-jwt
  namespace: foo
spec:
  selector:
    matchLabels:
      app: httpbin
  action: ALLOW
  rules:
  - from:
    - source:
       requestPrincipals: ["testing@secure.istio.io/testing@secure.istio.io"]
    when:
    - key: request.auth.claims[groups]
      values: ["group1"]
"#;

/// The task's `httpbin` workload in namespace `foo`: its selectors match it.
fn httpbin_in_foo() -> WorkloadContext {
    WorkloadContext::new()
        .namespace_name("foo")
        .label("app", "httpbin")
}

#[test]
fn istio_jwt_task_example() {
    let p = Policy::from_yaml_for(ISTIO_JWT, &httpbin_in_foo()).unwrap();
    let ra = &p.request_authentication()[0];
    assert_eq!(ra.name, "foo/jwt-example");
    assert!(ra.has_selector);
    assert_eq!(ra.rules[0].issuer, "testing@secure.istio.io");
    assert!(ra.rules[0].jwks_uri.is_some() && ra.rules[0].jwks.is_none());
    assert!(p.warnings().iter().any(|w| w.contains("no `audiences`")));
    let who = RequestPrincipal::new("testing@secure.istio.io", "testing@secure.istio.io");
    let group1 = claims(r#"{"groups": ["group1", "group2"]}"#);
    let group2 = claims(r#"{"groups": ["group2"]}"#);
    assert!(decide(&p, &req("GET", Some(&who), Some(&group1))).is_allowed());
    assert!(!decide(&p, &req("GET", Some(&who), Some(&group2))).is_allowed());
    assert!(!decide(&p, &req("GET", None, None)).is_allowed());
}

fn istio(rules: &str) -> Result<Policy, PolicyError> {
    Policy::from_yaml(&format!(
        "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: p\n  namespace: ns\nspec:\n{rules}"
    ))
}

#[test]
fn istio_request_auth_condition_keys() {
    let p = istio(
        "  rules:\n  - when:\n    - key: request.auth.principal\n      values: [\"https://idp.example.com/*\"]\n    - key: request.auth.audiences\n      values: [orders]\n    - key: request.auth.presenter\n      notValues: [evil-client]\n    - key: request.auth.claims[realm][roles]\n      values: [writer]\n",
    )
    .unwrap();
    let alice = user("alice");
    let good = claims(
        r#"{"aud": ["web", "orders"], "azp": "web-client", "realm": {"roles": ["writer"]}}"#,
    );
    let evil = claims(r#"{"aud": "orders", "azp": "evil-client", "realm": {"roles": ["writer"]}}"#);
    let other_aud = claims(r#"{"aud": "billing", "realm": {"roles": "writer"}}"#);
    assert!(decide(&p, &req("GET", Some(&alice), Some(&good))).is_allowed());
    assert!(!decide(&p, &req("GET", Some(&alice), Some(&evil))).is_allowed());
    assert!(!decide(&p, &req("GET", Some(&alice), Some(&other_aud))).is_allowed());
    let bob = RequestPrincipal::new("https://other.example.com", "alice");
    assert!(!decide(&p, &req("GET", Some(&bob), Some(&good))).is_allowed());
    for bad in [
        "request.auth.claims",
        "request.auth.claims[a",
        "request.auth.claims[a][]",
        "request.auth.claimz[a]",
    ] {
        let e = istio(&format!(
            "  rules:\n  - when:\n    - key: {bad}\n      values: [x]\n"
        ));
        assert!(e.is_err(), "{bad}");
    }
}

#[test]
fn istio_not_request_principals_deny() {
    // istio.io authentication task: "require a valid token" with DENY.
    let p = istio(
        "  action: DENY\n  rules:\n  - from:\n    - source:\n        notRequestPrincipals: [\"*\"]\n",
    )
    .unwrap();
    let alice = user("alice");
    assert!(!decide(&p, &req("GET", None, None)).is_allowed());
    assert!(decide(&p, &req("GET", Some(&alice), None)).is_allowed());
}

#[test]
fn istio_request_authentication_fields() {
    let p = Policy::from_yaml(
        r#"
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: ra, namespace: ns}
spec:
  jwtRules:
  - issuer: "https://idp.example.com"
    audiences: [orders]
    jwks: '{"keys": []}'
    fromHeaders: [{name: x-jwt-assertion, prefix: "Bearer "}, {name: x-token}]
    fromParams: [token]
    fromCookies: [session]
    forwardOriginalToken: true
    outputClaimToHeaders: [{header: x-sub, claim: sub}]
"#,
    )
    .unwrap();
    let r = &p.request_authentication()[0].rules[0];
    assert_eq!(r.audiences, ["orders"]);
    assert_eq!(
        (
            r.from_headers[0].name.as_str(),
            r.from_headers[0].prefix.as_str()
        ),
        ("x-jwt-assertion", "Bearer ")
    );
    assert_eq!(r.from_headers[1].prefix, "");
    assert_eq!((r.from_params.len(), r.from_cookies.len()), (1, 1));
    assert!(r.forward_original_token);
    assert!(
        p.warnings()
            .iter()
            .any(|w| w.contains("outputClaimToHeaders"))
    );
    let both = Policy::from_yaml(
        "apiVersion: security.istio.io/v1\nkind: RequestAuthentication\nmetadata: {name: ra}\nspec:\n  jwtRules:\n  - issuer: i\n    jwks: x\n    jwksUri: https://x\n",
    );
    assert!(both.is_err());
    let typo = Policy::from_yaml(
        "apiVersion: security.istio.io/v1\nkind: RequestAuthentication\nmetadata: {name: ra}\nspec:\n  jwtRules:\n  - issuer: i\n    audience: [x]\n",
    );
    assert!(typo.is_err(), "unknown fields are errors");
}

#[cfg(all(feature = "jwt", feature = "testing"))]
#[test]
fn request_authentication_converts_to_issuers() {
    use crate::jwt::{JwtVerifier, test_keys::TestJwtKey};
    let key = TestJwtKey::generate("k1", "ES256").unwrap();
    let jwks = TestJwtKey::jwks(&[&key]);
    let yaml = format!(
        "apiVersion: security.istio.io/v1\nkind: RequestAuthentication\nmetadata: {{name: ra}}\nspec:\n  jwtRules:\n  - issuer: \"{ISS}\"\n    audiences: [orders]\n    jwks: '{jwks}'\n"
    );
    let p = Policy::from_yaml(&yaml).unwrap();
    let verifier = JwtVerifier::new(p.request_authentication()[0].to_issuers().unwrap()).unwrap();
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 600;
    let token = |aud: &str| {
        key.sign(&format!(
            r#"{{"iss":"{ISS}","sub":"alice","aud":"{aud}","exp":{exp}}}"#
        ))
        .unwrap()
    };
    let ok = verifier.verify(&token("orders")).unwrap();
    assert_eq!(ok.principal().as_str(), "https://idp.example.com/alice");
    assert!(verifier.verify(&token("billing")).is_err());
    let uri = Policy::from_yaml_for(ISTIO_JWT, &httpbin_in_foo()).unwrap();
    let err = uri.request_authentication()[0].rules[0]
        .to_issuer()
        .unwrap_err();
    assert!(
        matches!(err, RequestAuthnError::JwksUriNeedsHttps { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("jwt-https"));
}

#[test]
fn end_user_fields_in_toml_and_json_round_trip() {
    let toml = r#"
[[rules]]
name = "r"
action = "allow"
from = [{ request_principals = ["https://idp.example.com/*"] }]
when = [{ claim = ["realm", "roles"], values = ["writer"] }, { claim = "groups", not_values = ["banned"] }]
"#;
    let p = Policy::from_toml(toml).unwrap();
    let json = serde_json::to_string(p.spec()).unwrap();
    let again = Policy::from_json(&json).unwrap();
    assert_eq!(p.spec(), again.spec(), "{json}");
    let alice = user("alice");
    let c = claims(r#"{"realm": {"roles": ["reader", "writer"]}, "groups": "dev"}"#);
    for policy in [&p, &again] {
        assert!(decide(policy, &req("GET", Some(&alice), Some(&c))).is_allowed());
        assert!(!decide(policy, &req("GET", None, None)).is_allowed());
    }
}

/// The shape of the Istio JWT task's `require-jwt` policy, on a claim of `key`.
fn istio_claim_policy(key: &str, values: &str) -> Policy {
    istio(&format!(
        "  action: ALLOW\n  rules:\n  - when:\n    - key: request.auth.claims[{key}]\n      values: {values}\n"
    ))
    .unwrap()
}

#[test]
fn istio_scope_and_permission_claims_are_space_delimited() {
    // JWTRule.spaceDelimitedClaims: "The default claims 'scope' and 'permission' are
    // always treated as space-delimited regardless of this setting": their words
    // match one by one, and (the claim becoming a list) the whole string no longer.
    let alice = user("alice");
    let c = claims(r#"{"scope": "read  write", "permission": "orders:get", "groups": "a b"}"#);
    let allowed = |key: &str, values: &str, c: &Claims| {
        decide(
            &istio_claim_policy(key, values),
            &req("GET", Some(&alice), Some(c)),
        )
        .is_allowed()
    };
    assert!(allowed("scope", r#"["read"]"#, &c));
    assert!(allowed("scope", r#"["writ*"]"#, &c));
    assert!(!allowed("scope", r#"["read  write"]"#, &c));
    assert!(allowed("permission", r#"["orders:get"]"#, &c));
    // Only these two: any other claim is matched as sent ("This extends the default
    // behavior that only treats 'scope' and 'permission' claims as space-delimited").
    assert!(!allowed("groups", r#"["a"]"#, &c));
    assert!(allowed("groups", r#"["a b"]"#, &c));
    // Envoy normalizes top-level claims only: `[realm][scope]` is read as sent.
    let nested = claims(r#"{"realm": {"scope": "read write"}}"#);
    assert!(!allowed("realm][scope", r#"["read"]"#, &nested));
    // A list-valued scope is read element by element, its elements not split.
    let list = claims(r#"{"scope": ["read write", "admin"]}"#);
    assert!(allowed("scope", r#"["admin"]"#, &list));
    assert!(!allowed("scope", r#"["read"]"#, &list));
    // `notValues` sees the words too: a token with `admin` among its scopes is denied.
    let deny = istio(
        "  action: DENY\n  rules:\n  - when:\n    - key: request.auth.claims[scope]\n      values: [admin]\n",
    )
    .unwrap();
    let admin = claims(r#"{"scope": "read admin"}"#);
    assert!(!decide(&deny, &req("GET", Some(&alice), Some(&admin))).is_allowed());
    assert!(decide(&deny, &req("GET", Some(&alice), Some(&c))).is_allowed());
}

#[test]
fn claims_marked_space_delimited_by_the_issuer_are_split() {
    // JWTRule.spaceDelimitedClaims: "These claims will be split on whitespace and each
    // individual value will be available for matching in authorization policies" —
    // for the tokens of the rule that lists them, which the JWT layer marks.
    let alice = user("alice");
    let p = istio_claim_policy("roles", r#"["admin"]"#);
    let sent = claims(r#"{"roles": "editor admin"}"#);
    let marked = sent.clone().space_delimited(["roles"]);
    assert!(!decide(&p, &req("GET", Some(&alice), Some(&sent))).is_allowed());
    assert!(decide(&p, &req("GET", Some(&alice), Some(&marked))).is_allowed());
    // The field is read from the manifest; the CRD makes each name non-empty.
    let doc = |claims: &str| {
        Policy::from_yaml(&format!(
            "apiVersion: security.istio.io/v1\nkind: RequestAuthentication\nmetadata: {{name: ra, namespace: ns}}\nspec:\n  jwtRules:\n  - issuer: https://example.com\n    jwks: '{{\"keys\": []}}'\n    spaceDelimitedClaims: {claims}\n"
        ))
    };
    let p = doc(r#"["custom_scope", "provider.login.scope", "roles"]"#).unwrap();
    assert_eq!(
        p.request_authentication()[0].rules[0].space_delimited_claims,
        ["custom_scope", "provider.login.scope", "roles"]
    );
    assert!(doc(r#"[""]"#).is_err());
}

#[cfg(all(feature = "jwt", feature = "testing"))]
#[test]
fn request_authentication_space_delimited_claims_reach_the_verified_claims() {
    use crate::jwt::{JwtVerifier, test_keys::TestJwtKey};
    // The JWTRule example: `spaceDelimitedClaims: [custom_scope, ...]` makes
    // `"custom_scope": "read write admin"` match `admin`; `scope` is always split.
    let key = TestJwtKey::generate("k1", "ES256").unwrap();
    let jwks = TestJwtKey::jwks(&[&key]);
    let yaml = format!(
        "apiVersion: security.istio.io/v1\nkind: RequestAuthentication\nmetadata: {{name: ra, namespace: ns}}\nspec:\n  jwtRules:\n  - issuer: \"{ISS}\"\n    audiences: [orders]\n    jwks: '{jwks}'\n    spaceDelimitedClaims: [custom_scope]\n"
    );
    let ra = Policy::from_yaml(&yaml).unwrap();
    let verifier = JwtVerifier::new(ra.request_authentication()[0].to_issuers().unwrap()).unwrap();
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 600;
    let token = key
        .sign(&format!(
            r#"{{"iss":"{ISS}","sub":"alice","aud":"orders","exp":{exp},"custom_scope":"read write admin","roles":"a b"}}"#
        ))
        .unwrap();
    let (who, c) = verifier.verify(&token).unwrap().into_parts();
    assert!(c.is_space_delimited("custom_scope") && c.is_space_delimited("scope"));
    assert!(c.is_space_delimited("permission") && !c.is_space_delimited("roles"));
    let allowed = |key: &str, v: &str| {
        decide(
            &istio_claim_policy(key, &format!("[{v}]")),
            &req("GET", Some(&who), Some(&c)),
        )
        .is_allowed()
    };
    assert!(allowed("custom_scope", "admin"));
    assert!(!allowed("roles", "a"), "not listed: matched as sent");
}

#[test]
fn jwt_rules_without_issuer_accept_any_issuer_and_need_a_jwks_uri() {
    // Istio's validation: "issuer or jwksUri must be non-empty string"; its release
    // note: "Either the issuer claim or a JWKSUri is required ... the issuer claim may
    // be dynamic". A rule with only a `jwksUri` loads (with a warning); one with
    // neither is invalid.
    let doc = |rule: &str| {
        Policy::from_yaml(&format!(
            "apiVersion: security.istio.io/v1\nkind: RequestAuthentication\nmetadata: {{name: ra, namespace: ns}}\nspec:\n  jwtRules:\n  - {rule}\n"
        ))
    };
    let p = doc("jwksUri: https://idp.example.com/jwks.json").unwrap();
    assert!(
        p.warnings().iter().any(|w| w.contains("no `issuer`")),
        "{:?}",
        p.warnings()
    );
    let ra = &p.request_authentication()[0];
    assert_eq!(ra.rules[0].issuer, "");
    assert_eq!(
        ra.rules[0].jwks_uri.as_deref(),
        Some("https://idp.example.com/jwks.json")
    );
    let e = doc("audiences: [orders]").unwrap_err().to_string();
    assert!(e.contains("`issuer` or a `jwksUri`"), "{e}");
}
