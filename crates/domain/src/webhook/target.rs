//! Where webhooks may send. Any owner can name a webhook's URL, and the server POSTs to it
//! from inside the operator's network, so by default a target must be a public unicast
//! address: never loopback, private, link-local, carrier-grade NAT, multicast, documentation
//! or reserved ranges, nor an IPv6 form that embeds one of those (IPv4-mapped, NAT64). The
//! operator may allow private targets altogether, or only some host names and networks.
//!
//! Two places apply the policy: the API refuses at once what the URL alone shows (credentials,
//! an address literal, `localhost`), without looking anything up; the delivery worker checks
//! every address it is about to connect to, after resolving the name, so a name that resolves
//! differently later (DNS rebinding) gains nothing.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

/// Whether `ip` is a public unicast address: one a webhook may reach by default.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

/// IPv4 ranges that are not public unicast (RFC 6890 and its updates).
const NOT_PUBLIC_V4: [(Ipv4Addr, u8); 15] = [
    (Ipv4Addr::new(0, 0, 0, 0), 8), // "this network", the unspecified address
    (Ipv4Addr::new(10, 0, 0, 0), 8), // private
    (Ipv4Addr::new(100, 64, 0, 0), 10), // carrier-grade NAT
    (Ipv4Addr::new(127, 0, 0, 0), 8), // loopback
    (Ipv4Addr::new(169, 254, 0, 0), 16), // link-local, cloud metadata services
    (Ipv4Addr::new(172, 16, 0, 0), 12), // private
    (Ipv4Addr::new(192, 0, 0, 0), 24), // IETF protocol assignments
    (Ipv4Addr::new(192, 0, 2, 0), 24), // documentation (TEST-NET-1)
    (Ipv4Addr::new(192, 88, 99, 0), 24), // 6to4 relay anycast (deprecated)
    (Ipv4Addr::new(192, 168, 0, 0), 16), // private
    (Ipv4Addr::new(198, 18, 0, 0), 15), // benchmarking
    (Ipv4Addr::new(198, 51, 100, 0), 24), // documentation (TEST-NET-2)
    (Ipv4Addr::new(203, 0, 113, 0), 24), // documentation (TEST-NET-3)
    (Ipv4Addr::new(224, 0, 0, 0), 4), // multicast
    (Ipv4Addr::new(240, 0, 0, 0), 4), // reserved, and the broadcast address
];

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let bits = u32::from(ip);
    !NOT_PUBLIC_V4.iter().any(|(network, prefix)| {
        let mask = u32::MAX << (32 - u32::from(*prefix));
        bits & mask == u32::from(*network)
    })
}

/// Public IPv6 unicast is inside 2000::/3 (everything outside — loopback, unspecified,
/// IPv4-compatible, discard-only, unique-local fc00::/7, link-local fe80::/10, site-local,
/// multicast — is not), minus these special ranges.
const NOT_PUBLIC_V6_IN_GLOBAL: [(Ipv6Addr, u8); 5] = [
    (Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0), 23), // IETF protocol assignments, Teredo
    (Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0), 32), // documentation
    (Ipv6Addr::new(0x2002, 0, 0, 0, 0, 0, 0, 0), 16), // 6to4 (deprecated; embeds IPv4)
    (Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 0), 20), // documentation
    (Ipv6Addr::new(0x5f00, 0, 0, 0, 0, 0, 0, 0), 16), // segment routing
];

/// The NAT64 well-known prefix 64:ff9b::/96: the last 32 bits are an IPv4 address.
const NAT64: Ipv6Addr = Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0);

fn in_v6(ip: Ipv6Addr, network: Ipv6Addr, prefix: u8) -> bool {
    let mask = u128::MAX << (128 - u32::from(prefix));
    u128::from(ip) & mask == u128::from(network)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    // An IPv4 address in IPv6 clothing is judged as the IPv4 address it reaches.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    if in_v6(ip, NAT64, 96) {
        let [.., a, b, c, d] = ip.octets();
        return is_public_v4(Ipv4Addr::new(a, b, c, d));
    }
    let global_unicast = Ipv6Addr::new(0x2000, 0, 0, 0, 0, 0, 0, 0);
    in_v6(ip, global_unicast, 3)
        && !NOT_PUBLIC_V6_IN_GLOBAL
            .iter()
            .any(|(network, prefix)| in_v6(ip, *network, *prefix))
}

/// Which webhook targets the operator allows. The default allows public addresses only.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetPolicy {
    allow_private: bool,
    /// Host names (lower case, without a trailing dot) that may resolve to any address.
    hosts: Vec<String>,
    /// Networks that may be reached although they are not public.
    networks: Vec<IpNet>,
}

/// Why a URL may not be a webhook's target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetError {
    /// Not an absolute `http` or `https` URL with a host.
    NotHttp,
    /// `user:password@` in the URL: it would be sent as HTTP Basic credentials.
    Credentials,
    /// The URL names an address (or `localhost`) the policy does not allow.
    NotAllowed,
}

impl fmt::Display for TargetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TargetError::NotHttp => "is not an http(s) URL",
            TargetError::Credentials => {
                "must not contain a user name or password (put a token in the path or query instead)"
            }
            TargetError::NotAllowed => {
                "names a loopback, private, link-local or reserved address, which webhooks may not reach"
            }
        })
    }
}

impl TargetPolicy {
    /// Public addresses only: the default.
    pub fn public_only() -> TargetPolicy {
        TargetPolicy::default()
    }

    /// Any address, private ones included (`RAPPORT_WEBHOOK_ALLOW_PRIVATE=true`).
    pub fn allow_private() -> TargetPolicy {
        TargetPolicy {
            allow_private: true,
            ..TargetPolicy::default()
        }
    }

    /// Public addresses, plus these host names and networks: a comma-separated list of
    /// names (`hooks.internal`), addresses (`10.1.2.3`, `::1`) and CIDRs (`10.8.0.0/16`).
    pub fn with_allowed(mut self, list: &str) -> Result<TargetPolicy, String> {
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            if let Ok(network) = entry.parse::<IpNet>() {
                self.networks.push(network.trunc());
            } else if let Ok(ip) = entry.trim_matches(['[', ']']).parse::<IpAddr>() {
                self.networks.push(IpNet::from(ip.to_canonical()));
            } else if is_host_name(entry) {
                self.hosts.push(normal_host(entry));
            } else {
                return Err(format!(
                    "{entry:?} is not a host name, an IP address or a CIDR such as 10.8.0.0/16"
                ));
            }
        }
        Ok(self)
    }

    /// Whether private targets are allowed altogether.
    pub fn allows_private(&self) -> bool {
        self.allow_private
    }

    /// Whether a webhook may connect to `ip`, found for `host` (the URL's host name; None
    /// for an address literal).
    pub fn permits(&self, host: Option<&str>, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.allow_private
            || is_public(ip)
            || self.networks.iter().any(|network| network.contains(&ip))
            || host.is_some_and(|host| self.permits_host(host))
    }

    fn permits_host(&self, host: &str) -> bool {
        let host = normal_host(host);
        self.hosts.contains(&host)
    }

    /// Checks what the URL alone shows, without resolving its host: the scheme, that it
    /// carries no credentials, and that an address literal (in any spelling the URL standard
    /// reads as one: `127.1`, `2130706433`, `0x7f000001`, `[::ffff:127.0.0.1]`) or a
    /// `localhost` name is allowed. A name may still resolve to an address that is not:
    /// the delivery worker checks that.
    pub fn check_url(&self, text: &str) -> Result<(), TargetError> {
        self.check(text, true)
    }

    /// What the delivery worker checks before it sends: as [`TargetPolicy::check_url`], but a
    /// name (`localhost` included) is left to the client's resolver, which judges the
    /// addresses it resolves to.
    pub fn check_url_literally(&self, text: &str) -> Result<(), TargetError> {
        self.check(text, false)
    }

    fn check(&self, text: &str, localhost_names: bool) -> Result<(), TargetError> {
        let url = url::Url::parse(text).map_err(|_| TargetError::NotHttp)?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(TargetError::NotHttp);
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(TargetError::Credentials);
        }
        let allowed = match url.host() {
            None => return Err(TargetError::NotHttp),
            Some(url::Host::Ipv4(ip)) => self.permits(None, IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => self.permits(None, IpAddr::V6(ip)),
            Some(url::Host::Domain(name)) => {
                let name = normal_host(name);
                // RFC 6761: localhost and every name under it are the loopback interface.
                let loopback = name == "localhost" || name.ends_with(".localhost");
                !localhost_names || !loopback || self.allow_private || self.permits_host(&name)
            }
        };
        if allowed {
            Ok(())
        } else {
            Err(TargetError::NotAllowed)
        }
    }
}

fn normal_host(host: &str) -> String {
    host.trim_end_matches('.').to_ascii_lowercase()
}

fn is_host_name(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 253
        && text.trim_end_matches('.').split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn public_unicast_addresses_are_public() {
        for text in [
            "1.1.1.1",
            "8.8.8.8",
            "93.184.215.14",
            "100.63.255.255",
            "100.128.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "192.0.1.1",
            "192.169.0.1",
            "198.20.0.1",
            "223.255.255.255",
            "2606:4700:4700::1111",
            "2a00:1450:4001:80b::200e",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2001:200::1",
        ] {
            assert!(is_public(ip(text)), "{text} is public");
        }
    }

    #[test]
    fn loopback_private_link_local_and_reserved_addresses_are_not_public() {
        for text in [
            "0.0.0.0",
            "0.1.2.3",
            "10.0.0.1",
            "10.255.255.255",
            "100.64.0.1",
            "100.127.255.255",
            "127.0.0.1",
            "127.255.255.254",
            "169.254.169.254",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "192.88.99.1",
            "192.168.1.1",
            "198.18.0.1",
            "198.19.255.255",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::127.0.0.1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::7f00:1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b:1::1",
            "100::1",
            "2001::1",
            "2001:db8::1",
            "2002:7f00:1::1",
            "3fff::1",
            "5f00::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
        ] {
            assert!(!is_public(ip(text)), "{text} is not public");
        }
    }

    #[test]
    fn the_default_policy_refuses_every_spelling_of_a_private_address() {
        let policy = TargetPolicy::public_only();
        for url in [
            "http://127.0.0.1/hook",
            "http://127.1/hook",
            "http://2130706433/hook",
            "http://0x7f000001/hook",
            "http://0177.0.0.1/hook",
            "http://[::1]:8080/hook",
            "http://[::ffff:127.0.0.1]/hook",
            "http://[::ffff:7f00:1]/hook",
            "http://169.254.169.254/latest/meta-data/",
            "http://10.0.0.1/hook",
            "http://172.16.3.4/hook",
            "http://192.168.0.10/hook",
            "http://0.0.0.0/hook",
            "http://localhost/hook",
            "http://LOCALHOST.:8080/hook",
            "http://api.localhost/hook",
        ] {
            assert_eq!(policy.check_url(url), Err(TargetError::NotAllowed), "{url}");
        }
        assert_eq!(
            policy.check_url_literally("http://localhost/hook"),
            Ok(()),
            "the resolver judges names at delivery"
        );
        assert_eq!(
            policy.check_url_literally("http://127.1/hook"),
            Err(TargetError::NotAllowed)
        );
        assert_eq!(policy.check_url("https://erp.example.com/hook"), Ok(()));
        assert_eq!(policy.check_url("https://93.184.215.14/hook"), Ok(()));
        assert_eq!(
            policy.check_url("http://metadata.google.internal/"),
            Ok(()),
            "a name is judged by the addresses it resolves to, at delivery"
        );
    }

    #[test]
    fn credentials_in_a_url_are_refused_whatever_the_policy() {
        for policy in [TargetPolicy::public_only(), TargetPolicy::allow_private()] {
            for url in [
                "https://user:pass@erp.example.com/hook",
                "https://user@erp.example.com/hook",
                "https://:pass@erp.example.com/hook",
            ] {
                assert_eq!(
                    policy.check_url(url),
                    Err(TargetError::Credentials),
                    "{url}"
                );
            }
            assert_eq!(
                policy.check_url("https://erp.example.com/users/a@b"),
                Ok(()),
                "an @ in the path is no credential"
            );
            assert_eq!(
                policy.check_url("ftp://erp.example.com/"),
                Err(TargetError::NotHttp)
            );
        }
    }

    #[test]
    fn allowing_private_targets_allows_loopback() {
        let policy = TargetPolicy::allow_private();
        assert!(policy.allows_private());
        assert_eq!(policy.check_url("http://127.0.0.1:8080/hook"), Ok(()));
        assert_eq!(policy.check_url("http://localhost:8080/hook"), Ok(()));
        assert!(policy.permits(Some("anything.example"), ip("10.0.0.1")));
    }

    #[test]
    fn an_allow_list_opens_named_hosts_and_networks_only() {
        let policy = TargetPolicy::public_only()
            .with_allowed("hooks.corp.example., 10.8.0.0/16, 127.0.0.1, [::1], localhost")
            .unwrap();
        assert!(!policy.allows_private());
        assert!(policy.permits(Some("HOOKS.corp.example"), ip("192.168.7.7")));
        assert!(!policy.permits(Some("other.corp.example"), ip("192.168.7.7")));
        assert!(policy.permits(None, ip("10.8.200.1")));
        assert!(policy.permits(None, ip("::ffff:10.8.200.1")));
        assert!(!policy.permits(None, ip("10.9.0.1")));
        assert!(policy.permits(None, ip("127.0.0.1")));
        assert!(!policy.permits(None, ip("127.0.0.2")));
        assert!(policy.permits(None, ip("::1")));
        assert!(policy.permits(Some("example.com"), ip("8.8.8.8")));
        assert_eq!(policy.check_url("http://127.1:9000/hook"), Ok(()));
        assert_eq!(policy.check_url("http://localhost:9000/hook"), Ok(()));
        assert_eq!(
            policy.check_url("http://api.localhost/hook"),
            Err(TargetError::NotAllowed)
        );
        assert_eq!(
            policy.check_url("http://169.254.169.254/"),
            Err(TargetError::NotAllowed)
        );
        assert!(
            TargetPolicy::public_only()
                .with_allowed("10.0.0.0/33")
                .is_err()
        );
        assert!(
            TargetPolicy::public_only()
                .with_allowed("http://x.example")
                .is_err()
        );
        assert_eq!(
            TargetPolicy::public_only().with_allowed(" , "),
            Ok(TargetPolicy::public_only())
        );
    }
}
