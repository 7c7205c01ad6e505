//! `route`: the URL router (`route::route`) on an arbitrary method and path,
//! under `Enabled::ALL`, no transport at all, a few real configurations and
//! one arbitrary `Enabled`.
//!
//! Input (text, lossy UTF-8): `METHOD PATH`, optionally followed by a line
//! `transports=<comma-separated 0.4 transport names>` for one more
//! configuration (`GET /000/abc/websocket\ntransports=websocket,xhr-polling`;
//! unknown names are skipped). The method is anything before the first
//! space, through `Method::parse`; the path is what follows (after the
//! prefix, no query; it may hold newlines).
//!
//! Invariants:
//! - a `405 Allow` list is non-empty, made of GET/POST/OPTIONS, without
//!   duplicates, and never names the method that was refused;
//! - `Disabled` only for GET, and never under `Enabled::ALL`;
//! - one trailing slash changes nothing: route(p) == route(p + "/") for a
//!   p that does not end with `/`;
//! - a session endpoint's server and session ids are non-empty and hold
//!   neither `/` nor `.`, and they are what the path says;
//! - switching transports off never creates an endpoint: whatever a smaller
//!   configuration routes to an endpoint, `Enabled::ALL` routes the same way,
//!   and a `NotFound` under `Enabled::ALL` is `NotFound` everywhere;
//! - `preflight` is set exactly for OPTIONS.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sockjs_core::route::{route, Enabled, Endpoint, Method, Routed};

fn configs(listed: Option<&str>) -> Vec<Enabled> {
    let mut v = vec![
        Enabled::ALL,
        Enabled::NONE,
        // sockjs 0.3's `websocket: false`.
        Enabled {
            websocket: false,
            websocket_raw: false,
            ..Enabled::ALL
        },
        Enabled::from_names(["websocket"]).unwrap(),
        Enabled::from_names(["xhr-polling", "jsonp-polling"]).unwrap(),
        Enabled::from_names(["eventsource", "htmlfile"]).unwrap(),
    ];
    if let Some(list) = listed {
        let names = list
            .split(',')
            .map(str::trim)
            .filter(|n| Enabled::from_names([*n]).is_ok());
        v.push(Enabled::from_names(names).expect("known names"));
    }
    v
}

fn method_name(m: Method) -> Option<&'static str> {
    match m {
        Method::Get => Some("GET"),
        Method::Post => Some("POST"),
        Method::Options => Some("OPTIONS"),
        Method::Other => None,
    }
}

fn check(method: Method, path: &str, enabled: &Enabled, all: &Routed) {
    let routed = route(method, path, enabled);
    match &routed {
        Routed::MethodNotAllowed(allow) => {
            assert!(!allow.is_empty(), "empty Allow for {method:?} {path:?}");
            let names: Vec<&str> = allow.split(", ").collect();
            for (i, n) in names.iter().enumerate() {
                assert!(
                    matches!(*n, "GET" | "POST" | "OPTIONS"),
                    "Allow {allow:?} for {method:?} {path:?}"
                );
                assert!(!names[..i].contains(n), "duplicate in Allow {allow:?}");
            }
            if let Some(name) = method_name(method) {
                assert!(!names.contains(&name), "Allow {allow:?} names the refused {name}");
            }
        }
        Routed::Disabled => {
            assert_eq!(method, Method::Get, "Disabled for {method:?} {path:?}");
            assert_ne!(*enabled, Enabled::ALL, "Disabled under ALL for {path:?}");
        }
        Routed::Endpoint(e) => {
            if let Endpoint::Session {
                server,
                session,
                preflight,
                ..
            } = e
            {
                for id in [server, session] {
                    assert!(!id.is_empty() && !id.contains(['/', '.']), "{e:?} from {path:?}");
                }
                let p = path.strip_suffix('/').unwrap_or(path);
                assert!(p.starts_with(&format!("/{server}/{session}/")), "{e:?} from {path:?}");
                assert_eq!(*preflight, method == Method::Options, "{e:?}");
            }
            assert_eq!(
                &routed, all,
                "{method:?} {path:?}: {enabled:?} routes where ALL does not"
            );
        }
        Routed::NotFound => {}
    }
    if *all == Routed::NotFound {
        assert_eq!(routed, Routed::NotFound, "{method:?} {path:?} under {enabled:?}");
    }
    // One trailing slash is accepted and changes nothing (only one: "//"
    // is not "/").
    if !path.ends_with('/') {
        let slashed = format!("{path}/");
        assert_eq!(route(method, &slashed, enabled), routed, "{method:?} {path:?} + /");
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (line, listed) = match text.rsplit_once("\ntransports=") {
        Some((line, listed)) => (line, Some(listed)),
        None => (&*text, None),
    };
    let (method, path) = line.split_once(' ').unwrap_or((line, ""));
    let method = Method::parse(method);
    let all = route(method, path, &Enabled::ALL);
    assert!(!matches!(all, Routed::Disabled), "Disabled under ALL: {path:?}");
    for enabled in configs(listed) {
        check(method, path, &enabled, &all);
    }
});
