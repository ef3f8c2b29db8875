//! Any YAML (native policy or Kubernetes manifests) either loads or is rejected with
//! an error; it never panics or hangs. A loaded policy evaluates without panicking,
//! and its explanation agrees with its decision.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meshless::policy::{Policy, RequestAttrs};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(policy) = Policy::from_yaml(text) {
        let attrs = RequestAttrs::connection(None, None, Some(8080)).with_request("GET", "/");
        let decision = policy.evaluate(&attrs);
        assert_eq!(policy.explain(&attrs).decision().verdict(), decision.verdict());
    }
});
