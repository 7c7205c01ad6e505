//! One client session over one transport: SockJS over WebSocket, raw
//! WebSocket, xhr-streaming, xhr-polling. Each can send a batch of payloads
//! and receive the next messages; every wait has a time limit and every loop
//! a count limit.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{client_async_with_config, WebSocketStream};

use crate::http::{Body, HttpConn, Lines};
use crate::sockjs::{clip, encode, parse_frame, Frame};
use crate::HOST;

pub type Ws = WebSocketStream<TcpStream>;

/// Frames (heartbeats, pings, empty batches) skipped while waiting for one
/// carrying messages, and responses read while waiting on XHR.
const MAX_SKIPPED: usize = 64;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Kind {
    SockjsWs,
    RawWs,
    XhrStreaming,
    XhrPolling,
}

impl Kind {
    pub fn parse(name: &str) -> Result<Kind, String> {
        match name {
            "sockjs-ws" => Ok(Kind::SockjsWs),
            "raw-ws" => Ok(Kind::RawWs),
            "xhr-streaming" => Ok(Kind::XhrStreaming),
            "xhr-polling" => Ok(Kind::XhrPolling),
            _ => Err(format!(
                "unknown transport {name:?} (sockjs-ws, raw-ws, xhr-streaming, xhr-polling)"
            )),
        }
    }
}

pub enum Link {
    Sockjs(Box<Ws>),
    Raw(Box<Ws>),
    Streaming(Box<Streaming>),
    Polling(Box<Polling>),
}

pub struct Streaming {
    port: u16,
    base: String,
    recv: HttpConn,
    body: Body,
    lines: Lines,
    send: HttpConn,
}

pub struct Polling {
    port: u16,
    base: String,
    poll: HttpConn,
    send: HttpConn,
}

/// Whether `tcp_connect` picks source ports itself (see there).
static OWN_PORTS: AtomicBool = AtomicBool::new(false);
static NEXT_PORT: AtomicU32 = AtomicU32::new(0);

/// From now on, connect from source ports this process picks in turn.
///
/// Linux looks for a free ephemeral port on every connect() and, when most
/// of one half of the range is taken (about 14,000 connections to one
/// address), each search costs up to a millisecond of kernel time. With
/// 20,000 idle sessions that made the generator, not the server, set the
/// pace; binding each socket to the next port of the range skips the search.
pub fn use_own_ports() {
    OWN_PORTS.store(true, Ordering::Relaxed);
}

fn port_range() -> (u32, u32) {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|text| {
            let mut it = text.split_whitespace().map(|n| n.parse::<u32>().ok());
            Some((it.next()??, it.next()??))
        })
        .filter(|(low, high)| low < high && *high <= 65535)
        .unwrap_or((32768, 60999))
}

/// A TCP connection to 127.0.0.1:`port`.
pub async fn tcp_connect(port: u16) -> std::io::Result<TcpStream> {
    if OWN_PORTS.load(Ordering::Relaxed) {
        let (low, high) = port_range();
        let span = high - low + 1;
        // A port that is taken (by anything) is skipped; a bounded number of
        // tries, then the kernel's choice.
        for _ in 0..256 {
            let offset = NEXT_PORT.fetch_add(1, Ordering::Relaxed) % span;
            let source = (low + offset) as u16;
            if source == port {
                continue;
            }
            let socket = TcpSocket::new_v4()?;
            let address = SocketAddr::from(([127, 0, 0, 1], source));
            if socket.bind(address).is_ok() {
                return socket.connect(SocketAddr::from(([127, 0, 0, 1], port))).await;
            }
        }
    }
    TcpStream::connect((HOST, port)).await
}

/// Options of every client socket: no Nagle delay, and SO_LINGER 0 so that
/// closing it (at the latest when the process exits) leaves no TIME_WAIT
/// behind: 20,000 of those would crowd the ephemeral ports for the next run.
pub fn client_socket(tcp: &TcpStream) -> Result<(), String> {
    tcp.set_nodelay(true).map_err(|e| format!("nodelay: {e}"))?;
    tcp.set_zero_linger().map_err(|e| format!("linger: {e}"))
}

/// Opens a TCP connection and does the WebSocket handshake for `path`.
pub async fn ws_connect(port: u16, path: &str, limit: Duration) -> Result<Ws, String> {
    let config = WebSocketConfig::default()
        .read_buffer_size(8 * 1024)
        .write_buffer_size(8 * 1024);
    let started = Instant::now();
    let tcp = timeout(limit, tcp_connect(port))
        .await
        .map_err(|_| format!("TCP connect took over {} ms", limit.as_millis()))?
        .map_err(|e| format!("connect: {e}"))?;
    client_socket(&tcp)?;
    let url = format!("ws://{HOST}:{port}{path}");
    let connected = started.elapsed();
    let handshake = timeout(
        limit.saturating_sub(connected),
        client_async_with_config(url, tcp, Some(config)),
    );
    let (ws, _) = handshake
        .await
        .map_err(|_| {
            format!(
                "no 101 response {} ms after the TCP connect (which took {} ms)",
                limit.saturating_sub(connected).as_millis(),
                connected.as_millis()
            )
        })?
        .map_err(|e| format!("handshake: {e}"))?;
    Ok(ws)
}

/// The next text message, skipping control frames.
pub async fn ws_next_text(ws: &mut Ws, limit: Duration) -> Result<String, String> {
    for _ in 0..MAX_SKIPPED {
        let next = timeout(limit, ws.next())
            .await
            .map_err(|_| format!("no frame within {} ms", limit.as_millis()))?;
        match next {
            None => return Err("connection closed".into()),
            Some(Err(e)) => return Err(format!("read: {e}")),
            Some(Ok(Message::Text(text))) => return Ok(text.as_str().to_owned()),
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
            Some(Ok(Message::Binary(_))) => return Err("unexpected binary message".into()),
            Some(Ok(Message::Close(frame))) => return Err(format!("closed by the server: {frame:?}")),
        }
    }
    Err("too many control frames".into())
}

/// The messages of the next SockJS frame that carries any.
pub async fn sockjs_next(ws: &mut Ws, out: &mut Vec<String>, limit: Duration) -> Result<(), String> {
    for _ in 0..MAX_SKIPPED {
        let text = ws_next_text(ws, limit).await?;
        match parse_frame(&text)? {
            Frame::Heartbeat => continue,
            Frame::Messages(messages) if messages.is_empty() => continue,
            Frame::Messages(messages) => {
                out.extend(messages);
                return Ok(());
            }
            Frame::Open => return Err("second open frame".into()),
            Frame::Close(reason) => return Err(format!("session closed: {reason}")),
        }
    }
    Err("too many frames without messages".into())
}

/// Closes a WebSocket with a close handshake and waits (bounded) for its end.
pub async fn ws_close(mut ws: Ws, limit: Duration) -> Result<(), String> {
    timeout(limit, async {
        ws.close(None).await.map_err(|e| format!("close: {e}"))?;
        for _ in 0..MAX_SKIPPED {
            match ws.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return Ok(()),
                Some(Ok(_)) => continue,
            }
        }
        Err("no end after close".to_string())
    })
    .await
    .map_err(|_| "close timed out".to_string())?
}

fn check_open(frame: Result<Frame, String>) -> Result<bool, String> {
    match frame? {
        Frame::Open => Ok(true),
        Frame::Heartbeat => Ok(false),
        other => Err(format!("expected the open frame, got {other:?}")),
    }
}

impl Link {
    /// Opens session `session` under `prefix` (a raw WebSocket has no session).
    pub async fn open(kind: Kind, port: u16, prefix: &str, session: &str, limit: Duration) -> Result<Link, String> {
        let base = format!("{prefix}/0/{session}");
        match kind {
            Kind::SockjsWs => {
                let mut ws = ws_connect(port, &format!("{base}/websocket"), limit).await?;
                let first = ws_next_text(&mut ws, limit).await?;
                if !check_open(parse_frame(&first))? {
                    return Err("expected the open frame first".into());
                }
                Ok(Link::Sockjs(Box::new(ws)))
            }
            Kind::RawWs => Ok(Link::Raw(Box::new(
                ws_connect(port, &format!("{prefix}/websocket"), limit).await?,
            ))),
            Kind::XhrStreaming => {
                let mut recv = HttpConn::connect(port, limit).await?;
                let body = recv.post(&format!("{base}/xhr_streaming"), "", limit).await?;
                if body.status != 200 {
                    return Err(format!("xhr_streaming answered {}", body.status));
                }
                let send = HttpConn::connect(port, limit).await?;
                let mut link = Streaming {
                    port,
                    base,
                    recv,
                    body,
                    lines: Lines::default(),
                    send,
                };
                link.wait_open(limit).await?;
                Ok(Link::Streaming(Box::new(link)))
            }
            Kind::XhrPolling => {
                let mut poll = HttpConn::connect(port, limit).await?;
                let (status, text) = poll.post_all(&format!("{base}/xhr"), "", limit).await?;
                if status != 200 || text != "o\n" {
                    return Err(format!("xhr open answered {status} {:?}", clip(&text)));
                }
                let send = HttpConn::connect(port, limit).await?;
                Ok(Link::Polling(Box::new(Polling { port, base, poll, send })))
            }
        }
    }

    /// Sends each payload as one message.
    pub async fn send(&mut self, payloads: &[String], limit: Duration) -> Result<(), String> {
        match self {
            Link::Sockjs(ws) => ws_send(ws, payloads.iter().map(|p| encode(p)), limit).await,
            Link::Raw(ws) => ws_send(ws, payloads.iter().cloned(), limit).await,
            Link::Streaming(s) => {
                for p in payloads {
                    xhr_send(&mut s.send, s.port, &s.base, p, limit).await?;
                }
                Ok(())
            }
            Link::Polling(s) => {
                for p in payloads {
                    xhr_send(&mut s.send, s.port, &s.base, p, limit).await?;
                }
                Ok(())
            }
        }
    }

    /// Appends the next message or messages to `out` (at least one).
    pub async fn recv(&mut self, out: &mut Vec<String>, limit: Duration) -> Result<(), String> {
        match self {
            Link::Sockjs(ws) => sockjs_next(ws, out, limit).await,
            Link::Raw(ws) => {
                out.push(ws_next_text(ws, limit).await?);
                Ok(())
            }
            Link::Streaming(s) => s.recv(out, limit).await,
            Link::Polling(s) => s.recv(out, limit).await,
        }
    }

    /// Ends the session from the client's side (bounded); XHR sessions are
    /// simply dropped and expire on the server.
    pub async fn close(self, limit: Duration) -> Result<(), String> {
        match self {
            Link::Sockjs(ws) | Link::Raw(ws) => ws_close(*ws, limit).await,
            Link::Streaming(_) | Link::Polling(_) => Ok(()),
        }
    }
}

async fn ws_send(ws: &mut Ws, texts: impl Iterator<Item = String>, limit: Duration) -> Result<(), String> {
    timeout(limit, async {
        for text in texts {
            ws.feed(Message::text(text)).await.map_err(|e| format!("send: {e}"))?;
        }
        ws.flush().await.map_err(|e| format!("send: {e}"))
    })
    .await
    .map_err(|_| "send timed out".to_string())?
}

async fn xhr_send(conn: &mut HttpConn, port: u16, base: &str, payload: &str, limit: Duration) -> Result<(), String> {
    if !conn.reusable() {
        *conn = HttpConn::connect(port, limit).await?;
    }
    let (status, text) = conn
        .post_all(&format!("{base}/xhr_send"), &encode(payload), limit)
        .await?;
    if status != 204 {
        return Err(format!("xhr_send answered {status} {:?}", clip(&text)));
    }
    Ok(())
}

impl Streaming {
    async fn wait_open(&mut self, limit: Duration) -> Result<(), String> {
        for _ in 0..MAX_SKIPPED {
            while let Some(line) = self.lines.next_line() {
                if check_open(parse_frame(&line?))? {
                    return Ok(());
                }
            }
            match self.recv.next_piece(&mut self.body, limit).await? {
                Some(piece) => self.lines.push(&piece),
                None => return Err("xhr_streaming ended before the open frame".into()),
            }
        }
        Err("no open frame".into())
    }

    async fn recv(&mut self, out: &mut Vec<String>, limit: Duration) -> Result<(), String> {
        let before = out.len();
        for _ in 0..MAX_SKIPPED {
            while let Some(line) = self.lines.next_line() {
                take_frame(&line?, out)?;
            }
            if out.len() > before {
                return Ok(());
            }
            match self.recv.next_piece(&mut self.body, limit).await? {
                Some(piece) => self.lines.push(&piece),
                None => {
                    // The response reached response_limit: the client opens
                    // the next one, which starts with the prelude again.
                    if !self.lines.is_empty() {
                        return Err("xhr_streaming response ended inside a frame".into());
                    }
                    if !self.recv.reusable() {
                        self.recv = HttpConn::connect(self.port, limit).await?;
                    }
                    self.body = self
                        .recv
                        .post(&format!("{}/xhr_streaming", self.base), "", limit)
                        .await?;
                    if self.body.status != 200 {
                        return Err(format!("xhr_streaming reopen answered {}", self.body.status));
                    }
                }
            }
        }
        Err("too many xhr_streaming pieces without messages".into())
    }
}

/// A frame after the open one, on an HTTP receiver: its messages go to
/// `out`; anything but messages and heartbeats is an error.
fn take_frame(line: &str, out: &mut Vec<String>) -> Result<(), String> {
    match parse_frame(line)? {
        Frame::Heartbeat => Ok(()),
        Frame::Messages(messages) => {
            out.extend(messages);
            Ok(())
        }
        Frame::Open => Err("second open frame".into()),
        Frame::Close(reason) => Err(format!("session closed: {reason}")),
    }
}

impl Polling {
    async fn recv(&mut self, out: &mut Vec<String>, limit: Duration) -> Result<(), String> {
        let before = out.len();
        for _ in 0..MAX_SKIPPED {
            if !self.poll.reusable() {
                self.poll = HttpConn::connect(self.port, limit).await?;
            }
            let (status, text) = self.poll.post_all(&format!("{}/xhr", self.base), "", limit).await?;
            if status != 200 {
                return Err(format!("xhr poll answered {status}"));
            }
            for line in text.split_terminator('\n') {
                take_frame(line, out)?;
            }
            if out.len() > before {
                return Ok(());
            }
        }
        Err("too many polls without messages".into())
    }
}
