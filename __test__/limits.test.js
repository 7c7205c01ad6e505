'use strict';
// Limits with clear answers and WebSocket liveness: the origins allow-list,
// max_sessions, max_message_size, the heartbeat ping/pong timeout, detach()
// closing sessions, and the process kept alive by live native sessions only.

const test = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const path = require('node:path');
const { spawn } = require('node:child_process');
const WebSocket = require('ws');
const W = require('./helpers/ws-frames.js');
const { sockjs, implPath } = require('./helpers/app.js');

const T = 5000;

async function startServer(options, prefix = '/lim') {
  const logs = [];
  const server = sockjs.createServer({ log: (severity, line) => logs.push([severity, line]), ...options });
  const httpServer = http.createServer((req, res) => {
    res.writeHead(404);
    res.end('earlier listener');
  });
  server.installHandlers(httpServer, { prefix });
  await new Promise((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
  const port = httpServer.address().port;
  const close = async () => {
    httpServer.closeAllConnections();
    await new Promise((resolve) => httpServer.close(resolve));
  };
  return { server, port, base: `http://127.0.0.1:${port}${prefix}`, logs, close, httpServer };
}

/** The server's frames up to its close frame (at most `most`), and a description of them. */
async function framesUntilClose(reader, most) {
  const frames = [];
  for (let i = 0; i < most; i++) {
    const f = await reader.nextFrame(T, 'heartbeat frames');
    frames.push(f);
    if (f.opcode === W.OP.CLOSE) break;
  }
  return { frames, seen: frames.map(W.describeFrame).join(' | ') };
}

async function post(url, body, headers = {}) {
  const res = await fetch(url, { method: 'POST', body, headers });
  return { status: res.status, text: await res.text(), headers: res.headers };
}

test('origins: a listed origin is served and echoed in CORS, others get 403 with a log line', async () => {
  const s = await startServer({ origins: ['http://good.example'] });
  try {
    const info = await fetch(`${s.base}/info`);
    assert.deepEqual(JSON.parse(await info.text()).origins, ['http://good.example']);
    const good = await post(`${s.base}/0/a/xhr`, undefined, { Origin: 'http://good.example' });
    assert.equal(good.status, 200);
    assert.equal(good.headers.get('access-control-allow-origin'), 'http://good.example');
    const evil = await post(`${s.base}/0/b/xhr`, undefined, { Origin: 'http://evil.example' });
    assert.equal(evil.status, 403);
    assert.ok(s.logs.some(([sev, line]) => sev === 'error' && line.includes('evil.example')));
    const none = await post(`${s.base}/0/c/xhr`);
    assert.equal(none.status, 200, 'requests without Origin are not concerned');
  } finally {
    await s.close();
  }
});

test('origins: a WebSocket upgrade from an origin outside the list gets 403, a listed one opens', async () => {
  const s = await startServer({ origins: ['http://good.example'] });
  try {
    const refused = await W.httpExchange(s.port, '/lim/0/x/websocket', { headers: { Origin: 'http://evil.example' } });
    assert.equal(refused.head.statusCode, 403);
    const ok = await W.openRawWebSocket(s.port, '/lim/0/y/websocket', { headers: { Origin: 'http://good.example' } });
    assert.equal((await ok.reader.nextFrame(T, 'the open frame')).text(), 'o');
    ok.socket.destroy();
  } finally {
    await s.close();
  }
});

test('max_sessions: a new session past the limit gets 503, on HTTP and WebSocket', async () => {
  const s = await startServer({ max_sessions: 2 });
  try {
    assert.equal((await post(`${s.base}/0/s1/xhr`)).status, 200);
    assert.equal((await post(`${s.base}/0/s2/xhr`)).status, 200);
    const third = await post(`${s.base}/0/s3/xhr`);
    assert.equal(third.status, 503);
    assert.equal((await post(`${s.base}/0/s1/xhr_send`, '["still served"]')).status, 204, 'existing sessions go on');
    const ws = await W.httpExchange(s.port, '/lim/0/s4/websocket');
    assert.equal(ws.head.statusCode, 503);
    assert.ok(s.logs.some(([sev, line]) => sev === 'error' && line.includes('max_sessions')));
  } finally {
    await s.close();
  }
});

test('max_message_size: an xhr_send body over it gets 413, a WebSocket message over it closes with 1009', async () => {
  const s = await startServer({ max_message_size: 1000 });
  try {
    assert.equal((await post(`${s.base}/0/m/xhr`)).status, 200);
    const big = await post(`${s.base}/0/m/xhr_send`, JSON.stringify(['x'.repeat(2000)]));
    assert.equal(big.status, 413);
    const small = await post(`${s.base}/0/m/xhr_send`, JSON.stringify(['fits']));
    assert.equal(small.status, 204);
    const ws = new WebSocket(`ws://127.0.0.1:${s.port}/lim/websocket`);
    const code = await W.withTimeout(
      new Promise((resolve, reject) => {
        ws.once('open', () => ws.send('y'.repeat(2000)));
        ws.once('close', (c) => resolve(c));
        ws.once('error', () => {});
        setTimeout(() => reject(new Error('no close')), T).unref();
      }),
      T,
      'the close after an over-large message',
    );
    assert.equal(code, 1009);
  } finally {
    await s.close();
  }
});

test('max_message_size: a batch of many tiny messages counts 64 bytes a message, so that it cannot take far more memory than its text', async () => {
  // 100 empty messages (301 bytes of JSON) count 6,400 bytes: delivered;
  // 200 (601 bytes) count 12,800, over the 10,000: 413 over HTTP, 1009
  // over WebSocket, with a log line; nothing of them is delivered.
  const s = await startServer({ max_message_size: 10000 });
  const batch = (n) => JSON.stringify(Array(n).fill(''));
  try {
    const received = [];
    s.server.on('connection', (conn) => conn.on('data', (m) => received.push([conn.id, m])));
    assert.equal((await post(`${s.base}/0/tiny/xhr`)).status, 200);
    assert.equal((await post(`${s.base}/0/tiny/xhr_send`, batch(100))).status, 204);
    const refused = await post(`${s.base}/0/tiny/xhr_send`, batch(200));
    assert.equal(refused.status, 413);
    assert.equal(received.length, 100);
    assert.ok(
      s.logs.some(([severity, line]) => severity === 'error' && line.includes('messages take over the limit of 10000 bytes')),
      `a log line: ${JSON.stringify(s.logs)}`,
    );
    const connP = W.waitEvent(s.server, 'connection', T);
    const c = await W.openRawWebSocket(s.port, '/lim/0/tinyws/websocket');
    try {
      assert.equal((await c.reader.nextFrame(T, 'the open frame')).text(), 'o');
      const [conn] = await connP;
      // 'close' comes after every message the session delivered.
      const closed = W.waitEvent(conn, 'close', T);
      c.sendText(batch(100));
      c.sendText(batch(200));
      const close = await c.reader.nextFrameMatching((f) => f.opcode === W.OP.CLOSE, T, 'the close frame', 10);
      assert.equal(close.code, 1009);
      await closed;
      assert.equal(received.filter(([id]) => id === conn.id).length, 100, 'the first frame delivered, the second not');
      assert.ok(
        s.logs.some(([severity, line]) => severity === 'error' && line.includes('WebSocket closed with 1009')),
        `a log line: ${JSON.stringify(s.logs)}`,
      );
    } finally {
      c.socket.destroy();
    }
  } finally {
    await s.close();
  }
});

test('websocket heartbeats: h frames and pings; a peer that never answers pings is closed with 3000', async () => {
  const s = await startServer({ heartbeat_delay: 200 });
  try {
    const closeP = W.waitEvent(s.server, 'connection', T).then(([conn]) => W.waitEvent(conn, 'close', T * 2));
    const c = await W.openRawWebSocket(s.port, '/lim/0/hb/websocket');
    const { frames, seen } = await framesUntilClose(c.reader, 20);
    assert.ok(frames.some((f) => f.opcode === W.OP.TEXT && f.text() === 'h'), `an h frame: ${seen}`);
    assert.ok(frames.some((f) => f.opcode === W.OP.PING), `a ping: ${seen}`);
    const texts = frames.filter((f) => f.opcode === W.OP.TEXT).map((f) => f.text());
    assert.ok(texts.includes('c[3000,"No response from heartbeat"]'), `the close frame: ${seen}`);
    assert.equal(frames[frames.length - 1].opcode, W.OP.CLOSE, seen);
    await closeP;
    c.socket.destroy();
  } finally {
    await s.close();
  }
});

for (const trickle of [false, true]) {
  const how = trickle ? 'trickles a frame one byte at a time' : 'stops in the middle of a frame';
  test(`websocket heartbeats: a peer that ${how} is closed with 3000 at its missed pong, and its connection ends`, async () => {
    // Bytes that never make a whole frame are no sign of life: the pong
    // cannot come while the frame is unfinished. The server's close frame
    // gets no answer either, so the connection is dropped after the close
    // handshake's 5 s.
    const s = await startServer({ heartbeat_delay: 200 });
    let trickling = null;
    try {
      const closeP = W.waitEvent(s.server, 'connection', T).then(([conn]) => W.waitEvent(conn, 'close', T * 2));
      const c = await W.openRawWebSocket(s.port, '/lim/0/stuck/websocket');
      assert.equal((await c.reader.nextFrame(T, 'the open frame')).text(), 'o');
      // A text frame announcing 100,000 bytes, of which 10 come at once.
      const frame = W.encodeFrame({ opcode: W.OP.TEXT, payload: Buffer.alloc(100000, 0x61) });
      c.socket.write(frame.subarray(0, 18));
      let sent = 18;
      if (trickle) {
        trickling = setInterval(() => {
          if (!c.socket.destroyed && sent < frame.length) c.socket.write(frame.subarray(sent, (sent += 1)));
        }, 20);
      }
      const { frames, seen } = await framesUntilClose(c.reader, 50);
      assert.ok(frames.some((f) => f.opcode === W.OP.PING), `a ping: ${seen}`);
      assert.ok(
        frames.some((f) => f.opcode === W.OP.TEXT && f.text() === 'c[3000,"No response from heartbeat"]'),
        `the SockJS close frame: ${seen}`,
      );
      assert.equal(frames[frames.length - 1].opcode, W.OP.CLOSE, seen);
      await closeP;
      await c.reader.waitClosed(T * 2, 'the server to end the connection');
      assert.ok(
        s.logs.some(([severity, line]) => severity === 'info' && line.includes('no answer to a ping within 200 ms')),
        `a log line says why: ${JSON.stringify(s.logs)}`,
      );
      c.socket.destroy();
    } finally {
      clearInterval(trickling);
      await s.close();
    }
  });
}

test('detach(): sessions are closed and the earlier listeners get the prefix back', async () => {
  const server = sockjs.createServer({ prefix: '/att', log: () => {} });
  const httpServer = http.createServer((req, res) => {
    res.writeHead(404);
    res.end('earlier listener');
  });
  server.attach(httpServer);
  await new Promise((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
  const port = httpServer.address().port;
  try {
    const connP = W.waitEvent(server, 'connection', T);
    const ws = new WebSocket(`ws://127.0.0.1:${port}/att/0/d/websocket`);
    const closed = new Promise((resolve) => ws.once('close', resolve));
    const [conn] = await connP;
    const serverClose = W.waitEvent(conn, 'close', T);
    server.detach(httpServer);
    await W.withTimeout(closed, T, 'the client to see the session close');
    await serverClose;
    const after = await fetch(`http://127.0.0.1:${port}/att/info`);
    assert.equal(await after.text(), 'earlier listener');
  } finally {
    httpServer.closeAllConnections();
    await new Promise((resolve) => httpServer.close(resolve));
  }
});

// A child Node process running \`script\`, its stdout collected; waitFor
// resolves with the first match of \`re\` in what it printed or will print.
function startChild(script, stdin = 'ignore') {
  const child = spawn(process.execPath, ['-e', script], { stdio: [stdin, 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  const exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
  const waitFor = (re, what) =>
    W.withTimeout(
      new Promise((resolve) => {
        const check = () => {
          const m = re.exec(out);
          if (m) {
            child.stdout.off('data', check);
            resolve(m);
          }
        };
        child.stdout.on('data', check);
        check();
      }),
      T,
      what,
    );
  return { child, exited, waitFor, output: () => out };
}

// A child process that serves one WebSocket session, then closes its
// listening socket: it must stay alive while the session lives and exit on
// its own once the session is over.
const CHILD = `
const http = require('http');
const sockjs = require(${JSON.stringify(path.resolve(implPath))});
const server = sockjs.createServer({ log: () => {} });
const httpServer = http.createServer();
server.installHandlers(httpServer, { prefix: '/p' });
server.on('connection', (conn) => {
  httpServer.close(() => process.stdout.write('listener closed\\n'));
  conn.on('data', (m) => conn.write(m));
  conn.on('close', () => process.stdout.write('session closed\\n'));
});
httpServer.listen(0, '127.0.0.1', () => process.stdout.write('port ' + httpServer.address().port + '\\n'));
`;

test('process lifetime: a live WebSocket session keeps Node alive, and nothing does once it ends', async () => {
  const { child, exited, waitFor, output } = startChild(CHILD);
  try {
    const portLine = Number((await waitFor(/port (\d+)/, 'the child to listen'))[1]);
    const ws = new WebSocket(`ws://127.0.0.1:${portLine}/p/websocket`);
    await W.withTimeout(new Promise((resolve) => ws.once('open', resolve)), T, 'the WebSocket to open');
    await waitFor(/listener closed/, 'the child to close its listening socket');
    // Only the session holds the child now: it must still answer.
    const echo = new Promise((resolve) => ws.once('message', (m) => resolve(String(m))));
    ws.send('are you there');
    assert.equal(await W.withTimeout(echo, T, 'an echo from the child'), 'are you there');
    ws.close();
    const code = await W.withTimeout(exited, T, 'the child to exit by itself after the session closed');
    assert.equal(code, 0);
    assert.match(output(), /session closed/);
  } finally {
    child.kill();
  }
});

// The same over HTTP: an xhr-polling session outlives its last request by
// disconnect_delay, and the child must wait for it to close (and hear
// 'close') before it exits, as sockjs-node's session timer made it wait.
const HTTP_CHILD = `
const http = require('http');
const sockjs = require(${JSON.stringify(path.resolve(implPath))});
const server = sockjs.createServer({ log: () => {}, disconnect_delay: 300 });
const httpServer = http.createServer();
server.installHandlers(httpServer, { prefix: '/p' });
server.on('connection', (conn) => {
  conn.on('close', () => process.stdout.write('session closed\\n'));
});
httpServer.listen(0, '127.0.0.1', () => process.stdout.write('port ' + httpServer.address().port + '\\n'));
process.stdin.on('data', () => httpServer.close(() => process.stdout.write('listener closed\\n')));
`;

test('process lifetime: an HTTP session waiting out disconnect_delay keeps Node alive until it closes', async () => {
  const { child, exited, waitFor, output } = startChild(HTTP_CHILD, 'pipe');
  try {
    const port = Number((await waitFor(/port (\d+)/, 'the child to listen'))[1]);
    const agent = new http.Agent({ keepAlive: false });
    const opened = await new Promise((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/p/0/held/xhr', agent }, (res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve(body));
      });
      req.on('error', reject);
      req.end();
    });
    assert.equal(opened, 'o\n');
    child.stdin.end('close\n');
    const code = await W.withTimeout(exited, T, 'the child to exit by itself after the session closed');
    assert.equal(code, 0);
    assert.match(output(), /listener closed/);
    assert.match(output(), /session closed/, "the session's 'close' was heard before the process exited");
  } finally {
    child.kill();
  }
});

// process.exit() with live WebSocket sessions: each client still gets its
// close (SockJS: the c frame, then a normal WebSocket close; raw: 1001).
const EXIT_CHILD = `
const http = require('http');
const sockjs = require(${JSON.stringify(path.resolve(implPath))});
const server = sockjs.createServer({ log: () => {} });
const httpServer = http.createServer();
server.installHandlers(httpServer, { prefix: '/p' });
let open = 0;
server.on('connection', (conn) => {
  open += 1;
  if (open === 2) process.stdout.write('both open\\n');
  conn.on('data', () => process.exit(0));
});
httpServer.listen(0, '127.0.0.1', () => process.stdout.write('port ' + httpServer.address().port + '\\n'));
`;

test('process.exit() sends every WebSocket session its close frame', async () => {
  const { child, waitFor } = startChild(EXIT_CHILD);
  try {
    const port = Number((await waitFor(/port (\d+)/, 'the child to listen'))[1]);
    const framed = new WebSocket(`ws://127.0.0.1:${port}/p/0/exit/websocket`);
    const raw = new WebSocket(`ws://127.0.0.1:${port}/p/websocket`);
    const framedMessages = [];
    framed.on('message', (m) => framedMessages.push(String(m)));
    const framedClose = new Promise((resolve) => framed.once('close', (code) => resolve(code)));
    const rawClose = new Promise((resolve) => raw.once('close', (code, reason) => resolve([code, String(reason)])));
    // The child hears 'connection' once its 101 is written; the clients may
    // not have read that answer yet, so wait for their own 'open' as well.
    const clientsOpen = Promise.all([framed, raw].map((ws) => new Promise((resolve) => ws.once('open', resolve))));
    await waitFor(/both open/, 'both sessions to open');
    await W.withTimeout(clientsOpen, T, 'both clients to see their 101');
    raw.send('exit now');
    assert.equal(await W.withTimeout(framedClose, T, 'the SockJS session to close'), 1000);
    assert.deepEqual(framedMessages, ['o', 'c[1001,"Server shutting down"]']);
    assert.deepEqual(await W.withTimeout(rawClose, T, 'the raw session to close'), [1001, 'Server shutting down']);
  } finally {
    child.kill();
  }
});

test('a half-closed WebSocket (FIN without a close frame) ends its session once and the server keeps serving', async () => {
  const s = await startServer({});
  try {
    const closeP = W.waitEvent(s.server, 'connection', T).then(([conn]) => W.waitEvent(conn, 'close', T));
    const c = await W.openRawWebSocket(s.port, '/lim/0/half/websocket');
    assert.equal((await c.reader.nextFrame(T, 'the open frame')).text(), 'o');
    c.socket.end(); // FIN: the client will send nothing more
    await closeP;
    await c.reader.waitClosed(T, 'the server to close its side too');
    const after = await post(`${s.base}/0/after-half/xhr`);
    assert.equal(after.text, 'o\n');
  } finally {
    await s.close();
  }
});

// A server inside a worker thread: the worker ends (process.exit in the
// worker) while its WebSocket session is open. Node tears the worker's
// environment down and closes its event loop, which aborts the whole
// process if an addon left a libuv handle open there; the engine's wake-up
// handle must close with the environment. Three workers in turn, each
// serving an echo first; the main thread must go on and exit cleanly.
const WORKER_SERVER = `
const { parentPort } = require('worker_threads');
const http = require('http');
const sockjs = require(${JSON.stringify(path.resolve(implPath))});
const server = sockjs.createServer({ log: () => {} });
server.on('connection', (conn) => conn.on('data', (m) => conn.write(m)));
const httpServer = http.createServer();
server.installHandlers(httpServer, { prefix: '/w' });
httpServer.listen(0, '127.0.0.1', () => parentPort.postMessage(httpServer.address().port));
parentPort.on('message', () => process.exit(0));
`;
const WORKER_CHILD = `
const { Worker } = require('worker_threads');
const WebSocket = require(${JSON.stringify(require.resolve('ws'))});
const once = () => new Promise((resolve, reject) => {
  const worker = new Worker(${JSON.stringify(WORKER_SERVER)}, { eval: true });
  worker.on('error', reject);
  worker.once('message', (port) => {
    const ws = new WebSocket('ws://127.0.0.1:' + port + '/w/0/s/websocket');
    ws.on('error', () => {});
    ws.on('message', (m) => {
      if (String(m) === 'o') ws.send('["ping"]');
      if (String(m) === 'a["ping"]') {
        process.stdout.write('echoed\\n');
        worker.postMessage('exit');
      }
    });
  });
  worker.on('exit', resolve);
});
(async () => {
  for (let i = 0; i < 3; i++) process.stdout.write('worker exit ' + (await once()) + '\\n');
  process.stdout.write('main done\\n');
})();
`;

test('a worker thread that exits with a live session ends cleanly, and the process goes on', async () => {
  const { child, exited, output } = startChild(WORKER_CHILD);
  try {
    const code = await W.withTimeout(exited, 3 * T, 'the child to finish its three workers');
    assert.equal(output(), 'echoed\nworker exit 0\n'.repeat(3) + 'main done\n');
    assert.equal(code, 0);
  } finally {
    child.kill();
  }
});

// Garbage collection: a server the application drops (with handlers
// installed and its http.Server closed) is collected; one that still
// carries a live WebSocket session is not, and that session goes on being
// served although nothing in the application refers to the server.
const GC_CHILD = `
require('v8').setFlagsFromString('--expose-gc');
const gc = require('vm').runInNewContext('gc');
const http = require('http');
const sockjs = require(${JSON.stringify(path.resolve(implPath))});
const WebSocket = require(${JSON.stringify(require.resolve('ws'))});
const collected = new Set();
const registry = new FinalizationRegistry((name) => collected.add(name));
function start(name, done) {
  const server = sockjs.createServer({ log: () => {} });
  server.on('connection', (conn) => conn.on('data', (m) => conn.write(name + ':' + m)));
  const httpServer = http.createServer();
  server.installHandlers(httpServer, { prefix: '/g' });
  registry.register(server, name);
  httpServer.listen(0, '127.0.0.1', () => done(httpServer));
}
async function collect(rounds) {
  for (let i = 0; i < rounds; i++) {
    gc();
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
start('dropped', (dropped) => dropped.close(() => start('live', (listening) => {
  let live = listening;
  const ws = new WebSocket('ws://127.0.0.1:' + live.address().port + '/g/0/s/websocket');
  ws.on('message', async (m) => {
    m = String(m);
    if (m === 'o') {
      // No new connections, and no reference left to the http.Server (its
      // listeners refer to the sockjs server): the session is the engine's.
      live.close();
      live = null;
      await collect(50);
      process.stdout.write('collected:' + [...collected].sort().join(',') + '\\n');
      ws.send('["after gc"]');
    } else if (m.startsWith('a')) {
      process.stdout.write('echo:' + m + '\\n');
      ws.close();
      setTimeout(() => process.exit(0), 50);
    }
  });
})));
`;

test('a dropped server is garbage-collected; one carrying a live session is kept and goes on serving it', async () => {
  const { child, exited, output } = startChild(GC_CHILD);
  try {
    const code = await W.withTimeout(exited, 3 * T, 'the child to finish');
    assert.equal(output(), 'collected:dropped\necho:a["live:after gc"]\n');
    assert.equal(code, 0);
  } finally {
    child.kill();
  }
});
