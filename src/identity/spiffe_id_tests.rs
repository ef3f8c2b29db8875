use super::*;
use proptest::prelude::*;

/// A table row: the input and a check of the error it must give.
type Case<'a> = (&'a str, fn(&IdError) -> bool);

#[test]
fn accepts_ids_the_standard_allows() {
    for ok in [
        "spiffe://example.org",
        "spiffe://example.org/workload",
        "spiffe://example.org/ns/default/sa/frontend",
        "spiffe://a",
        "spiffe://1.2.3.4/x",
        "spiffe://trust_domain-with.all_chars/A-Z.a_z-0.9",
        "spiffe://example.org/.hidden",
        "spiffe://example.org/...",
        "spiffe://example.org/a..b",
        "spiffe://example.org/UPPER/Case",
    ] {
        let id = SpiffeId::parse(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        assert_eq!(id.to_string(), ok);
    }
}

#[test]
fn rejects_each_broken_rule_with_its_own_error() {
    use IdError::*;
    let long_td = format!("spiffe://{}", "a".repeat(256));
    let long_id = format!("spiffe://example.org/{}", "a".repeat(MAX_ID_LEN));
    let cases: Vec<Case> = vec![
        ("", |e| matches!(e, Empty)),
        ("example.org/foo", |e| matches!(e, WrongScheme(_))),
        ("SPIFFE://example.org/foo", |e| matches!(e, WrongScheme(_))),
        ("Spiffe://example.org/foo", |e| matches!(e, WrongScheme(_))),
        ("https://example.org/foo", |e| matches!(e, WrongScheme(_))),
        ("spiffe:/example.org/foo", |e| matches!(e, WrongScheme(_))),
        ("spiffe://", |e| matches!(e, MissingTrustDomain(_))),
        ("spiffe:///path", |e| matches!(e, MissingTrustDomain(_))),
        ("spiffe://Example.org/foo", |e| {
            matches!(e, TrustDomainChar { ch: 'E', .. })
        }),
        ("spiffe://exa mple.org", |e| {
            matches!(e, TrustDomainChar { ch: ' ', .. })
        }),
        ("spiffe://\u{212A}ube.org/x", |e| {
            matches!(e, TrustDomainChar { ch: '\u{212A}', .. })
        }),
        ("spiffe://example.org:8080/foo", |e| matches!(e, Port(_))),
        ("spiffe://user@example.org/foo", |e| {
            matches!(e, UserInfo(_))
        }),
        ("spiffe://user:pw@example.org/foo", |e| {
            matches!(e, Port(_) | UserInfo(_))
        }),
        ("spiffe://exa%41mple.org/foo", |e| {
            matches!(e, PercentEncoded(_))
        }),
        ("spiffe://example.org/f%6Fo", |e| {
            matches!(e, PercentEncoded(_))
        }),
        ("spiffe://example.org?q=1", |e| matches!(e, Query(_))),
        ("spiffe://example.org/foo?q=1", |e| matches!(e, Query(_))),
        ("spiffe://example.org#frag", |e| matches!(e, Fragment(_))),
        ("spiffe://example.org/foo#frag", |e| {
            matches!(e, Fragment(_))
        }),
        ("spiffe://example.org/", |e| matches!(e, TrailingSlash(_))),
        ("spiffe://example.org/foo/", |e| {
            matches!(e, TrailingSlash(_))
        }),
        ("spiffe://example.org//foo", |e| {
            matches!(e, EmptySegment(_))
        }),
        ("spiffe://example.org/foo//bar", |e| {
            matches!(e, EmptySegment(_))
        }),
        ("spiffe://example.org/.", |e| matches!(e, DotSegment(_))),
        ("spiffe://example.org/..", |e| matches!(e, DotSegment(_))),
        ("spiffe://example.org/a/./b", |e| matches!(e, DotSegment(_))),
        ("spiffe://example.org/a/../b", |e| {
            matches!(e, DotSegment(_))
        }),
        ("spiffe://example.org/a b", |e| {
            matches!(e, PathChar { ch: ' ', .. })
        }),
        ("spiffe://example.org/a:b", |e| {
            matches!(e, PathChar { ch: ':', .. })
        }),
        ("spiffe://example.org/é", |e| {
            matches!(e, PathChar { ch: 'é', .. })
        }),
        ("spiffe://example.org/a\\b", |e| {
            matches!(e, PathChar { ch: '\\', .. })
        }),
        ("spiffe://example.org/a\0b", |e| {
            matches!(e, PathChar { ch: '\0', .. })
        }),
        (&long_td, |e| matches!(e, TrustDomainTooLong(256))),
        (&long_id, |e| matches!(e, TooLong(_))),
    ];
    for (input, check) in cases {
        let err = SpiffeId::parse(input).expect_err(input);
        assert!(check(&err), "{input:?}: unexpected error {err:?}");
        assert!(!err.to_string().ends_with('.'), "{err}");
    }
}

#[test]
fn accepts_ids_at_the_length_limits() {
    let td = "a".repeat(MAX_TRUST_DOMAIN_LEN);
    assert!(TrustDomain::new(&td).is_ok());
    let prefix = "spiffe://example.org/";
    let id = format!("{prefix}{}", "a".repeat(MAX_ID_LEN - prefix.len()));
    assert_eq!(id.len(), MAX_ID_LEN);
    assert!(SpiffeId::parse(&id).is_ok());
    let over = format!("{id}a");
    assert_eq!(
        SpiffeId::parse(&over),
        Err(IdError::TooLong(MAX_ID_LEN + 1))
    );
}

#[test]
fn trust_domain_accepts_name_or_its_id_only() {
    assert_eq!(
        TrustDomain::new("example.org").unwrap().as_str(),
        "example.org"
    );
    assert_eq!(
        TrustDomain::new("spiffe://example.org").unwrap().as_str(),
        "example.org"
    );
    assert!(matches!(
        TrustDomain::new("spiffe://example.org/x"),
        Err(IdError::NotTrustDomain(_))
    ));
    assert!(matches!(
        TrustDomain::new("SPIFFE://example.org"),
        Err(IdError::WrongScheme(_))
    ));
    assert!(matches!(
        TrustDomain::new(""),
        Err(IdError::MissingTrustDomain(_))
    ));
    assert!(matches!(
        TrustDomain::new("example.org/x"),
        Err(IdError::TrustDomainChar { ch: '/', .. })
    ));
    assert!(matches!(
        TrustDomain::new("EXAMPLE.org"),
        Err(IdError::TrustDomainChar { .. })
    ));
}

#[test]
fn accessors_split_the_id() {
    let id = SpiffeId::parse("spiffe://example.org/ns/web/sa/frontend").unwrap();
    assert_eq!(id.trust_domain().as_str(), "example.org");
    assert_eq!(id.path(), "/ns/web/sa/frontend");
    assert_eq!(
        id.segments().collect::<Vec<_>>(),
        ["ns", "web", "sa", "frontend"]
    );
    assert_eq!(
        (id.namespace(), id.service_account()),
        (Some("web"), Some("frontend"))
    );
    assert!(!id.is_trust_domain_id());

    let root = id.trust_domain().id();
    assert_eq!(root.to_string(), "spiffe://example.org");
    assert!(root.is_trust_domain_id());
    assert_eq!(root.segments().count(), 0);

    for not_k8s in [
        "spiffe://example.org/ns/web/sa",
        "spiffe://example.org/ns/web/sa/frontend/extra",
        "spiffe://example.org/namespace/web/sa/frontend",
        "spiffe://example.org/ns/web/serviceaccount/frontend",
    ] {
        let id = SpiffeId::parse(not_k8s).unwrap();
        assert_eq!(
            (id.namespace(), id.service_account()),
            (None, None),
            "{not_k8s}"
        );
    }
}

#[test]
fn new_builds_from_segments_and_validates_them() {
    let td = TrustDomain::new("example.org").unwrap();
    let id = SpiffeId::new(&td, ["ns", "a", "sa", "b"]).unwrap();
    assert_eq!(id.as_str(), "spiffe://example.org/ns/a/sa/b");
    assert_eq!(SpiffeId::new(&td, [] as [&str; 0]).unwrap(), td.id());
    assert!(matches!(
        SpiffeId::new(&td, ["a/b"]),
        Err(IdError::PathChar { ch: '/', .. })
    ));
    assert!(matches!(
        SpiffeId::new(&td, [""]),
        Err(IdError::EmptySegment(_))
    ));
    assert!(matches!(
        SpiffeId::new(&td, [".."]),
        Err(IdError::DotSegment(_))
    ));
    assert!(matches!(
        SpiffeId::new(&td, ["a?b"]),
        Err(IdError::Query(_))
    ));
}

#[test]
fn serde_validates() {
    let id: SpiffeId = serde_json::from_str(r#""spiffe://example.org/x""#).unwrap();
    assert_eq!(
        serde_json::to_string(&id).unwrap(),
        r#""spiffe://example.org/x""#
    );
    let err = serde_json::from_str::<SpiffeId>(r#""spiffe://Example.org/x""#).unwrap_err();
    assert!(err.to_string().contains("trust domain"), "{err}");
    assert!(serde_json::from_str::<TrustDomain>(r#""a..b""#).is_ok());
    assert!(serde_json::from_str::<TrustDomain>(r#""a:1""#).is_err());
}

#[test]
fn equality_and_order_follow_the_string() {
    let a = SpiffeId::parse("spiffe://a/x").unwrap();
    let b = SpiffeId::parse("spiffe://b/x").unwrap();
    assert!(a < b);
    assert_ne!(a, SpiffeId::parse("spiffe://a/X").unwrap());
    let set: std::collections::HashSet<_> = [a.clone(), a.clone(), b].into_iter().collect();
    assert_eq!(set.len(), 2);
}

fn td_strategy() -> impl Strategy<Value = String> {
    "[a-z0-9._-]{1,40}"
}

fn segment_strategy() -> impl Strategy<Value = String> {
    "[A-Za-z0-9._-]{1,20}".prop_filter("dot segment", |s| s != "." && s != "..")
}

proptest! {
    #[test]
    fn display_round_trips(td in td_strategy(), segs in prop::collection::vec(segment_strategy(), 0..8)) {
        let td = TrustDomain::new(&td).unwrap();
        let id = SpiffeId::new(&td, &segs).unwrap();
        let again: SpiffeId = id.to_string().parse().unwrap();
        prop_assert_eq!(&again, &id);
        prop_assert_eq!(again.trust_domain(), &td);
        prop_assert_eq!(again.segments().collect::<Vec<_>>(), segs.iter().map(String::as_str).collect::<Vec<_>>());
    }

    #[test]
    fn parse_never_panics_and_accepted_input_round_trips(s in any::<String>()) {
        if let Ok(id) = SpiffeId::parse(&s) {
            prop_assert_eq!(id.to_string(), s.clone());
        }
        let _ = TrustDomain::new(&s);
    }

    #[test]
    fn parse_never_panics_on_near_ids(s in "spiffe://[a-zA-Z0-9._%:@?#/\\\\-]{0,30}") {
        if let Ok(id) = SpiffeId::parse(&s) {
            prop_assert!(s.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-/:".contains(&b)));
            prop_assert_eq!(id.as_str(), s.as_str());
        }
    }
}
