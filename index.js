'use strict';
// The sockjs-node API over the native engine. This file holds the API and
// the I/O plumbing between Node's http objects and the engine; every byte
// of protocol (status, headers, frames, when to end) comes from Rust.

const { EventEmitter } = require('node:events');
const { Engine, UPGRADE_RAW } = require('./lib/engine.js');
const { Session, Transport, noDelaySet } = require('./lib/transport');
const pkg = require('./package.json');

const DEFAULTS = {
  prefix: '',
  response_limit: 128 * 1024,
  websocket: true,
  faye_server_options: null,
  jsessionid: false,
  heartbeat_delay: 25000,
  disconnect_delay: 5000,
  log: (severity, line) => console.log(line),
  sockjs_url: 'https://cdn.jsdelivr.net/npm/sockjs-client@1/dist/sockjs.min.js',
  max_message_size: 64 * 1024 * 1024,
  high_water_mark: 1024 * 1024,
  max_buffered_bytes: 16 * 1024 * 1024,
  origins: ['*:*'],
  max_sessions: 0,
};

// Event codes of the engine's drain (src/lib.rs).
const EV_MESSAGE = 2;
const EV_CLOSE = 3;
const EV_WRITE = 4;
const EV_END = 5;
const EV_SOCKET_WRITE = 6;
const EV_SOCKET_END = 7;
const EV_LOG = 8;
const EV_DRAIN = 9;
const EV_SOCKET_RESUME = 10;
const EV_SOCKET_ABORT = 11;
// How long an ended bridged socket may take to write out what it holds and
// close, before it is destroyed (the engine's close timeout for adopted ones).
const SOCKET_END_TIMEOUT_MS = 5000;
// On a bridged socket: its write() returned false and 'drain' is awaited.
const kFull = Symbol('sockjs.socketFull');
// Bits of a request plan's flags (src/lib.rs); the kind follows from bit 8.
const PLAN_END = 1;
const PLAN_OPENED = 2;
const PLAN_CALL_JSESSIONID = 4;
const PLAN_NEEDS_BASE_URL = 8;

let chunkingSchedule = null;

// Call the application's log function; a throw from it is rethrown on its
// own tick so that it cannot break the engine's bookkeeping.
function safeLog(options, severity, line) {
  try {
    options.log(severity, line);
  } catch (err) {
    process.nextTick(() => { throw err; });
  }
}

class Server extends EventEmitter {
  constructor(userOptions) {
    super();
    this.options = { ...DEFAULTS, ...(userOptions || {}) };
    this._engine = null;
    this._sessions = new Map(); // native id -> Session
    this._receivers = new Map(); // native receiver id -> http.ServerResponse
    this._attached = new Map(); // http server -> { request, upgrade } (0.4 attach)
    this._sockets = new Map(); // native id -> bridged net/tls socket
    this._keepAlive = null; // the timer keeping Node alive while sessions live
    this._drainScheduled = false;
    this._eventsPending = false;
    // Answers of the send endpoints waiting for this turn's drain:
    // [res, status, headers, body, ...].
    this._sendAnswers = [];
  }

  // The native engine, created on first install.
  get engine() {
    if (!this._engine) {
      this._engine = new Engine(() => this._scheduleDrain());
      closeOnExit(this._engine);
    }
    return this._engine;
  }

  listener(handlerOptions) {
    const options = { ...this.options, ...(handlerOptions || {}) };
    return new Listener(this, options);
  }

  installHandlers(httpServer, handlerOptions) {
    const handler = this.listener(handlerOptions).getHandler();
    overshadowListeners(httpServer, 'request', handler);
    overshadowListeners(httpServer, 'upgrade', handler);
    return true;
  }

  middleware(handlerOptions) {
    const handler = this.listener(handlerOptions).getHandler();
    handler.upgrade = handler;
    return handler;
  }

  // Write `message` to every open connection of this Server, or to
  // `connections` (SockJSConnection objects of this Server): the engine
  // quotes and frames it once and each session's transport writes it. Returns
  // how many connections took it. (New in this package.)
  broadcast(message, connections) {
    if (!this._engine) return 0;
    // The ids go over as one Uint32Array: an array would cost the engine a
    // napi element read per connection (60 us for 1,000).
    let ids;
    if (connections !== undefined) {
      const list = Array.isArray(connections) ? connections : [...connections];
      ids = new Uint32Array(list.length);
      let n = 0;
      for (const conn of list) {
        const session = conn && conn._session;
        if (session && this._sessions.get(session._nativeId) === session) ids[n++] = session._nativeId;
      }
      ids = ids.subarray(0, n);
    }
    return this._engine.broadcast(String(message), ids);
  }

  // sockjs 0.4: install on `server` with this Server's own options.
  attach(server) {
    if (this._attached.has(server)) return;
    const handler = this.listener().getHandler();
    this._attached.set(server, {
      request: overshadowListeners(server, 'request', handler),
      upgrade: overshadowListeners(server, 'upgrade', handler),
    });
  }

  // sockjs 0.4: remove what attach() installed, give the earlier listeners
  // their place back, and close this Server's sessions.
  detach(server) {
    const installed = this._attached.get(server);
    if (!installed) return;
    this._attached.delete(server);
    for (const event of ['request', 'upgrade']) {
      const { wrapper, previous } = installed[event];
      server.removeListener(event, wrapper);
      for (const l of previous) server.on(event, l);
    }
    if (this._attached.size === 0 && this._engine) {
      this._engine.terminateAll(1001, 'Server going away');
    }
  }

  // The engine has events: drain them once this turn of the event loop has
  // run its I/O callbacks (setImmediate), so that what they all queued goes
  // in one batch. The engine calls this through a libuv async handle for
  // events of its own threads (src/uv_wake.rs), and directly at the end of
  // a call from here that queued some (a message posted over HTTP, a write
  // to a polling session or a WebSocket): those are delivered in the same
  // turn of the event loop, without a round trip through libuv.
  _scheduleDrain() {
    this._eventsPending = true;
    this._scheduleImmediate();
  }

  _scheduleImmediate() {
    if (this._drainScheduled) return;
    this._drainScheduled = true;
    setImmediate(drainScheduled, this);
  }

  // The answer to an xhr_send or jsonp_send goes out after this turn's
  // drain, once the messages it carried were delivered and what the
  // application wrote in reply was handed to the session's receiver: the
  // order of sockjs-node, which delivers them before it answers. The
  // client is sent the reply and the answer back to back, not one turn of
  // the event loop apart: on loopback, each time the client's thread had
  // gone back to sleep in between and had to be woken again (xhr-streaming
  // echo -11% CPU per message, xhr-polling -3.5%).
  _answerSendLater(res, status, headers, body) {
    this._sendAnswers.push(res, status, headers, body);
    this._scheduleImmediate();
  }

  // Deliver everything the engine queued, in order. An exception thrown by
  // an application listener is rethrown on its own tick, after the batch,
  // so that no event of the batch is lost.
  _drain() {
    const [codes, count, strings, buffers] = this._engine.drain();
    let si = 0;
    let bi = 0;
    let failure = null;
    for (let i = 0; i < count; i += 2) {
      const code = codes[i];
      const id = codes[i + 1];
      try {
        switch (code) {
          case EV_MESSAGE: {
            const message = strings[si++];
            const session = this._sessions.get(id);
            if (session && session.readyState === Transport.OPEN) session.connection.emit('data', message);
            break;
          }
          case EV_CLOSE: {
            const session = this._sessions.get(id);
            if (session) {
              this.removeSession(id);
              session.readyState = Transport.CLOSED;
              const conn = session.connection;
              try {
                conn.emit('end');
              } finally {
                conn.emit('close');
              }
            }
            break;
          }
          case EV_DRAIN: {
            const session = this._sessions.get(id);
            if (session) session.connection.emit('drain');
            break;
          }
          case EV_WRITE: {
            const chunk = strings[si++];
            const res = this._receivers.get(id);
            if (res) res.write(chunk);
            break;
          }
          case EV_END: {
            const res = this._receivers.get(id);
            if (res) {
              this._receivers.delete(id);
              res.end();
            }
            break;
          }
          case EV_SOCKET_WRITE: {
            const bytes = buffers[bi++];
            const socket = this._sockets.get(id);
            if (socket && !socket.destroyed && !socket.write(bytes)) this.socketFull(id, socket);
            break;
          }
          case EV_SOCKET_END: {
            const socket = this.takeSocket(id);
            if (socket) endBridgedSocket(socket);
            break;
          }
          case EV_SOCKET_RESUME: {
            const socket = this._sockets.get(id);
            if (socket) socket.resume();
            break;
          }
          case EV_SOCKET_ABORT: {
            // The engine dropped the connection: what Node's socket still
            // holds is not owed to a peer that reads nothing.
            const socket = this.takeSocket(id);
            if (socket) socket.destroy();
            break;
          }
          case EV_LOG: {
            const severity = strings[si++];
            safeLog(this.options, severity, strings[si++]);
            break;
          }
          default:
            break;
        }
      } catch (err) {
        if (!failure) failure = err;
      }
    }
    if (failure) process.nextTick(() => { throw failure; });
  }
}

// One install: a prefix, its options and its handler.
class Listener {
  constructor(server, options) {
    this.server = server;
    this.options = options;
    const prefix = options.prefix || '';
    this.prefix = prefix;
    this.ownsUrl = new RegExp(`^${prefix}([/].+|[/]?)$`);
    this.prefixAtStart = new RegExp(`^${prefix}`);
    this.install = server.engine.install({
      sockjsUrl: String(options.sockjs_url),
      websocket: options.websocket !== false,
      transports: Array.isArray(options.transports) ? options.transports.map(String) : undefined,
      jsessionid: typeof options.jsessionid === 'function' ? 2 : options.jsessionid ? 1 : 0,
      disableCors: Boolean(options.disable_cors),
      baseUrl: typeof options.base_url === 'string' && options.base_url ? options.base_url : undefined,
      baseUrlIsFunction: typeof options.base_url === 'function',
      heartbeatDelay: Number(options.heartbeat_delay),
      disconnectDelay: Number(options.disconnect_delay),
      responseLimit: Number(options.response_limit),
      maxMessageSize: Number(options.max_message_size),
      highWaterMark: Number(options.high_water_mark),
      maxBufferedBytes: Number(options.max_buffered_bytes),
      origins: (Array.isArray(options.origins) ? options.origins : ['*:*']).map(String),
      maxSessions: Number(options.max_sessions) || 0,
    });
    this.log('debug', `SockJS v${pkg.version} bound to ${JSON.stringify(prefix)}`);
  }

  log(severity, line) {
    safeLog(this.options, severity, line);
  }

  // (req, res) for requests, (req, socket, head) for upgrades; true when
  // the URL is under this prefix and was handled here.
  handler(req, res, extra) {
    if (!this.ownsUrl.test(req.url)) {
      if (typeof extra === 'function') extra();
      return false;
    }
    const url = req.url;
    const q = url.indexOf('?');
    const pathname = q === -1 ? url : url.slice(0, q);
    const query = q === -1 ? '' : url.slice(q + 1);
    const path = pathname.replace(this.prefixAtStart, '');
    if (typeof res.writeHead !== 'function') {
      this.upgrade(req, res, extra, path, query);
      return true;
    }
    // Only the send endpoints (xhr_send, jsonp_send) read a body; the
    // others answer at once, as sockjs-node does, and Node discards any body
    // they were sent once the response is done.
    if (req.method === 'POST' && path.endsWith('_send')) {
      const started = Date.now();
      readBody(req, Number(this.options.max_message_size), (body, tooLarge) => {
        this.answer(req, res, path, query, body, tooLarge, Date.now() - started, true);
      });
    } else {
      // Answered within this call: the log line's time is 0 ms, as the
      // clock would say (two Date.now() calls were ~2% of xhr-polling).
      this.answer(req, res, path, query, null, false, 0);
    }
    return true;
  }

  getHandler() {
    return (a, b, c) => this.handler(a, b, c);
  }

  // The request's head as the engine's request() and upgrade() take it:
  // the fields it reads joined by NUL, absent headers empty (head_fields in
  // src/lib.rs).
  requestHead(req, path, query) {
    const h = req.headers;
    return `${req.method}\0${path}\0${query}\0${h.origin || ''}\0${h.cookie || ''}\0${h['if-none-match'] || ''}\0${
      h['content-type'] || ''}\0${h['access-control-request-headers'] || ''}`;
  }

  // Ask the engine how to answer (see RequestPlan in src/lib.rs).
  plan(req, path, query, body, tooLarge, baseUrl) {
    return this.server.engine.request(this.install, this.requestHead(req, path, query), body || undefined, tooLarge, baseUrl);
  }

  // `tookMs`: how long reading the body took, for the log line. `isSend`:
  // a send endpoint's request (its complete answer waits for the drain).
  answer(req, res, path, query, body, tooLarge, tookMs, isSend = false) {
    const engine = this.server.engine;
    let plan = this.plan(req, path, query, body, tooLarge, undefined);
    if (plan.flags & PLAN_NEEDS_BASE_URL) {
      plan = this.plan(req, path, query, body, tooLarge, String(this.options.base_url()));
    }
    const { status, flags, receiver, conn, protocol } = plan;
    const text = plan.body;
    if (flags & PLAN_CALL_JSESSIONID) this.options.jsessionid(req, res);
    const end = (flags & PLAN_END) !== 0;
    const kind = flags >> 8;
    // writeHead with a flat [name, value, ...] list: Node writes it out
    // directly instead of storing each header in its map (it still merges
    // any header set earlier, e.g. by options.jsessionid).
    let headers = plan.headers;
    // A prelude and frames go out as separate chunks, as sockjs-node writes
    // them (the protocol's tests read them so); a complete answer in one
    // piece has a Content-Length, and Node sends it in one write with the
    // head.
    const at = plan.framesAt;
    const pieces = at > 0 && at < text.length ? [text.slice(0, at), text.slice(at)] : null;
    if (end && text && !pieces) headers = [...headers, 'Content-Length', String(Buffer.byteLength(text))];
    if (isSend && end && !pieces) {
      // Written after this turn's drain (see _answerSendLater).
      this.server._answerSendLater(res, status, headers, text);
    } else {
      res.writeHead(status, headers);
      if (end) {
        if (pieces) res.write(pieces[0]);
        res.end(pieces ? pieces[1] : text);
      } else if (kind === 1) {
        runChunkingTest(res);
      } else if (kind !== 0) {
        res.end(text);
      } else {
        if (pieces) {
          res.write(pieces[0]);
          res.write(pieces[1]);
        } else if (text) {
          res.write(text);
        }
        if (receiver !== -1) this.server.trackReceiver(receiver, res);
      }
    }
    if (conn !== -1) {
      let session = this.server._sessions.get(conn);
      if (!session) {
        session = new Session(engine, conn, this.prefix);
        // Until it closes (disconnect_delay after its last request at the
        // latest), as sockjs-node's session timers kept Node alive.
        this.server.addSession(conn, session);
      }
      session.recv = { connection: req.socket, response: res, protocol };
      try {
        req.socket.setKeepAlive(true, 5000);
      } catch {
        // Not a TCP socket: nothing to keep alive.
      }
      session.decorateConnection(req);
      if (flags & PLAN_OPENED) this.server.announce(session);
    }
    // As sockjs-node logs it: a response still open (a poll waiting, a
    // stream) is "(unfinished)".
    this.log('info', `${req.method} ${req.url} ${tookMs}ms ${end || res.writableEnded ? status : '(unfinished)'}`);
  }

  // An 'upgrade': a WebSocket to run natively, or a clear HTTP refusal.
  upgrade(req, socket, head, path, query) {
    const engine = this.server.engine;
    const h = req.headers;
    const decision = engine.upgrade(this.install, this.requestHead(req, path, query),
      h.upgrade, h.connection, h['sec-websocket-version'], h['sec-websocket-key']);
    socket.on('error', () => {});
    if (typeof decision !== 'number') {
      socket.end(decision);
      this.log('info', `${req.method} ${req.url} (upgrade refused)`);
      return;
    }
    const raw = decision === UPGRADE_RAW;
    let bytes = head || Buffer.alloc(0);
    if (socket.readableLength > 0) {
      const more = socket.read();
      if (more) bytes = Buffer.concat([bytes, more]);
    }
    const key = String(h['sec-websocket-key']);
    const fd = socket._handle && typeof socket._handle.fd === 'number' ? socket._handle.fd : -1;
    const adopt = fd >= 0 && !socket.encrypted;
    const adopted = adopt ? engine.adoptWebsocket(this.install, raw, fd, key, bytes, noDelaySet(socket)) : null;
    const id = adopted ? adopted.id : engine.pipeWebsocket(this.install, raw, key, bytes);
    const session = new Session(engine, id, this.prefix);
    session.recv = {
      connection: socket,
      protocol: raw ? 'websocket-raw' : 'websocket',
      addresses: adopted && adopted.addresses,
    };
    session.decorateConnection(req);
    if (adopt) {
      // Node's socket is about to go; consumers that reach for it (Meteor)
      // get a stand-in.
      session.adopted();
    }
    this.server.addSession(id, session);
    if (adopt) {
      // Plain TCP: tokio owns a duplicate of the descriptor; Node lets go.
      socket.destroy();
    } else {
      this.server.bridgeSocket(id, socket);
    }
    this.server.announce(session);
    this.log('info', `${req.method} ${req.url} (websocket)`);
  }
}

Server.prototype.trackReceiver = function trackReceiver(rid, res) {
  this._receivers.set(rid, res);
  res.on('close', () => {
    if (this._receivers.get(rid) === res) {
      this._receivers.delete(rid);
      this._engine.receiverAborted(rid);
    }
  });
};

// The session is open: the application hears of it on the next tick, after
// the open frame was handed to the transport (as sockjs-node does).
Server.prototype.announce = function announce(session) {
  session.readyState = Transport.OPEN;
  process.nextTick(() => {
    if (session.readyState !== Transport.CLOSED) this.emit('connection', session.connection);
  });
};

// A bridged socket's write() returned false: the engine writes nothing more
// to it until it drains (so the session's buffer, not Node's, holds what a
// slow client has not taken, under the same limits as an adopted socket).
Server.prototype.socketFull = function socketFull(id, socket) {
  if (socket[kFull]) return;
  socket[kFull] = true;
  this._engine.pipeBlocked(id, true);
  socket.once('drain', () => {
    socket[kFull] = false;
    if (this._sockets.get(id) === socket) this._engine.pipeBlocked(id, false);
  });
};

// The bridged socket of session `id`, which the engine is done with.
Server.prototype.takeSocket = function takeSocket(id) {
  const socket = this._sockets.get(id);
  this._sockets.delete(id);
  return socket;
};

// End a bridged socket the engine is done with.
function endBridgedSocket(socket) {
  socket.end();
  // Read on even if the engine had paused it: the peer's end must be heard
  // for the socket to close.
  socket.resume();
  // A peer that reads nothing would keep it open for ever.
  const timer = setTimeout(() => socket.destroy(), SOCKET_END_TIMEOUT_MS);
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
}

// A socket without a file descriptor (TLS): its bytes go through the engine,
// which asks for a pause while the WebSocket is not reading them (the
// application has over 1 MiB of messages to take) and resumes it after.
Server.prototype.bridgeSocket = function bridgeSocket(id, socket) {
  this._sockets.set(id, socket);
  socket.on('data', (chunk) => {
    if (!this._engine.pipeFeed(id, chunk)) socket.pause();
  });
  const ended = () => {
    if (this._sockets.get(id) === socket) {
      this._sockets.delete(id);
      this._engine.pipeEnd(id);
    }
  };
  socket.on('end', ended);
  socket.on('close', ended);
};

// Sessions are kept by native id while they are open. A session keeps Node
// alive until it closes, as sockjs-node's sockets and session timers did;
// an idle engine keeps nothing alive. The timer also keeps this server
// reachable (a running timer is a GC root, and it holds its arguments):
// sessions the engine carries natively must go on being delivered to the
// application's listeners even when nothing else refers to the server, as
// sockjs-node's open sockets kept theirs.
Server.prototype.addSession = function addSession(id, session) {
  this._sessions.set(id, session);
  if (!this._keepAlive) this._keepAlive = setInterval(keepServer, 0x7fffffff, this);
};

function keepServer() {}

Server.prototype.removeSession = function removeSession(id) {
  this._sessions.delete(id);
  if (this._sessions.size === 0 && this._keepAlive) {
    clearInterval(this._keepAlive);
    this._keepAlive = null;
  }
};

// On process.exit() the kernel would drop every WebSocket without a close
// frame (clients see 1006). 'exit' listeners cannot wait asynchronously, so
// the engine blocks this thread briefly (bounded) while its own threads
// send each session's close frame.
const EXIT_CLOSE_WAIT_MS = 200;
let engines = null;

function closeOnExit(engine) {
  if (!engines) {
    engines = new Set();
    process.once('exit', () => {
      for (const ref of engines) {
        const engine = ref.deref();
        if (engine) engine.shutdown(1001, 'Server shutting down', EXIT_CLOSE_WAIT_MS);
      }
    });
  }
  // Servers collected since: their engines need no closing.
  for (const ref of engines) if (!ref.deref()) engines.delete(ref);
  engines.add(new WeakRef(engine));
}

// What the application writes while a drain delivers its events (an echo)
// is queued by the engine and drained in a further round, up to a few,
// in this same callback; the send endpoints' answers follow.
const DRAIN_ROUNDS = 4;

function drainScheduled(server) {
  for (let round = 0; round < DRAIN_ROUNDS && server._eventsPending; round++) {
    server._eventsPending = false;
    server._drain();
  }
  server._drainScheduled = false;
  if (server._eventsPending) server._scheduleImmediate();
  const answers = server._sendAnswers;
  if (answers.length === 0) return;
  server._sendAnswers = [];
  let failure = null;
  for (let i = 0; i < answers.length; i += 4) {
    try {
      answers[i].writeHead(answers[i + 1], answers[i + 2]);
      answers[i].end(answers[i + 3]);
    } catch (err) {
      if (!failure) failure = err;
    }
  }
  if (failure) process.nextTick(() => { throw failure; });
}

// Collect a request body up to `limit` bytes; past it the rest is read and
// dropped, and `tooLarge` is reported.
function readBody(req, limit, done) {
  const chunks = [];
  let size = 0;
  let tooLarge = false;
  req.on('data', (chunk) => {
    if (tooLarge) return;
    size += chunk.length;
    if (size > limit) {
      tooLarge = true;
      chunks.length = 0;
      return;
    }
    chunks.push(chunk);
  });
  // One chunk (nearly every message) is handed over as it is: the engine
  // reads it within the call and keeps nothing of it.
  req.on('end', () => done(tooLarge ? null : chunks.length === 1 ? chunks[0] : Buffer.concat(chunks), tooLarge));
}

function runChunkingTest(res) {
  if (!chunkingSchedule) chunkingSchedule = Engine.chunkingTestSchedule();
  let step = 0;
  const next = () => {
    if (res.destroyed || step >= chunkingSchedule.length) return;
    const [delay, chunk] = chunkingSchedule[step++];
    setTimeout(() => {
      if (res.destroyed) return;
      res.write(chunk);
      if (step === chunkingSchedule.length) res.end();
      else next();
    }, delay);
  };
  next();
}

// Put `handler` in front of `event`'s listeners: the earlier listeners run
// only for what the handler does not take. Listeners added later still run.
function overshadowListeners(emitter, event, handler) {
  const previous = emitter.listeners(event).slice(0);
  emitter.removeAllListeners(event);
  const wrapper = function sockjsOvershadow(...args) {
    if (handler.apply(this, args) !== true) {
      for (const listener of previous) listener.apply(this, args);
      return false;
    }
    return true;
  };
  emitter.on(event, wrapper);
  return { wrapper, previous };
}

function createServer(options) {
  return new Server(options);
}

function listen(httpServer, options) {
  const server = createServer(options);
  if (httpServer) server.installHandlers(httpServer);
  return server;
}

module.exports = { createServer, listen, Server };
