'use strict';
// Small HTTP client helpers for the HTTP-side tests: plain node:http
// requests with a bounded wait, raw streaming reads with a predicate and a
// deadline, event waits with a deadline, and SockJS session URLs.
// Every wait here fails with a message that says what was awaited.

const http = require('node:http');
const net = require('node:net');
const crypto = require('node:crypto');

const DEFAULT_MS = 3000;

function timeoutError(ms, what, extra) {
  const tail = extra === undefined ? '' : `; got so far: ${JSON.stringify(extra).slice(0, 600)}`;
  return new Error(`timed out after ${ms} ms waiting for ${what}${tail}`);
}

/** Race a promise against a deadline. */
function withTimeout(promise, ms, what) {
  let timer;
  const deadline = new Promise((_, reject) => {
    timer = setTimeout(() => reject(timeoutError(ms, what)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

/** Wait for one emission of `event` on `emitter`; resolves with the arguments. */
function waitForEvent(emitter, event, ms = DEFAULT_MS, what = `event "${event}"`) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      emitter.removeListener(event, onEvent);
      reject(timeoutError(ms, what));
    }, ms);
    function onEvent(...args) {
      clearTimeout(timer);
      resolve(args);
    }
    emitter.once(event, onEvent);
  });
}

/**
 * Accumulate everything a readable emits and let callers wait until the
 * accumulated bytes satisfy a predicate (or the stream ends).
 */
class Collector {
  constructor(readable) {
    this.readable = readable;
    this.chunks = [];
    this.ended = false;
    this.error = null;
    this.waiters = new Set();
    readable.on('data', (chunk) => {
      this.chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
      this._notify();
    });
    const onDone = () => {
      this.ended = true;
      this._notify();
    };
    readable.on('end', onDone);
    readable.on('close', onDone);
    readable.on('aborted', onDone);
    readable.on('error', (err) => {
      this.error = err;
      onDone();
    });
  }

  get buffer() {
    return Buffer.concat(this.chunks);
  }

  get text() {
    return this.buffer.toString('utf8');
  }

  _notify() {
    for (const w of [...this.waiters]) w();
  }

  /** Resolve with the text once predicate(text) is true; reject on end or deadline. */
  readUntil(predicate, ms = DEFAULT_MS, what = 'data') {
    return new Promise((resolve, reject) => {
      let timer = null;
      const check = () => {
        const text = this.text;
        if (predicate(text)) {
          finish();
          resolve(text);
        } else if (this.ended) {
          finish();
          reject(new Error(`stream ended before ${what}; got: ${JSON.stringify(text).slice(0, 600)}`));
        }
      };
      const finish = () => {
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(timeoutError(ms, what, this.text));
      }, ms);
      this.waiters.add(check);
      check();
    });
  }

  /** Resolve with the whole text once the stream has ended. */
  waitEnd(ms = DEFAULT_MS, what = 'the end of the stream') {
    return new Promise((resolve, reject) => {
      let timer = null;
      const check = () => {
        if (this.ended) {
          clearTimeout(timer);
          this.waiters.delete(check);
          resolve(this.text);
        }
      };
      timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(timeoutError(ms, what, this.text));
      }, ms);
      this.waiters.add(check);
      check();
    });
  }
}

/** readUntil(stream, predicate, ms): one-shot helper over a fresh Collector. */
function readUntil(readable, predicate, ms = DEFAULT_MS, what = 'data') {
  return new Collector(readable).readUntil(predicate, ms, what);
}

function buildRequest(url, { method = 'GET', headers = {} } = {}) {
  const u = new URL(url);
  return http.request({
    host: u.hostname,
    port: u.port,
    method,
    path: u.pathname + u.search,
    headers,
    agent: false,
  });
}

/**
 * One complete request. Resolves with {status, headers, body, buffer}.
 * Rejects on socket errors and after `timeout` ms.
 */
function request(url, { method = 'GET', headers = {}, body, timeout = DEFAULT_MS } = {}) {
  return new Promise((resolve, reject) => {
    const req = buildRequest(url, { method, headers });
    const timer = setTimeout(() => {
      req.destroy();
      reject(timeoutError(timeout, `${method} ${url}`));
    }, timeout);
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.on('response', (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        clearTimeout(timer);
        const buffer = Buffer.concat(chunks);
        resolve({ status: res.statusCode, headers: res.headers, body: buffer.toString('utf8'), buffer });
      });
      res.on('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
    if (body !== undefined) req.end(body);
    else req.end();
  });
}

const post = (url, body, headers = {}) => request(url, { method: 'POST', body, headers });
const get = (url, headers = {}) => request(url, { method: 'GET', headers });

/**
 * A long-lived request (streaming transports, pending polls). Returns
 * {req, response (Promise of {status, headers}), collector, readUntil,
 * waitEnd, destroy, text}. The caller must destroy() it when done.
 */
function openStream(url, { method = 'GET', headers = {}, body, timeout = DEFAULT_MS } = {}) {
  const req = buildRequest(url, { method, headers });
  const state = { collector: null, res: null };
  const response = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(timeoutError(timeout, `response headers of ${method} ${url}`)), timeout);
    req.on('response', (res) => {
      clearTimeout(timer);
      state.res = res;
      state.collector = new Collector(res);
      resolve({ status: res.statusCode, headers: res.headers });
    });
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
  // An aborted stream must not raise an unhandled rejection.
  response.catch(() => {});
  if (body !== undefined) req.end(body);
  else req.end();

  return {
    req,
    response,
    get res() {
      return state.res;
    },
    get text() {
      return state.collector ? state.collector.text : '';
    },
    get ended() {
      return state.collector ? state.collector.ended : false;
    },
    async readUntil(predicate, ms = DEFAULT_MS, what = 'data') {
      await withTimeout(response, ms, `response headers before ${what}`);
      return state.collector.readUntil(predicate, ms, what);
    },
    async waitEnd(ms = DEFAULT_MS, what = 'the end of the response') {
      await withTimeout(response, ms, `response headers before ${what}`);
      return state.collector.waitEnd(ms, what);
    },
    destroy() {
      req.destroy();
      if (state.res) state.res.destroy();
    },
  };
}

/**
 * Resolve once `httpServer` has emitted 'request' for a request whose URL
 * satisfies `match` (a string is compared with req.url), plus one
 * setImmediate turn. Listeners added after installHandlers() run after
 * SockJS's own handler for the same request, so this tells that the server
 * has taken the request in (e.g. a poll that will stay pending and sends no
 * headers yet). Call it BEFORE sending the request.
 */
function requestSeen(httpServer, match, ms = DEFAULT_MS) {
  const test = typeof match === 'string' ? (req) => req.url === match : match;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      httpServer.removeListener('request', onRequest);
      reject(timeoutError(ms, `the server to receive ${typeof match === 'string' ? match : 'the request'}`));
    }, ms);
    function onRequest(req) {
      if (!test(req)) return;
      clearTimeout(timer);
      httpServer.removeListener('request', onRequest);
      setImmediate(resolve);
    }
    httpServer.on('request', onRequest);
  });
}

/** A fresh session URL under a prefix: `${base}${prefix}/000/<uuid>`. */
function sessionUrl(base, prefix = '/echo') {
  return `${base}${prefix}/000/${crypto.randomUUID()}`;
}

/** Split an xhr / xhr_streaming body into frames (newline-terminated). */
function xhrFrames(text) {
  return text.split('\n').filter((f) => f.length > 0);
}

/** All messages carried by the "a[...]" frames of a list of frames. */
function messagesOf(frames) {
  const out = [];
  for (const f of frames) {
    if (f[0] === 'a') out.push(...JSON.parse(f.slice(1)));
  }
  return out;
}

const PRELUDE = `${'h'.repeat(2048)}\n`;

/** Open an xhr-polling session and check the open frame. */
async function openXhrSession(url, headers = {}) {
  const r = await post(`${url}/xhr`, undefined, headers);
  if (r.status !== 200 || r.body !== 'o\n') {
    throw new Error(`session did not open: ${r.status} ${JSON.stringify(r.body)}`);
  }
  return r;
}

/** Send messages with xhr_send and poll until they come back (bounded). */
async function echoRoundTrip(url, messages, { maxPolls = 5 } = {}) {
  const s = await post(`${url}/xhr_send`, JSON.stringify(messages));
  if (s.status !== 204) throw new Error(`xhr_send answered ${s.status} ${JSON.stringify(s.body)}`);
  const got = [];
  for (let i = 0; i < maxPolls && got.length < messages.length; i++) {
    const r = await post(`${url}/xhr`);
    if (r.status !== 200) throw new Error(`xhr poll answered ${r.status}`);
    const frames = xhrFrames(r.body);
    if (frames.some((f) => f[0] === 'c')) throw new Error(`session closed: ${r.body}`);
    got.push(...messagesOf(frames));
  }
  return got;
}

/**
 * End a session at once from the client side: attach an xhr_streaming
 * receiver and abort it (an aborted receiver closes the session without
 * waiting for disconnect_delay). Used in cleanups to leave no timers.
 */
async function abortSession(url) {
  const s = openStream(`${url}/xhr_streaming`, { method: 'POST' });
  try {
    await s.readUntil((t) => t.length >= PRELUDE.length, DEFAULT_MS, 'the xhr_streaming prelude');
  } catch {
    // The session may already be gone; nothing more to do.
  } finally {
    s.destroy();
  }
}

/** A free TCP port on 127.0.0.1 (listen on 0, read it, close). */
function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** Listen an http.Server on 127.0.0.1:0; resolves with its base URL. */
async function listen(server) {
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${server.address().port}`;
}

/** Close an http.Server and every connection it still holds. */
function closeServer(server) {
  return new Promise((resolve) => {
    if (!server.listening) return resolve();
    if (typeof server.closeAllConnections === 'function') server.closeAllConnections();
    server.close(() => resolve());
  });
}

// The request headers sockjs-node 0.3.24 copies onto conn.headers (the
// tests' own copy, to check the implementation against).
const HEADER_WHITELIST = [
  'referer',
  'x-client-ip',
  'x-forwarded-for',
  'x-forwarded-host',
  'x-forwarded-port',
  'x-cluster-client-ip',
  'via',
  'x-real-ip',
  'x-forwarded-proto',
  'x-ssl',
  'dnt',
  'host',
  'user-agent',
  'accept-language',
];

module.exports = {
  HEADER_WHITELIST,
  DEFAULT_MS,
  PRELUDE,
  Collector,
  abortSession,
  closeServer,
  echoRoundTrip,
  freePort,
  get,
  listen,
  messagesOf,
  openStream,
  openXhrSession,
  post,
  readUntil,
  request,
  requestSeen,
  sessionUrl,
  waitForEvent,
  withTimeout,
  xhrFrames,
};
