//! The HTTP driver: sessions whose receivers are Node HTTP responses. Runs
//! on Node's main thread (requests, aborts, drains) and on the timer task.

use std::sync::atomic::Ordering;

use sockjs_core::answer::{self, Answer, Request, Then};
use sockjs_core::session::{Output, ReadyState, Session};

use crate::{Carrier, Conn, ConnId, ConnState, Engine, Event, ReceiverId};

/// How JavaScript answers a request.
#[derive(Debug)]
pub struct Plan {
    /// Status, headers and the first body chunk (a streaming prelude).
    pub answer: Answer,
    /// Frames for the receiver, each its own chunk, after the body.
    pub frames: Vec<String>,
    /// End the response after the body.
    pub end: bool,
    /// The response stays open as this receiver: later chunks come as
    /// `Write`/`End` events, and its abort must be reported.
    pub receiver: Option<ReceiverId>,
    /// The session this request joined (decorate its connection).
    pub conn: Option<ConnId>,
    /// The session was created by this request.
    pub created: bool,
    /// The joining receiver's transport (`conn.protocol`), as its place in
    /// `sockjs_core::receiver::PROTOCOLS`.
    pub protocol: Option<usize>,
    /// The session opened with this request: emit `'connection'` once the
    /// open frame is written (sockjs-node does it on the next tick).
    pub opened: bool,
}

impl Plan {
    fn done(answer: Answer) -> Plan {
        Plan {
            answer,
            frames: Vec::new(),
            end: true,
            receiver: None,
            conn: None,
            created: false,
            protocol: None,
            opened: false,
        }
    }
}

impl Engine {
    /// Answer a request under install `install`'s prefix.
    pub fn request(&self, install: u32, req: &Request) -> Plan {
        let Some(opts) = self.options(install) else {
            return Plan::done(answer::not_found());
        };
        let mut a = answer::answer(req, &opts);
        if let Some((severity, line)) = a.log.take() {
            self.log(severity, line);
        }
        match std::mem::replace(&mut a.then, Then::End) {
            Then::Receive { session, framing } => self.receive(install, &opts, a, session, framing),
            Then::Deliver { session, messages } => {
                let Some(conn) = self.http_session(&session) else {
                    return Plan::done(a.into_not_found());
                };
                if conn.state.lock().session.accepts_messages() {
                    self.events
                        .push_all(messages.into_iter().map(|m| Event::Message(conn.id, m)));
                }
                Plan::done(a)
            }
            then @ (Then::ChunkingTest | Then::WebSocket { .. }) => {
                a.then = then;
                Plan {
                    end: false,
                    ..Plan::done(a)
                }
            }
            Then::End => Plan::done(a),
        }
    }

    fn receive(
        &self,
        install: u32,
        opts: &sockjs_core::answer::Options,
        answer: Answer,
        session_id: String,
        framing: sockjs_core::receiver::Framing,
    ) -> Plan {
        let now = self.clock.now();
        let existing = self.http_session(&session_id);
        let created = existing.is_none();
        if created && self.session_count() >= opts.max_sessions {
            self.log(
                "error",
                format!("Refused a new session: max_sessions ({}) reached", opts.max_sessions),
            );
            return Plan::done(answer::too_many_sessions());
        }
        let conn = existing.unwrap_or_else(|| {
            let carrier = Carrier::Http { session_id };
            self.new_conn(install, carrier, Session::new(opts.session, now))
        });
        let rid = self.next_receiver.fetch_add(1, Ordering::Relaxed);
        let protocol = Some(framing.protocol_index());
        let mut plan = Plan {
            answer,
            frames: Vec::new(),
            end: false,
            receiver: None,
            conn: None,
            created,
            protocol: None,
            opened: false,
        };
        let mut st = conn.state.lock();
        let joins =
            !st.session.has_receiver() && matches!(st.session.ready_state(), ReadyState::Connecting | ReadyState::Open);
        st.session.attach(now, u64::from(rid), framing);
        let closed = self.route_outputs(&conn, &mut st, Some((rid, &mut plan)));
        self.schedule(&conn, &mut st);
        drop(st);
        if closed {
            self.forget(&conn);
        }
        if joins {
            plan.conn = Some(conn.id);
            plan.protocol = protocol;
        }
        if !plan.end {
            plan.receiver = Some(rid);
            self.registry.lock().receivers.insert(rid, conn.id);
        }
        plan
    }

    /// The live session `session_id`. A session whose disconnect deadline
    /// has passed is closed first (the timer task may not have run yet), as
    /// sockjs-node's timers fire before it reads the next request.
    fn http_session(&self, session_id: &str) -> Option<std::sync::Arc<Conn>> {
        let conn = {
            let reg = self.registry.lock();
            reg.by_session
                .get(session_id)
                .and_then(|id| reg.conns.get(id))
                .cloned()?
        };
        let closed = {
            let mut st = conn.state.lock();
            let deadline = st.session.deadline();
            st.session.handle_timeout(self.clock.now());
            let closed = st.session.ready_state() == ReadyState::Closed;
            if !closed && st.session.deadline() != deadline {
                // A due heartbeat was written: have it collected.
                self.poke(&conn, &mut st);
            }
            closed
        };
        if closed {
            self.collect_http(&conn);
            return None;
        }
        Some(conn)
    }

    /// The client went away before receiver `rid` was finished.
    pub fn receiver_aborted(&self, rid: ReceiverId) {
        let Some(id) = self.registry.lock().receivers.remove(&rid) else {
            return;
        };
        let Some(conn) = self.conn(id) else { return };
        conn.state
            .lock()
            .session
            .receiver_gone(self.clock.now(), u64::from(rid));
        // The session closes now: it leaves the registry at once.
        self.collect_http(&conn);
    }

    /// Collect an HTTP session's outputs into events.
    pub(crate) fn collect_http(&self, conn: &Conn) {
        let mut st = conn.state.lock();
        st.dirty = false;
        st.session.flush(self.clock.now());
        let closed = self.route_outputs(conn, &mut st, None);
        self.schedule(conn, &mut st);
        drop(st);
        if closed {
            self.forget(conn);
        }
    }

    /// Turn outputs into events, except those for the receiver being
    /// answered right now, which go into its plan. True once closed.
    fn route_outputs(&self, conn: &Conn, st: &mut ConnState, mut current: Option<(ReceiverId, &mut Plan)>) -> bool {
        let session = &mut st.session;
        let mut events = Vec::new();
        let mut ended = Vec::new();
        let mut closed = false;
        while let Some(output) = session.poll_output() {
            match output {
                Output::Write(rid, data) => match current.as_mut() {
                    Some((cur, plan)) if u64::from(*cur) == rid => plan.frames.push(data),
                    _ => events.push(Event::Write(rid as ReceiverId, data)),
                },
                Output::End(rid) => match current.as_mut() {
                    Some((cur, plan)) if u64::from(*cur) == rid => plan.end = true,
                    _ => {
                        ended.push(rid as ReceiverId);
                        events.push(Event::End(rid as ReceiverId));
                    }
                },
                // Only `attach` opens a session, and it runs while a request
                // is answered; JS announces the connection from the plan.
                Output::Opened => {
                    debug_assert!(current.is_some(), "a session opens only while a request is answered");
                    if let Some((_, plan)) = current.as_mut() {
                        plan.opened = true;
                    }
                }
                Output::Closed => {
                    closed = true;
                    events.push(Event::Close(conn.id));
                }
            }
        }
        events.extend(st.drained(conn.id));
        if !ended.is_empty() {
            let mut reg = self.registry.lock();
            for rid in ended {
                reg.receivers.remove(&rid);
            }
        }
        self.events.push_all(events);
        closed
    }
}
