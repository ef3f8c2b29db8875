//! SPIFFE ID and trust domain parsing: never panics; whatever is accepted round-trips
//! through `Display`, and obeys the character rules of the SPIFFE-ID standard.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meshless::{LinkerdId, SpiffeId, TrustDomain};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(id) = SpiffeId::parse(s) {
        assert_eq!(id.to_string(), s, "display must round-trip");
        assert_eq!(SpiffeId::parse(&id.to_string()).as_ref(), Ok(&id));
        assert!(s.len() <= meshless::MAX_ID_LEN);
        assert!(s.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-/:".contains(&b)));
        let td = id.trust_domain().as_str();
        assert!(td.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b)));
        for seg in id.segments() {
            assert!(!seg.is_empty() && seg != "." && seg != "..");
        }
        let rebuilt = SpiffeId::new(id.trust_domain(), id.segments()).expect("segments of a valid ID rebuild it");
        assert_eq!(rebuilt, id);
    }
    if let Ok(td) = TrustDomain::new(s) {
        assert_eq!(TrustDomain::new(&td.to_string()).as_ref(), Ok(&td));
        assert!(td.id().is_trust_domain_id());
    }
    if let Ok(l5d) = LinkerdId::parse(s) {
        assert_eq!(l5d.to_string(), s);
        let rebuilt = format!(
            "{}.{}.serviceaccount.identity.{}.{}",
            l5d.service_account(),
            l5d.namespace(),
            l5d.control_plane_namespace(),
            l5d.trust_domain()
        );
        assert_eq!(rebuilt, s);
    }
});
