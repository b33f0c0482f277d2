//! Who the client is behind a reverse proxy: the address a trusted proxy reports in
//! `X-Forwarded-For` or `Forwarded` (RFC 7239), used only to make the log line useful.
//!
//! Anyone can send these headers, so they are believed only when the TCP peer is one of the
//! configured trusted proxies, and then only as far as the chain of trusted proxies reaches:
//! the entries are read from the right (the one the nearest proxy appended) and the first
//! that is not a trusted proxy is the client. Entries left of it were written by the client
//! itself and are never read, so a client cannot hide behind a made-up or broken entry.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use crate::grammar::{is_token, split_outside_quotes, unquote};
use crate::http::Request;

/// A client address as a proxy reported it: an IP, and its port when the proxy gave one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientAddr {
    /// The client's IP address.
    pub ip: IpAddr,
    /// The client's port, when the proxy reported one.
    pub port: Option<u16>,
}

impl fmt::Display for ClientAddr {
    /// `192.0.2.7`, `192.0.2.7:4711`, `[2001:db8::7]` or `[2001:db8::7]:4711`: IPv6
    /// addresses always in brackets, as in URLs, so a port can never be mistaken for part
    /// of the address.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.ip, self.port) {
            (ip, Some(port)) => write!(f, "{}", SocketAddr::new(ip, port)),
            (IpAddr::V4(ip), None) => write!(f, "{ip}"),
            (IpAddr::V6(ip), None) => write!(f, "[{ip}]"),
        }
    }
}

/// The client a trusted proxy forwarded this request for, or `None` when the log should
/// show the TCP peer: the peer is not a trusted proxy, it sent neither header, or the
/// entries it vouches for are malformed, `unknown` or obfuscated.
///
/// `X-Forwarded-For` (what nginx and most proxies set) is read when present; otherwise
/// `Forwarded`. When every entry is a trusted proxy, the leftmost one is the client.
pub fn client_address(request: &Request, peer: IpAddr, trusted: &[IpAddr]) -> Option<ClientAddr> {
    if !is_trusted(peer, trusted) {
        return None;
    }
    let mut x_forwarded_for = request.headers("x-forwarded-for").peekable();
    if x_forwarded_for.peek().is_some() {
        // RFC 9110 §5.3: several header lines make one comma-separated list.
        let entries: Vec<&str> = x_forwarded_for.flat_map(|v| v.split(',')).collect();
        let hops = entries
            .iter()
            .rev()
            .map(|entry| parse_address(entry.trim()));
        return rightmost_untrusted(hops, trusted);
    }
    let values: Vec<&str> = request.headers("forwarded").collect();
    if values.is_empty() {
        return None;
    }
    let mut elements = Vec::new();
    for value in values {
        elements.extend(split_outside_quotes(value, ',')?);
    }
    let hops = elements.iter().rev().map(|element| forwarded_for(element));
    rightmost_untrusted(hops, trusted)
}

/// Walks hops from the nearest proxy outwards: the first one not trusted is the client.
/// A hop that cannot be read (`None`) ends the walk with no answer.
fn rightmost_untrusted(
    hops: impl Iterator<Item = Option<ClientAddr>>,
    trusted: &[IpAddr],
) -> Option<ClientAddr> {
    let mut leftmost = None;
    for hop in hops {
        let hop = hop?;
        if !is_trusted(hop.ip, trusted) {
            return Some(hop);
        }
        leftmost = Some(hop);
    }
    leftmost
}

/// Whether `ip` is a trusted proxy. An IPv4 peer seen on a dual-stack socket as
/// `::ffff:a.b.c.d` is the same host as `a.b.c.d`.
fn is_trusted(ip: IpAddr, trusted: &[IpAddr]) -> bool {
    trusted
        .iter()
        .any(|t| t.to_canonical() == ip.to_canonical())
}

/// An `X-Forwarded-For` entry: an IP address, `[IPv6]`, or either with a port.
fn parse_address(text: &str) -> Option<ClientAddr> {
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(ClientAddr { ip, port: None });
    }
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Some(ClientAddr {
            ip: addr.ip(),
            port: Some(addr.port()),
        });
    }
    let ip = text
        .strip_prefix('[')?
        .strip_suffix(']')?
        .parse::<Ipv6Addr>();
    ip.ok().map(|ip| ClientAddr {
        ip: IpAddr::V6(ip),
        port: None,
    })
}

/// The `for=` node of one `Forwarded` element, if it names an address.
///
/// RFC 7239 §4: `forwarded-element = [ forwarded-pair ] *( ";" [ forwarded-pair ] )`,
/// `forwarded-pair = token "=" value`, `value = token / quoted-string`, and "each parameter
/// MUST NOT occur more than once per forwarded-element"; parameter names are
/// case-insensitive. An element without `for` says nothing about who connected, so it ends
/// the walk like a malformed one.
fn forwarded_for(element: &str) -> Option<ClientAddr> {
    let mut node = None;
    for pair in split_outside_quotes(element, ';')? {
        let pair = pair.trim_matches([' ', '\t']);
        if pair.is_empty() {
            continue;
        }
        let (name, value) = pair.split_once('=')?;
        if !is_token(name) {
            return None;
        }
        let value = match value.strip_prefix('"') {
            Some(quoted) => unquote(quoted)?,
            None if is_token(value) => value.to_string(),
            None => return None,
        };
        if name.eq_ignore_ascii_case("for") {
            if node.is_some() {
                return None;
            }
            node = Some(value);
        }
    }
    parse_node(&node?)
}

/// RFC 7239 §6: `node = nodename [ ":" node-port ]`, where `nodename` is an IPv4 address,
/// `"[" IPv6address "]"`, `"unknown"` or an obfuscated `_name`, and `node-port` is digits
/// or an obfuscated `_port`. `unknown` and obfuscated names identify no address; an
/// obfuscated port is dropped.
fn parse_node(node: &str) -> Option<ClientAddr> {
    let (name, port) = match node.strip_prefix('[') {
        Some(rest) => {
            let (v6, after) = rest.split_once(']')?;
            let port = match after {
                "" => None,
                _ => Some(after.strip_prefix(':')?),
            };
            (IpAddr::V6(v6.parse().ok()?), port)
        }
        None => {
            let (v4, port) = match node.split_once(':') {
                Some((v4, port)) => (v4, Some(port)),
                None => (node, None),
            };
            (IpAddr::V4(v4.parse().ok()?), port)
        }
    };
    let port = match port {
        None => None,
        Some(obfuscated) if obfuscated.starts_with('_') => None,
        Some(digits) if digits.len() <= 5 && digits.bytes().all(|b| b.is_ascii_digit()) => {
            Some(digits.parse().ok()?)
        }
        Some(_) => return None,
    };
    Some(ClientAddr { ip: name, port })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROXY: &str = "10.0.0.1";

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    /// The forwarded client of a request with `headers` from `peer`, trusting `trusted`.
    fn client(peer: &str, trusted: &[&str], headers: &[&str]) -> Option<String> {
        let mut head = "GET / HTTP/1.1\r\nHost: x\r\n".to_string();
        for line in headers {
            head.push_str(line);
            head.push_str("\r\n");
        }
        head.push_str("\r\n");
        let request = Request::parse(head.as_bytes()).unwrap();
        let trusted: Vec<IpAddr> = trusted.iter().map(|t| ip(t)).collect();
        client_address(&request, ip(peer), &trusted).map(|c| c.to_string())
    }

    fn via_proxy(headers: &[&str]) -> Option<String> {
        client(PROXY, &[PROXY], headers)
    }

    fn some(text: &str) -> Option<String> {
        Some(text.to_string())
    }

    #[test]
    fn untrusted_peers_are_never_believed() {
        let xff = ["X-Forwarded-For: 203.0.113.9"];
        assert_eq!(client("192.0.2.1", &[PROXY], &xff), None);
        assert_eq!(client("192.0.2.1", &[], &xff), None);
        assert_eq!(client(PROXY, &[], &xff), None);
        assert_eq!(
            client("192.0.2.1", &[PROXY], &["Forwarded: for=203.0.113.9"]),
            None
        );
    }

    #[test]
    fn a_trusted_proxy_without_headers_is_the_client() {
        assert_eq!(via_proxy(&[]), None);
    }

    #[test]
    fn x_forwarded_for_gives_the_rightmost_untrusted_entry() {
        assert_eq!(
            via_proxy(&["X-Forwarded-For: 203.0.113.9"]),
            some("203.0.113.9")
        );
        let chain = ["X-Forwarded-For: 198.51.100.1, 203.0.113.9, 10.0.0.2"];
        assert_eq!(
            client(PROXY, &[PROXY, "10.0.0.2"], &chain),
            some("203.0.113.9")
        );
        assert_eq!(client(PROXY, &[PROXY], &chain), some("10.0.0.2"));
    }

    #[test]
    fn entries_left_of_the_client_are_not_read() {
        let spoofed = ["X-Forwarded-For: not-an-address, ,1.2.3.4, 203.0.113.9"];
        assert_eq!(via_proxy(&spoofed), some("203.0.113.9"));
    }

    #[test]
    fn several_x_forwarded_for_lines_make_one_list() {
        let headers = [
            "X-Forwarded-For: 198.51.100.1",
            "x-forwarded-for: 203.0.113.9, 10.0.0.2",
        ];
        assert_eq!(
            client(PROXY, &[PROXY, "10.0.0.2"], &headers),
            some("203.0.113.9")
        );
        assert_eq!(
            client(PROXY, &[PROXY, "10.0.0.2", "203.0.113.9"], &headers),
            some("198.51.100.1")
        );
    }

    #[test]
    fn when_every_entry_is_trusted_the_leftmost_is_the_client() {
        let headers = ["X-Forwarded-For: 10.0.0.3, 10.0.0.2"];
        assert_eq!(
            client(PROXY, &[PROXY, "10.0.0.2", "10.0.0.3"], &headers),
            some("10.0.0.3")
        );
    }

    #[test]
    fn x_forwarded_for_accepts_ipv6_and_ports() {
        assert_eq!(
            via_proxy(&["X-Forwarded-For: 2001:db8::7"]),
            some("[2001:db8::7]")
        );
        assert_eq!(
            via_proxy(&["X-Forwarded-For: [2001:db8::7]"]),
            some("[2001:db8::7]")
        );
        assert_eq!(
            via_proxy(&["X-Forwarded-For: [2001:db8::7]:4711"]),
            some("[2001:db8::7]:4711")
        );
        assert_eq!(
            via_proxy(&["X-Forwarded-For: 192.0.2.7:4711"]),
            some("192.0.2.7:4711")
        );
    }

    #[test]
    fn malformed_x_forwarded_for_falls_back_to_the_peer() {
        for value in [
            "",
            "unknown",
            "203.0.113.9,",
            "203.0.113.9 198.51.100.1",
            "example.com",
            "300.1.2.3",
            "[203.0.113.9]",
            "192.0.2.7:99999",
            "\"203.0.113.9\"",
        ] {
            let line = format!("X-Forwarded-For: {value}");
            assert_eq!(via_proxy(&[&line]), None, "{value:?}");
        }
    }

    #[test]
    fn x_forwarded_for_wins_over_forwarded() {
        let headers = [
            "Forwarded: for=198.51.100.1",
            "X-Forwarded-For: 203.0.113.9",
        ];
        assert_eq!(via_proxy(&headers), some("203.0.113.9"));
    }

    #[test]
    fn forwarded_for_gives_the_rightmost_untrusted_node() {
        assert_eq!(
            via_proxy(&["Forwarded: for=203.0.113.9"]),
            some("203.0.113.9")
        );
        assert_eq!(
            via_proxy(&["Forwarded: FOR=203.0.113.9;proto=https;by=10.0.0.1"]),
            some("203.0.113.9")
        );
        let chain = ["Forwarded: for=198.51.100.1, for=203.0.113.9;proto=http, for=10.0.0.2"];
        assert_eq!(
            client(PROXY, &[PROXY, "10.0.0.2"], &chain),
            some("203.0.113.9")
        );
        let lines = ["Forwarded: for=198.51.100.1", "Forwarded: for=203.0.113.9"];
        assert_eq!(via_proxy(&lines), some("203.0.113.9"));
    }

    #[test]
    fn forwarded_reads_quoted_values_ipv6_and_ports() {
        for (value, expected) in [
            (r#"for="203.0.113.9""#, "203.0.113.9"),
            (r#"for="203.0.113.9:4711""#, "203.0.113.9:4711"),
            (r#"for="[2001:db8:cafe::17]""#, "[2001:db8:cafe::17]"),
            (
                r#"for="[2001:db8:cafe::17]:4711""#,
                "[2001:db8:cafe::17]:4711",
            ),
            (r#"for="[2001:db8:cafe::17]:_port""#, "[2001:db8:cafe::17]"),
            (r#"for="\[2001:db8::1\]""#, "[2001:db8::1]"),
            (r#"by="a,b;c";for=203.0.113.9"#, "203.0.113.9"),
        ] {
            let line = format!("Forwarded: {value}");
            assert_eq!(via_proxy(&[&line]), some(expected), "{value}");
        }
    }

    #[test]
    fn unknown_obfuscated_or_malformed_forwarded_falls_back_to_the_peer() {
        for value in [
            "for=unknown",
            "for=_hidden",
            r#"for="_gazonk""#,
            "for=203.0.113.9:4711",
            "for=[2001:db8::1]",
            r#"for="2001:db8::1""#,
            r#"for="[2001:db8::1""#,
            r#"for="203.0.113.9"x"#,
            r#"for="203.0.113.9"#,
            "for=203.0.113.9;for=198.51.100.1",
            "proto=https",
            "for",
            "for=",
            r#"for="203.0.113.9:123456""#,
            r#"for="203.0.113.9:x""#,
            "for=198.51.100.1, for=unknown",
        ] {
            let line = format!("Forwarded: {value}");
            assert_eq!(via_proxy(&[&line]), None, "{value}");
        }
    }

    #[test]
    fn ipv4_mapped_peers_match_ipv4_trusted_proxies() {
        let xff = ["X-Forwarded-For: 203.0.113.9"];
        assert_eq!(
            client("::ffff:10.0.0.1", &[PROXY], &xff),
            some("203.0.113.9")
        );
        assert_eq!(
            client(PROXY, &["::ffff:10.0.0.1"], &xff),
            some("203.0.113.9")
        );
    }

    #[test]
    fn addresses_display_ipv6_in_brackets() {
        let v6 = ClientAddr {
            ip: ip("::1"),
            port: None,
        };
        assert_eq!(v6.to_string(), "[::1]");
        let v4 = ClientAddr {
            ip: ip("127.0.0.1"),
            port: Some(80),
        };
        assert_eq!(v4.to_string(), "127.0.0.1:80");
    }
}
