//! Helpers shared by the fuzz targets: undo a transport's wrapping of a
//! SockJS frame and parse the frame, so targets can check what a client
//! would read.

use sockjs_core::receiver::Framing;

/// A parsed SockJS frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Open,
    Heartbeat,
    Messages(Vec<String>),
    Close(u16, String),
}

/// The frame inside one transport wrapping (panics if the wrapping is
/// malformed). For the (raw) WebSocket the data is the frame itself.
pub fn unwrap(framing: &Framing, data: &str) -> String {
    match framing {
        Framing::XhrPolling | Framing::XhrStreaming => data
            .strip_suffix('\n')
            .unwrap_or_else(|| panic!("xhr data without its newline: {data:?}"))
            .to_owned(),
        Framing::EventSource => {
            let body = data
                .strip_prefix("data: ")
                .and_then(|d| d.strip_suffix("\r\n\r\n"))
                .unwrap_or_else(|| panic!("not one eventsource data line: {data:?}"));
            assert!(
                !body.contains(['\r', '\n', '\0']),
                "CR, LF or NUL in event data {data:?}"
            );
            let b = body.as_bytes();
            let mut out = Vec::with_capacity(b.len());
            let mut i = 0;
            while i < b.len() {
                if b[i] == b'%' {
                    let hex = b.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
                    let byte = hex.and_then(|h| u8::from_str_radix(h, 16).ok());
                    out.push(byte.unwrap_or_else(|| panic!("bad % escape in event data {data:?}")));
                    i += 3;
                } else {
                    out.push(b[i]);
                    i += 1;
                }
            }
            String::from_utf8(out).expect("event data unescapes to UTF-8")
        }
        Framing::HtmlFile => script_literal(
            data.strip_prefix("<script>\np(")
                .and_then(|d| d.strip_suffix(");\n</script>\r\n"))
                .unwrap_or_else(|| panic!("not one htmlfile script: {data:?}")),
        ),
        Framing::Jsonp { callback } => script_literal(
            data.strip_prefix(&format!("/**/{callback}("))
                .and_then(|d| d.strip_suffix(");\r\n"))
                .unwrap_or_else(|| panic!("not one jsonp call: {data:?}")),
        ),
        Framing::WebSocket | Framing::RawWebSocket => data.to_owned(),
    }
}

/// A JS string literal inside a script: no `<` or `>` (nothing can close
/// the script element), and valid JSON.
pub fn script_literal(lit: &str) -> String {
    assert!(!lit.contains(['<', '>']), "< or > in a script literal {lit:?}");
    serde_json::from_str(lit).unwrap_or_else(|e| panic!("script literal {lit:?} is not a JSON string: {e}"))
}

/// Parse a SockJS frame (panics if it is none).
pub fn parse_frame(frame: &str) -> Frame {
    match frame {
        "o" => Frame::Open,
        "h" => Frame::Heartbeat,
        _ if frame.starts_with("a[") => {
            Frame::Messages(serde_json::from_str(&frame[1..]).unwrap_or_else(|e| panic!("bad a frame {frame:?}: {e}")))
        }
        _ if frame.starts_with("c[") => {
            let (code, reason): (u16, String) =
                serde_json::from_str(&frame[1..]).unwrap_or_else(|e| panic!("bad c frame {frame:?}: {e}"));
            Frame::Close(code, reason)
        }
        _ => panic!("not a SockJS frame: {frame:?}"),
    }
}

/// Whether the known finding `id` (see fuzz/artifacts-found/README.md) is
/// to be tolerated, so that a long run can explore past it:
/// `SOCKJS_FUZZ_TOLERATE=id1,id2`. Unset (the default, and in CI), every
/// invariant is enforced.
pub fn tolerate(id: &str) -> bool {
    use std::sync::OnceLock;
    static LIST: OnceLock<Vec<String>> = OnceLock::new();
    LIST.get_or_init(|| {
        std::env::var("SOCKJS_FUZZ_TOLERATE")
            .unwrap_or_default()
            .split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect()
    })
    .iter()
    .any(|known| known == id)
}

/// The `session` target's input: the operations, as `arbitrary` decodes
/// them, and `encode`, their inverse, which writes the seed corpus
/// (`cargo run --example session_seeds`).
pub mod session_input {
    use arbitrary::{Arbitrary, Result, Unstructured};

    /// A string read from the front of the input: one length byte, then that
    /// many bytes (lossy UTF-8). (`String`'s own `Arbitrary` takes lengths
    /// from the end of the input, which makes seeds hard to write.)
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Text(pub String);

    impl<'a> Arbitrary<'a> for Text {
        fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
            let len = usize::from(u8::arbitrary(u)?).min(u.len());
            Ok(Text(String::from_utf8_lossy(u.bytes(len)?).into_owned()))
        }

        fn size_hint(_depth: usize) -> (usize, Option<usize>) {
            (1, None)
        }
    }

    /// An HTTP receiver's transport.
    #[derive(Arbitrary, Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Kind {
        XhrPolling,
        XhrStreaming,
        EventSource,
        HtmlFile,
        Jsonp,
    }

    /// What carries the session.
    #[derive(Arbitrary, Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Carrier {
        Http,
        WebSocket,
        RawWebSocket,
    }

    #[derive(Arbitrary, Debug, Clone, PartialEq, Eq)]
    pub enum Op {
        /// A receiver of this transport arrives (HTTP sessions only).
        Attach {
            kind: Kind,
        },
        Send(Text),
        /// What the engine does after a write: send, then flush.
        SendFlush(Text),
        Flush,
        Close {
            code: u16,
            reason: Text,
        },
        /// The i-th receiver handed out went away (an unknown id if none).
        ReceiverGone(u8),
        /// Time moves on by this many ms, then `handle_timeout`.
        HandleTimeout(u16),
        /// Time moves to the deadline (if later), then `handle_timeout`.
        RunTimer,
        /// Time moves on without the timer being run (a late timer).
        Wait(u16),
        Terminate {
            code: u16,
            reason: Text,
        },
        /// A broadcast: `send_shared` of one `session::Shared` message.
        SendShared(Text),
    }

    #[derive(Arbitrary, Debug, Clone, PartialEq, Eq)]
    pub struct Input {
        pub carrier: Carrier,
        pub heartbeat_ms: u16,
        pub disconnect_ms: u16,
        pub response_limit: u16,
        pub start: u32,
        pub ops: Vec<Op>,
    }

    /// The number of `Op` variants.
    const OPS: u64 = 11;

    /// The `u32` a derived `Arbitrary` maps to variant `i` of `n`.
    fn tag(out: &mut Vec<u8>, i: u64, n: u64) {
        let v = (i << 32).div_ceil(n);
        out.extend_from_slice(&(v as u32).to_le_bytes());
    }

    fn text(out: &mut Vec<u8>, t: &Text) {
        let b = t.0.as_bytes();
        assert!(b.len() <= 255, "seed strings are at most 255 bytes");
        out.push(b.len() as u8);
        out.extend_from_slice(b);
    }

    impl Input {
        /// The bytes `arbitrary` decodes to this input.
        pub fn encode(&self) -> Vec<u8> {
            let mut out = Vec::new();
            tag(&mut out, self.carrier as u64, 3);
            out.extend_from_slice(&self.heartbeat_ms.to_le_bytes());
            out.extend_from_slice(&self.disconnect_ms.to_le_bytes());
            out.extend_from_slice(&self.response_limit.to_le_bytes());
            out.extend_from_slice(&self.start.to_le_bytes());
            for op in &self.ops {
                out.push(1); // "one more element"
                match op {
                    Op::Attach { kind } => {
                        tag(&mut out, 0, OPS);
                        tag(&mut out, *kind as u64, 5);
                    }
                    Op::Send(t) => {
                        tag(&mut out, 1, OPS);
                        text(&mut out, t);
                    }
                    Op::SendFlush(t) => {
                        tag(&mut out, 2, OPS);
                        text(&mut out, t);
                    }
                    Op::Flush => tag(&mut out, 3, 10),
                    Op::Close { code, reason } => {
                        tag(&mut out, 4, OPS);
                        out.extend_from_slice(&code.to_le_bytes());
                        text(&mut out, reason);
                    }
                    Op::ReceiverGone(i) => {
                        tag(&mut out, 5, OPS);
                        out.push(*i);
                    }
                    Op::HandleTimeout(d) => {
                        tag(&mut out, 6, OPS);
                        out.extend_from_slice(&d.to_le_bytes());
                    }
                    Op::RunTimer => tag(&mut out, 7, 10),
                    Op::Wait(d) => {
                        tag(&mut out, 8, OPS);
                        out.extend_from_slice(&d.to_le_bytes());
                    }
                    Op::Terminate { code, reason } => {
                        tag(&mut out, 9, OPS);
                        out.extend_from_slice(&code.to_le_bytes());
                        text(&mut out, reason);
                    }
                    Op::SendShared(t) => {
                        tag(&mut out, 10, OPS);
                        text(&mut out, t);
                    }
                }
            }
            out
        }

        pub fn decode(data: &[u8]) -> Result<Input> {
            Input::arbitrary_take_rest(Unstructured::new(data))
        }
    }
}
