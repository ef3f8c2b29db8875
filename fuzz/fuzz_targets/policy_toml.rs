//! Any TOML either loads as a policy or is rejected with an error; never a panic.
//! A loaded policy survives a JSON round trip of its model unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meshless::policy::Policy;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(policy) = Policy::from_toml(text) {
        let json = serde_json::to_string(policy.spec()).expect("a loaded policy serializes");
        let again = Policy::from_json(&json).expect("a serialized policy loads");
        assert_eq!(again.spec(), policy.spec());
    }
});
