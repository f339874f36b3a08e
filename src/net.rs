//! Who is on the other end of the connection: the peer address, and the proxies whose
//! forwarding headers may be believed.
//!
//! Several layers need the client's IP (firewall allowlists, budgets keyed by IP, certificates
//! forwarded by a TLS-terminating proxy). Forwarding headers are trivial to forge, so they are
//! believed only when the TCP peer is a configured proxy, and then only back to the first
//! address that is not one ("rightmost untrusted").
//!
//! ```
//! use fhirwall::net::{RemoteAddr, TrustedProxies};
//! use http::HeaderMap;
//!
//! let proxies = TrustedProxies::new(["10.0.0.0/8"]).unwrap();
//! let mut headers = HeaderMap::new();
//! headers.insert("x-forwarded-for", "203.0.113.7, 10.1.2.3".parse().unwrap());
//!
//! // From the proxy: the forwarded client address is used.
//! let peer = RemoteAddr("10.0.0.5:4000".parse().unwrap());
//! assert_eq!(proxies.client_ip(peer.0.ip(), &headers).to_string(), "203.0.113.7");
//!
//! // From anyone else: the header is ignored.
//! let peer = RemoteAddr("198.51.100.1:4000".parse().unwrap());
//! assert_eq!(proxies.client_ip(peer.0.ip(), &headers).to_string(), "198.51.100.1");
//! ```

use http::{Extensions, HeaderMap};
use ipnet::IpNet;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// The TCP peer of the connection a request came on, put in the request extensions by the
/// server (fhirwall's rustls server does; with axum, `ConnectInfo<SocketAddr>` is read too when
/// the `axum` feature is on).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RemoteAddr(pub SocketAddr);

/// The peer address of a request, from [`RemoteAddr`] or axum's `ConnectInfo<SocketAddr>`.
#[inline]
pub fn remote_addr(extensions: &Extensions) -> Option<SocketAddr> {
    if let Some(RemoteAddr(addr)) = extensions.get::<RemoteAddr>() {
        return Some(*addr);
    }
    #[cfg(feature = "axum")]
    if let Some(axum::extract::ConnectInfo(addr)) =
        extensions.get::<axum::extract::ConnectInfo<SocketAddr>>()
    {
        return Some(*addr);
    }
    None
}

/// The SHA-256 thumbprint of the DER of the client certificate verified on this connection,
/// put in the request extensions by the `identity` layer (or by your own TLS code).
///
/// The `smart` layer compares it with a token's `cnf.x5t#S256` (RFC 8705 §3) without needing
/// the certificate itself.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CertificateThumbprint(pub [u8; 32]);

impl std::fmt::Debug for CertificateThumbprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CertificateThumbprint(")?;
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        f.write_str(")")
    }
}

/// A CIDR that could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an IP network in CIDR notation (like 10.0.0.0/8 or 2001:db8::/32)")]
pub struct BadCidr(pub String);

/// A set of IP networks (IPv4 and IPv6), such as allowed client networks or trusted proxies.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IpNetworks {
    nets: Arc<Masks>,
}

/// The networks as address and mask integers, per family: a request's check is then a few
/// integer comparisons, not a walk through `ipnet`'s generic `contains`.
#[derive(Debug, Default, PartialEq, Eq)]
struct Masks {
    v4: Vec<(u32, u32)>,
    v6: Vec<(u128, u128)>,
}

impl IpNetworks {
    /// Networks from CIDR strings; a bare address is a single-host network.
    pub fn new<I, S>(cidrs: I) -> Result<Self, BadCidr>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut masks = Masks::default();
        for s in cidrs {
            let s = s.as_ref().trim();
            let net = s
                .parse::<IpNet>()
                .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| BadCidr(s.chars().take(64).collect()))?;
            match net {
                // `::ffff:a.b.c.d/n` (n >= 96) is the IPv4 network it maps, since addresses
                // are compared in their canonical form.
                IpNet::V6(v6)
                    if v6.prefix_len() >= 96 && v6.network().to_ipv4_mapped().is_some() =>
                {
                    let v4 = v6
                        .network()
                        .to_ipv4_mapped()
                        .unwrap_or(std::net::Ipv4Addr::UNSPECIFIED);
                    let len = v6.prefix_len() - 96;
                    let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
                    masks.v4.push((u32::from(v4) & mask, mask));
                }
                IpNet::V6(v6) => {
                    let mask = u128::from(v6.netmask());
                    masks.v6.push((u128::from(v6.network()) & mask, mask));
                }
                IpNet::V4(v4) => {
                    let mask = u32::from(v4.netmask());
                    masks.v4.push((u32::from(v4.network()) & mask, mask));
                }
            }
        }
        Ok(IpNetworks {
            nets: Arc::new(masks),
        })
    }

    /// Whether `ip` is in one of the networks. IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`)
    /// are compared as IPv4, so a dual-stack listener can't slip past an IPv4 rule.
    #[inline]
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.contains_canonical(canonical(ip))
    }

    /// [`contains`](Self::contains) for an address already in canonical form.
    #[inline]
    pub(crate) fn contains_canonical(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(v4) => {
                let a = u32::from(v4);
                self.nets.v4.iter().any(|&(net, mask)| a & mask == net)
            }
            IpAddr::V6(v6) => {
                let a = u128::from(v6);
                self.nets.v6.iter().any(|&(net, mask)| a & mask == net)
            }
        }
    }

    /// Whether there are no networks.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.nets.v4.is_empty() && self.nets.v6.is_empty()
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it maps; other addresses as they are.
#[inline]
pub(crate) fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// The proxies whose forwarding headers are believed (none by default).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    networks: IpNetworks,
}

impl TrustedProxies {
    /// No trusted proxies: forwarding headers are always ignored.
    pub fn none() -> Self {
        Self::default()
    }

    /// Trusts proxies in these networks.
    pub fn new<I, S>(cidrs: I) -> Result<Self, BadCidr>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Ok(TrustedProxies {
            networks: IpNetworks::new(cidrs)?,
        })
    }

    /// Whether no proxy is trusted.
    #[cfg(feature = "firewall")]
    #[inline]
    pub(crate) fn is_none(&self) -> bool {
        self.networks.is_empty()
    }

    /// Whether this peer is a trusted proxy.
    #[inline]
    pub fn is_trusted(&self, peer: IpAddr) -> bool {
        self.networks.contains(peer)
    }

    /// The client's address: the peer itself unless it is a trusted proxy, else the rightmost
    /// `X-Forwarded-For` address that is not a trusted proxy.
    ///
    /// When the header is missing or malformed the peer's own address is returned, so a bad
    /// header never makes a request look as if it came from elsewhere.
    #[inline]
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if self.networks.is_empty() || !self.is_trusted(peer) {
            return canonical(peer);
        }
        self.forwarded_client_ip(peer, headers)
    }

    /// [`client_ip`](Self::client_ip) for a trusted peer: kept out of line, so the usual
    /// direct connection inlines to a check and a return.
    fn forwarded_client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let mut hops = Vec::new();
        for value in headers.get_all("x-forwarded-for") {
            let Ok(value) = value.to_str() else {
                return canonical(peer);
            };
            for hop in value.split(',') {
                match parse_hop(hop.trim()) {
                    Some(ip) => hops.push(ip),
                    None => return canonical(peer),
                }
            }
        }
        let mut client = canonical(peer);
        for ip in hops.into_iter().rev() {
            client = canonical(ip);
            if !self.is_trusted(client) {
                break;
            }
        }
        client
    }
}

/// One `X-Forwarded-For` hop: an address, optionally bracketed or with a port.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(sa) = hop.parse::<SocketAddr>() {
        return Some(sa.ip());
    }
    hop.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .and_then(|h| h.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in xff {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    #[test]
    fn untrusted_peer_ignores_header() {
        let p = TrustedProxies::none();
        let ip = p.client_ip("198.51.100.1".parse().unwrap(), &headers(&["1.2.3.4"]));
        assert_eq!(ip.to_string(), "198.51.100.1");
    }

    #[test]
    fn rightmost_untrusted_wins() {
        let p = TrustedProxies::new(["10.0.0.0/8"]).unwrap();
        // The client wrote "6.6.6.6" itself; only the hop the proxy added is believed.
        let ip = p.client_ip(
            "10.0.0.1".parse().unwrap(),
            &headers(&["6.6.6.6, 203.0.113.9", "10.2.2.2"]),
        );
        assert_eq!(ip.to_string(), "203.0.113.9");
    }

    #[test]
    fn malformed_header_falls_back_to_peer() {
        let p = TrustedProxies::new(["10.0.0.0/8"]).unwrap();
        let ip = p.client_ip("10.0.0.1".parse().unwrap(), &headers(&["nonsense"]));
        assert_eq!(ip.to_string(), "10.0.0.1");
    }

    #[test]
    fn mapped_ipv6_is_ipv4() {
        let nets = IpNetworks::new(["192.0.2.0/24"]).unwrap();
        assert!(nets.contains("::ffff:192.0.2.7".parse().unwrap()));
        assert!(!nets.contains("2001:db8::1".parse().unwrap()));
    }

    #[test]
    fn bad_cidr_is_an_error() {
        assert!(IpNetworks::new(["10.0.0.0/33"]).is_err());
        assert!(IpNetworks::new(["example.com"]).is_err());
    }
}
