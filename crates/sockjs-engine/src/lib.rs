//! The SockJS engine: runs the core's sessions over real I/O.
//!
//! - `http`: sessions whose receivers are Node HTTP responses. JavaScript
//!   does the I/O; everything it writes comes from here, as a `Plan` for the
//!   first answer and as `Write`/`End` events afterwards.
//! - `websocket`: WebSocket connections as tokio tasks (tungstenite, run
//!   over the async socket by `ws_stream`), on adopted file descriptors or
//!   on a byte pipe bridged to a Node socket.
//! - `events`: the one queue to JavaScript; `timers`: HTTP session deadlines;
//!   `spill`: large socket reads behind tungstenite's small read buffer;
//!   `task_wake`: how JavaScript's writes wake a WebSocket task; `direct`:
//!   how JavaScript's thread writes WebSocket frames itself instead, when
//!   the runtime has a single thread.
//!
//! Nothing here knows napi: the glue crate wraps `Engine` for Node, and Rust
//! tests drive it directly.

pub mod address;
mod bridge;
pub mod clock;
mod direct;
pub mod events;
pub mod header_blocks;
mod http;
pub mod runtime;
mod spill;
mod task_wake;
#[cfg(test)]
mod test_support;
mod timers;
pub mod websocket;
mod ws_stream;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use sockjs_core::answer::Options;
use sockjs_core::session::{Session, Shared};

pub use clock::Clock;
use direct::SocketOut;
pub use events::{ConnId, Event, EventQueue, ReceiverId, Taken, WakeFrom};
pub use http::Plan;
use task_wake::TaskWake;

/// Wake WebSocket tasks from JavaScript's thread. Many at once (after a
/// broadcast or a write loop) are woken from a task on the runtime: a wake
/// from outside the runtime goes through its shared queue and may unpark a
/// worker each time, which on a shared core preempts JavaScript; a wake from
/// a worker goes to that worker's own queue.
fn wake_all(conns: Vec<Arc<Conn>>) {
    match conns.as_slice() {
        [] => {}
        [one] => one.wake_task(),
        _ => {
            runtime::get().spawn(async move {
                for conn in conns {
                    conn.wake_task();
                }
            });
        }
    }
}

/// Who carries a session's frames.
pub enum Carrier {
    /// HTTP receivers, one at a time; outputs collected at drain.
    Http { session_id: String },
    /// One WebSocket for the whole session, run by a tokio task that is
    /// woken through `wake` when the application writes or closes; or,
    /// for a write, written to by JavaScript's thread through `direct`.
    WebSocket {
        wake: TaskWake,
        direct: Option<Arc<SocketOut>>,
    },
}

/// A session and what the driver keeps beside it.
pub struct ConnState {
    pub session: Session,
    /// The deadline last handed to the timer task.
    scheduled: Option<u64>,
    /// (WebSocket) The timer task found a deadline due: the connection's
    /// task checks its deadlines when it next wakes.
    timer_due: bool,
    /// Already queued for collection at the next drain.
    dirty: bool,
    /// Bytes a WebSocket task took from the session and has not yet
    /// flushed to its socket.
    in_flight: usize,
    /// `write()` returned false: emit `Drain` once the buffer is empty.
    want_drain: bool,
    /// A WebSocket task took messages and has not handed them all to the
    /// socket: a direct write now would overtake them.
    task_holds_writes: bool,
    /// A direct write took the session's `End`: the task must close.
    end_taken: bool,
    /// (WebSocket) The session was closed for going over
    /// `max_buffered_bytes`: a write its socket does not take is given up
    /// at once (see `websocket::gives_up`).
    owed_nothing: bool,
    /// (WebSocket) This connection's messages in the batch being gathered.
    inbound: events::InboundShare,
}

impl ConnState {
    /// Bytes written by the application and not yet on the socket (as far
    /// as the engine holds them).
    pub fn buffered(&self) -> usize {
        self.session.queued_bytes() + self.in_flight
    }

    /// The `Drain` event, if one is owed now.
    fn drained(&mut self, id: ConnId) -> Option<Event> {
        (self.want_drain && self.buffered() == 0).then(|| {
            self.want_drain = false;
            Event::Drain(id)
        })
    }
}

/// What became of a message the application wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// Queued; keep writing.
    Queued,
    /// Queued, but the buffer is past the high-water mark: wait for `Drain`.
    Full,
    /// Not queued: the session is not open (or was just closed for going
    /// over the hard limit).
    Refused,
}

pub struct Conn {
    pub id: ConnId,
    pub install: u32,
    pub carrier: Carrier,
    pub state: Mutex<ConnState>,
    /// A WebSocket task is done writing: its close frame went out, or the
    /// connection is gone. What `shutdown` waits for.
    closed_out: std::sync::atomic::AtomicBool,
}

impl Conn {
    /// Wake the connection's WebSocket task, if it has one.
    fn wake_task(&self) {
        if let Carrier::WebSocket { wake, .. } = &self.carrier {
            wake.wake();
        }
    }

    /// Where JavaScript's thread writes to the connection's socket, if it
    /// does (see `direct`).
    fn direct(&self) -> Option<&Arc<SocketOut>> {
        match &self.carrier {
            Carrier::WebSocket { direct, .. } => direct.as_ref(),
            Carrier::Http { .. } => None,
        }
    }

    /// What wakes the connection's WebSocket task.
    fn task_wake(&self) -> &TaskWake {
        match &self.carrier {
            Carrier::WebSocket { wake, .. } => wake,
            Carrier::Http { .. } => unreachable!("only a WebSocket connection has a task"),
        }
    }
}

#[derive(Default)]
struct Registry {
    conns: HashMap<ConnId, Arc<Conn>>,
    /// HTTP sessions by their SockJS session id.
    by_session: HashMap<String, ConnId>,
    /// Live HTTP receivers, to route aborts.
    receivers: HashMap<ReceiverId, ConnId>,
}

pub struct Engine {
    clock: Clock,
    installs: RwLock<Vec<Arc<Options>>>,
    registry: Mutex<Registry>,
    events: EventQueue,
    timers: Arc<timers::Timers>,
    next_conn: AtomicU32,
    next_receiver: AtomicU32,
    /// Feeds of bridged WebSocket byte pipes, and how full each is.
    pipes: Mutex<HashMap<ConnId, (bridge::Feeder, Arc<bridge::PipeLevel>)>>,
}

impl Engine {
    /// A new engine, made on JavaScript's thread; `wake` is called when
    /// events wait to be drained.
    pub fn new(wake: events::Waker) -> Arc<Engine> {
        let engine = Arc::new(Engine {
            clock: Clock::new(),
            installs: RwLock::new(Vec::new()),
            registry: Mutex::new(Registry::default()),
            events: EventQueue::new(wake),
            timers: Arc::new(timers::Timers::default()),
            next_conn: AtomicU32::new(1),
            next_receiver: AtomicU32::new(1),
            pipes: Mutex::new(HashMap::new()),
        });
        let weak = Arc::downgrade(&engine);
        let weak_too = weak.clone();
        timers::spawn(
            &engine.timers,
            engine.clock,
            move |due| {
                if let Some(engine) = weak.upgrade() {
                    // A panic must not stop the timers of every other session.
                    let fired = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| engine.on_timers(due)));
                    if let Err(panic) = fired {
                        engine.log(
                            "error",
                            format!("Internal error in session timers: {}", websocket::panic_message(&panic)),
                        );
                    }
                }
            },
            move |entries| {
                if let Some(engine) = weak_too.upgrade() {
                    engine.retain_live(entries);
                }
            },
        );
        engine
    }

    /// Register an install's options; the index names it in later calls.
    pub fn install(&self, options: Options) -> u32 {
        let mut installs = self.installs.write();
        installs.push(Arc::new(options));
        (installs.len() - 1) as u32
    }

    fn options(&self, install: u32) -> Option<Arc<Options>> {
        self.installs.read().get(install as usize).cloned()
    }

    pub fn now(&self) -> u64 {
        self.clock.now()
    }

    fn conn(&self, id: ConnId) -> Option<Arc<Conn>> {
        self.registry.lock().conns.get(&id).cloned()
    }

    /// The sessions of `ids` that still exist.
    fn conns(&self, ids: &[ConnId]) -> Vec<Arc<Conn>> {
        let reg = self.registry.lock();
        ids.iter().filter_map(|id| reg.conns.get(id).cloned()).collect()
    }

    fn new_conn(&self, install: u32, carrier: Carrier, session: Session) -> Arc<Conn> {
        let id = self.next_conn.fetch_add(1, Ordering::Relaxed);
        let conn = Arc::new(Conn {
            id,
            install,
            carrier,
            closed_out: std::sync::atomic::AtomicBool::new(false),
            state: Mutex::new(ConnState {
                session,
                scheduled: None,
                timer_due: false,
                dirty: false,
                in_flight: 0,
                want_drain: false,
                task_holds_writes: false,
                end_taken: false,
                owed_nothing: false,
                inbound: Default::default(),
            }),
        });
        let mut reg = self.registry.lock();
        if let Carrier::Http { session_id } = &conn.carrier {
            reg.by_session.insert(session_id.clone(), id);
        }
        reg.conns.insert(id, conn.clone());
        conn
    }

    /// Keep the timer entries of sessions that still exist. The registry's
    /// lock is taken per chunk, never for a whole sweep of 10^5 entries:
    /// JavaScript's thread looks sessions up in it on every call.
    fn retain_live(&self, entries: &mut Vec<timers::Entry>) {
        const CHUNK: usize = 4096;
        let mut live = Vec::with_capacity(entries.len());
        for chunk in entries.chunks(CHUNK) {
            let reg = self.registry.lock();
            live.extend(chunk.iter().filter(|entry| reg.conns.contains_key(&entry.0 .1)));
        }
        *entries = live;
    }

    fn forget(&self, conn: &Conn) {
        let mut reg = self.registry.lock();
        reg.conns.remove(&conn.id);
        if let Carrier::Http { session_id } = &conn.carrier {
            if reg.by_session.get(session_id) == Some(&conn.id) {
                reg.by_session.remove(session_id);
            }
        }
    }

    /// The application writes a message.
    pub fn send(&self, id: ConnId, message: String) -> Sent {
        let Some(conn) = self.conn(id) else {
            return Sent::Refused;
        };
        self.enqueue(&conn, |session| session.send(message))
    }

    /// Write one message to many sessions (`targets`, or every session of
    /// the engine): quoted once, shared by all queues, written by each
    /// session's carrier. Returns how many sessions took it.
    pub fn broadcast(&self, message: &str, targets: Option<&[ConnId]>) -> usize {
        let shared = Shared::new(message);
        let conns: Vec<Arc<Conn>> = match targets {
            Some(ids) => self.conns(ids),
            None => self.registry.lock().conns.values().cloned().collect(),
        };
        // The targets nearly always share one install: its options are
        // looked up once, not once per target.
        let mut options: Option<(u32, Arc<Options>)> = None;
        let mut taken = 0;
        for conn in &conns {
            if options.as_ref().is_none_or(|(install, _)| *install != conn.install) {
                options = self.options(conn.install).map(|opts| (conn.install, opts));
            }
            let Some((_, opts)) = &options else { continue };
            if self.enqueue_with(conn, opts, |session| session.send_shared(&shared)) != Sent::Refused {
                taken += 1;
            }
        }
        taken
    }

    /// Queue with `push`, then apply the buffer limits and wake the carrier.
    fn enqueue(&self, conn: &Conn, push: impl FnOnce(&mut Session) -> bool) -> Sent {
        match self.options(conn.install) {
            Some(opts) => self.enqueue_with(conn, &opts, push),
            None => Sent::Refused,
        }
    }

    fn enqueue_with(&self, conn: &Conn, opts: &Options, push: impl FnOnce(&mut Session) -> bool) -> Sent {
        let mut st = conn.state.lock();
        if !push(&mut st.session) {
            return Sent::Refused;
        }
        let buffered = st.buffered();
        if buffered > opts.max_buffered {
            // A client that does not read must not grow the server's memory.
            st.session.terminate(1008, "Buffered data over the limit");
            st.owed_nothing = true;
            self.poke(conn, &mut st);
            drop(st);
            self.log(
                "error",
                format!(
                    "Session closed: {buffered} bytes buffered, over max_buffered_bytes {}",
                    opts.max_buffered
                ),
            );
            return Sent::Refused;
        }
        if st.session.needs_flush() {
            self.poke(conn, &mut st);
        }
        if buffered > opts.high_water_mark {
            st.want_drain = true;
            Sent::Full
        } else {
            Sent::Queued
        }
    }

    /// Bytes written and not yet handed to the socket.
    pub fn buffered_amount(&self, id: ConnId) -> usize {
        self.conn(id).map_or(0, |c| c.state.lock().buffered())
    }

    /// The application closes the session. False unless it was open.
    pub fn close(&self, id: ConnId, code: u16, reason: &str) -> bool {
        let Some(conn) = self.conn(id) else { return false };
        let mut st = conn.state.lock();
        if !st.session.close(self.clock.now(), code, reason) {
            return false;
        }
        self.poke(&conn, &mut st);
        true
    }

    /// Have the session's carrier act on new outputs. An HTTP session's
    /// outputs are collected at the next drain. A WebSocket task is woken at
    /// once, unless the application wrote from JavaScript's thread: then
    /// also at the next drain (the end of this turn of the event loop), so
    /// that a batch of writes wakes the task once and the task does not
    /// preempt JavaScript after every message when both share a core.
    fn poke(&self, conn: &Conn, st: &mut ConnState) {
        match &conn.carrier {
            Carrier::WebSocket { wake, .. } if !self.events.at_home() => wake.wake(),
            _ => {
                if !st.dirty {
                    st.dirty = true;
                    self.events.mark_dirty(conn.id);
                }
            }
        }
    }

    fn on_timers(&self, due: Vec<ConnId>) {
        let now = self.clock.now();
        for id in due {
            let Some(conn) = self.conn(id) else { continue };
            let mut st = conn.state.lock();
            st.scheduled = None;
            match &conn.carrier {
                // Its task keeps the pong deadline and sends the pings.
                Carrier::WebSocket { wake, .. } => {
                    st.timer_due = true;
                    drop(st);
                    wake.wake();
                }
                Carrier::Http { .. } => {
                    st.session.handle_timeout(now);
                    drop(st);
                    self.collect_http(&conn);
                }
            }
        }
    }

    /// Act on a session's outputs now. An HTTP session is collected here,
    /// not at the next drain: one that closed must leave the registry at
    /// once, or a poll arriving meanwhile would find it and be told another
    /// connection is open. A WebSocket task is woken.
    fn settle(&self, conn: &Conn) {
        match conn.carrier {
            Carrier::Http { .. } => self.collect_http(conn),
            Carrier::WebSocket { .. } => self.poke(conn, &mut conn.state.lock()),
        }
    }

    /// Keep the timer task's view of an HTTP session's deadline current.
    fn schedule(&self, conn: &Conn, st: &mut ConnState) {
        if let Some(at) = st.session.deadline() {
            self.schedule_by(conn.id, st, at);
        }
    }

    /// Make sure the timer task calls back for session `id` by `at`: an
    /// entry is added only when `at` comes before the one scheduled (a
    /// later one is found when the earlier entry comes due).
    fn schedule_by(&self, id: ConnId, st: &mut ConnState, at: u64) {
        if st.scheduled.is_none_or(|s| at < s) {
            st.scheduled = Some(at);
            self.timers.schedule(at, id);
        }
    }

    /// Every event since the last drain, HTTP sessions' outputs included.
    pub fn drain(&self) -> Vec<Event> {
        loop {
            match self.events.take() {
                Taken::Events(events) => return events,
                Taken::Dirty(ids) => {
                    // One reading of the clock and one look-up in the
                    // registry for the batch (a broadcast makes a thousand).
                    let now = self.clock.now();
                    let mut websockets = Vec::new();
                    for conn in self.conns(&ids) {
                        match &conn.carrier {
                            Carrier::Http { .. } => self.collect_http(&conn),
                            Carrier::WebSocket { .. } => {
                                let written = match conn.direct() {
                                    Some(direct) => websocket::write_directly(self, &conn, direct, now),
                                    None => {
                                        conn.state.lock().dirty = false;
                                        false
                                    }
                                };
                                if !written {
                                    websockets.push(conn);
                                }
                            }
                        }
                    }
                    wake_all(websockets);
                }
            }
        }
    }

    /// Close every session of the engine (detach, shutdown).
    pub fn terminate_all(&self, code: u16, reason: &str) {
        for conn in self.terminate_every(code, reason) {
            self.settle(&conn);
        }
    }

    /// End every session's state with `code`; its carrier is not told yet.
    fn terminate_every(&self, code: u16, reason: &str) -> Vec<Arc<Conn>> {
        let conns: Vec<Arc<Conn>> = self.registry.lock().conns.values().cloned().collect();
        for conn in &conns {
            conn.state.lock().session.terminate(code, reason);
        }
        conns
    }

    /// The process is exiting: close every session, and give WebSocket
    /// tasks up to `wait` to put their close frames on the wire. Called on
    /// JavaScript's thread from Node's 'exit' event, which cannot wait for
    /// anything asynchronous; tokio's threads do the writing meanwhile.
    pub fn shutdown(&self, code: u16, reason: &str, wait: std::time::Duration) {
        // Woken now, not at a next drain (`settle` from this thread would
        // wait for one): there will be none.
        let mut websockets = Vec::new();
        for conn in self.terminate_every(code, reason) {
            if let Carrier::WebSocket { .. } = &conn.carrier {
                conn.wake_task();
                websockets.push(conn);
            }
        }
        let deadline = std::time::Instant::now() + wait;
        while std::time::Instant::now() < deadline && websockets.iter().any(|c| !c.closed_out.load(Ordering::Acquire)) {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    /// Live sessions.
    pub fn session_count(&self) -> usize {
        self.registry.lock().conns.len()
    }

    pub fn log(&self, severity: &'static str, line: String) {
        self.events.push(Event::Log(severity, line));
    }
}

/// A random number for `/info`'s `entropy` (a load-balancing hint, not a
/// secret; sockjs-node uses Math.random). A per-thread xorshift generator
/// seeded once from the OS: asking the OS on every request cost a syscall
/// per HTTP request, since every request's answer may need it.
pub fn entropy() -> u32 {
    use std::cell::Cell;
    thread_local! {
        static STATE: Cell<u64> = Cell::new({
            let mut seed = [0u8; 8];
            let _ = getrandom::fill(&mut seed);
            u64::from_le_bytes(seed) | 1
        });
    }
    STATE.with(|state| {
        let mut x = state.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        state.set(x);
        (x >> 32) as u32
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sockjs_core::session::SessionConfig;
    use std::cmp::Reverse;

    #[test]
    fn a_timer_sweep_keeps_the_entries_of_live_sessions_in_their_order() {
        let engine = Engine::new(Box::new(|_| {}));
        let new_session = |i: usize| {
            let carrier = Carrier::Http {
                session_id: format!("s{i}"),
            };
            engine.new_conn(0, carrier, Session::new(SessionConfig::SOCKJS_NODE, 0))
        };
        // More than one chunk of the sweep.
        let conns: Vec<Arc<Conn>> = (0..10_000).map(new_session).collect();
        for conn in conns.iter().filter(|conn| conn.id % 3 == 0) {
            engine.forget(conn);
        }
        let never_was: ConnId = 999_999;
        let mut entries: Vec<timers::Entry> = conns
            .iter()
            .map(|conn| Reverse((u64::from(conn.id), conn.id)))
            .chain([Reverse((5, never_was))])
            .collect();
        engine.retain_live(&mut entries);
        let kept: Vec<ConnId> = entries.iter().map(|entry| entry.0 .1).collect();
        let live: Vec<ConnId> = conns.iter().map(|conn| conn.id).filter(|id| id % 3 != 0).collect();
        assert_eq!(kept, live);
    }
}
