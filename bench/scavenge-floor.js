'use strict';
// What Node itself leaves to V8's young generation per connection, with no
// SockJS at all: a bare server that keeps nothing of a connection, opened
// the way the idle benchmark opens its sessions (5,000, 200 at a time).
//   node bench/scavenge-floor.js [--connections N] [--concurrency C]
// For each server it prints the bytes that survived scavenges per
// connection (V8 copies or promotes them: `promoted` + `new_space_survived`
// of --trace-gc-nvp) and the young generation's size at the end. V8 doubles
// its young generation each time the bytes surviving scavenges since the
// last doubling exceed its semi-space (1, 2, then 4 MB), so the 16 MB the
// idle benchmark ends with in a fresh process is already paid, or nearly,
// by these servers. See "RSS per idle WebSocket session" in the README.

const { spawn } = require('node:child_process');
const net = require('node:net');
const readline = require('node:readline');

const SERVERS = {
  // node:net: each connection is destroyed as soon as it is accepted.
  'net, destroyed at once': `require('node:net').createServer((s) => s.destroy())`,
  // node:http: each WebSocket upgrade request's socket is destroyed in the
  // 'upgrade' listener, as this package does once it adopted the descriptor.
  'http upgrade, destroyed': `(() => { const s = require('node:http').createServer();
    s.on('upgrade', (req, socket) => socket.destroy()); return s; })()`,
};

const REQUEST = 'GET /echo/websocket HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n' +
  'Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n';
const TIMEOUT_MS = 60000;

function parseArgs(argv) {
  const opts = { connections: 5000, concurrency: 200 };
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, '');
    if (!(key in opts) || !(Number(argv[i + 1]) > 0)) throw new Error(`usage: ${process.argv[1]} [--connections N] [--concurrency C]`);
    opts[key] = Number(argv[i + 1]);
  }
  return opts;
}

// The child: listen, say READY, print the young generation's size when
// stdin ends, then exit.
function serverSource(make) {
  return `const server = ${make};
    server.listen(0, '127.0.0.1', () => console.log('READY ' + server.address().port));
    process.stdin.resume();
    process.stdin.on('end', () => {
      const young = require('node:v8').getHeapSpaceStatistics().find((s) => s.space_name === 'new_space');
      console.log('YOUNG ' + young.space_size);
      process.exit(0);
    });`;
}

// Open `total` connections, `concurrency` at a time; each sends the
// upgrade request and waits for the server to close it.
function load(port, total, concurrency) {
  return new Promise((resolve, reject) => {
    let opened = 0;
    let closed = 0;
    const timer = setTimeout(() => reject(new Error(`only ${closed} of ${total} connections closed in time`)), TIMEOUT_MS);
    const next = () => {
      if (opened >= total) return;
      opened += 1;
      const socket = net.connect(port, '127.0.0.1', () => socket.write(REQUEST));
      socket.on('error', () => {});
      socket.resume();
      socket.on('close', () => {
        closed += 1;
        if (closed === total) {
          clearTimeout(timer);
          resolve();
        } else {
          next();
        }
      });
    };
    for (let i = 0; i < Math.min(concurrency, total); i++) next();
  });
}

async function measure(name, make, opts) {
  const child = spawn(process.execPath, ['--trace-gc-nvp', '-e', serverSource(make)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = readline.createInterface({ input: child.stdout });
  let survived = 0;
  let allocated = 0;
  let scavenges = 0;
  let counting = false;
  let young = null;
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name}: no READY`)), TIMEOUT_MS);
    lines.on('line', (line) => {
      const ready = /^READY (\d+)$/.exec(line);
      if (ready) {
        clearTimeout(timer);
        counting = true;
        resolve(Number(ready[1]));
      }
      const size = /^YOUNG (\d+)$/.exec(line);
      if (size) young = Number(size[1]);
      if (!counting || !/ gc=s /.test(line)) return;
      const field = (key) => Number(new RegExp(` ${key}=(\\d+)`).exec(line)?.[1] || 0);
      survived += field('promoted') + field('new_space_survived');
      allocated += field('allocated');
      scavenges += 1;
    });
  });
  try {
    await load(port, opts.connections, opts.concurrency);
  } finally {
    child.stdin.end();
    await new Promise((resolve) => child.once('exit', resolve));
  }
  const per = (bytes) => `${Math.round(bytes / opts.connections).toLocaleString('en-US')} B`;
  console.log(`${name}: ${per(survived)} per connection survived ${scavenges} scavenges ` +
    `(${(survived / 1048576).toFixed(1)} MB in all; ${per(allocated)} allocated per connection); ` +
    `young generation at the end: ${young === null ? '?' : `${young / 1048576} MB`}`);
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  console.log(`${opts.connections} connections, ${opts.concurrency} at a time, Node ${process.version}`);
  for (const [name, make] of Object.entries(SERVERS)) await measure(name, make, opts);
}

main().catch((e) => {
  console.error(e.message);
  process.exit(1);
});
