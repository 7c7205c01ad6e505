//! The SockJS session state machine, sans I/O.
//!
//! A session outlives the requests that carry it: HTTP transports attach one
//! receiver at a time (a poll, a stream), a WebSocket attaches one for its
//! whole life. The driver feeds in what happened (`attach`, `send`, `close`,
//! `receiver_gone`, `handle_timeout`), always with the current time in
//! milliseconds, and then polls `poll_output` for what to do and
//! `deadline` for when to call back. Nothing here reads a clock or touches
//! a socket, so every behaviour is testable with literal times.
//!
//! Semantics follow sockjs-node 0.3.24: the open frame goes to the first
//! receiver and the application hears of the connection after it; a second
//! concurrent receiver gets `c[2010,"Another connection still open"]`; while
//! a receiver is attached a heartbeat `h` goes out every `heartbeat_ms`; a
//! session with no receiver for `disconnect_ms` is closed; a receiver that
//! aborts closes its session at once; after `close(code, reason)` every
//! receiver, now and later, gets the close frame.

use std::collections::VecDeque;

use std::sync::Arc;

use crate::frame;
use crate::quote::quote;
use crate::receiver::Framing;

/// A driver-chosen name for a receiver, so outputs can be routed to it.
pub type ReceiverId = u64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionConfig {
    pub heartbeat_ms: u64,
    pub disconnect_ms: u64,
    pub response_limit: usize,
}

impl SessionConfig {
    /// sockjs-node's defaults: `heartbeat_delay` 25 s, `disconnect_delay`
    /// 5 s, `response_limit` 128 KiB.
    pub const SOCKJS_NODE: SessionConfig = SessionConfig {
        heartbeat_ms: 25_000,
        disconnect_ms: 5_000,
        response_limit: 128 * 1024,
    };
}

/// `readyState`, with sockjs-node's numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadyState {
    Connecting = 0,
    Open = 1,
    Closing = 2,
    Closed = 3,
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Send these bytes (already wrapped for the receiver's transport).
    Write(ReceiverId, String),
    /// The receiver is finished: end the response or close the WebSocket.
    End(ReceiverId),
    /// The session is open: tell the application (`'connection'`).
    Opened,
    /// The session is over: tell the application (`'end'`, `'close'`).
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TimerKind {
    Disconnect,
    Heartbeat,
}

#[derive(Debug)]
struct Attached {
    id: ReceiverId,
    framing: Framing,
    /// Bytes the receiver may still carry, if its transport has a limit.
    room: Option<usize>,
}

/// A queued message, ready for its transport: quoted for SockJS framing,
/// as is for the raw WebSocket. A broadcast shares one copy among sessions.
#[derive(Debug, Clone)]
enum Item {
    Owned(String),
    Shared(Arc<str>),
}

impl Item {
    fn as_str(&self) -> &str {
        match self {
            Item::Owned(s) => s,
            Item::Shared(s) => s,
        }
    }
}

impl AsRef<str> for Item {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

/// Messages waiting for a receiver, and their size in bytes (what
/// backpressure is measured in).
#[derive(Debug, Default)]
struct Queue {
    items: Vec<Item>,
    bytes: usize,
}

impl Queue {
    fn push(&mut self, item: Item) {
        self.bytes += item.as_str().len();
        self.items.push(item);
    }

    fn take(&mut self) -> Vec<Item> {
        self.bytes = 0;
        std::mem::take(&mut self.items)
    }

    fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

/// One message for many sessions (a broadcast): quoted once for SockJS
/// framing, kept as is for raw WebSockets.
#[derive(Debug, Clone)]
pub struct Shared {
    raw: Arc<str>,
    quoted: Arc<str>,
}

impl Shared {
    pub fn new(message: &str) -> Shared {
        Shared {
            raw: Arc::from(message),
            quoted: Arc::from(quote(message)),
        }
    }
}

#[derive(Debug)]
pub struct Session {
    config: SessionConfig,
    state: ReadyState,
    queue: Queue,
    /// The code and reason given to `close` (or `terminate`): the SockJS
    /// close frame, and the raw WebSocket's close. Boxed: nearly every
    /// session lives without one, and each session's bytes count with
    /// 10^5 idle ones.
    close_status: Option<Box<(u16, String)>>,
    receiver: Option<Attached>,
    timer: Option<(u64, TimerKind)>,
    outputs: VecDeque<Output>,
}

impl Session {
    /// A new session waiting for its first receiver; it is dropped if none
    /// comes within `disconnect_ms`.
    pub fn new(config: SessionConfig, now: u64) -> Session {
        Session {
            config,
            state: ReadyState::Connecting,
            queue: Queue::default(),
            close_status: None,
            receiver: None,
            timer: Some((now + config.disconnect_ms, TimerKind::Disconnect)),
            outputs: VecDeque::new(),
        }
    }

    pub fn ready_state(&self) -> ReadyState {
        self.state
    }

    /// Whether messages from the client reach the application now.
    pub fn accepts_messages(&self) -> bool {
        self.state == ReadyState::Open
    }

    pub fn has_receiver(&self) -> bool {
        self.receiver.is_some()
    }

    /// The attached receiver's transport name, if any.
    pub fn protocol(&self) -> Option<&'static str> {
        self.receiver.as_ref().map(|r| r.framing.protocol())
    }

    /// The code and reason the application closed with, if it did.
    pub fn close_status(&self) -> Option<(u16, &str)> {
        self.close_status
            .as_deref()
            .map(|(code, reason)| (*code, reason.as_str()))
    }

    /// When `handle_timeout` must be called next.
    pub fn deadline(&self) -> Option<u64> {
        self.timer.map(|(at, _)| at)
    }

    /// The next thing the driver must do. Once none is left the queue's
    /// buffer is released: an idle session would otherwise keep it (128 B)
    /// for as long as it lives.
    pub fn poll_output(&mut self) -> Option<Output> {
        let output = self.outputs.pop_front();
        if output.is_none() && self.outputs.capacity() > 0 {
            self.outputs = VecDeque::new();
        }
        output
    }

    /// Bytes of messages waiting for a receiver, as they will go out
    /// (quoted for SockJS framing).
    pub fn queued_bytes(&self) -> usize {
        self.queue.bytes
    }

    /// A receiver arrives (a poll, a stream, a WebSocket).
    pub fn attach(&mut self, now: u64, id: ReceiverId, framing: Framing) {
        if self.receiver.is_some() || self.state == ReadyState::Closed {
            let frame = frame::close(2010, "Another connection still open");
            self.outputs.push_back(Output::Write(id, framing.encode(&frame)));
            self.outputs.push_back(Output::End(id));
            return;
        }
        self.timer = None;
        if self.state == ReadyState::Closing {
            // Closing: hand over what is left, then the close frame again.
            if !self.queue.is_empty() {
                let batch = frame::quoted_messages(&self.queue.take());
                self.outputs.push_back(Output::Write(id, framing.encode(&batch)));
            }
            let (code, reason) = self.close_status().expect("a closing session has its close status");
            let close = frame::close(code, reason);
            self.outputs.push_back(Output::Write(id, framing.encode(&close)));
            self.outputs.push_back(Output::End(id));
            self.arm(now, TimerKind::Disconnect);
            return;
        }
        let room = framing.limit(self.config.response_limit);
        self.receiver = Some(Attached { id, framing, room });
        if self.state == ReadyState::Connecting {
            self.state = ReadyState::Open;
            if !self.receiver.as_ref().is_some_and(|r| r.framing.is_raw()) {
                self.write_frame(now, frame::OPEN);
            }
            self.outputs.push_back(Output::Opened);
        }
        if self.receiver.is_some() {
            self.flush(now);
        }
        if self.receiver.is_some() {
            self.arm(now, TimerKind::Heartbeat);
        }
    }

    /// The application sends a message. It is queued; `flush` frames
    /// everything queued into one `a[...]`. False when the session is not
    /// open (the message is dropped, as in sockjs-node).
    pub fn send(&mut self, message: String) -> bool {
        if self.state != ReadyState::Open {
            return false;
        }
        let item = if self.is_raw() {
            Item::Owned(message)
        } else {
            Item::Owned(quote(&message))
        };
        self.queue.push(item);
        true
    }

    /// `send` for a message shared by many sessions.
    pub fn send_shared(&mut self, message: &Shared) -> bool {
        if self.state != ReadyState::Open {
            return false;
        }
        let shared = if self.is_raw() { &message.raw } else { &message.quoted };
        self.queue.push(Item::Shared(shared.clone()));
        true
    }

    /// Messages go out unframed (the raw WebSocket endpoint).
    fn is_raw(&self) -> bool {
        self.receiver.as_ref().is_some_and(|r| r.framing.is_raw())
    }

    /// Whether `flush` would write something now.
    pub fn needs_flush(&self) -> bool {
        self.receiver.is_some() && !self.queue.is_empty()
    }

    /// Write everything queued to the attached receiver, as one frame.
    pub fn flush(&mut self, now: u64) {
        let Some(r) = self.receiver.as_ref() else { return };
        if self.queue.is_empty() {
            return;
        }
        if r.framing.is_raw() {
            // No SockJS framing: one WebSocket message per message.
            let id = r.id;
            self.outputs.extend(
                self.queue
                    .take()
                    .into_iter()
                    .map(|m| Output::Write(id, m.as_str().to_owned())),
            );
            return;
        }
        let batch = frame::quoted_messages(&self.queue.take());
        self.write_frame(now, &batch);
    }

    /// The application closes the session. False unless it is open.
    pub fn close(&mut self, now: u64, code: u16, reason: &str) -> bool {
        if self.state != ReadyState::Open {
            return false;
        }
        // What was written before close() goes out before the close frame.
        self.flush(now);
        self.state = ReadyState::Closing;
        let close = frame::close(code, reason);
        self.close_status = Some(Box::new((code, reason.to_owned())));
        if self.receiver.as_ref().is_some_and(|r| !r.framing.is_raw()) {
            self.write_frame(now, &close);
        }
        if let Some(r) = self.receiver.take() {
            self.outputs.push_back(Output::End(r.id));
            self.after_detach(now, &r.framing, false);
        }
        true
    }

    /// The receiver `id` went away on its own: the client aborted the
    /// request or closed the WebSocket. Closes the session at once, as
    /// sockjs-node does; a receiver the session ended itself is ignored.
    pub fn receiver_gone(&mut self, now: u64, id: ReceiverId) {
        if self.receiver.as_ref().is_some_and(|r| r.id == id) {
            let r = self.receiver.take().expect("checked above");
            self.after_detach(now, &r.framing, true);
        }
    }

    /// Close at once, whatever the state (server shutdown, detach). The
    /// attached receiver, if any, gets `frame` and is ended.
    pub fn terminate(&mut self, code: u16, reason: &str) {
        if self.state == ReadyState::Closed {
            return;
        }
        self.close_status = Some(Box::new((code, reason.to_owned())));
        if let Some(r) = self.receiver.take() {
            // A raw WebSocket has no SockJS frames: the code goes in its
            // WebSocket close (see `close_status`).
            if !r.framing.is_raw() {
                let close = frame::close(code, reason);
                self.outputs.push_back(Output::Write(r.id, r.framing.encode(&close)));
            }
            self.outputs.push_back(Output::End(r.id));
        }
        self.close_now();
    }

    /// Time has come (see `deadline`).
    pub fn handle_timeout(&mut self, now: u64) {
        let Some((at, kind)) = self.timer else { return };
        if now < at {
            return;
        }
        self.timer = None;
        match kind {
            TimerKind::Disconnect => self.close_now(),
            TimerKind::Heartbeat => {
                if self.receiver.as_ref().is_some_and(|r| !r.framing.is_raw()) {
                    self.write_frame(now, frame::HEARTBEAT);
                }
                if self.receiver.is_some() {
                    self.arm(now, TimerKind::Heartbeat);
                }
            }
        }
    }

    fn arm(&mut self, now: u64, kind: TimerKind) {
        let delay = match kind {
            TimerKind::Disconnect => self.config.disconnect_ms,
            TimerKind::Heartbeat => self.config.heartbeat_ms,
        };
        self.timer = Some((now + delay, kind));
    }

    /// Write a frame to the attached receiver, ending the receiver once it
    /// has carried its limit.
    fn write_frame(&mut self, now: u64, frame: &str) {
        let Some(r) = self.receiver.as_mut() else { return };
        let data = r.framing.encode(frame);
        if let Some(room) = r.room.as_mut() {
            *room = room.saturating_sub(data.len());
        }
        let full = r.room == Some(0);
        self.outputs.push_back(Output::Write(r.id, data));
        if full {
            let r = self.receiver.take().expect("checked above");
            self.outputs.push_back(Output::End(r.id));
            self.after_detach(now, &r.framing, false);
        }
    }

    fn after_detach(&mut self, now: u64, framing: &Framing, aborted: bool) {
        if aborted || !framing.delays_disconnect() {
            self.close_now();
        } else {
            self.arm(now, TimerKind::Disconnect);
        }
    }

    fn close_now(&mut self) {
        self.state = ReadyState::Closed;
        self.timer = None;
        self.queue.take();
        self.outputs.push_back(Output::Closed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: SessionConfig = SessionConfig {
        heartbeat_ms: 25_000,
        disconnect_ms: 5_000,
        response_limit: 4096,
    };

    fn outputs(s: &mut Session) -> Vec<Output> {
        std::iter::from_fn(|| s.poll_output()).collect()
    }

    fn w(id: ReceiverId, s: &str) -> Output {
        Output::Write(id, s.to_owned())
    }

    #[test]
    fn first_poll_gets_the_open_frame_then_the_app_hears_of_it() {
        let mut s = Session::new(CONFIG, 0);
        s.attach(10, 1, Framing::XhrPolling);
        assert_eq!(outputs(&mut s), vec![w(1, "o\n"), Output::End(1), Output::Opened]);
        assert_eq!(s.ready_state(), ReadyState::Open);
        // The poll ended, so the session waits disconnect_ms for the next.
        assert_eq!(s.deadline(), Some(5_010));
    }

    #[test]
    fn an_idle_session_keeps_no_output_buffer() {
        let mut s = Session::new(CONFIG, 0);
        s.attach(0, 1, Framing::WebSocket);
        assert_eq!(outputs(&mut s), vec![w(1, "o"), Output::Opened]);
        assert_eq!(s.outputs.capacity(), 0);
    }

    #[test]
    fn messages_written_together_share_one_frame() {
        let mut s = Session::new(CONFIG, 0);
        s.attach(0, 1, Framing::XhrStreaming);
        outputs(&mut s);
        assert!(s.send("a".into()));
        assert!(s.send("b".into()));
        assert!(s.needs_flush());
        s.flush(1);
        assert_eq!(outputs(&mut s), vec![w(1, "a[\"a\",\"b\"]\n")]);
    }

    #[test]
    fn messages_wait_for_the_next_poll() {
        let mut s = Session::new(CONFIG, 0);
        s.attach(0, 1, Framing::XhrPolling);
        outputs(&mut s);
        s.send("x".into());
        assert!(!s.needs_flush());
        s.attach(100, 2, Framing::XhrPolling);
        assert_eq!(outputs(&mut s), vec![w(2, "a[\"x\"]\n"), Output::End(2)]);
    }

    #[test]
    fn a_second_receiver_is_told_another_connection_is_open() {
        let mut s = Session::new(CONFIG, 0);
        s.attach(0, 1, Framing::XhrStreaming);
        outputs(&mut s);
        s.attach(1, 2, Framing::XhrPolling);
        assert_eq!(
            outputs(&mut s),
            vec![w(2, "c[2010,\"Another connection still open\"]\n"), Output::End(2)]
        );
        assert!(s.has_receiver());
    }

    #[test]
    fn heartbeats_while_a_receiver_is_attached() {
        let mut s = Session::new(CONFIG, 0);
        s.attach(0, 1, Framing::EventSource);
        outputs(&mut s);
        assert_eq!(s.deadline(), Some(25_000));
        s.handle_timeout(24_999);
        assert!(outputs(&mut s).is_empty());
        s.handle_timeout(25_000);
        assert_eq!(outputs(&mut s), vec![w(1, "data: h\r\n\r\n")]);
        assert_eq!(s.deadline(), Some(50_000));
    }

    #[test]
    fn no_receiver_for_disconnect_delay_closes_the_session() {
        let mut s = Session::new(CONFIG, 0);
        s.attach(0, 1, Framing::XhrPolling);
        outputs(&mut s);
        s.handle_timeout(5_000);
        assert_eq!(outputs(&mut s), vec![Output::Closed]);
        assert_eq!(s.ready_state(), ReadyState::Closed);
        assert!(!s.send("late".into()));
    }

    #[test]
    fn a_session_never_attached_expires() {
        let mut s = Session::new(CONFIG, 0);
        s.handle_timeout(5_000);
        assert_eq!(outputs(&mut s), vec![Output::Closed]);
    }

    #[test]
    fn close_goes_to_the_current_and_every_later_receiver() {
        let mut s = Session::new(CONFIG, 0);
        s.attach(0, 1, Framing::XhrStreaming);
        outputs(&mut s);
        s.send("bye".into());
        assert!(s.close(5, 3000, "Go away!"));
        assert_eq!(s.ready_state(), ReadyState::Closing);
        assert_eq!(
            outputs(&mut s),
            vec![w(1, "a[\"bye\"]\n"), w(1, "c[3000,\"Go away!\"]\n"), Output::End(1)]
        );
        s.attach(10, 2, Framing::XhrPolling);
        assert_eq!(outputs(&mut s), vec![w(2, "c[3000,\"Go away!\"]\n"), Output::End(2)]);
        assert!(!s.close(11, 1000, "again"));
        s.handle_timeout(5_010);
        assert_eq!(outputs(&mut s), vec![Output::Closed]);
    }

    #[test]
    fn close_without_a_receiver_is_delivered_to_the_next_one() {
        let mut s = Session::new(CONFIG, 0);
        s.attach(0, 1, Framing::XhrPolling);
        outputs(&mut s);
        s.send("last".into());
        s.close(1, 3000, "Go away!");
        assert!(outputs(&mut s).is_empty());
        s.attach(2, 2, Framing::XhrStreaming);
        assert_eq!(
            outputs(&mut s),
            vec![w(2, "a[\"last\"]\n"), w(2, "c[3000,\"Go away!\"]\n"), Output::End(2)]
        );
    }

    #[test]
    fn an_aborted_receiver_closes_the_session_at_once() {
        let mut s = Session::new(CONFIG, 0);
        s.attach(0, 1, Framing::XhrStreaming);
        outputs(&mut s);
        s.receiver_gone(3, 1);
        assert_eq!(outputs(&mut s), vec![Output::Closed]);
        assert_eq!(s.deadline(), None);
    }

    #[test]
    fn a_receiver_the_session_ended_is_not_an_abort() {
        let mut s = Session::new(CONFIG, 0);
        s.attach(0, 1, Framing::XhrPolling);
        outputs(&mut s);
        s.receiver_gone(3, 1);
        assert!(outputs(&mut s).is_empty());
        assert_eq!(s.ready_state(), ReadyState::Open);
    }

    #[test]
    fn streaming_receivers_end_at_the_response_limit() {
        let config = SessionConfig {
            response_limit: 250,
            ..CONFIG
        };
        let mut s = Session::new(config, 0);
        s.attach(0, 1, Framing::XhrStreaming);
        outputs(&mut s);
        let msg = "x".repeat(128);
        s.send(msg.clone());
        s.flush(1);
        assert_eq!(outputs(&mut s).len(), 1);
        s.send(msg.clone());
        s.flush(2);
        let out = outputs(&mut s);
        assert_eq!(out.last(), Some(&Output::End(1)));
        assert!(!s.has_receiver());
        assert_eq!(s.deadline(), Some(5_002));
    }

    #[test]
    fn websocket_close_ends_the_session_without_delay() {
        let mut s = Session::new(CONFIG, 0);
        s.attach(0, 7, Framing::WebSocket);
        assert_eq!(outputs(&mut s), vec![w(7, "o"), Output::Opened]);
        s.close(1, 3000, "Go away!");
        assert_eq!(
            outputs(&mut s),
            vec![w(7, "c[3000,\"Go away!\"]"), Output::End(7), Output::Closed]
        );
    }

    #[test]
    fn raw_websocket_sessions_carry_bare_messages() {
        let mut s = Session::new(CONFIG, 0);
        s.attach(0, 3, Framing::RawWebSocket);
        assert_eq!(outputs(&mut s), vec![Output::Opened]);
        s.send("a".into());
        s.send("b".into());
        s.flush(1);
        assert_eq!(outputs(&mut s), vec![w(3, "a"), w(3, "b")]);
        s.handle_timeout(25_000);
        assert!(outputs(&mut s).is_empty());
        s.close(2, 3000, "Go away!");
        assert_eq!(s.close_status(), Some((3000, "Go away!")));
        assert_eq!(outputs(&mut s), vec![Output::End(3), Output::Closed]);
    }

    #[test]
    fn queued_bytes_count_what_waits_for_a_receiver() {
        let mut s = Session::new(CONFIG, 0);
        s.attach(0, 1, Framing::XhrPolling);
        outputs(&mut s);
        s.send("abc".into());
        s.send("\u{e9}".into());
        // Counted as they will go out: quoted, in UTF-8.
        assert_eq!(s.queued_bytes(), "\"abc\"".len() + "\"\u{e9}\"".len());
        s.attach(1, 2, Framing::XhrStreaming);
        assert_eq!(s.queued_bytes(), 0);
        s.send("xy".into());
        s.close(2, 1000, "bye");
        assert_eq!(s.queued_bytes(), 0);
    }

    #[test]
    fn a_shared_message_is_quoted_once_for_framed_and_kept_bare_for_raw() {
        let shared = Shared::new("\u{2028}hi");
        let mut framed = Session::new(CONFIG, 0);
        framed.attach(0, 1, Framing::WebSocket);
        outputs(&mut framed);
        let mut raw = Session::new(CONFIG, 0);
        raw.attach(0, 2, Framing::RawWebSocket);
        outputs(&mut raw);
        assert!(framed.send_shared(&shared));
        framed.send("x".into());
        assert!(raw.send_shared(&shared));
        framed.flush(1);
        raw.flush(1);
        assert_eq!(outputs(&mut framed), vec![w(1, "a[\"\\u2028hi\",\"x\"]")]);
        assert_eq!(outputs(&mut raw), vec![w(2, "\u{2028}hi")]);
    }

    #[test]
    fn terminate_sends_no_sockjs_frame_to_a_raw_websocket() {
        // Found by the session fuzz target (fuzz/artifacts-found).
        let mut s = Session::new(CONFIG, 0);
        s.attach(0, 4, Framing::RawWebSocket);
        outputs(&mut s);
        s.send("a".into());
        s.flush(1);
        s.terminate(1001, "Server going away");
        assert_eq!(outputs(&mut s), vec![w(4, "a"), Output::End(4), Output::Closed]);
        assert_eq!(s.close_status(), Some((1001, "Server going away")));
    }

    #[test]
    fn messages_are_ignored_unless_open() {
        let mut s = Session::new(CONFIG, 0);
        assert!(!s.accepts_messages());
        s.attach(0, 1, Framing::XhrPolling);
        assert!(s.accepts_messages());
        s.close(1, 1000, "Normal closure");
        assert!(!s.accepts_messages());
    }

    #[test]
    fn terminate_closes_with_a_frame_to_the_receiver() {
        let mut s = Session::new(CONFIG, 0);
        s.attach(0, 1, Framing::XhrStreaming);
        outputs(&mut s);
        s.terminate(1001, "Server going away");
        assert_eq!(
            outputs(&mut s),
            vec![w(1, "c[1001,\"Server going away\"]\n"), Output::End(1), Output::Closed]
        );
        s.terminate(1001, "again");
        assert!(outputs(&mut s).is_empty());
    }
}
