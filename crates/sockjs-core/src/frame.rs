//! SockJS frames: what a session says to its client, before any transport
//! wrapping. `o` opens, `h` is a heartbeat, `a[...]` carries messages and
//! `c[code,"reason"]` closes.

use crate::quote::quote_into;

pub const OPEN: &str = "o";
pub const HEARTBEAT: &str = "h";

/// `a[...]` carrying `messages`, each quoted with the SockJS rule.
pub fn messages<S: AsRef<str>>(messages: &[S]) -> String {
    let payload: usize = messages.iter().map(|m| m.as_ref().len() + 3).sum();
    let mut out = String::with_capacity(payload + 3);
    out.push_str("a[");
    for (i, m) in messages.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        quote_into(&mut out, m.as_ref());
    }
    out.push(']');
    out
}

/// `a[...]` carrying messages already quoted with the SockJS rule.
pub fn quoted_messages<S: AsRef<str>>(quoted: &[S]) -> String {
    let len: usize = quoted.iter().map(|m| m.as_ref().len() + 1).sum();
    let mut out = String::with_capacity(len + 3);
    out.push_str("a[");
    for (i, m) in quoted.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(m.as_ref());
    }
    out.push(']');
    out
}

/// `c[code,"reason"]`.
pub fn close(code: u16, reason: &str) -> String {
    let mut out = format!("c[{code},");
    quote_into(&mut out, reason);
    out.push(']');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_frames() {
        assert_eq!(messages(&["a"]), r#"a["a"]"#);
        assert_eq!(messages(&["a", "b\"c"]), r#"a["a","b\"c"]"#);
        assert_eq!(messages::<&str>(&[]), "a[]");
    }

    #[test]
    fn close_frames() {
        assert_eq!(close(3000, "Go away!"), r#"c[3000,"Go away!"]"#);
        assert_eq!(
            close(2010, "Another connection still open"),
            r#"c[2010,"Another connection still open"]"#
        );
    }
}
