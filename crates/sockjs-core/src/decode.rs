//! Decoding what clients send: message batches (a JSON array, or on the
//! WebSocket transport also a bare JSON value), form and query strings.
//!
//! A message handed to the application is a string. Clients always send
//! strings; a non-string JSON element (which sockjs-node passed through as a
//! parsed value) is handed over as its JSON text.

use std::cell::Cell;
use std::fmt;

use serde::de::{DeserializeSeed, Error as _, IgnoredAny, SeqAccess, Visitor};
use serde_json::Value;

/// What one decoded message costs beyond its text as the engine holds it
/// (its string, its queued event). A batch's messages are counted at this
/// rate against a budget (`max_message_size`): else a frame of empty
/// strings (`["","",…]`, 3 bytes each) would take ~20 times its size.
pub const MESSAGE_COST: usize = 64;

/// How much larger than its text a JSON value may grow as a tree (a
/// `Value` is 32 bytes; `0,` is 2). Batches holding other JSON than strings
/// (which clients never send) are decoded that way, so they must fit the
/// budget at this rate.
const TREE_EXPANSION: usize = 32;

/// Why a client payload was refused. The texts are the protocol's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadError {
    /// Empty, missing, or valid JSON that is not an array.
    Expected,
    /// Not JSON at all.
    BrokenJson,
    /// Its messages would take more than the budget (see `MESSAGE_COST`).
    TooLarge,
}

impl PayloadError {
    pub fn message(self) -> &'static str {
        match self {
            PayloadError::Expected => "Payload expected.",
            PayloadError::BrokenJson => "Broken JSON encoding.",
            PayloadError::TooLarge => "Payload too large.",
        }
    }
}

/// Decode the body of `xhr_send` (or a text `jsonp_send`): a JSON array of
/// messages, within `budget`.
pub fn message_array(body: &str, budget: usize) -> Result<Vec<String>, PayloadError> {
    if body.is_empty() {
        return Err(PayloadError::Expected);
    }
    if let Some(messages) = array_of_strings(body, budget)? {
        return Ok(messages);
    }
    match json_tree(body, budget)? {
        Value::Array(items) => Ok(items.into_iter().map(value_to_message).collect()),
        _ => Err(PayloadError::Expected),
    }
}

/// Decode one WebSocket text frame of the SockJS WebSocket transport: a JSON
/// array of messages or one bare JSON value, within `budget`. `Ok(None)`
/// for an empty frame, which the protocol ignores; `Err` for broken JSON,
/// which closes the connection.
pub fn websocket_frame(payload: &str, budget: usize) -> Result<Option<Vec<String>>, PayloadError> {
    if payload.is_empty() {
        return Ok(None);
    }
    if let Some(messages) = array_of_strings(payload, budget)? {
        return Ok(Some(messages));
    }
    if let Ok(message) = serde_json::from_str::<String>(payload) {
        return within(message.len().saturating_add(MESSAGE_COST), budget).map(|()| Some(vec![message]));
    }
    match json_tree(payload, budget)? {
        Value::Array(items) => Ok(Some(items.into_iter().map(value_to_message).collect())),
        value => Ok(Some(vec![value_to_message(value)])),
    }
}

/// The shape every client sends, decoded in one pass and counted as it
/// goes: `Ok(None)` when `text` is something else (other JSON, or none).
fn array_of_strings(text: &str, budget: usize) -> Result<Option<Vec<String>>, PayloadError> {
    let over = Cell::new(false);
    let mut de = serde_json::Deserializer::from_str(text);
    let decoded = Strings { budget, over: &over }
        .deserialize(&mut de)
        .and_then(|m| de.end().map(|()| m));
    match decoded {
        Ok(messages) => Ok(Some(messages)),
        Err(_) if over.get() => Err(PayloadError::TooLarge),
        Err(_) => Ok(None),
    }
}

/// Any JSON, as a tree, if the tree fits `budget`; else only checked to be
/// JSON, without building anything.
fn json_tree(text: &str, budget: usize) -> Result<Value, PayloadError> {
    if within(text.len().saturating_mul(TREE_EXPANSION), budget).is_err() {
        return Err(match serde_json::from_str::<IgnoredAny>(text) {
            Ok(_) => PayloadError::TooLarge,
            Err(_) => PayloadError::BrokenJson,
        });
    }
    serde_json::from_str::<Value>(text).map_err(|_| PayloadError::BrokenJson)
}

fn within(cost: usize, budget: usize) -> Result<(), PayloadError> {
    if cost > budget {
        Err(PayloadError::TooLarge)
    } else {
        Ok(())
    }
}

/// A JSON array of strings, each counted against `budget` as it is
/// decoded; `over` says that the budget, not the JSON, ended it.
struct Strings<'a> {
    budget: usize,
    over: &'a Cell<bool>,
}

impl<'de> DeserializeSeed<'de> for Strings<'_> {
    type Value = Vec<String>;

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<Vec<String>, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Strings<'_> {
    type Value = Vec<String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of strings")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<String>, A::Error> {
        let mut messages = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(16));
        let mut spent = 0usize;
        while let Some(message) = seq.next_element::<String>()? {
            spent = spent.saturating_add(message.len()).saturating_add(MESSAGE_COST);
            if spent > self.budget {
                self.over.set(true);
                return Err(A::Error::custom("over the budget"));
            }
            messages.push(message);
        }
        Ok(messages)
    }
}

fn value_to_message(value: Value) -> String {
    match value {
        Value::String(s) => s,
        other => other.to_string(),
    }
}

/// Percent-decode a form or query component (`+` is a space). Malformed
/// escapes are kept as they are, as Node's `querystring` does.
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex_value(bytes[i + 1]), hex_value(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The first value of `key` in a query or form string (`a=1&b=2`), decoded.
pub fn form_value(form: &str, key: &str) -> Option<String> {
    form.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(k) == key).then(|| percent_decode(v))
    })
}

/// Whether `key` occurs in a query string at all (even with no value).
pub fn form_has(form: &str, key: &str) -> bool {
    form.split('&')
        .any(|pair| percent_decode(pair.split_once('=').map_or(pair, |(k, _)| k)) == key)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NO_LIMIT: usize = usize::MAX;

    #[test]
    fn arrays_of_strings() {
        assert_eq!(message_array(r#"["a","b"]"#, NO_LIMIT).unwrap(), vec!["a", "b"]);
        assert_eq!(message_array("[]", NO_LIMIT).unwrap(), Vec::<String>::new());
    }

    #[test]
    fn refused_payloads() {
        assert_eq!(message_array("", NO_LIMIT), Err(PayloadError::Expected));
        assert_eq!(message_array("[\"x\"", NO_LIMIT), Err(PayloadError::BrokenJson));
        assert_eq!(message_array("{}", NO_LIMIT), Err(PayloadError::Expected));
        assert_eq!(message_array("\"x\"", NO_LIMIT), Err(PayloadError::Expected));
        assert_eq!(message_array("null", NO_LIMIT), Err(PayloadError::Expected));
    }

    #[test]
    fn non_string_elements_become_json_text() {
        assert_eq!(
            message_array(r#"[1,"a",{"b":null}]"#, NO_LIMIT).unwrap(),
            vec!["1", "a", r#"{"b":null}"#]
        );
    }

    #[test]
    fn websocket_frames() {
        assert_eq!(websocket_frame("", NO_LIMIT).unwrap(), None);
        assert_eq!(
            websocket_frame(r#"["a","b"]"#, NO_LIMIT).unwrap(),
            Some(vec!["a".into(), "b".into()])
        );
        assert_eq!(websocket_frame(r#""x""#, NO_LIMIT).unwrap(), Some(vec!["x".into()]));
        assert_eq!(websocket_frame("[\"x", NO_LIMIT).unwrap_err(), PayloadError::BrokenJson);
    }

    #[test]
    fn messages_count_against_the_budget_at_their_cost() {
        let three = r#"["","",""]"#;
        assert_eq!(message_array(three, 3 * MESSAGE_COST).unwrap().len(), 3);
        assert_eq!(message_array(three, 3 * MESSAGE_COST - 1), Err(PayloadError::TooLarge));
        assert_eq!(
            websocket_frame(three, 3 * MESSAGE_COST - 1),
            Err(PayloadError::TooLarge)
        );
        // A frame of empty strings far over: refused before it is all decoded.
        let many = format!("[{}]", vec![r#""""#; 100_000].join(","));
        assert_eq!(websocket_frame(&many, many.len()), Err(PayloadError::TooLarge));
        // One large message costs its size.
        let large = format!(r#"["{}"]"#, "x".repeat(100_000));
        assert!(message_array(&large, 100_000 + MESSAGE_COST).is_ok());
        let bare = format!(r#""{}""#, "x".repeat(100_000));
        assert!(websocket_frame(&bare, 100_000 + MESSAGE_COST).is_ok());
        assert_eq!(websocket_frame(&bare, 100_000), Err(PayloadError::TooLarge));
    }

    #[test]
    fn other_json_must_fit_the_budget_as_a_tree() {
        let numbers = format!("[{}]", vec!["0"; 1000].join(","));
        assert_eq!(
            message_array(&numbers, numbers.len() * TREE_EXPANSION).unwrap().len(),
            1000
        );
        assert_eq!(message_array(&numbers, numbers.len() * 8), Err(PayloadError::TooLarge));
        assert_eq!(
            websocket_frame(&format!("[{numbers}]"), numbers.len()),
            Err(PayloadError::TooLarge)
        );
        // Too large to build, still told apart from broken JSON.
        assert_eq!(websocket_frame(&numbers[1..], 10), Err(PayloadError::BrokenJson));
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("%63allback"), "callback");
        assert_eq!(percent_decode("a+b%20c"), "a b c");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        assert_eq!(percent_decode("%E4%B8%AD"), "中");
    }

    #[test]
    fn form_values() {
        assert_eq!(form_value("d=%5B%22x%22%5D&e=1", "d").as_deref(), Some("[\"x\"]"));
        assert_eq!(form_value("c=cb&callback=other", "callback").as_deref(), Some("other"));
        assert_eq!(form_value("x=1", "d"), None);
        assert!(form_has("c", "c"));
        assert!(!form_has("cc=1", "c"));
    }
}
