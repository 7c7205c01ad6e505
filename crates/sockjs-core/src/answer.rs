//! The HTTP answer of every endpoint: status, headers, first body chunk and
//! what the driver does next (end, attach a receiver, deliver messages, run
//! the chunking test, upgrade). Built the way sockjs-node 0.3.24's filter
//! chains build them: the headers of the filters that ran before a failure
//! stay on the error answer.

use md5::{Digest, Md5};

use crate::decode::{self, PayloadError};
use crate::origin;
use crate::receiver::Framing;
use crate::route::{self, Enabled, Endpoint, Method, Routed, Transport};
use crate::session::SessionConfig;

/// How `JSESSIONID` is handled (the `jsessionid` option).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Jsessionid {
    Off,
    /// Set the cookie, echoing the client's or `dummy`.
    Cookie,
    /// The application's `function(req, res)` runs instead (in JS).
    Function,
}

/// One install's configuration (the options of `installHandlers`).
#[derive(Debug, Clone)]
pub struct Options {
    pub enabled: Enabled,
    /// The `transports` list when it was given, for `/info`.
    pub transports_listed: Option<Vec<String>>,
    pub jsessionid: Jsessionid,
    pub disable_cors: bool,
    /// A fixed `base_url`; a function's value comes with each request.
    pub base_url: Option<String>,
    /// `base_url` is a function: `/info` asks for its value (`needs_base_url`).
    pub base_url_is_function: bool,
    pub session: SessionConfig,
    /// Largest request body accepted (bigger ones get 413).
    pub max_body: usize,
    /// Buffered bytes past which `write()` asks the application to wait.
    pub high_water_mark: usize,
    /// Buffered bytes past which a session is closed instead of growing.
    pub max_buffered: usize,
    /// Origins allowed to use the server (`*:*`: any).
    pub origins: Vec<String>,
    /// Sessions the engine may hold at once; new ones get 503 past it.
    pub max_sessions: usize,
    iframe_page: String,
    iframe_etag: String,
}

impl Options {
    pub fn new(sockjs_url: &str) -> Options {
        let iframe_page = iframe_page(sockjs_url);
        let iframe_etag = format!("\"{:x}\"", Md5::digest(iframe_page.as_bytes()));
        Options {
            enabled: Enabled::ALL,
            transports_listed: None,
            jsessionid: Jsessionid::Off,
            disable_cors: false,
            base_url: None,
            base_url_is_function: false,
            session: SessionConfig::SOCKJS_NODE,
            max_body: 64 * 1024 * 1024,
            high_water_mark: 1024 * 1024,
            max_buffered: 16 * 1024 * 1024,
            origins: vec!["*:*".to_owned()],
            max_sessions: usize::MAX,
            iframe_page,
            iframe_etag,
        }
    }
}

/// What the answer needs to know of a request.
#[derive(Debug, Clone, Default)]
pub struct Request<'a> {
    pub method: &'a str,
    /// The path after the prefix, without the query.
    pub path: &'a str,
    pub query: &'a str,
    pub origin: Option<&'a str>,
    pub cookie: Option<&'a str>,
    pub if_none_match: Option<&'a str>,
    pub content_type: Option<&'a str>,
    pub access_control_request_headers: Option<&'a str>,
    pub body: &'a [u8],
    /// The body was longer than `Options::max_body` and was not read.
    pub body_too_large: bool,
    /// The value of a `base_url` function, computed by the caller.
    pub base_url: Option<&'a str>,
    /// Seconds since the Unix epoch, for `Expires`.
    pub now_unix: u64,
    /// A fresh random number for `/info`.
    pub entropy: u32,
}

/// What the driver does once head and body are written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Then {
    End,
    /// Attach a receiver to the session (create it if it is new).
    Receive {
        session: String,
        framing: Framing,
    },
    /// Deliver messages to the session. If there is no such session the
    /// driver answers `not_found()` instead.
    Deliver {
        session: String,
        messages: Vec<String>,
    },
    /// Write `CHUNKING_TEST_SCHEDULE` over time.
    ChunkingTest,
    /// A WebSocket endpoint: only an upgrade can proceed.
    WebSocket {
        raw: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
    pub then: Then,
    /// Run the application's `jsessionid(req, res)` before writing the head.
    pub call_jsessionid: bool,
    /// A line for the application's log.
    pub log: Option<LogLine>,
    /// Call the application's `base_url()` and ask again with its value.
    pub needs_base_url: bool,
}

/// (`severity`, `message`) for the application's `log` option.
pub type LogLine = (&'static str, String);

const TEXT_PLAIN: &str = "text/plain; charset=UTF-8";
const JAVASCRIPT: &str = "application/javascript; charset=UTF-8";
const NO_CACHE: &str = "no-store, no-cache, no-transform, must-revalidate, max-age=0";
const ONE_YEAR: u64 = 365 * 24 * 60 * 60;

impl Answer {
    fn new(status: u16) -> Answer {
        Answer {
            status,
            headers: Vec::new(),
            body: String::new(),
            then: Then::End,
            call_jsessionid: false,
            log: None,
            needs_base_url: false,
        }
    }

    fn header(&mut self, name: &'static str, value: impl Into<String>) -> &mut Answer {
        self.headers.push((name, value.into()));
        self
    }

    fn body(mut self, status: u16, content_type: Option<&str>, body: impl Into<String>) -> Answer {
        self.status = status;
        if let Some(ct) = content_type {
            self.header("Content-Type", ct);
        }
        self.body = body.into();
        self
    }

    /// This answer's filters, failing with `status` and `message`
    /// (sockjs-node's `handle_error`).
    fn fail(mut self, status: u16, message: &str) -> Answer {
        self.status = status;
        self.body = message.to_owned();
        self.then = Then::End;
        self
    }

    /// This answer's filters, then `404 Error: Page not found` (what an
    /// unknown session gets).
    pub fn into_not_found(mut self) -> Answer {
        self.headers.retain(|(name, _)| *name != "Content-Type");
        self.body(404, Some(TEXT_PLAIN), "404 Error: Page not found\n")
    }

    pub fn header_value(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// `404 Error: Page not found`, as for any unknown path under the prefix.
pub fn not_found() -> Answer {
    Answer::new(404).into_not_found()
}

/// The answer to `req`.
pub fn answer(req: &Request, opts: &Options) -> Answer {
    if let Some(refused) = refuse_origin(req, opts) {
        return refused;
    }
    let method = Method::parse(req.method);
    let endpoint = match route::route(method, req.path, &opts.enabled) {
        Routed::Endpoint(e) => e,
        Routed::NotFound => return not_found(),
        Routed::Disabled => {
            let mut a = Answer::new(404);
            cache_for(&mut a, req.now_unix);
            return a.into_not_found();
        }
        Routed::MethodNotAllowed(allow) => {
            let mut a = Answer::new(405);
            a.header("Allow", allow);
            return a;
        }
    };
    let mut a = Answer::new(200);
    match endpoint {
        Endpoint::Greeting => a.body(200, Some(TEXT_PLAIN), "Welcome to SockJS!\n"),
        Endpoint::Iframe => iframe(a, req, opts),
        Endpoint::InfoOptions => preflight(a, req, opts, "OPTIONS, GET"),
        Endpoint::Info => {
            if opts.base_url_is_function && req.base_url.is_none() {
                a.needs_base_url = true;
                return a;
            }
            cors(&mut a, req, opts);
            a.header("Cache-Control", NO_CACHE);
            let body = info_json(req, opts);
            a.body(200, Some("application/json; charset=UTF-8"), body)
        }
        Endpoint::ChunkingTestOptions => preflight(a, req, opts, "OPTIONS, POST"),
        Endpoint::ChunkingTest => {
            cors(&mut a, req, opts);
            a.log = unsupported_xhr_content_type(req);
            a.header("Content-Type", JAVASCRIPT);
            a.then = Then::ChunkingTest;
            a
        }
        Endpoint::RawWebSocket => websocket_over_plain_http(a, true),
        Endpoint::Session {
            transport,
            preflight: true,
            ..
        } => {
            debug_assert!(matches!(
                transport,
                Transport::Xhr | Transport::XhrSend | Transport::XhrStreaming
            ));
            preflight(a, req, opts, "OPTIONS, POST")
        }
        Endpoint::Session { session, transport, .. } => session_endpoint(a, req, opts, session, transport),
    }
}

fn session_endpoint(mut a: Answer, req: &Request, opts: &Options, session: String, transport: Transport) -> Answer {
    if transport == Transport::WebSocket {
        return websocket_over_plain_http(a, false);
    }
    jsessionid(&mut a, req, opts);
    a.header("Cache-Control", NO_CACHE);
    match transport {
        Transport::WebSocket => unreachable!("answered above"),
        Transport::Xhr | Transport::XhrStreaming => {
            cors(&mut a, req, opts);
            a.header("Content-Type", JAVASCRIPT);
            let framing = if transport == Transport::Xhr {
                Framing::XhrPolling
            } else {
                // The 2 KiB prelude makes old IE start delivering the stream.
                a.body = "h".repeat(2048) + "\n";
                Framing::XhrStreaming
            };
            a.then = Then::Receive { session, framing };
            a
        }
        Transport::XhrSend => {
            cors(&mut a, req, opts);
            if req.body_too_large {
                return too_large(a, opts);
            }
            a.log = unsupported_xhr_content_type(req);
            let body = if a.log.is_some() { String::new() } else { body_text(req) };
            match decode::message_array(&body, opts.max_body) {
                Err(e) => refused(a, e, opts),
                Ok(messages) => {
                    a.header("Content-Type", TEXT_PLAIN);
                    a.status = 204;
                    a.then = Then::Deliver { session, messages };
                    a
                }
            }
        }
        Transport::EventSource => {
            // EventSource always gets CORS headers; `Origin: null` counts as none.
            match req.origin.filter(|o| *o != "null") {
                Some(origin) => {
                    a.header("Access-Control-Allow-Credentials", "true");
                    a.header("Access-Control-Allow-Origin", origin);
                }
                None => {
                    a.header("Access-Control-Allow-Origin", "*");
                }
            }
            a.header("Vary", "Origin");
            if let Some(h) = req.access_control_request_headers {
                a.header("Access-Control-Allow-Headers", h);
            }
            a.header("Content-Type", "text/event-stream");
            // Opera needed one more line break at the start.
            a.body = "\r\n".into();
            a.then = Then::Receive {
                session,
                framing: Framing::EventSource,
            };
            a
        }
        Transport::HtmlFile => match callback(req, None) {
            Err(message) => a.fail(500, message),
            Ok(cb) => {
                a.header("Content-Type", "text/html; charset=UTF-8");
                a.body = htmlfile_page(&cb);
                a.then = Then::Receive {
                    session,
                    framing: Framing::HtmlFile,
                };
                a
            }
        },
        Transport::Jsonp => match callback(req, Some(32)) {
            Err(message) => a.fail(500, message),
            Ok(cb) => {
                a.header("X-Content-Type-Options", "nosniff");
                a.header("Content-Type", JAVASCRIPT);
                a.then = Then::Receive {
                    session,
                    framing: Framing::Jsonp { callback: cb.into() },
                };
                a
            }
        },
        Transport::JsonpSend => {
            if req.body_too_large {
                return too_large(a, opts);
            }
            match jsonp_send_messages(req, opts.max_body) {
                Err((e, log)) => {
                    a.log = log;
                    refused(a, e, opts)
                }
                Ok(messages) => {
                    a.header("Content-Type", TEXT_PLAIN);
                    a.body = "ok".into();
                    a.then = Then::Deliver { session, messages };
                    a
                }
            }
        }
    }
}

/// A request from an origin outside the `origins` allow-list gets 403.
/// Requests without an `Origin` (same-origin navigation, script tags,
/// non-browser clients) are not concerned.
fn refuse_origin(req: &Request, opts: &Options) -> Option<Answer> {
    let origin = req.origin?;
    if origin::allowed(&opts.origins, origin) {
        return None;
    }
    let mut a = Answer::new(403).fail(403, "Origin not allowed.");
    a.log = Some((
        "error",
        format!("Refused a request from origin {origin:?}: not in the origins option"),
    ));
    Some(a)
}

fn too_large(a: Answer, opts: &Options) -> Answer {
    let mut a = a.fail(413, "Payload too large.");
    a.log = Some((
        "error",
        format!("Request body over the limit of {} bytes refused", opts.max_body),
    ));
    a
}

/// A send whose payload is not delivered: 413 when its messages would take
/// more than `max_body` (see `decode::MESSAGE_COST`), else 500 with the
/// protocol's text.
fn refused(a: Answer, e: PayloadError, opts: &Options) -> Answer {
    if e != PayloadError::TooLarge {
        return a.fail(500, e.message());
    }
    let mut a = a.fail(413, e.message());
    a.log = Some((
        "error",
        format!(
            "Request refused: its messages take over the limit of {} bytes ({} each beyond its text)",
            opts.max_body,
            decode::MESSAGE_COST
        ),
    ));
    a
}

fn body_text(req: &Request) -> String {
    String::from_utf8_lossy(req.body).into_owned()
}

fn media_type<'a>(req: &'a Request) -> &'a str {
    req.content_type.unwrap_or("").split(';').next().unwrap_or("")
}

/// `xhr_send` accepts what browsers' XHR sends; anything else is logged and
/// treated as an empty body.
fn unsupported_xhr_content_type(req: &Request) -> Option<LogLine> {
    match media_type(req) {
        "text/plain" | "T" | "application/json" | "application/xml" | "" | "text/xml" => None,
        _ => Some((
            "error",
            format!("Unsupported content-type {}", req.content_type.unwrap_or("")),
        )),
    }
}

fn jsonp_send_messages(req: &Request, budget: usize) -> Result<Vec<String>, (PayloadError, Option<LogLine>)> {
    let body = body_text(req);
    let payload = match media_type(req) {
        "application/x-www-form-urlencoded" => decode::form_value(&body, "d").unwrap_or_default(),
        "text/plain" | "" => body,
        _ => {
            let log = (
                "error",
                format!("Unsupported content-type {}", req.content_type.unwrap_or("")),
            );
            return Err((PayloadError::Expected, Some(log)));
        }
    };
    decode::message_array(&payload, budget).map_err(|e| (e, None))
}

/// The `c` (or `callback`) query parameter: letters, digits, `-`, `_`, `.`,
/// and for jsonp at most 32 of them, so that it cannot inject script.
fn callback(req: &Request, max_len: Option<usize>) -> Result<String, &'static str> {
    let key = if decode::form_has(req.query, "c") {
        "c"
    } else if decode::form_has(req.query, "callback") {
        "callback"
    } else {
        return Err("\"callback\" parameter required");
    };
    let cb = decode::form_value(req.query, key).unwrap_or_default();
    let valid_chars = cb
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if !valid_chars || max_len.is_some_and(|max| cb.len() > max) {
        return Err("invalid \"callback\" parameter");
    }
    Ok(cb)
}

fn websocket_over_plain_http(a: Answer, raw: bool) -> Answer {
    let mut a = a.fail(400, "Not a valid websocket request");
    a.then = Then::WebSocket { raw };
    a
}

fn preflight(mut a: Answer, req: &Request, opts: &Options, methods: &str) -> Answer {
    jsessionid(&mut a, req, opts);
    cors(&mut a, req, opts);
    cache_for(&mut a, req.now_unix);
    a.status = 204;
    a.header("Access-Control-Allow-Methods", methods);
    a.header("Access-Control-Max-Age", ONE_YEAR.to_string());
    a
}

fn iframe(mut a: Answer, req: &Request, opts: &Options) -> Answer {
    cache_for(&mut a, req.now_unix);
    if req.if_none_match == Some(opts.iframe_etag.as_str()) {
        a.status = 304;
        return a;
    }
    a.header("ETag", opts.iframe_etag.clone());
    let page = opts.iframe_page.clone();
    a.body(200, Some("text/html; charset=UTF-8"), page)
}

fn jsessionid(a: &mut Answer, req: &Request, opts: &Options) {
    match opts.jsessionid {
        Jsessionid::Off => {}
        Jsessionid::Function => a.call_jsessionid = true,
        Jsessionid::Cookie => {
            let id = cookie_value(req.cookie.unwrap_or(""), "JSESSIONID").filter(|v| !v.is_empty());
            a.header("Set-Cookie", format!("JSESSIONID={}; path=/", id.unwrap_or("dummy")));
        }
    }
}

fn cookie_value<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|pair| {
        let mut parts = pair.split('=');
        let key = parts.next()?.trim();
        (key == name).then(|| parts.next().unwrap_or("").trim())
    })
}

fn cors(a: &mut Answer, req: &Request, opts: &Options) {
    if opts.disable_cors {
        return;
    }
    match req.origin {
        Some(origin) => {
            a.header("Access-Control-Allow-Credentials", "true");
            a.header("Access-Control-Allow-Origin", origin);
        }
        None => {
            a.header("Access-Control-Allow-Origin", "*");
        }
    }
    a.header("Vary", "Origin");
    if let Some(h) = req.access_control_request_headers {
        a.header("Access-Control-Allow-Headers", h);
    }
}

fn cache_for(a: &mut Answer, now_unix: u64) {
    a.header("Cache-Control", format!("public, max-age={ONE_YEAR}"));
    a.header("Expires", http_date(now_unix.saturating_add(ONE_YEAR)));
}

fn info_json(req: &Request, opts: &Options) -> String {
    // Built by hand to keep sockjs-node's key order.
    let json = |v: serde_json::Value| v.to_string();
    let mut out = format!("{{\"websocket\":{}", opts.enabled.websocket);
    if let Some(list) = &opts.transports_listed {
        out.push_str(&format!(",\"transports\":{}", json(list.clone().into())));
    }
    if !opts.disable_cors {
        out.push_str(&format!(",\"origins\":{}", json(opts.origins.clone().into())));
    }
    out.push_str(&format!(
        ",\"cookie_needed\":{},\"entropy\":{}",
        opts.jsessionid != Jsessionid::Off,
        req.entropy
    ));
    if let Some(base) = req.base_url.or(opts.base_url.as_deref()) {
        out.push_str(&format!(",\"base_url\":{}", json(base.into())));
    }
    out.push('}');
    out
}

/// The hidden iframe page used by the iframe-based transports: it loads
/// sockjs-client from `sockjs_url` and bootstraps it.
fn iframe_page(sockjs_url: &str) -> String {
    let url = sockjs_url
        .replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;");
    format!(
        "<!DOCTYPE html>\n<html>\n<head>\n  <meta http-equiv=\"X-UA-Compatible\" content=\"IE=edge\" />\n  \
         <meta http-equiv=\"Content-Type\" content=\"text/html; charset=UTF-8\" />\n  \
         <script src=\"{url}\"></script>\n  <script>\n    document.domain = document.domain;\n    \
         SockJS.bootstrap_iframe();\n  </script>\n</head>\n<body>\n  <h2>Don't panic!</h2>\n  \
         <p>This is a SockJS hidden iframe. It's used for cross domain magic.</p>\n</body>\n</html>"
    )
}

/// The htmlfile transport's page: fixed by the protocol (clients and the
/// reference suite compare it), padded past 1 KiB so that browsers start
/// rendering, with the validated callback name in it.
pub fn htmlfile_page(callback: &str) -> String {
    let head = "<!doctype html>\n<html><head>\n  <meta http-equiv=\"X-UA-Compatible\" content=\"IE=edge\" />\n  \
                <meta http-equiv=\"Content-Type\" content=\"text/html; charset=UTF-8\" />\n</head><body>\
                <h2>Don't panic!</h2>\n  <script>\n    document.domain = document.domain;\n    var c = parent.";
    let tail = ";\n    c.start();\n    function p(d) {c.message(d);};\n    window.onload = function() {c.stop();};\n  \
                </script>";
    // sockjs-node pads its template (which holds a 14-character placeholder
    // where the callback goes) to 1037 characters, then adds two CRLFs.
    let template_len = head.len() + "{{ callback }}".len() + tail.len();
    let padding = 1037usize.saturating_sub(template_len);
    let mut page = String::with_capacity(template_len + padding + callback.len() + 4);
    page.push_str(head);
    page.push_str(callback);
    page.push_str(tail);
    page.push_str(&" ".repeat(padding));
    page.push_str("\r\n\r\n");
    page
}

/// The chunking test's writes: (milliseconds after the previous one, chunk).
/// The response ends after the last.
pub const CHUNKING_TEST_SCHEDULE: [(u64, &str); 7] = [
    (0, "h\n"),
    (1, concat!(
        "                                                                                                                                ",
        "                                                                                                                                ",
        "                                                                                                                                ",
        "                                                                                                                                ",
        "                                                                                                                                ",
        "                                                                                                                                ",
        "                                                                                                                                ",
        "                                                                                                                                ",
        "                                                                                                                                ",
        "                                                                                                                                ",
        "                                                                                                                                ",
        "                                                                                                                                ",
        "                                                                                                                                ",
        "                                                                                                                                ",
        "                                                                                                                                ",
        "                                                                                                                                ",
        "h\n"
    )),
    (5, "h\n"),
    (25, "h\n"),
    (125, "h\n"),
    (625, "h\n"),
    (3125, "h\n"),
];

/// An HTTP date (IMF-fixdate) for `unix` seconds.
pub fn http_date(unix: u64) -> String {
    let days = unix / 86_400;
    let secs = unix % 86_400;
    let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][(days % 7) as usize];
    let (year, month, day) = civil_from_days(days as i64);
    let month_name = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ][month as usize - 1];
    format!(
        "{weekday}, {day:02} {month_name} {year} {:02}:{:02}:{:02} GMT",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Gregorian (year, month, day) of a day count since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// What a WebSocket upgrade request says of itself.
#[derive(Debug, Clone, Default)]
pub struct UpgradeHeaders<'a> {
    pub upgrade: Option<&'a str>,
    pub connection: Option<&'a str>,
    pub version: Option<&'a str>,
    pub key: Option<&'a str>,
}

/// Check an `'upgrade'` request against the WebSocket endpoints. `Ok(raw)`
/// when it may proceed (RFC 6455, version 13, to a WebSocket URL that is
/// served); otherwise the complete answer to write on the socket.
pub fn upgrade(req: &Request, h: &UpgradeHeaders, opts: &Options) -> Result<bool, Box<Answer>> {
    let a = answer(req, opts);
    let raw = match a.then {
        Then::WebSocket { raw } => raw,
        // Not a WebSocket URL (or not served, or a refused origin): its
        // own 403/404/405, or a 400.
        _ if matches!(a.status, 403..=405) => return Err(Box::new(a)),
        _ => {
            return Err(Box::new(
                Answer::new(400).fail(400, "Can \"Upgrade\" only to \"WebSocket\"."),
            ))
        }
    };
    let upgrade_ok = h.upgrade.is_some_and(|u| u.eq_ignore_ascii_case("websocket"));
    let connection_ok = h
        .connection
        .is_some_and(|c| c.split(',').any(|t| t.trim().eq_ignore_ascii_case("upgrade")));
    if !upgrade_ok || !connection_ok {
        return Err(Box::new(Answer::new(400).fail(400, "Not a valid websocket request")));
    }
    if h.version.map(str::trim) != Some("13") {
        let mut a = Answer::new(400).fail(400, "Only supported WebSocket protocol is RFC 6455.");
        a.header("Sec-WebSocket-Version", "13");
        return Err(Box::new(a));
    }
    if !h.key.is_some_and(valid_websocket_key) {
        return Err(Box::new(Answer::new(400).fail(400, "Invalid Sec-WebSocket-Key")));
    }
    Ok(raw)
}

/// A key is 16 bytes in base64: 22 characters and `==`.
fn valid_websocket_key(key: &str) -> bool {
    let key = key.trim();
    key.len() == 24
        && key.ends_with("==")
        && key[..22]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
}

/// The reason phrase of the statuses this crate produces.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        101 => "Switching Protocols",
        200 => "OK",
        204 => "No Content",
        304 => "Not Modified",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Payload Too Large",
        414 => "URI Too Long",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

/// `503`: the server holds as many sessions as it may.
pub fn too_many_sessions() -> Answer {
    Answer::new(503).fail(503, "Too many sessions.")
}

/// A complete HTTP/1.1 response for a raw socket (an `'upgrade'` that is
/// refused), closing the connection.
pub fn raw_response(a: &Answer) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {} {}\r\nConnection: close\r\n",
        a.status,
        reason_phrase(a.status)
    );
    for (name, value) in &a.headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str(&format!("Content-Length: {}\r\n\r\n", a.body.len()));
    out.push_str(&a.body);
    out.into_bytes()
}

#[cfg(test)]
mod tests;
