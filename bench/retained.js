'use strict';
// Memory a server keeps after large messages: both implementations, one
// after the other, each a fresh echo server with heartbeat_delay 1 s.
//
//   node bench/retained.js [--sessions 200] [--size 262144] [--wait-ms 5000]
//
// Opens the sessions (SockJS WebSocket), reads the server's VmRSS, has every
// session echo one message of --size bytes, waits --wait-ms (past a few
// heartbeats: this package gives back the buffers tungstenite grew at a
// heartbeat; read at 2.5 s, part of them was sometimes still held),
// reads VmRSS again and prints the difference per session. "Ours" is the
// repository's own build (run `npm run build` first); 0.3.24 is bench/ref.
// A measurement to read, not a pass/fail check.

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const WebSocket = require('ws');

const ROOT = path.resolve(__dirname, '..');
const IMPLS = [
  ['ours', ROOT],
  ['sockjs 0.3.24', path.join(__dirname, 'ref', 'node_modules', 'sockjs')],
];
const LIMIT_MS = 60000;

const APP = `
const http = require('node:http');
const sockjs = require(process.env.SOCKJS_PATH);
const echo = sockjs.createServer({ log: () => {}, heartbeat_delay: 1000 });
echo.on('connection', (conn) => conn.on('data', (m) => conn.write(m)));
const server = http.createServer();
echo.installHandlers(server, { prefix: '/echo' });
server.listen(0, '127.0.0.1', () => process.stdout.write('READY ' + server.address().port + '\\n'));
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
`;

function options(argv) {
  const o = { sessions: 200, size: 256 * 1024, waitMs: 5000 };
  for (let i = 0; i < argv.length; i += 2) {
    const value = Number(argv[i + 1]);
    if (!Number.isInteger(value) || value <= 0) throw new Error(`${argv[i]} needs a positive integer`);
    if (argv[i] === '--sessions') o.sessions = Math.min(value, 5000);
    else if (argv[i] === '--size') o.size = Math.min(value, 16 * 1024 * 1024);
    else if (argv[i] === '--wait-ms') o.waitMs = Math.min(value, 30000);
    else throw new Error(`unknown option ${argv[i]}`);
  }
  return o;
}

const rssKiB = (pid) => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Resolves with the first message `ws` receives that is not the open frame
// or a heartbeat, or rejects after LIMIT_MS.
function nextMessage(ws) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no echo in time')), LIMIT_MS);
    const onMessage = (data) => {
      const text = String(data);
      if (text === 'o' || text === 'h') return;
      clearTimeout(timer);
      ws.off('message', onMessage);
      resolve(text);
    };
    ws.on('message', onMessage);
  });
}

async function measure(label, modulePath, o) {
  const server = spawn(process.execPath, ['-e', APP], {
    env: { ...process.env, SOCKJS_PATH: modulePath },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const clients = [];
  try {
    const port = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${label}: the server did not start`)), LIMIT_MS);
      server.stdout.once('data', (d) => {
        clearTimeout(timer);
        resolve(Number(String(d).split(' ')[1]));
      });
    });
    for (let i = 0; i < o.sessions; i += 1) {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/echo/0/r${i}/websocket`);
      await new Promise((resolve, reject) => {
        ws.once('message', resolve);
        ws.once('error', reject);
      });
      clients.push(ws);
    }
    await sleep(500);
    const before = rssKiB(server.pid);
    const payload = 'x'.repeat(o.size);
    for (const ws of clients) {
      const echoed = nextMessage(ws);
      ws.send(JSON.stringify([payload]));
      const text = await echoed;
      if (text !== `a${JSON.stringify([payload])}`) throw new Error(`${label}: the echo came back changed`);
    }
    await sleep(o.waitMs);
    const after = rssKiB(server.pid);
    const per = (after - before) / o.sessions;
    console.log(`${label.padEnd(14)} RSS ${before} -> ${after} KiB: ${per.toFixed(1)} KiB kept per session`);
  } finally {
    for (const ws of clients) ws.terminate();
    server.stdin.end();
    server.kill();
  }
}

async function main() {
  const o = options(process.argv.slice(2));
  console.log(`${o.sessions} sessions, one ${o.size} B echo each, RSS read ${o.waitMs} ms later (heartbeat 1 s)`);
  for (const [label, modulePath] of IMPLS) await measure(label, modulePath, o);
}

main().catch((e) => {
  console.error(e.message);
  process.exit(1);
});
