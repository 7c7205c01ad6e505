//! `answer`: every endpoint's HTTP answer (`answer::answer`) to an arbitrary
//! request, the WebSocket upgrade check (`answer::upgrade`) with arbitrary
//! upgrade headers, and `answer::raw_response` on every answer produced —
//! i.e. the request parsing of every transport (xhr, xhr_send,
//! xhr_streaming, eventsource, htmlfile, jsonp, jsonp_send, websocket, raw
//! websocket, /info, /iframe*.html, /chunking_test).
//!
//! Input: an HTTP request as text, the way the driver sees it after the
//! prefix is stripped (so seeds are real requests):
//!
//! ```text
//! POST /000/abcdef/xhr_send?t=1 HTTP/1.1
//! Origin: https://example.com
//! Content-Type: text/plain;charset=UTF-8
//!
//! ["hello"]
//! ```
//!
//! The method is anything before the first space (arbitrary methods too);
//! the target is split at `?` into path and query; header lines are
//! `Name: value` (names case-insensitive; Origin, Cookie, If-None-Match,
//! Content-Type, Access-Control-Request-Headers, Upgrade, Connection,
//! Sec-WebSocket-Version, Sec-WebSocket-Key); the body (any bytes) follows
//! the first empty line. Harness pseudo-headers set what is not in a
//! request: `X-Fuzz-Transports: websocket,xhr-polling` (the `transports`
//! option), `X-Fuzz-Jsessionid: cookie|function`, `X-Fuzz-Disable-Cors`,
//! `X-Fuzz-Base-Url: <fixed base_url>`, `X-Fuzz-Base-Url-Fn: [value]` (a
//! function base_url, and its value if given), `X-Fuzz-Too-Large` (the body
//! was over `max_body`), `X-Fuzz-Now: <unix seconds>`, `X-Fuzz-Entropy: <n>`,
//! `X-Fuzz-Origins: a, b` (the `origins` allow-list; default `*:*`).
//!
//! Invariants:
//! - the status is one of 200, 204, 304, 400, 403, 404, 405, 413, 500 and
//!   has a reason phrase; 405 carries an `Allow` of GET/POST/OPTIONS;
//! - 403 exactly when the request has an `Origin` that `origin::allowed`
//!   refuses; `*:*` allows every origin, a list allows each of its own
//!   entries, and adding entries never refuses more;
//! - `Then::Receive` only on 200; for htmlfile and jsonp the callback (in the
//!   framing / in the page) only holds [A-Za-z0-9_.-], jsonp's at most 32;
//! - `Then::Deliver` carries exactly what `decode::message_array` makes of the
//!   body (xhr_send) or of the form field `d` / the text body (jsonp_send);
//! - no header value holds CR or LF unless the request's own headers did
//!   (no response splitting); header names are unique where they must be;
//! - `raw_response` never panics and starts with the status line;
//! - `upgrade` succeeds only for a served WebSocket endpoint, with the
//!   `raw` flag its answer says, and refuses with 400/403/404/405 otherwise.
//!
//! `X-Fuzz-Now` is taken modulo 2^40 (year ~36800): a time near `u64::MAX`
//! overflows `now_unix + ONE_YEAR` in `cache_for` (known finding
//! `answer-expires-overflow`, fuzz/artifacts-found/README.md), which no
//! clock reaches. Set `SOCKJS_FUZZ_ANY_TIME=1` to fuzz the full range.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use sockjs_core::answer::{
    self, raw_response, reason_phrase, Answer, Jsessionid, Options, Request, Then, UpgradeHeaders,
};
use sockjs_core::decode;
use sockjs_core::origin;
use sockjs_core::receiver::Framing;
use sockjs_core::route::Enabled;

fn any_time() -> bool {
    static ANY: OnceLock<bool> = OnceLock::new();
    *ANY.get_or_init(|| std::env::var_os("SOCKJS_FUZZ_ANY_TIME").is_some())
}

/// The request, upgrade headers and options a text input describes.
struct Parsed<'a> {
    req: Request<'a>,
    upgrade: UpgradeHeaders<'a>,
    opts: Options,
}

fn parse<'a>(head: &'a str, body: &'a [u8], opts: Options) -> Parsed<'a> {
    let mut opts = opts;
    let mut lines = head.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let request_line = lines.next().unwrap_or("");
    let (method, rest) = request_line.split_once(' ').unwrap_or((request_line, ""));
    let target = rest
        .strip_suffix(" HTTP/1.1")
        .or_else(|| rest.strip_suffix(" HTTP/1.0"))
        .unwrap_or(rest);
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut req = Request {
        method,
        path,
        query,
        body,
        now_unix: 1_700_000_000,
        entropy: 4_242,
        ..Request::default()
    };
    let mut upgrade = UpgradeHeaders::default();
    for line in lines {
        let (name, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match name.to_ascii_lowercase().as_str() {
            "origin" => req.origin = Some(value),
            "cookie" => req.cookie = Some(value),
            "if-none-match" => req.if_none_match = Some(value),
            "content-type" => req.content_type = Some(value),
            "access-control-request-headers" => req.access_control_request_headers = Some(value),
            "upgrade" => upgrade.upgrade = Some(value),
            "connection" => upgrade.connection = Some(value),
            "sec-websocket-version" => upgrade.version = Some(value),
            "sec-websocket-key" => upgrade.key = Some(value),
            "x-fuzz-transports" => {
                let names: Vec<String> = value.split(',').map(|n| n.trim().to_owned()).collect();
                let known = names
                    .iter()
                    .map(String::as_str)
                    .filter(|n| Enabled::from_names([*n]).is_ok());
                opts.enabled = Enabled::from_names(known).expect("known names");
                opts.transports_listed = Some(names);
            }
            "x-fuzz-jsessionid" => {
                opts.jsessionid = match value {
                    "cookie" => Jsessionid::Cookie,
                    "function" => Jsessionid::Function,
                    _ => Jsessionid::Off,
                }
            }
            "x-fuzz-disable-cors" => opts.disable_cors = true,
            "x-fuzz-base-url" => opts.base_url = Some(value.to_owned()),
            "x-fuzz-base-url-fn" => {
                opts.base_url_is_function = true;
                req.base_url = (!value.is_empty()).then_some(value);
            }
            "x-fuzz-too-large" => req.body_too_large = true,
            "x-fuzz-now" => {
                let now: u64 = value.parse().unwrap_or(0);
                // A time near u64::MAX overflows `cache_for` (known finding
                // `answer-expires-overflow`); clocks do not go there.
                req.now_unix = if any_time() { now } else { now % (1 << 40) };
            }
            "x-fuzz-entropy" => req.entropy = value.parse().unwrap_or(0),
            "x-fuzz-origins" => opts.origins = value.split(',').map(|o| o.trim().to_owned()).collect(),
            _ => {}
        }
    }
    Parsed { req, upgrade, opts }
}

fn base_options() -> &'static Options {
    static OPTS: OnceLock<Options> = OnceLock::new();
    OPTS.get_or_init(|| Options::new("https://cdn.jsdelivr.net/npm/sockjs-client@1/dist/sockjs.min.js"))
}

fn has_crlf(s: &str) -> bool {
    s.contains(['\r', '\n'])
}

fn valid_callback(cb: &str) -> bool {
    cb.bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn check_answer(a: &Answer, req: &Request, inputs_have_crlf: bool) {
    assert!(
        matches!(a.status, 200 | 204 | 304 | 400 | 403 | 404 | 405 | 413 | 500),
        "status {} for {req:?}",
        a.status
    );
    assert_ne!(reason_phrase(a.status), "Unknown");
    if a.status == 405 {
        let allow = a.header_value("Allow").expect("405 has Allow");
        assert!(!allow.is_empty());
        assert!(
            allow.split(", ").all(|m| matches!(m, "GET" | "POST" | "OPTIONS")),
            "{allow:?}"
        );
    }
    for name in [
        "Content-Type",
        "Allow",
        "Cache-Control",
        "Access-Control-Allow-Origin",
        "ETag",
        "Expires",
    ] {
        let n = a.headers.iter().filter(|(h, _)| h.eq_ignore_ascii_case(name)).count();
        assert!(n <= 1, "{n} {name} headers in {a:?}");
    }
    if !inputs_have_crlf {
        for (name, value) in &a.headers {
            assert!(!has_crlf(value), "CR/LF in {name}: {value:?} for {req:?}");
        }
    }
    match &a.then {
        Then::Receive { framing, .. } => {
            assert_eq!(a.status, 200, "{a:?}");
            match framing {
                Framing::Jsonp { callback } => {
                    assert!(
                        valid_callback(callback) && callback.len() <= 32,
                        "jsonp callback {callback:?}"
                    );
                }
                Framing::HtmlFile => {
                    let start = a.body.find("var c = parent.").expect("htmlfile page") + "var c = parent.".len();
                    let end = start + a.body[start..].find(";\n    c.start();").expect("htmlfile page");
                    let cb = &a.body[start..end];
                    assert!(valid_callback(cb), "htmlfile callback {cb:?}");
                    assert!(!a.body[..start].contains("</script>"));
                }
                _ => {}
            }
        }
        Then::Deliver { messages, .. } => {
            assert!(matches!(a.status, 200 | 204), "{a:?}");
            let body = String::from_utf8_lossy(req.body);
            let media = req.content_type.unwrap_or("").split(';').next().unwrap_or("");
            let payload = if media == "application/x-www-form-urlencoded" && a.status == 200 {
                decode::form_value(&body, "d").unwrap_or_default()
            } else {
                body.into_owned()
            };
            assert_eq!(decode::message_array(&payload, usize::MAX).as_ref(), Ok(messages), "{req:?}");
        }
        Then::WebSocket { .. } => assert_eq!(a.status, 400),
        Then::ChunkingTest => assert_eq!(a.status, 200),
        Then::End => {}
    }
    let raw = raw_response(a);
    let head = format!("HTTP/1.1 {} {}\r\n", a.status, reason_phrase(a.status));
    assert!(raw.starts_with(head.as_bytes()));
    assert!(raw.ends_with(a.body.as_bytes()));
}

fuzz_target!(|data: &[u8]| {
    // Head and body split at the first empty line.
    let (head, body) = match data.windows(2).position(|w| w == b"\n\n") {
        Some(i) => (&data[..i], &data[i + 2..]),
        None => match data.windows(4).position(|w| w == b"\r\n\r\n") {
            Some(i) => (&data[..i], &data[i + 4..]),
            None => (data, &[][..]),
        },
    };
    let head = String::from_utf8_lossy(head);
    let Parsed { req, upgrade, opts } = parse(&head, body, base_options().clone());
    let inputs_have_crlf = [req.origin, req.cookie, req.access_control_request_headers]
        .iter()
        .any(|h| h.is_some_and(has_crlf));

    let a = answer::answer(&req, &opts);
    if std::env::var_os("SOCKJS_FUZZ_TRACE").is_some() {
        eprintln!(
            "{req:?}\n-> {} {:?} {:?} body {} bytes",
            a.status,
            a.headers,
            a.then,
            a.body.len()
        );
    }
    check_answer(&a, &req, inputs_have_crlf);
    let refused_origin = req.origin.is_some_and(|o| !origin::allowed(&opts.origins, o));
    assert_eq!(
        a.status == 403,
        refused_origin,
        "403 vs origins {:?} for {:?}",
        opts.origins,
        req.origin
    );
    if let Some(o) = req.origin {
        assert!(origin::allowed(&["*:*".to_owned()], o), "*:* refuses {o:?}");
        // (Entries are trimmed, origins are not: HTTP parsers strip the
        // whitespace around header values.)
        if o.trim() == o {
            assert!(origin::allowed(&[o.to_owned()], o), "[{o:?}] refuses itself");
            let mut more = opts.origins.clone();
            more.push(o.to_owned());
            assert!(origin::allowed(&more, o));
        }
        for entry in &opts.origins {
            if origin::allowed(std::slice::from_ref(entry), o) {
                assert!(
                    origin::allowed(&opts.origins, o),
                    "{entry:?} allows {o:?} alone, not in the list"
                );
            }
        }
    }
    if a.needs_base_url {
        assert!(opts.base_url_is_function && req.base_url.is_none());
    }
    // What a driver does with an unknown session (it takes `then` out first).
    let mut unknown = a.clone();
    unknown.then = Then::End;
    check_answer(&unknown.into_not_found(), &req, inputs_have_crlf);

    let valid = UpgradeHeaders {
        upgrade: Some("websocket"),
        connection: Some("keep-alive, Upgrade"),
        version: Some("13"),
        key: Some("dGhlIHNhbXBsZSBub25jZQ=="),
    };
    for (h, is_valid) in [(&upgrade, false), (&valid, true)] {
        match answer::upgrade(&req, h, &opts) {
            Ok(raw) => assert_eq!(a.then, Then::WebSocket { raw }, "upgrade accepted {req:?} {h:?}"),
            Err(refused) => {
                assert!(matches!(refused.status, 400 | 403 | 404 | 405), "{refused:?}");
                if is_valid {
                    assert!(
                        !matches!(a.then, Then::WebSocket { .. }),
                        "valid upgrade refused: {req:?}"
                    );
                }
                check_answer(&refused, &req, inputs_have_crlf);
            }
        }
    }
});
