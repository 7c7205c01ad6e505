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
