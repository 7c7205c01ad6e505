//! Decoding what clients send: message batches (a JSON array, or on the
//! WebSocket transport also a bare JSON value), form and query strings.
//!
//! A message handed to the application is a string. Clients always send
//! strings; a non-string JSON element (which sockjs-node passed through as a
//! parsed value) is handed over as its JSON text.

use serde_json::Value;

/// Why a client payload was refused. The texts are the protocol's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadError {
    /// Empty, missing, or valid JSON that is not an array.
    Expected,
    /// Not JSON at all.
    BrokenJson,
}

impl PayloadError {
    pub fn message(self) -> &'static str {
        match self {
            PayloadError::Expected => "Payload expected.",
            PayloadError::BrokenJson => "Broken JSON encoding.",
        }
    }
}

/// Decode the body of `xhr_send` (or a text `jsonp_send`): a JSON array of
/// messages.
pub fn message_array(body: &str) -> Result<Vec<String>, PayloadError> {
    if body.is_empty() {
        return Err(PayloadError::Expected);
    }
    // Fast path: the shape every client sends.
    if let Ok(messages) = serde_json::from_str::<Vec<String>>(body) {
        return Ok(messages);
    }
    match serde_json::from_str::<Value>(body) {
        Err(_) => Err(PayloadError::BrokenJson),
        Ok(Value::Array(items)) => Ok(items.into_iter().map(value_to_message).collect()),
        Ok(_) => Err(PayloadError::Expected),
    }
}

/// Decode one WebSocket text frame of the SockJS WebSocket transport: a JSON
/// array of messages or one bare JSON value. `Ok(None)` for an empty frame,
/// which the protocol ignores; `Err` for broken JSON, which closes the
/// connection.
pub fn websocket_frame(payload: &str) -> Result<Option<Vec<String>>, PayloadError> {
    if payload.is_empty() {
        return Ok(None);
    }
    if let Ok(messages) = serde_json::from_str::<Vec<String>>(payload) {
        return Ok(Some(messages));
    }
    match serde_json::from_str::<Value>(payload) {
        Err(_) => Err(PayloadError::BrokenJson),
        Ok(Value::Array(items)) => Ok(Some(items.into_iter().map(value_to_message).collect())),
        Ok(value) => Ok(Some(vec![value_to_message(value)])),
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

    #[test]
    fn arrays_of_strings() {
        assert_eq!(message_array(r#"["a","b"]"#).unwrap(), vec!["a", "b"]);
        assert_eq!(message_array("[]").unwrap(), Vec::<String>::new());
    }

    #[test]
    fn refused_payloads() {
        assert_eq!(message_array(""), Err(PayloadError::Expected));
        assert_eq!(message_array("[\"x\""), Err(PayloadError::BrokenJson));
        assert_eq!(message_array("{}"), Err(PayloadError::Expected));
        assert_eq!(message_array("\"x\""), Err(PayloadError::Expected));
        assert_eq!(message_array("null"), Err(PayloadError::Expected));
    }

    #[test]
    fn non_string_elements_become_json_text() {
        assert_eq!(
            message_array(r#"[1,"a",{"b":null}]"#).unwrap(),
            vec!["1", "a", r#"{"b":null}"#]
        );
    }

    #[test]
    fn websocket_frames() {
        assert_eq!(websocket_frame("").unwrap(), None);
        assert_eq!(
            websocket_frame(r#"["a","b"]"#).unwrap(),
            Some(vec!["a".into(), "b".into()])
        );
        assert_eq!(websocket_frame(r#""x""#).unwrap(), Some(vec!["x".into()]));
        assert_eq!(websocket_frame("[\"x").unwrap_err(), PayloadError::BrokenJson);
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
