//! Deadlines of every session (heartbeats, disconnect delays, WebSocket pong
//! deadlines), kept in one heap and served by one tokio task per engine.
//! Entries are never removed: a session whose deadline moved is simply
//! checked again when its stale entry comes up, which keeps scheduling
//! O(log n) and lock-light.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::{Arc, Weak};

use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::clock::Clock;
use crate::events::ConnId;

#[derive(Default)]
pub struct Timers {
    heap: Mutex<BinaryHeap<Reverse<(u64, ConnId)>>>,
    changed: Notify,
}

impl Timers {
    /// Call back for `conn` at `at` (engine milliseconds).
    pub fn schedule(&self, at: u64, conn: ConnId) {
        let earliest = {
            let mut heap = self.heap.lock();
            let earliest = heap.peek().is_none_or(|Reverse((first, _))| at < *first);
            heap.push(Reverse((at, conn)));
            earliest
        };
        if earliest {
            self.changed.notify_one();
        }
    }

    fn take_due(&self, now: u64) -> (Vec<ConnId>, Option<u64>) {
        let mut heap = self.heap.lock();
        let mut due = Vec::new();
        while let Some(Reverse((at, conn))) = heap.peek().copied() {
            if at > now {
                return (due, Some(at));
            }
            heap.pop();
            due.push(conn);
        }
        (due, None)
    }

    /// Serve deadlines until the owner is gone, calling `fire` with the
    /// sessions whose time has come.
    pub async fn run(this: Weak<Timers>, clock: Clock, fire: impl Fn(Vec<ConnId>)) {
        loop {
            let Some(timers) = this.upgrade() else { return };
            let (due, next) = timers.take_due(clock.now());
            if !due.is_empty() {
                fire(due);
                continue;
            }
            let changed = timers.changed.notified();
            match next {
                Some(at) => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(clock.instant(at)) => {}
                        _ = changed => {}
                    }
                }
                None => changed.await,
            }
            drop(timers);
        }
    }
}

/// Hold-only handle so the task can end when the engine is dropped.
pub fn spawn(timers: &Arc<Timers>, clock: Clock, fire: impl Fn(Vec<ConnId>) + Send + 'static) {
    let weak = Arc::downgrade(timers);
    crate::runtime::get().spawn(Timers::run(weak, clock, fire));
}
