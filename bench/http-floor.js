'use strict';
// How close the HTTP transports come to what node:http itself costs: the
// xhr-polling and xhr-streaming echoes of run.js, against this package and
// against a bare node:http app that answers the same requests with the
// same bytes the load generator checks and does nothing else (no SockJS
// escaping, heartbeats, timeouts, CORS or cache headers, logging).
//
//   node bench/http-floor.js [--reps 3]
//
// "Ours" is the repository's own build (run `npm run build` first); the
// load generator is run.js's (run `node bench/run.js --quick` once to build
// it). The server is pinned to core 0 and the generator to core 1, and the
// two servers alternate. Prints server CPU per message (utime + stime of
// the process from /proc over the measured phase), median of the reps.
// A measurement to read, not a pass/fail check.

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const readline = require('node:readline');
const { CLK_TCK, median, sampleProcess } = require('./proc.js');

const ROOT = path.resolve(__dirname, '..');
const LOADGEN = path.join(__dirname, 'loadgen', 'target', 'release', 'sockjs-loadgen');
const LIMIT_MS = 60000;

// The bare app: sessions in a Map; xhr_send's messages go back to the
// session's open stream at once, or wait for its next poll.
const FLOOR_APP = `
const http = require('node:http');
const sessions = new Map();
const JS = 'application/javascript; charset=UTF-8';
const frame = (messages) => 'a' + JSON.stringify(messages) + '\\n';
function answerPoll(s) {
  const body = frame(s.queue);
  s.queue = [];
  const res = s.poll;
  s.poll = null;
  res.writeHead(200, ['Content-Type', JS, 'Content-Length', String(Buffer.byteLength(body))]);
  res.end(body);
}
const server = http.createServer((req, res) => {
  const [, , , id, kind] = req.url.split('/');
  let s = sessions.get(id);
  if (kind === 'xhr_send') {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      for (const m of JSON.parse(Buffer.concat(chunks).toString())) s.queue.push(m);
      res.writeHead(204, ['Content-Type', 'text/plain; charset=UTF-8']);
      res.end();
      if (s.stream) {
        s.stream.write(frame(s.queue));
        s.queue = [];
      } else if (s.poll) {
        answerPoll(s);
      }
    });
  } else if (kind === 'xhr_streaming') {
    sessions.set(id, { queue: [], poll: null, stream: res });
    res.writeHead(200, ['Content-Type', JS]);
    res.write('h'.repeat(2048) + '\\n');
    res.write('o\\n');
  } else if (!s) {
    sessions.set(id, { queue: [], poll: null, stream: null });
    res.writeHead(200, ['Content-Type', JS, 'Content-Length', '2']);
    res.end('o\\n');
  } else {
    s.poll = res;
    if (s.queue.length) answerPoll(s);
  }
});
server.listen(0, '127.0.0.1', () => process.stdout.write('READY ' + server.address().port + '\\n'));
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
`;

const SERVERS = [
  ['ours', ['taskset', '-c', '0', process.execPath, path.join(__dirname, 'app.js')], { SOCKJS_PATH: ROOT }],
  ['node:http alone', ['taskset', '-c', '0', process.execPath, '-e', FLOOR_APP], {}],
];

// One run: a fresh server, the echo on `transport`; server CPU us/message.
function runOnce(command, env, transport) {
  return new Promise((resolve, reject) => {
    const server = spawn(command[0], command.slice(1), {
      env: { ...process.env, ...env, PORT: '0' },
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    const timer = setTimeout(() => {
      server.kill();
      reject(new Error(`${transport}: no result within ${LIMIT_MS} ms`));
    }, LIMIT_MS);
    const done = (err, value) => {
      clearTimeout(timer);
      server.kill();
      if (err) reject(err);
      else resolve(value);
    };
    readline.createInterface({ input: server.stdout }).once('line', (line) => {
      const port = /^READY (\d+)$/.exec(line);
      if (!port) return done(new Error(`unexpected server output: ${line}`));
      const gen = spawn('taskset', ['-c', '1', LOADGEN, 'echo', '--transport', transport, '--sessions', '100',
        '--inflight', '1', '--warmup-ms', '1000', '--duration-ms', '3000', '--max-messages', '2000000',
        '--port', port[1], '--sync'], { stdio: ['pipe', 'pipe', 'inherit'] });
      const at = {};
      readline.createInterface({ input: gen.stdout }).on('line', (l) => {
        const event = JSON.parse(l);
        if (event.event === 'checkpoint') {
          at[event.name] = sampleProcess(server.pid).ticks;
          gen.stdin.write('go\n');
        } else if (event.event === 'result') {
          if (event.errors || !event.messages) return done(new Error(`${transport}: ${event.errors} errors`));
          const us = ((at['measure-end'] - at['measure-start']) * 1e6) / CLK_TCK;
          done(null, us / event.messages);
        }
      });
    });
  });
}

async function main() {
  const repsAt = process.argv.indexOf('--reps');
  const reps = repsAt === -1 ? 3 : Math.min(Math.max(Number(process.argv[repsAt + 1]) || 3, 1), 9);
  if (!fs.existsSync(LOADGEN)) throw new Error('no load generator: run `node bench/run.js --quick` once');
  for (const transport of ['xhr-polling', 'xhr-streaming']) {
    const cpu = new Map(SERVERS.map(([name]) => [name, []]));
    for (let rep = 0; rep < reps; rep++) {
      for (const [name, command, env] of rep % 2 ? [...SERVERS].reverse() : SERVERS) {
        cpu.get(name).push(await runOnce(command, env, transport));
      }
    }
    const ours = median(cpu.get('ours'));
    const floor = median(cpu.get('node:http alone'));
    console.log(`${transport} echo, 100 x 1: ours ${ours.toFixed(1)} us/msg, node:http alone ${floor.toFixed(1)} ` +
      `us/msg (ours ${(ours / floor).toFixed(2)}x)`);
  }
}

main().catch((e) => {
  console.error(e.message);
  process.exit(1);
});
