//! The bits of the SockJS protocol a client needs: server frames and the
//! payloads this generator sends (unique, and checkable character by
//! character when they come back).

/// A frame from the server.
#[derive(Debug, PartialEq)]
pub enum Frame {
    Open,
    /// `h`, or the xhr-streaming prelude (a line of `h`s).
    Heartbeat,
    Messages(Vec<String>),
    Close(String),
}

pub fn parse_frame(text: &str) -> Result<Frame, String> {
    match text.as_bytes().first() {
        Some(b'o') if text.len() == 1 => Ok(Frame::Open),
        Some(b'h') if text.bytes().all(|b| b == b'h') => Ok(Frame::Heartbeat),
        Some(b'a') => serde_json::from_str::<Vec<String>>(&text[1..])
            .map(Frame::Messages)
            .map_err(|e| format!("bad a-frame ({e}): {}", clip(text))),
        Some(b'c') => Ok(Frame::Close(text[1..].to_string())),
        _ => Err(format!("unexpected frame: {}", clip(text))),
    }
}

/// The start of a text, for error messages.
pub fn clip(text: &str) -> String {
    text.chars().take(80).collect()
}

/// A client message frame carrying one message (`["..."]`). Payloads are made
/// of characters that need no JSON escaping (see `payload`).
pub fn encode(payload: &str) -> String {
    debug_assert!(payload
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-'));
    let mut out = String::with_capacity(payload.len() + 4);
    out.push_str("[\"");
    out.push_str(payload);
    out.push_str("\"]");
    out
}

/// A unique payload: `m<session>.<sequence>.` padded with `x` to `size`
/// bytes (longer when the ids need more room).
pub fn payload(session: usize, seq: u64, size: usize) -> String {
    let mut out = format!("m{session}.{seq}.");
    pad(&mut out, size);
    out
}

/// A broadcast payload: `b<round>.<phase>.<sent at, µs>.` padded to `size`.
pub fn broadcast_payload(round: u64, phase: char, sent_us: u64, size: usize) -> String {
    let mut out = format!("b{round}.{phase}.{sent_us}.");
    pad(&mut out, size);
    out
}

/// Reads back a broadcast payload: (round, phase, sent at), checking that the
/// whole text is exactly what `broadcast_payload` makes of those values.
pub fn parse_broadcast(text: &str, size: usize) -> Option<(u64, char, u64)> {
    let rest = text.strip_prefix('b')?;
    let mut parts = rest.splitn(4, '.');
    let round = parts.next()?.parse().ok()?;
    let phase = parts.next()?.chars().next()?;
    let sent_us = parts.next()?.parse().ok()?;
    if broadcast_payload(round, phase, sent_us, size) == text {
        Some((round, phase, sent_us))
    } else {
        None
    }
}

fn pad(out: &mut String, size: usize) {
    while out.len() < size {
        out.push('x');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames() {
        assert_eq!(parse_frame("o"), Ok(Frame::Open));
        assert_eq!(parse_frame("h"), Ok(Frame::Heartbeat));
        assert_eq!(parse_frame(&"h".repeat(2048)), Ok(Frame::Heartbeat));
        assert_eq!(
            parse_frame("a[\"x\",\"y\"]"),
            Ok(Frame::Messages(vec!["x".into(), "y".into()]))
        );
        assert_eq!(
            parse_frame("c[3000,\"Go away!\"]"),
            Ok(Frame::Close("[3000,\"Go away!\"]".into()))
        );
        assert!(parse_frame("a[1]").is_err());
        assert!(parse_frame("ox").is_err());
        assert!(parse_frame("").is_err());
    }

    #[test]
    fn payloads() {
        let p = payload(12, 345, 32);
        assert_eq!(p.len(), 32);
        assert!(p.starts_with("m12.345.x"));
        assert_eq!(encode(&p), format!("[\"{p}\"]"));
        assert_eq!(payload(1, 2, 2), "m1.2.");
        let b = broadcast_payload(7, 'm', 123456, 40);
        assert_eq!(b.len(), 40);
        assert_eq!(parse_broadcast(&b, 40), Some((7, 'm', 123456)));
        assert_eq!(parse_broadcast(&b[..39], 40), None);
        assert_eq!(parse_broadcast("b7.m.12x.xx", 11), None);
    }
}
