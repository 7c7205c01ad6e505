//! Deadlines of every session (heartbeats, disconnect delays, WebSocket pong
//! deadlines), kept in one heap and served by one tokio task per engine.
//! Entries are never removed one by one: a session whose deadline moved is
//! simply checked again when its stale entry comes up, which keeps
//! scheduling O(log n) and lock-light. Entries of sessions that are gone
//! would pile up under churn (a WebSocket's heartbeat entry outlives it by
//! up to 25 s: half a million at 20,000 openings a second), so the heap is
//! swept of them whenever it has doubled since the last sweep.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::{Arc, Weak};

use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::clock::Clock;
use crate::events::ConnId;

/// A deadline (engine milliseconds) and its session, earliest first.
pub type Entry = Reverse<(u64, ConnId)>;

/// No sweep below this many entries.
const SWEEP_MIN: usize = 4096;

pub struct Timers {
    heap: Mutex<Heap>,
    changed: Notify,
}

struct Heap {
    entries: BinaryHeap<Entry>,
    /// The size at which the timer task sweeps the heap.
    sweep_at: usize,
}

impl Default for Timers {
    fn default() -> Timers {
        Timers {
            heap: Mutex::new(Heap {
                entries: BinaryHeap::new(),
                sweep_at: SWEEP_MIN,
            }),
            changed: Notify::new(),
        }
    }
}

impl Timers {
    /// Call back for `conn` at `at` (engine milliseconds).
    pub fn schedule(&self, at: u64, conn: ConnId) {
        let wake_task = {
            let mut heap = self.heap.lock();
            let earliest = heap.entries.peek().is_none_or(|Reverse((first, _))| at < *first);
            heap.entries.push(Reverse((at, conn)));
            earliest || heap.entries.len() == heap.sweep_at
        };
        if wake_task {
            self.changed.notify_one();
        }
    }

    fn take_due(&self, now: u64) -> (Vec<ConnId>, Option<u64>) {
        let mut heap = self.heap.lock();
        let mut due = Vec::new();
        while let Some(Reverse((at, conn))) = heap.entries.peek().copied() {
            if at > now {
                return (due, Some(at));
            }
            heap.entries.pop();
            due.push(conn);
        }
        (due, None)
    }

    /// Keep only the entries `retain_live` keeps, once the heap has grown
    /// to its sweep size. `retain_live` runs without the heap's lock held
    /// (it takes the registry's); entries scheduled meanwhile are kept.
    fn sweep(&self, retain_live: &impl Fn(&mut Vec<Entry>)) {
        let mut entries = {
            let mut heap = self.heap.lock();
            if heap.entries.len() < heap.sweep_at {
                return;
            }
            std::mem::take(&mut heap.entries).into_vec()
        };
        retain_live(&mut entries);
        let mut heap = self.heap.lock();
        entries.append(&mut std::mem::take(&mut heap.entries).into_vec());
        heap.sweep_at = (2 * entries.len()).max(SWEEP_MIN);
        heap.entries = BinaryHeap::from(entries);
    }

    /// Serve deadlines until the owner is gone, calling `fire` with the
    /// sessions whose time has come.
    pub async fn run(
        this: Weak<Timers>,
        clock: Clock,
        fire: impl Fn(Vec<ConnId>),
        retain_live: impl Fn(&mut Vec<Entry>),
    ) {
        loop {
            let Some(timers) = this.upgrade() else { return };
            timers.sweep(&retain_live);
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
pub fn spawn(
    timers: &Arc<Timers>,
    clock: Clock,
    fire: impl Fn(Vec<ConnId>) + Send + 'static,
    retain_live: impl Fn(&mut Vec<Entry>) + Send + 'static,
) {
    let weak = Arc::downgrade(timers);
    crate::runtime::get().spawn(Timers::run(weak, clock, fire, retain_live));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(timers: &Timers) -> Vec<ConnId> {
        let mut ids: Vec<ConnId> = timers.heap.lock().entries.iter().map(|Reverse((_, id))| *id).collect();
        ids.sort_unstable();
        ids
    }

    #[test]
    fn entries_come_due_in_order_of_their_deadlines() {
        let timers = Timers::default();
        timers.schedule(30, 3);
        timers.schedule(10, 1);
        timers.schedule(20, 2);
        assert_eq!(timers.take_due(20), (vec![1, 2], Some(30)));
        assert_eq!(timers.take_due(40), (vec![3], None));
    }

    #[test]
    fn a_sweep_waits_for_the_heap_to_reach_its_size_then_keeps_live_entries() {
        let timers = Timers::default();
        let odd_live = |entries: &mut Vec<Entry>| entries.retain(|Reverse((_, id))| id % 2 == 1);
        for id in 0..(SWEEP_MIN as ConnId - 1) {
            timers.schedule(1000, id);
        }
        timers.sweep(&odd_live);
        assert_eq!(ids(&timers).len(), SWEEP_MIN - 1, "below the sweep size: untouched");

        timers.schedule(1000, SWEEP_MIN as ConnId - 1);
        timers.sweep(&odd_live);
        let left = ids(&timers);
        assert_eq!(left.len(), SWEEP_MIN / 2);
        assert!(left.iter().all(|id| id % 2 == 1));
        // Never below the minimum: the next sweep waits for it again.
        assert_eq!(timers.heap.lock().sweep_at, SWEEP_MIN);
        assert_eq!(
            timers.take_due(1000).0.len(),
            SWEEP_MIN / 2,
            "the heap still orders what it kept"
        );
    }

    #[test]
    fn the_next_sweep_waits_for_the_heap_to_double() {
        let timers = Timers::default();
        let all_live = |_: &mut Vec<Entry>| {};
        for id in 0..(3 * SWEEP_MIN as ConnId) {
            timers.schedule(1000, id);
        }
        timers.sweep(&all_live);
        assert_eq!(timers.heap.lock().sweep_at, 6 * SWEEP_MIN);
        assert_eq!(ids(&timers).len(), 3 * SWEEP_MIN);
    }
}
