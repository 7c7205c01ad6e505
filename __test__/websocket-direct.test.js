'use strict';
// With a single I/O thread, JavaScript's thread writes WebSocket frames to
// the socket itself at the end of each turn of the event loop
// (crates/sockjs-engine/src/direct.rs). This file makes the engine start
// with one thread, whatever the machine, and checks what could go wrong
// when two threads write to one socket: bytes the socket did not take,
// backpressure and 'drain', ordering against frames tungstenite writes
// (pongs, heartbeats), and no data after the close frame answering the
// peer's. (scripts/test.sh also runs the other WebSocket suites this way.)

process.env.SOCKJS_THREADS = '1';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const http = require('node:http');
const { sockjs } = require('./helpers/app.js');
const W = require('./helpers/ws-frames.js');

const { OP, arrayFrame, sessionPath } = W;
const T = 5000;

let httpServer;
let port;
const servers = {};

function sockjsServer(prefix, onConnection, options = {}) {
  const server = sockjs.createServer({ log: () => {}, ...options });
  server.on('connection', onConnection);
  server.installHandlers(httpServer, { prefix });
  servers[prefix] = server;
}

before(async () => {
  httpServer = http.createServer();
  // Writes 160 messages of 64 KiB, four per turn of the event loop,
  // waiting for 'drain' whenever write() says the buffer is full.
  sockjsServer('/bulk', (conn) => {
    const chunk = 'x'.repeat(64 * 1024 - 8);
    let i = 0;
    conn.sawFull = false;
    const pump = () => {
      while (i < 160) {
        const ok = conn.write(`${i}:${chunk}`);
        i += 1;
        if (!ok) {
          conn.sawFull = true;
          conn.once('drain', () => setImmediate(pump));
          return;
        }
        if (i % 4 === 0) {
          setImmediate(pump);
          return;
        }
      }
    };
    pump();
    conn.on('data', (m) => conn.write(m));
  });
  // Writes a numbered message on every turn of the event loop until closed.
  sockjsServer('/ticker', (conn) => {
    let n = 0;
    const tick = () => {
      if (conn.readyState !== 1) return;
      conn.write(String(n));
      n += 1;
      setImmediate(tick);
    };
    tick();
  });
  // A message every millisecond and a heartbeat every 100 ms: 'h' frames
  // and WebSocket pings from the runtime's thread among the messages from
  // JavaScript's (a pong is due within 100 ms).
  sockjsServer('/ticker-hb', (conn) => {
    let n = 0;
    const timer = setInterval(() => conn.write(String(n++)), 1);
    conn.on('close', () => clearInterval(timer));
  }, { heartbeat_delay: 100 });
  // On the client's first message (the socket is running by then, so
  // JavaScript's thread writes): 64 KiB messages, four per turn, until
  // write() returns false (at most 256); in that same turn one more
  // message and close(), while bytes still wait for the socket.
  sockjsServer('/flood-close', (conn) => {
    conn.once('data', () => {
      const chunk = 'y'.repeat(64 * 1024);
      let i = 0;
      const pump = () => {
        for (let k = 0; k < 4; k += 1) {
          const ok = conn.write(`${i}:${chunk}`);
          i += 1;
          if (!ok || i === 256) {
            conn.sawFull = !ok;
            conn.write(`last:${i}`);
            conn.close(3002, 'flooded');
            return;
          }
        }
        setImmediate(pump);
      };
      pump();
    });
  });
  // Writes, then closes, in one turn.
  sockjsServer('/bye', (conn) => {
    conn.write('one');
    conn.write('two');
    conn.close(3001, 'done');
  });
  await new Promise((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
  port = httpServer.address().port;
});

after(async () => {
  for (const server of Object.values(servers)) server.detach?.(httpServer);
  httpServer.closeAllConnections();
  await new Promise((resolve) => httpServer.close(resolve));
});

/** Open a raw WebSocket session under `prefix`; its 'o' frame is read. */
async function openRaw(prefix) {
  const c = await W.openRawWebSocket(port, sessionPath(prefix));
  assert.equal((await c.reader.nextFrame(T, 'the open frame')).text(), 'o');
  return c;
}

/** The messages of the next a[...] frames, until `count` were read. */
async function readMessages(c, count, label) {
  const messages = [];
  while (messages.length < count) {
    const f = await c.reader.nextFrame(T, `${label} (${messages.length} of ${count} so far)`);
    if (f.opcode === OP.TEXT && f.text() !== 'h') messages.push(...arrayFrame(f.text()));
  }
  return messages;
}

/** Checks that the numbered messages of a[...] frames continue one count. */
function countInOrder() {
  let next = null;
  return {
    take(text) {
      for (const m of arrayFrame(text)) {
        if (next !== null) assert.equal(Number(m), next, 'messages in order');
        next = Number(m) + 1;
      }
    },
    get seen() {
      return next !== null;
    },
  };
}

test('websocket-direct: the engine runs one I/O thread here', () => {
  const names = fs.readdirSync('/proc/self/task').map((tid) => {
    const stat = fs.readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
    return stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
  });
  assert.equal(names.filter((n) => n === 'sockjs-io').length, 1, names.join(' '));
});

test('websocket-direct: 10 MiB to a client that stops reading arrive whole and in order, with drain', async () => {
  const connP = W.waitEvent(servers['/bulk'], 'connection', T);
  const c = await openRaw('/bulk');
  try {
    c.socket.pause();
    const [conn] = await connP;
    // The socket's buffers fill: write() turns false, the rest waits.
    const deadline = Date.now() + T;
    while (!conn.sawFull && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.ok(conn.sawFull, 'write() never returned false while the client did not read');
    c.socket.resume();
    const messages = await readMessages(c, 160, 'the bulk messages');
    assert.equal(messages.length, 160);
    messages.forEach((m, i) => {
      assert.equal(m.length, 64 * 1024 - 8 + String(i).length + 1, `message ${i}'s length`);
      assert.ok(m.startsWith(`${i}:xxx`), `message ${i} is in its place: ${m.slice(0, 12)}`);
    });
    // And the session goes on.
    c.sendText(JSON.stringify(['after']));
    assert.deepEqual(await readMessages(c, 1, 'the echo'), ['after']);
  } finally {
    c.socket.destroy();
  }
});

test('websocket-direct: pings while messages stream get their pongs, and the messages stay in order', async () => {
  const c = await openRaw('/ticker');
  try {
    const count = countInOrder();
    let pongs = 0;
    for (let round = 0; round < 50; round += 1) {
      c.send({ opcode: OP.PING, payload: `p${round}` });
      // Read until this ping's pong; every message seen on the way must
      // continue the count.
      for (;;) {
        const f = await c.reader.nextFrame(T, `the pong to ping ${round}`);
        if (f.opcode === OP.PONG) {
          assert.equal(f.payload.toString(), `p${round}`);
          pongs += 1;
          break;
        }
        assert.equal(f.opcode, OP.TEXT, W.describeFrame(f));
        if (f.text() !== 'h') count.take(f.text());
      }
    }
    assert.equal(pongs, 50);
    assert.ok(count.seen, 'messages were streaming');
  } finally {
    c.socket.destroy();
  }
});

test('websocket-direct: heartbeats and pings among streamed messages keep every frame whole and in order', async () => {
  const c = await openRaw('/ticker-hb');
  try {
    const count = countInOrder();
    let heartbeats = 0;
    let pings = 0;
    const deadline = Date.now() + T;
    while ((heartbeats < 3 || pings < 3) && Date.now() < deadline) {
      const f = await c.reader.nextFrame(T, 'a frame of the stream');
      if (f.opcode === OP.PING) {
        pings += 1;
        c.send({ opcode: OP.PONG, payload: f.payload });
        continue;
      }
      assert.equal(f.opcode, OP.TEXT, W.describeFrame(f));
      if (f.text() === 'h') heartbeats += 1;
      else count.take(f.text());
    }
    assert.ok(heartbeats >= 3 && pings >= 3, `heartbeats ${heartbeats}, pings ${pings}`);
  } finally {
    c.socket.destroy();
  }
});

test('websocket-direct: close() while written bytes wait for a client that reads late: every message, then the close', async () => {
  const connP = W.waitEvent(servers['/flood-close'], 'connection', T);
  const c = await openRaw('/flood-close');
  try {
    const [conn] = await connP;
    c.socket.pause();
    c.sendText(JSON.stringify(['go']));
    const deadline = Date.now() + T;
    while (conn.sawFull === undefined && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.equal(conn.sawFull, true, 'write() never returned false while the client did not read');
    c.socket.resume();
    const messages = [];
    while (!String(messages[messages.length - 1]).startsWith('last:')) {
      messages.push(...(await readMessages(c, 1, `the flood (${messages.length} so far)`)));
    }
    const count = Number(messages.pop().slice('last:'.length));
    assert.equal(messages.length, count);
    messages.forEach((m, i) => assert.ok(m.startsWith(`${i}:yyy`) && m.length === 64 * 1024 + String(i).length + 1, `message ${i}`));
    assert.equal((await c.reader.nextFrame(T, 'the SockJS close frame')).text(), 'c[3002,"flooded"]');
    assert.equal((await c.reader.nextFrame(T, 'the WebSocket close frame')).opcode, OP.CLOSE);
  } finally {
    c.socket.destroy();
  }
});

test('websocket-direct: when the client closes during a stream of writes, nothing follows the close frame', async () => {
  for (let round = 0; round < 20; round += 1) {
    const c = await openRaw('/ticker');
    try {
      await readMessages(c, 3, 'the first messages');
      c.send({ opcode: OP.CLOSE, payload: W.closePayload(1000, 'bye') });
      const close = await c.reader.nextFrameMatching((f) => f.opcode === OP.CLOSE, T, 'the close frame', 100000);
      assert.equal(close.code, 1000);
      await c.reader.waitClosed(T, 'the server to close TCP');
      assert.equal(c.reader.buf.length, 0, `round ${round}: bytes after the close frame: ${c.reader.buf.toString('latin1').slice(0, 80)}`);
    } finally {
      c.socket.destroy();
    }
  }
});

test('websocket-direct: write, write, close in one turn: both messages, then the close frame and the close', async () => {
  const c = await openRaw('/bye');
  try {
    assert.deepEqual(await readMessages(c, 2, 'the two messages'), ['one', 'two']);
    assert.equal((await c.reader.nextFrame(T, 'the SockJS close frame')).text(), 'c[3001,"done"]');
    const close = await c.reader.nextFrame(T, 'the WebSocket close frame');
    assert.equal(close.opcode, OP.CLOSE);
  } finally {
    c.socket.destroy();
  }
});

test('websocket-direct: a client close frame split across segments: messages written meanwhile arrive, then the close', async () => {
  const c = await openRaw('/ticker');
  try {
    const first = await readMessages(c, 3, 'the first messages');
    const close = W.encodeFrame({ opcode: OP.CLOSE, payload: W.closePayload(1000, 'bye') });
    // The header and the mask key (2 + 4 bytes): the peer's close has begun.
    c.socket.write(close.subarray(0, 6));
    // Messages written meanwhile still arrive, in order (the answer to the
    // close is not due yet), and the close completes once the frame does.
    const meanwhile = await readMessages(c, 50, 'messages written after the close frame began');
    const count = countInOrder();
    for (const m of [...first, ...meanwhile]) count.take(`a${JSON.stringify([m])}`);
    c.socket.write(close.subarray(6));
    const answer = await c.reader.nextFrameMatching((f) => f.opcode === OP.CLOSE, T, 'the close frame', 100000);
    assert.equal(answer.code, 1000);
    await c.reader.waitClosed(T, 'the server to close TCP');
  } finally {
    c.socket.destroy();
  }
});
