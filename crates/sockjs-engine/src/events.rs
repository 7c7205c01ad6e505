//! The one queue that carries everything from the engine to JavaScript.
//!
//! Producers (the main thread, the timer task, WebSocket tasks) push events;
//! the waker (in the addon, a libuv async send) is called only when the
//! queue turns from empty to non-empty, and JavaScript then drains the
//! whole batch in one call. So there is at most one cross-thread call per
//! batch, never one per message. The waker is told whether it runs on the
//! thread that made the queue (JavaScript's): there it can run the drain
//! itself at the end of the current call instead of going through libuv.
//!
//! Client messages waiting in the queue are counted, in all and per
//! connection (`InboundShare`): past `INBOUND_LIMIT` in all, or a
//! connection past `CONN_INBOUND_LIMIT` of its own, a WebSocket stops
//! reading (`poll_taken`) until JavaScript takes the batch. So a client
//! that sends faster than the application's listeners run is held back by
//! TCP's flow control, as with sockjs-node, whose reads ran on JavaScript's
//! thread, instead of growing the queue without bound and handing
//! JavaScript one endless batch; and it is held back alone, with room left
//! in every batch for the others.

use parking_lot::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::task::{Context, Poll, Waker as TaskWaker};
use std::thread::ThreadId;

/// Bytes of client messages waiting for JavaScript past which every
/// connection stops reading: about 6,000 messages of 100 bytes, a few
/// milliseconds of JavaScript's time.
pub const INBOUND_LIMIT: usize = 1 << 20;
/// A connection's own limit within one batch: a quarter of the whole, so
/// that one fast client leaves room for the others.
pub const CONN_INBOUND_LIMIT: usize = INBOUND_LIMIT / 4;
/// What a client message counts for against the limits: its text, and
/// what each message costs beyond it (the event and the string's header,
/// and JavaScript's work per message), as decoding counts it too.
pub fn weight(text: &str) -> usize {
    text.len() + sockjs_core::decode::MESSAGE_COST
}

/// One connection's messages in the batch being gathered (kept with the
/// connection's state; reset when it finds a newer batch).
#[derive(Debug, Default)]
pub struct InboundShare {
    batch: u32,
    bytes: usize,
}

impl InboundShare {
    /// Count `weight` more in `batch`: whether the connection is still
    /// within its own limit.
    pub fn add(&mut self, batch: u32, weight: usize) -> bool {
        if self.batch != batch {
            self.batch = batch;
            self.bytes = 0;
        }
        self.bytes += weight;
        self.bytes <= CONN_INBOUND_LIMIT
    }
}

pub type ConnId = u32;
pub type ReceiverId = u32;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A message from the client: emit `'data'`.
    Message(ConnId, String),
    /// The session is over: emit `'end'` and `'close'`.
    Close(ConnId),
    /// The session's buffer emptied after `write()` returned false: `'drain'`.
    Drain(ConnId),
    /// Write this chunk to the HTTP response of a receiver.
    Write(ReceiverId, String),
    /// End the HTTP response of a receiver.
    End(ReceiverId),
    /// Write these bytes to a bridged (non-adopted) socket.
    SocketWrite(ConnId, Vec<u8>),
    /// End a bridged socket.
    SocketEnd(ConnId),
    /// Destroy a bridged socket: the connection is dropped.
    SocketAbort(ConnId),
    /// Resume a bridged socket paused by `pipe_feed` (see `bridge`).
    SocketResume(ConnId),
    /// A line for the application's log: severity, message.
    Log(&'static str, String),
}

struct Inner {
    events: Vec<Event>,
    /// HTTP sessions whose outputs must be collected before the next batch.
    dirty: Vec<ConnId>,
    /// A wake is pending: JavaScript will drain. Cleared only when a drain
    /// finds the queue empty, in the same critical section, so that no push
    /// can slip between a drain and the next wake.
    notified: bool,
    /// Bytes of the `Message` events in `events` (with their overhead).
    inbound: usize,
    /// Connections that stopped reading, to wake when the batch is taken.
    held: Vec<TaskWaker>,
}

/// What a drain step takes.
pub enum Taken {
    /// Sessions to collect first (their outputs join the queue).
    Dirty(Vec<ConnId>),
    /// The batch: nothing dirty was left.
    Events(Vec<Event>),
}

/// Where a wake happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WakeFrom {
    /// The thread that made the queue: JavaScript's.
    Home,
    /// Any other thread (the runtime's, the timers').
    Elsewhere,
}

pub type Waker = Box<dyn Fn(WakeFrom) + Send + Sync>;

pub struct EventQueue {
    inner: Mutex<Inner>,
    wake: Waker,
    home: ThreadId,
    /// The batch being gathered: counts the batches JavaScript has taken
    /// (changed only under `inner`'s lock, read without it).
    batch: AtomicU32,
}

impl EventQueue {
    /// A queue whose home is the calling thread.
    pub fn new(wake: Waker) -> EventQueue {
        EventQueue {
            inner: Mutex::new(Inner {
                events: Vec::new(),
                dirty: Vec::new(),
                notified: false,
                inbound: 0,
                held: Vec::new(),
            }),
            wake,
            home: std::thread::current().id(),
            batch: AtomicU32::new(0),
        }
    }

    /// The batch being gathered now.
    pub fn batch(&self) -> u32 {
        self.batch.load(Ordering::Acquire)
    }

    /// Whether the calling thread is the one that made the queue.
    pub fn at_home(&self) -> bool {
        std::thread::current().id() == self.home
    }

    fn wake(&self) {
        (self.wake)(if self.at_home() {
            WakeFrom::Home
        } else {
            WakeFrom::Elsewhere
        });
    }

    pub fn push(&self, event: Event) {
        self.push_all(std::iter::once(event));
    }

    /// Queue `events`. Returns whether the client messages waiting are
    /// still within `INBOUND_LIMIT` (a connection that gets `false` should
    /// stop reading: see `poll_taken`).
    pub fn push_all(&self, events: impl IntoIterator<Item = Event>) -> bool {
        let (wake, room) = {
            let mut inner = self.inner.lock();
            for event in events {
                if let Event::Message(_, text) = &event {
                    inner.inbound += weight(text);
                }
                inner.events.push(event);
            }
            let wake = !inner.events.is_empty() && !std::mem::replace(&mut inner.notified, true);
            (wake, inner.inbound <= INBOUND_LIMIT)
        };
        if wake {
            self.wake();
        }
        room
    }

    /// Ready once JavaScript has taken `batch`; until then the task is
    /// woken when it does. (A task polled again meanwhile, for a write or
    /// a timer, is listed again: a few entries at most until the batch is
    /// taken and the list emptied.)
    pub fn poll_taken(&self, cx: &mut Context<'_>, batch: u32) -> Poll<()> {
        let mut inner = self.inner.lock();
        if self.batch() != batch {
            return Poll::Ready(());
        }
        inner.held.push(cx.waker().clone());
        Poll::Pending
    }

    /// Ask for `conn`'s outputs to be collected at the next drain.
    pub fn mark_dirty(&self, conn: ConnId) {
        let wake = {
            let mut inner = self.inner.lock();
            inner.dirty.push(conn);
            !std::mem::replace(&mut inner.notified, true)
        };
        if wake {
            self.wake();
        }
    }

    /// One drain step: the dirty sessions if any, else the events (and from
    /// then on the next push wakes again).
    pub fn take(&self) -> Taken {
        let (events, held) = {
            let mut inner = self.inner.lock();
            if !inner.dirty.is_empty() {
                return Taken::Dirty(std::mem::take(&mut inner.dirty));
            }
            inner.notified = false;
            inner.inbound = 0;
            self.batch.fetch_add(1, Ordering::AcqRel);
            (std::mem::take(&mut inner.events), std::mem::take(&mut inner.held))
        };
        // The batch is JavaScript's now: the connections read again while
        // it runs (at most one more batch's worth waits meanwhile).
        for waker in held {
            waker.wake();
        }
        Taken::Events(events)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::WakeFlag;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    fn counting() -> (EventQueue, Arc<AtomicUsize>) {
        let wakes = Arc::new(AtomicUsize::new(0));
        let w = wakes.clone();
        let q = EventQueue::new(Box::new(move |_| {
            w.fetch_add(1, Ordering::SeqCst);
        }));
        (q, wakes)
    }

    #[test]
    fn wakes_once_per_batch() {
        let (q, wakes) = counting();
        q.push(Event::Message(1, "a".into()));
        q.push(Event::Message(1, "b".into()));
        q.mark_dirty(1);
        assert_eq!(wakes.load(Ordering::SeqCst), 1);
        assert!(matches!(q.take(), Taken::Dirty(ids) if ids == vec![1]));
        assert!(matches!(q.take(), Taken::Events(e) if e.len() == 2));
        q.push(Event::Close(1));
        assert_eq!(wakes.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn a_session_marked_dirty_during_a_drain_is_not_stranded() {
        // The race the soak test found: events wait, the drain takes the
        // dirty list, a timer marks a session dirty, the drain takes the
        // events. The drain must not end with that session left behind
        // and no wake pending.
        let (q, wakes) = counting();
        q.push(Event::Drain(1));
        assert!(matches!(q.take(), Taken::Events(_)));
        q.push(Event::Message(1, "a".into()));
        q.mark_dirty(2);
        assert_eq!(wakes.load(Ordering::SeqCst), 2);
        assert!(matches!(q.take(), Taken::Dirty(ids) if ids == vec![2]));
        q.mark_dirty(3); // from another thread, mid-drain: no wake needed yet
        assert!(matches!(q.take(), Taken::Dirty(ids) if ids == vec![3]));
        assert!(matches!(q.take(), Taken::Events(e) if e.len() == 1));
        q.mark_dirty(4); // after the drain: wakes again
        assert_eq!(wakes.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn past_the_inbound_limit_readers_wait_for_the_batch_to_be_taken() {
        let (q, _) = counting();
        let (flag, waker) = WakeFlag::new();
        let mut cx = Context::from_waker(&waker);
        let half = "x".repeat(INBOUND_LIMIT / 2);
        let batch = q.batch();
        assert!(q.push_all([Event::Message(1, half.clone()), Event::Close(2)]));
        // Other events do not count; a message that crosses the limit is
        // still queued, and its sender told to stop.
        q.push(Event::Log("info", "x".repeat(INBOUND_LIMIT)));
        assert!(!q.push_all([Event::Message(3, half)]));
        assert_eq!(q.poll_taken(&mut cx, batch), Poll::Pending);
        assert!(!flag.woken());
        assert!(matches!(q.take(), Taken::Events(e) if e.len() == 4));
        assert!(flag.woken(), "taking the batch wakes the held reader");
        assert_eq!(q.poll_taken(&mut cx, batch), Poll::Ready(()));
        assert_ne!(q.batch(), batch);
        assert!(q.push_all([Event::Message(1, "small".into())]));
    }

    #[test]
    fn a_connection_s_share_counts_within_one_batch() {
        let mut share = InboundShare::default();
        let quarter = CONN_INBOUND_LIMIT / 4;
        for _ in 0..4 {
            assert!(share.add(7, quarter));
        }
        assert!(!share.add(7, 1), "past its own limit");
        assert!(share.add(8, quarter), "a new batch starts it afresh");
    }

    #[test]
    fn the_waker_hears_which_thread_woke_it() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        let q = Arc::new(EventQueue::new(Box::new(move |from| s.lock().push(from))));
        q.push(Event::Close(1));
        assert!(matches!(q.take(), Taken::Events(_)));
        let remote = q.clone();
        std::thread::spawn(move || {
            assert!(!remote.at_home());
            remote.push(Event::Close(2));
        })
        .join()
        .unwrap();
        assert!(q.at_home());
        assert_eq!(*seen.lock(), vec![WakeFrom::Home, WakeFrom::Elsewhere]);
    }
}
