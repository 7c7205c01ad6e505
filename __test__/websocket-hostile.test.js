'use strict';
// Hostile WebSocket clients, with hand-made RFC 6455 frames over node:net.
// Each protocol violation must be answered with the right close code, and
// a healthy connection opened beforehand must keep echoing afterwards.
// The cases that could take the whole server down run it in a child process.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { startApp } = require('./helpers/app.js');
const W = require('./helpers/ws-frames.js');
const { OP, arrayFrame, openSession, sessionPath } = W;
const T = 3000;

let app;
let healthy;
let healthCount = 0;

const sid = () => crypto.randomBytes(6).toString('hex');

/** The healthy connection still echoes. */
async function assertHealthy(client, label) {
  healthCount += 1;
  const msg = `alive-${healthCount}`;
  assert.equal(client.queue.closed, null, `healthy connection was closed after ${label}`);
  client.ws.send(JSON.stringify([msg]));
  const reply = await client.queue.next(T, `the healthy connection's echo after ${label}`);
  assert.deepEqual(arrayFrame(reply), [msg], `healthy connection after ${label}`);
}

before(async () => {
  app = await startApp();
  healthy = await openSession(app.port);
});

after(async () => {
  if (healthy) await W.closeClient(healthy.ws);
  if (app) await W.withTimeout(app.close(), 5000, 'the test app to close');
});

/**
 * Open a SockJS WebSocket session over raw TCP, let `attack` write to it,
 * and check the server answers with a close frame carrying `expected`,
 * then closes TCP and ends the session; the healthy connection survives.
 */
async function expectClose(label, attack, expected, { attackIsClose = false } = {}) {
  const connP = W.waitEvent(app.servers.echo, 'connection', T, "the server's 'connection' event");
  const c = await W.openRawWebSocket(app.port, sessionPath());
  try {
    assert.equal((await c.reader.nextFrame(T, 'the open frame')).text(), 'o');
    const [conn] = await connP;
    const sessionClosed = W.waitEvent(conn, 'close', T, `the session to close after ${label}`);
    attack(c);
    const f = await c.reader.nextFrameMatching((x) => x.opcode === OP.CLOSE, T, `a close frame after ${label}`, 10);
    assert.equal(f.code, expected, `${label}: got ${W.describeFrame(f)}`);
    // Complete the closing handshake if the server still listens (unless
    // the attack itself was our close frame: a second one is not allowed).
    if (!attackIsClose && !c.reader.ended) c.socket.write(W.encodeFrame({ opcode: OP.CLOSE, payload: W.closePayload(expected) }));
    await c.reader.waitClosed(T, `the server to close TCP after ${label}`);
    await sessionClosed;
  } finally {
    c.socket.destroy();
  }
  await assertHealthy(healthy, label);
}

test('websocket-hostile: an unmasked client frame is closed with 1002', async () => {
  await expectClose('an unmasked frame', (c) => c.send({ opcode: OP.TEXT, payload: '["x"]', mask: false }), 1002);
});

for (const opcode of [0x3, 0xb]) {
  test(`websocket-hostile: reserved opcode 0x${opcode.toString(16)} is closed with 1002`, async () => {
    await expectClose(`opcode 0x${opcode.toString(16)}`, (c) => c.send({ opcode, payload: 'x' }), 1002);
  });
}

for (const rsv of ['rsv1', 'rsv2', 'rsv3']) {
  test(`websocket-hostile: ${rsv.toUpperCase()} set without a negotiated extension is closed with 1002`, async () => {
    await expectClose(rsv, (c) => c.send({ opcode: OP.TEXT, payload: '["x"]', [rsv]: true }), 1002);
  });
}

test('websocket-hostile: a frame header claiming 2^62 bytes is closed with 1009', async () => {
  await expectClose(
    'a 2^62-byte frame header',
    (c) => c.send(W.encodeFrame({ opcode: OP.TEXT, payload: '["x"]', length: 2n ** 62n })),
    1009,
  );
});

for (const [name, bytes] of [
  ['a lone continuation byte', [0xc3, 0x28]],
  ['a UTF-16 surrogate encoded in UTF-8', [0xed, 0xa0, 0x80]],
  ['an overlong encoding', [0xc0, 0xaf]],
]) {
  test(`websocket-hostile: invalid UTF-8 (${name}) in a text frame is closed with 1007`, async () => {
    const payload = Buffer.concat([Buffer.from('["'), Buffer.from(bytes), Buffer.from('"]')]);
    await expectClose(`invalid UTF-8 (${name})`, (c) => c.send({ opcode: OP.TEXT, payload }), 1007);
  });
}

for (const code of [999, 1005, 1006, 5000]) {
  test(`websocket-hostile: a close frame with the invalid code ${code} is answered with 1002`, async () => {
    await expectClose(
      `close code ${code}`,
      (c) => c.send({ opcode: OP.CLOSE, payload: W.closePayload(code, 'bad') }),
      1002,
      { attackIsClose: true },
    );
  });
}

test('websocket-hostile: a close frame with a 1-byte payload is answered with 1002', async () => {
  await expectClose(
    'a 1-byte close payload',
    (c) => c.send({ opcode: OP.CLOSE, payload: Buffer.from([0x03]) }),
    1002,
    { attackIsClose: true },
  );
});

test('websocket-hostile: a fragmented message with an interleaved ping gets the pong and the reassembled echo', async () => {
  const c = await W.openRawWebSocket(app.port, sessionPath());
  try {
    assert.equal((await c.reader.nextFrame(T, 'the open frame')).text(), 'o');
    c.send({ opcode: OP.TEXT, payload: '["frag', fin: false });
    c.send({ opcode: OP.PING, payload: 'ping-in-the-middle' });
    c.send({ opcode: OP.CONT, payload: 'mented ', fin: false });
    c.send({ opcode: OP.CONT, payload: 'message"]', fin: true });
    let pong = null;
    let echo = null;
    for (let i = 0; i < 4 && !(pong && echo); i += 1) {
      const f = await c.reader.nextFrame(T, `the pong and the echo (pong: ${!!pong}, echo: ${!!echo})`);
      if (f.opcode === OP.PONG) pong = f;
      else if (f.opcode === OP.TEXT && f.text() !== 'h') echo = f;
      else if (f.opcode === OP.CLOSE) assert.fail(`server closed: ${W.describeFrame(f)}`);
    }
    assert.ok(pong, 'a pong must answer the ping');
    assert.equal(pong.payload.toString('utf8'), 'ping-in-the-middle');
    assert.ok(echo, 'the reassembled message must be echoed');
    assert.deepEqual(arrayFrame(echo.text()), ['fragmented message']);
  } finally {
    c.socket.destroy();
  }
  await assertHealthy(healthy, 'a fragmented message');
});

test('websocket-hostile: a continuation frame without a start is closed with 1002', async () => {
  await expectClose('a stray continuation frame', (c) => c.send({ opcode: OP.CONT, payload: '["x"]' }), 1002);
});

test('websocket-hostile: a control frame over 125 bytes is closed with 1002', async () => {
  await expectClose('a 126-byte ping', (c) => c.send({ opcode: OP.PING, payload: Buffer.alloc(126, 0x61) }), 1002);
});

test('websocket-hostile: a fragmented control frame is closed with 1002', async () => {
  await expectClose('a ping with FIN clear', (c) => c.send({ opcode: OP.PING, payload: 'x', fin: false }), 1002);
});

// ---------------------------------------------------------------------------
// Cases that may crash the server process: the server runs in a child.

const APP_MODULE = path.join(__dirname, 'helpers', 'app.js');
const CHILD_SOURCE = `
const { startApp } = require(${JSON.stringify(APP_MODULE)});
startApp().then((app) => process.stdout.write(JSON.stringify({ port: app.port }) + '\\n'));
`;

/** Start the test app in a child process; resolves {port, child, stderr(), stop()}. */
async function startChildApp() {
  const child = spawn(process.execPath, ['-e', CHILD_SOURCE], {
    env: process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d) => {
    stderr += d;
  });
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    try {
      await W.withTimeout(exited, T, 'the child server to exit');
    } catch {
      child.kill('SIGKILL');
      await W.withTimeout(exited, T, 'the child server to exit after SIGKILL');
    }
  };
  try {
    const port = await W.withTimeout(
      new Promise((resolve, reject) => {
        let out = '';
        child.stdout.on('data', (d) => {
          out += d;
          const nl = out.indexOf('\n');
          if (nl >= 0) resolve(JSON.parse(out.slice(0, nl)).port);
        });
        child.once('exit', (code) => reject(new Error(`child server exited with ${code} before listening: ${stderr}`)));
      }),
      5000,
      'the child server to listen',
    );
    return { port, child, exited, stderr: () => stderr, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

async function childServes(srv, client, label) {
  try {
    await childServesChecks(srv, client, label);
  } catch (e) {
    // Say whether the process died (for the report only; bounded wait).
    const exit = await W.withTimeout(srv.exited, 1000, 'the child to exit').catch(() => null);
    if (exit) {
      const lines = srv.stderr().split('\n').filter(Boolean).slice(0, 12).join('\n');
      e.message = `${e.message}\nthe server process died (exit ${exit.code}, signal ${exit.signal}):\n${lines}`;
    }
    throw e;
  }
}

/** The child still serves: the healthy session echoes, a new session echoes, /info answers. */
async function childServesChecks(srv, client, label) {
  assert.equal(srv.child.exitCode, null, `the server process exited after ${label}`);
  assert.equal(srv.child.signalCode, null, `the server process was killed after ${label}`);
  await assertHealthy(client, label);
  const fresh = await openSession(srv.port);
  try {
    fresh.ws.send('["fresh"]');
    assert.deepEqual(arrayFrame(await fresh.queue.next(T, 'a fresh session echo')), ['fresh']);
  } finally {
    await W.closeClient(fresh.ws);
  }
  const { head } = await W.httpExchange(srv.port, '/echo/info', { upgrade: false });
  assert.equal(head.statusCode, 200, `GET /echo/info after ${label}`);
}

test('websocket-hostile: Upgrade: websocket to /echo/info gets an HTTP 4xx or a closed socket and the server keeps serving', async () => {
  const srv = await startChildApp();
  let client;
  try {
    client = await openSession(srv.port);
    let answer;
    const r = await W.connectTcp(srv.port);
    const reader = new W.ByteReader(r);
    try {
      r.write(W.handshakeRequest('/echo/info', { host: `127.0.0.1:${srv.port}` }));
      try {
        const head = await reader.readHttpHead(T);
        answer = { status: head.statusCode, raw: head.raw };
        // Read the whole answer and close with FIN: no reset from our side.
        await reader.readHttpBody(head, T);
      } catch (e) {
        if (!reader.ended) throw e;
        answer ??= { status: null, raw: '(socket closed without an answer)' };
      }
      r.end();
      await reader.waitClosed(T, 'the /echo/info upgrade connection to close');
    } finally {
      r.destroy();
    }
    const death = await childServes(srv, client, 'an upgrade to /echo/info').then(
      () => null,
      (e) => e,
    );
    const ok = answer.status === null || (answer.status >= 400 && answer.status < 500);
    assert.ok(
      ok,
      `expected an HTTP 4xx answer or a closed socket, got:\n${answer.raw}\n` +
        `server afterwards: ${death ? death.message : 'still serving'}`,
    );
    assert.equal(death, null, `the server must keep serving: ${death && death.message}`);
  } finally {
    if (client) client.ws.terminate();
    await srv.stop();
  }
});

test('websocket-hostile: a client resetting the connection right after an upgrade that gets 404 leaves the server up', async () => {
  const srv = await startChildApp();
  let client;
  try {
    client = await openSession(srv.port);
    const paths = ['/disabled_websocket_echo/websocket', `/disabled_websocket_echo/000/${sid()}/websocket`];
    for (let i = 0; i < 20; i += 1) {
      const s = await W.connectTcp(srv.port);
      const gone = new Promise((resolve) => s.once('close', resolve));
      s.on('error', () => {});
      s.write(W.handshakeRequest(paths[i % 2], { host: `127.0.0.1:${srv.port}` }));
      if (i % 4 === 3) s.destroy();
      else s.resetAndDestroy();
      await W.withTimeout(gone, T, 'the client socket to close');
    }
    await childServes(srv, client, '20 reset upgrades');
  } finally {
    if (client) client.ws.terminate();
    await srv.stop();
  }
});

/** The resident memory of process `pid`, in MiB (Linux). */
function rssMiB(pid) {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(status)[1]) / 1024;
}

/**
 * Read `socket` (taking it from its ByteReader) until the first text frame
 * from the server: resolves {pongs, text}, the pongs counted on the way.
 */
function readPastPongs(socket, ms) {
  socket.removeAllListeners('data');
  return W.withTimeout(
    new Promise((resolve, reject) => {
      let pending = Buffer.alloc(0);
      let pongs = 0;
      socket.on('data', (chunk) => {
        pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
        for (;;) {
          const parsed = W.parseFrame(pending);
          if (!parsed) break;
          pending = pending.subarray(parsed.size);
          if (parsed.frame.opcode === OP.PONG) {
            pongs += 1;
          } else if (parsed.frame.opcode === OP.TEXT) {
            socket.removeAllListeners('data');
            resolve({ pongs, text: parsed.frame.text() });
            return;
          } else {
            reject(new Error(`unexpected ${W.describeFrame(parsed.frame)} after ${pongs} pongs`));
            return;
          }
        }
      });
      socket.resume();
    }),
    ms,
    'the echo after the pongs',
  );
}

test("websocket-hostile: a client that floods pings and reads nothing does not grow the server's memory; reading again, it gets its pong", { skip: process.platform !== 'linux' && 'reads /proc' }, async () => {
  // Each ping's pong used to go into tungstenite's write buffer as the
  // server read on, waiting for a client that takes nothing: 100 MB of
  // pings made ~90 MB of pongs in the server.
  const srv = await startChildApp();
  let client;
  let c;
  try {
    client = await openSession(srv.port);
    c = await W.openRawWebSocket(srv.port, '/echo/websocket');
    c.socket.on('error', () => {});
    c.socket.pause(); // the client reads nothing
    const before = rssMiB(srv.child.pid);
    const ping = W.encodeFrame({ opcode: OP.PING, payload: Buffer.alloc(125, 0x70) });
    const batch = Buffer.concat(Array.from({ length: 1000 }, () => ping));
    const budget = 100 << 20;
    for (let sent = 0; sent < budget; sent += batch.length) {
      if (!c.socket.write(batch)) await W.waitEvent(c.socket, 'drain', 2 * T, "the client socket's 'drain'");
    }
    // A message after the pings: its echo comes once all of them were read,
    // after the pongs the kernel's buffers held (tens of thousands).
    c.sendText('after the pings');
    const { pongs, text } = await readPastPongs(c.socket, 6 * T);
    assert.equal(text, 'after the pings');
    assert.ok(pongs > 0, 'the pings were answered');
    const grown = rssMiB(srv.child.pid) - before;
    assert.ok(grown < 32, `the server grew by ${grown.toFixed(1)} MiB for 100 MiB of pings`);
    await childServes(srv, client, 'a ping flood');
  } finally {
    if (c) c.socket.destroy();
    if (client) client.ws.terminate();
    await srv.stop();
  }
});
