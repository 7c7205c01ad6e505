//! The `origins` allow-list: which `Origin` header values may use the
//! server. Entries are `*:*` (any origin), a full origin
//! (`https://app.example.com`, `http://localhost:8080`) or SockJS's
//! `host:port` form where either side may be `*` (`*.example.com:443` is
//! not supported; `example.com:*` and `*:8080` are).

/// Whether `origin` (an `Origin` header value) is allowed by `list`.
pub fn allowed(list: &[String], origin: &str) -> bool {
    let parsed = parse(origin);
    list.iter().any(|entry| {
        let entry = entry.trim();
        if entry == "*:*" || entry == "*" || entry.eq_ignore_ascii_case(origin) {
            return true;
        }
        let Some((host, port)) = parsed.as_ref() else {
            return false;
        };
        if entry.contains("://") {
            return parse(entry).is_some_and(|(h, p)| h.eq_ignore_ascii_case(host) && p == *port);
        }
        match entry.rsplit_once(':') {
            Some((h, p)) => {
                (h == "*" || h.eq_ignore_ascii_case(host)) && (p == "*" || p.parse::<u16>().ok() == Some(*port))
            }
            None => false,
        }
    })
}

/// (host, port) of `scheme://host[:port]`, with the scheme's default port.
fn parse(origin: &str) -> Option<(String, u16)> {
    let (scheme, rest) = origin.split_once("://")?;
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "http" | "ws" => 80,
        "https" | "wss" => 443,
        _ => return None,
    };
    let authority = rest.split('/').next().unwrap_or(rest);
    // An IPv6 literal keeps its brackets and colons.
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !p.contains(']') => (h, p.parse().ok()?),
        _ => (authority, default_port),
    };
    (!host.is_empty()).then(|| (host.to_ascii_lowercase(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(entries: &[&str]) -> Vec<String> {
        entries.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn star_allows_everything() {
        assert!(allowed(&list(&["*:*"]), "http://evil.example"));
        assert!(allowed(&list(&["*:*"]), "null"));
    }

    #[test]
    fn full_origins_match_scheme_host_and_port() {
        let l = list(&["https://app.example.com", "http://localhost:8080"]);
        assert!(allowed(&l, "https://app.example.com"));
        assert!(allowed(&l, "https://APP.example.com:443"));
        assert!(allowed(&l, "http://localhost:8080"));
        assert!(!allowed(&l, "http://localhost:8081"));
        assert!(!allowed(&l, "https://evil.example"));
        assert!(!allowed(&l, "null"));
    }

    #[test]
    fn host_port_patterns() {
        let l = list(&["example.com:*", "*:8443"]);
        assert!(allowed(&l, "http://example.com"));
        assert!(allowed(&l, "https://example.com:9000"));
        assert!(allowed(&l, "https://other.example:8443"));
        assert!(!allowed(&l, "https://other.example"));
    }

    #[test]
    fn null_can_be_listed() {
        assert!(allowed(&list(&["null"]), "null"));
    }
}
