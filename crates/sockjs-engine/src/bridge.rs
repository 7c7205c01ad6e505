//! A WebSocket's bytes when Node keeps the socket (TLS, or any stream
//! without a descriptor to adopt).
//!
//! What the client sent comes from JavaScript through a channel
//! (`Engine::pipe_feed`); what the WebSocket writes goes back to JavaScript
//! as `SocketWrite` events, in the order written, and the end of the stream
//! as one `SocketEnd`. The stream is read and written by the connection's
//! task itself: no pipe in between, and no second task to carry bytes
//! across it (one copy and one task wake-up fewer each way).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::mpsc;

use crate::events::{ConnId, Event};
use crate::spill::HoldBeforeClose;
use crate::Engine;

/// Chunks from JavaScript; `None` once its socket ended.
pub type Feed = mpsc::UnboundedReceiver<Option<Vec<u8>>>;

pub struct BridgeStream {
    engine: Arc<Engine>,
    id: ConnId,
    feed: Feed,
    /// The chunk being read, and how much of it was.
    chunk: Vec<u8>,
    taken: usize,
    /// JavaScript's socket ended: reads find the end of the stream.
    fed_all: bool,
    /// `SocketEnd` was sent: JavaScript ends its socket.
    ended: bool,
}

impl BridgeStream {
    pub fn new(engine: Arc<Engine>, id: ConnId, feed: Feed) -> BridgeStream {
        BridgeStream {
            engine,
            id,
            feed,
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
                Some(Some(bytes)) => this.chunk = bytes,
                Some(None) | None => this.fed_all = true,
            }
        }
    }
}

impl AsyncWrite for BridgeStream {
    fn poll_write(self: Pin<&mut Self>, _cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.ended {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
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

impl HoldBeforeClose for BridgeStream {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::read_all_by;
    use tokio::io::AsyncWriteExt;

    fn engine() -> Arc<Engine> {
        Engine::new(Box::new(|_| {}))
    }

    #[tokio::test]
    async fn reads_give_every_byte_in_order_through_small_buffers_then_the_end() {
        let (feed, rx) = mpsc::unbounded_channel();
        let chunks: Vec<Vec<u8>> = vec![(0..1000).map(|i| i as u8).collect(), vec![7; 500], vec![9; 1]];
        for chunk in &chunks {
            feed.send(Some(chunk.clone())).unwrap();
        }
        feed.send(None).unwrap();
        let mut stream = BridgeStream::new(engine(), 1, rx);
        let got = read_all_by(&mut stream, 300, 100).await;
        assert_eq!(got, chunks.concat());
        assert!(stream.chunk.is_empty(), "a chunk read whole is freed");
    }

    #[tokio::test]
    async fn writes_become_socket_writes_in_order_and_the_end_comes_once() {
        let engine = engine();
        let (_feed, rx) = mpsc::unbounded_channel();
        let mut stream = BridgeStream::new(engine.clone(), 5, rx);
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
