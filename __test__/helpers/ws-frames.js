'use strict';
// Hand-made RFC 6455 client over node:net, for the tests that need to send
// frames a well-behaved client library would refuse to send: a handshake
// request with a fixed key, a frame encoder (masked or not, any RSV bits,
// any opcode, a forged length), a parser for what the server writes back,
// and byte-level reads that always end with a timeout.

const assert = require('node:assert/strict');
const net = require('node:net');
const crypto = require('node:crypto');
const WebSocket = require('ws');

const OP = Object.freeze({
  CONT: 0x0,
  TEXT: 0x1,
  BINARY: 0x2,
  CLOSE: 0x8,
  PING: 0x9,
  PONG: 0xa,
});

// A fixed handshake key, so the expected accept value is known in advance.
const WS_KEY = 'AQIDBAUGBwgJCgsMDQ4PEA==';
const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

function acceptFor(key) {
  return crypto.createHash('sha1').update(key + WS_GUID).digest('base64');
}
const WS_ACCEPT = acceptFor(WS_KEY);

const DEFAULT_TIMEOUT = 3000;

/**
 * Text of an HTTP/1.1 request line plus headers.
 * @param {string} path
 * @param {object} [opts]
 * @param {string} [opts.host]
 * @param {string} [opts.method]
 * @param {boolean} [opts.upgrade] send the WebSocket upgrade headers (default true)
 * @param {string|null} [opts.version] Sec-WebSocket-Version (null: leave out)
 * @param {string|null} [opts.key] Sec-WebSocket-Key (null: leave out)
 * @param {Record<string,string>} [opts.headers] extra headers
 */
function handshakeRequest(path, opts = {}) {
  const {
    host = '127.0.0.1',
    method = 'GET',
    upgrade = true,
    version = '13',
    key = WS_KEY,
    headers = {},
  } = opts;
  const lines = [`${method} ${path} HTTP/1.1`, `Host: ${host}`];
  if (upgrade) {
    lines.push('Upgrade: websocket', 'Connection: Upgrade');
    if (key !== null) lines.push(`Sec-WebSocket-Key: ${key}`);
    if (version !== null) lines.push(`Sec-WebSocket-Version: ${version}`);
  }
  for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
  return `${lines.join('\r\n')}\r\n\r\n`;
}

/**
 * Encode one frame.
 * @param {object} f
 * @param {number} f.opcode
 * @param {Buffer|string} [f.payload]
 * @param {boolean} [f.fin] default true
 * @param {boolean} [f.rsv1]
 * @param {boolean} [f.rsv2]
 * @param {boolean} [f.rsv3]
 * @param {boolean|Buffer} [f.mask] true: a random 4-byte key; a Buffer: that key; false: unmasked. Default true.
 * @param {bigint|number} [f.length] length to announce in the header instead of the payload's
 * @returns {Buffer}
 */
function encodeFrame(f) {
  const payload = Buffer.isBuffer(f.payload) ? f.payload : Buffer.from(f.payload ?? '', 'utf8');
  const fin = f.fin ?? true;
  let maskKey = null;
  if (f.mask === undefined || f.mask === true) maskKey = crypto.randomBytes(4);
  else if (Buffer.isBuffer(f.mask)) maskKey = f.mask;
  const len = BigInt(f.length ?? payload.length);

  let b0 = f.opcode & 0x0f;
  if (fin) b0 |= 0x80;
  if (f.rsv1) b0 |= 0x40;
  if (f.rsv2) b0 |= 0x20;
  if (f.rsv3) b0 |= 0x10;
  const maskBit = maskKey ? 0x80 : 0;

  let header;
  if (len <= 125n) {
    header = Buffer.from([b0, maskBit | Number(len)]);
  } else if (len <= 0xffffn) {
    header = Buffer.alloc(4);
    header[0] = b0;
    header[1] = maskBit | 126;
    header.writeUInt16BE(Number(len), 2);
  } else {
    header = Buffer.alloc(10);
    header[0] = b0;
    header[1] = maskBit | 127;
    header.writeBigUInt64BE(len, 2);
  }
  if (!maskKey) return Buffer.concat([header, payload]);
  const body = Buffer.alloc(payload.length);
  for (let i = 0; i < payload.length; i += 1) body[i] = payload[i] ^ maskKey[i % 4];
  return Buffer.concat([header, maskKey, body]);
}

/** Payload of a close frame: 2-byte code then the UTF-8 reason. */
function closePayload(code, reason = '') {
  const r = Buffer.from(reason, 'utf8');
  const b = Buffer.alloc(2 + r.length);
  b.writeUInt16BE(code, 0);
  r.copy(b, 2);
  return b;
}

/**
 * Try to parse one frame at the start of buf.
 * @returns {null | {frame: object, size: number}} null when more bytes are needed
 */
function parseFrame(buf) {
  if (buf.length < 2) return null;
  const b0 = buf[0];
  const b1 = buf[1];
  let offset = 2;
  let len = b1 & 0x7f;
  if (len === 126) {
    if (buf.length < 4) return null;
    len = buf.readUInt16BE(2);
    offset = 4;
  } else if (len === 127) {
    if (buf.length < 10) return null;
    const big = buf.readBigUInt64BE(2);
    if (big > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`server frame announces absurd length ${big}`);
    len = Number(big);
    offset = 10;
  }
  const masked = (b1 & 0x80) !== 0;
  let key = null;
  if (masked) {
    if (buf.length < offset + 4) return null;
    key = buf.subarray(offset, offset + 4);
    offset += 4;
  }
  if (buf.length < offset + len) return null;
  const payload = Buffer.from(buf.subarray(offset, offset + len));
  if (key) for (let i = 0; i < payload.length; i += 1) payload[i] ^= key[i % 4];
  const frame = {
    fin: (b0 & 0x80) !== 0,
    rsv1: (b0 & 0x40) !== 0,
    rsv2: (b0 & 0x20) !== 0,
    rsv3: (b0 & 0x10) !== 0,
    opcode: b0 & 0x0f,
    masked,
    payload,
    text: () => payload.toString('utf8'),
  };
  if (frame.opcode === OP.CLOSE) {
    frame.code = payload.length >= 2 ? payload.readUInt16BE(0) : null;
    frame.reason = payload.length > 2 ? payload.subarray(2).toString('utf8') : '';
  }
  return { frame, size: offset + len };
}

/**
 * Buffers everything a socket receives and lets a test wait for byte patterns.
 */
class ByteReader {
  constructor(socket) {
    this.socket = socket;
    this.buf = Buffer.alloc(0);
    this.ended = false;
    this.closed = false;
    this.error = null;
    this.waiters = new Set();
    socket.on('data', (d) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.notify();
    });
    socket.on('end', () => {
      this.ended = true;
      this.notify();
    });
    socket.on('error', (e) => {
      this.error = e;
      this.notify();
    });
    socket.on('close', () => {
      this.ended = true;
      this.closed = true;
      this.notify();
    });
  }

  notify() {
    for (const w of [...this.waiters]) w();
  }

  /**
   * Wait until take(buf, state) returns something other than undefined; it
   * may consume bytes by returning {value, size}. Fails after timeoutMs.
   */
  readUntil(take, timeoutMs = DEFAULT_TIMEOUT, label = 'bytes', { waitPastEnd = false } = {}) {
    return new Promise((resolve, reject) => {
      let timer = null;
      const finish = (fn, v) => {
        clearTimeout(timer);
        this.waiters.delete(check);
        fn(v);
      };
      const check = () => {
        let got;
        try {
          got = take(this.buf, this);
        } catch (e) {
          finish(reject, e);
          return;
        }
        if (got !== undefined) {
          if (got && typeof got.size === 'number') {
            this.buf = this.buf.subarray(got.size);
            finish(resolve, got.value);
          } else {
            finish(resolve, got);
          }
          return;
        }
        if (this.ended && !waitPastEnd) {
          finish(
            reject,
            new Error(
              `connection ended while waiting for ${label}; unread: ${JSON.stringify(this.buf.toString('latin1').slice(0, 200))}`,
            ),
          );
        }
      };
      timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(
          new Error(
            `timed out after ${timeoutMs} ms waiting for ${label}; unread: ${JSON.stringify(this.buf.toString('latin1').slice(0, 200))}`,
          ),
        );
      }, timeoutMs);
      this.waiters.add(check);
      check();
    });
  }

  /** Read an HTTP response head; resolves {statusCode, statusText, headers, raw}. */
  readHttpHead(timeoutMs = DEFAULT_TIMEOUT) {
    return this.readUntil(
      (buf) => {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return undefined;
        const raw = buf.subarray(0, end).toString('latin1');
        const [statusLine, ...lines] = raw.split('\r\n');
        const m = /^HTTP\/1\.[01] (\d{3}) ?(.*)$/.exec(statusLine);
        if (!m) throw new Error(`not an HTTP status line: ${JSON.stringify(statusLine)}`);
        const headers = {};
        for (const line of lines) {
          const i = line.indexOf(':');
          if (i <= 0) continue;
          const name = line.slice(0, i).trim().toLowerCase();
          const value = line.slice(i + 1).trim();
          headers[name] = name in headers ? `${headers[name]}, ${value}` : value;
        }
        return { value: { statusCode: Number(m[1]), statusText: m[2], headers, raw }, size: end + 4 };
      },
      timeoutMs,
      'an HTTP response head',
    );
  }

  /** Read an HTTP body: Content-Length bytes, chunked, or until the connection ends. */
  readHttpBody(head, timeoutMs = DEFAULT_TIMEOUT) {
    const cl = head.headers['content-length'];
    if (cl !== undefined) {
      const n = Number(cl);
      return this.readUntil(
        (buf) => (buf.length >= n ? { value: buf.subarray(0, n).toString('utf8'), size: n } : undefined),
        timeoutMs,
        `an HTTP body of ${n} bytes`,
      );
    }
    if (/chunked/i.test(head.headers['transfer-encoding'] || '')) {
      return this.readUntil(
        (buf) => {
          let pos = 0;
          const parts = [];
          for (let guard = 0; guard < 10000; guard += 1) {
            const eol = buf.indexOf('\r\n', pos);
            if (eol < 0) return undefined;
            const size = parseInt(buf.subarray(pos, eol).toString('latin1'), 16);
            if (Number.isNaN(size)) throw new Error('bad chunk size');
            if (size === 0) {
              if (buf.length < eol + 4) return undefined;
              return { value: Buffer.concat(parts).toString('utf8'), size: eol + 4 };
            }
            if (buf.length < eol + 2 + size + 2) return undefined;
            parts.push(buf.subarray(eol + 2, eol + 2 + size));
            pos = eol + 2 + size + 2;
          }
          throw new Error('too many chunks');
        },
        timeoutMs,
        'a chunked HTTP body',
      );
    }
    return this.readUntil(
      (buf, r) => (r.ended ? { value: buf.toString('utf8'), size: buf.length } : undefined),
      timeoutMs,
      'the end of an HTTP body',
    );
  }

  /** Next complete WebSocket frame from the server. */
  nextFrame(timeoutMs = DEFAULT_TIMEOUT, label = 'a WebSocket frame') {
    return this.readUntil(
      (buf) => {
        const p = parseFrame(buf);
        return p ? { value: p.frame, size: p.size } : undefined;
      },
      timeoutMs,
      label,
    );
  }

  /** Skip frames until one satisfies pred (at most maxFrames). */
  async nextFrameMatching(pred, timeoutMs = DEFAULT_TIMEOUT, label = 'a matching frame', maxFrames = 100) {
    const deadline = Date.now() + timeoutMs;
    const seen = [];
    for (let i = 0; i < maxFrames; i += 1) {
      const left = deadline - Date.now();
      if (left <= 0) break;
      const f = await this.nextFrame(left, `${label} (seen so far: ${seen.join(' | ') || 'nothing'})`);
      if (pred(f)) return f;
      seen.push(describeFrame(f));
    }
    throw new Error(`no ${label} within ${timeoutMs} ms / ${maxFrames} frames; saw: ${seen.join(' | ')}`);
  }

  /** Resolve once the TCP connection is fully closed. */
  waitClosed(timeoutMs = DEFAULT_TIMEOUT, label = 'the TCP connection to close') {
    return this.readUntil((_buf, r) => (r.closed ? true : undefined), timeoutMs, label, { waitPastEnd: true });
  }

  /** Resolve once the peer has ended (FIN) or the connection is closed. */
  waitEnded(timeoutMs = DEFAULT_TIMEOUT, label = 'the server to end the connection') {
    return this.readUntil((_buf, r) => (r.ended ? true : undefined), timeoutMs, label);
  }
}

function describeFrame(f) {
  if (f.opcode === OP.CLOSE) return `close(${f.code}, ${JSON.stringify(f.reason)})`;
  if (f.opcode === OP.TEXT) return `text(${JSON.stringify(f.text().slice(0, 60))})`;
  return `opcode ${f.opcode} (${f.payload.length} bytes)`;
}

function connectTcp(port, timeoutMs = DEFAULT_TIMEOUT) {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`TCP connect to 127.0.0.1:${port} timed out`));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.setNoDelay(true);
      resolve(socket);
    });
    socket.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

/**
 * Open a TCP connection, send a request and read the response head.
 * @returns {Promise<{socket: net.Socket, reader: ByteReader, head: object}>}
 */
async function rawRequest(port, path, opts = {}, timeoutMs = DEFAULT_TIMEOUT) {
  const socket = await connectTcp(port, timeoutMs);
  const reader = new ByteReader(socket);
  socket.write(handshakeRequest(path, { host: `127.0.0.1:${port}`, ...opts }));
  try {
    const head = await reader.readHttpHead(timeoutMs);
    return { socket, reader, head };
  } catch (e) {
    socket.destroy();
    throw e;
  }
}

/**
 * One complete HTTP exchange over raw TCP: send the request, read the whole
 * answer (head and body), then close gracefully (FIN, never RST, so that a
 * fragile server is not hit by a reset the test did not mean to send).
 * @returns {Promise<{head: object, body: string}>}
 */
async function httpExchange(port, path, opts = {}, timeoutMs = DEFAULT_TIMEOUT) {
  const { socket, reader, head } = await rawRequest(port, path, opts, timeoutMs);
  try {
    const body = await reader.readHttpBody(head, timeoutMs);
    socket.end();
    await reader.waitClosed(timeoutMs, `the connection to close after the answer to ${path}`);
    return { head, body };
  } finally {
    socket.destroy();
  }
}

/**
 * Open a WebSocket over raw TCP and check the 101 answer.
 * @returns {Promise<{socket: net.Socket, reader: ByteReader, head: object, send: Function}>}
 */
async function openRawWebSocket(port, path, opts = {}, timeoutMs = DEFAULT_TIMEOUT) {
  const r = await rawRequest(port, path, opts, timeoutMs);
  if (r.head.statusCode !== 101) {
    r.socket.destroy();
    throw new Error(`expected 101 from ${path}, got ${r.head.statusCode}: ${r.head.raw}`);
  }
  if (r.head.headers['sec-websocket-accept'] !== acceptFor(opts.key ?? WS_KEY)) {
    r.socket.destroy();
    throw new Error(`bad Sec-WebSocket-Accept from ${path}: ${r.head.headers['sec-websocket-accept']}`);
  }
  return {
    ...r,
    send: (frame) => r.socket.write(Buffer.isBuffer(frame) ? frame : encodeFrame(frame)),
    sendText: (text) => r.socket.write(encodeFrame({ opcode: OP.TEXT, payload: text })),
  };
}

/** Reject with a clear message when promise does not settle within ms. */
function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Resolve with the arguments of the next `event` from emitter, or fail after ms. */
function waitEvent(emitter, event, ms, what = `'${event}'`) {
  let listener;
  const p = new Promise((resolve) => {
    listener = (...args) => resolve(args);
    emitter.once(event, listener);
  });
  return withTimeout(p, ms, what).finally(() => emitter.removeListener(event, listener));
}

/**
 * Queue of the messages a `ws` client receives, so a test can await them one
 * by one; also records pings and the close event.
 */
class MessageQueue {
  constructor(ws) {
    this.ws = ws;
    this.items = [];
    this.pings = [];
    this.closed = null;
    this.waiters = new Set();
    ws.on('message', (data, isBinary) => {
      this.items.push({ data: isBinary ? data : data.toString('utf8'), isBinary });
      this.notify();
    });
    ws.on('ping', (data) => {
      this.pings.push(data);
      this.notify();
    });
    ws.on('close', (code, reason) => {
      this.closed = { code, reason: reason.toString('utf8') };
      this.notify();
    });
  }

  notify() {
    for (const w of [...this.waiters]) w();
  }

  /** Wait until cond() is truthy (checked on every message, ping and close). */
  until(cond, ms, what) {
    return new Promise((resolve, reject) => {
      const check = () => {
        const v = cond(this);
        if (v) {
          clearTimeout(timer);
          this.waiters.delete(check);
          resolve(v);
        }
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(new Error(`timed out after ${ms} ms waiting for ${what}; received so far: ${this.describe()}`));
      }, ms);
      this.waiters.add(check);
      check();
    });
  }

  /** Next message (string for text, Buffer for binary). */
  async next(ms = DEFAULT_TIMEOUT, what = 'a message') {
    await this.until((q) => q.items.length > 0 || q.closed, ms, what);
    if (this.items.length === 0) {
      throw new Error(`connection closed (${JSON.stringify(this.closed)}) while waiting for ${what}`);
    }
    return this.items.shift().data;
  }

  describe() {
    const msgs = this.items.map((m) => JSON.stringify(String(m.data).slice(0, 80)));
    return `[${msgs.join(', ')}] pings=${this.pings.length} closed=${JSON.stringify(this.closed)}`;
  }
}

/** Open a `ws` client and wait for 'open'; resolves {ws, queue}. */
async function openClient(url, opts = {}, ms = DEFAULT_TIMEOUT) {
  const ws = new WebSocket(url, opts);
  const queue = new MessageQueue(ws);
  const opened = new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) =>
      reject(new Error(`unexpected HTTP ${res.statusCode} opening ${url}`)),
    );
  });
  try {
    await withTimeout(opened, ms, `WebSocket ${url} to open`);
  } catch (e) {
    ws.terminate();
    throw e;
  }
  ws.on('error', () => {}); // errors after open show up as 'close' in the queue
  return { ws, queue };
}

/** Close a `ws` client and wait for its TCP connection to end (terminate after ms). */
async function closeClient(ws, ms = DEFAULT_TIMEOUT) {
  if (ws.readyState === WebSocket.CLOSED) return;
  const closed = new Promise((resolve) => ws.once('close', resolve));
  if (ws.readyState === WebSocket.OPEN) ws.close(1000);
  else if (ws.readyState !== WebSocket.CLOSING) ws.terminate();
  try {
    await withTimeout(closed, ms, 'the client WebSocket to close');
  } finally {
    if (ws.readyState !== WebSocket.CLOSED) ws.terminate();
  }
}

// A fresh SockJS WebSocket session path under `prefix`.
function sessionPath(prefix = '/echo') {
  return `${prefix}/000/${crypto.randomBytes(6).toString('hex')}/websocket`;
}

// The messages of an `a[...]` frame (asserting that it is one).
function arrayFrame(text) {
  const frame = String(text);
  assert.match(frame, /^a\[/, `expected an a[...] frame, got ${JSON.stringify(frame.slice(0, 80))}`);
  return JSON.parse(frame.slice(1));
}

// A SockJS WebSocket session (ws client) with its open frame read.
async function openSession(port, path = sessionPath(), ms = DEFAULT_TIMEOUT) {
  const client = await openClient(`ws://127.0.0.1:${port}${path}`);
  assert.equal(await client.queue.next(ms, 'the open frame'), 'o');
  return client;
}

// A session as openSession opens it, with the server's connection for it
// and the messages that connection has received ('data').
async function openWatchedSession(server, port, ms = DEFAULT_TIMEOUT) {
  const connP = waitEvent(server, 'connection', ms, "the server's 'connection' event");
  const client = await openSession(port, sessionPath(), ms);
  try {
    const [conn] = await connP;
    const data = [];
    conn.on('data', (m) => data.push(m));
    return { ...client, conn, data };
  } catch (e) {
    await closeClient(client.ws);
    throw e;
  }
}

/**
 * The most messages of `size` bytes from one connection that one turn of
 * the event loop can deliver to a listener that writes nothing: the engine
 * stops reading a WebSocket once more than 256 KiB of its messages, each
 * counted with 64 bytes more, wait for JavaScript (CONN_INBOUND_LIMIT and
 * MESSAGE_OVERHEAD in crates/sockjs-engine/src/events.rs), and JavaScript
 * takes them all at once, one drain per turn when the listener writes
 * nothing. Without that limit the messages that came in while a batch ran
 * all made the next one, and batches grew with the flood.
 */
function inboundBatchLimit(size) {
  return Math.ceil((256 << 10) / (size + 64)) + 1;
}

/**
 * For a client that reads nothing: write 16 KiB chunks to `conn` while
 * write() allows, until what the engine holds stops going down for 20 ms,
 * so the socket's buffers are full and the engine's write to it is waiting.
 * Bounded by `budget` bytes. Resolves the bytes written.
 */
async function fillUntilBlocked(conn, { budget = 256 << 20 } = {}) {
  const chunk = 'y'.repeat(16 * 1024);
  let written = 0;
  for (let round = 0; round < 1000 && written < budget; round++) {
    for (let i = 0; i < 1000 && written < budget && conn.write(chunk); i++) written += chunk.length;
    const before = conn.bufferedAmount;
    await new Promise((resolve) => setTimeout(resolve, 20));
    if (before > 0 && conn.bufferedAmount === before) return written;
  }
  throw new Error(`the socket still took writes after ${written} bytes`);
}

/**
 * Write to `conn` past its `max_buffered_bytes` (at most `budget` bytes);
 * the engine then closes the session. Resolves the bytes written.
 */
function overflow(conn, { budget = 256 << 20 } = {}) {
  const chunk = 'y'.repeat(16 * 1024);
  let written = 0;
  while (conn.readyState === 1 && written < budget) {
    conn.write(chunk);
    written += chunk.length;
  }
  return written;
}

/**
 * Send `total` numbered messages of `size` bytes (a raw WebSocket's) from
 * the `ws` client at once, while `conn`'s 'data' listener takes ~5 us each,
 * slower than the network. Resolves, once all have arrived, with how many
 * came out of order and the most that one turn of the event loop delivered.
 */
async function floodSlowListener(conn, ws, { total, size, ms = 60000 }) {
  // Turns of the event loop, counted by an immediate that re-arms itself.
  let turn = 0;
  let ticking = true;
  const tick = () => {
    turn += 1;
    if (ticking) setImmediate(tick);
  };
  setImmediate(tick);
  let received = 0;
  let outOfOrder = 0;
  let batchTurn = -1;
  let batch = 0;
  let largestBatch = 0;
  const done = new Promise((resolve) => {
    conn.on('data', (message) => {
      if (Number(message.slice(0, 8)) !== received) outOfOrder += 1;
      received += 1;
      if (turn !== batchTurn) {
        batchTurn = turn;
        batch = 0;
      }
      batch += 1;
      largestBatch = Math.max(largestBatch, batch);
      const until = process.hrtime.bigint() + 5000n;
      while (process.hrtime.bigint() < until);
      if (received === total) resolve();
    });
  });
  const filler = 'x'.repeat(size - 8);
  for (let i = 0; i < total; i++) ws.send(String(i).padStart(8, '0') + filler);
  try {
    await withTimeout(done, ms, `all ${total} messages (received ${received})`);
  } finally {
    ticking = false;
  }
  return { outOfOrder, largestBatch };
}

module.exports = {
  fillUntilBlocked,
  overflow,
  floodSlowListener,
  inboundBatchLimit,
  openWatchedSession,
  sessionPath,
  arrayFrame,
  openSession,
  withTimeout,
  waitEvent,
  MessageQueue,
  openClient,
  closeClient,
  OP,
  WS_KEY,
  WS_ACCEPT,
  acceptFor,
  handshakeRequest,
  encodeFrame,
  closePayload,
  parseFrame,
  describeFrame,
  ByteReader,
  connectTcp,
  rawRequest,
  httpExchange,
  openRawWebSocket,
};
