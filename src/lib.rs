//! napi glue: exposes the engine to the JavaScript facade as free functions
//! over an external handle (`create` makes one; `lib/engine.js` wraps it in
//! a class). Conversions only; no protocol logic lives here.
//!
//! Not a `#[napi]` class: napi-rs checks every call of a class method
//! against a process-wide borrow table behind a mutex, which made a call
//! about 380 ns; a function taking the handle costs about 140 ns, and
//! `send` runs once per message.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

// Byte arguments are `BufferSlice`s, views valid for the call: a `Buffer`
// argument makes a napi reference to the JavaScript object and deletes it
// again on drop, on every call.
use napi::bindgen_prelude::{Buffer, BufferSlice, Either, External, Float64ArraySlice, Function, Uint32ArraySlice};
use napi::{Env, JsValue};
use napi_derive::napi;
use sockjs_core::answer::{Jsessionid, Options, Request, Then, UpgradeHeaders};
use sockjs_core::route::Enabled;
use sockjs_engine::address::node_ip;
use sockjs_engine::header_blocks::{BlockId, HeaderBlocks};
use sockjs_engine::websocket::{Kind, Start};
use sockjs_engine::{Clock, Engine, Event, Sent, WakeFrom};

mod uv_wake;
use uv_wake::UvWake;

/// One `installHandlers` worth of options, already defaulted by JS.
#[napi(object)]
pub struct InstallOptions {
    pub sockjs_url: String,
    pub websocket: bool,
    pub transports: Option<Vec<String>>,
    /// 0: off, 1: cookie, 2: the application's function.
    pub jsessionid: u32,
    pub disable_cors: bool,
    pub base_url: Option<String>,
    pub base_url_is_function: bool,
    pub heartbeat_delay: f64,
    pub disconnect_delay: f64,
    pub response_limit: f64,
    pub max_message_size: f64,
    pub high_water_mark: f64,
    pub max_buffered_bytes: f64,
    pub origins: Vec<String>,
    /// 0: no limit.
    pub max_sessions: f64,
}

/// The parts of a request's head the engine reads, as JS passes them to
/// `request` and `upgrade`: method, path, query, origin, cookie,
/// if-none-match, content-type and access-control-request-headers, joined
/// by NUL (which Node's HTTP parser never lets into a URL or a header
/// value); an empty header is an absent one, as in sockjs-node's checks.
/// One string, not an array or an object: reading eleven array elements
/// through napi cost more than the engine's own work on the request.
const HEAD_FIELDS: usize = 8;

fn head_fields(head: &str) -> [&str; HEAD_FIELDS] {
    let mut fields = [""; HEAD_FIELDS];
    for (field, part) in fields.iter_mut().zip(head.splitn(HEAD_FIELDS, '\0')) {
        *field = part;
    }
    fields
}

/// `upgrade`'s answer when the upgrade proceeds on the SockJS endpoint.
#[napi]
pub const UPGRADE_SOCKJS: u32 = 0;
/// `upgrade`'s answer when it proceeds on the raw WebSocket endpoint.
#[napi]
pub const UPGRADE_RAW: u32 = 1;

/// How JS answers a request (see `sockjs_engine::Plan`). The numbers go
/// into `out`, a Float64Array of `PLAN_SLOTS` that JS makes once and passes
/// on every call; `request` returns the header block followed at once by
/// the body (the first chunk and any frames, one string), or by the body
/// alone when JavaScript already has the header block (`SLOT_HEADERS`).
///
/// Numbers in a typed array and text in one string: building a result
/// array (an array, a number or string per element, each set through napi)
/// was about half of a request's own cost, ~2 us, which on xhr-polling is
/// paid twice per message.
pub const PLAN_SLOTS: usize = 8;
/// The HTTP status.
pub const SLOT_STATUS: usize = 0;
/// The `PLAN_*` bits, and the kind (0: plain, 1: chunking test, 2: SockJS
/// WebSocket URL, 3: raw WebSocket URL) from bit 8.
pub const SLOT_FLAGS: usize = 1;
/// The receiver id the response stays open as, or -1.
pub const SLOT_RECEIVER: usize = 2;
/// The session joined, or -1.
pub const SLOT_CONN: usize = 3;
/// Where the body starts in the returned string (in UTF-16 units, as JS
/// counts): the header block before it, if sent, alternates names and
/// values, joined by newlines (neither can hold one).
pub const SLOT_BODY_AT: usize = 4;
/// The joining receiver's place in `protocols()`, or -1.
pub const SLOT_PROTOCOL: usize = 5;
/// Where the frames start, after the first chunk (a streaming prelude):
/// a response that stays open writes them as a chunk of their own.
pub const SLOT_FRAMES_AT: usize = 6;
/// The header block's id (`header_blocks`), or -1: the block is in the
/// text, to be used once. With `PLAN_NEW_HEADERS` the text holds the block
/// to remember by this id; without it, JavaScript has it already.
pub const SLOT_HEADERS: usize = 7;

/// The answer is complete: end the response after the body and frames.
pub const PLAN_END: u32 = 1;
/// The session opened with this request: emit 'connection'.
pub const PLAN_OPENED: u32 = 2;
/// Call the application's jsessionid function.
pub const PLAN_CALL_JSESSIONID: u32 = 4;
/// Ask again with the application's base_url.
pub const PLAN_NEEDS_BASE_URL: u32 = 8;
/// The text starts with a header block JavaScript has not seen.
pub const PLAN_NEW_HEADERS: u32 = 16;

/// Events since the last drain, as `[count, overflow, strings, buffers]`:
/// the events' (code, id) pairs, `count` numbers of them, are written into
/// the Uint32Array JS passes in, or come in `overflow` when they do not fit
/// there; events with text or bytes take the next entries of `strings` or
/// `buffers` in order. Numbers in a typed array: setting each element of a
/// JS array through napi was a fifth of the main thread's time in a
/// WebSocket echo. An array, not an object: napi interns every property
/// name anew on every call; an empty drain cost ~0.9 us with an object,
/// ~0.63 us with this.
pub type EventBatch = (u32, Option<Vec<u32>>, Vec<String>, Vec<Buffer>);

pub const EV_MESSAGE: u32 = 2;
pub const EV_CLOSE: u32 = 3;
pub const EV_WRITE: u32 = 4;
pub const EV_END: u32 = 5;
pub const EV_SOCKET_WRITE: u32 = 6;
pub const EV_SOCKET_END: u32 = 7;
pub const EV_LOG: u32 = 8;
pub const EV_DRAIN: u32 = 9;
pub const EV_SOCKET_RESUME: u32 = 10;
pub const EV_SOCKET_ABORT: u32 = 11;

/// What a handle holds.
pub struct Server {
    engine: Arc<Engine>,
    /// Events were queued by a call from JavaScript itself: the call calls
    /// `wake` before it returns, with no round trip through libuv.
    local_wake: Arc<AtomicBool>,
    /// JavaScript's wake function (`uv_wake.rs`): called through libuv
    /// for wakes from the runtime's threads, directly for the others.
    wake: Arc<UvWake>,
    /// The header blocks `request` sent JavaScript, by id (only Node's
    /// thread uses it; a lock, uncontended, because the handle is shared).
    header_blocks: Mutex<HeaderBlocks>,
}

impl Drop for Server {
    // External finalizers run on Node's thread, where the handle closes.
    fn drop(&mut self) {
        UvWake::release(self.wake.clone());
    }
}

fn millis(v: f64) -> u64 {
    if v.is_finite() && v > 0.0 {
        v as u64
    } else {
        0
    }
}

impl Server {
    /// Return `value`, calling `wake` first if this call queued events.
    fn woken<T>(&self, env: &Env, value: T) -> napi::Result<T> {
        if self.local_wake.swap(false, Ordering::Relaxed) {
            self.wake.call_here(env.raw())?;
        }
        Ok(value)
    }
}

/// How sessions close when their environment is torn down: as at the
/// process's exit (index.js).
const TEARDOWN_CLOSE_CODE: u16 = 1001;
const TEARDOWN_CLOSE_REASON: &str = "Server shutting down";

/// A new engine. `wake` is called (with no arguments) whenever events wait
/// in the queue; it must have `drain()` called soon (not from inside `wake`:
/// it may run at the end of any function taking the handle). It does not
/// keep Node alive.
#[napi(catch_unwind)]
pub fn create(env: Env, wake: Function<(), ()>) -> napi::Result<External<Server>> {
    let wake = UvWake::new(env.raw(), wake.raw())?;
    let sender = wake.clone();
    let later = sockjs_engine::runtime::deferred(move || sender.send());
    let local_wake = Arc::new(AtomicBool::new(false));
    let local = local_wake.clone();
    let engine = Engine::new(Box::new(move |from| match from {
        WakeFrom::Home => local.store(true, Ordering::Relaxed),
        WakeFrom::Elsewhere => later(),
    }));
    // A worker thread ending with sessions open: its sockets would
    // otherwise stay open, served by the runtime, with nobody to hear them.
    let engine_of_env = Arc::downgrade(&engine);
    wake.on_teardown(Box::new(move || {
        if let Some(engine) = engine_of_env.upgrade() {
            engine.shutdown(TEARDOWN_CLOSE_CODE, TEARDOWN_CLOSE_REASON, std::time::Duration::ZERO);
        }
    }));
    Ok(External::new(Server {
        engine,
        local_wake,
        wake,
        header_blocks: Mutex::new(HeaderBlocks::default()),
    }))
}

#[napi(catch_unwind)]
pub fn install(server: &External<Server>, env: Env, o: InstallOptions) -> napi::Result<u32> {
    let mut opts = Options::new(&o.sockjs_url);
    if let Some(names) = &o.transports {
        opts.enabled = Enabled::from_names(names.iter().map(String::as_str)).map_err(napi::Error::from_reason)?;
        opts.transports_listed = Some(names.clone());
    }
    if !o.websocket {
        opts.enabled.websocket = false;
        opts.enabled.websocket_raw = false;
    }
    opts.jsessionid = match o.jsessionid {
        1 => Jsessionid::Cookie,
        2 => Jsessionid::Function,
        _ => Jsessionid::Off,
    };
    opts.disable_cors = o.disable_cors;
    opts.base_url = o.base_url;
    opts.base_url_is_function = o.base_url_is_function;
    opts.session.heartbeat_ms = millis(o.heartbeat_delay);
    opts.session.disconnect_ms = millis(o.disconnect_delay);
    opts.session.response_limit = millis(o.response_limit) as usize;
    opts.max_body = millis(o.max_message_size) as usize;
    opts.high_water_mark = millis(o.high_water_mark) as usize;
    opts.max_buffered = millis(o.max_buffered_bytes) as usize;
    opts.origins = o.origins;
    opts.max_sessions = match millis(o.max_sessions) {
        0 => usize::MAX,
        n => n as usize,
    };
    let install = server.engine.install(opts);
    server.woken(&env, install)
}

/// Whether an `'upgrade'` request proceeds: `UPGRADE_SOCKJS` or
/// `UPGRADE_RAW`, or else the whole HTTP answer to write. The headers come
/// as arguments and the answer as a number: reading fields of an object
/// and building one through napi cost more than the check itself.
#[napi(catch_unwind)]
#[allow(clippy::too_many_arguments)] // headers as arguments: no object to read
pub fn upgrade(
    server: &External<Server>,
    env: Env,
    install: u32,
    head: String,
    upgrade: Option<String>,
    connection: Option<String>,
    version: Option<String>,
    key: Option<String>,
) -> napi::Result<Either<u32, Buffer>> {
    let req = request_of(head_fields(&head), None, false, None);
    let h = UpgradeHeaders {
        upgrade: upgrade.as_deref(),
        connection: connection.as_deref(),
        version: version.as_deref(),
        key: key.as_deref(),
    };
    let decision = match server.engine.check_upgrade(install, &req, &h) {
        Ok(Kind::Raw) => Either::A(UPGRADE_RAW),
        Ok(Kind::Sockjs) => Either::A(UPGRADE_SOCKJS),
        Err(bytes) => Either::B(bytes.into()),
    };
    server.woken(&env, decision)
}

/// Where `adopt_websocket` leaves its numbers (lib/engine.js reads them).
pub const ADOPT_SLOTS: usize = 4;
/// The new session's id.
pub const ADOPT_ID: usize = 0;
/// The peer's port.
pub const ADOPT_REMOTE_PORT: usize = 1;
/// The local port.
pub const ADOPT_LOCAL_PORT: usize = 2;
/// The local address's family: 4 or 6.
pub const ADOPT_FAMILY: usize = 3;

/// `adopt_websocket`'s flags: the raw WebSocket (not SockJS's)...
pub const ADOPT_RAW: u32 = 1;
/// ...and Node set TCP_NODELAY on the socket already.
pub const ADOPT_NODELAY_SET: u32 = 2;

/// Adopt a plain TCP socket's descriptor for a WebSocket (the caller
/// destroys its socket afterwards); `flags`: `ADOPT_RAW`, `ADOPT_NODELAY_SET`.
/// The numbers go into `out` (`ADOPT_*`);
/// the result is the peer's and the local IP as Node writes them, joined
/// by a space, or empty where the caller had better ask its socket. Asked
/// of the socket here: through Node, the two lookups and the objects they
/// make were about 2.6 us of every WebSocket's opening.
#[napi(catch_unwind)]
pub fn adopt_websocket(
    server: &External<Server>,
    install: u32,
    flags: u32,
    fd: i32,
    key: String,
    head: BufferSlice<'_>,
    mut out: Uint32ArraySlice,
) -> napi::Result<String> {
    // SAFETY: JavaScript runs nothing while this function does.
    let out = unsafe { out.as_mut() };
    if out.len() < ADOPT_SLOTS {
        return Err(napi::Error::from_reason("adoptWebsocket: the out array is too short"));
    }
    let adopted = server
        .engine
        .adopt_websocket(
            start_of(install, flags & ADOPT_RAW != 0, key, &head),
            fd,
            flags & ADOPT_NODELAY_SET != 0,
        )
        .map_err(|e| napi::Error::from_reason(e.to_string()))?;
    out[ADOPT_ID] = adopted.id;
    let Some((peer, local)) = adopted.addresses else {
        return Ok(String::new());
    };
    let (Some(peer_ip), Some(local_ip)) = (node_ip(&peer), node_ip(&local)) else {
        return Ok(String::new());
    };
    out[ADOPT_REMOTE_PORT] = u32::from(peer.port());
    out[ADOPT_LOCAL_PORT] = u32::from(local.port());
    out[ADOPT_FAMILY] = if local.is_ipv4() { 4 } else { 6 };
    Ok(format!("{peer_ip} {local_ip}"))
}

/// Run a WebSocket over bytes bridged from a JS socket (TLS, streams
/// without a descriptor). Returns the session id.
#[napi(catch_unwind)]
pub fn pipe_websocket(server: &External<Server>, install: u32, raw: bool, key: String, head: BufferSlice<'_>) -> u32 {
    server.engine.pipe_websocket(start_of(install, raw, key, &head))
}

/// Bytes from the bridged socket. `false`: pause the socket until the
/// session's `EV_SOCKET_RESUME`.
#[napi(catch_unwind)]
pub fn pipe_feed(server: &External<Server>, conn: u32, bytes: BufferSlice<'_>) -> bool {
    server.engine.pipe_feed(conn, Some(bytes.to_vec()))
}

/// The bridged socket's `write` returned false (`true`), or it drained
/// (`false`).
#[napi(catch_unwind)]
pub fn pipe_blocked(server: &External<Server>, conn: u32, blocked: bool) {
    server.engine.pipe_blocked(conn, blocked);
}

#[napi(catch_unwind)]
pub fn pipe_end(server: &External<Server>, conn: u32) {
    let _ = server.engine.pipe_feed(conn, None);
}

#[napi(catch_unwind)]
#[allow(clippy::too_many_arguments)] // one call per request: no object to build
pub fn request(
    server: &External<Server>,
    env: Env,
    install: u32,
    head: String,
    body: Option<BufferSlice<'_>>,
    body_too_large: bool,
    base_url: Option<String>,
    mut plan_out: Float64ArraySlice,
) -> napi::Result<String> {
    // SAFETY: JavaScript runs nothing while this function does, until the
    // wake call at its end, which is after the last use of `out`.
    let out = unsafe { plan_out.as_mut() };
    if out.len() < PLAN_SLOTS {
        return Err(napi::Error::from_reason("request: the plan array is too short"));
    }
    let req = request_of(head_fields(&head), body.as_deref(), body_too_large, base_url.as_deref());
    let plan = server.engine.request(install, &req);
    let a = plan.answer;
    let kind: u32 = match a.then {
        Then::ChunkingTest => 1,
        Then::WebSocket { raw: false } => 2,
        Then::WebSocket { raw: true } => 3,
        _ => 0,
    };
    let body_len = a.body.len() + plan.frames.iter().map(String::len).sum::<usize>();
    let mut text = String::with_capacity(body_len + 256);
    for (name, value) in a.headers {
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(name);
        text.push('\n');
        text.push_str(&value);
    }
    let block_id = server.header_blocks.lock().id_of(&text);
    if let BlockId::Known(_) = block_id {
        text.clear();
    }
    let flag = |on: bool, bit: u32| if on { bit } else { 0 };
    let flags = kind << 8
        | flag(plan.end, PLAN_END)
        | flag(plan.opened, PLAN_OPENED)
        | flag(a.call_jsessionid, PLAN_CALL_JSESSIONID)
        | flag(a.needs_base_url, PLAN_NEEDS_BASE_URL)
        | flag(matches!(block_id, BlockId::New(_)), PLAN_NEW_HEADERS);
    let body_at = js_length(&text);
    let frames_at = body_at + js_length(&a.body);
    text.push_str(&a.body);
    for frame in &plan.frames {
        text.push_str(frame);
    }
    let or_none = |id: Option<u32>| id.map_or(-1.0, f64::from);
    out[SLOT_STATUS] = f64::from(a.status);
    out[SLOT_FLAGS] = f64::from(flags);
    out[SLOT_RECEIVER] = or_none(plan.receiver);
    out[SLOT_CONN] = or_none(plan.conn);
    out[SLOT_BODY_AT] = body_at as f64;
    out[SLOT_PROTOCOL] = plan.protocol.map_or(-1.0, |i| i as f64);
    out[SLOT_FRAMES_AT] = frames_at as f64;
    out[SLOT_HEADERS] = match block_id {
        BlockId::Known(id) | BlockId::New(id) => f64::from(id),
        BlockId::Uncached => -1.0,
    };
    server.woken(&env, text)
}

/// A string's length as JavaScript counts it (UTF-16 units).
fn js_length(s: &str) -> usize {
    if s.is_ascii() {
        s.len()
    } else {
        s.encode_utf16().count()
    }
}

/// Every transport's name, as `conn.protocol` gives it; a request's plan
/// refers to one by its place here.
#[napi]
pub fn protocols() -> Vec<&'static str> {
    sockjs_core::receiver::PROTOCOLS.to_vec()
}

#[napi(catch_unwind)]
pub fn receiver_aborted(server: &External<Server>, env: Env, receiver: u32) -> napi::Result<()> {
    server.engine.receiver_aborted(receiver);
    server.woken(&env, ())
}

/// 0: queued, keep writing; 1: queued, but past the high-water mark (a
/// `drain` event follows once the buffer empties); 2: refused, the
/// session is not open (or was closed for going over the hard limit).
#[napi(catch_unwind)]
pub fn send(server: &External<Server>, env: Env, conn: u32, message: String) -> napi::Result<u32> {
    let sent = match server.engine.send(conn, message) {
        Sent::Queued => 0,
        Sent::Full => 1,
        Sent::Refused => 2,
    };
    server.woken(&env, sent)
}

/// Write `message` to the sessions `conns` (a Uint32Array of ids; all of
/// this server's when absent); returns how many took it.
#[napi(catch_unwind)]
pub fn broadcast(server: &External<Server>, env: Env, message: String, conns: Option<&[u32]>) -> napi::Result<u32> {
    let taken = server.engine.broadcast(&message, conns) as u32;
    server.woken(&env, taken)
}

#[napi(catch_unwind)]
pub fn buffered_amount(server: &External<Server>, conn: u32) -> f64 {
    server.engine.buffered_amount(conn) as f64
}

#[napi(catch_unwind)]
pub fn close(server: &External<Server>, env: Env, conn: u32, code: u32, reason: String) -> napi::Result<bool> {
    let closed = server.engine.close(conn, close_code(code), &reason);
    server.woken(&env, closed)
}

#[napi(catch_unwind)]
pub fn terminate_all(server: &External<Server>, env: Env, code: u32, reason: String) -> napi::Result<()> {
    server.engine.terminate_all(close_code(code), &reason);
    server.woken(&env, ())
}

/// The process is exiting: close every session; wait up to `wait_ms`
/// for WebSocket close frames to go out.
#[napi(catch_unwind)]
pub fn shutdown(server: &External<Server>, code: u32, reason: String, wait_ms: u32) {
    let wait = std::time::Duration::from_millis(u64::from(wait_ms));
    server.engine.shutdown(close_code(code), &reason, wait);
}

/// The chunking test's writes, as [delay in ms, chunk] pairs.
#[napi(catch_unwind)]
pub fn chunking_test_schedule() -> Vec<(u32, String)> {
    sockjs_core::answer::CHUNKING_TEST_SCHEDULE
        .iter()
        .map(|(ms, s)| (*ms as u32, (*s).to_owned()))
        .collect()
}

#[napi(catch_unwind)]
pub fn drain(server: &External<Server>, mut codes_out: Uint32ArraySlice) -> EventBatch {
    let events = server.engine.drain();
    let count = events.len() * 2;
    // SAFETY: JavaScript runs nothing while this function does; `out` is
    // not used past it.
    let out = unsafe { codes_out.as_mut() };
    // The codes go straight into JS's array when they fit, else into their own.
    let mut overflow = (out.len() < count).then(|| vec![0; count]);
    let codes = match overflow.as_mut() {
        Some(own) => own.as_mut_slice(),
        None => &mut out[..count],
    };
    let mut strings = Vec::new();
    let mut buffers = Vec::new();
    for (event, pair) in events.into_iter().zip(codes.chunks_exact_mut(2)) {
        let (code, id) = match event {
            Event::Message(c, s) => {
                strings.push(s);
                (EV_MESSAGE, c)
            }
            Event::Close(c) => (EV_CLOSE, c),
            Event::Drain(c) => (EV_DRAIN, c),
            Event::Write(r, s) => {
                strings.push(s);
                (EV_WRITE, r)
            }
            Event::End(r) => (EV_END, r),
            Event::SocketWrite(c, bytes) => {
                buffers.push(bytes.into());
                (EV_SOCKET_WRITE, c)
            }
            Event::SocketEnd(c) => (EV_SOCKET_END, c),
            Event::SocketResume(c) => (EV_SOCKET_RESUME, c),
            Event::SocketAbort(c) => (EV_SOCKET_ABORT, c),
            Event::Log(severity, line) => {
                strings.push(severity.to_owned());
                strings.push(line);
                (EV_LOG, 0)
            }
        };
        pair[0] = code;
        pair[1] = id;
    }
    (count as u32, overflow, strings, buffers)
}

/// What a WebSocket connection starts from, as the two ways in pass it.
fn start_of(install: u32, raw: bool, key: String, head: &[u8]) -> Start {
    Start {
        install,
        kind: if raw { Kind::Raw } else { Kind::Sockjs },
        key,
        head: head.to_vec(),
    }
}

/// A close code from JavaScript, held to the u16 the protocol has room for.
fn close_code(code: u32) -> u16 {
    code.min(u32::from(u16::MAX)) as u16
}

fn request_of<'a>(
    head: [&'a str; HEAD_FIELDS],
    body: Option<&'a [u8]>,
    body_too_large: bool,
    base_url: Option<&'a str>,
) -> Request<'a> {
    let [method, path, query, origin, cookie, if_none_match, content_type, acrh] = head;
    let present = |value: &'a str| Some(value).filter(|v| !v.is_empty());
    Request {
        method,
        path,
        query,
        origin: present(origin),
        cookie: present(cookie),
        if_none_match: present(if_none_match),
        content_type: present(content_type),
        access_control_request_headers: present(acrh),
        body: body.unwrap_or(&[]),
        body_too_large,
        base_url,
        now_unix: Clock::unix_now(),
        entropy: sockjs_engine::entropy(),
    }
}
