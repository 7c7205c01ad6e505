//! A small HTTP/1.1 client for the XHR transports: POST on a kept-alive
//! connection, bodies by Content-Length, chunked or until close, and a body
//! read piece by piece for streaming responses. Only 127.0.0.1.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::time::timeout;

use crate::HOST;

/// Longest status or header line accepted, and most header lines.
const MAX_LINE: usize = 8 * 1024;
const MAX_HEADERS: usize = 64;
/// Largest chunk, and largest whole body, accepted.
const MAX_CHUNK: usize = 4 * 1024 * 1024;
const MAX_BODY: usize = 16 * 1024 * 1024;

pub struct HttpConn {
    io: BufReader<TcpStream>,
    port: u16,
    /// The server said `Connection: close` (or the connection broke).
    closed: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Framing {
    Length(usize),
    Chunked,
    UntilClose,
    Empty,
}

/// A response whose body is still being read.
pub struct Body {
    pub status: u16,
    framing: Framing,
    /// Bytes left in the current chunk (chunked) or in the body (length).
    left: usize,
    done: bool,
}

impl HttpConn {
    pub async fn connect(port: u16, limit: Duration) -> Result<HttpConn, String> {
        let tcp = timeout(limit, crate::link::tcp_connect(port))
            .await
            .map_err(|_| "http connect timed out".to_string())?
            .map_err(|e| format!("http connect: {e}"))?;
        crate::link::client_socket(&tcp)?;
        Ok(HttpConn {
            io: BufReader::with_capacity(16 * 1024, tcp),
            port,
            closed: false,
        })
    }

    /// Whether the connection can carry another request.
    pub fn reusable(&self) -> bool {
        !self.closed
    }

    /// Sends a POST and reads the response head; the body is read with
    /// `next_piece` or `read_all`.
    pub async fn post(&mut self, path: &str, body: &str, limit: Duration) -> Result<Body, String> {
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: {HOST}:{}\r\nContent-Type: text/plain;charset=UTF-8\r\n\
             Content-Length: {}\r\n\r\n{body}",
            self.port,
            body.len()
        );
        let result = timeout(limit, async {
            self.io
                .get_mut()
                .write_all(request.as_bytes())
                .await
                .map_err(|e| format!("http write: {e}"))?;
            self.read_head().await
        })
        .await
        .map_err(|_| format!("http response to {path} timed out"))
        .and_then(|r| r);
        if result.is_err() {
            self.closed = true;
        }
        result
    }

    /// POST and whole body, as text.
    pub async fn post_all(&mut self, path: &str, body: &str, limit: Duration) -> Result<(u16, String), String> {
        let mut response = self.post(path, body, limit).await?;
        let text = self.read_all(&mut response, limit).await?;
        Ok((response.status, text))
    }

    async fn read_line(&mut self, line: &mut String) -> Result<(), String> {
        line.clear();
        let n = (&mut self.io)
            .take(MAX_LINE as u64)
            .read_line(line)
            .await
            .map_err(|e| format!("http read: {e}"))?;
        if n == 0 {
            self.closed = true;
            return Err("http connection closed".into());
        }
        if !line.ends_with('\n') {
            return Err("http line too long".into());
        }
        Ok(())
    }

    async fn read_head(&mut self) -> Result<Body, String> {
        let mut line = String::new();
        self.read_line(&mut line).await?;
        let mut words = line.split_whitespace();
        let version = words.next().unwrap_or("");
        if !version.starts_with("HTTP/1.") {
            return Err(format!("not an HTTP/1 response: {}", line.trim_end()));
        }
        let status: u16 = words
            .next()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("bad status line: {}", line.trim_end()))?;
        let mut length = None;
        let mut chunked = false;
        let mut close = version == "HTTP/1.0";
        let mut ended = false;
        for _ in 0..MAX_HEADERS {
            self.read_line(&mut line).await?;
            let header = line.trim_end();
            if header.is_empty() {
                ended = true;
                break;
            }
            let Some((name, value)) = header.split_once(':') else {
                return Err(format!("bad header: {header}"));
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = Some(value.parse::<usize>().map_err(|_| format!("bad length: {value}"))?);
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.eq_ignore_ascii_case("chunked");
            } else if name.eq_ignore_ascii_case("connection") {
                close = value.eq_ignore_ascii_case("close");
            }
        }
        if !ended {
            return Err("too many headers".into());
        }
        if close {
            self.closed = true;
        }
        let framing = if status == 204 || status == 304 || (100..200).contains(&status) {
            Framing::Empty
        } else if chunked {
            Framing::Chunked
        } else if let Some(n) = length {
            Framing::Length(n)
        } else {
            self.closed = true;
            Framing::UntilClose
        };
        let left = match framing {
            Framing::Length(n) => n,
            _ => 0,
        };
        Ok(Body {
            status,
            framing,
            left,
            done: framing == Framing::Empty || framing == Framing::Length(0),
        })
    }

    /// The next piece of a body as it arrives (a chunk, or what one read
    /// gives), or None at its end. Waits at most `limit`.
    pub async fn next_piece(&mut self, body: &mut Body, limit: Duration) -> Result<Option<Vec<u8>>, String> {
        if body.done {
            return Ok(None);
        }
        let result = timeout(limit, self.read_piece(body))
            .await
            .map_err(|_| "timed out reading a response body".to_string())
            .and_then(|r| r);
        if result.is_err() {
            self.closed = true;
        }
        result
    }

    async fn read_piece(&mut self, body: &mut Body) -> Result<Option<Vec<u8>>, String> {
        match body.framing {
            Framing::Empty => {
                body.done = true;
                Ok(None)
            }
            Framing::Length(_) => {
                let mut buf = vec![0u8; body.left.min(64 * 1024)];
                let n = self.io.read(&mut buf).await.map_err(|e| format!("http read: {e}"))?;
                if n == 0 {
                    self.closed = true;
                    return Err("http connection closed inside a body".into());
                }
                buf.truncate(n);
                body.left -= n;
                body.done = body.left == 0;
                Ok(Some(buf))
            }
            Framing::UntilClose => {
                let mut buf = vec![0u8; 64 * 1024];
                let n = self.io.read(&mut buf).await.map_err(|e| format!("http read: {e}"))?;
                if n == 0 {
                    body.done = true;
                    return Ok(None);
                }
                buf.truncate(n);
                Ok(Some(buf))
            }
            Framing::Chunked => {
                let mut line = String::new();
                self.read_line(&mut line).await?;
                let size_text = line.trim_end().split(';').next().unwrap_or("").trim();
                let size = usize::from_str_radix(size_text, 16).map_err(|_| format!("bad chunk size: {size_text}"))?;
                if size > MAX_CHUNK {
                    return Err(format!("chunk too large: {size}"));
                }
                if size == 0 {
                    // Trailers, then the blank line.
                    for _ in 0..MAX_HEADERS {
                        self.read_line(&mut line).await?;
                        if line.trim_end().is_empty() {
                            body.done = true;
                            return Ok(None);
                        }
                    }
                    return Err("too many trailers".into());
                }
                let mut buf = vec![0u8; size];
                self.io
                    .read_exact(&mut buf)
                    .await
                    .map_err(|e| format!("http read chunk: {e}"))?;
                self.read_line(&mut line).await?;
                if line != "\r\n" {
                    return Err("chunk not followed by CRLF".into());
                }
                body.left = 0;
                Ok(Some(buf))
            }
        }
    }

    /// The rest of a body, as text.
    pub async fn read_all(&mut self, body: &mut Body, limit: Duration) -> Result<String, String> {
        let mut all = Vec::new();
        while let Some(piece) = self.next_piece(body, limit).await? {
            all.extend_from_slice(&piece);
            if all.len() > MAX_BODY {
                return Err("response body too large".into());
            }
        }
        String::from_utf8(all).map_err(|_| "response body is not UTF-8".to_string())
    }
}

/// Splits a byte stream into `\n`-terminated lines (SockJS XHR frames).
#[derive(Default)]
pub struct Lines {
    buf: Vec<u8>,
    start: usize,
}

impl Lines {
    pub fn push(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole line without its `\n`.
    pub fn next_line(&mut self) -> Option<Result<String, String>> {
        let rest = &self.buf[self.start..];
        let end = rest.iter().position(|&b| b == b'\n')?;
        let line = String::from_utf8(rest[..end].to_vec()).map_err(|_| "frame is not UTF-8".to_string());
        self.start += end + 1;
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
        Some(line)
    }

    pub fn is_empty(&self) -> bool {
        self.start == self.buf.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_across_pieces() {
        let mut lines = Lines::default();
        lines.push(b"hhh\no\na[\"x");
        assert_eq!(lines.next_line(), Some(Ok("hhh".into())));
        assert_eq!(lines.next_line(), Some(Ok("o".into())));
        assert_eq!(lines.next_line(), None);
        assert!(!lines.is_empty());
        lines.push(b"\"]\n");
        assert_eq!(lines.next_line(), Some(Ok("a[\"x\"]".into())));
        assert!(lines.is_empty());
    }
}
