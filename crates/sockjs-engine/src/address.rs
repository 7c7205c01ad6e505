//! IP addresses written as Node writes them (`socket.remoteAddress`,
//! `socket.address().address`), for the connection properties of adopted
//! WebSockets, whose addresses the engine reads from the socket itself.
//!
//! Node writes IPv6 with libuv's `inet_ntop` and, for a link-local address
//! with a scope, appends `%` and the interface's name; Rust's `Display`
//! follows the same RFC 5952 form except for IPv4-compatible addresses
//! (`::1.2.3.4`). Those two cases are left to Node: `None`.

use std::net::{IpAddr, SocketAddr};

/// `addr`'s IP as Node would write it, or `None` where the two differ.
pub fn node_ip(addr: &SocketAddr) -> Option<String> {
    match addr {
        SocketAddr::V4(v4) => Some(v4.ip().to_string()),
        SocketAddr::V6(v6) => {
            let ip = v6.ip();
            let segments = ip.segments();
            let link_local = segments[0] & 0xffc0 == 0xfe80;
            let ipv4_compatible = segments[..6].iter().all(|s| *s == 0) && segments[6] != 0;
            if (link_local && v6.scope_id() != 0) || ipv4_compatible {
                None
            } else {
                Some(IpAddr::V6(*ip).to_string())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> Option<String> {
        node_ip(&text.parse().unwrap())
    }

    #[test]
    fn ipv4_and_plain_ipv6_are_written_as_node_writes_them() {
        assert_eq!(ip("127.0.0.1:80").as_deref(), Some("127.0.0.1"));
        assert_eq!(ip("[::1]:80").as_deref(), Some("::1"));
        assert_eq!(ip("[::]:80").as_deref(), Some("::"));
        assert_eq!(ip("[::ffff:127.0.0.1]:80").as_deref(), Some("::ffff:127.0.0.1"));
        assert_eq!(ip("[2001:DB8:0:0:1:0:0:1]:80").as_deref(), Some("2001:db8::1:0:0:1"));
        assert_eq!(ip("[fe80::1]:80").as_deref(), Some("fe80::1"));
    }

    #[test]
    fn scoped_link_local_and_ipv4_compatible_are_left_to_node() {
        assert_eq!(ip("[fe80::1%2]:80"), None);
        assert_eq!(ip("[::1.2.3.4]:80"), None);
    }
}
