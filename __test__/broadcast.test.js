'use strict';
// server.broadcast(message[, connections]): one message to many sessions,
// whatever their transport, quoted once by the engine.

const test = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const WebSocket = require('ws');
const { sockjs } = require('./helpers/app.js');
const { withTimeout } = require('./helpers/ws-frames.js');

const T = 5000;


// A WebSocket client that records every message it gets.
async function wsClient(url) {
  const ws = new WebSocket(url);
  const got = [];
  const waiters = [];
  ws.on('message', (data) => {
    got.push(String(data));
    for (const w of waiters.splice(0)) w();
  });
  await withTimeout(new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject)), T, url);
  const until = (n, what) =>
    withTimeout(
      new Promise((resolve) => {
        const check = () => (got.length >= n ? resolve(got.slice()) : waiters.push(check));
        check();
      }),
      T,
      what,
    );
  return { ws, got, until };
}

test('broadcast reaches every open session once, framed or raw, and a subset when given', async () => {
  const server = sockjs.createServer({ log: () => {} });
  const conns = [];
  server.on('connection', (conn) => conns.push(conn));
  const httpServer = http.createServer();
  server.installHandlers(httpServer, { prefix: '/b' });
  await new Promise((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
  const base = `127.0.0.1:${httpServer.address().port}/b`;
  const clients = [];
  try {
    for (let i = 0; i < 3; i++) clients.push(await wsClient(`ws://${base}/0/s${i}/websocket`));
    const raw = await wsClient(`ws://${base}/websocket`);
    clients.push(raw);
    const framed = clients.slice(0, 3);
    for (const c of framed) await c.until(1, 'the open frame');
    const poll = await fetch(`http://${base}/0/poll/xhr`, { method: 'POST' });
    assert.equal(await poll.text(), 'o\n');
    await withTimeout(
      new Promise((resolve) => {
        const check = () => (conns.length === 5 ? resolve() : setTimeout(check, 5));
        check();
      }),
      T,
      "five 'connection' events",
    );

    const message = 'hello \u2028 "all"';
    assert.equal(server.broadcast(message), 5);
    for (const c of framed) assert.deepEqual(await c.until(2, 'the broadcast'), ['o', 'a["hello \\u2028 \\"all\\""]']);
    assert.deepEqual(await raw.until(1, 'the raw broadcast'), [message]);
    const polled = await fetch(`http://${base}/0/poll/xhr`, { method: 'POST' });
    assert.equal(await polled.text(), 'a["hello \\u2028 \\"all\\""]\n');

    // Only the connections named, and only open ones.
    const first = conns.find((c) => c.protocol === 'websocket');
    const rawConn = conns.find((c) => c.protocol === 'websocket-raw');
    assert.equal(server.broadcast('some', [first, rawConn]), 2);
    assert.deepEqual(await raw.until(2, 'the second raw broadcast'), [message, 'some']);
    const named = Number(/\/s(\d)\/websocket$/.exec(first.url)[1]);
    assert.deepEqual((await framed[named].until(3, 'the subset broadcast')).slice(2), ['a["some"]']);
    const taken = framed.filter((c) => c.got.length > 2);
    assert.equal(taken.length, 1, 'only the named framed client got the subset broadcast');

    // Any iterable: a Set, and a generator, whose size is not known ahead.
    const websockets = conns.filter((c) => c.protocol !== 'xhr-polling');
    assert.equal(server.broadcast('set', new Set(websockets)), 4);
    assert.deepEqual(await raw.until(3, 'the broadcast to a Set'), [message, 'some', 'set']);
    assert.equal(server.broadcast('generated', (function* generate() { yield* websockets; })()), 4);
    assert.deepEqual(await raw.until(4, 'the broadcast to a generator'), [message, 'some', 'set', 'generated']);
    for (const c of framed) {
      assert.deepEqual((await c.until(c === framed[named] ? 5 : 4, 'the Set and generator broadcasts')).slice(-2), [
        'a["set"]',
        'a["generated"]',
      ]);
    }

    first.close();
    assert.equal(server.broadcast('after close', [first]), 0);
  } finally {
    for (const c of clients) c.ws.terminate();
    httpServer.closeAllConnections();
    await new Promise((resolve) => httpServer.close(resolve));
  }
});
