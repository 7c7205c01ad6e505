'use strict';
// SockJS WebSocket transport (/<prefix>/<server>/<session>/websocket) and the
// raw WebSocket endpoint (/<prefix>/websocket), over real sockets on
// 127.0.0.1: framing, echo, close handshakes, heartbeats, HTTP errors and the
// properties of the connection object.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const { startApp } = require('./helpers/app.js');
const { HEADER_WHITELIST } = require('./helpers/http.js');
const W = require('./helpers/ws-frames.js');
const { arrayFrame, openSession, sessionPath } = W;

const T = 3000; // default wait for one event or frame

let app;

before(async () => {
  app = await startApp();
});

after(async () => {
  if (app) await W.withTimeout(app.close(), 5000, 'the test app to close');
});

const sid = () => crypto.randomBytes(6).toString('hex');
const wsUrl = (port, path) => `ws://127.0.0.1:${port}${path}`;

/** Messages carried by an "a[...]" frame. */
/** Open a SockJS WebSocket session with the `ws` client and consume "o". */
/** Read "a[...]" frames until `count` messages have arrived. */
async function readMessages(queue, count, what) {
  const msgs = [];
  for (let i = 0; i < count && msgs.length < count; i += 1) {
    msgs.push(...arrayFrame(await queue.next(T, `${what} (${msgs.length}/${count} so far)`)));
  }
  return msgs;
}

/** Read raw frames up to and including the first close frame. */
async function framesUntilClose(reader, max = 10) {
  const frames = [];
  for (let i = 0; i < max; i += 1) {
    const f = await reader.nextFrame(T, `a close frame (got so far: ${frames.map(W.describeFrame).join(' | ')})`);
    frames.push(f);
    if (f.opcode === W.OP.CLOSE) return frames;
  }
  throw new Error(`no close frame among ${max} frames: ${frames.map(W.describeFrame).join(' | ')}`);
}

/** A fresh session echoes one message: a synchronisation point with the server. */
async function roundTrip(port) {
  const { ws, queue } = await openSession(port);
  try {
    ws.send('["sync"]');
    assert.deepEqual(arrayFrame(await queue.next(T, 'the sync echo')), ['sync']);
  } finally {
    await W.closeClient(ws);
  }
}

test('websocket: frames sent in the same write as the upgrade request are read, in order', async () => {
  // Node hands the bytes it read past the request to the 'upgrade' handler;
  // the engine must read them first, as frames like any other.
  const socket = await W.connectTcp(app.port);
  const reader = new W.ByteReader(socket);
  try {
    const frames = [
      W.encodeFrame({ opcode: W.OP.TEXT, payload: '["first"]' }),
      W.encodeFrame({ opcode: W.OP.TEXT, fin: false, payload: '["sec' }),
      W.encodeFrame({ opcode: W.OP.CONT, payload: 'ond", "third"]' }),
    ];
    socket.write(Buffer.concat([
      Buffer.from(W.handshakeRequest(sessionPath(), { host: `127.0.0.1:${app.port}` })),
      ...frames,
    ]));
    assert.equal((await reader.readHttpHead(T)).statusCode, 101);
    assert.equal((await reader.nextFrame(T, 'the open frame')).text(), 'o');
    const echoed = [];
    while (echoed.length < 3) echoed.push(...arrayFrame((await reader.nextFrame(T, 'the echoes')).text()));
    assert.deepEqual(echoed, ['first', 'second', 'third']);
  } finally {
    socket.destroy();
  }
});

test('websocket: session URL answers 101 and sends the open frame "o"', async () => {
  const c = await W.openRawWebSocket(app.port, sessionPath());
  try {
    assert.equal(c.head.statusCode, 101);
    assert.equal(c.head.headers.upgrade.toLowerCase(), 'websocket');
    assert.equal(c.head.headers.connection.toLowerCase(), 'upgrade');
    assert.equal(c.head.headers['sec-websocket-accept'], W.WS_ACCEPT);
    assert.equal(c.head.headers['content-length'], undefined);
    const f = await c.reader.nextFrame(T, 'the open frame');
    assert.equal(f.opcode, W.OP.TEXT);
    assert.equal(f.fin, true);
    assert.equal(f.masked, false, 'server frames must not be masked');
    assert.equal(f.text(), 'o');
  } finally {
    c.socket.destroy();
  }
});

test('websocket: a JSON array frame gives one data event per message and echoes them as a[...] frames', async () => {
  const { ws, queue, data } = await W.openWatchedSession(app.servers.echo, app.port);
  try {
    ws.send('["a","b"]');
    const msgs = await readMessages(queue, 2, 'the echo of ["a","b"]');
    assert.deepEqual(msgs, ['a', 'b']);
    assert.deepEqual(data, ['a', 'b']);
  } finally {
    await W.closeClient(ws);
  }
});

test('websocket: a bare JSON string frame is accepted as one message', async () => {
  const { ws, queue, data } = await W.openWatchedSession(app.servers.echo, app.port);
  try {
    ws.send('"x"');
    assert.deepEqual(arrayFrame(await queue.next(T, 'the echo of "x"')), ['x']);
    assert.deepEqual(data, ['x']);
  } finally {
    await W.closeClient(ws);
  }
});

test('websocket: empty frames and empty arrays are ignored', async () => {
  const { ws, queue, data } = await W.openWatchedSession(app.servers.echo, app.port);
  try {
    ws.send('');
    ws.send('[]');
    ws.send('["a"]');
    assert.deepEqual(arrayFrame(await queue.next(T, 'the echo of ["a"]')), ['a']);
    assert.deepEqual(data, ['a']);
    assert.equal(queue.closed, null, 'the session must stay open');
  } finally {
    await W.closeClient(ws);
  }
});

test('websocket: broken JSON closes the WebSocket with 3000 "Broken framing." (as sockjs-node)', async () => {
  const connP = W.waitEvent(app.servers.echo, 'connection', T, "the server's 'connection' event");
  const c = await W.openRawWebSocket(app.port, sessionPath());
  try {
    assert.equal((await c.reader.nextFrame(T, 'the open frame')).text(), 'o');
    const [conn] = await connP;
    const closeP = W.waitEvent(conn, 'close', T, "the server's 'close' event");
    c.sendText('["a');
    const frames = await framesUntilClose(c.reader);
    c.send({ opcode: W.OP.CLOSE, payload: W.closePayload(1000) });
    await c.reader.waitClosed(T, 'the server to close TCP after the close handshake');
    await closeP;
    const seen = `frames received: ${frames.map(W.describeFrame).join(' | ')}`;
    // The reference protocol suite requires the connection to end with no
    // further SockJS frame: only the WebSocket close carries the reason.
    assert.deepEqual(frames.filter((f) => f.opcode === W.OP.TEXT).map((f) => f.text()), [], seen);
    const close = frames.find((f) => f.opcode === W.OP.CLOSE);
    assert.ok(close, seen);
    assert.equal(close.code, 3000, seen);
    assert.equal(close.reason, 'Broken framing.', seen);
  } finally {
    c.socket.destroy();
  }
});

test('websocket: server close sends c[3000,"Go away!"], then a close frame, then closes TCP', async () => {
  const c = await W.openRawWebSocket(app.port, sessionPath('/close'));
  try {
    const frames = await framesUntilClose(c.reader);
    const seen = frames.map(W.describeFrame).join(' | ');
    assert.equal(frames.length, 3, seen);
    assert.equal(frames[0].text(), 'o', seen);
    assert.equal(frames[1].opcode, W.OP.TEXT, seen);
    assert.equal(frames[1].text(), 'c[3000,"Go away!"]', seen);
    const { code } = frames[2];
    assert.ok(code === 1000 || code === 3000, `close frame code ${code} (expected 1000 or 3000)`);
    c.send({ opcode: W.OP.CLOSE, payload: W.closePayload(1000) });
    await c.reader.waitClosed(T, 'the server to close TCP after the close handshake');
  } finally {
    c.socket.destroy();
  }
});

test('websocket: raw /close/websocket closes with code 3000 "Go away!"', async () => {
  const c = await W.openRawWebSocket(app.port, '/close/websocket');
  try {
    const f = await c.reader.nextFrame(T, 'the close frame');
    assert.equal(f.opcode, W.OP.CLOSE, `got ${W.describeFrame(f)}`);
    assert.equal(f.code, 3000);
    assert.equal(f.reason, 'Go away!');
    c.send({ opcode: W.OP.CLOSE, payload: W.closePayload(3000) });
    await c.reader.waitClosed(T, 'the server to close TCP after the close handshake');
  } finally {
    c.socket.destroy();
  }
});

test("websocket: client close fires the server 'close' event exactly once", async () => {
  const connP = W.waitEvent(app.servers.echo, 'connection', T, "the server's 'connection' event");
  const { ws } = await openSession(app.port);
  const [conn] = await connP;
  let closes = 0;
  conn.on('close', () => {
    closes += 1;
  });
  const closeP = W.waitEvent(conn, 'close', T, "the server's 'close' event");
  await W.closeClient(ws);
  await closeP;
  await roundTrip(app.port);
  assert.equal(closes, 1);
});

test("websocket: network drop without a close frame fires the server 'close' event exactly once", async () => {
  const connP = W.waitEvent(app.servers.echo, 'connection', T, "the server's 'connection' event");
  const c = await W.openRawWebSocket(app.port, sessionPath());
  const [conn] = await connP;
  let closes = 0;
  conn.on('close', () => {
    closes += 1;
  });
  const closeP = W.waitEvent(conn, 'close', T, "the server's 'close' event after a network drop");
  assert.equal((await c.reader.nextFrame(T, 'the open frame')).text(), 'o');
  c.socket.destroy();
  await closeP;
  await roundTrip(app.port);
  assert.equal(closes, 1);
});

test('websocket: heartbeat_delay makes the server send heartbeats ("h" frames or pings) and the session survives them', async (t) => {
  const hbApp = await startApp({ server: { heartbeat_delay: 200 } });
  let ws;
  try {
    const client = await openSession(hbApp.port);
    ws = client.ws;
    const { queue } = client;
    // 'ws' answers pings with pongs by itself.
    await queue.until(
      (q) => q.pings.length + q.items.filter((m) => m.data === 'h').length >= 2,
      5000,
      'two heartbeats',
    );
    const hFrames = queue.items.filter((m) => m.data === 'h').length;
    t.diagnostic(`heartbeats seen: ${hFrames} "h" frame(s), ${queue.pings.length} ping(s)`);
    const others = queue.items.filter((m) => m.data !== 'h');
    assert.deepEqual(others, [], 'nothing but heartbeats before any message is sent');
    queue.items.length = 0;
    ws.send('["after-heartbeat"]');
    const reply = await queue.until(
      (q) => q.items.find((m) => m.data !== 'h'),
      T,
      'the echo after the heartbeats',
    );
    assert.deepEqual(arrayFrame(reply.data), ['after-heartbeat']);
  } finally {
    if (ws) await W.closeClient(ws);
    await W.withTimeout(hbApp.close(), 5000, 'the heartbeat app to close');
  }
});

test('websocket: raw /echo/websocket echoes plain text both ways without SockJS framing', async () => {
  const connP = W.waitEvent(app.servers.echo, 'connection', T, "the server's 'connection' event");
  const { ws, queue } = await W.openClient(wsUrl(app.port, '/echo/websocket'));
  try {
    const [conn] = await connP;
    const data = [];
    conn.on('data', (m) => data.push(m));
    const text = 'hello "raw" [1] a["x"] \u00e9\uffff';
    ws.send(text);
    assert.equal(await queue.next(T, 'the raw echo'), text, 'first message must be the echo: no "o" frame');
    assert.deepEqual(data, [text]);
    assert.equal(conn.write('from server'), true);
    assert.equal(await queue.next(T, 'the server-initiated message'), 'from server');
  } finally {
    await W.closeClient(ws);
  }
});

test('websocket: websocket:false answers 404 to GET and to upgrade on both WebSocket endpoints', async () => {
  const paths = [`/disabled_websocket_echo/000/${sid()}/websocket`, '/disabled_websocket_echo/websocket'];
  for (const path of paths) {
    for (const upgrade of [false, true]) {
      const { head } = await W.httpExchange(app.port, path, { upgrade });
      assert.equal(head.statusCode, 404, `${upgrade ? 'upgrade' : 'GET'} ${path}: ${head.raw}`);
    }
  }
});

test('websocket: GET without Upgrade on a session websocket URL gives 400 with a body', async () => {
  const { head, body } = await W.httpExchange(app.port, sessionPath(), { upgrade: false });
  assert.equal(head.statusCode, 400, head.raw);
  assert.ok(body.length > 0, 'the 400 answer must explain itself');
});

test('websocket: Upgrade: websocket with Connection: close gives 400', async () => {
  const { head } = await W.httpExchange(app.port, sessionPath(), {
    upgrade: false,
    headers: { Upgrade: 'websocket', Connection: 'close' },
  });
  assert.equal(head.statusCode, 400, head.raw);
});

for (const [name, pathFn] of [
  ['session URL', () => sessionPath()],
  ['raw /echo/websocket', () => '/echo/websocket'],
]) {
  test(`websocket: unsupported Sec-WebSocket-Version on the ${name} gets 400 and Sec-WebSocket-Version: 13`, async () => {
    for (const version of ['7', '99']) {
      const { head } = await W.httpExchange(app.port, pathFn(), { version });
      assert.equal(head.statusCode, 400, `version ${version}: ${head.raw}`);
      assert.equal(
        head.headers['sec-websocket-version'],
        '13',
        `version ${version}: the 400 must name the supported version; got head:\n${head.raw}`,
      );
    }
  });
}

test('websocket: connection properties on a SockJS WebSocket session', async () => {
  const connP = W.waitEvent(app.servers.echo, 'connection', T, "the server's 'connection' event");
  const session = sid();
  const path = `/echo/000/${session}/websocket?t=1`;
  const c = await W.openRawWebSocket(app.port, path, {
    headers: {
      'User-Agent': 'sockjs-test-agent/1.0',
      'X-Forwarded-For': '10.9.8.7',
      Cookie: 'JSESSIONID=secret; other=1',
    },
  });
  try {
    const [conn] = await connP;
    assert.equal(conn.protocol, 'websocket');
    assert.equal(conn.remoteAddress, '127.0.0.1');
    assert.equal(typeof conn.remotePort, 'number');
    assert.equal(conn.remotePort, c.socket.localPort);
    assert.equal(typeof conn.address, 'object');
    assert.equal(conn.address.address, '127.0.0.1');
    assert.equal(conn.address.port, app.port);
    assert.equal(conn.address.family, 'IPv4');
    assert.equal(conn.headers.host, `127.0.0.1:${app.port}`);
    assert.equal(conn.headers['user-agent'], 'sockjs-test-agent/1.0');
    assert.equal(conn.headers['x-forwarded-for'], '10.9.8.7');
    assert.equal(conn.headers.cookie, undefined, 'cookies must never be exposed');
    for (const k of Object.keys(conn.headers)) {
      assert.ok(HEADER_WHITELIST.includes(k), `header ${k} is not in the whitelist`);
    }
    assert.equal(conn.url, path);
    assert.equal(conn.pathname, `/echo/000/${session}/websocket`);
    assert.equal(conn.prefix, '/echo');
    assert.equal(typeof conn.id, 'string');
    assert.ok(conn.id.length > 0);
  } finally {
    c.socket.destroy();
  }
});

test('websocket: connection properties on a raw WebSocket connection', async () => {
  const connP = W.waitEvent(app.servers.echo, 'connection', T, "the server's 'connection' event");
  const c = await W.openRawWebSocket(app.port, '/echo/websocket', {
    headers: { 'User-Agent': 'sockjs-raw-agent', Cookie: 'a=b' },
  });
  try {
    const [conn] = await connP;
    assert.equal(conn.protocol, 'websocket-raw');
    assert.equal(conn.remoteAddress, '127.0.0.1');
    assert.equal(conn.remotePort, c.socket.localPort);
    assert.equal(conn.address.address, '127.0.0.1');
    assert.equal(conn.address.port, app.port);
    assert.equal(conn.headers.host, `127.0.0.1:${app.port}`);
    assert.equal(conn.headers['user-agent'], 'sockjs-raw-agent');
    assert.equal(conn.headers.cookie, undefined, 'cookies must never be exposed');
    assert.equal(conn.url, '/echo/websocket');
    assert.equal(conn.pathname, '/echo/websocket');
    assert.equal(conn.prefix, '/echo');
  } finally {
    c.socket.destroy();
  }
});

test("websocket: 'connection' is emitted with readyState 1 on both endpoints", async () => {
  for (const path of [sessionPath(), '/echo/websocket']) {
    let stateAtEmit;
    const connP = new Promise((resolve) => {
      app.servers.echo.once('connection', (conn) => {
        stateAtEmit = conn.readyState;
        resolve(conn);
      });
    });
    const c = await W.openRawWebSocket(app.port, path);
    try {
      await W.withTimeout(connP, T, `'connection' for ${path}`);
      assert.equal(stateAtEmit, 1, `readyState at 'connection' for ${path}`);
    } finally {
      c.socket.destroy();
    }
  }
});

test('websocket: conn.write returns true while open and false after close on both endpoints', async () => {
  for (const path of [sessionPath(), '/echo/websocket']) {
    const connP = W.waitEvent(app.servers.echo, 'connection', T, `'connection' for ${path}`);
    const { ws } = await W.openClient(wsUrl(app.port, path));
    const [conn] = await connP;
    assert.equal(conn.write('still open'), true, `write while open on ${path}`);
    const closeP = W.waitEvent(conn, 'close', T, `'close' for ${path}`);
    await W.closeClient(ws);
    await closeP;
    assert.equal(conn.readyState, 3, `readyState after close on ${path}`);
    assert.equal(conn.write('too late'), false, `write after close on ${path}`);
  }
});

test("websocket: Node's own TCP_NODELAY mark is read, so that the engine sets the option only where Node did not", async () => {
  const { noDelaySet } = require('../lib/transport');
  const http = require('node:http');
  const sockjs = require('..');
  for (const noDelay of [true, false]) {
    const server = http.createServer({ noDelay });
    const echo = sockjs.createServer({ log: () => {} });
    echo.on('connection', (conn) => conn.on('data', (m) => conn.write(m)));
    echo.installHandlers(server, { prefix: '/echo' });
    const marks = [];
    server.on('connection', (socket) => marks.push(noDelaySet(socket)));
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { ws, queue } = await openSession(server.address().port);
      ws.send('["over an adopted socket"]');
      assert.deepEqual(arrayFrame(await queue.next(T, 'the echo')), ['over an adopted socket']);
      await W.closeClient(ws);
      assert.deepEqual(marks, [noDelay], `http.createServer({ noDelay: ${noDelay} })`);
    } finally {
      server.closeAllConnections();
      await W.withTimeout(new Promise((resolve) => server.close(resolve)), 5000, 'the server to close');
    }
  }
});
