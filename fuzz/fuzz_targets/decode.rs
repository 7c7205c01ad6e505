//! `decode`: client payload decoding on arbitrary strings —
//! `decode::message_array` (xhr_send / jsonp_send bodies),
//! `decode::websocket_frame` (SockJS WebSocket text frames),
//! `decode::percent_decode`, `decode::form_value` and `decode::form_has`.
//!
//! Input: lossy UTF-8. The whole string is the payload and the form; the
//! text before the first `=` (percent-decoded) is also used as a form key.
//!
//! Invariants:
//! - `message_array` Ok results round-trip: re-encoding the messages with
//!   serde_json as an array of strings and decoding again gives the same list;
//! - `message_array` and `websocket_frame` agree: an array is the same list
//!   for both, broken JSON is broken for both, a non-array JSON value is
//!   `Expected` for the first and a one-message batch for the second, and the
//!   empty payload is `Expected` / `Ok(None)`;
//! - with a budget, both give what they give without one, or `TooLarge`;
//!   what they give fits the budget at `MESSAGE_COST` a message, and a batch
//!   that fits is never refused for its size;
//! - `percent_decode` is the identity on text without `%` and `+`, and undoes
//!   percent-encoding of any string (every byte as `%XX`, space as `+`);
//! - `form_has(f, k)` exactly when `form_value(f, k)` is `Some`, and a key
//!   encoded into a form is found with its value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sockjs_core::decode::{
    form_has, form_value, message_array, percent_decode, websocket_frame, PayloadError, MESSAGE_COST,
};

const NO_LIMIT: usize = usize::MAX;

/// What decoded messages cost against a budget.
fn cost(messages: &[String]) -> usize {
    messages.iter().map(|m| m.len() + MESSAGE_COST).sum()
}

/// Decoding within `budget` gives the unlimited result, or `TooLarge`; a
/// result that fits the budget is never refused as too large.
fn check_budget<T: PartialEq + std::fmt::Debug>(
    limited: Result<T, PayloadError>,
    unlimited: &Result<T, PayloadError>,
    fits: bool,
    what: &str,
) {
    match limited {
        Err(PayloadError::TooLarge) => assert!(!fits, "{what}: refused as too large though it fits"),
        other => assert_eq!(&other, unlimited, "{what}: the budget changed the result"),
    }
}

fn encode_component(s: &str, mixed: bool) -> String {
    let mut out = String::new();
    for (i, b) in s.bytes().enumerate() {
        match b {
            b' ' if mixed => out.push('+'),
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' if mixed => out.push(b as char),
            _ if i % 2 == 0 => out.push_str(&format!("%{b:02X}")),
            _ => out.push_str(&format!("%{b:02x}")),
        }
    }
    out
}

fn check_round_trip(messages: &[String], what: &str, input: &str) {
    let json = serde_json::to_string(messages).expect("strings serialize");
    let again = message_array(&json, NO_LIMIT).unwrap_or_else(|e| panic!("{what} {input:?}: re-encoded {json:?} refused: {e:?}"));
    assert_eq!(again, messages, "{what} {input:?} does not round-trip through {json:?}");
    assert_eq!(websocket_frame(&json, NO_LIMIT), Ok(Some(messages.to_vec())), "{json:?}");
}

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    let s: &str = &s;

    let array = message_array(s, NO_LIMIT);
    let ws = websocket_frame(s, NO_LIMIT);
    // A budget from the input's own length: some fit, some do not.
    let budget = s.len() * (1 + data.first().map_or(0, |b| usize::from(b % 4)));
    // (Only batches of strings are counted by their messages alone; other
    // JSON must fit as a tree.)
    let strings_only = serde_json::from_str::<Vec<String>>(s).is_ok();
    let bare_string = serde_json::from_str::<String>(s).is_ok();
    let array_fits = strings_only && array.as_ref().is_ok_and(|m| cost(m) <= budget);
    check_budget(message_array(s, budget), &array, array_fits, "message_array");
    let ws_fits = (strings_only || bare_string) && matches!(&ws, Ok(Some(m)) if cost(m) <= budget);
    check_budget(websocket_frame(s, budget), &ws, ws_fits, "websocket_frame");
    match &array {
        Ok(messages) => {
            check_round_trip(messages, "message_array", s);
            assert_eq!(ws, Ok(Some(messages.clone())), "websocket_frame disagrees on {s:?}");
        }
        Err(PayloadError::BrokenJson) => {
            assert_eq!(ws, Err(PayloadError::BrokenJson), "websocket_frame disagrees on {s:?}")
        }
        Err(PayloadError::Expected) if s.is_empty() => assert_eq!(ws, Ok(None)),
        Err(PayloadError::TooLarge) => unreachable!("no limit"),
        Err(PayloadError::Expected) => {
            // Valid JSON that is not an array: one message on a WebSocket.
            let value: serde_json::Value = serde_json::from_str(s).expect("Expected means valid JSON");
            assert!(!value.is_array(), "{s:?}");
            let one = ws
                .clone()
                .unwrap_or_else(|e| panic!("websocket_frame refused valid JSON {s:?}: {e:?}"));
            let one = one.expect("non-empty");
            assert_eq!(one.len(), 1, "{s:?}");
            match value {
                serde_json::Value::String(v) => assert_eq!(one[0], v),
                other => assert_eq!(one[0], other.to_string()),
            }
            check_round_trip(&one, "websocket_frame", s);
        }
    }
    if let Ok(Some(messages)) = &ws {
        check_round_trip(messages, "websocket_frame", s);
    }

    // Percent decoding.
    let decoded = percent_decode(s);
    if !s.contains(['%', '+']) {
        assert_eq!(decoded, s);
    }
    for mixed in [false, true] {
        let enc = encode_component(s, mixed);
        assert_eq!(percent_decode(&enc), s, "percent_decode({enc:?})");
    }

    // Forms: the input as a whole form, with a key taken from it.
    let key = percent_decode(s.split(['=', '&']).next().unwrap_or(""));
    for k in [key.as_str(), "d", "c", "callback", ""] {
        assert_eq!(form_has(s, k), form_value(s, k).is_some(), "form {s:?} key {k:?}");
    }
    // A pair built from the input is found, before or after other pairs.
    let value = s;
    let form = format!("{}={}", encode_component("k y", true), encode_component(value, true));
    assert_eq!(form_value(&form, "k y").as_deref(), Some(value));
    let form = format!(
        "a=1&{}={}&{}",
        encode_component(&key, false),
        encode_component(value, false),
        s
    );
    if key != "a" {
        assert_eq!(form_value(&form, &key).as_deref(), Some(value), "{form:?}");
    }
});
