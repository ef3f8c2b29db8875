//! Validated field values: networks, ports, hosts, methods, namespaces, service
//! accounts, trust domains, header names. A value that could never match (a
//! namespace with a `/`, a trust domain with a path) is a load error, not a rule that
//! silently matches nobody.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};

use super::pattern::StringMatch;
use crate::TrustDomain;

/// An IP network in CIDR notation (`10.0.0.0/8`, `fd00::/8`; a bare address is a
/// single host). Host bits are cleared.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Whether `ip` is inside the network. IPv4-mapped IPv6 addresses
    /// (`::ffff:10.1.2.3`) are treated as the IPv4 address.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, canonical_ip(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                mask32(u32::from(ip), self.prefix) == u32::from(net)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                mask128(u128::from(ip), self.prefix) == u128::from(net)
            }
            _ => false,
        }
    }

    fn covers(&self, other: &Cidr) -> bool {
        other.prefix >= self.prefix && self.contains(other.addr)
    }
}

/// An address as policy sees it: IPv4-mapped IPv6 becomes IPv4.
pub(crate) fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

fn mask32(v: u32, prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        v & (u32::MAX << (32 - u32::from(prefix)))
    }
}

fn mask128(v: u128, prefix: u8) -> u128 {
    if prefix == 0 {
        0
    } else {
        v & (u128::MAX << (128 - u32::from(prefix)))
    }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("`{s}` is not a cidr (like `10.0.0.0/8` or `fd00::/8`)");
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| bad())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && p.len() <= 3 => {
                p.parse::<u8>().map_err(|_| bad())?
            }
            Some(_) => return Err(bad()),
            None => max,
        };
        if prefix > max {
            return Err(bad());
        }
        let addr = match addr {
            IpAddr::V4(a) => IpAddr::V4(mask32(a.into(), prefix).into()),
            IpAddr::V6(a) => IpAddr::V6(mask128(a.into(), prefix).into()),
        };
        Ok(Self { addr, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// A network: a CIDR minus the CIDRs in `except`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Network {
    /// The network.
    pub cidr: Cidr,
    /// Sub-networks excluded from it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub except: Vec<Cidr>,
}

impl Network {
    /// Whether `ip` is in `cidr` and in none of `except`.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.cidr.contains(ip) && !self.except.iter().any(|e| e.contains(ip))
    }

    pub(crate) fn new(cidr: Cidr, except: Vec<Cidr>) -> Result<Self, String> {
        if let Some(e) = except.iter().find(|e| !cidr.covers(e)) {
            return Err(format!("except `{e}` is not inside `{cidr}`"));
        }
        Ok(Self { cidr, except })
    }
}

impl FromStr for Network {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(Self {
            cidr: s.parse()?,
            except: Vec::new(),
        })
    }
}

impl<'de> Deserialize<'de> for Network {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Network;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a cidr string or {cidr, except}")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Network, E> {
                Ok(Network {
                    cidr: s.parse().map_err(E::custom)?,
                    except: Vec::new(),
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Network, A::Error> {
                #[derive(Deserialize)]
                #[serde(deny_unknown_fields)]
                struct Full {
                    cidr: Cidr,
                    #[serde(default)]
                    except: Vec<Cidr>,
                }
                let full = Full::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Network::new(full.cidr, full.except).map_err(de::Error::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// A destination port or an inclusive range (`8443`, `"8000-8999"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PortRange {
    /// First port.
    pub start: u16,
    /// Last port (inclusive).
    pub end: u16,
}

impl PortRange {
    /// Whether `port` is in the range.
    pub fn contains(&self, port: u16) -> bool {
        (self.start..=self.end).contains(&port)
    }
}

impl FromStr for PortRange {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("`{s}` is not a port (1-65535) or a range like `8000-8999`");
        let num = |p: &str| -> Result<u16, String> {
            match p.trim().parse::<u16>() {
                Ok(0) | Err(_) => Err(bad()),
                Ok(v) => Ok(v),
            }
        };
        let (start, end) = match s.split_once('-') {
            Some((a, b)) => (num(a)?, num(b)?),
            None => (num(s)?, num(s)?),
        };
        if start > end {
            return Err(bad());
        }
        Ok(Self { start, end })
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.start == self.end {
            write!(f, "{}", self.start)
        } else {
            write!(f, "{}-{}", self.start, self.end)
        }
    }
}

impl<'de> Deserialize<'de> for PortRange {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = PortRange;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a port number or a range string")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<PortRange, E> {
                match u16::try_from(v) {
                    Ok(p) if p > 0 => Ok(PortRange { start: p, end: p }),
                    _ => Err(E::custom(format!("`{v}` is not a port (1-65535)"))),
                }
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<PortRange, E> {
                u64::try_from(v)
                    .map_err(|_| E::custom(format!("`{v}` is not a port (1-65535)")))
                    .and_then(|v| self.visit_u64(v))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<PortRange, E> {
                s.parse().map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// A host pattern: a lowercase [`StringMatch`] without port (`api.example.org`,
/// `*.example.org`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostPattern(pub(crate) StringMatch);

impl FromStr for HostPattern {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let lower = s.to_ascii_lowercase();
        let lower = lower.strip_suffix('.').unwrap_or(&lower);
        if lower.contains(':') && !lower.starts_with('[') {
            return Err(format!(
                "`{s}`: host patterns never carry a port (ports are matched by `ports`; `authorities` match the authority with its port, as Istio's `hosts` do)"
            ));
        }
        Ok(Self(
            StringMatch::parse(lower).map_err(|e| format!("host {e}"))?,
        ))
    }
}

/// An authority pattern: a [`StringMatch`] over the request's authority as the client
/// sent it, `host[:port]` (Istio's `hosts`, see
/// [`OperationSpec::authorities`](super::OperationSpec::authorities)). Compared case
/// insensitively (the pattern is lower-cased, as the authority is) and with the port:
/// `api.example.org` matches only an authority without a port, `api.example.org:8443`
/// only that port, `api.example.org:*` any port, `*.example.org:443` any name under
/// `example.org` on port 443.
///
/// A trailing dot of the host is removed and the port read as a number
/// (`Example.ORG.:0443` is `example.org:443`), as the authority is normalized. A
/// pattern that no valid authority could match (`a/b`, `user@host`, `host:abc`) is
/// refused rather than loaded.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AuthorityPattern(pub(crate) StringMatch);

impl FromStr for AuthorityPattern {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let lower = s.to_ascii_lowercase();
        let never = || {
            format!(
                "`{s}` can match no authority (`host`, `host:port`, `[v6]:port`, with `*` first or last)"
            )
        };
        if let Some(c) = lower.chars().find(|c| {
            !(c.is_ascii_alphanumeric()
                || matches!(c, '-' | '.' | '_' | '~' | ':' | '[' | ']' | '*'))
        }) {
            return Err(format!("{}: `{c}` is not part of an authority", never()));
        }
        let m = StringMatch::parse(&lower).map_err(|e| format!("authority {e}"))?;
        Ok(Self(match m {
            StringMatch::Exact(t) => {
                let (host, port) = super::normalize::split_authority(&t).ok_or_else(never)?;
                StringMatch::Exact(super::normalize::normalize_authority(&t, host, port).into())
            }
            StringMatch::Suffix(t) => {
                let t = t.replace(".:", ":");
                StringMatch::Suffix(t.strip_suffix('.').unwrap_or(&t).into())
            }
            StringMatch::Prefix(t) => StringMatch::Prefix(t.replace(".:", ":").into()),
            StringMatch::Any => StringMatch::Any,
        }))
    }
}

/// An HTTP method pattern: upper-case method names or `*`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MethodPattern(pub(crate) StringMatch);

impl FromStr for MethodPattern {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if !s
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b == b'*' || b == b'-' || b == b'_')
        {
            return Err(format!("`{s}`: methods are upper-case tokens like `GET`"));
        }
        Ok(Self(
            StringMatch::parse(s).map_err(|e| format!("method {e}"))?,
        ))
    }
}

/// A header value or other plain [`StringMatch`] value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TextPattern(pub(crate) StringMatch);

impl FromStr for TextPattern {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(Self(StringMatch::parse(s)?))
    }
}

/// Parses one half of a Kubernetes name pattern (a namespace, or a service account's
/// name): a [`StringMatch`] whose text is made of the characters an identity's
/// namespace or service account can hold — a SPIFFE path segment's `[A-Za-z0-9._-]`
/// (a Linkerd identity's DNS labels are a subset) — and that is not `.` or `..`. Any
/// other value could never match a peer, so it is refused rather than loaded.
fn kube_name(s: &str, what: &str) -> Result<StringMatch, String> {
    let m = StringMatch::parse(s)?;
    let text = match &m {
        StringMatch::Exact(t) | StringMatch::Prefix(t) | StringMatch::Suffix(t) => &**t,
        StringMatch::Any => "",
    };
    let bad = text
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')));
    match bad {
        Some(c) => Err(format!(
            "`{s}` contains `{c}`, which no {what} of an identity can hold (letters, digits, `.`, `-` and `_`), so it never matches"
        )),
        None if matches!(m.exact(), Some("." | "..")) => Err(format!(
            "`{s}` is a dot segment, which no {what} of an identity can be, so it never matches"
        )),
        None => Ok(m),
    }
}

/// A namespace pattern: a [`StringMatch`] over the Kubernetes namespace of the peer's
/// identity (`spiffe://<td>/ns/<ns>/sa/<sa>`, or a Linkerd identity). Values no
/// namespace can hold (`web/frontend`, `spiffe://...`) are refused at load.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NamespacePattern(pub(crate) StringMatch);

impl FromStr for NamespacePattern {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        kube_name(s, "namespace").map(Self).map_err(|e| {
            if s.contains('/') && !s.contains("://") {
                format!(
                    "{e}: a service account is written `namespace/name` under `service_accounts`"
                )
            } else {
                e
            }
        })
    }
}

/// A service account `namespace/name`, each half a [`StringMatch`]; `*` alone is any.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ServiceAccountPattern {
    pub(crate) namespace: StringMatch,
    pub(crate) name: StringMatch,
}

impl FromStr for ServiceAccountPattern {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "*" {
            return Ok(Self {
                namespace: StringMatch::Any,
                name: StringMatch::Any,
            });
        }
        match s.split_once('/') {
            Some((ns, sa)) if !sa.contains('/') => Ok(Self {
                namespace: kube_name(ns, "namespace")
                    .map_err(|e| format!("`{s}`: namespace {e}"))?,
                name: kube_name(sa, "service account")
                    .map_err(|e| format!("`{s}`: service account {e}"))?,
            }),
            _ => Err(format!(
                "`{s}`: service accounts are written `namespace/name`"
            )),
        }
    }
}

/// A trust domain name, such as `example.org` (SPIFFE rules: lower-case letters,
/// digits, `.`, `-` and `_`); compared with a SPIFFE ID's trust domain and with a
/// Linkerd identity's DNS trust domain.
///
/// The ID of a trust domain, `spiffe://example.org` (with or without a trailing `/`),
/// is read as `example.org`. Anything else that is not a trust domain name — a
/// workload ID with a path, upper case, a port — is refused at load with what was
/// written, never kept as a value that matches no peer.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TrustDomainName(pub(crate) Box<str>);

impl TrustDomainName {
    /// The trust domain name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for TrustDomainName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let text = s
            .strip_suffix('/')
            .filter(|t| t.starts_with("spiffe://"))
            .unwrap_or(s);
        match TrustDomain::new(text) {
            Ok(td) => Ok(Self(td.as_str().into())),
            Err(crate::IdError::NotTrustDomain(_)) => {
                let rest = text.strip_prefix("spiffe://").unwrap_or(text);
                let td = rest.split('/').next().unwrap_or_default();
                Err(format!(
                    "`{s}` is a workload ID, not a trust domain: write the trust domain `{td}`"
                ))
            }
            Err(e) => Err(format!("`{s}` is not a trust domain: {e}")),
        }
    }
}

/// A header name (lower case on the wire; matched case-insensitively).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HeaderNamePattern(pub(crate) http::HeaderName);

impl FromStr for HeaderNamePattern {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        http::HeaderName::from_bytes(s.as_bytes())
            .map(Self)
            .map_err(|_| format!("`{s}` is not a valid header name"))
    }
}

macro_rules! display_via {
    ($($ty:ty => |$v:ident, $f:ident| $body:expr),* $(,)?) => {$(
        impl fmt::Display for $ty {
            fn fmt(&self, $f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let $v = self;
                $body
            }
        }
    )*};
}
display_via!(
    HostPattern => |v, f| fmt::Display::fmt(&v.0, f),
    AuthorityPattern => |v, f| fmt::Display::fmt(&v.0, f),
    MethodPattern => |v, f| fmt::Display::fmt(&v.0, f),
    TextPattern => |v, f| fmt::Display::fmt(&v.0, f),
    NamespacePattern => |v, f| fmt::Display::fmt(&v.0, f),
    ServiceAccountPattern => |v, f| if v.namespace == StringMatch::Any && v.name == StringMatch::Any {
        f.write_str("*")
    } else {
        write!(f, "{}/{}", v.namespace, v.name)
    },
    TrustDomainName => |v, f| f.write_str(&v.0),
    HeaderNamePattern => |v, f| f.write_str(v.0.as_str()),
);

impl fmt::Debug for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{self}`")
    }
}

macro_rules! serde_via_str {
    ($($ty:ty),*) => {$(
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(de::Error::custom)
            }
        }
        impl Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
    )*};
}
serde_via_str!(
    Cidr,
    HostPattern,
    AuthorityPattern,
    MethodPattern,
    TextPattern,
    NamespacePattern,
    ServiceAccountPattern,
    TrustDomainName,
    HeaderNamePattern
);

impl Serialize for PortRange {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.start == self.end {
            s.serialize_u16(self.start)
        } else {
            s.collect_str(self)
        }
    }
}
