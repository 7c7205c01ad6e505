'use strict';
// Volume and encoding on the SockJS WebSocket transport: a long ordered echo
// on one connection, many concurrent connections, and the JSON escaping of
// the code units SockJS must never send verbatim.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { execFileSync } = require('node:child_process');
const { startApp } = require('./helpers/app.js');
const W = require('./helpers/ws-frames.js');
const { arrayFrame, openSession } = W;

const T = 3000;

let app;

before(async () => {
  app = await startApp();
});

after(async () => {
  if (app) await W.withTimeout(app.close(), 5000, 'the test app to close');
});


/** The soft limit on open files of this process, as the shell reports it. */
function openFileLimit() {
  const out = execFileSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).trim();
  return out === 'unlimited' ? Infinity : Number(out);
}

test('websocket-load: 5,000 messages in one frame reach the application in one batch, all and in order', async () => {
  // One frame's messages are queued together and drained together: more
  // events than the engine's drain array holds (2,048), so their codes come
  // in an array of their own (src/lib.rs: EventBatch).
  const TOTAL = 5000;
  const sent = Array.from({ length: TOTAL }, (_, i) => `m${i}`);
  const { ws } = await openSession(app.port);
  const received = [];
  let done;
  const all = new Promise((resolve) => { done = resolve; });
  ws.on('message', (data) => {
    received.push(...arrayFrame(data.toString('utf8')));
    if (received.length >= TOTAL) done();
  });
  try {
    ws.send(JSON.stringify(sent));
    await W.withTimeout(all, 10000, `${TOTAL} echoed messages`);
    assert.deepEqual(received, sent);
  } finally {
    await W.closeClient(ws);
  }
});

test('websocket-load: 10,000 messages echo once each and in order on one connection', async () => {
  const TOTAL = 10000;
  const BURST = 500;
  const payload = (i) => `msg ${i} "q" \\ ${'x'.repeat(i % 17)}`;
  const { ws } = await openSession(app.port);
  const received = [];
  let waiter = null;
  ws.on('message', (data) => {
    received.push(...arrayFrame(data.toString('utf8')));
    if (waiter) waiter();
  });
  const until = (n, ms) =>
    W.withTimeout(
      new Promise((resolve) => {
        waiter = () => {
          if (received.length >= n) resolve();
        };
        waiter();
      }),
      ms,
      `${n} echoed messages (have ${received.length})`,
    );
  try {
    for (let sent = 0; sent < TOTAL; sent += BURST) {
      for (let i = sent; i < sent + BURST; i += 1) {
        // Mostly one message per frame, every 50th frame carries two.
        if (i % 50 === 49 && i + 1 < sent + BURST) {
          ws.send(JSON.stringify([payload(i), payload(i + 1)]));
          i += 1;
        } else {
          ws.send(JSON.stringify([payload(i)]));
        }
      }
      await until(sent + BURST, 10000);
    }
    assert.equal(received.length, TOTAL, 'no duplicates and nothing extra');
    for (let i = 0; i < TOTAL; i += 1) {
      if (received[i] !== payload(i)) {
        assert.fail(`message ${i} out of order or corrupted: ${JSON.stringify(received[i])}`);
      }
    }
  } finally {
    await W.closeClient(ws);
  }
});

test('websocket-load: messages far larger than one socket read arrive intact, in order, on both endpoints', async () => {
  // The engine reads the socket 64 KiB at a time and hands tungstenite a
  // few hundred bytes per call; these cross both sizes many times, with a
  // small message squeezed between two large ones.
  const text = (n, seed) => {
    const unit = `${seed} é 漢 😀 "q" \\ `;
    return unit.repeat(Math.ceil(n / unit.length)).slice(0, n);
  };
  const sent = [text(300 * 1024, 'a'), 'tiny', text(1024 * 1024 + 7, 'b'), text(70 * 1024, 'c')];

  const { ws, queue } = await openSession(app.port);
  try {
    for (const m of sent) ws.send(JSON.stringify([m]));
    const echoed = [];
    while (echoed.length < sent.length) {
      echoed.push(...arrayFrame(await queue.next(10000, `echo ${echoed.length + 1} of ${sent.length}`)));
    }
    assert.equal(echoed.length, sent.length);
    echoed.forEach((m, i) => assert.ok(m === sent[i], `message ${i} (${sent[i].length} chars) came back changed`));
  } finally {
    await W.closeClient(ws);
  }

  const raw = await W.openClient(`ws://127.0.0.1:${app.port}/echo/websocket`);
  try {
    for (const m of sent) raw.ws.send(m);
    for (let i = 0; i < sent.length; i += 1) {
      const m = String(await raw.queue.next(10000, `raw echo ${i + 1} of ${sent.length}`));
      assert.ok(m === sent[i], `raw message ${i} (${sent[i].length} chars) came back changed`);
    }
  } finally {
    await W.closeClient(raw.ws);
  }
});

test('websocket-load: after large messages, the quiet heartbeat that makes the WebSocket afresh loses nothing', async () => {
  // The engine gives back the buffers a large message grew by making a new
  // WebSocket over the same socket at a heartbeat, when the connection is
  // between messages. Around those heartbeats: large and small messages, a
  // fragmented one with a ping inside it, in both directions.
  const hb = await startApp({ server: { heartbeat_delay: 100 } });
  const c = await W.openRawWebSocket(hb.port, W.sessionPath());
  const pongs = [];
  // The next text frame; pings are answered (the engine closes peers that
  // do not answer) and pongs kept.
  const nextText = async (label) => {
    for (let i = 0; i < 1000; i += 1) {
      const f = await c.reader.nextFrame(T, label);
      if (f.opcode === W.OP.PING) {
        c.send({ opcode: W.OP.PONG, payload: f.payload });
      } else if (f.opcode === W.OP.PONG) {
        pongs.push(f.text());
      } else {
        assert.equal(f.opcode, W.OP.TEXT, `${label}: got opcode ${f.opcode}`);
        return f.text();
      }
    }
    throw new Error(`${label}: only control frames`);
  };
  const heartbeats = async (n, label) => {
    for (let i = 0; i < n; i += 1) assert.equal(await nextText(label), 'h', label);
  };
  try {
    assert.equal(await nextText('the open frame'), 'o');
    const big = 'é"x'.repeat(100 * 1024);
    c.sendText(JSON.stringify([big]));
    assert.ok(arrayFrame(await nextText('the large echo'))[0] === big, 'the large message came back changed');
    await heartbeats(2, 'heartbeats after the large message');

    c.send({ opcode: W.OP.TEXT, fin: false, payload: '["frag' });
    c.send({ opcode: W.OP.PING, payload: 'inside' });
    c.send({ opcode: W.OP.CONT, fin: true, payload: 'mented", "two"]' });
    assert.deepEqual(arrayFrame(await nextText('the fragmented echo')), ['fragmented', 'two']);
    assert.deepEqual(pongs, ['inside']);

    const half = 'y'.repeat(70 * 1024);
    c.sendText(JSON.stringify([half]));
    c.sendText(JSON.stringify(['small']));
    const echoed = [];
    while (echoed.length < 2) echoed.push(...arrayFrame(await nextText('two echoes')));
    assert.ok(echoed[0] === half && echoed[1] === 'small', 'large then small came back in order');
    await heartbeats(2, 'heartbeats after the second large message');
    c.sendText(JSON.stringify(['still here']));
    assert.deepEqual(arrayFrame(await nextText('the last echo')), ['still here']);
  } finally {
    c.socket.destroy();
    await W.withTimeout(hb.close(), 5000, 'the heartbeat app to close');
  }
});

test('websocket-load: 1,000 concurrent connections each open, echo one message and close', async (t) => {
  const WANTED = 1000;
  const WAVE = 100; // connections opened at the same time
  // Each connection costs two descriptors here (client and server side).
  const limit = openFileLimit();
  const headroom = 100;
  let n = WANTED;
  if (limit < 2 * WANTED + headroom) {
    n = Math.floor((limit - headroom) / 2);
    t.diagnostic(
      `ulimit -n is ${limit}: ${2 * WANTED + headroom} descriptors are needed for ${WANTED} connections; ` +
        `running with ${n} connections instead`,
    );
    assert.ok(n >= 100, `ulimit -n ${limit} is too low to run even 100 connections`);
  }

  let opened = 0;
  let closed = 0;
  let allClosed;
  const allClosedP = new Promise((resolve) => {
    allClosed = resolve;
  });
  const onConnection = (conn) => {
    opened += 1;
    conn.on('close', () => {
      closed += 1;
      if (closed >= n) allClosed();
    });
  };
  app.servers.echo.on('connection', onConnection);
  const clients = [];
  try {
    for (let start = 0; start < n; start += WAVE) {
      const wave = [];
      for (let i = start; i < Math.min(start + WAVE, n); i += 1) wave.push(openSession(app.port));
      clients.push(...(await W.withTimeout(Promise.all(wave), 10000, `connections ${start}..${start + WAVE - 1} to open`)));
    }
    assert.equal(clients.length, n);

    // All are open at once; each echoes its own message.
    const echoes = clients.map(async ({ ws, queue }, i) => {
      ws.send(JSON.stringify([`conn-${i}`]));
      const msgs = arrayFrame(await queue.next(8000, `the echo on connection ${i}`));
      assert.deepEqual(msgs, [`conn-${i}`]);
    });
    await W.withTimeout(Promise.all(echoes), 10000, `${n} echoes`);
    assert.equal(opened, n, "one server 'connection' per client");

    for (let start = 0; start < n; start += WAVE) {
      const wave = clients.slice(start, start + WAVE).map(({ ws }) => W.closeClient(ws));
      await W.withTimeout(Promise.all(wave), 10000, `connections ${start}..${start + WAVE - 1} to close`);
    }
    await W.withTimeout(allClosedP, 5000, `${n} server 'close' events`).catch((e) => {
      throw new Error(`${e.message} (have ${closed})`);
    });
    assert.equal(closed, n, "one server 'close' per client");
  } finally {
    app.servers.echo.removeListener('connection', onConnection);
    for (const { ws } of clients) ws.terminate();
  }
});

// Every code unit SockJS servers must escape, plus text that must pass as is.
const RANGES = [
  [0x0000, 0x001f],
  [0x200c, 0x200f],
  [0x2028, 0x202f],
  [0x2060, 0x206f],
  [0xfff0, 0xffff],
];
const escapable = [];
for (const [lo, hi] of RANGES) for (let c = lo; c <= hi; c += 1) escapable.push(c);
const TRICKY = `${escapable.map((c) => String.fromCharCode(c)).join('')} emoji 😀🎉👍🏽 CJK 漢字テスト中文한국어 end`;

const hex4 = (c) => `\\u${c.toString(16).padStart(4, '0')}`;

test('websocket-load: the SockJS escape ranges go out as \\uXXXX escapes and round-trip', async () => {
  const { ws, queue, data } = await W.openWatchedSession(app.servers.echo, app.port);
  try {
    ws.send(JSON.stringify([TRICKY]));
    const raw = await queue.next(T, 'the echo of the tricky string');
    assert.deepEqual(data, [TRICKY], 'the server decoded the message');
    const lower = raw.toLowerCase();
    for (const c of escapable) {
      assert.ok(!raw.includes(String.fromCharCode(c)), `U+${c.toString(16).padStart(4, '0')} was sent verbatim`);
      if (c >= 0x20) assert.ok(lower.includes(hex4(c)), `U+${c.toString(16)} not sent as ${hex4(c)}`);
    }
    assert.deepEqual(arrayFrame(raw), [TRICKY]);
  } finally {
    await W.closeClient(ws);
  }
});

test('websocket-load: a message escaped entirely by the client is decoded by the server', async () => {
  const { ws, queue, data } = await W.openWatchedSession(app.servers.echo, app.port);
  try {
    // Pure ASCII on the wire: every code unit outside printable ASCII escaped.
    const escaped = JSON.stringify([TRICKY]).replace(/[^\x20-\x7e]/g, (ch) => hex4(ch.charCodeAt(0)));
    assert.match(escaped, /^[\x20-\x7e]+$/);
    ws.send(escaped);
    const raw = await queue.next(T, 'the echo of the escaped string');
    assert.deepEqual(data, [TRICKY]);
    assert.deepEqual(arrayFrame(raw), [TRICKY]);
  } finally {
    await W.closeClient(ws);
  }
});
