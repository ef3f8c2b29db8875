//! Issues a throwaway X.509-SVID with the test CA and prints the identity meshless
//! reads from it; with a PEM file argument, reads that certificate instead.
//!
//! ```text
//! cargo run --example inspect_svid --features testing
//! cargo run --example inspect_svid --features testing -- path/to/svid.pem
//! ```

use meshless::svid;
use meshless::testing::{TestCa, certs_from_pem};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let chain = match std::env::args().nth(1) {
        Some(path) => certs_from_pem(&std::fs::read_to_string(&path)?)?,
        None => {
            let ca = TestCa::new("example.org")?;
            println!("issued a test SVID from a throwaway CA for trust domain example.org");
            ca.issue("spiffe://example.org/ns/shop/sa/checkout")?
                .chain()
                .to_vec()
        }
    };
    match svid::validate_chain(&chain) {
        Ok(id) => {
            println!("identity:        {id}");
            println!("trust domain:    {}", id.trust_domain());
            println!("path:            {}", id.path());
            if let (Some(ns), Some(sa)) = (id.namespace(), id.service_account()) {
                println!("namespace:       {ns}");
                println!("service account: {sa}");
            }
            Ok(())
        }
        Err(e) => {
            // A certificate that is not an X.509-SVID is never mapped to an identity.
            eprintln!("not a valid X.509-SVID: {e}");
            std::process::exit(1)
        }
    }
}
