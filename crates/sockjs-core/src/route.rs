//! URL routing under a prefix. The caller has already stripped the prefix
//! (a JavaScript regex fragment in sockjs 0.3, so it is matched in JS); what
//! is left is routed here exactly as sockjs-node 0.3.24's dispatch table
//! does, including its `405 Allow` lists, which name every method of the
//! matched path in table order.

/// The per-session transports, by their URL suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    WebSocket,
    Xhr,
    XhrSend,
    XhrStreaming,
    EventSource,
    HtmlFile,
    Jsonp,
    JsonpSend,
}

impl Transport {
    fn from_suffix(s: &str) -> Option<Transport> {
        Some(match s {
            "websocket" => Transport::WebSocket,
            "xhr" => Transport::Xhr,
            "xhr_send" => Transport::XhrSend,
            "xhr_streaming" => Transport::XhrStreaming,
            "eventsource" => Transport::EventSource,
            "htmlfile" => Transport::HtmlFile,
            "jsonp" => Transport::Jsonp,
            "jsonp_send" => Transport::JsonpSend,
            _ => return None,
        })
    }

    /// The methods of this path, in sockjs-node's table order.
    fn methods(self) -> &'static [Method] {
        use Method::*;
        match self {
            Transport::WebSocket | Transport::EventSource | Transport::HtmlFile | Transport::Jsonp => &[Get],
            Transport::JsonpSend => &[Post],
            Transport::Xhr | Transport::XhrSend | Transport::XhrStreaming => &[Post, Options],
        }
    }
}

/// The transports an install serves (the 0.4 `transports` option, and the
/// 0.3 `websocket` flag). Names are sockjs-node 0.4's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Enabled {
    pub websocket: bool,
    pub websocket_raw: bool,
    pub xhr_polling: bool,
    pub xhr_streaming: bool,
    pub eventsource: bool,
    pub htmlfile: bool,
    pub jsonp_polling: bool,
}

impl Enabled {
    pub const ALL: Enabled = Enabled {
        websocket: true,
        websocket_raw: true,
        xhr_polling: true,
        xhr_streaming: true,
        eventsource: true,
        htmlfile: true,
        jsonp_polling: true,
    };

    pub const NONE: Enabled = Enabled {
        websocket: false,
        websocket_raw: false,
        xhr_polling: false,
        xhr_streaming: false,
        eventsource: false,
        htmlfile: false,
        jsonp_polling: false,
    };

    /// From a list of 0.4 transport names; unknown names are returned as errors.
    pub fn from_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Enabled, String> {
        let mut e = Enabled::NONE;
        for name in names {
            match name {
                "websocket" => e.websocket = true,
                "websocket-raw" => e.websocket_raw = true,
                "xhr-polling" => e.xhr_polling = true,
                "xhr-streaming" => e.xhr_streaming = true,
                "eventsource" => e.eventsource = true,
                "htmlfile" => e.htmlfile = true,
                "jsonp-polling" => e.jsonp_polling = true,
                other => return Err(format!("unknown transport {other}")),
            }
        }
        Ok(e)
    }

    fn serves(&self, t: Transport) -> bool {
        match t {
            Transport::WebSocket => self.websocket,
            Transport::Xhr => self.xhr_polling,
            // Every receiving transport but jsonp sends with xhr_send.
            Transport::XhrSend => self.xhr_polling || self.xhr_streaming || self.eventsource || self.htmlfile,
            Transport::XhrStreaming => self.xhr_streaming,
            Transport::EventSource => self.eventsource,
            Transport::HtmlFile => self.htmlfile,
            Transport::Jsonp | Transport::JsonpSend => self.jsonp_polling,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Options,
    Other,
}

impl Method {
    pub fn parse(m: &str) -> Method {
        match m {
            "GET" => Method::Get,
            "POST" => Method::Post,
            "OPTIONS" => Method::Options,
            _ => Method::Other,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Options => "OPTIONS",
            Method::Other => "",
        }
    }
}

/// What a request is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Greeting,
    Iframe,
    Info,
    InfoOptions,
    ChunkingTest,
    ChunkingTestOptions,
    RawWebSocket,
    Session {
        server: String,
        session: String,
        transport: Transport,
        preflight: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Routed {
    Endpoint(Endpoint),
    /// No such path: 404.
    NotFound,
    /// A transport switched off by configuration: 404 with cache headers.
    Disabled,
    /// The path exists, not with this method: 405 with this `Allow` value.
    MethodNotAllowed(String),
}

/// Route `method` on `path` (what follows the prefix, without the query).
pub fn route(method: Method, path: &str, enabled: &Enabled) -> Routed {
    // Every pattern of the table accepts one trailing slash.
    let path = path.strip_suffix('/').unwrap_or(path);
    use Method::*;
    let (methods, endpoint): (&[Method], Endpoint) = match path {
        "" => (&[Get], Endpoint::Greeting),
        "/info" => (
            &[Options, Get],
            if method == Options {
                Endpoint::InfoOptions
            } else {
                Endpoint::Info
            },
        ),
        "/chunking_test" => (
            &[Options, Post],
            if method == Options {
                Endpoint::ChunkingTestOptions
            } else {
                Endpoint::ChunkingTest
            },
        ),
        "/websocket" => {
            if !enabled.websocket_raw {
                return disabled_get(method);
            }
            (&[Get], Endpoint::RawWebSocket)
        }
        p if is_iframe_path(p) => (&[Get], Endpoint::Iframe),
        p => match session_path(p) {
            None => return Routed::NotFound,
            Some((server, session, transport)) => {
                if !enabled.serves(transport) {
                    return if transport == Transport::WebSocket {
                        disabled_get(method)
                    } else {
                        Routed::NotFound
                    };
                }
                let endpoint = Endpoint::Session {
                    server: server.to_owned(),
                    session: session.to_owned(),
                    transport,
                    preflight: method == Options,
                };
                (transport.methods(), endpoint)
            }
        },
    };
    if methods.contains(&method) {
        Routed::Endpoint(endpoint)
    } else {
        let allow: Vec<&str> = methods.iter().map(|m| m.name()).collect();
        Routed::MethodNotAllowed(allow.join(", "))
    }
}

fn disabled_get(method: Method) -> Routed {
    if method == Method::Get {
        Routed::Disabled
    } else {
        Routed::MethodNotAllowed("GET".into())
    }
}

/// sockjs-node's pattern is `/iframe[0-9-.a-z_]*.html`, with an unescaped
/// dot: any one character may stand before `html`.
fn is_iframe_path(p: &str) -> bool {
    let Some(rest) = p.strip_prefix("/iframe") else {
        return false;
    };
    let Some(before_html) = rest.strip_suffix("html") else {
        return false;
    };
    let mut chars = before_html.chars();
    if chars.next_back().is_none_or(|c| c == '\n') {
        return false;
    }
    chars
        .as_str()
        .bytes()
        .all(|b| matches!(b, b'0'..=b'9' | b'-' | b'.' | b'a'..=b'z' | b'_'))
}

/// `/<server>/<session>/<transport>`; server and session hold neither `/` nor `.`.
fn session_path(p: &str) -> Option<(&str, &str, Transport)> {
    let mut parts = p.strip_prefix('/')?.split('/');
    let (server, session, suffix) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let valid = |s: &str| !s.is_empty() && !s.contains('.');
    if !valid(server) || !valid(session) {
        return None;
    }
    Some((server, session, Transport::from_suffix(suffix)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use Method::*;

    fn r(m: Method, p: &str) -> Routed {
        route(m, p, &Enabled::ALL)
    }

    #[test]
    fn greeting_with_and_without_slash() {
        assert_eq!(r(Get, ""), Routed::Endpoint(Endpoint::Greeting));
        assert_eq!(r(Get, "/"), Routed::Endpoint(Endpoint::Greeting));
        assert_eq!(r(Post, ""), Routed::MethodNotAllowed("GET".into()));
    }

    #[test]
    fn info_and_its_preflight() {
        assert_eq!(r(Get, "/info"), Routed::Endpoint(Endpoint::Info));
        assert_eq!(r(Options, "/info/"), Routed::Endpoint(Endpoint::InfoOptions));
        assert_eq!(r(Post, "/info"), Routed::MethodNotAllowed("OPTIONS, GET".into()));
    }

    #[test]
    fn iframe_names() {
        for ok in [
            "/iframe.html",
            "/iframe-a.html",
            "/iframe-1.2.3.html",
            "/iframe_x-y.html",
            "/iframeXhtml",
        ] {
            assert_eq!(r(Get, ok), Routed::Endpoint(Endpoint::Iframe), "{ok}");
        }
        for bad in [
            "/iframe.htm",
            "/iframe-A.html",
            "/iframehtml",
            "/iframe/a.html",
            "/xiframe.html",
        ] {
            assert_eq!(r(Get, bad), Routed::NotFound, "{bad}");
        }
    }

    #[test]
    fn session_urls() {
        assert_eq!(
            r(Post, "/000/abc/xhr"),
            Routed::Endpoint(Endpoint::Session {
                server: "000".into(),
                session: "abc".into(),
                transport: Transport::Xhr,
                preflight: false
            })
        );
        assert_eq!(r(Get, "/000/abc/xhr"), Routed::MethodNotAllowed("POST, OPTIONS".into()));
        assert_eq!(r(Post, "/000/abc/jsonp"), Routed::MethodNotAllowed("GET".into()));
        for bad in [
            "/a/b/c/xhr",
            "/a.b/c/xhr",
            "//c/xhr",
            "/a//xhr",
            "/a/b.c/xhr",
            "/a/b/nope",
            "/a/b",
        ] {
            assert_eq!(r(Post, bad), Routed::NotFound, "{bad}");
        }
    }

    #[test]
    fn disabled_websocket_is_404_for_get() {
        let no_ws = Enabled {
            websocket: false,
            websocket_raw: false,
            ..Enabled::ALL
        };
        assert_eq!(route(Get, "/a/b/websocket", &no_ws), Routed::Disabled);
        assert_eq!(route(Get, "/websocket", &no_ws), Routed::Disabled);
        assert_eq!(
            route(Post, "/websocket", &no_ws),
            Routed::MethodNotAllowed("GET".into())
        );
    }

    #[test]
    fn transports_list_switches_transports_off() {
        let only_ws = Enabled::from_names(["websocket"]).unwrap();
        assert_eq!(route(Post, "/a/b/xhr", &only_ws), Routed::NotFound);
        assert!(matches!(route(Get, "/a/b/websocket", &only_ws), Routed::Endpoint(_)));
        assert!(Enabled::from_names(["carrier-pigeon"]).is_err());
    }
}
