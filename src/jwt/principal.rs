//! [`RequestPrincipal`]: who the end user (or calling workload) of a request is, as
//! proven by a verified JWT.

use std::fmt;
use std::sync::Arc;

use crate::SpiffeId;

/// The principal a verified JWT proves, written the way Istio writes
/// `requestPrincipals`: `<iss>/<sub>`.
///
/// The JWT layer puts one into the request extensions when (and only when) a token
/// verified; a request without a token carries none, and policy decides (as in Istio).
///
/// A JWT-SVID (a token whose `sub` is a SPIFFE ID, verified against the `jwt-svid` keys
/// of that trust domain's bundle) also exposes the verified [`SpiffeId`]. JWT-SVIDs
/// often carry no `iss`; their principal is then the SPIFFE ID alone. A principal of
/// an OIDC issuer always contains the issuer and a `/`, and issuers starting with
/// `spiffe:` are refused at configuration, so the two forms can never be confused.
///
/// ```
/// use meshless::RequestPrincipal;
/// let p = RequestPrincipal::new("https://accounts.example.com", "user-42");
/// assert_eq!(p.as_str(), "https://accounts.example.com/user-42");
/// assert_eq!(p.issuer(), Some("https://accounts.example.com"));
/// assert_eq!(p.subject(), "user-42");
/// assert!(p.spiffe_id().is_none());
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RequestPrincipal {
    text: Arc<str>,
    /// Length of the issuer in `text`, when there is one (`text[..n]` is the issuer,
    /// `text[n + 1..]` the subject).
    issuer_len: Option<usize>,
    spiffe: Option<SpiffeId>,
}

impl RequestPrincipal {
    /// The principal `<issuer>/<subject>` of a token from an OIDC-style issuer.
    pub fn new(issuer: &str, subject: &str) -> Self {
        Self {
            text: format!("{issuer}/{subject}").into(),
            issuer_len: Some(issuer.len()),
            spiffe: None,
        }
    }

    /// The principal of a verified JWT-SVID: `<issuer>/<spiffe id>` when the token
    /// names an issuer, else the SPIFFE ID alone.
    pub fn jwt_svid(id: SpiffeId, issuer: Option<&str>) -> Self {
        let (text, issuer_len) = match issuer {
            Some(iss) => (format!("{iss}/{id}").into(), Some(iss.len())),
            None => (Arc::from(id.as_str()), None),
        };
        Self {
            text,
            issuer_len,
            spiffe: Some(id),
        }
    }

    /// The principal as policy matches it (`request.auth.principal` in Istio).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The token's issuer (`iss`), if it had one.
    pub fn issuer(&self) -> Option<&str> {
        self.issuer_len.map(|n| &self.text[..n])
    }

    /// The token's subject (`sub`).
    pub fn subject(&self) -> &str {
        match self.issuer_len {
            Some(n) => &self.text[n + 1..],
            None => &self.text,
        }
    }

    /// The SPIFFE ID proven by a JWT-SVID; `None` for tokens of other issuers, even if
    /// their `sub` happens to look like a SPIFFE ID.
    pub fn spiffe_id(&self) -> Option<&SpiffeId> {
        self.spiffe.as_ref()
    }
}

impl fmt::Display for RequestPrincipal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for RequestPrincipal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("RequestPrincipal");
        d.field("principal", &&*self.text);
        if let Some(id) = &self.spiffe {
            d.field("jwt_svid", id);
        }
        d.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_issuer_and_subject_at_the_recorded_boundary() {
        // The issuer itself contains slashes; the split is not a search for '/'.
        let p = RequestPrincipal::new("https://idp.example.com/realms/a", "u/1");
        assert_eq!(p.issuer(), Some("https://idp.example.com/realms/a"));
        assert_eq!(p.subject(), "u/1");
        assert_eq!(p.to_string(), "https://idp.example.com/realms/a/u/1");
    }

    #[test]
    fn jwt_svid_without_issuer_is_the_spiffe_id() {
        let id: SpiffeId = "spiffe://example.org/ns/a/sa/b".parse().unwrap();
        let p = RequestPrincipal::jwt_svid(id.clone(), None);
        assert_eq!(p.as_str(), "spiffe://example.org/ns/a/sa/b");
        assert_eq!(p.issuer(), None);
        assert_eq!(p.subject(), id.as_str());
        assert_eq!(p.spiffe_id(), Some(&id));
        let q = RequestPrincipal::jwt_svid(id.clone(), Some("https://oidc.example.org"));
        assert_eq!(
            q.as_str(),
            "https://oidc.example.org/spiffe://example.org/ns/a/sa/b"
        );
        assert_eq!(q.subject(), id.as_str());
    }
}
