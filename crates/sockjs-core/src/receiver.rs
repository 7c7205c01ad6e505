//! Receivers: what carries a session's frames to its client, and how each
//! transport wraps a frame (xhr newline, eventsource `data:` lines, htmlfile
//! script tags, jsonp callback), how much it may carry before the client must
//! reconnect, and whether its going away closes the session at once.

use crate::quote::quote_into;

/// The receiving side of a transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Framing {
    XhrPolling,
    XhrStreaming,
    EventSource,
    HtmlFile,
    Jsonp {
        /// Boxed as a `str`: every session's receiver is 8 bytes smaller.
        callback: Box<str>,
    },
    WebSocket,
    /// The raw WebSocket endpoint (`<prefix>/websocket`): no SockJS frames,
    /// each message is one WebSocket message.
    RawWebSocket,
}

/// Every transport's name as sockjs-node gives it (`conn.protocol`), in
/// the order of `Framing::protocol_index`.
pub const PROTOCOLS: [&str; 7] = [
    "xhr-polling",
    "xhr-streaming",
    "eventsource",
    "htmlfile",
    "jsonp-polling",
    "websocket",
    "websocket-raw",
];

impl Framing {
    /// Where its name is in `PROTOCOLS`.
    pub fn protocol_index(&self) -> usize {
        match self {
            Framing::XhrPolling => 0,
            Framing::XhrStreaming => 1,
            Framing::EventSource => 2,
            Framing::HtmlFile => 3,
            Framing::Jsonp { .. } => 4,
            Framing::WebSocket => 5,
            Framing::RawWebSocket => 6,
        }
    }

    /// The name sockjs-node gives it (`conn.protocol`).
    pub fn protocol(&self) -> &'static str {
        PROTOCOLS[self.protocol_index()]
    }

    /// Wrap one SockJS frame for this transport.
    pub fn encode(&self, frame: &str) -> String {
        match self {
            Framing::XhrPolling | Framing::XhrStreaming => {
                let mut out = String::with_capacity(frame.len() + 1);
                out.push_str(frame);
                out.push('\n');
                out
            }
            Framing::EventSource => {
                let mut out = String::with_capacity(frame.len() + 10);
                out.push_str("data: ");
                escape_event_data(&mut out, frame);
                out.push_str("\r\n\r\n");
                out
            }
            Framing::HtmlFile => {
                let mut out = String::with_capacity(frame.len() + 32);
                out.push_str("<script>\np(");
                script_string(&mut out, frame);
                out.push_str(");\n</script>\r\n");
                out
            }
            Framing::Jsonp { callback } => {
                let mut out = String::with_capacity(frame.len() + callback.len() + 16);
                // The leading comment defeats the Flash "Rosetta" JSONP exploit.
                out.push_str("/**/");
                out.push_str(callback);
                out.push('(');
                script_string(&mut out, frame);
                out.push_str(");\r\n");
                out
            }
            Framing::WebSocket | Framing::RawWebSocket => frame.to_owned(),
        }
    }

    /// Bytes this receiver may carry before it is ended. Polling transports
    /// carry exactly one frame; streaming ones `response_limit` bytes; a
    /// WebSocket has no limit.
    pub fn limit(&self, response_limit: usize) -> Option<usize> {
        match self {
            Framing::XhrPolling | Framing::Jsonp { .. } => Some(1),
            Framing::XhrStreaming | Framing::EventSource | Framing::HtmlFile => Some(response_limit),
            Framing::WebSocket | Framing::RawWebSocket => None,
        }
    }

    /// Whether the session outlives this receiver by `disconnect_delay`. An
    /// HTTP receiver is expected back; a WebSocket is the whole session.
    pub fn delays_disconnect(&self) -> bool {
        !matches!(self, Framing::WebSocket | Framing::RawWebSocket)
    }

    /// Whether SockJS framing applies (everything but the raw WebSocket).
    pub fn is_raw(&self) -> bool {
        matches!(self, Framing::RawWebSocket)
    }
}

/// EventSource data may not hold CR, LF or NUL; sockjs percent-escapes them,
/// and `%` itself.
fn escape_event_data(out: &mut String, frame: &str) {
    for ch in frame.chars() {
        match ch {
            '%' => out.push_str("%25"),
            '\r' => out.push_str("%0D"),
            '\n' => out.push_str("%0A"),
            '\0' => out.push_str("%00"),
            c => out.push(c),
        }
    }
}

/// A frame as a JavaScript string literal inside a script. On top of JSON
/// escaping, `<` and `>` are escaped so that no message can close the
/// surrounding `<script>` element (sockjs-node did not guard against this).
fn script_string(out: &mut String, frame: &str) {
    let start = out.len();
    quote_into(out, frame);
    if out[start..].contains(['<', '>']) {
        let escaped = out[start..].replace('<', "\\u003c").replace('>', "\\u003e");
        out.truncate(start);
        out.push_str(&escaped);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_transport_has_sockjs_nodes_name() {
        let names = [
            (Framing::XhrPolling, "xhr-polling"),
            (Framing::XhrStreaming, "xhr-streaming"),
            (Framing::EventSource, "eventsource"),
            (Framing::HtmlFile, "htmlfile"),
            (Framing::Jsonp { callback: "cb".into() }, "jsonp-polling"),
            (Framing::WebSocket, "websocket"),
            (Framing::RawWebSocket, "websocket-raw"),
        ];
        for (framing, name) in names {
            assert_eq!(framing.protocol(), name);
        }
    }

    #[test]
    fn xhr_appends_a_newline() {
        assert_eq!(Framing::XhrPolling.encode("o"), "o\n");
        assert_eq!(Framing::XhrStreaming.encode("a[\"x\"]"), "a[\"x\"]\n");
    }

    #[test]
    fn eventsource_escapes_line_breaks() {
        assert_eq!(Framing::EventSource.encode("o"), "data: o\r\n\r\n");
        assert_eq!(Framing::EventSource.encode("a%\r\n\0b"), "data: a%25%0D%0A%00b\r\n\r\n");
    }

    #[test]
    fn htmlfile_and_jsonp_wrap_a_js_string() {
        assert_eq!(Framing::HtmlFile.encode("o"), "<script>\np(\"o\");\n</script>\r\n");
        let jsonp = Framing::Jsonp { callback: "cb".into() };
        assert_eq!(jsonp.encode("a[\"x\"]"), "/**/cb(\"a[\\\"x\\\"]\");\r\n");
    }

    #[test]
    fn script_transports_cannot_be_broken_out_of() {
        let out = Framing::HtmlFile.encode("a[\"</script><script>alert(1)\"]");
        assert!(!out[..out.len() - 12].contains("</script>"), "{out}");
        assert!(out.contains("\\u003c/script\\u003e"));
    }

    #[test]
    fn limits() {
        assert_eq!(Framing::XhrPolling.limit(4096), Some(1));
        assert_eq!(Framing::EventSource.limit(4096), Some(4096));
        assert_eq!(Framing::WebSocket.limit(4096), None);
        assert!(!Framing::WebSocket.delays_disconnect());
        assert!(Framing::HtmlFile.delays_disconnect());
    }
}
