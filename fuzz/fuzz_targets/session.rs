//! `session`: the session state machine (`session::Session`) driven by an
//! arbitrary sequence of operations — attach a receiver of any transport,
//! send, broadcast (`send_shared`), flush, close, a receiver going away,
//! timers, terminate — with time only moving forward, and a model of what
//! the driver sees checked after every step.
//!
//! The session is driven as the engine drives it: an HTTP session gets any
//! number of receivers of the five HTTP transports (xhr-polling,
//! xhr-streaming, eventsource, htmlfile, jsonp-polling, mixed freely), a
//! WebSocket or raw WebSocket session gets its one receiver right after it
//! is created and never another (further `Attach` are skipped). Receiver
//! ids are handed out fresh (1, 2, 3, ...), as the engine does;
//! `ReceiverGone(i)` names the i-th id handed out, or an unknown one.
//!
//! Invariants (after every operation):
//! - at most one `Output::Closed`; at most one `Output::Opened`, never after
//!   `Closed`, and (but for the raw WebSocket) after the `o` frame;
//! - after `Closed`, no `Write` or `End` — except the refusal of a receiver
//!   attached later: `c[2010,"Another connection still open"]` then `End`
//!   to that new receiver only (the engine can attach to a session that
//!   closed under it);
//! - nothing is written to or ended on a receiver after its `End`, a
//!   refused receiver gets exactly the 2010 frame and `End`;
//! - every write unwraps (per transport) to a valid SockJS frame; the `o`
//!   frame comes once and first; no `a[...]` after a close frame;
//! - messages are delivered in the order they were sent: the messages in the
//!   written `a[...]` frames (and raw WebSocket writes) are a prefix of the
//!   accepted sends (`send` and `send_shared` alike), the rest is what
//!   `queued_bytes` counts, quoted as they will go out (0 once closed);
//! - polling receivers carry one frame, streaming ones end once they carried
//!   `response_limit` bytes;
//! - `send`/`close` return values, `accepts_messages`, `has_receiver`,
//!   `ready_state` (never goes back) agree with the model;
//! - `deadline()` is `None` exactly when closed, and not in the past after
//!   `handle_timeout`; at the end, aborting the receiver and running the
//!   timers closes every session (no session lives forever).
#![no_main]

use std::collections::HashMap;

use libfuzzer_sys::fuzz_target;
use sockjs_core::frame;
use sockjs_core::quote::quote;
use sockjs_core::receiver::Framing;
use sockjs_core::session::{Output, ReadyState, ReceiverId, Session, SessionConfig, Shared};
use sockjs_fuzz::session_input::{Carrier, Input, Kind, Op, Text};
use sockjs_fuzz::{parse_frame, tolerate, unwrap, Frame};

fn framing(kind: Kind) -> Framing {
    match kind {
        Kind::XhrPolling => Framing::XhrPolling,
        Kind::XhrStreaming => Framing::XhrStreaming,
        Kind::EventSource => Framing::EventSource,
        Kind::HtmlFile => Framing::HtmlFile,
        Kind::Jsonp => Framing::Jsonp {
            callback: "_jp.a1b2c3".into(),
        },
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Refused with 2010 (a receiver is attached, or the session is closed).
    Refused,
    /// Attached while closing: gets what is left and the close frame.
    Closing,
    /// Attached as the session's receiver.
    Accepted,
}

#[derive(Debug)]
struct Receiver {
    framing: Framing,
    role: Role,
    ended: bool,
    written: usize,
    outputs: usize,
}

#[derive(Default)]
struct Model {
    receivers: HashMap<ReceiverId, Receiver>,
    order: Vec<ReceiverId>,
    current: Option<ReceiverId>,
    opened: bool,
    closed: bool,
    open_frame: bool,
    close_frame_seen: bool,
    accepted: Vec<String>,
    delivered: Vec<String>,
    /// The (code, reason) a `close()` that returned true gave.
    close_status: Option<(u16, String)>,
    terminate_status: Option<(u16, String)>,
    max_state: u8,
    /// A raw WebSocket session.
    raw: bool,
}

fn state_rank(s: ReadyState) -> u8 {
    s as u8
}

const REFUSAL: &str = "c[2010,\"Another connection still open\"]";

impl Model {
    /// Check and record the outputs of one step. `attached` is the receiver
    /// attached in this step, if any.
    fn outputs(&mut self, s: &mut Session, limit: usize, attached: Option<ReceiverId>) {
        self.outputs_of(s, limit, attached, None)
    }

    /// `terminating`: the (code, reason) of this step's `terminate`.
    fn outputs_of(
        &mut self,
        s: &mut Session,
        limit: usize,
        attached: Option<ReceiverId>,
        terminating: Option<&(u16, String)>,
    ) {
        let closed_before = self.closed;
        let mut pending_end: Option<ReceiverId> = None;
        while let Some(out) = s.poll_output() {
            if trace() {
                eprintln!("    {out:?}");
            }
            if let Some(id) = pending_end.take() {
                assert_eq!(
                    out,
                    Output::End(id),
                    "receiver {id} reached its limit but was not ended"
                );
            }
            match out {
                Output::Opened => {
                    assert!(!self.opened, "second Opened");
                    assert!(!self.closed, "Opened after Closed");
                    let first = self.receivers.get(&self.order[0]).expect("a receiver came first");
                    if !first.framing.is_raw() {
                        assert!(self.open_frame, "Opened before the o frame was written");
                    }
                    self.opened = true;
                }
                Output::Closed => {
                    assert!(!self.closed, "second Closed");
                    self.closed = true;
                }
                Output::Write(id, data) => {
                    let r = self
                        .receivers
                        .get_mut(&id)
                        .unwrap_or_else(|| panic!("Write to unknown receiver {id}"));
                    assert!(!r.ended, "Write to receiver {id} after its End: {data:?}");
                    if self.closed {
                        assert!(
                            Some(id) == attached && r.role == Role::Refused,
                            "Write({id}, {data:?}) after Closed"
                        );
                    }
                    r.outputs += 1;
                    let frame_text = unwrap(&r.framing, &data);
                    if r.role == Role::Refused {
                        assert_eq!(r.outputs, 1, "more than the refusal to refused receiver {id}");
                        assert_eq!(frame_text, REFUSAL, "refused receiver {id}");
                        continue;
                    }
                    if r.role == Role::Accepted {
                        if let Some(limit) = r.framing.limit(limit) {
                            assert!(
                                r.written == 0 || r.written < limit,
                                "receiver {id} written past its limit"
                            );
                            r.written += data.len();
                            if r.written >= limit {
                                pending_end = Some(id);
                            }
                        }
                    }
                    if r.framing.is_raw() {
                        // Known finding `terminate-raw`: terminate() sends a
                        // SockJS close frame as a raw WebSocket message.
                        if terminating.is_some_and(|(code, reason)| frame_text == frame::close(*code, reason))
                            && tolerate("terminate-raw")
                        {
                            continue;
                        }
                        self.delivered.push(frame_text);
                        continue;
                    }
                    match parse_frame(&frame_text) {
                        Frame::Open => {
                            assert!(!self.open_frame, "second o frame");
                            assert!(self.delivered.is_empty() && !self.close_frame_seen, "o frame not first");
                            self.open_frame = true;
                        }
                        Frame::Heartbeat => {
                            assert_eq!(r.role, Role::Accepted, "heartbeat to a {:?} receiver", r.role)
                        }
                        Frame::Messages(m) => {
                            assert!(!self.close_frame_seen, "a[...] after a close frame: {m:?}");
                            self.delivered.extend(m);
                        }
                        Frame::Close(code, reason) => {
                            let pair = Some((code, reason));
                            assert!(
                                pair == self.close_status || pair == self.terminate_status,
                                "close frame {pair:?} was not asked for (close {:?}, terminate {:?})",
                                self.close_status,
                                self.terminate_status
                            );
                            self.close_frame_seen = true;
                        }
                    }
                }
                Output::End(id) => {
                    let r = self
                        .receivers
                        .get_mut(&id)
                        .unwrap_or_else(|| panic!("End of unknown receiver {id}"));
                    assert!(!r.ended, "second End of receiver {id}");
                    if self.closed {
                        assert!(
                            Some(id) == attached && r.role == Role::Refused,
                            "End({id}) after Closed"
                        );
                    }
                    if r.role == Role::Refused {
                        assert_eq!(r.outputs, 1, "refused receiver {id} ended without the refusal");
                    }
                    r.ended = true;
                    if self.current == Some(id) {
                        self.current = None;
                    }
                }
            }
        }
        assert_eq!(pending_end, None, "receiver reached its limit but was not ended");
        if let Some(id) = attached {
            let r = &self.receivers[&id];
            match r.role {
                Role::Refused | Role::Closing => assert!(r.ended, "{:?} receiver {id} not ended", r.role),
                Role::Accepted => {}
            }
            if matches!(r.framing, Framing::XhrPolling | Framing::Jsonp { .. }) && r.outputs > 0 {
                assert!(r.ended, "polling receiver {id} carried a frame and was not ended");
            }
        }
        if closed_before {
            assert!(self.closed);
        }
    }

    fn check_state(&mut self, s: &Session, now: u64) {
        let state = s.ready_state();
        let rank = state_rank(state);
        assert!(rank >= self.max_state, "ready state went back to {state:?}");
        self.max_state = rank;
        assert_eq!(
            state == ReadyState::Closed,
            self.closed,
            "{state:?} but Closed seen: {}",
            self.closed
        );
        if matches!(state, ReadyState::Open | ReadyState::Closing) {
            assert!(self.opened, "{state:?} without Opened");
        }
        if self.opened {
            assert_ne!(state, ReadyState::Connecting);
        }
        assert_eq!(s.accepts_messages(), state == ReadyState::Open);
        assert_eq!(
            s.has_receiver(),
            self.current.is_some(),
            "has_receiver vs model {:?}",
            self.current
        );
        if let Some(id) = self.current {
            assert_eq!(s.protocol(), Some(self.receivers[&id].framing.protocol()));
        } else {
            assert_eq!(s.protocol(), None);
        }
        if state != ReadyState::Open {
            assert!(!s.needs_flush());
        }
        // Order kept: delivered is a prefix of what was accepted; the rest
        // waits in the queue unless the session is closed.
        assert!(
            self.delivered.len() <= self.accepted.len() && self.delivered[..] == self.accepted[..self.delivered.len()],
            "delivered {:?} is not a prefix of sent {:?}",
            self.delivered,
            self.accepted
        );
        // Counted as they will go out: quoted for SockJS framing, bare for
        // the raw WebSocket.
        let waiting: usize = self.accepted[self.delivered.len()..]
            .iter()
            .map(|m| if self.raw { m.len() } else { quote(m).len() })
            .sum();
        if self.closed {
            assert_eq!(s.queued_bytes(), 0, "closed with bytes queued");
            assert_eq!(s.deadline(), None, "deadline after Closed");
        } else {
            assert_eq!(s.queued_bytes(), waiting, "queued_bytes vs undelivered messages");
            assert!(
                s.deadline().is_some(),
                "{state:?} session with no deadline: it would live forever"
            );
        }
        let _ = now;
    }
}

/// `SOCKJS_FUZZ_TRACE=1`: print every operation and output (to read what a
/// reproducer does).
fn trace() -> bool {
    static TRACE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *TRACE.get_or_init(|| std::env::var_os("SOCKJS_FUZZ_TRACE").is_some())
}

/// Attach a fresh receiver, recording in the model what it should get.
fn attach(s: &mut Session, m: &mut Model, next_id: &mut ReceiverId, now: u64, framing: Framing) -> ReceiverId {
    let id = *next_id;
    *next_id += 1;
    let role = if s.has_receiver() || s.ready_state() == ReadyState::Closed {
        Role::Refused
    } else if s.ready_state() == ReadyState::Closing {
        Role::Closing
    } else {
        Role::Accepted
    };
    m.receivers.insert(
        id,
        Receiver {
            framing: framing.clone(),
            role,
            ended: false,
            written: 0,
            outputs: 0,
        },
    );
    m.order.push(id);
    if role == Role::Accepted {
        m.current = Some(id);
    }
    s.attach(now, id, framing);
    id
}

fuzz_target!(|inp: Input| {
    let config = SessionConfig {
        heartbeat_ms: u64::from(inp.heartbeat_ms),
        disconnect_ms: u64::from(inp.disconnect_ms),
        response_limit: usize::from(inp.response_limit),
    };
    let limit = config.response_limit;
    let mut now = u64::from(inp.start);
    let mut s = Session::new(config, now);
    let mut m = Model {
        raw: inp.carrier == Carrier::RawWebSocket,
        ..Model::default()
    };
    let mut next_id: ReceiverId = 1;
    m.check_state(&s, now);
    // A WebSocket session gets its receiver as it is created.
    let ws = match inp.carrier {
        Carrier::Http => None,
        Carrier::WebSocket => Some(Framing::WebSocket),
        Carrier::RawWebSocket => Some(Framing::RawWebSocket),
    };
    if let Some(framing) = ws {
        let id = attach(&mut s, &mut m, &mut next_id, now, framing);
        m.outputs(&mut s, limit, Some(id));
        m.check_state(&s, now);
    }

    for op in inp.ops.iter().take(256) {
        if trace() {
            eprintln!("t={now} {op:?}");
        }
        let mut attached = None;
        match op {
            Op::Attach { .. } if inp.carrier != Carrier::Http => continue,
            Op::Attach { kind } => attached = Some(attach(&mut s, &mut m, &mut next_id, now, framing(*kind))),
            Op::Send(Text(msg)) | Op::SendFlush(Text(msg)) => {
                let open = s.ready_state() == ReadyState::Open;
                assert_eq!(s.send(msg.clone()), open, "send() result");
                if open {
                    m.accepted.push(msg.clone());
                }
                if matches!(op, Op::SendFlush(_)) {
                    s.flush(now);
                }
            }
            Op::SendShared(Text(msg)) => {
                let open = s.ready_state() == ReadyState::Open;
                assert_eq!(s.send_shared(&Shared::new(msg)), open, "send_shared() result");
                if open {
                    m.accepted.push(msg.clone());
                }
            }
            Op::Flush => s.flush(now),
            Op::Close {
                code,
                reason: Text(reason),
            } => {
                let open = s.ready_state() == ReadyState::Open;
                assert_eq!(s.close(now, *code, reason), open, "close() result");
                if open {
                    m.close_status = Some((*code, reason.clone()));
                    assert_eq!(s.close_status(), Some((*code, reason.as_str())));
                }
            }
            Op::ReceiverGone(i) => {
                let id = m
                    .order
                    .get(usize::from(*i))
                    .copied()
                    .unwrap_or(1_000_000 + u64::from(*i));
                let was_current = m.current == Some(id);
                s.receiver_gone(now, id);
                if was_current {
                    // An abort closes the session at once.
                    m.current = None;
                    m.outputs(&mut s, limit, None);
                    assert!(m.closed, "receiver {id} aborted but the session is not closed");
                }
            }
            Op::HandleTimeout(delta) => {
                now += u64::from(*delta);
                s.handle_timeout(now);
            }
            Op::RunTimer => {
                if let Some(at) = s.deadline() {
                    now = now.max(at);
                }
                s.handle_timeout(now);
            }
            Op::Wait(delta) => now += u64::from(*delta),
            Op::Terminate {
                code,
                reason: Text(reason),
            } => {
                if !m.closed && m.current.is_some() {
                    m.terminate_status = Some((*code, reason.clone()));
                }
                s.terminate(*code, reason);
                m.current = None;
            }
        }
        let terminating = match op {
            Op::Terminate {
                code,
                reason: Text(reason),
            } => Some((*code, reason.clone())),
            _ => None,
        };
        m.outputs_of(&mut s, limit, attached, terminating.as_ref());
        if matches!(op, Op::Terminate { .. }) {
            assert!(m.closed, "terminate did not close");
        }
        m.check_state(&s, now);
        if matches!(op, Op::HandleTimeout(_) | Op::RunTimer) {
            if let Some(at) = s.deadline() {
                assert!(at >= now, "deadline {at} in the past at {now} after handle_timeout");
            }
        }
    }

    // Liveness: with the receiver gone, the timers close every session.
    if trace() {
        eprintln!("t={now} end: receiver gone, timers run");
    }
    if let Some(id) = m.current {
        s.receiver_gone(now, id);
        m.current = None;
        m.outputs(&mut s, limit, None);
        m.check_state(&s, now);
    }
    for _ in 0..3 {
        let Some(at) = s.deadline() else { break };
        now = now.max(at);
        s.handle_timeout(now);
        m.outputs(&mut s, limit, None);
        m.check_state(&s, now);
    }
    assert!(
        m.closed,
        "session still {:?} with no receiver after its timers ran",
        s.ready_state()
    );
    // Once closed, everything is refused.
    assert!(!s.send("late".into()));
    assert!(!s.close(now, 1000, "late"));
    s.terminate(1000, "late");
    m.outputs(&mut s, limit, None);
    m.check_state(&s, now);
});
