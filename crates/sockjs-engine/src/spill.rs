//! Large socket reads with a small per-connection read buffer.
//!
//! tungstenite reads at most its read buffer's size per call, and keeps that
//! buffer for the whole life of the connection. A small buffer suits 10^5
//! idle sessions but would take one system call per few hundred bytes of a
//! large message. `SpillReader` sits between tungstenite and the socket: it
//! reads the socket into a scratch buffer shared by every connection of the
//! thread, hands the caller what fits, and keeps only the excess, in a
//! buffer that exists while the excess does. An idle connection holds no
//! read buffer here at all.

use std::cell::RefCell;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Bytes asked of the socket per read (the scratch buffer's size).
const SCRATCH: usize = 64 * 1024;

thread_local! {
    static SCRATCH_BUF: RefCell<Box<[u8]>> = RefCell::new(vec![0; SCRATCH].into_boxed_slice());
}

/// A byte stream whose reads go to the socket in `SCRATCH`-sized calls.
/// Writes pass through unchanged.
pub struct SpillReader<S> {
    inner: S,
    /// Bytes read from the socket and not yet handed out; boxed, so that a
    /// connection without any (nearly always) pays one pointer for it.
    spill: Option<Box<Spill>>,
}

struct Spill {
    bytes: Box<[u8]>,
    /// How much of `bytes` was handed out already.
    taken: usize,
}

impl<S> SpillReader<S> {
    pub fn new(inner: S) -> Self {
        SpillReader { inner, spill: None }
    }
}

/// Hand out spilled bytes; true once they are all taken.
fn take_spill(spill: &mut Spill, buf: &mut ReadBuf<'_>) -> bool {
    let n = (spill.bytes.len() - spill.taken).min(buf.remaining());
    buf.put_slice(&spill.bytes[spill.taken..spill.taken + n]);
    spill.taken += n;
    spill.taken == spill.bytes.len()
}

impl<S: AsyncRead + Unpin> AsyncRead for SpillReader<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(spill) = &mut this.spill {
            if take_spill(spill, buf) {
                this.spill = None;
            }
            return Poll::Ready(Ok(()));
        }
        if buf.remaining() >= SCRATCH {
            // The caller's own buffer is large enough: no copy needed.
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        }
        SCRATCH_BUF.with(|scratch| {
            let mut scratch = scratch.borrow_mut();
            let mut read = ReadBuf::new(&mut scratch[..]);
            match Pin::new(&mut this.inner).poll_read(cx, &mut read) {
                Poll::Ready(Ok(())) => {
                    let got = read.filled();
                    let now = got.len().min(buf.remaining());
                    buf.put_slice(&got[..now]);
                    if now < got.len() {
                        let bytes = got[now..].into();
                        this.spill = Some(Box::new(Spill { bytes, taken: 0 }));
                    }
                    Poll::Ready(Ok(()))
                }
                other => other,
            }
        })
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for SpillReader<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, data)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 % 251) as u8).collect()
    }

    #[tokio::test]
    async fn small_reads_get_every_byte_in_order_and_free_the_spill() {
        let (mut peer, ours) = tokio::io::duplex(256 * 1024);
        let sent = pattern(100_000);
        peer.write_all(&sent).await.unwrap();
        drop(peer);
        let mut reader = SpillReader::new(ours);
        let mut got = Vec::new();
        let mut chunk = [0u8; 300];
        for _ in 0..10_000 {
            let n = reader.read(&mut chunk).await.unwrap();
            if n == 0 {
                break;
            }
            assert!(n <= chunk.len());
            got.extend_from_slice(&chunk[..n]);
        }
        assert_eq!(got, sent);
        assert!(reader.spill.is_none(), "a drained spill is freed");
    }

    #[tokio::test]
    async fn a_read_that_fits_keeps_nothing() {
        let (mut peer, ours) = tokio::io::duplex(1024);
        peer.write_all(b"hello").await.unwrap();
        let mut reader = SpillReader::new(ours);
        let mut chunk = [0u8; 256];
        let n = reader.read(&mut chunk).await.unwrap();
        assert_eq!(&chunk[..n], b"hello");
        assert!(reader.spill.is_none());
    }

    #[tokio::test]
    async fn writes_pass_through() {
        let (mut peer, ours) = tokio::io::duplex(1024);
        let mut reader = SpillReader::new(ours);
        reader.write_all(b"out").await.unwrap();
        reader.flush().await.unwrap();
        let mut got = [0u8; 3];
        peer.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"out");
    }
}
