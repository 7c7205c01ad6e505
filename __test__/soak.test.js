'use strict';
// A bounded soak and fault test. A server child process
// (helpers/soak-server.js) serves a SockJS echo; this process churns
// sessions over every transport for SOAK_SECONDS, kills clients in the
// middle of frames and of requests, keeps long-lived "stayer" sessions that
// must see every message once and in order, and runs a slow reader that
// stops reading in the middle of a flood. Afterwards the server must be back
// where it started: no session left open, 'close' emitted exactly once per
// session, descriptors and memory back to the baseline, still alive.
//
//   node --test __test__/soak.test.js                  short run (CI, ~15 s of churn)
//   SOAK_SECONDS=600 node --test __test__/soak.test.js the long soak (10 minutes)
//
// Other knobs: SOAK_SEED (the PRNG seed), SOAK_WORKERS (concurrency, 40),
// SOAK_RSS_SLACK_MB (the memory bound, 40). SOCKJS_IMPL reaches the server
// through the environment, as for the other tests. The numbers of a run
// (iterations per kind, sessions, RSS and descriptors before, during and
// after) are printed as test diagnostics.
//
// Polling sessions expire after disconnect_delay (300 ms) without a
// request; a client late by that much (a busy machine) finds its session
// gone. Those iterations are counted as "expired", not as failures.

const { test, after } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { spawn } = require('node:child_process');
const W = require('./helpers/ws-frames.js');
const H = require('./helpers/http.js');

const SOAK_SECONDS = Number(process.env.SOAK_SECONDS) > 0 ? Number(process.env.SOAK_SECONDS) : 15;
const SEED = Number(process.env.SOAK_SEED) >>> 0 || 0x50a4;
const WORKERS = Number(process.env.SOAK_WORKERS) > 0 ? Number(process.env.SOAK_WORKERS) : 40;
const STAYERS = 10;
const FLOOD = 5000;
const PAUSE_MS = SOAK_SECONDS >= 60 ? 8000 : 3000;
// Open descriptors may differ from the baseline by a few for reasons that
// are not leaks (a descriptor the runtime opens lazily, the /stats request
// itself landing on a fresh socket).
const FD_SLACK = 3;
// RSS cannot be expected to come back to the byte: glibc keeps freed memory
// in its arenas (one per thread that allocated, and tokio's workers do)
// instead of giving it back to the kernel, and V8 keeps the heap it grew
// to. What the bound catches is growth with the work done: a per-session
// leak over thousands of sessions, or buffers that a dead client left
// behind. Both numbers are reported.
const RSS_SLACK_MB = Number(process.env.SOAK_RSS_SLACK_MB) > 0 ? Number(process.env.SOAK_RSS_SLACK_MB) : 40;
// Every single wait of the soak (a frame, a response, an event) ends after T.
const T = 10000;
const SERVER = path.join(__dirname, 'helpers', 'soak-server.js');

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** mulberry32: a small seeded PRNG, uniform in [0, 1). */
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const int = (rng, n) => Math.floor(rng() * n);

/** k numbered messages, with characters that JSON and URL encodings touch. */
function numbered(tag, k) {
  const out = [];
  for (let i = 0; i < k; i++) out.push(`${tag}:${i}:é"\\&=+ ${'z'.repeat(i % 7)}`);
  return out;
}

/**
 * A polling session that the server expired between two requests of the
 * client (its disconnect_delay is short, and a busy client can be late): a
 * later request opens a new session ('o') or finds none (404). That is the
 * protocol working, not a fault; such iterations are counted apart.
 */
class Expired extends Error {}

/** The messages of a list of SockJS frames; a close frame is an error. */
function frameMessages(frames, what, { openIsExpiry = false } = {}) {
  const out = [];
  for (const f of frames) {
    if (f[0] === 'a') out.push(...JSON.parse(f.slice(1)));
    else if (f.startsWith('c[2010,') && openIsExpiry) {
      // This client never has two requests of one session open at once.
      throw new Error(
        `${f} during ${what}, although no other request of the session was open ` +
          '(sockjs-node answers a session that has just expired with a new session, "o")',
      );
    } else if (f[0] === 'c') throw new Error(`session closed (${f}) during ${what}`);
    else if (f === 'o' && openIsExpiry) throw new Expired(`a new session opened during ${what}`);
  }
  return out;
}

/** Complete lines of a stream body (the last, unfinished one left out). */
function completeParts(text, sep) {
  const end = text.lastIndexOf(sep);
  if (end < 0) return [];
  return text
    .slice(0, end)
    .split(sep)
    .filter((p) => p.length > 0);
}

// ---------------------------------------------------------------- the server

let child = null;
let childErr = '';

async function startServer() {
  child = spawn(process.execPath, ['--expose-gc', SERVER], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, SOAK_WATCH_STDIN: '1' },
  });
  child.stderr.on('data', (d) => {
    childErr = (childErr + d).slice(-4000);
  });
  let out = '';
  const port = await W.withTimeout(
    new Promise((resolve, reject) => {
      child.stdout.on('data', (d) => {
        out += d;
        const m = /port (\d+)/.exec(out);
        if (m) resolve(Number(m[1]));
      });
      child.once('exit', (code, signal) =>
        reject(new Error(`the soak server exited (${code}, ${signal}) before listening: ${childErr}`)),
      );
    }),
    T,
    'the soak server to print its port',
  );
  return port;
}

after(async () => {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  try {
    await W.withTimeout(exited, 5000, 'the soak server to exit on SIGTERM');
  } catch {
    child.kill('SIGKILL');
  }
});

function serverAlive() {
  return child && child.exitCode === null && child.signalCode === null;
}

async function getStats(port, { gc = true } = {}) {
  const r = await H.request(`http://127.0.0.1:${port}/stats${gc ? '?gc=1' : ''}`, { timeout: T });
  assert.equal(r.status, 200, `/stats answered ${r.status}`);
  return JSON.parse(r.body);
}

/** Poll /stats until pred holds; resolves {ok, stats} (ok false after ms). */
async function pollStats(port, pred, ms) {
  const deadline = Date.now() + ms;
  let stats = await getStats(port);
  for (let i = 0; i < 10000 && !pred(stats) && Date.now() < deadline; i++) {
    await sleep(100);
    stats = await getStats(port);
  }
  return { ok: pred(stats), stats };
}

const brief = (s) =>
  JSON.stringify({
    open: s.open,
    opened: s.opened,
    closed: s.closed,
    fds: s.fds,
    rssMB: +(s.rss / 2 ** 20).toFixed(1),
    implSessions: s.implSessions,
    implReceivers: s.implReceivers,
    openByProtocol: s.openByProtocol,
    openSample: s.openSample && s.open > 0 ? s.openSample.slice(0, 5) : undefined,
  });

// ------------------------------------------------------- churn iterations
// Each one takes {port, rng, sid, variant} and throws on a wrong answer.
// Every wait in them ends after T; every loop has a count bound.

const wsUrl = (port, sid) => `ws://127.0.0.1:${port}/soak/${sid.length % 1000}/${sid}/websocket`;
const httpBase = (port, sid) => `http://127.0.0.1:${port}/soak/${sid.length % 1000}/${sid}`;

/** Read SockJS frames from a ws MessageQueue until `count` messages came. */
async function wsMessages(queue, count, what) {
  const got = [];
  const deadline = Date.now() + T;
  for (let i = 0; i < count + 50 && got.length < count; i++) {
    const left = deadline - Date.now();
    if (left <= 0) break;
    const frame = await queue.next(left, what);
    if (frame === 'h') continue;
    if (frame[0] !== 'a') throw new Error(`unexpected frame ${JSON.stringify(frame.slice(0, 80))} during ${what}`);
    got.push(...JSON.parse(frame.slice(1)));
  }
  if (got.length < count) throw new Error(`only ${got.length} of ${count} messages during ${what}`);
  return got;
}

async function websocketSession({ port, rng, sid, variant }) {
  const { ws, queue } = await W.openClient(wsUrl(port, sid), {}, T);
  try {
    assert.equal(await queue.next(T, `the open frame of ${sid}`), 'o');
    const sent = numbered(sid, 1 + int(rng, 8));
    if (rng() < 0.5) ws.send(JSON.stringify(sent));
    else for (const m of sent) ws.send(JSON.stringify([m]));
    const got = await wsMessages(queue, sent.length, `the echo on ${sid}`);
    assert.deepEqual(got, sent, `websocket echo on ${sid}: every message once, in order`);
    if (rng() < 0.25) {
      variant('terminate');
      ws.terminate();
    } else {
      variant('close');
      await W.closeClient(ws, T);
    }
  } finally {
    ws.terminate();
  }
}

async function websocketKilled({ port, rng, sid, variant }) {
  const socket = await W.connectTcp(port, T);
  const reader = new W.ByteReader(socket);
  try {
    const head = W.handshakeRequest(new URL(wsUrl(port, sid)).pathname, { host: `127.0.0.1:${port}` });
    const frame = W.encodeFrame({ opcode: W.OP.TEXT, payload: JSON.stringify([`${sid} never whole`]) });
    const half = frame.subarray(0, 1 + int(rng, frame.length - 1));
    const v = int(rng, 3);
    if (v === 0) {
      variant('open-then-half-frame');
      socket.write(head);
      const res = await reader.readHttpHead(T);
      assert.equal(res.statusCode, 101, `upgrade of ${sid}`);
      const o = await reader.nextFrame(T, `the open frame of ${sid}`);
      assert.equal(o.text(), 'o');
      socket.write(half);
    } else if (v === 1) {
      variant('handshake-and-half-frame');
      socket.write(Buffer.concat([Buffer.from(head), half]));
    } else {
      variant('half-handshake');
      socket.write(head.slice(0, 1 + int(rng, head.length - 1)));
    }
    await sleep(int(rng, 15));
    if (rng() < 0.5) socket.resetAndDestroy();
    else socket.destroy();
  } finally {
    socket.destroy();
  }
}

async function rawWebsocket({ port, rng, sid, variant }) {
  const { ws, queue } = await W.openClient(`ws://127.0.0.1:${port}/soak/websocket`, {}, T);
  try {
    const sent = numbered(sid, 1 + int(rng, 8));
    for (const m of sent) ws.send(m);
    const got = [];
    for (let i = 0; i < sent.length; i++) got.push(await queue.next(T, `raw echo ${i} on ${sid}`));
    assert.deepEqual(got, sent, `raw websocket echo on ${sid}: every message once, in order`);
    variant('close');
    await W.closeClient(ws, T);
  } finally {
    ws.terminate();
  }
}

async function xhrOpen(base) {
  const r = await H.request(`${base}/xhr`, { method: 'POST', timeout: T });
  assert.equal(r.status, 200, `xhr open of ${base}`);
  assert.equal(r.body, 'o\n', `xhr open frame of ${base}`);
}

async function xhrSend(base, messages) {
  const r = await H.request(`${base}/xhr_send`, {
    method: 'POST',
    body: JSON.stringify(messages),
    headers: { 'content-type': 'text/plain' },
    timeout: T,
  });
  if (r.status === 404) throw new Expired(`xhr_send to ${base}: no such session`);
  assert.equal(r.status, 204, `xhr_send to ${base}: ${r.body}`);
}

/** Poll with xhr until `count` messages came (at most 20 polls). */
async function xhrCollect(base, count) {
  const got = [];
  for (let i = 0; i < 20 && got.length < count; i++) {
    const r = await H.request(`${base}/xhr`, { method: 'POST', timeout: T });
    assert.equal(r.status, 200, `xhr poll of ${base}`);
    got.push(...frameMessages(H.xhrFrames(r.body), `a poll of ${base}`, { openIsExpiry: true }));
  }
  return got;
}

async function xhrPolling({ port, rng, sid, variant }) {
  const base = httpBase(port, sid);
  await xhrOpen(base);
  const sent = numbered(sid, 1 + int(rng, 8));
  if (sent.length > 1 && rng() < 0.5) {
    variant('two-sends');
    const cut = 1 + int(rng, sent.length - 1);
    await xhrSend(base, sent.slice(0, cut));
    await xhrSend(base, sent.slice(cut));
  } else {
    variant('one-send');
    await xhrSend(base, sent);
  }
  assert.deepEqual(await xhrCollect(base, sent.length), sent, `xhr-polling echo on ${sid}`);
  // Left as it is: the session expires after disconnect_delay.
}

/** Write a request head (and maybe part of a body) on a raw socket, then kill it. */
async function killedRequest(port, rng, head, body) {
  const socket = await W.connectTcp(port, T);
  socket.on('error', () => {});
  try {
    socket.write(body === undefined ? head : Buffer.concat([Buffer.from(head), body]));
    await sleep(int(rng, 15));
    if (rng() < 0.5) socket.resetAndDestroy();
    else socket.destroy();
  } finally {
    socket.destroy();
  }
}

function postHead(port, pathname, length) {
  return (
    `POST ${pathname} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: text/plain\r\n` +
    `Content-Length: ${length}\r\n\r\n`
  );
}

async function xhrKilled({ port, rng, sid, variant }) {
  const base = httpBase(port, sid);
  const pathname = new URL(base).pathname;
  const v = int(rng, 4);
  if (v === 0) {
    // An xhr_send cut in the middle of its body: nothing of it may reach
    // the application, and the session goes on.
    variant('xhr_send-half-body');
    await xhrOpen(base);
    const body = Buffer.from(JSON.stringify([`${sid} never whole`, 'x'.repeat(int(rng, 200))]));
    await killedRequest(port, rng, postHead(port, `${pathname}/xhr_send`, body.length), body.subarray(0, body.length >> 1));
    const after = [`${sid} after`];
    await xhrSend(base, after);
    assert.deepEqual(await xhrCollect(base, 1), after, `only whole messages reach ${sid}`);
  } else if (v === 1) {
    // A request that would open a session, cut before its body ends.
    variant('xhr-open-half-body');
    await killedRequest(port, rng, postHead(port, `${pathname}/xhr`, 100), Buffer.from('x'.repeat(int(rng, 100))));
  } else if (v === 2) {
    // A poll held open by the server (nothing to send yet), then killed.
    variant('held-poll-killed');
    await xhrOpen(base);
    await killedRequest(port, rng, postHead(port, `${pathname}/xhr`, 0));
  } else {
    variant('half-request-head');
    const head = postHead(port, `${pathname}/xhr_send`, 10);
    await killedRequest(port, rng, head.slice(0, 1 + int(rng, head.length - 1)));
  }
}

async function xhrStreaming({ port, rng, sid, variant }) {
  const base = httpBase(port, sid);
  const s = H.openStream(`${base}/xhr_streaming`, { method: 'POST', timeout: T });
  try {
    if (rng() < 0.15) {
      // Killed while the prelude is on its way.
      variant('killed-at-prelude');
      await s.readUntil((t) => t.length > 0, T, `the start of the xhr_streaming prelude of ${sid}`);
      return;
    }
    variant('echo-then-abort');
    await s.readUntil((t) => t.startsWith(`${H.PRELUDE}o\n`), T, `the prelude and open frame of ${sid}`);
    const sent = numbered(sid, 1 + int(rng, 8));
    await xhrSend(base, sent);
    const what = `the xhr_streaming echo on ${sid}`;
    const text = await s.readUntil(
      (t) => frameMessages(completeParts(t.slice(H.PRELUDE.length), '\n'), what).length >= sent.length,
      T,
      what,
    );
    assert.deepEqual(frameMessages(completeParts(text.slice(H.PRELUDE.length), '\n'), what), sent, what);
  } finally {
    s.destroy();
  }
}

async function eventSource({ port, rng, sid, variant }) {
  const base = httpBase(port, sid);
  const s = H.openStream(`${base}/eventsource`, { timeout: T });
  const frames = (t) => completeParts(t.slice(2), '\r\n\r\n').map((e) => e.replace(/^data: /, ''));
  try {
    variant('echo-then-abort');
    await s.readUntil((t) => t.startsWith('\r\ndata: o\r\n\r\n'), T, `the eventsource open frame of ${sid}`);
    const sent = numbered(sid, 1 + int(rng, 8));
    await xhrSend(base, sent);
    const what = `the eventsource echo on ${sid}`;
    const text = await s.readUntil((t) => frameMessages(frames(t), what).length >= sent.length, T, what);
    assert.deepEqual(frameMessages(frames(text), what), sent, what);
  } finally {
    s.destroy();
  }
}

function jsonpFrame(body, sid) {
  const m = /^\/\*\*\/cb\((.*)\);\r\n$/s.exec(body);
  if (!m) throw new Error(`not a jsonp answer for ${sid}: ${JSON.stringify(body.slice(0, 120))}`);
  return JSON.parse(m[1]);
}

async function jsonp({ port, rng, sid, variant }) {
  const base = httpBase(port, sid);
  const open = await H.request(`${base}/jsonp?c=cb`, { timeout: T });
  assert.equal(open.status, 200, `jsonp open of ${sid}`);
  assert.equal(jsonpFrame(open.body, sid), 'o');
  const sent = numbered(sid, 1 + int(rng, 8));
  variant('send-then-poll');
  const s = await H.request(`${base}/jsonp_send`, {
    method: 'POST',
    body: `d=${encodeURIComponent(JSON.stringify(sent))}`,
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    timeout: T,
  });
  if (s.status === 404) throw new Expired(`jsonp_send to ${sid}: no such session`);
  assert.equal(s.status, 200, `jsonp_send to ${sid}`);
  assert.equal(s.body, 'ok');
  const got = [];
  for (let i = 0; i < 20 && got.length < sent.length; i++) {
    const r = await H.request(`${base}/jsonp?c=cb`, { timeout: T });
    assert.equal(r.status, 200, `jsonp poll of ${sid}`);
    got.push(...frameMessages([jsonpFrame(r.body, sid)], `a jsonp poll of ${sid}`, { openIsExpiry: true }));
  }
  assert.deepEqual(got, sent, `jsonp echo on ${sid}`);
}

const KINDS = [
  { name: 'websocket', weight: 3, run: websocketSession },
  { name: 'websocket-killed', weight: 2, run: websocketKilled },
  { name: 'raw-websocket', weight: 2, run: rawWebsocket },
  { name: 'xhr-polling', weight: 2, run: xhrPolling },
  { name: 'xhr-killed', weight: 2, run: xhrKilled },
  { name: 'xhr-streaming', weight: 2, run: xhrStreaming },
  { name: 'eventsource', weight: 2, run: eventSource },
  { name: 'jsonp', weight: 2, run: jsonp },
];
const TOTAL_WEIGHT = KINDS.reduce((s, k) => s + k.weight, 0);

function pickKind(rng) {
  let r = rng() * TOTAL_WEIGHT;
  for (const k of KINDS) {
    r -= k.weight;
    if (r < 0) return k;
  }
  return KINDS[KINDS.length - 1];
}

/** Tallies of a churn: per kind started/ok/failed, per variant, the first failures. */
function newTally() {
  const kinds = {};
  for (const k of KINDS) kinds[k.name] = { started: 0, ok: 0, expired: 0, failed: 0 };
  return { kinds, variants: {}, failures: [], total: 0 };
}

async function runIteration(tally, kind, ctx) {
  const t = tally.kinds[kind.name];
  t.started += 1;
  tally.total += 1;
  const variant = (v) => {
    const key = `${kind.name}/${v}`;
    tally.variants[key] = (tally.variants[key] || 0) + 1;
  };
  try {
    await kind.run({ ...ctx, variant });
    t.ok += 1;
  } catch (err) {
    if (err instanceof Expired) {
      t.expired += 1;
      variant('expired');
      return;
    }
    t.failed += 1;
    if (tally.failures.length < 20) {
      tally.failures.push(`${kind.name} ${ctx.sid}: ${String(err && err.message).slice(0, 400)}`);
    }
  }
}

// ------------------------------------------------------------- stayers

/**
 * A long-lived SockJS WebSocket session that sends numbered messages until
 * told to stop, and checks that each echo arrives once and in order.
 */
function startStayer(port, index, stopBy) {
  const st = { index, sent: 0, received: 0, errors: [], closedEarly: null, done: null };
  const tag = `stayer${index}`;
  let stopping = false;
  st.stop = () => {
    stopping = true;
  };
  st.done = (async () => {
    const { ws, queue } = await W.openClient(wsUrl(port, `${tag}-${Date.now()}`), {}, T);
    assert.equal(await queue.next(T, `the open frame of ${tag}`), 'o');
    // From here on the frames are read here, not through the queue.
    ws.removeAllListeners('message');
    const onFrame = (data) => {
      const frame = data.toString('utf8');
      if (frame === 'h') return;
      if (frame[0] !== 'a') {
        st.errors.push(`unexpected frame ${frame.slice(0, 80)}`);
        return;
      }
      for (const m of JSON.parse(frame.slice(1))) {
        const want = `${tag}:${st.received}`;
        if (m !== want && st.errors.length < 5) st.errors.push(`expected ${want}, got ${m}`);
        st.received += 1;
      }
    };
    for (const item of queue.items.splice(0)) onFrame(item.data);
    ws.on('message', onFrame);
    ws.on('close', (code, reason) => {
      if (!stopping) st.closedEarly = `${code} ${reason}`;
    });
    try {
      // Sends while the soak runs (bounded by count too), keeping at most
      // 200 messages unanswered.
      for (let i = 0; i < 1e6 && !stopping && !st.closedEarly && Date.now() < stopBy && serverAlive(); i++) {
        if (st.sent - st.received < 200) {
          const batch = [];
          for (let j = 0, n = 1 + (i % 3); j < n; j++) batch.push(`${tag}:${st.sent++}`);
          ws.send(JSON.stringify(batch));
        }
        await sleep(20 + (i % 30));
      }
      stopping = true;
      // Everything sent must come back before the session is closed.
      const deadline = Date.now() + T;
      for (let i = 0; i < 1000 && st.received < st.sent && !st.closedEarly && Date.now() < deadline; i++) {
        await sleep(20);
      }
      await W.closeClient(ws, T);
    } finally {
      ws.terminate();
    }
  })();
  st.done.catch((err) => st.errors.push(`stayer failed: ${err.message}`));
  return st;
}

// ------------------------------------------------------------ slow reader

/**
 * One slow-reader cycle: ask for `n` flood messages, stop reading at the
 * first one for pauseMs (sending empty SockJS frames meanwhile, as a live
 * client would, so that the heartbeat does not end the session), look at
 * the server's side of the flood, read again, and check all n arrive in
 * order.
 */
async function slowReaderCycle(port, sid, n, pauseMs) {
  const { ws, queue } = await W.openClient(wsUrl(port, sid), {}, T);
  const r = { n, received: 0, errors: [], heldBack: null, atPauseEnd: null };
  try {
    assert.equal(await queue.next(T, `the open frame of the slow reader ${sid}`), 'o');
    ws.removeAllListeners('message'); // read the flood here, not through the queue
    queue.items.length = 0; // heartbeats at most: the flood is not asked for yet
    let first;
    const firstP = new Promise((resolve) => {
      first = resolve;
    });
    let lastAt = Date.now();
    ws.on('message', (data) => {
      const frame = data.toString('utf8');
      if (frame[0] !== 'a') return;
      for (const m of JSON.parse(frame.slice(1))) {
        const got = /^f(\d+):/.exec(m);
        if ((!got || Number(got[1]) !== r.received) && r.errors.length < 5) {
          r.errors.push(`expected flood message ${r.received}, got ${m.slice(0, 20)}`);
        }
        r.received += 1;
      }
      lastAt = Date.now();
      first();
    });
    ws.send(JSON.stringify([`flood:${n}`]));
    await W.withTimeout(firstP, T, `the first flood message of ${sid}`);
    if (pauseMs > 0) {
      ws.pause();
      const until = Date.now() + pauseMs;
      for (let i = 0; i < 1000 && Date.now() < until; i++) {
        ws.send('[]');
        await sleep(Math.min(250, Math.max(0, until - Date.now())));
      }
      const s = await getStats(port);
      r.atPauseEnd = { received: r.received, written: s.floodWrittenActive, active: s.floodsActive };
      r.heldBack = s.floodsActive === 1 && s.floodWrittenActive < n;
      ws.resume();
      lastAt = Date.now();
    }
    // Reading again: everything must arrive. Bounded by time since the last
    // message (progress) and overall.
    const deadline = Date.now() + 6 * T;
    for (let i = 0; i < 100000 && r.received < n && Date.now() < deadline; i++) {
      if (Date.now() - lastAt > T) break;
      if (queue.closed) break;
      await sleep(20);
    }
    if (r.received < n) {
      r.errors.push(`received ${r.received} of ${n} flood messages (closed: ${JSON.stringify(queue.closed)})`);
    }
    await W.closeClient(ws, T);
  } finally {
    ws.terminate();
  }
  return r;
}

// ------------------------------------------------------------------ the test

test(`soak: ${SOAK_SECONDS} s of churn over every transport, killed clients, stayers and a slow reader`, {
  timeout: (SOAK_SECONDS + 240) * 1000,
}, async (t) => {
  const port = await startServer();
  const diag = (line) => t.diagnostic(line);
  diag(`seed ${SEED}, ${WORKERS} workers, ${SOAK_SECONDS} s, server pid ${child.pid} on port ${port}`);

  // Warm-up: every kind of session a few dozen times at the churn's
  // concurrency, next to one full-size flood with a short pause, so that
  // what grows once to a working size (threads, buffers, the heap, the
  // allocator's arenas) has done so before the baseline.
  const warm = newTally();
  {
    const rng = prng(SEED ^ 0xbeef);
    let next = 0;
    const plan = 50 * KINDS.length;
    const [flood] = await Promise.all([
      slowReaderCycle(port, 'warm-flood', FLOOD, 500),
      ...Array.from({ length: WORKERS }, async () => {
        for (let i = 0; i < plan && next < plan; i++) {
          const n = next++;
          await runIteration(warm, KINDS[n % KINDS.length], { port, rng, sid: `warm${n}` });
        }
      }),
    ]);
    assert.deepEqual(flood.errors, [], 'the warm-up flood');
  }
  assert.deepEqual(warm.failures, [], `warm-up iterations failed: ${warm.failures.join('\n')}`);
  const warmIdle = await pollStats(port, (s) => s.open === 0, 20000);
  assert.ok(warmIdle.ok, `sessions still open 20 s after the warm-up: ${brief(warmIdle.stats)}`);
  // The baseline: no session open, and the descriptor count steady.
  let baseline = warmIdle.stats;
  for (let i = 0, same = 0; i < 50 && same < 3; i++) {
    await sleep(100);
    const s = await getStats(port);
    same = s.fds === baseline.fds ? same + 1 : 0;
    baseline = s;
  }
  diag(`baseline after ${warm.total} warm-up sessions: ${brief(baseline)}`);

  // The churn, the stayers and the slow reader, all at once.
  const startedAt = Date.now();
  const endAt = startedAt + SOAK_SECONDS * 1000;
  // The stayers stop when told, after the churn; at the latest a little
  // after its end (the slow reader may still be finishing its cycle).
  const stayers = Array.from({ length: STAYERS }, (_, i) => startStayer(port, i, endAt + 12 * T));
  const tally = newTally();
  const slow = [];
  let slowFailure = null;
  const slowDone = (async () => {
    for (let c = 0; c < 1000 && (c === 0 || Date.now() < endAt - PAUSE_MS) && serverAlive(); c++) {
      slow.push(await slowReaderCycle(port, `slow${c}`, FLOOD, PAUSE_MS));
    }
  })().catch((err) => {
    slowFailure = err;
  });
  // RSS and descriptors along the way (ten samples), to tell a plateau from
  // a steady climb in the report.
  const samples = [];
  const sampler = (async () => {
    for (let i = 1; i <= 10 && serverAlive(); i++) {
      await sleep(Math.max(0, startedAt + (i * SOAK_SECONDS * 1000) / 10 - Date.now()));
      try {
        const s = await getStats(port, { gc: false });
        samples.push(`${Math.round((Date.now() - startedAt) / 1000)}s: ${(s.rss / 2 ** 20).toFixed(0)} MB, ${s.fds} fds, ${s.open} open`);
      } catch (err) {
        samples.push(`/stats failed: ${err.message}`);
      }
    }
  })();
  const maxPerWorker = SOAK_SECONDS * 500;
  await Promise.all(
    Array.from({ length: WORKERS }, async (_, w) => {
      const rng = prng(SEED + (w + 1) * 7919);
      for (let n = 0; n < maxPerWorker && Date.now() < endAt && serverAlive(); n++) {
        await runIteration(tally, pickKind(rng), { port, rng, sid: `w${w}n${n}` });
      }
    }),
  );
  const churnMs = Date.now() - startedAt;
  await sampler;
  await slowDone;
  for (const st of stayers) st.stop();
  await Promise.all(stayers.map((st) => st.done.catch(() => {})));

  // The report.
  const per = Object.entries(tally.kinds)
    .map(([k, v]) => `${k} ${v.ok}/${v.started}${v.expired ? ` (${v.expired} expired)` : ''}`)
    .join(', ');
  diag(`churn: ${tally.total} iterations in ${(churnMs / 1000).toFixed(1)} s: ${per}`);
  diag(`variants: ${JSON.stringify(tally.variants)}`);
  for (const f of tally.failures) diag(`failure: ${f}`);
  if (slowFailure) diag(`slow reader failure: ${slowFailure.message}`);
  const sent = stayers.reduce((s, st) => s + st.sent, 0);
  const received = stayers.reduce((s, st) => s + st.received, 0);
  diag(`during the churn (no gc): ${samples.join('; ')}`);
  diag(`stayers: ${STAYERS} sessions, ${sent} messages sent, ${received} echoed`);
  const written = slow.map((c) => (c.atPauseEnd ? c.atPauseEnd.written : NaN));
  diag(
    `slow reader: ${slow.length} cycles of ${FLOOD} messages, ${slow.filter((c) => c.heldBack).length} held back; ` +
      `written by the server when the pause ended: ${Math.min(...written)} to ${Math.max(...written)}`,
  );

  // The server, once every client is gone: nothing open.
  const idle = await pollStats(port, (s) => s.open === 0, 20000);
  // Closed sockets may take a moment to be released: wait (bounded).
  if (idle.ok) await pollStats(port, (s) => s.fds <= baseline.fds + FD_SLACK, 10000);
  const end = await getStats(port);
  diag(`end: ${brief(end)}; ${JSON.stringify({ ...end, rss: undefined })}`);
  diag(`rss ${(baseline.rss / 2 ** 20).toFixed(1)} MB -> ${(end.rss / 2 ** 20).toFixed(1)} MB, fds ${baseline.fds} -> ${end.fds}`);

  assert.ok(serverAlive(), `the soak server died: ${child.exitCode} ${child.signalCode}\n${childErr}`);
  assert.ok(idle.ok, `sessions still open 20 s after the last client left: ${brief(idle.stats)}`);
  assert.equal(end.open, 0, `open sessions at the end: ${brief(end)}`);
  assert.equal(end.duplicateCloses, 0, `sessions that emitted 'close' more than once: ${end.duplicateCloses}`);
  assert.equal(end.closedWithoutOpen, 0, `'close' for sessions that were not open: ${end.closedWithoutOpen}`);
  assert.equal(end.duplicateOpens, 0, `'connection' emitted twice for a session: ${end.duplicateOpens}`);
  assert.equal(end.dataAfterClose, 0, `'data' after 'close': ${end.dataAfterClose}`);
  assert.equal(end.opened, end.closed, `sessions opened ${end.opened}, closed ${end.closed}`);
  assert.ok(end.opened > baseline.opened, 'the churn opened sessions');
  for (const key of ['implSessions', 'implReceivers', 'implSockets']) {
    if (end[key] !== null) assert.equal(end[key], 0, `${key} left in the server's tables: ${end[key]}`);
  }
  assert.ok(
    end.fds <= baseline.fds + FD_SLACK,
    `open descriptors: ${end.fds} at the end vs ${baseline.fds} at the baseline (slack ${FD_SLACK})`,
  );
  const rssBound = baseline.rss + RSS_SLACK_MB * 2 ** 20;
  assert.ok(
    end.rss <= rssBound,
    `RSS ${(end.rss / 2 ** 20).toFixed(1)} MB at the end vs ${(baseline.rss / 2 ** 20).toFixed(1)} MB ` +
      `at the baseline (bound: baseline + ${RSS_SLACK_MB} MB)`,
  );

  // The clients' side.
  assert.deepEqual(tally.failures, [], `failed iterations:\n${tally.failures.join('\n')}`);
  for (const k of KINDS) assert.ok(tally.kinds[k.name].ok > 0, `no ${k.name} iteration succeeded`);
  for (const st of stayers) {
    assert.deepEqual(st.errors, [], `stayer ${st.index}: messages lost, duplicated or reordered`);
    assert.equal(st.closedEarly, null, `stayer ${st.index} was closed during the soak`);
    assert.equal(st.received, st.sent, `stayer ${st.index}: ${st.sent} sent, ${st.received} echoed`);
    assert.ok(st.sent > 0, `stayer ${st.index} sent nothing`);
  }
  assert.equal(slowFailure, null, `the slow reader failed: ${slowFailure && slowFailure.message}`);
  assert.ok(slow.length > 0, 'the slow reader ran');
  for (const [i, c] of slow.entries()) {
    assert.deepEqual(c.errors, [], `slow reader cycle ${i}: flood lost or reordered`);
    assert.ok(
      c.heldBack,
      `slow reader cycle ${i}: the server was not held back by the paused reader: ${JSON.stringify(c.atPauseEnd)}`,
    );
  }
  assert.ok(end.floodPauses > 0 && end.floodDrains > 0, `backpressure engaged: ${end.floodPauses} pauses, ${end.floodDrains} drains`);
});
