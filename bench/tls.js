'use strict';
// The WebSocket echo over TLS terminated in Node (https.createServer), where
// this package cannot adopt the descriptor and runs its WebSocket engine
// over bytes bridged through Node's TLS socket: ours against sockjs 0.3.24.
//
//   node bench/tls.js [--reps 3]
//
// The Rust load generator speaks no TLS, so the client here is a Node
// process (the `ws` package, a devDependency) pinned to core 1: 100
// sessions, one message in flight each, every echo checked. The server is
// pinned to core 0; the two servers alternate. Prints server CPU per
// message (utime + stime from /proc over the measured phase) and messages
// per second, medians of the reps. "Ours" is the repository's build (`npm
// run build` first); 0.3.24 is the one run.js installs under bench/ref.
// A measurement to read, not a pass/fail check.

const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const readline = require('node:readline');
const { CLK_TCK, median, sampleProcess } = require('./proc.js');

const ROOT = path.resolve(__dirname, '..');
const REF_MODULE = path.join(__dirname, 'ref', 'node_modules', 'sockjs');
const SESSIONS = 100;
const WARMUP_MS = 1500;
const MEASURE_MS = 3000;
const LIMIT_MS = 60000;

// The echo app of bench/app.js, on https with the certificate in CERT_DIR.
const TLS_APP = `
const https = require('node:https');
const fs = require('node:fs');
const path = require('node:path');
const sockjs = require(process.env.SOCKJS_PATH);
const dir = process.env.CERT_DIR;
const server = https.createServer({
  key: fs.readFileSync(path.join(dir, 'key.pem')),
  cert: fs.readFileSync(path.join(dir, 'cert.pem')),
});
const echo = sockjs.createServer({ log: () => {} });
echo.on('connection', (conn) => conn.on('data', (message) => conn.write(message)));
echo.installHandlers(server, { prefix: '/echo' });
server.listen(0, '127.0.0.1', () => process.stdout.write('READY ' + server.address().port + '\\n'));
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
`;

// Sessions that each send a numbered message on the echo of the last one.
// Prints START when the measured phase begins and, at its end, the number
// of echoes it saw and the number that were not the message sent.
const CLIENT = `
const WebSocket = require(process.env.WS_PATH);
const [port, sessions, warmupMs, measureMs] = process.argv.slice(1).map(Number);
let counting = false;
let echoes = 0;
let wrong = 0;
const sockets = [];
for (let i = 0; i < sessions; i++) {
  const ws = new WebSocket('wss://127.0.0.1:' + port + '/echo/000/s' + i + '/websocket', { rejectUnauthorized: false });
  let n = 0;
  const next = () => ws.send(JSON.stringify(['m' + i + '.' + n]));
  ws.on('message', (data) => {
    const text = data.toString();
    if (text === 'o') return next();
    if (text[0] !== 'a') return;
    if (text !== 'a' + JSON.stringify(['m' + i + '.' + n])) wrong++;
    if (counting) echoes++;
    n++;
    next();
  });
  ws.on('error', () => { wrong++; });
  sockets.push(ws);
}
setTimeout(() => {
  counting = true;
  process.stdout.write('START\\n');
  setTimeout(() => {
    counting = false;
    process.stdout.write('END ' + echoes + ' ' + wrong + '\\n');
    for (const ws of sockets) ws.terminate();
    setTimeout(() => process.exit(0), 100);
  }, measureMs);
}, warmupMs);
`;

function selfSignedCertificate() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sockjs-bench-tls-'));
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', path.join(dir, 'key.pem'),
    '-out', path.join(dir, 'cert.pem'), '-days', '1', '-subj', '/CN=127.0.0.1'], { stdio: 'ignore', timeout: 30000 });
  return dir;
}

// One run against the package at `modulePath`: { us, perSecond }.
function runOnce(modulePath, certDir) {
  return new Promise((resolve, reject) => {
    const server = spawn('taskset', ['-c', '0', process.execPath, '-e', TLS_APP], {
      env: { ...process.env, SOCKJS_PATH: modulePath, CERT_DIR: certDir },
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    let client = null;
    const timer = setTimeout(() => finish(new Error(`no result within ${LIMIT_MS} ms`)), LIMIT_MS);
    function finish(err, value) {
      clearTimeout(timer);
      server.kill();
      if (client) client.kill();
      if (err) reject(err);
      else resolve(value);
    }
    readline.createInterface({ input: server.stdout }).once('line', (line) => {
      const port = /^READY (\d+)$/.exec(line);
      if (!port) return finish(new Error(`unexpected server output: ${line}`));
      client = spawn('taskset', ['-c', '1', process.execPath, '-e', CLIENT, port[1], String(SESSIONS),
        String(WARMUP_MS), String(MEASURE_MS)], {
        env: { ...process.env, WS_PATH: require.resolve('ws', { paths: [ROOT] }) },
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      let start = null;
      readline.createInterface({ input: client.stdout }).on('line', (l) => {
        if (l === 'START') start = sampleProcess(server.pid);
        const end = /^END (\d+) (\d+)$/.exec(l);
        if (!end || !start) return;
        const stop = sampleProcess(server.pid);
        const echoes = Number(end[1]);
        if (Number(end[2]) || !echoes) return finish(new Error(`${end[2]} wrong echoes of ${echoes}`));
        const us = ((stop.ticks - start.ticks) * 1e6) / CLK_TCK / echoes;
        finish(null, { us, perSecond: (echoes * 1000) / (stop.at - start.at) });
      });
    });
  });
}

async function main() {
  const repsAt = process.argv.indexOf('--reps');
  const reps = repsAt === -1 ? 3 : Math.min(Math.max(Number(process.argv[repsAt + 1]) || 3, 1), 9);
  if (!fs.existsSync(REF_MODULE)) throw new Error('no sockjs 0.3.24 under bench/ref: run `node bench/run.js --quick` once');
  const servers = [['ours', ROOT], ['sockjs 0.3.24', REF_MODULE]];
  const certDir = selfSignedCertificate();
  try {
    const runs = new Map(servers.map(([name]) => [name, []]));
    for (let rep = 0; rep < reps; rep++) {
      for (const [name, modulePath] of rep % 2 ? [...servers].reverse() : servers) {
        runs.get(name).push(await runOnce(modulePath, certDir));
      }
    }
    const [ours, ref] = servers.map(([name]) => ({
      us: median(runs.get(name).map((r) => r.us)),
      perSecond: median(runs.get(name).map((r) => r.perSecond)),
    }));
    console.log(`wss echo, ${SESSIONS} x 1: ours ${ours.us.toFixed(1)} us/msg (${Math.round(ours.perSecond)}/s), ` +
      `sockjs 0.3.24 ${ref.us.toFixed(1)} us/msg (${Math.round(ref.perSecond)}/s); ours ${(ours.us / ref.us).toFixed(2)}x`);
  } finally {
    fs.rmSync(certDir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e.message);
  process.exit(1);
});
