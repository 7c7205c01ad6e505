//! Waking JavaScript from the runtime's threads: a libuv async handle on
//! Node's own event loop, whose callback calls the facade's wake function.
//!
//! Why not napi's threadsafe function: its call takes the function's mutex
//! and sends the wake-up while holding it. When Node and the runtime share a
//! core, the woken loop thread preempts the runtime's thread inside that
//! lock, blocks on the lock and hands the core back: three futex calls and
//! two more context switches for every batch of events. `uv_async_send`
//! takes no lock, and libuv coalesces sends until the callback has run, as
//! the threadsafe function did.
//!
//! The handle is unreferenced: it never keeps Node alive (the facade holds a
//! timer while sessions live). The function is held weakly: it is the
//! facade's closure over its server, which the facade keeps alive itself, so
//! that a server the application drops can be collected (a strong reference
//! here would be a GC root holding it forever). The handle is closed on
//! Node's thread, when the server is dropped or the environment is torn
//! down, whichever comes first; a send after that does nothing. A teardown
//! of the environment (a worker thread's end) also runs the owner's
//! `on_teardown` action: the runtime outlives the environment, and what it
//! serves for it must not.

use std::ffi::{c_int, c_void};
use std::ptr;
use std::sync::Arc;

use napi::sys;
use parking_lot::Mutex;

// libuv, as Node exports it to addons.
extern "C" {
    fn uv_handle_size(kind: c_int) -> usize;
    fn uv_async_init(
        event_loop: *mut sys::uv_loop_s,
        handle: *mut c_void,
        callback: unsafe extern "C" fn(*mut c_void),
    ) -> c_int;
    fn uv_async_send(handle: *mut c_void) -> c_int;
    fn uv_unref(handle: *mut c_void);
    fn uv_close(handle: *mut c_void, callback: unsafe extern "C" fn(*mut c_void));
}

/// `UV_ASYNC` in libuv's `uv_handle_type`.
const UV_ASYNC: c_int = 1;

/// What the callback needs. The handle's first field, `data`, which libuv
/// leaves to its user, points here.
struct Target {
    env: sys::napi_env,
    function: sys::napi_ref,
    /// The handle's memory, in 8-byte words (freed once libuv closed it).
    words: usize,
}

/// The open handle, while it is open.
struct Handle(*mut c_void);

// The pointer is only sent through (`uv_async_send` is the one libuv call
// that is safe from any thread) and closed on Node's thread.
unsafe impl Send for Handle {}

/// What the owner does when the environment goes away before it.
type Teardown = Box<dyn FnOnce() + Send>;

pub struct UvWake {
    env: sys::napi_env,
    handle: Mutex<Option<Handle>>,
    teardown: Mutex<Option<Teardown>>,
}

// `env` is only used on Node's thread (in `close`).
unsafe impl Send for UvWake {}
unsafe impl Sync for UvWake {}

impl UvWake {
    /// An async handle on `env`'s loop that calls `function` (no arguments)
    /// on Node's thread after one or more `send`s, while `function` lives
    /// (the caller keeps it alive).
    pub fn new(env: sys::napi_env, function: sys::napi_value) -> napi::Result<Arc<UvWake>> {
        let mut event_loop = ptr::null_mut();
        check(
            unsafe { sys::napi_get_uv_event_loop(env, &mut event_loop) },
            "napi_get_uv_event_loop",
        )?;
        let mut reference = ptr::null_mut();
        check(
            unsafe { sys::napi_create_reference(env, function, 0, &mut reference) },
            "napi_create_reference",
        )?;
        let words = unsafe { uv_handle_size(UV_ASYNC) }.div_ceil(8);
        let handle = Box::into_raw(vec![0u64; words].into_boxed_slice()) as *mut c_void;
        let target = Box::into_raw(Box::new(Target {
            env,
            function: reference,
            words,
        }));
        unsafe {
            if uv_async_init(event_loop, handle, on_send) != 0 {
                drop(Box::from_raw(target));
                free_handle(handle, words);
                sys::napi_delete_reference(env, reference);
                return Err(napi::Error::from_reason("uv_async_init failed"));
            }
            *(handle as *mut *mut Target) = target;
            uv_unref(handle);
        }
        let wake = Arc::new(UvWake {
            env,
            handle: Mutex::new(Some(Handle(handle))),
            teardown: Mutex::new(None),
        });
        let hook_arg = Arc::into_raw(wake.clone()) as *mut c_void;
        let hooked = check(
            unsafe { sys::napi_add_env_cleanup_hook(env, Some(on_env_teardown), hook_arg) },
            "napi_add_env_cleanup_hook",
        );
        if hooked.is_err() {
            wake.close();
            unsafe { drop(Arc::from_raw(hook_arg as *const UvWake)) };
        }
        hooked.map(|()| wake)
    }

    /// Run `action` if the environment is torn down while this is open.
    pub fn on_teardown(&self, action: Teardown) {
        *self.teardown.lock() = Some(action);
    }

    /// Ask for a call of the function on Node's thread. From any thread.
    pub fn send(&self) {
        if let Some(Handle(handle)) = &*self.handle.lock() {
            unsafe { uv_async_send(*handle) };
        }
    }

    /// Call the function now, from a call JavaScript made (Node's thread,
    /// inside a scope): a wake that needs no round trip through libuv.
    pub fn call_here(&self, env: sys::napi_env) -> napi::Result<()> {
        // Not under the lock while JavaScript runs: the target is freed only
        // after `close`, which runs on this thread, not inside the call.
        let reference = match &*self.handle.lock() {
            Some(Handle(handle)) => unsafe { (*(*(*handle as *mut *mut Target))).function },
            None => return Ok(()),
        };
        let Some(function) = (unsafe { live_function(env, reference) }) else {
            return Ok(());
        };
        let mut receiver = ptr::null_mut();
        let mut result = ptr::null_mut();
        unsafe {
            check(sys::napi_get_undefined(env, &mut receiver), "napi_get_undefined")?;
            check(
                sys::napi_call_function(env, receiver, function, 0, ptr::null(), &mut result),
                "calling the wake function",
            )
        }
    }

    /// Close the handle; on Node's thread only. Later sends do nothing.
    pub fn close(&self) {
        let Some(Handle(handle)) = self.handle.lock().take() else {
            return;
        };
        unsafe {
            let target = &*(*(handle as *mut *mut Target));
            sys::napi_delete_reference(target.env, target.function);
            uv_close(handle, on_closed);
        }
    }

    /// Close the handle and forget the teardown hook; on Node's thread, when
    /// the server is dropped.
    pub fn release(wake: Arc<UvWake>) {
        wake.teardown.lock().take();
        wake.close();
        let hook_arg = Arc::as_ptr(&wake) as *mut c_void;
        let status = unsafe { sys::napi_remove_env_cleanup_hook(wake.env, Some(on_env_teardown), hook_arg) };
        if status == sys::Status::napi_ok {
            // The reference the hook held (kept, leaked, if Node still
            // holds the hook).
            unsafe { drop(Arc::from_raw(hook_arg as *const UvWake)) };
        }
    }
}

fn check(status: sys::napi_status, what: &str) -> napi::Result<()> {
    if status == sys::Status::napi_ok {
        Ok(())
    } else {
        Err(napi::Error::from_reason(format!("{what} failed ({status})")))
    }
}

/// The function behind the weak reference, unless it has been collected
/// (then its server is gone and nobody needs waking).
unsafe fn live_function(env: sys::napi_env, reference: sys::napi_ref) -> Option<sys::napi_value> {
    let mut function = ptr::null_mut();
    let status = sys::napi_get_reference_value(env, reference, &mut function);
    (status == sys::Status::napi_ok && !function.is_null()).then_some(function)
}

unsafe fn free_handle(handle: *mut c_void, words: usize) {
    drop(Box::from_raw(ptr::slice_from_raw_parts_mut(handle as *mut u64, words)));
}

/// libuv's callback, on Node's thread: call the function as a top-level
/// callback (so that ticks and microtasks it queues run after it); an
/// exception it throws goes to `process.on('uncaughtException')`. The
/// receiver is the global object: napi_make_callback wants an object.
unsafe extern "C" fn on_send(handle: *mut c_void) {
    let target = &*(*(handle as *mut *mut Target));
    let env = target.env;
    let mut scope = ptr::null_mut();
    if sys::napi_open_handle_scope(env, &mut scope) != sys::Status::napi_ok {
        return;
    }
    let mut receiver = ptr::null_mut();
    let mut result = ptr::null_mut();
    if let Some(function) = live_function(env, target.function) {
        if sys::napi_get_global(env, &mut receiver) == sys::Status::napi_ok {
            let status = sys::napi_make_callback(env, ptr::null_mut(), receiver, function, 0, ptr::null(), &mut result);
            if status == sys::Status::napi_pending_exception {
                let mut error = ptr::null_mut();
                if sys::napi_get_and_clear_last_exception(env, &mut error) == sys::Status::napi_ok {
                    sys::napi_fatal_exception(env, error);
                }
            }
        }
    }
    sys::napi_close_handle_scope(env, scope);
}

/// libuv is done with the handle: free it and its target.
unsafe extern "C" fn on_closed(handle: *mut c_void) {
    let target = Box::from_raw(*(handle as *mut *mut Target));
    free_handle(handle, target.words);
}

/// Node's environment is going away (process exit, a worker's end): an open
/// handle would keep its loop from closing, and the owner has its own
/// teardown. The hook's reference stays with the server, whose drop
/// releases it.
unsafe extern "C" fn on_env_teardown(arg: *mut c_void) {
    let wake = &*(arg as *const UvWake);
    wake.close();
    let action = wake.teardown.lock().take();
    if let Some(action) = action {
        action();
    }
}
