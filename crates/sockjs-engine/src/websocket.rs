//! The WebSocket driver: one tokio task per connection, running the core's
//! session over tungstenite (through `ws_stream`).
//!
//! Two byte pipes lead here. An adopted socket: Node hands over a plain TCP
//! connection's file descriptor, which is duplicated and owned by tokio from
//! the 101 answer on (Node's socket is then destroyed). A bridged socket (TLS,
//! or any stream without a descriptor): bytes come from JavaScript through a
//! channel and go back to it as events (`bridge`). Both run `serve`, so there
//! is one WebSocket implementation.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::num::NonZeroU64;
use std::os::fd::{BorrowedFd, RawFd};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use std::panic::AssertUnwindSafe;

use futures_util::{FutureExt, SinkExt, StreamExt};
use sockjs_core::answer::{self, Request, UpgradeHeaders};
use sockjs_core::decode::{self, PayloadError};
use sockjs_core::receiver::Framing;
use sockjs_core::session::{Output, Session, SessionConfig};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tungstenite::error::{CapacityError, ProtocolError};
use tungstenite::handshake::derive_accept_key;
use tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tungstenite::protocol::frame::Frame;
use tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tungstenite::{Error as WsError, Message};

use crate::bridge::{BridgeStream, PipeLevel};
use crate::direct::SocketOut;
use crate::spill::{SocketEnding, SpillReader};
use crate::ws_stream::WsStream;
use crate::{events, Carrier, Conn, ConnId, ConnState, Engine, Event, TaskWake};

/// How long a peer has at most to answer a heartbeat ping, in ms
/// (sockjs-node's value); a shorter heartbeat_delay shortens it to one
/// heartbeat.
const PONG_TIMEOUT_MS: u64 = 10_000;
/// How long a closing handshake may take before the socket is dropped.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// tungstenite's read buffer, kept for the connection's whole life: small,
/// for servers with many idle sessions (tungstenite's default is 128 KiB,
/// allocated eagerly, and zero-filled before every read). It bounds only
/// how much tungstenite takes per call: `SpillReader` reads the socket in
/// large chunks, so a large message still costs few system calls. 128, not
/// less: at 64 the 1000x4 echo of small messages measured ~5% more CPU.
const READ_BUFFER: usize = 128;
/// Bytes gathered before a write reaches the socket; `flush` always writes.
const WRITE_BUFFER: usize = 16 * 1024;
/// The receiver id of a WebSocket session's only receiver.
const RECEIVER: u64 = 0;

/// Which WebSocket endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `/<server>/<session>/websocket`, SockJS framing.
    Sockjs,
    /// `<prefix>/websocket`, bare messages.
    Raw,
}

/// An adopted connection: its session, and its peer's and its own
/// addresses (asked of the socket while the caller's still exists, so the
/// caller need not ask them of its own).
pub struct Adopted {
    pub id: ConnId,
    pub addresses: Option<(SocketAddr, SocketAddr)>,
}

/// What a WebSocket connection starts from.
pub struct Start {
    pub install: u32,
    pub kind: Kind,
    /// The client's `Sec-WebSocket-Key`.
    pub key: String,
    /// Bytes Node read past the request head.
    pub head: Vec<u8>,
}

impl Engine {
    /// Check an `'upgrade'` request: the endpoint kind when it may proceed,
    /// else the complete HTTP answer to write on the socket.
    pub fn check_upgrade(&self, install: u32, req: &Request, h: &UpgradeHeaders) -> Result<Kind, Vec<u8>> {
        let Some(opts) = self.options(install) else {
            return Err(answer::raw_response(&answer::not_found()));
        };
        let kind = match answer::upgrade(req, h, &opts) {
            Ok(true) => Kind::Raw,
            Ok(false) => Kind::Sockjs,
            Err(mut refusal) => {
                if let Some((severity, line)) = refusal.log.take() {
                    self.log(severity, line);
                }
                return Err(answer::raw_response(&refusal));
            }
        };
        if self.session_count() >= opts.max_sessions {
            self.log(
                "error",
                format!("Refused a WebSocket: max_sessions ({}) reached", opts.max_sessions),
            );
            return Err(answer::raw_response(&answer::too_many_sessions()));
        }
        Ok(kind)
    }

    /// Take over a plain TCP connection by duplicating `fd`; the caller then
    /// destroys its own socket. `fd` must be non-blocking, as every socket
    /// of libuv's is: the duplicate shares that flag (it belongs to the open
    /// file, not to the descriptor), so it is not set again. `nodelay_set`:
    /// the caller's socket has TCP_NODELAY already (Node's `http.Server`
    /// sets it on every connection it accepts by default). Each system
    /// call saved is ~0.35 us of every WebSocket's opening.
    pub fn adopt_websocket(self: &Arc<Self>, start: Start, fd: RawFd, nodelay_set: bool) -> io::Result<Adopted> {
        // SAFETY: the caller guarantees `fd` is an open socket for the
        // duration of this call; it is only borrowed to duplicate it.
        let stream = unsafe { duplicate_socket(fd, nodelay_set) }?;
        let addresses = stream.peer_addr().and_then(|peer| Ok((peer, stream.local_addr()?)));
        let direct = crate::runtime::one_thread().then(SocketOut::new);
        let conn = self.new_websocket_conn(&start, direct);
        let id = conn.id;
        crate::runtime::get().spawn(self.clone().guarded(
            conn.clone(),
            serve(self.clone(), conn, Box::new(Opening { start, stream })),
        ));
        Ok(Adopted {
            id,
            addresses: addresses.ok(),
        })
    }

    /// Run a WebSocket over bytes bridged from a JavaScript socket: feed it
    /// with `pipe_feed`, and write out its `SocketWrite` events.
    pub fn pipe_websocket(self: &Arc<Self>, start: Start) -> ConnId {
        let conn = self.new_websocket_conn(&start, None);
        let id = conn.id;
        let (feed_tx, feed_rx) = mpsc::unbounded_channel();
        let level = Arc::new(PipeLevel::default());
        self.pipes.lock().insert(id, (feed_tx, level.clone()));
        let stream = BridgeStream::new(self.clone(), id, feed_rx, level);
        crate::runtime::get().spawn(self.clone().guarded(
            conn.clone(),
            serve(self.clone(), conn, Box::new(Opening { start, stream })),
        ));
        id
    }

    /// Bytes from a bridged socket; `None` when it ended. Returns whether
    /// JavaScript may go on feeding: `false` asks it to pause its socket
    /// until a `SocketResume` (see `bridge`).
    pub fn pipe_feed(&self, id: ConnId, bytes: Option<Vec<u8>>) -> bool {
        let pipes = self.pipes.lock();
        let Some((tx, level)) = pipes.get(&id) else {
            return true;
        };
        let Some(bytes) = bytes else {
            // The socket is gone: it is full no more, and a write waiting
            // for it to drain must go on (and the task find the end).
            level.set_blocked(false);
            let _ = tx.send(None);
            return true;
        };
        let n = bytes.len();
        if tx.send(Some(bytes)).is_err() {
            return true;
        }
        level.fed(n)
    }

    /// A bridged socket's `write` returned false (`true`), or it drained
    /// (`false`): the WebSocket writes nothing more to it until it drains.
    pub fn pipe_blocked(&self, id: ConnId, blocked: bool) {
        if let Some((_, level)) = self.pipes.lock().get(&id) {
            level.set_blocked(blocked);
        }
    }

    /// A new session, already open: the application hears of it on this
    /// thread's next tick and may write at once; the task sends the open
    /// frame right after the 101 answer.
    fn new_websocket_conn(&self, start: &Start, direct: Option<Arc<SocketOut>>) -> Arc<Conn> {
        let config = self
            .options(start.install)
            .map(|o| o.session)
            .unwrap_or(SessionConfig::SOCKJS_NODE);
        let now = self.clock.now();
        let mut session = Session::new(config, now);
        let framing = if start.kind == Kind::Raw {
            Framing::RawWebSocket
        } else {
            Framing::WebSocket
        };
        session.attach(now, RECEIVER, framing);
        self.new_conn(
            start.install,
            Carrier::WebSocket {
                wake: TaskWake::default(),
                direct,
            },
            session,
        )
    }

    /// Run a connection's task so that a panic in it becomes a log line and
    /// a closed session, never a lost one.
    ///
    /// Not an `async fn`: one would keep the task's future twice (as its
    /// argument and inside `catch_unwind`), doubling every connection's
    /// task allocation.
    fn guarded(self: Arc<Self>, conn: Arc<Conn>, task: impl Future<Output = ()>) -> impl Future<Output = ()> {
        AssertUnwindSafe(task).catch_unwind().map(move |outcome| {
            if let Err(panic) = outcome {
                let what = panic_message(&panic);
                self.finish(&conn, Some(format!("Internal error in a WebSocket session: {what}")));
            }
            conn.closed_out.store(true, Ordering::Release);
        })
    }

    /// The connection is over: close the session, forget it and tell the
    /// application, once however often it is called.
    fn finish(&self, conn: &Conn, log: Option<String>) {
        if let Some(line) = log {
            self.log("error", line);
        }
        if !self.registry.lock().conns.contains_key(&conn.id) {
            return;
        }
        {
            let mut st = conn.state.lock();
            st.session.terminate(1006, "Connection lost");
            while st.session.poll_output().is_some() {}
        }
        self.pipes.lock().remove(&conn.id);
        self.forget(conn);
        self.events.push(Event::Close(conn.id));
    }
}

/// The text of a caught panic.
pub(crate) fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned())
}

fn close_code_for(error: &WsError) -> (u16, &'static str) {
    match error {
        WsError::Utf8(_) => (1007, "Invalid UTF-8"),
        WsError::Capacity(CapacityError::MessageTooLong { .. }) => (1009, "Message too big"),
        WsError::Capacity(_) => (1009, "Message too big"),
        WsError::Protocol(ProtocolError::InvalidCloseSequence) => (1002, "Protocol error"),
        _ => (1002, "Protocol error"),
    }
}

/// A new connection's task and what it starts from, in one box: a task's
/// arguments stay in its future for the connection's whole life.
struct Opening<S> {
    start: Start,
    stream: S,
}

/// What a connection's task turns into the stream it serves, on the
/// runtime's thread. An adopted socket registers with tokio's reactor there:
/// registered from JavaScript's thread, the fresh socket (writable at once)
/// would wake the runtime's thread once for nothing, a context switch when
/// both share a core, before the spawn wakes it again.
trait IntoStream {
    type Stream: AsyncRead + AsyncWrite + SocketEnding + Unpin;
    fn into_stream(self) -> io::Result<Self::Stream>;
    /// The descriptor JavaScript's thread may write to, if any.
    fn raw_fd(_stream: &Self::Stream) -> Option<RawFd> {
        None
    }
}

impl IntoStream for std::net::TcpStream {
    type Stream = tokio::net::TcpStream;
    fn into_stream(self) -> io::Result<tokio::net::TcpStream> {
        tokio::net::TcpStream::from_std(self)
    }
    fn raw_fd(stream: &tokio::net::TcpStream) -> Option<RawFd> {
        use std::os::fd::AsRawFd;
        Some(stream.as_raw_fd())
    }
}

impl IntoStream for BridgeStream {
    type Stream = BridgeStream;
    fn into_stream(self) -> io::Result<BridgeStream> {
        Ok(self)
    }
}

/// A socket of our own on `fd`'s connection, with TCP_NODELAY (see
/// `adopt_websocket`).
///
/// # Safety
/// `fd` is an open socket for the duration of the call.
unsafe fn duplicate_socket(fd: RawFd, nodelay_set: bool) -> io::Result<std::net::TcpStream> {
    let stream = std::net::TcpStream::from(BorrowedFd::borrow_raw(fd).try_clone_to_owned()?);
    if !nodelay_set {
        let _ = stream.set_nodelay(true);
    }
    Ok(stream)
}

/// Take a box's contents and free the box now. Moving out with `*b` would
/// keep the allocation until the box's variable goes out of scope, which
/// in a task is the end of the connection.
#[allow(clippy::boxed_local)] // taking the box is the point
fn unbox<T>(b: Box<T>) -> T {
    *b
}

/// What one turn of a connection's loop found that needs doing, awaits
/// included. The handling of a wake-up does not await: whatever it holds
/// (the message just read) would be kept in the task's future, beside the
/// loop's state, for the connection's whole life.
enum Turn {
    /// Go round again.
    Again,
    /// Go round again, but read nothing more until JavaScript has taken
    /// this batch of client messages (see `events::INBOUND_LIMIT`).
    Hold(u32),
    /// The connection is over: the peer went away, or the network failed.
    Over,
    /// A protocol violation: send this close frame; no handshake is awaited.
    Fail(u16, &'static str),
    /// Close with this code and wait for the peer's close.
    Close(u16, &'static str),
    /// The peer closed and tungstenite answered: read until the end.
    PeerClosed,
    /// A heartbeat is due: give back grown buffers, then ping.
    Heartbeat,
    /// The peer did not answer a ping in time: the session is closing.
    NoPong,
}

/// What a connection's loop is waiting for, beside the client and its
/// own wake-ups.
#[derive(Default)]
struct Flow {
    /// Reading waits for JavaScript to take batch `batch` of messages
    /// (two fields, not an `Option`: 8 bytes fewer in every task).
    held: bool,
    batch: u32,
    /// What was written is not all on the socket yet; meanwhile the loop
    /// goes on reading, and takes nothing more from the session.
    flushing: bool,
    /// When a flush that waits is given up (engine ms).
    give_up_at: Option<NonZeroU64>,
}

/// Wait for what comes first: the pending flush done (or given up), the
/// client (unless reading is held, then JavaScript taking the batch), or a
/// wake-up of the task.
fn next_wake<S>(cx: &mut Context<'_>, engine: &Engine, conn: &Conn, ws: &mut WsStream<S>, flow: &mut Flow) -> Poll<Woke>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    if flow.flushing {
        if let Poll::Ready(flushed) = ws.poll_flush_unpin(cx) {
            return Poll::Ready(Woke::Flushed(flushed));
        }
        if gives_up(engine, conn, &mut flow.give_up_at) {
            return Poll::Ready(Woke::GiveUp);
        }
    }
    if !flow.held {
        if let Poll::Ready(incoming) = ws.poll_next_unpin(cx) {
            return Poll::Ready(Woke::Incoming(incoming));
        }
    } else if engine.events.poll_taken(cx, flow.batch).is_ready() {
        return Poll::Ready(Woke::Taken);
    }
    conn.task_wake().poll_woken(cx).map(|()| Woke::Task)
}

/// What woke a connection's task.
enum Woke {
    /// The flush that waited for the socket is done.
    Flushed(Result<(), WsError>),
    /// The flush waited too long (see `gives_up`).
    GiveUp,
    /// The client sent something, or its side ended.
    Incoming(Option<Result<Message, WsError>>),
    /// JavaScript took the batch that reading waited for.
    Taken,
    /// The task was woken: the session has output, or a deadline came.
    Task,
}

/// A connection's task.
///
/// An async block rather than an async fn, whose future would keep each
/// argument twice (as passed, and moved into the body). The size of this
/// future is each connection's cost while idle: it is as large as its
/// largest await, plus every local that lives across one. Rare, large
/// awaits (the handshake, the closing ones) are boxed.
#[allow(clippy::manual_async_fn)] // see above
fn serve<T: IntoStream>(engine: Arc<Engine>, conn: Arc<Conn>, opening: Box<Opening<T>>) -> impl Future<Output = ()> {
    async move {
        let Opening {
            start:
                Start {
                    install,
                    kind,
                    key,
                    head,
                },
            stream,
        } = unbox(opening);
        let max = max_message(&engine, install);
        let (mut ws, mut ending) = match Box::pin(open(stream, &conn, key, head, max)).await {
            Ok(opened) => opened,
            Err(e) => {
                engine.finish(&conn, Some(format!("WebSocket could not start: {e}")));
                return;
            }
        };

        // When the peer must have answered the last ping (engine ms).
        // (`NonZeroU64`: 8 bytes in every task, not 16.)
        let mut pong_deadline: Option<NonZeroU64> = None;
        let mut flow = Flow::default();
        let outcome: Result<(), String> = loop {
            if !flow.flushing {
                // Carry out what the session asked for.
                let (writes, ends) = take_outputs(&conn);
                ending |= ends;
                match write_now(&engine, &conn, &mut ws, writes.into_iter().map(Message::text)) {
                    Ok(done) => flow.flushing = !done,
                    Err(e) => break Err(format!("WebSocket write failed: {e}")),
                }
            }
            if ending && !flow.flushing {
                if conn.state.lock().owed_nothing {
                    // No close handshake with a peer that reads nothing.
                    drop_connection(&engine, &conn, ws);
                    return;
                }
                let (code, reason) = websocket_close(kind, conn.state.lock().session.close_status());
                engine.finish(&conn, None);
                Box::pin(close_gracefully(&conn, &mut ws, code, &reason)).await;
                return;
            }

            schedule_deadline(&engine, &conn, pong_deadline);
            let woke = {
                let (engine, conn, ws, flow) = (&*engine, &*conn, &mut ws, &mut flow);
                std::future::poll_fn(move |cx| next_wake(cx, engine, conn, ws, flow)).await
            };
            let turn = match woke {
                Woke::Flushed(Ok(())) => {
                    flow.flushing = false;
                    flow.give_up_at = None;
                    all_written(&engine, &conn);
                    // What was written meanwhile, framed to be taken now.
                    conn.state.lock().session.flush(engine.clock.now());
                    Turn::Again
                }
                Woke::Flushed(Err(e)) => break Err(format!("WebSocket write failed: {e}")),
                Woke::GiveUp => {
                    drop_connection(&engine, &conn, ws);
                    return;
                }
                Woke::Incoming(incoming) => {
                    on_incoming(&engine, &conn, kind, ws.max_message(), incoming, &mut pong_deadline)
                }
                Woke::Taken => {
                    flow.held = false;
                    Turn::Again
                }
                Woke::Task => {
                    let timer_due = {
                        let mut st = conn.state.lock();
                        // Frame what was written, to take it at the top. Not
                        // while a flush waits: nothing is taken then, and the
                        // queue is what `buffered` counts.
                        if !flow.flushing {
                            st.session.flush(engine.clock.now());
                        }
                        std::mem::take(&mut st.timer_due)
                    };
                    if timer_due {
                        // The pong may wait behind what the client has not
                        // read yet: while it reads (slowly), or is held back.
                        let behind = flow.held || ws.get_ref().progressed(flow.flushing);
                        on_timer(&engine, &conn, &mut pong_deadline, behind)
                    } else {
                        Turn::Again
                    }
                }
            };
            match turn {
                Turn::Again => {}
                Turn::Hold(batch) => {
                    flow.held = true;
                    flow.batch = batch;
                }
                Turn::Over => break Ok(()),
                Turn::Fail(code, reason) => {
                    Box::pin(fail_connection(&mut ws, code, reason)).await;
                    return;
                }
                Turn::Close(code, reason) => {
                    Box::pin(close_gracefully(&conn, &mut ws, code, reason)).await;
                    return;
                }
                Turn::PeerClosed => {
                    Box::pin(drain_until_closed(&mut ws)).await;
                    return;
                }
                Turn::NoPong if flow.flushing => {
                    // Its socket full and no answer: the peer is gone, or
                    // reads nothing; a close frame would wait behind the rest.
                    engine.log("info", "WebSocket dropped: no pong, its socket full".to_owned());
                    drop_connection(&engine, &conn, ws);
                    return;
                }
                Turn::NoPong => engine.log(
                    "info",
                    format!(
                        "WebSocket closed with 3000: no answer to a ping within {} ms",
                        pong_timeout(&engine, &conn)
                    ),
                ),
                Turn::Heartbeat => {
                    // tungstenite keeps buffers as large as the largest frame
                    // it read or wrote. A quiet moment gives that memory back:
                    // once everything written was flushed and everything read
                    // made whole messages, a fresh stream over the same socket
                    // loses nothing. (Not after every large message: a busy
                    // connection reuses them.)
                    if !flow.flushing && ws.get_ref().buffers_grown_and_idle() {
                        ws = afresh(ws, max_message(&engine, install));
                    }
                    // Will the client have taken anything of what the ping
                    // waits behind by the pong deadline? (Its socket taking
                    // bytes counts from after the ping: writing it proves
                    // nothing.)
                    ws.get_mut().note_backlog();
                    let ping = std::iter::once(Message::Ping(Default::default()));
                    match write_now(&engine, &conn, &mut ws, ping) {
                        Ok(done) => flow.flushing |= !done,
                        Err(_) => break Ok(()),
                    }
                    ws.get_mut().watch_progress();
                }
            }
        };
        engine.finish(&conn, outcome.err());
    }
}

/// The largest message a connection takes (its install's `max_message_size`).
fn max_message(engine: &Engine, install: u32) -> usize {
    engine.options(install).map_or(64 << 20, |o| o.max_body).max(1)
}

/// Make sure the engine's timer task wakes the connection by its next
/// deadline: the session's heartbeat or the pong deadline, whichever comes
/// first. One heap for every connection's deadlines, not a tokio timer
/// each: an idle connection is 112 bytes smaller (tokio's `Sleep`), and
/// a deadline that moves later costs nothing (its stale entry wakes the
/// task, which finds nothing due and schedules the new one).
fn schedule_deadline(engine: &Engine, conn: &Conn, pong_deadline: Option<NonZeroU64>) {
    let mut st = conn.state.lock();
    let next = match (st.session.deadline(), pong_deadline.map(NonZeroU64::get)) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    if let Some(at) = next {
        engine.schedule_by(conn.id, &mut st, at);
    }
}

/// What the client sent, or what became of its side of the connection.
fn on_incoming(
    engine: &Engine,
    conn: &Conn,
    kind: Kind,
    max_message: usize,
    incoming: Option<Result<Message, WsError>>,
    pong_deadline: &mut Option<NonZeroU64>,
) -> Turn {
    let message = match incoming {
        None | Some(Err(WsError::ConnectionClosed | WsError::AlreadyClosed | WsError::Io(_))) => return Turn::Over,
        Some(Err(e)) => {
            // A protocol violation fails the connection: the close frame
            // goes out, no handshake is awaited.
            let (code, reason) = close_code_for(&e);
            engine.finish(conn, Some(format!("WebSocket closed with {code}: {e}")));
            return Turn::Fail(code, reason);
        }
        Some(Ok(message)) => message,
    };
    *pong_deadline = None;
    let delivered = match message {
        Message::Text(text) => deliver(engine, conn, kind, max_message, text.as_str()),
        Message::Binary(bytes) => deliver(engine, conn, kind, max_message, &String::from_utf8_lossy(&bytes)),
        Message::Close(_) => {
            // tungstenite answers the close.
            engine.finish(conn, None);
            return Turn::PeerClosed;
        }
        Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => Ok(None),
    };
    match delivered {
        Ok(None) => Turn::Again,
        Ok(Some(batch)) => Turn::Hold(batch),
        Err((code, reason)) => {
            engine.finish(conn, None);
            Turn::Close(code, reason)
        }
    }
}

/// The timer task woke the connection: the peer may have missed its pong
/// deadline, or a heartbeat may be due (or neither: the deadline moved).
/// An unanswered ping is forgiven when the pong may be waiting behind
/// bytes still on their way (`behind`): the client's messages that
/// reading is held from, or ours that the client is still taking.
fn on_timer(engine: &Engine, conn: &Conn, pong_deadline: &mut Option<NonZeroU64>, behind: bool) -> Turn {
    let now = engine.clock.now();
    let mut st = conn.state.lock();
    if pong_deadline.is_some_and(|at| at.get() <= now) {
        *pong_deadline = None;
        if behind {
            return Turn::Again;
        }
        if !st.session.close(now, 3000, "No response from heartbeat") {
            st.session.terminate(3000, "No response from heartbeat");
        }
        return Turn::NoPong;
    }
    let heartbeat_due = st.session.deadline().is_some_and(|at| at <= now);
    if !heartbeat_due {
        return Turn::Again;
    }
    // The only timer of an attached session is its heartbeat.
    st.session.handle_timeout(now);
    if pong_deadline.is_none() {
        *pong_deadline = Some(deadline(now, pong_timeout(engine, conn)));
    }
    Turn::Heartbeat
}

/// The deadline `ms` after `now` (engine ms): never 0, so that an
/// `Option` of it takes 8 bytes of the task, not 16.
fn deadline(now: u64, ms: u64) -> NonZeroU64 {
    NonZeroU64::new(now.saturating_add(ms.max(1))).unwrap_or(NonZeroU64::MAX)
}

/// How long the peer has to answer a ping, in ms: sockjs-node's 10 s, or
/// one heartbeat if that is shorter.
fn pong_timeout(engine: &Engine, conn: &Conn) -> u64 {
    engine
        .options(conn.install)
        .map_or(PONG_TIMEOUT_MS, |o| o.session.heartbeat_ms.min(PONG_TIMEOUT_MS))
}

/// Write messages and flush them, as far as the socket takes them now:
/// `Ok(true)` when it took everything, `Ok(false)` when the rest waits in
/// tungstenite's buffer for the loop to flush (while it goes on reading,
/// so that a client whose side is full is still heard). Messages go into
/// the buffer at once, not one by one as the socket takes them: the loop
/// takes no more from the session until they are out, so the buffer holds
/// at most one turn's output.
fn write_now<S, I>(engine: &Engine, conn: &Conn, ws: &mut WsStream<S>, messages: I) -> Result<bool, WsError>
where
    S: AsyncRead + AsyncWrite + Unpin,
    I: Iterator<Item = Message>,
{
    for message in messages {
        ws.feed_now(message)?;
    }
    let done = ws.flush_now()?;
    if done {
        all_written(engine, conn);
    }
    Ok(done)
}

/// The socket took everything written: nothing of ours is in flight.
fn all_written(engine: &Engine, conn: &Conn) {
    let mut st = conn.state.lock();
    st.in_flight = 0;
    st.task_holds_writes = false;
    if let Some(drain) = st.drained(conn.id) {
        engine.events.push(drain);
    }
}

/// Whether a flush the socket is not taking is to be given up now; if not,
/// the task is woken by the time it is. While the session is open the
/// flush waits as long as it takes: the loop goes on reading, so a peer
/// that reads nothing but sends stays, and one that does neither misses
/// its pong (`Turn::NoPong`). Once the session is closed, the flush has
/// `CLOSE_TIMEOUT` more, or nothing when it was closed for going over
/// `max_buffered_bytes`: a peer that stopped reading must not keep a
/// closed session's connection, and what its task holds, for ever.
fn gives_up(engine: &Engine, conn: &Conn, give_up_at: &mut Option<NonZeroU64>) -> bool {
    let mut st = conn.state.lock();
    if st.session.accepts_messages() {
        return false;
    }
    if st.owed_nothing {
        return true;
    }
    let now = engine.clock.now();
    let at = give_up_at
        .get_or_insert_with(|| deadline(now, CLOSE_TIMEOUT.as_millis() as u64))
        .get();
    if now >= at {
        drop(st);
        engine.log(
            "info",
            format!("WebSocket dropped: its peer read nothing for {CLOSE_TIMEOUT:?} after the session closed"),
        );
        return true;
    }
    engine.schedule_by(conn.id, &mut st, at);
    false
}

/// Drop a connection whose peer is owed nothing more, unsent bytes and all.
fn drop_connection<S>(engine: &Engine, conn: &Conn, ws: WsStream<SpillReader<S>>)
where
    S: AsyncRead + AsyncWrite + SocketEnding + Unpin,
{
    engine.finish(conn, None);
    ws.into_inner().abort();
}

/// tungstenite's settings for one connection.
fn config(max_message: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .max_message_size(Some(max_message))
        .max_frame_size(Some(max_message))
}

/// The same connection in a new WebSocket with small buffers. Only between
/// messages, with nothing left to write: the old one's state is then all
/// in its buffers' capacity.
fn afresh<S>(ws: WsStream<SpillReader<S>>, max_message: usize) -> WsStream<SpillReader<S>>
where
    S: AsyncRead + AsyncWrite + SocketEnding + Unpin,
{
    let mut stream = ws.into_inner();
    stream.forget_large();
    WsStream::new(stream, config(max_message))
}

/// Answer the client's handshake with 101 and start the WebSocket, resuming
/// with the bytes Node read past the request. What the session has to send
/// already (the SockJS open frame) goes out in the same write as the 101:
/// one segment for the client to take in, not two. True in the result: the
/// session has also ended already, and the connection is to be closed.
async fn open<T: IntoStream>(
    stream: T,
    conn: &Conn,
    key: String,
    head: Vec<u8>,
    max_message: usize,
) -> io::Result<(WsStream<SpillReader<T::Stream>>, bool)> {
    let mut stream = stream.into_stream()?;
    let accept = derive_accept_key(key.trim().as_bytes());
    let mut bytes = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
    )
    .into_bytes();
    let (texts, ending) = take_outputs(conn);
    // Ahead of the stream it starts next.
    append_text_frames(&mut bytes, texts);
    stream.write_all(&bytes).await?;
    // From here on, JavaScript's thread may write to the socket too.
    let direct = conn.direct().zip(T::raw_fd(&stream)).map(|(direct, fd)| {
        direct.open(fd);
        direct.clone()
    });
    let stream = SpillReader::new(stream, head, direct);
    let ws = WsStream::new(stream, config(max_message));
    Ok((ws, ending))
}

/// Hand a client frame's messages to the application: `Ok(Some(batch))`
/// when the messages waiting for it, in all or this connection's, are past
/// their limit: read nothing more until JavaScript has taken that batch.
/// `Err` carries the close code for a frame the SockJS transport cannot
/// decode, or whose messages would take more than `max_message` (many tiny
/// ones: see `decode::MESSAGE_COST`).
fn deliver(
    engine: &Engine,
    conn: &Conn,
    kind: Kind,
    max_message: usize,
    text: &str,
) -> Result<Option<u32>, (u16, &'static str)> {
    let messages = match kind {
        Kind::Raw => vec![text.to_owned()],
        Kind::Sockjs => match decode::websocket_frame(text, max_message) {
            Ok(None) => return Ok(None),
            Ok(Some(messages)) => messages,
            Err(PayloadError::TooLarge) => {
                engine.log(
                    "error",
                    format!(
                        "WebSocket closed with 1009: a frame's messages take over max_message_size ({} bytes each beyond its text)",
                        decode::MESSAGE_COST
                    ),
                );
                return Err((1009, "Message too big"));
            }
            // As sockjs-node: a WebSocket close with 3000, no SockJS frame
            // (the reference suite expects the connection to end at once).
            Err(_) => return Err((3000, "Broken framing.")),
        },
    };
    // Counted against the batch gathered now; if JavaScript takes it in
    // between, the share merely starts afresh a message late.
    let batch = engine.events.batch();
    let within_own = {
        let mut st = conn.state.lock();
        if !st.session.accepts_messages() {
            return Ok(None);
        }
        st.inbound.add(batch, messages.iter().map(|m| events::weight(m)).sum())
    };
    let within_all = engine
        .events
        .push_all(messages.into_iter().map(|m| Event::Message(conn.id, m)));
    Ok((!within_own || !within_all).then_some(batch))
}

/// The session's outputs for the task to write: texts to send, and whether
/// the session ended its receiver (the WebSocket is then closed, after the
/// texts).
fn take_outputs(conn: &Conn) -> (Vec<String>, bool) {
    let mut st = conn.state.lock();
    let (writes, ending) = outputs(&mut st);
    st.in_flight += writes.iter().map(String::len).sum::<usize>();
    st.task_holds_writes = !writes.is_empty();
    (writes, ending || std::mem::take(&mut st.end_taken))
}

fn outputs(st: &mut ConnState) -> (Vec<String>, bool) {
    let mut writes = Vec::new();
    let mut ending = false;
    while let Some(output) = st.session.poll_output() {
        match output {
            Output::Write(_, text) => writes.push(text),
            Output::End(_) => ending = true,
            // JavaScript emitted 'connection' when it handed the socket over.
            Output::Opened | Output::Closed => {}
        }
    }
    (writes, ending)
}

/// Append a text frame for each of `texts`. A server's frame is unmasked
/// and needs no state of the WebSocket: tungstenite's own framing, outside
/// its stream.
fn append_text_frames(out: &mut Vec<u8>, texts: Vec<String>) {
    for text in texts {
        Frame::message(text, OpCode::Data(Data::Text), true)
            .format(out)
            .expect("formatting into a Vec cannot fail");
    }
}

/// On JavaScript's thread, at the end of a turn of its event loop in which
/// the application wrote to the session: write the frames to the socket
/// now, if that is safe (see `direct`). False when the task must be woken
/// (to write them, or what the socket did not take of them). Clears the
/// session's dirty mark; `now` is the drain's reading of the clock.
pub(crate) fn write_directly(engine: &Engine, conn: &Conn, direct: &SocketOut, now: u64) -> bool {
    let mut st = conn.state.lock();
    st.dirty = false;
    if !st.session.accepts_messages() || st.task_holds_writes {
        return false;
    }
    let Some(claim) = direct.claim() else { return false };
    st.session.flush(now);
    let (texts, ending) = outputs(&mut st);
    let mut bytes = Vec::with_capacity(texts.iter().map(|t| t.len() + 10).sum());
    append_text_frames(&mut bytes, texts);
    let left = claim.send(bytes);
    st.in_flight += left;
    if let Some(drain) = st.drained(conn.id) {
        engine.events.push(drain);
    }
    // (An open session queues no `End`; the task closes if one came.)
    st.end_taken |= ending;
    left == 0 && !ending
}

/// The WebSocket close code when a session ends. A raw WebSocket closes with
/// the application's code; the SockJS transport has already sent its
/// `c[code,"reason"]` frame and closes normally.
fn websocket_close(kind: Kind, status: Option<(u16, &str)>) -> (u16, String) {
    match (kind, status) {
        (Kind::Raw, Some((code, reason))) => (code, reason.to_owned()),
        _ => (1000, "Normal closure".to_owned()),
    }
}

/// Close with `code` and wait (bounded) for the peer's close and the end of
/// the connection.
async fn close_gracefully<S>(conn: &Conn, ws: &mut WsStream<S>, code: u16, reason: &str)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let sent = fail_connection(ws, code, reason).await;
    conn.closed_out.store(true, Ordering::Release);
    if sent {
        drain_until_closed(ws).await;
    }
}

/// Send the close frame (bounded in time, a peer may have stopped reading)
/// without waiting for an answer. True if it went out.
async fn fail_connection<S>(ws: &mut WsStream<S>, code: u16, reason: &str) -> bool
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let frame = CloseFrame {
        code: CloseCode::from(code),
        reason: reason.to_owned().into(),
    };
    matches!(
        tokio::time::timeout(CLOSE_TIMEOUT, ws.close(Some(frame))).await,
        Ok(Ok(()))
    )
}

async fn drain_until_closed<S>(ws: &mut WsStream<S>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, async { while let Some(Ok(_)) = ws.next().await {} }).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The size of what a function returns, without calling it.
    fn returned_size<A, B, C, R>(_: fn(A, B, C) -> R) -> usize {
        std::mem::size_of::<R>()
    }

    #[test]
    fn a_duplicate_shares_non_blocking_mode_and_gets_nodelay_once() {
        use crate::test_support::socket_pair;
        use std::io::Read;
        use std::os::fd::AsRawFd;
        let (_client, server) = socket_pair();
        server.set_nonblocking(true).unwrap();
        assert!(!server.nodelay().unwrap());
        let mut ours = unsafe { duplicate_socket(server.as_raw_fd(), false) }.unwrap();
        // Not set on the duplicate, and yet a read with nothing to read
        // does not block: the flag belongs to the open file.
        let read = ours.read(&mut [0u8; 8]);
        assert_eq!(read.unwrap_err().kind(), io::ErrorKind::WouldBlock);
        // A socket option: set through the duplicate, seen on the original.
        assert!(server.nodelay().unwrap());

        let (_client, server) = socket_pair();
        unsafe { duplicate_socket(server.as_raw_fd(), true) }.unwrap();
        assert!(!server.nodelay().unwrap(), "the caller said it was set: no call made");
    }

    #[test]
    fn an_adopted_connection_task_fits_in_640_bytes() {
        // tokio allocates a task as one cell aligned to 128 bytes on x86-64:
        // a 32 B header, the future with 40 B of bookkeeping around it, a
        // 48 B trailer. Past 520 B of future, every idle connection's cell
        // grows from 640 to 768 bytes.
        let size = returned_size(serve::<std::net::TcpStream>);
        assert!(size <= 520, "serve's future is {size} B");
    }
}
