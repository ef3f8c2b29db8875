//! Identity headers: never trusted from the network, optionally set from the verified
//! identity for the application behind the layer.

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};

use crate::{Identity, PeerIdentity};

/// Linkerd's header naming the verified client identity.
pub const L5D_CLIENT_ID: HeaderName = HeaderName::from_static("l5d-client-id");
/// Envoy's / Istio's header describing the verified client certificate.
pub const X_FORWARDED_CLIENT_CERT: HeaderName = HeaderName::from_static("x-forwarded-client-cert");

/// Removes identity headers a client may have sent: anyone can write them, so an
/// application must only ever see the values meshless sets. With `underscores`
/// (header names with `_` let through), every spelling a CGI-style app reads as the
/// same variable (`l5d_client_id`) goes too.
pub(crate) fn strip(headers: &mut HeaderMap, underscores: bool) {
    headers.remove(L5D_CLIENT_ID);
    headers.remove(X_FORWARDED_CLIENT_CERT);
    if underscores {
        let spoofed: Vec<HeaderName> = headers
            .keys()
            .filter(|name| is_identity_header(name.as_str().as_bytes()))
            .cloned()
            .collect();
        for name in spoofed {
            headers.remove(name);
        }
    }
}

/// Whether `name` is an identity header as a CGI-style app reads it: case-insensitive,
/// `_` the same as `-`.
pub(crate) fn is_identity_header(name: &[u8]) -> bool {
    [L5D_CLIENT_ID, X_FORWARDED_CLIENT_CERT].iter().any(|ours| {
        let ours = ours.as_str().as_bytes();
        ours.len() == name.len()
            && ours.iter().zip(name).all(|(&a, &b)| {
                let b = if b == b'_' {
                    b'-'
                } else {
                    b.to_ascii_lowercase()
                };
                a == b
            })
    })
}

/// Sets `l5d-client-id` and `x-forwarded-client-cert` (`URI=<spiffe id>` or
/// `DNS=<linkerd identity>`) from the verified identity; leaves them absent for an
/// unauthenticated peer. The values are built once per connection.
pub(crate) fn set(headers: &mut HeaderMap, peer: &PeerIdentity) {
    let values = peer
        .identity_headers()
        .get_or_init(|| peer.identity().and_then(IdentityHeaders::new).map(Box::new));
    if let Some(values) = values {
        headers.insert(L5D_CLIENT_ID, values.l5d_client_id.clone());
        headers.insert(X_FORWARDED_CLIENT_CERT, values.xfcc.clone());
    }
}

/// The identity header values for one peer.
#[derive(Clone, Debug)]
pub(crate) struct IdentityHeaders {
    l5d_client_id: HeaderValue,
    xfcc: HeaderValue,
}

impl IdentityHeaders {
    fn new(identity: &Identity) -> Option<Self> {
        let xfcc = match identity {
            Identity::Spiffe(spiffe) => format!("URI={spiffe}"),
            Identity::Linkerd(dns) => format!("DNS={dns}"),
        };
        // Identities are validated ASCII without spaces or separators, so these never fail.
        Some(Self {
            l5d_client_id: HeaderValue::from_str(identity.as_str()).ok()?,
            xfcc: HeaderValue::from_maybe_shared(Bytes::from(xfcc)).ok()?,
        })
    }
}
