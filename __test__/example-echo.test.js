'use strict';
// The echo example (examples/echo/server.js) started as a child process:
// it listens on the given port, serves its page and sockjs-client, and its
// /echo service echoes over xhr-polling.

const test = require('node:test');
const { before, after } = test;
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const path = require('node:path');
const fs = require('node:fs');

const { abortSession, echoRoundTrip, freePort, get, openXhrSession, sessionUrl } = require('./helpers/http');

const ROOT = path.join(__dirname, '..');
const SERVER = path.join(ROOT, 'examples', 'echo', 'server.js');
const START_MS = 10000;

let child;
let base;
let output = '';

function waitForListening(proc, port) {
  const expected = ` [*] Listening on 127.0.0.1:${port}`;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`example did not print "${expected}" within ${START_MS} ms; output: ${JSON.stringify(output)}`));
    }, START_MS);
    const onData = () => {
      if (output.split('\n').includes(expected)) {
        cleanup();
        resolve();
      }
    };
    const onExit = (code, signal) => {
      cleanup();
      reject(new Error(`example exited early (code ${code}, signal ${signal}); output: ${JSON.stringify(output)}`));
    };
    function cleanup() {
      clearTimeout(timer);
      proc.stdout.removeListener('data', onData);
      proc.removeListener('exit', onExit);
    }
    proc.stdout.on('data', onData);
    proc.on('exit', onExit);
    onData();
  });
}

before(async () => {
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  child = spawn(process.execPath, [SERVER], {
    cwd: ROOT,
    env: { ...process.env, PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  child.stdout.on('data', (d) => {
    output += d;
  });
  child.stderr.on('data', (d) => {
    output += d;
  });
  await waitForListening(child, port);
});

after(async () => {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
  await exited;
  clearTimeout(timer);
});

test('example prints exactly one Listening line', () => {
  const lines = output.split('\n').filter((l) => l.includes('Listening on'));
  assert.equal(lines.length, 1, output);
  assert.match(lines[0], /^ \[\*\] Listening on 127\.0\.0\.1:\d+$/);
});

test('example: GET / serves index.html', async () => {
  const r = await get(`${base}/`);
  assert.equal(r.status, 200);
  assert.match(r.headers['content-type'], /^text\/html/);
  assert.equal(r.body, fs.readFileSync(path.join(ROOT, 'examples', 'echo', 'index.html'), 'utf8'));
  assert.ok(r.body.includes('<script src="/sockjs.js"></script>'));
  assert.ok(r.body.includes("new SockJS('/echo')"));
});

test('example: GET /sockjs.js serves the sockjs-client bundle', async () => {
  const r = await get(`${base}/sockjs.js`);
  assert.equal(r.status, 200);
  assert.match(r.headers['content-type'], /javascript/);
  const expected = fs.readFileSync(require.resolve('sockjs-client/dist/sockjs.js'), 'utf8');
  assert.equal(r.body.length, expected.length);
  assert.ok(r.body === expected, 'body is the sockjs-client dist file');
});

test('example: unknown static paths answer 404 and /echo is SockJS', async () => {
  assert.equal((await get(`${base}/nope.txt`)).status, 404);
  const g = await get(`${base}/echo`);
  assert.equal(g.status, 200);
  assert.equal(g.body, 'Welcome to SockJS!\n');
});

test('example: an xhr-polling session echoes a message', async () => {
  const url = sessionUrl(base);
  await openXhrSession(url);
  assert.deepEqual(await echoRoundTrip(url, ['hello example']), ['hello example']);
  await abortSession(url);
});
