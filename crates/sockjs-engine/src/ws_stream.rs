//! A WebSocket over an async byte stream, for a connection that one task
//! serves.
//!
//! tungstenite's `WebSocket` is synchronous: it reads and writes through
//! `std::io`, and a stream with nothing to give or no room answers
//! `WouldBlock`. `WsStream` runs it over an async stream by handing the
//! stream, on every call, the waker of the task that polls the WebSocket.
//! tokio-tungstenite's `WebSocketStream` does the same for streams that
//! several tasks may poll (a reader and a writer, split), through two shared
//! waker proxies: two 64-byte allocations for every connection, and atomic
//! registrations on every poll. A connection here is only ever polled by
//! its own task, so one waker kept beside the stream is enough.
//!
//! The `Stream` and `Sink` behaviour is tokio-tungstenite's: a read error
//! ends the stream (a closed connection ends it quietly), a message that
//! could not be flushed at once is queued and flushed before the next one,
//! and a flush that finds the connection closed is not an error.
//!
//! One difference: what tungstenite writes on its own, the pong to each of
//! the peer's pings, does not pile up while the peer takes nothing. As it
//! reads, tungstenite puts the pong of the last ping into its write buffer
//! and tries to flush; a peer that sends pings and reads nothing would grow
//! that buffer by a pong per ping, without bound. So the buffer is capped
//! at `ANSWERS_ROOM` past its write threshold, except while our own
//! messages go in: past the cap, tungstenite keeps only the latest pong
//! aside until there is room.

use std::io::{self, Read, Write};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use futures_util::{Sink, SinkExt, Stream};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tungstenite::{Error as WsError, Message, WebSocket};

/// How far past its write threshold tungstenite's write buffer may grow
/// with the pongs it writes on its own (see above).
const ANSWERS_ROOM: usize = 4 * 1024;

pub struct WsStream<S> {
    ws: WebSocket<TaskIo<S>>,
    /// A read failed or found the connection closed: the stream is over.
    ended: bool,
    /// A message went into tungstenite's buffer but not onto the stream:
    /// flush before taking the next.
    blocked: bool,
    /// A close frame is queued; closing now only flushes.
    closing: bool,
}

impl<S: AsyncRead + AsyncWrite + Unpin> WsStream<S> {
    /// A server's WebSocket over `stream`, whose handshake is done.
    pub fn new(stream: S, config: WebSocketConfig) -> WsStream<S> {
        let io = TaskIo { stream, waker: None };
        let mut ws = WebSocket::from_raw_socket(io, Role::Server, Some(config));
        ws.set_config(cap_answers);
        WsStream {
            ws,
            ended: false,
            blocked: false,
            closing: false,
        }
    }

    /// Run `f`, which puts our own frames into tungstenite's buffer, with
    /// no cap on the buffer: what the session wrote is never refused.
    fn own_write<R>(&mut self, f: impl FnOnce(&mut WebSocket<TaskIo<S>>) -> R) -> R {
        self.ws.set_config(|c| c.max_write_buffer_size = usize::MAX);
        let result = f(&mut self.ws);
        self.ws.set_config(cap_answers);
        result
    }

    /// The largest message this WebSocket takes: its install's
    /// `max_message_size`, kept in tungstenite's settings (read here
    /// rather than from the engine's options, under their lock, for
    /// every frame).
    pub fn max_message(&self) -> usize {
        self.ws.get_config().max_message_size.unwrap_or(usize::MAX)
    }

    pub fn get_ref(&self) -> &S {
        &self.ws.get_ref().stream
    }

    pub fn get_mut(&mut self) -> &mut S {
        &mut self.ws.get_mut().stream
    }

    pub fn into_inner(self) -> S {
        self.ws.into_inner().stream
    }

    /// Put a message into tungstenite's buffer, and write what the stream
    /// takes now; the rest goes with a flush. For a writer that goes on
    /// reading while it waits to flush (`Sink::poll_ready` would first wait
    /// for the stream). Outside a poll, the stream is polled with the
    /// waker of the task's last poll: the one task that polls this stream.
    pub fn feed_now(&mut self, message: Message) -> Result<(), WsError> {
        match self.own_write(|ws| ws.write(message)) {
            Err(WsError::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                self.blocked = true;
                Ok(())
            }
            other => other,
        }
    }

    /// Flush as far as the stream takes now (see `feed_now`): true when
    /// everything went; else `poll_flush` finishes it.
    pub fn flush_now(&mut self) -> Result<bool, WsError> {
        match self.ws.flush() {
            Ok(()) | Err(WsError::ConnectionClosed) => {
                self.blocked = false;
                Ok(true)
            }
            Err(WsError::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                self.blocked = true;
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Send a close frame and flush it.
    pub async fn close(&mut self, frame: Option<CloseFrame>) -> Result<(), WsError> {
        self.send(Message::Close(frame)).await
    }

    /// Run `f` on the WebSocket with `cx`'s waker for the stream.
    fn with_waker<R>(&mut self, cx: &Context<'_>, f: impl FnOnce(&mut WebSocket<TaskIo<S>>) -> R) -> R {
        self.ws.get_mut().set_waker(cx.waker());
        f(&mut self.ws)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Stream for WsStream<S> {
    type Item = Result<Message, WsError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.ended {
            return Poll::Ready(None);
        }
        match std::task::ready!(pending_if_blocked(self.with_waker(cx, |ws| ws.read()))) {
            Ok(message) => Poll::Ready(Some(Ok(message))),
            Err(e) => {
                self.ended = true;
                match e {
                    WsError::AlreadyClosed | WsError::ConnectionClosed => Poll::Ready(None),
                    e => Poll::Ready(Some(Err(e))),
                }
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Sink<Message> for WsStream<S> {
    type Error = WsError;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        // Kept even when there is nothing to flush: `start_send` has no
        // context of its own, and tungstenite may write from it.
        self.ws.get_mut().set_waker(cx.waker());
        if !self.blocked {
            return Poll::Ready(Ok(()));
        }
        let flushed = std::task::ready!(pending_if_blocked(self.with_waker(cx, |ws| ws.flush())));
        self.blocked = false;
        Poll::Ready(flushed)
    }

    fn start_send(mut self: Pin<&mut Self>, message: Message) -> Result<(), WsError> {
        match self.own_write(|ws| ws.write(message)) {
            Ok(()) => {
                self.blocked = false;
                Ok(())
            }
            // Queued, not yet written: `poll_ready` flushes it first.
            Err(WsError::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                self.blocked = true;
                Ok(())
            }
            Err(e) => {
                self.blocked = false;
                Err(e)
            }
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        let flushed = std::task::ready!(pending_if_blocked(self.with_waker(cx, |ws| ws.flush())));
        self.blocked = false;
        match flushed {
            // The close handshake just completed: everything went out.
            Err(WsError::ConnectionClosed) => Poll::Ready(Ok(())),
            other => Poll::Ready(other),
        }
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        self.blocked = false;
        let closing = self.closing;
        self.ws.get_mut().set_waker(cx.waker());
        let result = self.own_write(|ws| if closing { ws.flush() } else { ws.close(None) });
        match result {
            Ok(()) | Err(WsError::ConnectionClosed) => Poll::Ready(Ok(())),
            Err(WsError::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                self.closing = true;
                Poll::Pending
            }
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}

/// The cap on tungstenite's write buffer but while our own frames go in.
fn cap_answers(config: &mut WebSocketConfig) {
    config.max_write_buffer_size = config.write_buffer_size.saturating_add(ANSWERS_ROOM);
}

/// tungstenite's `WouldBlock` is the stream's `Pending`: the waker it was
/// given will wake the task.
fn pending_if_blocked<T>(result: Result<T, WsError>) -> Poll<Result<T, WsError>> {
    match result {
        Err(WsError::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => Poll::Pending,
        other => Poll::Ready(other),
    }
}

/// The async stream as `std::io`, polled with the serving task's waker.
struct TaskIo<S> {
    stream: S,
    /// The waker of the last poll; None before the first.
    waker: Option<Waker>,
}

impl<S: Unpin> TaskIo<S> {
    fn set_waker(&mut self, waker: &Waker) {
        match &mut self.waker {
            Some(kept) if kept.will_wake(waker) => {}
            kept => *kept = Some(waker.clone()),
        }
    }

    /// Poll the stream once; `Pending` becomes `WouldBlock`.
    fn poll<R>(&mut self, f: impl FnOnce(&mut Context<'_>, Pin<&mut S>) -> Poll<io::Result<R>>) -> io::Result<R> {
        let waker = self.waker.as_ref().unwrap_or(Waker::noop());
        match f(&mut Context::from_waker(waker), Pin::new(&mut self.stream)) {
            Poll::Ready(result) => result,
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }
}

impl<S: AsyncRead + Unpin> Read for TaskIo<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut buf = ReadBuf::new(buf);
        self.poll(|cx, stream| stream.poll_read(cx, &mut buf))?;
        Ok(buf.filled().len())
    }
}

impl<S: AsyncWrite + Unpin> Write for TaskIo<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.poll(|cx, stream| stream.poll_write(cx, buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        self.poll(|cx, stream| stream.poll_flush(cx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn config() -> WebSocketConfig {
        WebSocketConfig::default().read_buffer_size(128)
    }

    /// A client's text frame (masked, as RFC 6455 wants), for payloads
    /// under 126 bytes.
    fn client_text_frame(text: &str) -> Vec<u8> {
        let mask = [0x37, 0xfa, 0x21, 0x3d];
        let mut frame = vec![0x81, 0x80 | text.len() as u8];
        frame.extend_from_slice(&mask);
        frame.extend(text.bytes().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        frame
    }

    /// Read `len` bytes as the peer while `sender` writes them, then wait
    /// for the sender to finish (each within 5 s).
    async fn read_while_sending<T>(
        client: &mut tokio::io::DuplexStream,
        len: usize,
        sender: tokio::task::JoinHandle<T>,
    ) -> Vec<u8> {
        let mut bytes = vec![0u8; len];
        tokio::time::timeout(Duration::from_secs(5), client.read_exact(&mut bytes))
            .await
            .expect("every byte within 5 s")
            .unwrap();
        tokio::time::timeout(Duration::from_secs(5), sender)
            .await
            .expect("the sender done within 5 s")
            .unwrap();
        bytes
    }

    #[tokio::test]
    async fn a_message_larger_than_the_pipe_goes_out_whole_as_the_peer_reads() {
        let (server, mut client) = tokio::io::duplex(64);
        let mut ws = WsStream::new(server, config());
        let sender = tokio::spawn(async move {
            ws.send(Message::text("x".repeat(1000))).await.unwrap();
            ws
        });
        // 64 bytes at a time: the sender is woken each time there is room.
        let frame = read_while_sending(&mut client, 4 + 1000, sender).await;
        assert_eq!(frame[..4], [0x81, 126, 0x03, 0xe8], "a text frame of 1000 bytes");
        assert!(frame[4..].iter().all(|&b| b == b'x'));
    }

    #[tokio::test]
    async fn messages_queued_behind_a_full_pipe_go_out_in_order() {
        let (server, mut client) = tokio::io::duplex(64);
        // No write buffer: every message is written at once, and one the
        // pipe cannot take is queued (`start_send` finds it blocked).
        let mut ws = WsStream::new(server, config().write_buffer_size(0));
        let texts: Vec<String> = (0..3).map(|i| format!("{i}").repeat(100)).collect();
        let messages = texts.clone();
        let sender = tokio::spawn(async move {
            for text in messages {
                ws.feed(Message::text(text)).await.unwrap();
            }
            ws.flush().await.unwrap();
            ws
        });
        let frames = read_while_sending(&mut client, 3 * (2 + 100), sender).await;
        for (frame, text) in frames.chunks(2 + 100).zip(&texts) {
            assert_eq!(frame[..2], [0x81, 100]);
            assert_eq!(&frame[2..], text.as_bytes());
        }
    }

    #[tokio::test]
    async fn a_blocked_message_holds_back_the_next_until_the_peer_reads() {
        let (server, mut client) = tokio::io::duplex(64);
        let mut ws = WsStream::new(server, config().write_buffer_size(0));
        // One poll of `poll_ready`, whatever it answers.
        async fn ready(ws: &mut WsStream<tokio::io::DuplexStream>) -> Poll<Result<(), WsError>> {
            std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut *ws).poll_ready(cx))).await
        }
        assert!(ready(&mut ws).await.is_ready());
        Pin::new(&mut ws).start_send(Message::text("x".repeat(100))).unwrap();
        assert!(ready(&mut ws).await.is_pending(), "38 bytes wait for room in the pipe");
        let mut frame = [0u8; 2 + 100];
        client.read_exact(&mut frame[..64]).await.unwrap();
        assert!(matches!(ready(&mut ws).await, Poll::Ready(Ok(()))), "the rest went out");
        client.read_exact(&mut frame[64..]).await.unwrap();
        assert_eq!(frame[..2], [0x81, 100]);
    }

    #[tokio::test]
    async fn what_feed_now_leaves_is_flushed_while_the_stream_is_read() {
        let (server, mut client) = tokio::io::duplex(64);
        let mut ws = WsStream::new(server, config().write_buffer_size(0));
        // The pipe takes 64 of the 102 bytes: the rest waits for a flush.
        ws.feed_now(Message::text("x".repeat(100))).unwrap();
        assert!(!ws.flush_now().unwrap(), "not all written");
        let sender = tokio::spawn(async move {
            // Reading meanwhile finds nothing and does not disturb the flush.
            let read = std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut ws).poll_next(cx).is_pending())).await;
            assert!(read, "nothing to read");
            ws.flush().await.unwrap();
            ws
        });
        let frame = read_while_sending(&mut client, 2 + 100, sender).await;
        assert_eq!(frame[..2], [0x81, 100]);
        assert!(frame[2..].iter().all(|&b| b == b'x'));
    }

    #[tokio::test]
    async fn a_frame_in_pieces_is_one_message_and_a_dropped_peer_ends_the_stream() {
        let (server, mut client) = tokio::io::duplex(1024);
        let mut ws = WsStream::new(server, config());
        let reader = tokio::spawn(async move {
            let mut seen = Vec::new();
            for _ in 0..3 {
                seen.push(ws.next().await.map(|m| m.map_err(|e| e.to_string())));
            }
            seen
        });
        let frame = client_text_frame("hello");
        client.write_all(&frame[..3]).await.unwrap();
        // The reader has found the frame incomplete and waits to be woken.
        tokio::time::sleep(Duration::from_millis(20)).await;
        client.write_all(&frame[3..]).await.unwrap();
        drop(client);
        let seen = tokio::time::timeout(Duration::from_secs(5), reader)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(seen[0], Some(Ok(Message::text("hello"))));
        assert!(
            matches!(seen[1], Some(Err(_))),
            "the end without a close frame: {:?}",
            seen[1]
        );
        assert_eq!(seen[2], None, "nothing after the error");
    }
}
