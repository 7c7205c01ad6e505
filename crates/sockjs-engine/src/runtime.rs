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
            .on_thread_start(io_thread_policy)
            .enable_all()
            .build()
            .expect("the tokio runtime starts")
    })
}

/// The runtime has a single thread: it shares one CPU with JavaScript's
/// (see `direct`).
pub fn one_thread() -> bool {
    get().metrics().num_workers() == 1
}

/// The runtime's threads do not preempt JavaScript's when it wakes them
/// (Linux's SCHED_BATCH, unless `SOCKJS_IO_POLICY=normal`). On a core both
/// share, each write, spawn or registration from JavaScript would otherwise
/// switch to the runtime's thread at once and back again. With it, the
/// runtime's thread runs when JavaScript's waits for I/O (or at the next
/// scheduler tick) and takes everything queued meanwhile in one turn; on an
/// idle core it runs at once, as before, and its share of the CPU is the
/// same. Measured on one shared core, server CPU: 100x1 WebSocket echo -14%
/// per message (with lower latency), churn -8 to -13%, broadcast -20%.
fn io_thread_policy() {
    #[cfg(target_os = "linux")]
    if std::env::var("SOCKJS_IO_POLICY").map_or(true, |v| v != "normal") {
        #[repr(C)]
        struct SchedParam {
            sched_priority: i32,
        }
        extern "C" {
            fn sched_setscheduler(pid: i32, policy: i32, param: *const SchedParam) -> i32;
        }
        const SCHED_BATCH: i32 = 3;
        // SAFETY: pid 0 is the calling thread; the parameter outlives the
        // call. A refusal (a sandbox) leaves the default policy: no harm.
        unsafe { sched_setscheduler(0, SCHED_BATCH, &SchedParam { sched_priority: 0 }) };
    }
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
