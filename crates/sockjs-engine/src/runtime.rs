//! The process-wide tokio runtime that runs WebSocket connections and the
//! timer tasks, off Node's main thread.

use std::sync::OnceLock;

use tokio::runtime::{Builder, Runtime};

static RUNTIME: OnceLock<Runtime> = OnceLock::new();

/// Worker threads: `SOCKJS_THREADS`, else one per core up to four.
fn worker_threads() -> usize {
    std::env::var("SOCKJS_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get().min(4)))
}

pub fn get() -> &'static Runtime {
    RUNTIME.get_or_init(|| {
        Builder::new_multi_thread()
            .worker_threads(worker_threads())
            .thread_name("sockjs-io")
            .enable_all()
            .build()
            .expect("the tokio runtime starts")
    })
}

/// `wake`, called on the runtime once the tasks that are ready now have
/// run: events that several connections queue in one pass of the scheduler
/// reach JavaScript with one wake-up, not one each (each wake-up costs a
/// syscall on both sides, and a context switch when Node and the runtime
/// share a core). The returned function asks for a call; asking again
/// before it happened changes nothing. Dropping it ends the task.
pub fn deferred(wake: impl Fn() + Send + 'static) -> impl Fn() + Send + Sync + 'static {
    let (ask, mut asked) = tokio::sync::mpsc::channel::<()>(1);
    get().spawn(async move {
        while asked.recv().await.is_some() {
            tokio::task::yield_now().await;
            wake();
        }
    });
    move || {
        let _ = ask.try_send(());
    }
}
