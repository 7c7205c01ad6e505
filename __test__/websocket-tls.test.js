'use strict';
// The bridged byte pipe: over TLS there is no plain descriptor to adopt, so
// the same WebSocket engine runs over bytes carried through the Node socket.
// The certificate is self-signed, generated for this run with openssl.

const test = require('node:test');
const assert = require('node:assert/strict');
const https = require('node:https');
const tls = require('node:tls');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const WebSocket = require('ws');
const { sockjs } = require('./helpers/app.js');
const W = require('./helpers/ws-frames.js');

const { withTimeout, arrayFrame } = W;

const T = 5000;


function selfSignedCertificate() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sockjs-tls-'));
  const key = path.join(dir, 'key.pem');
  const cert = path.join(dir, 'cert.pem');
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert,
    '-days', '1', '-subj', '/CN=127.0.0.1',
  ], { stdio: 'ignore', timeout: 30000 });
  const pair = { key: fs.readFileSync(key), cert: fs.readFileSync(cert) };
  fs.rmSync(dir, { recursive: true, force: true });
  return pair;
}

let certificate = null;

/** The server side of every TLS connection `server` accepts. */
function trackSockets(server) {
  const sockets = new Set();
  server.on('secureConnection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  return sockets;
}

/**
 * Stop `server`: its WebSockets are no longer its HTTP connections
 * (closeAllConnections leaves them), so they are destroyed here, then the
 * close is awaited, bounded.
 */
async function closeTlsServer(server, sockets) {
  server.closeAllConnections();
  for (const socket of sockets) socket.destroy();
  await withTimeout(new Promise((resolve) => server.close(resolve)), T, 'the https server to close');
}

// An https server with an echo under /echo; its connections' ids in order
// of their 'close' events. `close()` stops it.
async function startTlsEcho() {
  if (!certificate) certificate = selfSignedCertificate();
  const server = https.createServer(certificate);
  const echo = sockjs.createServer({ log: () => {} });
  const closes = [];
  const connections = [];
  let connected = null;
  echo.on('connection', (conn) => {
    conn.on('data', (m) => conn.write(m));
    conn.on('close', () => closes.push(conn.id));
    connections.push(conn);
    if (connected) connected(conn);
  });
  echo.installHandlers(server, { prefix: '/echo' });
  const sockets = trackSockets(server);
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: server.address().port,
    closes,
    // The next connection's server side.
    nextConnection: () => withTimeout(new Promise((resolve) => {
      if (connections.length) resolve(connections.shift());
      else connected = (conn) => { connections.shift(); resolve(conn); };
    }), T, "the server's 'connection'"),
    close: () => closeTlsServer(server, sockets),
  };
}

// A wss client to the echo; `nextFrame(what)` waits for its next message.
function openClient(port, session) {
  const ws = new WebSocket(`wss://127.0.0.1:${port}/echo/000/${session}/websocket`, { rejectUnauthorized: false });
  const frames = [];
  let wake = null;
  ws.on('message', (data) => {
    frames.push(String(data));
    if (wake) wake();
  });
  const nextFrame = (what) =>
    withTimeout(
      new Promise((resolve) => {
        const check = () => (frames.length ? resolve(frames.shift()) : (wake = check));
        check();
      }),
      T,
      what,
    );
  return { ws, nextFrame };
}

// Run `body(app, client)` on a fresh echo server and a client whose open
// frame was read; both are closed afterwards, whatever happens.
async function withTlsSession(session, body) {
  const app = await startTlsEcho();
  const client = openClient(app.port, session);
  try {
    assert.equal(await client.nextFrame('the open frame'), 'o');
    await body(app, client);
  } finally {
    client.ws.terminate();
    await app.close();
  }
}

// Run `body({ conn, ws, serverSocket })` with a raw WebSocket client open
// over TLS to a fresh server created with `serverOptions`: `conn` is the
// server's connection, `serverSocket` the server side of the TLS socket.
// Both ends are closed afterwards, whatever happens.
async function withRawTlsClient(serverOptions, body) {
  if (!certificate) certificate = selfSignedCertificate();
  const server = https.createServer(certificate);
  const raw = sockjs.createServer({ log: () => {}, ...serverOptions });
  const connP = withTimeout(new Promise((resolve) => raw.once('connection', resolve)), T, "the server's 'connection'");
  raw.installHandlers(server, { prefix: '/raw' });
  const sockets = trackSockets(server);
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const ws = new WebSocket(`wss://127.0.0.1:${server.address().port}/raw/websocket`, { rejectUnauthorized: false });
  try {
    await withTimeout(new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject)), T, 'open');
    const conn = await connP;
    assert.equal(sockets.size, 1);
    await body({ conn, ws, serverSocket: [...sockets][0] });
  } finally {
    ws.terminate();
    await closeTlsServer(server, sockets);
  }
}

test('websocket over TLS: the bridged pipe opens, echoes, and closes once', async () => {
  await withTlsSession('tls', async (app, { ws, nextFrame }) => {
    const conn = await app.nextConnection();
    assert.equal(conn.protocol, 'websocket');
    assert.equal(conn.remoteAddress, '127.0.0.1');
    ws.send('["über TLS \\u2028"]');
    assert.equal(await nextFrame('the echo'), 'a["über TLS \\u2028"]');
    const closed = withTimeout(new Promise((resolve) => conn.on('close', resolve)), T, "the server's 'close'");
    ws.close(1000);
    await closed;
    assert.deepEqual(app.closes, [conn.id]);
  });
});

test('websocket over TLS: 2,000 messages sent at once come back in order, then a 1 MiB message whole', async () => {
  await withTlsSession('bulk', async (app, { ws, nextFrame }) => {
    for (let i = 0; i < 2000; i += 1) ws.send(JSON.stringify([`m${i}`]));
    const echoed = [];
    for (let frames = 0; frames < 2000 && echoed.length < 2000; frames += 1) {
      echoed.push(...arrayFrame(await nextFrame(`echoes (${echoed.length} of 2000 so far)`)));
    }
    assert.deepEqual(echoed, Array.from({ length: 2000 }, (_, i) => `m${i}`));
    const large = 'x'.repeat(1024 * 1024 - 17) + 'end';
    ws.send(JSON.stringify([large]));
    const back = arrayFrame(await nextFrame('the large echo'));
    assert.equal(back.length, 1);
    assert.equal(back[0].length, large.length);
    assert.ok(back[0] === large, 'the large message comes back unchanged');
  });
});

test("websocket over TLS: a client sending faster than the listener runs is held back through Node's socket, nothing lost", async () => {
  // The bridged pipe: past 1 MiB of unread bytes the engine has Node pause
  // the TLS socket, and resumes it once it has read half of them (see
  // crates/sockjs-engine/src/bridge.rs), so the engine's limit on waiting
  // messages holds here too.
  await withRawTlsClient({}, async ({ conn, ws, serverSocket }) => {
    // How often the server's TLS socket is paused and resumed from now on.
    const flow = { pauses: 0, resumes: 0, paused: false };
    const { pause, resume } = serverSocket;
    serverSocket.pause = function countedPause() {
      flow.pauses += 1;
      flow.paused = true;
      return pause.call(this);
    };
    serverSocket.resume = function countedResume() {
      if (flow.paused) flow.resumes += 1;
      flow.paused = false;
      return resume.call(this);
    };
    const size = 100;
    const { outOfOrder, largestBatch } = await W.floodSlowListener(conn, ws, { total: 100000, size });
    assert.equal(outOfOrder, 0);
    const limit = W.inboundBatchLimit(size);
    assert.ok(largestBatch <= limit, `at most ${limit} messages in one turn, saw ${largestBatch}`);
    assert.ok(flow.pauses > 0, 'the TLS socket was paused');
    assert.equal(flow.resumes, flow.pauses, 'and resumed after each pause');
  });
});

test("websocket over TLS: a client that does not read fills the session's buffer, not Node's socket; past max_buffered_bytes it is closed", async () => {
  // Node's TLS socket would take every write (0.3.24: 2 GB in 4 s to such a
  // client). The engine stops writing to it once its write() returns false,
  // until 'drain' (see crates/sockjs-engine/src/bridge.rs), so what the
  // client does not take waits in the session, under its limits.
  const logs = [];
  const highWater = 256 * 1024;
  const options = { log: (severity, line) => logs.push([severity, line]), high_water_mark: highWater, max_buffered_bytes: 8 << 20 };
  await withRawTlsClient(options, async ({ conn, ws, serverSocket }) => {
    ws._socket.pause(); // the client stops reading
    // Until the engine's write waits: had Node's socket taken every write,
    // this would fail at its 64 MiB budget.
    await W.fillUntilBlocked(conn, { budget: 64 << 20 });
    assert.ok(conn.bufferedAmount >= highWater, `the session holds what waits (${conn.bufferedAmount} bytes)`);
    assert.ok(serverSocket.writableLength <= 4 << 20, `Node's socket holds ${serverSocket.writableLength} bytes`);
    // Writes past max_buffered_bytes close the session, as over an adopted socket.
    const closed = withTimeout(new Promise((resolve) => conn.once('close', resolve)), T, "the session's 'close'");
    W.overflow(conn);
    await closed;
    assert.ok(
      logs.some(([severity, line]) => severity === 'error' && line.includes('max_buffered_bytes')),
      `a log line names the limit: ${JSON.stringify(logs.filter(([sev]) => sev === 'error'))}`,
    );
    // Node's socket goes too, though the client still reads nothing.
    if (!serverSocket.destroyed) {
      await withTimeout(new Promise((resolve) => serverSocket.once('close', resolve)), T, "the TLS socket's 'close'");
    }
  });
});

test('websocket over TLS: close() to a client that reads nothing closes the session and Node\'s socket within 5 s', async () => {
  const logs = [];
  const options = { log: (severity, line) => logs.push([severity, line]), high_water_mark: 64 * 1024 };
  await withRawTlsClient(options, async ({ conn, ws, serverSocket }) => {
    ws._socket.pause(); // the client stops reading
    await W.fillUntilBlocked(conn);
    // The engine gives the client 5 s to take its writes.
    const closed = withTimeout(new Promise((resolve) => conn.once('close', resolve)), 3 * T, "the session's 'close'");
    const socketClosed = withTimeout(new Promise((resolve) => serverSocket.once('close', resolve)), 3 * T, "the TLS socket's 'close'");
    conn.close(4000, 'Bye');
    await closed;
    await socketClosed;
    assert.ok(
      logs.some(([severity, line]) => severity === 'info' && line.includes('read nothing')),
      `a log line says why: ${JSON.stringify(logs)}`,
    );
  });
});

test("websocket over TLS: after a close the client never answers, Node's socket is destroyed, not left half-open", async () => {
  // The close frame goes out, the engine waits 5 s for the client's answer,
  // then ends Node's socket; the client, reading nothing, never sends its
  // FIN, and the socket is destroyed 5 s later.
  await withRawTlsClient({}, async ({ conn, ws, serverSocket }) => {
    ws._socket.pause();
    const socketClosed = withTimeout(new Promise((resolve) => serverSocket.once('close', resolve)), 4 * T, "the TLS socket's 'close'");
    conn.close(4000, 'Bye');
    await socketClosed;
  });
});

test("websocket over TLS: to a client that does not read, 'drain' stops once the buffers on the way are full; its leaving closes the session", async () => {
  // An application that respects backpressure writes while write() allows,
  // then again at each 'drain'. 'drain' comes while the kernel's buffers
  // fill, then no more: a second without one ends the loop. Were Node's
  // socket taking everything, 'drain' would follow every write and the loop
  // would reach its 64 MiB. Then the client goes: the write waiting for
  // Node's socket to drain must not keep the session open.
  await withRawTlsClient({ high_water_mark: 256 * 1024, max_buffered_bytes: 128 << 20 }, async ({ conn, ws, serverSocket }) => {
    ws._socket.pause(); // the client stops reading
    const chunk = 'y'.repeat(16 * 1024);
    const budget = 64 << 20;
    let written = 0;
    let largestNodeBuffer = 0;
    while (written < budget) {
      while (written < budget && conn.write(chunk)) written += chunk.length;
      written += chunk.length;
      largestNodeBuffer = Math.max(largestNodeBuffer, serverSocket.writableLength);
      let timer;
      const drained = await new Promise((resolve) => {
        timer = setTimeout(() => resolve(false), 1000);
        conn.once('drain', () => resolve(true));
      });
      clearTimeout(timer);
      conn.removeAllListeners('drain');
      if (!drained) break;
    }
    assert.ok(written < budget, `'drain' stopped coming (after ${written} bytes)`);
    assert.ok(largestNodeBuffer <= 4 << 20, `Node's socket held at most ${largestNodeBuffer} bytes`);
    const closed = withTimeout(new Promise((resolve) => conn.once('close', resolve)), T, "the session's 'close'");
    ws.terminate();
    await closed;
  });
});

test('websocket over TLS: a server close sends c[3000,"Go away!"] and a close frame, and the close event fires once', async () => {
  await withTlsSession('bye', async (app, { ws, nextFrame }) => {
    const conn = await app.nextConnection();
    const clientClosed = withTimeout(new Promise((resolve) => ws.on('close', (code) => resolve(code))), T,
      "the client's close");
    const serverClosed = withTimeout(new Promise((resolve) => conn.on('close', resolve)), T, "the server's 'close'");
    conn.close(3000, 'Go away!');
    assert.equal(await nextFrame('the SockJS close frame'), 'c[3000,"Go away!"]');
    assert.equal(await clientClosed, 1000);
    await serverClosed;
    assert.deepEqual(app.closes, [conn.id]);
  });
});

test("websocket over TLS: a client that drops its connection without a close frame is one server 'close'", async () => {
  await withTlsSession('drop', async (app, { ws }) => {
    const conn = await app.nextConnection();
    const closed = withTimeout(new Promise((resolve) => conn.on('close', resolve)), T, "the server's 'close'");
    ws.terminate();
    await closed;
    // Another session still works after it.
    const other = openClient(app.port, 'after');
    try {
      assert.equal(await other.nextFrame('the open frame'), 'o');
      other.ws.send('["still here"]');
      assert.equal(await other.nextFrame('the echo'), 'a["still here"]');
    } finally {
      other.ws.terminate();
    }
    assert.deepEqual(app.closes, [conn.id]);
  });
});

// A WebSocket over a bare TLS socket, to see what the server does on its own
// (the ws client would end the connection itself after a close handshake).
async function openRawTls(port, session) {
  const socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false });
  await withTimeout(new Promise((resolve, reject) => {
    socket.once('secureConnect', resolve);
    socket.once('error', reject);
  }), T, 'the TLS handshake');
  const reader = new W.ByteReader(socket);
  socket.write(W.handshakeRequest(`/echo/000/${session}/websocket`, { host: `127.0.0.1:${port}` }));
  const head = await reader.readHttpHead(T);
  assert.equal(head.statusCode, 101);
  return { socket, reader };
}

test('websocket over TLS: the server answers a close frame and ends the connection itself', async () => {
  const app = await startTlsEcho();
  const { socket, reader } = await openRawTls(app.port, 'raw');
  try {
    assert.equal((await reader.nextFrame(T, 'the open frame')).text(), 'o');
    socket.write(W.encodeFrame({ opcode: W.OP.CLOSE, payload: W.closePayload(1000, 'bye') }));
    const close = await reader.nextFrame(T, 'the close frame');
    assert.equal(close.opcode, W.OP.CLOSE);
    assert.equal(close.code, 1000);
    await reader.waitEnded(T, 'the server to end the connection');
  } finally {
    socket.destroy();
    await app.close();
  }
});
