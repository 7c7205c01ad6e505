//! `quote`: the SockJS quoting rule (`quote::quote`), the frames built on it
//! (`frame::messages`, `frame::quoted_messages`, `frame::close`) and every
//! transport's wrapping of a frame (`receiver::Framing::encode`), on
//! arbitrary strings.
//!
//! Input: lossy UTF-8; split at `\u{1}` into the messages of one `a[...]`
//! frame; the first two bytes are also a close code.
//!
//! Invariants:
//! - `quote(s)` parses with serde_json back to `s`, and it holds no raw
//!   character of the escaped set (controls, `"` and `\` other than as escapes,
//!   U+200C..U+200F, U+2028..U+202F, U+2060..U+206F, U+FFF0..U+FFFF, astral
//!   characters); every `\u` escape has four lower-case hex digits;
//! - `a[...]` parses back to the messages, `c[code,"reason"]` to the pair;
//!   `frame::quoted_messages` of the quoted messages is the same `a[...]`;
//! - each transport's wrapping unwraps to the frame: xhr is the frame and a
//!   newline; eventsource `data: ` lines hold no CR, LF or NUL and unescape to
//!   the frame; htmlfile and jsonp wrap a JS string literal with no `<` or
//!   `>` in it (no `</script>` breakout) that parses back to the frame;
//!   WebSocket frames are sent as they are.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sockjs_core::frame;
use sockjs_core::quote::quote;
use sockjs_core::receiver::Framing;
use sockjs_fuzz::unwrap;

fn escaped(c: char) -> bool {
    matches!(c as u32,
        0x00..=0x1f | 0x200c..=0x200f | 0x2028..=0x202f | 0x2060..=0x206f | 0xfff0..=0xffff | 0x10000..)
}

fn check_quoted(q: &str, s: &str) {
    let back: String = serde_json::from_str(q).unwrap_or_else(|e| panic!("quote({s:?}) = {q:?} is not JSON: {e}"));
    assert_eq!(back, s, "quote({s:?}) = {q:?}");
    assert!(q.len() >= 2 && q.starts_with('"') && q.ends_with('"'), "{q:?}");
    if let Some(c) = q.chars().find(|&c| escaped(c)) {
        panic!("quote({s:?}) = {q:?} holds raw U+{:04X}", c as u32);
    }
    // Inside the quotes, `"` only escaped, and `\u` escapes lower case.
    let inner = &q.as_bytes()[1..q.len() - 1];
    let mut i = 0;
    while i < inner.len() {
        match inner[i] {
            b'\\' => {
                let e = inner[i + 1];
                assert!(b"\"\\/bfnrtu".contains(&e), "bad escape in {q:?}");
                if e == b'u' {
                    let hex = &inner[i + 2..i + 6];
                    assert!(
                        hex.iter().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b)),
                        "\\u escape not 4 lower-case hex digits in {q:?}"
                    );
                    i += 6;
                } else {
                    i += 2;
                }
            }
            b'"' => panic!("raw quote inside {q:?}"),
            _ => i += 1,
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    let s: &str = &s;
    let q = quote(s);
    check_quoted(&q, s);

    let messages: Vec<&str> = s.split('\u{1}').collect();
    let a = frame::messages(&messages);
    let back: Vec<String> =
        serde_json::from_str(a.strip_prefix('a').expect("a frame")).unwrap_or_else(|e| panic!("{a:?}: {e}"));
    assert_eq!(back, messages);
    // Quoting first (what a session queues) frames the same.
    let quoted: Vec<String> = messages.iter().map(|m| quote(m)).collect();
    assert_eq!(frame::quoted_messages(&quoted), a, "quoted_messages vs messages");

    let code = data.first().copied().unwrap_or(0) as u16 * 256 + data.get(1).copied().unwrap_or(0) as u16;
    let c = frame::close(code, s);
    let (code_back, reason): (u16, String) =
        serde_json::from_str(c.strip_prefix('c').expect("c frame")).unwrap_or_else(|e| panic!("{c:?}: {e}"));
    assert_eq!((code_back, reason.as_str()), (code, s));

    let framings = [
        Framing::XhrPolling,
        Framing::XhrStreaming,
        Framing::EventSource,
        Framing::HtmlFile,
        Framing::Jsonp {
            callback: "_jp.a1b2-c.d".into(),
        },
        Framing::WebSocket,
        Framing::RawWebSocket,
    ];
    for framing in &framings {
        for f in [frame::OPEN, frame::HEARTBEAT, a.as_str(), c.as_str(), s] {
            let wrapped = framing.encode(f);
            assert_eq!(
                unwrap(framing, &wrapped),
                f,
                "{framing:?} wrapping of {f:?}: {wrapped:?}"
            );
        }
    }
});
