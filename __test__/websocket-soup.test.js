'use strict';
// Random frame sequences against both WebSocket endpoints, checked against
// a model of what RFC 6455 (and tungstenite's answers) and the SockJS
// framing require.
// Each connection gets a seeded mix of messages (whole, fragmented at any
// byte, UTF-8 characters cut across fragments, pings between fragments),
// pings and pongs, and at most one frame that ends the connection (a
// protocol violation, invalid UTF-8, an absurd length, a close frame of any
// kind; on the SockJS endpoint, broken JSON too). The bytes go out cut at
// random points. The model predicts the
// echoes (the server's answers to messages sent before an error may be cut
// short by the close, so those must be a prefix), the pongs (each one
// answers a ping, in order) and the close code; every connection that
// stays open must echo a last probe message after everything else. The
// server must answer every connection so, log no internal error, and keep
// serving a session opened before all of it.
//
// SOUP_SEED=<n> runs one seed; a failure names its seed and connection.
//
// sockjs@0.3.24 (SOCKJS_IMPL) passes it but for three answers RFC 6455
// leaves to the server, where its faye-websocket chose otherwise: 1003 for
// an unmasked frame (here 1002, which the RFC suggests), 1000 in answer to
// a close without a code (here a close without one, the echo), and 1002
// for an absurd length announced inside a fragmented message (here 1009:
// the length is refused as soon as the header is read).

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { startApp } = require('./helpers/app.js');
const W = require('./helpers/ws-frames.js');
const { OP, arrayFrame, openSession } = W;

const T = 5000;
const SEEDS = process.env.SOUP_SEED ? [Number(process.env.SOUP_SEED)] : [1, 2, 3, 4];
const CONNECTIONS_PER_SEED = 60;
const PARALLEL = 10;

// A small, seedable generator (mulberry32): the same seed, the same soup.
function generator(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (lo, hi) => lo + Math.floor(next() * (hi - lo + 1));
  const pick = (list) => list[int(0, list.length - 1)];
  const bytes = (n) => Buffer.from(Array.from({ length: n }, () => int(0, 255)));
  return { next, int, pick, bytes };
}

// Characters of 1 to 4 UTF-8 bytes, so that cuts at any byte split some.
const ALPHABET = ['a', 'z', ' ', '"', '\\', '[', '\u0000', '\u007f', 'é', 'ß', '\u2028', '€', '中', '\ufffd', '😀', '𝄞'];

function randomText(r) {
  const length = r.next() < 0.05 ? r.int(66000, 70000) : r.int(1, 300);
  let s = '';
  while (s.length < length) s += r.pick(ALPHABET);
  return s;
}

// The frames that end a connection, each with the close code the server
// must send (`code`), or the client's own close (`clientClose`), which the
// server answers with the same code.
const ENDINGS = [
  () => ({ frame: { opcode: OP.TEXT, payload: 'unmasked', mask: false }, code: 1002, what: 'an unmasked frame' }),
  (r) => ({ frame: { opcode: OP.TEXT, payload: 'x', [r.pick(['rsv1', 'rsv2', 'rsv3'])]: true }, code: 1002, what: 'a reserved bit' }),
  (r) => ({ frame: { opcode: r.pick([3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf]), payload: 'x' }, code: 1002, what: 'a reserved opcode' }),
  (r) => ({ frame: { opcode: OP.PING, payload: r.bytes(126) }, code: 1002, what: 'a 126-byte ping' }),
  () => ({ frame: { opcode: OP.PING, payload: 'p', fin: false }, code: 1002, what: 'a fragmented ping' }),
  (r) => ({ frame: { opcode: OP.TEXT, payload: Buffer.from([0x61, r.pick([0x80, 0xc0, 0xff, 0xed])]) }, code: 1007, what: 'invalid UTF-8' }),
  () => ({ frame: { opcode: OP.BINARY, payload: '', length: 2n ** 40n }, code: 1009, what: 'an absurd length' }),
  () => ({ frame: { opcode: OP.CLOSE, payload: Buffer.from([0x03]) }, code: 1002, what: 'a 1-byte close payload' }),
  (r) => ({ frame: { opcode: OP.CLOSE, payload: W.closePayload(r.pick([999, 1005, 1006, 5000])) }, code: 1002, clientClose: true, what: 'an invalid close code' }),
  (r) => {
    const code = r.pick([1000, 1001, 1003, 1008, 1011, 3000, 4999]);
    return { frame: { opcode: OP.CLOSE, payload: W.closePayload(code, r.pick(['', 'bye', 'ünïcödé'])) }, code, clientClose: true, what: `a close with ${code}` };
  },
  () => ({ frame: { opcode: OP.CLOSE }, code: null, clientClose: true, what: 'a close without a code' }),
  () => ({ frame: { opcode: OP.CONT, payload: 'orphan' }, code: 1002, what: 'a continuation without a start' }),
];

// The two endpoints: how a message goes on the wire, how the server's text
// frames read back as messages, and the endings only one of them has.
const ENDPOINTS = {
  raw: {
    path: () => '/echo/websocket',
    encode: (r, text) => text,
    messages: (frameText) => [frameText],
    endings: [],
  },
  sockjs: {
    path: () => W.sessionPath(),
    // A JSON array of one message, or the bare JSON string.
    encode: (r, text) => (r.next() < 0.7 ? JSON.stringify([text]) : JSON.stringify(text)),
    // 'o' and 'h' carry no message, 'c[...]' may precede a close frame.
    messages: (frameText) => (frameText[0] === 'a' ? JSON.parse(frameText.slice(1)) : []),
    endings: [(r) => ({ frame: { opcode: OP.TEXT, payload: r.pick(['[', '["x"', '{', 'nope']) }, code: 3000, what: 'broken JSON' })],
  },
};

/**
 * One connection's frames and what the server must answer: `echoes` (texts,
 * in order), `pings` (payloads, in order), and `ending` (null when the
 * connection stays open).
 */
function soup(r, endpoint) {
  const frames = [];
  const echoes = [];
  const pings = [];
  let ending = null;
  const ping = () => {
    const payload = r.bytes(r.int(0, 125));
    frames.push({ opcode: OP.PING, payload });
    pings.push(payload);
  };
  const steps = r.int(1, 12);
  const endAt = r.next() < 0.6 ? r.int(0, steps - 1) : -1;
  for (let step = 0; step < steps && !ending; step++) {
    const roll = r.next();
    if (step === endAt) {
      ending = r.pick([...ENDINGS, ...endpoint.endings])(r);
      // Or the ending comes in the middle of a fragmented message.
      if (r.next() < 0.3) {
        frames.push({ opcode: OP.TEXT, payload: Buffer.from('half'), fin: false });
        if (ending.frame.opcode === OP.CONT || r.next() < 0.3) {
          // (A continuation would be a valid one here.)
          ending = { frame: { opcode: OP.TEXT, payload: 'again' }, code: 1002, what: 'a new message inside a fragmented one' };
        } else if (ending.frame.opcode === OP.TEXT && (ending.code === 1007 || ending.code === 3000)) {
          // What is wrong with a message's content is found after it is
          // found to be a new message inside a fragmented one.
          ending = { ...ending, code: 1002, what: `${ending.what} as a new message inside a fragmented one` };
        }
      }
      frames.push(ending.frame);
    } else if (roll < 0.35) {
      const text = randomText(r);
      frames.push({ opcode: r.next() < 0.8 ? OP.TEXT : OP.BINARY, payload: Buffer.from(endpoint.encode(r, text)) });
      echoes.push(text);
    } else if (roll < 0.65) {
      // Cut at any byte, UTF-8 characters included: only the whole
      // message has to be valid. Pings may come between the pieces.
      const text = randomText(r);
      const bytes = Buffer.from(endpoint.encode(r, text));
      const cuts = [...new Set(Array.from({ length: r.int(1, 3) }, () => r.int(0, bytes.length)))].sort((x, y) => x - y);
      let from = 0;
      const pieces = [...cuts, bytes.length].map((to) => {
        const piece = bytes.subarray(from, to);
        from = to;
        return piece;
      });
      pieces.forEach((piece, i) => {
        frames.push({ opcode: i === 0 ? OP.TEXT : OP.CONT, payload: piece, fin: i === pieces.length - 1 });
        if (i < pieces.length - 1 && r.next() < 0.4) ping();
      });
      echoes.push(text);
    } else if (roll < 0.8) {
      ping();
    } else {
      frames.push({ opcode: OP.PONG, payload: r.bytes(r.int(0, 125)) });
    }
  }
  return { frames, echoes, pings, ending };
}

function describeSoup(s) {
  const kinds = s.frames.map((f) => `${f.opcode}${f.fin === false ? '~' : ''}`).join(' ');
  return `frames [${kinds}], ${s.echoes.length} echoes, ${s.pings.length} pings, ending: ${s.ending ? s.ending.what : 'none'}`;
}

/** Write `bytes` cut at random points, each piece in its own turn. */
async function writeInPieces(socket, bytes, r) {
  let from = 0;
  while (from < bytes.length) {
    const to = r.next() < 0.3 ? bytes.length : Math.min(bytes.length, from + r.int(1, 2048));
    if (socket.destroyed) return;
    socket.write(bytes.subarray(from, to));
    from = to;
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/** Messages from the server until its close frame (or `until` says stop). */
async function readAnswers(reader, endpoint, label, until) {
  const texts = [];
  const pongs = [];
  for (let i = 0; i < 10000; i++) {
    const f = await reader.nextFrame(T, `${label}: a frame (${texts.length} texts so far)`);
    if (f.opcode === OP.CLOSE) return { texts, pongs, close: f };
    if (f.opcode === OP.TEXT) texts.push(...endpoint.messages(f.text()));
    else if (f.opcode === OP.PONG) pongs.push(f.payload);
    else if (f.opcode !== OP.PING) throw new Error(`${label}: unexpected ${W.describeFrame(f)}`);
    if (until && until(texts)) return { texts, pongs, close: null };
  }
  throw new Error(`${label}: no end after 10000 frames`);
}

/** Each pong answers a ping sent, in order (a later ping may replace an unanswered one). */
function assertPongsAnswerPings(pongs, pings, label) {
  let at = 0;
  for (const pong of pongs) {
    while (at < pings.length && !pings[at].equals(pong)) at++;
    assert.ok(at < pings.length, `${label}: a pong that answers no ping sent (or out of order): ${pong.toString('hex')}`);
    at++;
  }
}

async function runConnection(port, endpoint, r, label) {
  const s = soup(r, endpoint);
  const what = `${label} (${describeSoup(s)})`;
  const c = await W.openRawWebSocket(port, endpoint.path());
  c.socket.on('error', () => {}); // writes after the server's close may fail
  try {
    const bytes = Buffer.concat(s.frames.map((f) => W.encodeFrame(f)));
    if (!s.ending) {
      // Still open: everything must come back before the probe's echo.
      const probe = `probe ${label}`;
      const answered = readAnswers(c.reader, endpoint, what, (texts) => texts[texts.length - 1] === probe);
      const probeFrame = W.encodeFrame({ opcode: OP.TEXT, payload: endpoint.encode(r, probe) });
      await writeInPieces(c.socket, Buffer.concat([bytes, probeFrame]), r);
      const got = await answered;
      assert.deepEqual(got.texts, [...s.echoes, probe], `${what}: the echoes`);
      assertPongsAnswerPings(got.pongs, s.pings, what);
      c.send({ opcode: OP.CLOSE, payload: W.closePayload(1000) });
      const reply = await readAnswers(c.reader, endpoint, `${what}, closing`);
      assert.equal(reply.close.code, 1000, `${what}: the answer to a close with 1000`);
      c.socket.end();
    } else {
      const answered = readAnswers(c.reader, endpoint, what);
      // The bytes after the ending may go nowhere: the server stops reading.
      await writeInPieces(c.socket, bytes, r);
      const got = await answered;
      assert.deepEqual(got.texts, s.echoes.slice(0, got.texts.length), `${what}: the echoes received are those due, in order`);
      assertPongsAnswerPings(got.pongs, s.pings, what);
      assert.equal(got.close.code, s.ending.code, `${what}: the close code, got ${W.describeFrame(got.close)}`);
      if (!s.ending.clientClose && !c.reader.ended) {
        c.socket.write(W.encodeFrame({ opcode: OP.CLOSE, payload: W.closePayload(s.ending.code) }));
      }
      c.socket.end();
    }
    await c.reader.waitClosed(T, `${what}: the server to close TCP`);
  } finally {
    c.socket.destroy();
  }
}

let app;
let healthy;

before(async () => {
  app = await startApp();
  healthy = await openSession(app.port);
});

after(async () => {
  if (healthy) await W.closeClient(healthy.ws);
  if (app) await W.withTimeout(app.close(), T, 'the test app to close');
});

for (const [name, endpoint] of Object.entries(ENDPOINTS)) {
  for (const seed of SEEDS) {
    const title = `websocket soup, ${name} endpoint, seed ${seed}: ${CONNECTIONS_PER_SEED} connections of random frames, each answered as the model says`;
    test(title, async () => {
      const r = generator(seed);
      // Each connection draws from its own generator, made from this one in
      // order, so that a connection's soup does not depend on timing.
      const seeds = Array.from({ length: CONNECTIONS_PER_SEED }, () => r.int(1, 2 ** 31));
      for (let i = 0; i < seeds.length; i += PARALLEL) {
        await Promise.all(
          seeds.slice(i, i + PARALLEL).map((s, j) => runConnection(app.port, endpoint, generator(s), `${name}, seed ${seed}, connection ${i + j}`)),
        );
      }
      const internal = app.logs.filter(([, line]) => /internal error|panic/i.test(line));
      assert.deepEqual(internal, [], 'no internal error was logged');
      healthy.ws.send(JSON.stringify([`after seed ${seed}`]));
      assert.deepEqual(arrayFrame(await healthy.queue.next(T, 'the healthy session echo')), [`after seed ${seed}`]);
    });
  }
}
