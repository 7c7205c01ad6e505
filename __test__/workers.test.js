'use strict';
// The package in worker threads and in cluster workers, over real sockets on
// 127.0.0.1: every thread or process runs its own engine on the one shared
// runtime of its process; a worker thread that ends closes its own sessions
// (before, they stayed open, served for nobody) and leaves the others
// serving; cluster workers adopt the descriptors the primary hands them,
// and end on `disconnect()` once their sessions have closed.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const readline = require('node:readline');
const { spawn } = require('node:child_process');
const { Worker } = require('node:worker_threads');
const W = require('./helpers/ws-frames.js');

const T = 5000; // bound on each wait
const ECHO = path.join(__dirname, 'fixtures', 'thread-echo.js');
const PRIMARY = path.join(__dirname, 'fixtures', 'cluster-primary.js');

/** A worker thread serving thread-echo.js; resolves once it listens. */
async function startWorker() {
  const worker = new Worker(ECHO);
  const [{ who, port }] = await W.waitEvent(worker, 'message', T, 'the worker to listen');
  return { worker, who, port };
}

/** Send one message on a SockJS session and return the echo's messages. */
async function echo({ ws, queue }, message, what) {
  ws.send(JSON.stringify([message]));
  return W.arrayFrame(await queue.next(T, what));
}

test('worker threads: each has its own engine; one ending closes its sessions (1001) while the other serves on', async () => {
  const workers = [];
  const clients = [];
  try {
    const a = await startWorker();
    workers.push(a.worker);
    const b = await startWorker();
    workers.push(b.worker);
    assert.notEqual(a.who, b.who);

    const sessionA = await W.openSession(a.port);
    clients.push(sessionA.ws);
    const rawA = await W.openClient(`ws://127.0.0.1:${a.port}/echo/websocket`);
    clients.push(rawA.ws);
    const sessionB = await W.openSession(b.port);
    clients.push(sessionB.ws);

    assert.deepEqual(await echo(sessionA, 'one', 'the echo from worker A'), [`${a.who}:one`]);
    rawA.ws.send('raw');
    assert.equal(await rawA.queue.next(T, 'the raw echo from worker A'), `${a.who}:raw`);
    assert.deepEqual(await echo(sessionB, 'two', 'the echo from worker B'), [`${b.who}:two`]);

    await W.withTimeout(a.worker.terminate(), T, 'worker A to terminate');

    // Worker A's sessions close as at a process's exit.
    assert.equal(await sessionA.queue.next(T, "worker A's session to close"), 'c[1001,"Server shutting down"]');
    await sessionA.queue.until((q) => q.closed, T, "worker A's SockJS WebSocket to close");
    await rawA.queue.until((q) => q.closed, T, "worker A's raw WebSocket to close");
    assert.equal(rawA.queue.closed.code, 1001);

    // Worker B's are untouched, and it still takes new ones.
    assert.deepEqual(await echo(sessionB, 'three', 'the echo from worker B after A ended'), [`${b.who}:three`]);
    const another = await W.openSession(b.port);
    clients.push(another.ws);
    assert.deepEqual(await echo(another, 'four', 'a new session on worker B'), [`${b.who}:four`]);
  } finally {
    await Promise.all(clients.map((ws) => W.closeClient(ws)));
    await Promise.all(workers.map((w) => w.terminate()));
  }
});

/** The cluster's primary as a child process, its stdout read line by line. */
function startCluster() {
  const child = spawn(process.execPath, [PRIMARY], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = [];
  const waiters = new Set();
  readline.createInterface({ input: child.stdout }).on('line', (line) => {
    lines.push(line);
    for (const waiter of [...waiters]) waiter();
  });
  const exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
  /** The first line starting with `prefix`, waiting up to T for it. */
  const line = (prefix) =>
    W.withTimeout(
      new Promise((resolve) => {
        const check = () => {
          const found = lines.find((l) => l.startsWith(prefix));
          if (found) {
            waiters.delete(check);
            resolve(found);
          }
        };
        waiters.add(check);
        check();
      }),
      T,
      `the primary to print "${prefix}" (printed: ${JSON.stringify(lines)})`,
    );
  return { child, lines, line, exited };
}

test('cluster workers adopt the connections the primary hands them, and end on disconnect once their sessions close', async () => {
  const primary = startCluster();
  const kept = new Map(); // who -> the one session kept open on that worker
  try {
    const [, port, ...workers] = (await primary.line('READY ')).split(' ');
    assert.equal(workers.length, 2);

    // The primary hands connections out in turn: open sessions until both
    // workers have answered (bounded), keeping one open on each.
    for (let i = 0; i < 20 && kept.size < 2; i += 1) {
      const session = await W.openSession(Number(port));
      const [answer] = await echo(session, `hello ${i}`, `echo ${i}`);
      const who = answer.slice(0, answer.indexOf(':'));
      assert.equal(answer, `${who}:hello ${i}`);
      assert.ok(workers.includes(who), `answered by ${who}, not one of ${workers}`);
      if (kept.has(who)) await W.closeClient(session.ws);
      else kept.set(who, session);
    }
    assert.equal(kept.size, 2, 'both workers served a session');

    // Disconnected workers stop listening but serve their open sessions...
    primary.child.stdin.write('disconnect\n');
    for (const [who, session] of kept) {
      assert.deepEqual(await echo(session, 'still here', `${who} after disconnect`), [`${who}:still here`]);
    }
    assert.equal(primary.lines.filter((l) => l.startsWith('EXIT ')).length, 0, 'no worker ended with sessions open');

    // ...and end, cleanly, once those have closed.
    for (const session of kept.values()) await W.closeClient(session.ws);
    kept.clear();
    for (const who of workers) assert.equal(await primary.line(`EXIT ${who} `), `EXIT ${who} 0`);
    assert.equal(await W.withTimeout(primary.exited, T, 'the primary to exit'), 0);
  } finally {
    await Promise.all([...kept.values()].map((s) => W.closeClient(s.ws)));
    primary.child.stdin.end();
    if (primary.child.exitCode === null) primary.child.kill();
  }
});
