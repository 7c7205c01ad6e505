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
//!
//! It also hands out bytes up to the end of one client frame at a time
//! (`bounds`), so that it can tell when tungstenite holds no part of an
//! unfinished frame or message: then the WebSocket can be made afresh over
//! the same socket, dropping the buffers a large message grew.
//!
//! Its writes go through the connection's `SocketOut` when JavaScript's
//! thread may write to the socket too (see `direct`): it tells that side
//! when tungstenite left a frame half-written, and when the peer begins to
//! close (a close frame's header went by: tungstenite will answer it).
//! Once the peer's close frame is in whole, the writes left (the answer to
//! it) are handed to the kernel to go out together with the FIN
//! (`SocketEnding`, which also says how a connection is dropped).
//!
//! And it notes whether the peer takes our bytes (`progressed`): a missed
//! pong is forgiven while the pong may be waiting behind them.

use std::cell::RefCell;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use sockjs_core::bounds::{FrameBounds, LARGE_FRAME};

use crate::direct::SocketOut;

/// Bytes asked of the socket per read (the scratch buffer's size).
const SCRATCH: usize = 64 * 1024;

thread_local! {
    static SCRATCH_BUF: RefCell<Box<[u8]>> = RefCell::new(vec![0; SCRATCH].into_boxed_slice());
}

/// A byte stream whose reads go to the socket in `SCRATCH`-sized calls.
/// Writes pass through, beside JavaScript's direct writes if any.
pub struct SpillReader<S> {
    inner: S,
    /// Bytes read from the socket and not yet handed out; boxed, so that a
    /// connection without any (nearly always) pays one pointer for it.
    spill: Option<Box<Spill>>,
    /// Also told of writes of more than `LARGE_FRAME` bytes (tungstenite's
    /// write buffer held that many).
    bounds: FrameBounds,
    /// Where JavaScript's thread writes to the same socket, if it does.
    direct: Option<Arc<SocketOut>>,
    /// The socket took bytes since `watch_progress` (see `Noting`).
    progressed: bool,
    /// Bytes of ours the kernel held unacknowledged at `note_backlog`,
    /// just before a ping was written: what the ping waits behind
    /// (saturated).
    backlog_at_ping: u32,
}

struct Spill {
    bytes: Box<[u8]>,
    /// How much of `bytes` was handed out already.
    taken: usize,
}

impl Spill {
    /// A spill of `bytes`, or none when there are none.
    fn of(bytes: Box<[u8]>) -> Option<Box<Spill>> {
        (!bytes.is_empty()).then(|| Box::new(Spill { bytes, taken: 0 }))
    }
}

impl<S> SpillReader<S> {
    /// A reader over `inner` that first hands out `pending` (bytes already
    /// read from it, such as what Node read past the upgrade request): every
    /// byte of the stream goes through `bounds`.
    pub fn new(inner: S, pending: Vec<u8>, direct: Option<Arc<SocketOut>>) -> Self {
        SpillReader {
            inner,
            spill: Spill::of(pending.into_boxed_slice()),
            bounds: FrameBounds::default(),
            direct,
            progressed: false,
            backlog_at_ping: 0,
        }
    }

    /// Before a ping is written: note what of ours it waits behind.
    pub fn note_backlog(&mut self)
    where
        S: SocketEnding,
    {
        self.backlog_at_ping = self.inner.unsent().map_or(0, saturate);
    }

    /// After the ping is written: note from now on whether the socket takes
    /// any bytes (`progressed`).
    pub fn watch_progress(&mut self) {
        self.progressed = false;
    }

    /// Whether the peer took bytes that were ahead of the ping: the kernel
    /// holds fewer of ours unacknowledged than it did before the ping (with
    /// nothing ahead of it, never: a peer's kernel acknowledging the ping
    /// says nothing of the peer), or, while a write waits for the socket
    /// (`waiting`: else the socket taking bytes proves nothing), the socket
    /// took more since `watch_progress`.
    pub fn progressed(&self, waiting: bool) -> bool
    where
        S: SocketEnding,
    {
        let acked = self
            .inner
            .unsent()
            .is_some_and(|now| saturate(now) < self.backlog_at_ping);
        acked || (waiting && self.progressed)
    }

    /// The socket as the write paths use it, and JavaScript's side of it.
    fn socket(&mut self) -> (Option<&SocketOut>, Noting<'_, S>) {
        let socket = Noting {
            inner: &mut self.inner,
            progressed: &mut self.progressed,
        };
        (self.direct.as_deref(), socket)
    }

    /// After bytes were handed out: once the peer's close frame began, no
    /// direct write may follow tungstenite's answer to it.
    fn after_handing_out(&mut self) {
        if self.bounds.close_seen() {
            if let Some(direct) = &self.direct {
                direct.shut();
            }
        }
    }

    /// More than `LARGE_FRAME` bytes went by in one frame read or one write
    /// since the last `forget_large`, and every byte handed out
    /// since made whole frames and whole messages (bytes still in the spill
    /// were not handed out: they stay here).
    pub fn buffers_grown_and_idle(&self) -> bool {
        self.bounds.large_seen() && self.bounds.between_messages()
    }

    pub fn forget_large(&mut self) {
        self.bounds.reset_large();
    }
}

fn saturate(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Hand out what of `bytes` fits and belongs to the current frame; how many.
fn hand_out(bounds: &mut FrameBounds, bytes: &[u8], buf: &mut ReadBuf<'_>) -> usize {
    let n = bounds.take(&bytes[..bytes.len().min(buf.remaining())]);
    buf.put_slice(&bytes[..n]);
    n
}

impl<S: AsyncRead + Unpin> AsyncRead for SpillReader<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        if let Some(spill) = &mut this.spill {
            spill.taken += hand_out(&mut this.bounds, &spill.bytes[spill.taken..], buf);
            if spill.taken == spill.bytes.len() {
                this.spill = None;
            }
            this.after_handing_out();
            return Poll::Ready(Ok(()));
        }
        let payload_left = usize::try_from(this.bounds.payload_left()).unwrap_or(usize::MAX);
        if payload_left >= SCRATCH && buf.remaining() >= SCRATCH {
            // Deep in a large payload, into a large buffer: no copy needed.
            // (tungstenite's buffer is initialized already, so this costs
            // nothing.)
            let dst = buf.initialize_unfilled_to(buf.remaining().min(payload_left));
            let mut direct = ReadBuf::new(dst);
            let polled = Pin::new(&mut this.inner).poll_read(cx, &mut direct);
            let n = direct.filled().len();
            if let Poll::Ready(Ok(())) = polled {
                let start = buf.filled().len();
                buf.advance(n);
                let taken = this.bounds.take(&buf.filled()[start..]);
                debug_assert_eq!(taken, n, "a payload read stays in its payload");
            }
            return polled;
        }
        let polled = SCRATCH_BUF.with(|scratch| {
            let mut scratch = scratch.borrow_mut();
            let mut read = ReadBuf::new(&mut scratch[..]);
            match Pin::new(&mut this.inner).poll_read(cx, &mut read) {
                Poll::Ready(Ok(())) => {
                    let got = read.filled();
                    let now = hand_out(&mut this.bounds, got, buf);
                    this.spill = Spill::of(got[now..].into());
                    Poll::Ready(Ok(()))
                }
                other => other,
            }
        });
        this.after_handing_out();
        polled
    }
}

impl<S: SocketEnding> SpillReader<S> {
    /// Drop the connection now (see `SocketEnding::abort`).
    pub fn abort(mut self) {
        self.inner.abort();
    }
}

impl<S> Drop for SpillReader<S> {
    /// The socket closes when `inner` is dropped, right after this.
    fn drop(&mut self) {
        if let Some(direct) = &self.direct {
            direct.shut();
        }
    }
}

/// How a stream ends: its last bytes leaving together with the end of the
/// connection, or the connection dropped with bytes still unsent.
pub trait SocketEnding {
    /// Write `data` without waiting, telling the kernel that more follows at
    /// once; `None` when the stream cannot, or not without waiting (the
    /// caller then writes as usual).
    fn send_before_close(&mut self, _data: &[u8]) -> Option<io::Result<usize>> {
        None
    }

    /// The connection is to be dropped, whatever is still unsent, when the
    /// stream is: the peer is owed nothing more.
    fn abort(&mut self);

    /// Bytes the kernel holds that the peer has not acknowledged, if the
    /// stream can tell.
    fn unsent(&self) -> Option<usize> {
        None
    }
}

// The tests run the reader over an in-memory pipe.
#[cfg(test)]
impl SocketEnding for tokio::io::DuplexStream {
    fn abort(&mut self) {}
}

#[cfg(not(target_os = "linux"))]
impl SocketEnding for tokio::net::TcpStream {
    fn abort(&mut self) {
        reset_on_close(self);
    }
}

/// Have the socket's close reset the connection. A plain close would leave
/// the kernel holding the unsent bytes, and the connection, for as long as
/// a peer that reads nothing keeps its window shut (minutes).
fn reset_on_close(stream: &tokio::net::TcpStream) {
    let _ = stream.set_zero_linger();
}

#[cfg(target_os = "linux")]
impl SocketEnding for tokio::net::TcpStream {
    fn abort(&mut self) {
        reset_on_close(self);
    }

    fn unsent(&self) -> Option<usize> {
        use std::os::fd::AsRawFd;
        let mut n: libc::c_int = 0;
        // SAFETY: SIOCOUTQ (TIOCOUTQ) writes one int; the descriptor is
        // this open stream's.
        let done = unsafe { libc::ioctl(self.as_raw_fd(), libc::TIOCOUTQ, &mut n) };
        (done == 0).then(|| usize::try_from(n).unwrap_or(0))
    }

    /// `MSG_MORE`: the kernel holds a short segment back until something
    /// pushes it out: here the close that follows, whose FIN then leaves in
    /// the same segment. One segment instead of two per closing connection;
    /// on loopback, one pass fewer through the receiving TCP stack, which
    /// runs on the sender's CPU. Measured: -3 to -4% server CPU per session
    /// in the churn benchmark.
    fn send_before_close(&mut self, data: &[u8]) -> Option<io::Result<usize>> {
        use std::os::fd::AsRawFd;
        let fd = self.as_raw_fd();
        let sent = self.try_io(tokio::io::Interest::WRITABLE, || {
            // SAFETY: `fd` is this open stream's; `data` outlives the call.
            let n = unsafe {
                libc::send(
                    fd,
                    data.as_ptr().cast(),
                    data.len(),
                    libc::MSG_MORE | libc::MSG_NOSIGNAL,
                )
            };
            usize::try_from(n).map_err(|_| io::Error::last_os_error())
        });
        match sent {
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) => None,
            other => Some(other),
        }
    }
}

impl<S: AsyncWrite + SocketEnding + Unpin> AsyncWrite for SpillReader<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if data.len() as u64 > LARGE_FRAME {
            this.bounds.mark_large();
        }
        // Once the peer's close frame is in, what is left to write ends with
        // tungstenite's answer to it, and the socket is closed right after.
        if this.bounds.close_taken() && this.direct.as_ref().is_none_or(|d| d.nothing_waiting()) {
            if let Some(sent) = this.inner.send_before_close(data) {
                return Poll::Ready(sent);
            }
        }
        let (direct, mut socket) = this.socket();
        match direct {
            Some(direct) => direct.poll_write(Pin::new(&mut socket), cx, data),
            None => Pin::new(&mut socket).poll_write(cx, data),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.direct.is_some() {
            // One buffer at a time, each through `poll_write`.
            let first = bufs.iter().find(|b| !b.is_empty()).map_or(&[][..], |b| &**b);
            return Pin::new(this).poll_write(cx, first);
        }
        if bufs.iter().map(|b| b.len() as u64).sum::<u64>() > LARGE_FRAME {
            this.bounds.mark_large();
        }
        Pin::new(&mut this.socket().1).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.direct.is_none() && self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let (direct, mut socket) = this.socket();
        match direct {
            Some(direct) => direct.poll_flush(Pin::new(&mut socket), cx),
            None => Pin::new(&mut socket).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(direct) = &this.direct {
            ready!(direct.poll_flush(Pin::new(&mut this.inner), cx))?;
            direct.shut();
        }
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

/// The socket as `SpillReader`'s writes reach it (JavaScript's rest
/// included, through `direct`): it notes when bytes go out.
struct Noting<'a, S> {
    inner: &'a mut S,
    progressed: &'a mut bool,
}

impl<S> Noting<'_, S> {
    fn note(&mut self, polled: &Poll<io::Result<usize>>) {
        if matches!(polled, Poll::Ready(Ok(n)) if *n > 0) {
            *self.progressed = true;
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Noting<'_, S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut *self.inner).poll_write(cx, data);
        self.note(&polled);
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut *self.inner).poll_write_vectored(cx, bufs);
        self.note(&polled);
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{read_all_by, socket_pair};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 % 251) as u8).collect()
    }

    /// A reader over our side of a loopback connection, and the peer's side.
    #[cfg(target_os = "linux")]
    fn loopback_reader() -> (std::net::TcpStream, SpillReader<tokio::net::TcpStream>) {
        let (client, server) = socket_pair();
        server.set_nonblocking(true).unwrap();
        let stream = SpillReader::new(tokio::net::TcpStream::from_std(server).unwrap(), Vec::new(), None);
        (client, stream)
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn progress_is_the_peer_taking_bytes_after_the_watch() {
        use std::io::Read;
        use std::time::Duration;
        let (mut client, mut stream) = loopback_reader();
        let chunk = vec![7u8; 64 * 1024];
        // Fill the socket (a write that waits 200 ms finds it full): the
        // client reads nothing yet.
        let mut filled = 0;
        while let Ok(written) = tokio::time::timeout(Duration::from_millis(200), stream.write(&chunk)).await {
            filled += written.unwrap();
            assert!(filled < 256 << 20, "the socket never filled");
        }
        stream.note_backlog();
        stream.watch_progress();
        assert!(!stream.progressed(true), "nothing taken since the watch");
        // The client reads: the kernel sends more of what it holds.
        let mut taken = vec![0u8; filled.min(1 << 20)];
        client.read_exact(&mut taken).unwrap();
        let mut acked = false;
        for _ in 0..500 {
            acked = stream.progressed(false);
            if acked {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        assert!(acked, "the kernel holds fewer unacknowledged bytes");
        // And once the client reads on, the socket takes more of ours:
        // progress while a write waited.
        stream.watch_progress();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 1 << 20];
            while matches!(client.read(&mut buf), Ok(n) if n > 0) {}
        });
        let written = tokio::time::timeout(Duration::from_secs(5), stream.write(&chunk)).await;
        assert!(matches!(written, Ok(Ok(n)) if n > 0), "{written:?}");
        assert!(stream.progressed(true));
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn a_ping_with_nothing_ahead_of_it_is_no_progress_once_acknowledged() {
        use std::io::Read;
        use std::time::Duration;
        let (mut client, mut stream) = loopback_reader();
        // An exchange, as after a WebSocket opens: the client's kernel then
        // delays its acknowledgements (interactive mode), so right after
        // the write the ping is likely still unacknowledged.
        stream.write_all(b"o").await.unwrap();
        let mut open = [0u8; 1];
        client.read_exact(&mut open).unwrap();
        std::io::Write::write_all(&mut client, b"half a frame").unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        stream.note_backlog();
        stream.write_all(&[0x89, 0x00]).await.unwrap();
        stream.watch_progress();
        let mut ping = [0u8; 2];
        client.read_exact(&mut ping).unwrap();
        for _ in 0..500 {
            if stream.inner.unsent() == Some(0) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        assert_eq!(stream.inner.unsent(), Some(0), "the ping was acknowledged");
        assert!(
            !stream.progressed(false),
            "the peer's kernel acknowledging the ping is not the peer answering"
        );
    }

    #[tokio::test]
    async fn small_reads_get_every_byte_in_order_and_free_the_spill() {
        let (mut peer, ours) = tokio::io::duplex(256 * 1024);
        let sent = pattern(100_000);
        peer.write_all(&sent).await.unwrap();
        drop(peer);
        let mut reader = SpillReader::new(ours, Vec::new(), None);
        let got = read_all_by(&mut reader, 300, 10_000).await;
        assert_eq!(got, sent);
        assert!(reader.spill.is_none(), "a drained spill is freed");
    }

    #[tokio::test]
    async fn a_read_that_fits_keeps_nothing() {
        let (mut peer, ours) = tokio::io::duplex(1024);
        peer.write_all(b"hello").await.unwrap();
        let mut reader = SpillReader::new(ours, Vec::new(), None);
        let mut chunk = [0u8; 256];
        let n = reader.read(&mut chunk).await.unwrap();
        assert_eq!(&chunk[..n], b"hello");
        assert!(reader.spill.is_none());
    }

    /// A masked client text frame of `len` bytes.
    fn client_frame(fin: bool, len: usize) -> Vec<u8> {
        let mut out = vec![if fin { 0x81 } else { 0x01 }];
        match len {
            n if n < 126 => out.push(0x80 | n as u8),
            n => {
                out.push(0x80 | 126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
        }
        out.extend_from_slice(&[9, 9, 9, 9]);
        out.extend(std::iter::repeat_n(b'a' ^ 9, len));
        out
    }

    #[tokio::test]
    async fn hands_out_one_frame_at_most_and_knows_when_messages_are_whole() {
        let (mut peer, ours) = tokio::io::duplex(256 * 1024);
        let small = client_frame(true, 10);
        let large = client_frame(true, 5000);
        let first_part = client_frame(false, 3);
        let mut sent = small.clone();
        sent.extend(&large);
        sent.extend(&first_part);
        peer.write_all(&sent).await.unwrap();
        let mut reader = SpillReader::new(ours, Vec::new(), None);
        let mut chunk = vec![0u8; 64 * 1024];

        let n = reader.read(&mut chunk).await.unwrap();
        assert_eq!(
            &chunk[..n],
            &small[..],
            "only the first frame, though all of it was read"
        );
        assert!(reader.bounds.between_messages());
        assert!(!reader.buffers_grown_and_idle(), "nothing large yet");

        let mut got = 0;
        for _ in 0..100 {
            got += reader.read(&mut chunk[..300]).await.unwrap();
            if got == large.len() {
                break;
            }
            assert!(!reader.bounds.between_messages(), "inside the large frame");
        }
        assert_eq!(got, large.len(), "the large frame, and nothing past it");
        assert!(reader.buffers_grown_and_idle());

        let n = reader.read(&mut chunk).await.unwrap();
        assert_eq!(n, first_part.len());
        assert!(!reader.buffers_grown_and_idle(), "a fragmented message is not over");
        // The final continuation, empty: FIN and opcode 0, masked, length 0.
        peer.write_all(&[0x80, 0x80, 9, 9, 9, 9]).await.unwrap();
        let mut rest = 0;
        for _ in 0..10 {
            rest += reader.read(&mut chunk).await.unwrap();
            if rest == 6 {
                break;
            }
        }
        assert_eq!(rest, 6);
        assert!(reader.buffers_grown_and_idle());
        reader.forget_large();
        assert!(!reader.buffers_grown_and_idle());
        reader.write_all(&[0; 100]).await.unwrap();
        assert!(!reader.buffers_grown_and_idle(), "a small write does not count");
        reader.write_all(&[0; 5000]).await.unwrap();
        assert!(reader.buffers_grown_and_idle(), "a large write counts as well");
    }

    #[tokio::test]
    async fn pending_bytes_come_first_and_count_as_frames() {
        let (mut peer, ours) = tokio::io::duplex(1024);
        let frame = client_frame(true, 10);
        let (early, late) = frame.split_at(5);
        peer.write_all(late).await.unwrap();
        let mut reader = SpillReader::new(ours, early.to_vec(), None);
        let mut chunk = [0u8; 256];
        let n = reader.read(&mut chunk).await.unwrap();
        assert_eq!(&chunk[..n], early);
        assert!(!reader.bounds.between_messages(), "a frame was begun");
        let n = reader.read(&mut chunk).await.unwrap();
        assert_eq!(&chunk[..n], late);
        assert!(reader.bounds.between_messages());
    }

    #[tokio::test]
    async fn the_answer_to_a_close_frame_arrives_whole_before_the_end_of_the_connection() {
        // Over a real socket: the answer goes out with MSG_MORE, and only
        // the close that follows pushes it out, with the FIN.
        let (client, server) = socket_pair();
        client.set_nonblocking(true).unwrap();
        server.set_nonblocking(true).unwrap();
        let mut client = tokio::net::TcpStream::from_std(client).unwrap();
        let server = tokio::net::TcpStream::from_std(server).unwrap();
        // A masked close frame with the code 1000.
        let close = [0x88, 0x82, 1, 2, 3, 4, 0x03 ^ 1, 0xe8 ^ 2];
        client.write_all(&close).await.unwrap();
        let mut reader = SpillReader::new(server, Vec::new(), None);
        let mut got = [0u8; 8];
        reader.read_exact(&mut got).await.unwrap();
        assert_eq!(got, close);
        assert!(reader.bounds.close_taken());
        let answer = pattern(3000);
        reader.write_all(&answer).await.unwrap();
        reader.flush().await.unwrap();
        drop(reader);
        let mut received = Vec::new();
        let read = tokio::time::timeout(std::time::Duration::from_secs(5), client.read_to_end(&mut received));
        read.await.expect("the connection ends").unwrap();
        assert_eq!(received, answer);
    }

    #[tokio::test]
    async fn writes_pass_through() {
        let (mut peer, ours) = tokio::io::duplex(1024);
        let mut reader = SpillReader::new(ours, Vec::new(), None);
        reader.write_all(b"out").await.unwrap();
        reader.flush().await.unwrap();
        let mut got = [0u8; 3];
        peer.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"out");
    }
}
