//! The wake-up of one WebSocket connection's task: a flag and the task's
//! waker.
//!
//! It does for one waiter what tokio's `Notify` does (a wake with nobody
//! waiting is kept for the next wait), but waiting on it needs no future of
//! its own: a `Notified` is 64 bytes, and the task's loop holds it beside
//! everything else in the task's future for the connection's whole life.

use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use futures_util::task::AtomicWaker;

#[derive(Default)]
pub struct TaskWake {
    pending: AtomicBool,
    waker: AtomicWaker,
}

impl TaskWake {
    /// Wake the task, or have its next `poll_woken` return at once.
    pub fn wake(&self) {
        self.pending.store(true, Ordering::Release);
        self.waker.wake();
    }

    /// Ready once per `wake` (wakes in between count once).
    pub fn poll_woken(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.pending.swap(false, Ordering::AcqRel) {
            return Poll::Ready(());
        }
        // Registered before the second look: a wake between the two looks
        // either sets the flag seen below or finds the waker.
        self.waker.register(cx.waker());
        if self.pending.swap(false, Ordering::AcqRel) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::task::{Wake, Waker};

    struct Count(std::sync::atomic::AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// A waker that counts its wakes.
    fn counting_waker() -> (Arc<Count>, Waker) {
        let count = Arc::new(Count(Default::default()));
        (count.clone(), count.into())
    }

    #[test]
    fn a_wake_before_the_wait_is_kept_and_counts_once() {
        let t = TaskWake::default();
        let (_, waker) = counting_waker();
        let mut cx = Context::from_waker(&waker);
        t.wake();
        t.wake();
        assert_eq!(t.poll_woken(&mut cx), Poll::Ready(()));
        assert_eq!(t.poll_woken(&mut cx), Poll::Pending);
    }

    #[test]
    fn a_wake_after_the_wait_calls_the_waker() {
        let t = TaskWake::default();
        let (count, waker) = counting_waker();
        let mut cx = Context::from_waker(&waker);
        assert_eq!(t.poll_woken(&mut cx), Poll::Pending);
        t.wake();
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        assert_eq!(t.poll_woken(&mut cx), Poll::Ready(()));
    }
}
