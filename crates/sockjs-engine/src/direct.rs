//! WebSocket frames written by JavaScript's thread itself.
//!
//! With a single runtime thread (a process allowed one CPU, or
//! `SOCKJS_THREADS=1`), JavaScript and the runtime take turns on one CPU,
//! and handing the application's writes to the runtime only adds work: a
//! wake-up of its thread, a poll of the connection's task, a pass through
//! tungstenite's buffer. There, the frames a session was written in one
//! turn of the event loop go to its socket at the end of that turn, from
//! JavaScript's thread (`Engine::drain`), when nothing can go wrong by it:
//!
//! - the socket is live: its descriptor is taken away (under the lock held
//!   while writing) before the task's stream closes it, and is only given
//!   once the task has sent the 101 answer;
//! - tungstenite has no frame partly written, and no bytes written here are
//!   still waiting: frames from both sides never mix within a frame;
//! - the peer has not begun to close: tungstenite answers a close frame by
//!   itself, and no data may follow that answer;
//! - (checked by the caller) the session is open and its task holds none
//!   of its messages unwritten, so messages keep their order.
//!
//! Otherwise the task is woken, as with more threads. When the socket takes
//! only part of the bytes, the rest waits here and the task's stream writes
//! it before anything of its own.

use std::io::{self, Write};
use std::mem::ManuallyDrop;
use std::os::fd::{FromRawFd, RawFd};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use parking_lot::{Mutex, MutexGuard};
use tokio::io::AsyncWrite;

/// One WebSocket's socket as JavaScript's thread may write to it.
#[derive(Default)]
pub struct SocketOut {
    out: Mutex<Out>,
}

#[derive(Default)]
struct Out {
    /// The socket, while direct writes are allowed.
    fd: Option<RawFd>,
    /// tungstenite's last write left bytes of its buffer unwritten.
    stream_partial: bool,
    /// Bytes written here that the socket has not taken yet.
    rest: Vec<u8>,
}

/// Leave to write to the socket now, held until the write is done.
pub struct Claim<'a> {
    out: MutexGuard<'a, Out>,
    fd: RawFd,
}

impl SocketOut {
    pub fn new() -> Arc<SocketOut> {
        Arc::new(SocketOut::default())
    }

    /// The task's stream over `fd` is running: direct writes may begin.
    pub fn open(&self, fd: RawFd) {
        self.out.lock().fd = Some(fd);
    }

    /// No more direct writes: the stream is closing, or the peer is.
    pub fn shut(&self) {
        self.out.lock().fd = None;
    }

    /// Leave to write now, if writing now is safe (see the module's head).
    pub fn claim(&self) -> Option<Claim<'_>> {
        let out = self.out.lock();
        let fd = out.fd?;
        (!out.stream_partial && out.rest.is_empty()).then_some(Claim { out, fd })
    }

    /// No bytes written here wait for the socket.
    pub fn nothing_waiting(&self) -> bool {
        self.out.lock().rest.is_empty()
    }

    /// The task's stream writes `data`: what was written here goes first.
    pub fn poll_write<S: AsyncWrite + Unpin>(
        &self,
        mut inner: Pin<&mut S>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let mut out = self.out.lock();
        ready!(poll_rest(&mut out, inner.as_mut(), cx))?;
        let polled = inner.poll_write(cx, data);
        // tungstenite hands over its whole buffer on every write.
        out.stream_partial = !matches!(polled, Poll::Ready(Ok(n)) if n == data.len());
        polled
    }

    /// The task's stream flushes: what was written here goes out too.
    pub fn poll_flush<S: AsyncWrite + Unpin>(
        &self,
        mut inner: Pin<&mut S>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        ready!(poll_rest(&mut self.out.lock(), inner.as_mut(), cx))?;
        inner.poll_flush(cx)
    }
}

/// Write out what the socket did not take of a direct write.
fn poll_rest<S: AsyncWrite + Unpin>(
    out: &mut Out,
    mut inner: Pin<&mut S>,
    cx: &mut Context<'_>,
) -> Poll<io::Result<()>> {
    while !out.rest.is_empty() {
        match ready!(inner.as_mut().poll_write(cx, &out.rest))? {
            0 => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
            n => drop(out.rest.drain(..n)),
        }
    }
    out.rest = Vec::new();
    Poll::Ready(Ok(()))
}

impl Claim<'_> {
    /// Write `bytes` without waiting; returns how many the socket did not
    /// take (they are kept, and the task's stream must be woken to write
    /// them). A broken connection keeps them too: the task finds the error.
    pub fn send(mut self, bytes: Vec<u8>) -> usize {
        // SAFETY: the descriptor is open: it is taken from `out` under this
        // lock before the stream that owns it is dropped. ManuallyDrop: the
        // stream only borrows it and must not close it.
        let mut socket = ManuallyDrop::new(unsafe { std::net::TcpStream::from_raw_fd(self.fd) });
        let mut sent = 0;
        while sent < bytes.len() {
            match socket.write(&bytes[sent..]) {
                Ok(0) => break,
                Ok(n) => sent += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        let left = bytes.len() - sent;
        if left > 0 {
            self.out.rest = bytes[sent..].to_vec();
        }
        left
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::fd::AsRawFd;

    fn pair() -> (std::net::TcpStream, tokio::net::TcpStream) {
        let (client, server) = crate::test_support::socket_pair();
        server.set_nonblocking(true).unwrap();
        (client, tokio::net::TcpStream::from_std(server).unwrap())
    }

    #[test]
    fn no_claim_before_open_or_after_shut() {
        let out = SocketOut::new();
        assert!(out.claim().is_none());
        out.open(0);
        assert!(out.claim().is_some());
        out.shut();
        assert!(out.claim().is_none());
    }

    #[tokio::test]
    async fn what_the_socket_did_not_take_goes_before_the_streams_next_write() {
        let (mut client, mut server) = pair();
        let out = SocketOut::new();
        out.open(server.as_raw_fd());
        // More than the socket buffers take while the client reads nothing.
        let big: Vec<u8> = (0..8 << 20).map(|i| (i % 251) as u8).collect();
        let left = out.claim().expect("a first claim").send(big.clone());
        assert!(left > 0, "the socket took all 8 MiB");
        assert!(out.claim().is_none(), "no direct write while bytes wait");

        let reader = std::thread::spawn(move || {
            let mut got = vec![0; big.len() + 5];
            client.read_exact(&mut got).unwrap();
            (big, got)
        });
        let wrote = std::future::poll_fn(|cx| out.poll_write(Pin::new(&mut server), cx, b"after")).await;
        assert_eq!(wrote.unwrap(), 5);
        let (big, got) = reader.join().unwrap();
        assert_eq!(&got[..big.len()], &big[..]);
        assert_eq!(&got[big.len()..], b"after");
        assert!(out.claim().is_some(), "nothing waits any more");
    }
}
