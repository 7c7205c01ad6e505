'use strict';
// The server side of the soak test, run as a child process so that its
// memory and open descriptors can be measured on their own:
//
//   node __test__/helpers/soak-server.js      (prints "port N" once listening)
//
// It loads the package from the project root, or the one named by
// SOCKJS_IMPL, and serves on 127.0.0.1 (a free port):
//   /soak/...   a SockJS echo server. A message "flood:<n>" is answered by n
//               numbered messages "f<i>:<padding>" written with backpressure
//               (write until it returns false, go on at 'drain').
//   /stats      JSON counters (outside the prefix, plain HTTP): rss, fds,
//               open, opened, closed, duplicateCloses, closedWithoutOpen and
//               a few more (see stats()). "/stats?gc=1" collects garbage
//               first when Node runs with --expose-gc.
// Every 'connection' and every 'close' is counted per connection, against
// the set of connections open now: a session closed twice, announced twice,
// or closed while not in that set shows up in the counters.

const http = require('node:http');
const fs = require('node:fs');
const path = require('node:path');

const implPath = process.env.SOCKJS_IMPL || path.join(__dirname, '..', '..');
const sockjs = require(implPath);

// Size of the padding of each flood message: large enough that a flood of a
// few thousand messages is more than the kernel's socket buffers take in, so
// that a reader that stops reading really holds the server back.
const FLOOD_PAD = Number(process.env.SOAK_FLOOD_PAD) > 0 ? Number(process.env.SOAK_FLOOD_PAD) : 4096;
const FLOOD_MAX = 100000;

const counters = {
  opened: 0,
  closed: 0,
  duplicateCloses: 0, // connections that emitted 'close' more than once
  extraCloses: 0, // the 'close' events past the first, over all connections
  closedWithoutOpen: 0, // a first 'close' for an id that was not open
  duplicateOpens: 0, // 'connection' emitted twice for one connection
  dataAfterClose: 0, // 'data' on a connection that had emitted 'close'
  messages: 0,
  floods: 0,
  floodsDone: 0,
  floodsAborted: 0,
  floodMessages: 0,
  floodPauses: 0, // times write() returned false during a flood
  floodDrains: 0, // times a flood went on after 'drain'
};
const live = new Map(); // id -> { conn, at }, from 'connection' to 'close'
const announced = new WeakSet(); // every connection 'connection' was emitted for
const activeFloods = new Set(); // { written, n } of the floods under way

const echo = sockjs.createServer({
  heartbeat_delay: 1000,
  disconnect_delay: 300,
  // Small marks, so that backpressure engages quickly and a session that
  // ignored it would be closed (and the soak would see it) instead of
  // growing the server's memory.
  high_water_mark: 64 * 1024,
  max_buffered_bytes: 4 * 1024 * 1024,
  log: () => {},
});

echo.on('connection', (conn) => {
  if (announced.has(conn) || live.has(conn.id)) counters.duplicateOpens += 1;
  announced.add(conn);
  counters.opened += 1;
  live.set(conn.id, { conn, at: Date.now() });
  let closes = 0;
  conn.on('close', () => {
    closes += 1;
    if (closes === 1) {
      counters.closed += 1;
      if (!live.delete(conn.id)) counters.closedWithoutOpen += 1;
    } else {
      counters.extraCloses += 1;
      if (closes === 2) counters.duplicateCloses += 1;
    }
  });
  conn.on('data', (message) => {
    if (closes > 0) counters.dataAfterClose += 1;
    counters.messages += 1;
    const m = /^flood:(\d+)$/.exec(message);
    if (m) flood(conn, Math.min(Number(m[1]), FLOOD_MAX));
    else conn.write(message);
  });
});

/** Write n numbered messages to conn, pausing while write() says to. */
function flood(conn, n) {
  counters.floods += 1;
  const pad = 'x'.repeat(FLOOD_PAD);
  const state = { written: 0, n };
  activeFloods.add(state);
  let waiting = false;
  const finish = (aborted) => {
    activeFloods.delete(state);
    conn.removeListener('drain', onDrain);
    conn.removeListener('close', onClose);
    if (aborted) counters.floodsAborted += 1;
    else counters.floodsDone += 1;
  };
  const pump = () => {
    // Bounded by n; leaves the loop at the first false.
    while (state.written < n) {
      if (conn.readyState !== 1) {
        finish(true);
        return;
      }
      const more = conn.write(`f${state.written}:${pad}`);
      state.written += 1;
      counters.floodMessages += 1;
      if (!more && state.written < n) {
        counters.floodPauses += 1;
        waiting = true;
        return;
      }
    }
    finish(false);
  };
  function onDrain() {
    if (!waiting) return;
    waiting = false;
    counters.floodDrains += 1;
    pump();
  }
  function onClose() {
    if (activeFloods.has(state)) finish(true);
  }
  conn.on('drain', onDrain);
  conn.on('close', onClose);
  pump();
}

/** Resident set size in bytes: /proc/self/status VmRSS, else memoryUsage(). */
function rssBytes() {
  try {
    const m = /^VmRSS:\s+(\d+) kB$/m.exec(fs.readFileSync('/proc/self/status', 'utf8'));
    if (m) return Number(m[1]) * 1024;
  } catch {
    // Not Linux: fall back on Node's figure.
  }
  return process.memoryUsage().rss;
}

function stats() {
  const mem = process.memoryUsage();
  // Sizes of the facade's own tables, when the implementation has them
  // (sockjs-node 0.3.24 does not): they must be empty once all is closed.
  const size = (m) => (m && typeof m.size === 'number' ? m.size : null);
  return {
    pid: process.pid,
    uptime: process.uptime(),
    rss: rssBytes(),
    heapUsed: mem.heapUsed,
    external: mem.external,
    fds: fs.readdirSync('/proc/self/fd').length,
    open: live.size,
    openByProtocol: [...live.values()].reduce((acc, { conn }) => {
      acc[conn.protocol] = (acc[conn.protocol] || 0) + 1;
      return acc;
    }, {}),
    // A few of the sessions still open, oldest first: what they are and
    // for how long they have been open (to tell a leak from work in flight).
    openSample: [...live.values()].slice(0, 10).map(({ conn, at }) => ({
      url: conn.url,
      protocol: conn.protocol,
      ageMs: Date.now() - at,
      readyState: conn.readyState,
    })),
    ...counters,
    floodsActive: activeFloods.size,
    floodWrittenActive: [...activeFloods].reduce((sum, f) => sum + f.written, 0),
    implSessions: size(echo._sessions),
    implReceivers: size(echo._receivers),
    implSockets: size(echo._sockets),
  };
}

const httpServer = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://127.0.0.1');
  if (url.pathname === '/stats' && req.method === 'GET') {
    if (url.searchParams.get('gc') === '1' && typeof global.gc === 'function') global.gc();
    const body = JSON.stringify(stats());
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
    return;
  }
  res.writeHead(404, { 'content-type': 'text/plain' });
  res.end('not here');
});
httpServer.on('upgrade', (req, socket) => socket.destroy());

echo.installHandlers(httpServer, { prefix: '/soak' });

httpServer.listen(0, '127.0.0.1', () => {
  process.stdout.write(`port ${httpServer.address().port}\n`);
});

// Under the soak test (SOAK_WATCH_STDIN=1, stdin a pipe from the parent),
// a parent that dies without killing this process leaves stdin at EOF:
// then there is no reason to stay.
if (process.env.SOAK_WATCH_STDIN === '1') {
  process.stdin.on('end', () => process.exit(0));
  process.stdin.resume();
}
