//! The SockJS JSON quoting rule.
//!
//! A message travels inside a JSON string. Plain JSON escaping is not enough
//! for SockJS clients: some browsers mangle or drop characters in certain
//! Unicode ranges on some transports, so the protocol escapes them as
//! `\uXXXX` too. The escaped set is: control characters, UTF-16 surrogates
//! (every astral character, written as its surrogate pair), U+200C..U+200F,
//! U+2028..U+202F, U+2060..U+206F and U+FFF0..U+FFFF. Hex digits are lower
//! case, as JavaScript's `toString(16)` writes them.

use std::fmt::Write;

/// Append `s` to `out` as a quoted SockJS JSON string.
pub fn quote_into(out: &mut String, s: &str) {
    out.reserve(s.len() + 2);
    out.push('"');
    let bytes = s.as_bytes();
    let mut plain_from = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        // Bytes below 0xE2 other than these three never need escaping: the
        // escaped ranges all start at U+200C, whose UTF-8 lead byte is 0xE2.
        if b >= 0x20 && b != b'"' && b != b'\\' && b < 0xE2 {
            i += 1;
            continue;
        }
        let ch = s[i..].chars().next().expect("index is on a char boundary");
        let len = ch.len_utf8();
        if needs_escape(ch) {
            out.push_str(&s[plain_from..i]);
            escape_char(out, ch);
            plain_from = i + len;
        }
        i += len;
    }
    out.push_str(&s[plain_from..]);
    out.push('"');
}

/// `s` as a quoted SockJS JSON string.
pub fn quote(s: &str) -> String {
    let mut out = String::new();
    quote_into(&mut out, s);
    out
}

fn needs_escape(ch: char) -> bool {
    matches!(ch as u32,
        0x00..=0x1f
        | 0x22 | 0x5c
        | 0x200c..=0x200f
        | 0x2028..=0x202f
        | 0x2060..=0x206f
        | 0xfff0..=0xffff
        | 0x10000..)
}

fn escape_char(out: &mut String, ch: char) {
    match ch {
        '"' => out.push_str("\\\""),
        '\\' => out.push_str("\\\\"),
        '\u{8}' => out.push_str("\\b"),
        '\u{c}' => out.push_str("\\f"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        _ => {
            let mut units = [0u16; 2];
            for unit in ch.encode_utf16(&mut units) {
                write!(out, "\\u{:04x}", unit).expect("writing to a String cannot fail");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_ascii_is_copied() {
        assert_eq!(quote("hello world"), "\"hello world\"");
        assert_eq!(quote(""), "\"\"");
    }

    #[test]
    fn json_specials_use_short_forms() {
        assert_eq!(quote("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(quote("\n\r\t\u{8}\u{c}"), r#""\n\r\t\b\f""#);
        assert_eq!(quote("\u{0}\u{1f}"), r#""\u0000\u001f""#);
    }

    #[test]
    fn sockjs_ranges_are_escaped_lower_case() {
        assert_eq!(quote("\u{200c}\u{200f}"), r#""\u200c\u200f""#);
        assert_eq!(quote("\u{2028}\u{202f}"), r#""\u2028\u202f""#);
        assert_eq!(quote("\u{2060}\u{206f}"), r#""\u2060\u206f""#);
        assert_eq!(quote("\u{fff0}\u{ffff}"), r#""\ufff0\uffff""#);
    }

    #[test]
    fn neighbours_of_the_ranges_are_not_escaped() {
        for s in [
            "\u{7f}", "\u{e9}", "\u{200b}", "\u{2010}", "\u{2030}", "\u{205f}", "\u{2070}", "\u{ffef}", "\u{4e2d}",
        ] {
            assert_eq!(quote(s), format!("\"{s}\""), "{:?}", s);
        }
    }

    #[test]
    fn astral_characters_become_surrogate_pairs() {
        assert_eq!(quote("\u{1f600}"), r#""\ud83d\ude00""#);
        assert_eq!(quote("a\u{10000}b"), r#""a\ud800\udc00b""#);
    }

    #[test]
    fn output_parses_back_to_the_input() {
        let s = "x\u{0}\u{2028}\u{1f600}\"\\\u{ffff}\u{e9}中";
        let back: String = serde_json::from_str(&quote(s)).unwrap();
        assert_eq!(back, s);
    }
}
