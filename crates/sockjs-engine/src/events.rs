//! The one queue that carries everything from the engine to JavaScript.
//!
//! Producers (the main thread, the timer task, WebSocket tasks) push events;
//! the waker (a napi threadsafe function) is called only when the queue turns
//! from empty to non-empty, and JavaScript then drains the whole batch in one
//! call. So there is at most one cross-thread call per batch, never one per
//! message.

use parking_lot::Mutex;

pub type ConnId = u32;
pub type ReceiverId = u32;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A session is open: emit `'connection'`.
    Open(ConnId),
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
    /// A line for the application's log: severity, message.
    Log(&'static str, String),
}

struct Inner {
    events: Vec<Event>,
    /// HTTP sessions whose outputs must be collected before the next batch.
    dirty: Vec<ConnId>,
}

pub struct EventQueue {
    inner: Mutex<Inner>,
    wake: Box<dyn Fn() + Send + Sync>,
}

impl EventQueue {
    pub fn new(wake: Box<dyn Fn() + Send + Sync>) -> EventQueue {
        EventQueue {
            inner: Mutex::new(Inner {
                events: Vec::new(),
                dirty: Vec::new(),
            }),
            wake,
        }
    }

    pub fn push(&self, event: Event) {
        self.push_all(std::iter::once(event));
    }

    pub fn push_all(&self, events: impl IntoIterator<Item = Event>) {
        let was_empty;
        {
            let mut inner = self.inner.lock();
            was_empty = inner.events.is_empty() && inner.dirty.is_empty();
            inner.events.extend(events);
            if inner.events.is_empty() && inner.dirty.is_empty() {
                return;
            }
        }
        if was_empty {
            (self.wake)();
        }
    }

    /// Ask for `conn`'s outputs to be collected at the next drain.
    pub fn mark_dirty(&self, conn: ConnId) {
        let was_empty;
        {
            let mut inner = self.inner.lock();
            was_empty = inner.events.is_empty() && inner.dirty.is_empty();
            inner.dirty.push(conn);
        }
        if was_empty {
            (self.wake)();
        }
    }

    /// Take the dirty sessions (collected first, so their events join the batch).
    pub fn take_dirty(&self) -> Vec<ConnId> {
        std::mem::take(&mut self.inner.lock().dirty)
    }

    /// Take every queued event.
    pub fn take_events(&self) -> Vec<Event> {
        std::mem::take(&mut self.inner.lock().events)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[test]
    fn wakes_once_per_batch() {
        let wakes = Arc::new(AtomicUsize::new(0));
        let w = wakes.clone();
        let q = EventQueue::new(Box::new(move || {
            w.fetch_add(1, Ordering::SeqCst);
        }));
        q.push(Event::Open(1));
        q.push(Event::Message(1, "a".into()));
        q.mark_dirty(1);
        assert_eq!(wakes.load(Ordering::SeqCst), 1);
        assert_eq!(q.take_dirty(), vec![1]);
        assert_eq!(q.take_events().len(), 2);
        q.push(Event::Close(1));
        assert_eq!(wakes.load(Ordering::SeqCst), 2);
    }
}
