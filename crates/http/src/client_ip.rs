//! The client's address: the peer's, or — only when the peer is a proxy the operator trusts
//! (`RAPPORT_TRUSTED_PROXIES`) — the nearest untrusted address of `X-Forwarded-For`.
//!
//! Nothing else of `X-Forwarded-For` is believed: anyone can send the header, so from an
//! untrusted peer it would let a client pick a fresh address (and a fresh rate-limit budget)
//! for every request.

use std::net::IpAddr;

use actix_web::HttpRequest;
use ipnet::IpNet;

/// The proxies whose `X-Forwarded-For` is believed. Empty (the default): none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Reads a comma-separated list of addresses and CIDR blocks (`10.0.0.0/8, ::1`).
    pub fn parse(list: &str) -> Result<TrustedProxies, String> {
        let mut nets = Vec::new();
        for item in list.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let net = match item.parse::<IpNet>() {
                Ok(net) => net,
                Err(_) => item
                    .parse::<IpAddr>()
                    .map(IpNet::from)
                    .map_err(|_| format!("{item:?} is not an address or CIDR block"))?,
            };
            nets.push(net);
        }
        Ok(TrustedProxies(nets))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client behind `peer`, given the `X-Forwarded-For` values in order.
    pub fn client<'a>(&self, peer: IpAddr, forwarded: impl Iterator<Item = &'a str>) -> IpAddr {
        let peer = canonical(peer);
        if !self.trusts(peer) {
            return peer;
        }
        let hops: Vec<&str> = forwarded
            .flat_map(|value| value.split(','))
            .map(str::trim)
            .collect();
        // Each proxy appends the address it received from: read from the right, past the
        // proxies we trust, to the first address that is not one of them.
        let mut client = peer;
        for hop in hops.iter().rev() {
            match hop.parse::<IpAddr>() {
                Ok(ip) => {
                    client = canonical(ip);
                    if !self.trusts(client) {
                        break;
                    }
                }
                // An unreadable entry was not written by a proxy we trust: stop at the last
                // address we could believe.
                Err(_) => break,
            }
        }
        client
    }
}

/// An IPv4 address seen through an IPv6 socket (`::ffff:10.0.0.1`) is that IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

/// The client's address for `req`.
pub fn client_ip(req: &HttpRequest, trusted: &TrustedProxies) -> Option<IpAddr> {
    let peer = req.peer_addr()?.ip();
    if trusted.is_empty() {
        return Some(canonical(peer));
    }
    let forwarded = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok());
    Some(trusted.client(peer, forwarded))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn without_trusted_proxies_the_peer_is_the_client_whatever_the_header_says() {
        let none = TrustedProxies::default();
        assert_eq!(
            none.client(ip("203.0.113.9"), ["1.2.3.4"].into_iter()),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn behind_trusted_proxies_the_nearest_untrusted_hop_is_the_client() {
        let trusted = TrustedProxies::parse("10.0.0.0/8, 127.0.0.1").unwrap();
        // A client-supplied first entry is not believed past the real client.
        let forwarded = ["6.6.6.6, 198.51.100.7", "10.1.2.3"];
        assert_eq!(
            trusted.client(ip("127.0.0.1"), forwarded.into_iter()),
            ip("198.51.100.7")
        );
        assert_eq!(
            trusted.client(ip("::ffff:127.0.0.1"), ["198.51.100.7"].into_iter()),
            ip("198.51.100.7")
        );
        // From a peer that is not trusted, the header is ignored.
        assert_eq!(
            trusted.client(ip("192.0.2.1"), ["198.51.100.7"].into_iter()),
            ip("192.0.2.1")
        );
        // A garbled entry stops the walk at the last believable address.
        assert_eq!(
            trusted.client(
                ip("127.0.0.1"),
                ["198.51.100.7, junk, 10.0.0.5"].into_iter()
            ),
            ip("10.0.0.5")
        );
        assert_eq!(
            trusted.client(ip("127.0.0.1"), std::iter::empty()),
            ip("127.0.0.1")
        );
    }

    #[test]
    fn the_list_takes_addresses_and_blocks_and_names_a_bad_item() {
        assert!(TrustedProxies::parse("").unwrap().is_empty());
        assert!(TrustedProxies::parse("::1, 172.16.0.0/12").is_ok());
        assert_eq!(
            TrustedProxies::parse("10.0.0.0/8, proxy").unwrap_err(),
            "\"proxy\" is not an address or CIDR block"
        );
    }
}
