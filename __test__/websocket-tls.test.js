'use strict';
// The bridged byte pipe: over TLS there is no plain descriptor to adopt, so
// the same WebSocket engine runs over bytes carried through the Node socket.
// The certificate is self-signed, generated for this run with openssl.

const test = require('node:test');
const assert = require('node:assert/strict');
const https = require('node:https');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const WebSocket = require('ws');
const { sockjs } = require('./helpers/app.js');
const { withTimeout } = require('./helpers/ws-frames.js');

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

test('websocket over TLS: the bridged pipe opens, echoes, and closes once', async () => {
  const server = https.createServer(selfSignedCertificate());
  const echo = sockjs.createServer({ log: () => {} });
  const closes = [];
  const connected = new Promise((resolve) => {
    echo.on('connection', (conn) => {
      conn.on('data', (m) => conn.write(m));
      conn.on('close', () => closes.push(conn.id));
      resolve(conn);
    });
  });
  echo.installHandlers(server, { prefix: '/echo' });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  const ws = new WebSocket(`wss://127.0.0.1:${port}/echo/000/tls/websocket`, { rejectUnauthorized: false });
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
  try {
    assert.equal(await nextFrame('the open frame'), 'o');
    const conn = await withTimeout(connected, T, "the server's 'connection'");
    assert.equal(conn.protocol, 'websocket');
    assert.equal(conn.remoteAddress, '127.0.0.1');
    ws.send('["über TLS \\u2028"]');
    assert.equal(await nextFrame('the echo'), 'a["über TLS \\u2028"]');
    const closed = withTimeout(new Promise((resolve) => conn.on('close', resolve)), T, "the server's 'close'");
    ws.close(1000);
    await closed;
    assert.deepEqual(closes, [conn.id]);
  } finally {
    ws.terminate();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});
