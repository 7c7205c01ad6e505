//! A WebSocket's bytes when Node keeps the socket (TLS, or any stream
//! without a descriptor to adopt).
//!
//! What the client sent comes from JavaScript through a channel
//! (`Engine::pipe_feed`); what the WebSocket writes goes back to JavaScript
//! as `SocketWrite` events, in the order written, and the end of the stream
//! as one `SocketEnd` (or `SocketAbort`, when the connection is dropped).
//! The stream is read and written by the connection's task itself: no pipe
//! in between, and no second task to carry bytes across it (one copy and
//! one task wake-up fewer each way).
//!
//! The bytes fed but not read yet are counted (`PipeLevel`): past
//! `PIPE_LIMIT`, `pipe_feed` tells JavaScript to pause its socket, and the
//! stream sends `SocketResume` once it has read them down to half. So a
//! connection that stops reading (see `events::INBOUND_LIMIT`) holds the
//! client back through Node's socket too. The other way, JavaScript says
//! when its socket's `write` returned false (`pipe_blocked`) and when it
//! drained: meanwhile the stream takes no writes, so the session's
//! buffer, `bufferedAmount` and `max_buffered_bytes` see a slow client as
//! they do over an adopted socket, and Node's socket does not buffer
//! without bound.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use futures_util::task::AtomicWaker;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::mpsc;

use crate::events::{ConnId, Event};
use crate::spill::SocketEnding;
use crate::Engine;

/// Chunks from JavaScript; `None` once its socket ended.
pub type Feed = mpsc::UnboundedReceiver<Option<Vec<u8>>>;
/// Where `pipe_feed` sends them.
pub type Feeder = mpsc::UnboundedSender<Option<Vec<u8>>>;

/// Unread bytes past which JavaScript pauses its socket.
pub const PIPE_LIMIT: usize = 1 << 20;

/// How much JavaScript fed that the stream has not read, and whether
/// JavaScript was told to pause. Shared by `pipe_feed` (JavaScript's
/// thread) and the stream (the connection's task); whichever side sees the
/// level back at half first takes the pause back, so that a pause is never
/// left without its resume.
#[derive(Default)]
pub struct PipeLevel {
    unread: AtomicUsize,
    paused: AtomicBool,
    /// JavaScript's socket is full: writes wait for it to drain.
    blocked: AtomicBool,
    /// The task waiting to write.
    writer: AtomicWaker,
}

impl PipeLevel {
    /// `n` bytes were fed: whether JavaScript may go on feeding.
    pub fn fed(&self, n: usize) -> bool {
        self.count(n) || self.pause()
    }

    /// Whether the level is still within the limit with `n` more bytes.
    fn count(&self, n: usize) -> bool {
        self.unread.fetch_add(n, Ordering::SeqCst) + n <= PIPE_LIMIT
    }

    /// JavaScript pauses, unless the stream read the level down to half
    /// meanwhile, before it could see the pause: then the pause is taken
    /// back (`true`: go on feeding).
    fn pause(&self) -> bool {
        self.paused.store(true, Ordering::SeqCst);
        self.unread.load(Ordering::SeqCst) <= PIPE_LIMIT / 2 && self.paused.swap(false, Ordering::SeqCst)
    }

    /// JavaScript's socket is full (`true`), or drained (`false`).
    pub fn set_blocked(&self, blocked: bool) {
        self.blocked.store(blocked, Ordering::SeqCst);
        if !blocked {
            self.writer.wake();
        }
    }

    /// Ready while JavaScript's socket takes writes.
    fn poll_unblocked(&self, cx: &mut Context<'_>) -> Poll<()> {
        if !self.blocked.load(Ordering::SeqCst) {
            return Poll::Ready(());
        }
        self.writer.register(cx.waker());
        // Drained between the check and the registration: not missed.
        if self.blocked.load(Ordering::SeqCst) {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    }

    /// `n` bytes were read: whether JavaScript must be told to resume.
    fn read(&self, n: usize) -> bool {
        self.unread.fetch_sub(n, Ordering::SeqCst) - n <= PIPE_LIMIT / 2 && self.paused.swap(false, Ordering::SeqCst)
    }
}

pub struct BridgeStream {
    engine: Arc<Engine>,
    id: ConnId,
    feed: Feed,
    level: Arc<PipeLevel>,
    /// The chunk being read, and how much of it was.
    chunk: Vec<u8>,
    taken: usize,
    /// JavaScript's socket ended: reads find the end of the stream.
    fed_all: bool,
    /// `SocketEnd` or `SocketAbort` was sent: JavaScript ends or destroys
    /// its socket.
    ended: bool,
}

impl BridgeStream {
    pub fn new(engine: Arc<Engine>, id: ConnId, feed: Feed, level: Arc<PipeLevel>) -> BridgeStream {
        BridgeStream {
            engine,
            id,
            feed,
            level,
            chunk: Vec::new(),
            taken: 0,
            fed_all: false,
            ended: false,
        }
    }

    fn end(&mut self) {
        if !std::mem::replace(&mut self.ended, true) {
            self.engine.events.push(Event::SocketEnd(self.id));
        }
    }
}

impl AsyncRead for BridgeStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        // At most two turns: a new chunk is taken, then handed out.
        loop {
            if this.taken < this.chunk.len() {
                let n = buf.remaining().min(this.chunk.len() - this.taken);
                buf.put_slice(&this.chunk[this.taken..this.taken + n]);
                this.taken += n;
                if this.taken == this.chunk.len() {
                    // An idle session keeps no buffer.
                    this.chunk = Vec::new();
                    this.taken = 0;
                }
                return Poll::Ready(Ok(()));
            }
            if this.fed_all || buf.remaining() == 0 {
                return Poll::Ready(Ok(()));
            }
            match ready!(this.feed.poll_recv(cx)) {
                Some(Some(bytes)) => {
                    if this.level.read(bytes.len()) {
                        this.engine.events.push(Event::SocketResume(this.id));
                    }
                    this.chunk = bytes;
                }
                Some(None) | None => this.fed_all = true,
            }
        }
    }
}

impl AsyncWrite for BridgeStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.ended {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        ready!(this.level.poll_unblocked(cx));
        this.engine.events.push(Event::SocketWrite(this.id, data.to_vec()));
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().end();
        Poll::Ready(Ok(()))
    }
}

impl Drop for BridgeStream {
    /// The connection is over: JavaScript ends its socket.
    fn drop(&mut self) {
        self.end();
    }
}

impl SocketEnding for BridgeStream {
    /// JavaScript destroys its socket: ending it would wait for Node to
    /// write out what it holds, to a peer that may read nothing.
    fn abort(&mut self) {
        if !std::mem::replace(&mut self.ended, true) {
            self.engine.events.push(Event::SocketAbort(self.id));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{read_all_by, WakeFlag};
    use tokio::io::AsyncWriteExt;

    fn engine() -> Arc<Engine> {
        Engine::new(Box::new(|_| {}))
    }

    #[tokio::test]
    async fn reads_give_every_byte_in_order_through_small_buffers_then_the_end() {
        let (feed, rx) = mpsc::unbounded_channel();
        let chunks: Vec<Vec<u8>> = vec![(0..1000).map(|i| i as u8).collect(), vec![7; 500], vec![9; 1]];
        let level = Arc::new(PipeLevel::default());
        for chunk in &chunks {
            assert!(level.fed(chunk.len()));
            feed.send(Some(chunk.clone())).unwrap();
        }
        feed.send(None).unwrap();
        let mut stream = BridgeStream::new(engine(), 1, rx, level);
        let got = read_all_by(&mut stream, 300, 100).await;
        assert_eq!(got, chunks.concat());
        assert!(stream.chunk.is_empty(), "a chunk read whole is freed");
    }

    #[tokio::test]
    async fn past_the_limit_javascript_pauses_and_hears_resume_once_half_is_read() {
        let engine = engine();
        let level = Arc::new(PipeLevel::default());
        let (feed, rx) = mpsc::unbounded_channel();
        let mut fed = 0;
        let mut chunks = 0;
        while level.fed(64 << 10) {
            feed.send(Some(vec![1; 64 << 10])).unwrap();
            fed += 64 << 10;
            chunks += 1;
            assert!(chunks <= 20, "JavaScript is told to pause past the limit");
        }
        feed.send(Some(vec![1; 64 << 10])).unwrap();
        fed += 64 << 10;
        assert_eq!(fed, PIPE_LIMIT + (64 << 10));
        let mut stream = BridgeStream::new(engine.clone(), 3, rx, level.clone());
        // Reading down to half the limit sends one SocketResume, no more.
        let mut buf = vec![0; 64 << 10];
        let mut resumed_after = None;
        for read in 1..=chunks + 1 {
            let n = tokio::io::AsyncReadExt::read(&mut stream, &mut buf).await.unwrap();
            assert_eq!(n, 64 << 10);
            if resumed_after.is_none() && !engine.drain().is_empty() {
                resumed_after = Some(read);
            }
        }
        assert_eq!(
            resumed_after,
            Some(9),
            "resumed once 9 of 17 chunks were read (half the limit left)"
        );
        assert!(engine.drain().is_empty());
        assert!(level.fed(1), "feeding goes on");
    }

    #[test]
    fn a_pause_is_taken_back_by_whichever_side_sees_the_level_at_half_first() {
        // The stream reads everything between the feeder's count and its
        // pause: the feeder finds the level low and goes on, no resume.
        let level = PipeLevel::default();
        assert!(level.count(PIPE_LIMIT));
        assert!(!level.count(10));
        assert!(!level.read(PIPE_LIMIT + 10), "not paused yet: no resume");
        assert!(level.pause(), "the feeder sees it all read and goes on");
        // The usual order: paused, then read down to half, then one resume.
        assert!(!level.count(PIPE_LIMIT + 1));
        assert!(!level.pause());
        assert!(!level.read(PIPE_LIMIT / 2), "above half: still paused");
        assert!(level.read(1), "at half: resume");
        assert!(!level.read(PIPE_LIMIT / 2), "once");
    }

    #[test]
    fn a_write_waits_while_javascript_says_its_socket_is_full() {
        let engine = engine();
        let level = Arc::new(PipeLevel::default());
        let (_feed, rx) = mpsc::unbounded_channel();
        let mut stream = BridgeStream::new(engine.clone(), 4, rx, level.clone());
        let (flag, waker) = WakeFlag::new();
        let mut cx = Context::from_waker(&waker);
        let mut write = |data: &[u8]| Pin::new(&mut stream).poll_write(&mut cx, data).map(Result::unwrap);
        assert_eq!(write(b"one"), Poll::Ready(3));
        level.set_blocked(true);
        assert_eq!(write(b"two"), Poll::Pending, "nothing more while full");
        assert_eq!(engine.drain(), vec![Event::SocketWrite(4, b"one".to_vec())]);
        assert!(!flag.woken());
        level.set_blocked(false);
        assert!(flag.woken(), "the drain wakes the writer");
        assert_eq!(write(b"two"), Poll::Ready(3));
        assert_eq!(engine.drain(), vec![Event::SocketWrite(4, b"two".to_vec())]);
    }

    #[tokio::test]
    async fn writes_become_socket_writes_in_order_and_the_end_comes_once() {
        let engine = engine();
        let (_feed, rx) = mpsc::unbounded_channel();
        let mut stream = BridgeStream::new(engine.clone(), 5, rx, Arc::default());
        stream.write_all(b"ab").await.unwrap();
        stream.write_all(b"cd").await.unwrap();
        stream.shutdown().await.unwrap();
        assert!(stream.write_all(b"late").await.is_err(), "nothing after the end");
        drop(stream);
        assert_eq!(
            engine.drain(),
            vec![
                Event::SocketWrite(5, b"ab".to_vec()),
                Event::SocketWrite(5, b"cd".to_vec()),
                Event::SocketEnd(5),
            ]
        );
    }
}
