'use strict';
// The express, koa and multiplex examples, each started as a child process
// on a free port: the page and the client libraries are served, and a real
// sockjs-client (in Node) talks to the service over several transports.
// For the multiplex example the websocket-multiplex client script is run
// in Node on top of sockjs-client, and the raw "type,topic,payload" wire
// format is exercised as well.

const { describe, test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const vm = require('node:vm');
const SockJS = require('sockjs-client');
const { freePort } = require('./helpers/http.js');

const ROOT = path.join(__dirname, '..');
const START_MS = 10000;
const STOP_MS = 5000;
const WAIT_MS = 5000;
const SUITE_MS = 60000;
const TRANSPORTS = ['websocket', 'xhr-streaming', 'xhr-polling'];

const SOCKJS_CLIENT_FILE = require.resolve('sockjs-client/dist/sockjs.js');
const MULTIPLEX_CLIENT_FILE = require.resolve('websocket-multiplex/multiplex_client.js');

// ---------------------------------------------------------------- helpers

function deadlineError(ms, what, detail) {
  const tail = detail === undefined ? '' : `; so far: ${JSON.stringify(detail).slice(0, 800)}`;
  return new Error(`timed out after ${ms} ms waiting for ${what}${tail}`);
}

/** GET a URL; resolves with status, headers and the body as a string. */
function get(url, ms = WAIT_MS) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') });
      });
      res.on('error', fail);
    });
    const timer = setTimeout(() => {
      req.destroy();
      reject(deadlineError(ms, `a response to GET ${url}`));
    }, ms);
    function fail(err) {
      clearTimeout(timer);
      reject(err);
    }
    req.on('error', fail);
  });
}

/** Start examples/<name>/server.js on a free port; resolves once it printed its Listening line. */
async function startExample(name) {
  const port = await freePort();
  const child = spawn(process.execPath, [path.join(ROOT, 'examples', name, 'server.js')], {
    cwd: ROOT,
    env: { ...process.env, PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const proc = { child, port, base: `http://127.0.0.1:${port}`, stdout: '', stderr: '' };
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d) => {
    proc.stderr += d;
  });
  const expected = ` [*] Listening on 127.0.0.1:${port}`;
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      done();
      reject(new Error(`${name} example did not print "${expected}" within ${START_MS} ms; ` +
        `stdout ${JSON.stringify(proc.stdout)}, stderr ${JSON.stringify(proc.stderr)}`));
    }, START_MS);
    const onData = (d) => {
      proc.stdout += d;
      if (proc.stdout.split('\n').includes(expected)) {
        done();
        resolve();
      }
    };
    const onExit = (code, signal) => {
      done();
      reject(new Error(`${name} example exited before listening (code ${code}, signal ${signal}); ` +
        `stdout ${JSON.stringify(proc.stdout)}, stderr ${JSON.stringify(proc.stderr)}`));
    };
    function done() {
      clearTimeout(timer);
      child.removeListener('exit', onExit);
    }
    child.stdout.on('data', onData);
    child.on('exit', onExit);
  });
  return proc;
}

/** Stop a child: SIGTERM, then SIGKILL if it lingers; bounded. */
async function stopExample(proc) {
  if (!proc) return;
  const { child } = proc;
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const escalate = setTimeout(() => child.kill('SIGKILL'), STOP_MS);
  await exited;
  clearTimeout(escalate);
}

/**
 * An ordered record of events with a read cursor: next() hands out the
 * events in arrival order, waiting (bounded) for one that has not come yet.
 */
class EventLog {
  constructor(label) {
    this.label = label;
    this.events = [];
    this.cursor = 0;
    this.wake = null;
  }

  push(type, data) {
    this.events.push(data === undefined ? { type } : { type, data });
    if (this.wake) this.wake();
  }

  next(what, ms = WAIT_MS) {
    if (this.cursor < this.events.length) return Promise.resolve(this.events[this.cursor++]);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.wake = null;
        reject(deadlineError(ms, `${this.label}: ${what}`, this.events));
      }, ms);
      this.wake = () => {
        this.wake = null;
        clearTimeout(timer);
        resolve(this.events[this.cursor++]);
      };
    });
  }

  /** Everything after the cursor, without waiting. */
  rest() {
    return this.events.slice(this.cursor);
  }
}

/** Wire a WebSocket-like object's onopen/onmessage/onclose into an EventLog. */
function record(target, label) {
  const log = new EventLog(label);
  target.onopen = () => log.push('open');
  target.onmessage = (e) => log.push('message', e.data);
  target.onclose = (e) => log.push('close', e && e.code !== undefined ? { code: e.code, reason: e.reason } : undefined);
  return log;
}

/** Open a sockjs-client connection restricted to one transport; resolves after 'open'. */
async function openClient(url, transport) {
  const sock = new SockJS(url, null, { transports: [transport] });
  const log = record(sock, `${transport} client of ${url}`);
  const first = await log.next('the connection to open');
  assert.deepEqual(first, { type: 'open' }, `first event on ${transport}`);
  assert.equal(sock.transport, transport);
  return { sock, log };
}

/** Close a client and wait (bounded) for its close event. */
async function closeClient({ sock, log }) {
  sock.close();
  let ev;
  do {
    ev = await log.next('the connection to close');
  } while (ev.type !== 'close');
  assert.deepEqual(ev.data, { code: 1000, reason: 'Normal closure' });
}

/** Last-resort cleanup for clients a failed test left open. */
function closeQuietly(sock) {
  if (sock && sock.readyState !== SockJS.CLOSED) sock.close();
}

/** The websocket-multiplex browser client, evaluated in this Node process. */
function loadMultiplexClient() {
  const source = fs.readFileSync(MULTIPLEX_CLIENT_FILE, 'utf8');
  const factory = vm.runInThisContext(`(function () {\n${source}\nreturn WebSocketMultiplex;\n})`, {
    filename: MULTIPLEX_CLIENT_FILE,
  });
  return factory();
}

// ---------------------------------------------------------------- shared checks

function staticChecks(name, getProc, extraFiles) {
  test(`${name}: prints exactly one Listening line`, () => {
    const { stdout, port } = getProc();
    const lines = stdout.split('\n').filter((l) => l.includes('Listening on'));
    assert.deepEqual(lines, [` [*] Listening on 127.0.0.1:${port}`]);
  });

  test(`${name}: GET / serves index.html`, async () => {
    const r = await get(`${getProc().base}/`);
    assert.equal(r.status, 200);
    assert.match(r.headers['content-type'], /^text\/html/);
    assert.equal(r.body, fs.readFileSync(path.join(ROOT, 'examples', name, 'index.html'), 'utf8'));
    assert.ok(r.body.includes('<script src="/sockjs.js"></script>'), 'the page loads sockjs-client locally');
    assert.ok(!/https?:\/\//.test(r.body), 'the page loads nothing from another host');
  });

  const files = { '/sockjs.js': SOCKJS_CLIENT_FILE, ...extraFiles };
  for (const [route, file] of Object.entries(files)) {
    test(`${name}: GET ${route} serves ${path.relative(ROOT, file)}`, async () => {
      const r = await get(`${getProc().base}${route}`);
      assert.equal(r.status, 200);
      assert.match(r.headers['content-type'], /javascript/);
      assert.ok(r.body === fs.readFileSync(file, 'utf8'), `body of ${route} is the file's content`);
    });
  }

  test(`${name}: unknown paths answer 404`, async () => {
    const r = await get(`${getProc().base}/no-such-file.txt`);
    assert.equal(r.status, 404);
  });
}

function prefixChecks(name, getProc, prefix) {
  test(`${name}: ${prefix} is a SockJS endpoint`, async () => {
    const { base } = getProc();
    const welcome = await get(`${base}${prefix}`);
    assert.equal(welcome.status, 200);
    assert.equal(welcome.body, 'Welcome to SockJS!\n');
    const info = await get(`${base}${prefix}/info`);
    assert.equal(info.status, 200);
    const body = JSON.parse(info.body);
    assert.equal(body.websocket, true);
    assert.equal(typeof body.entropy, 'number');
  });
}

function noErrorsCheck(name, getProc) {
  test(`${name}: nothing was written to stderr`, () => {
    assert.equal(getProc().stderr, '');
  });
}

// ---------------------------------------------------------------- echo examples

for (const name of ['express', 'koa']) {
  describe(`examples/${name}`, { timeout: SUITE_MS }, () => {
    let proc;
    const clients = [];

    before(async () => {
      proc = await startExample(name);
    });

    after(async () => {
      for (const c of clients) closeQuietly(c);
      await stopExample(proc);
    });

    staticChecks(name, () => proc, {});
    prefixChecks(name, () => proc, '/echo');

    for (const transport of TRANSPORTS) {
      test(`${name}: sockjs-client over ${transport} opens, echoes and closes`, async () => {
        const client = await openClient(`${proc.base}/echo`, transport);
        clients.push(client.sock);
        const messages = ['hello', 'comma, separated', 'unicode \u00e9\u4e2d\u{1F600}', '{"json":[1,2]}'];
        for (const m of messages) client.sock.send(m);
        for (const m of messages) {
          assert.deepEqual(await client.log.next(`the echo of ${JSON.stringify(m)}`), { type: 'message', data: m });
        }
        await closeClient(client);
        assert.deepEqual(client.log.rest(), []);
      });
    }

    test(`${name}: two clients get only their own echoes`, async () => {
      const a = await openClient(`${proc.base}/echo`, 'websocket');
      const b = await openClient(`${proc.base}/echo`, 'xhr-polling');
      clients.push(a.sock, b.sock);
      a.sock.send('from a');
      b.sock.send('from b');
      assert.deepEqual(await a.log.next('a\'s echo'), { type: 'message', data: 'from a' });
      assert.deepEqual(await b.log.next('b\'s echo'), { type: 'message', data: 'from b' });
      await closeClient(a);
      await closeClient(b);
      assert.deepEqual(a.log.rest(), []);
      assert.deepEqual(b.log.rest(), []);
    });

    noErrorsCheck(name, () => proc);
  });
}

// ---------------------------------------------------------------- multiplex example

describe('examples/multiplex', { timeout: SUITE_MS }, () => {
  let proc;
  let WebSocketMultiplex;
  const clients = [];

  before(async () => {
    WebSocketMultiplex = loadMultiplexClient();
    proc = await startExample('multiplex');
  });

  after(async () => {
    for (const c of clients) closeQuietly(c);
    await stopExample(proc);
  });

  staticChecks('multiplex', () => proc, { '/multiplex.js': MULTIPLEX_CLIENT_FILE });
  prefixChecks('multiplex', () => proc, '/multiplex');

  test('multiplex: the page loads the multiplex client and opens ann, bob and carl', async () => {
    const r = await get(`${proc.base}/`);
    assert.ok(r.body.includes('<script src="/multiplex.js"></script>'));
    assert.ok(r.body.includes("new SockJS('/multiplex')"));
    for (const ch of ['ann', 'bob', 'carl']) assert.ok(r.body.includes(`multiplexer.channel('${ch}')`), ch);
  });

  for (const transport of TRANSPORTS) {
    test(`multiplex: websocket-multiplex client over ${transport}: ann, bob and carl behave`, async () => {
      const sock = new SockJS(`${proc.base}/multiplex`, null, { transports: [transport] });
      clients.push(sock);
      const sockLog = record(sock, `${transport} connection`);
      const multiplexer = new WebSocketMultiplex(sock);
      const ann = multiplexer.channel('ann');
      const bob = multiplexer.channel('bob');
      const carl = multiplexer.channel('carl');
      const annLog = record(ann, `ann over ${transport}`);
      const bobLog = record(bob, `bob over ${transport}`);
      const carlLog = record(carl, `carl over ${transport}`);

      // The channels subscribe once the connection is open.
      for (const log of [annLog, bobLog, carlLog]) {
        assert.deepEqual(await log.next('the channel to open'), { type: 'open' });
      }
      assert.equal(sock.transport, transport);

      // Greetings.
      assert.deepEqual(await annLog.next('ann\'s greeting'), { type: 'message', data: 'Ann says hi!' });
      assert.deepEqual(await bobLog.next('bob\'s greeting'), { type: 'message', data: "Bob doesn't agree." });

      // carl says goodbye and closes his channel from the server side.
      assert.deepEqual(await carlLog.next('carl\'s goodbye'), { type: 'message', data: 'Carl says goodbye!' });
      assert.deepEqual(await carlLog.next('carl\'s channel to close'), { type: 'close' });
      assert.equal('carl' in multiplexer.channels, false, 'the client dropped the closed channel');

      // ann and bob answer per message, payload commas included.
      ann.send('hello');
      ann.send('a, b, c');
      bob.send('tea');
      assert.deepEqual(await annLog.next('ann\'s answer'), { type: 'message', data: 'Ann nods: hello' });
      assert.deepEqual(await annLog.next('ann\'s second answer'), { type: 'message', data: 'Ann nods: a, b, c' });
      assert.deepEqual(await bobLog.next('bob\'s answer'), { type: 'message', data: 'Bob says no to: tea' });

      // The SockJS connection outlived carl's channel.
      assert.equal(sock.readyState, SockJS.OPEN);
      assert.deepEqual(sockLog.events.filter((e) => e.type !== 'message'), [{ type: 'open' }]);

      // Closing one channel from the client leaves the other working.
      ann.close();
      assert.deepEqual(await annLog.next('ann\'s channel to close'), { type: 'close' });
      bob.send('coffee');
      assert.deepEqual(await bobLog.next('bob\'s answer after ann left'), { type: 'message', data: 'Bob says no to: coffee' });

      sock.close();
      let ev;
      do {
        ev = await sockLog.next('the connection to close');
      } while (ev.type !== 'close');
      assert.deepEqual(ev.data, { code: 1000, reason: 'Normal closure' });
      assert.deepEqual(annLog.rest(), []);
      assert.deepEqual(bobLog.rest(), []);
      assert.deepEqual(carlLog.rest(), []);
    });
  }

  test('multiplex: the raw wire format (sub/msg/uns) over one sockjs-client connection', async () => {
    const client = await openClient(`${proc.base}/multiplex`, 'websocket');
    clients.push(client.sock);
    const { sock, log } = client;
    const next = async (what) => {
      const ev = await log.next(what);
      assert.equal(ev.type, 'message', `${what}: ${JSON.stringify(ev)}`);
      return ev.data;
    };

    // Unknown topics and messages before a subscription are ignored; the
    // following subscription is answered, which shows they were read.
    sock.send('sub,nobody,');
    sock.send('msg,nobody,anyone?');
    sock.send('msg,ann,too early');
    sock.send('sub,ann,');
    assert.equal(await next('ann\'s greeting'), 'msg,ann,Ann says hi!');

    sock.send('msg,ann,hello');
    assert.equal(await next('ann\'s answer'), 'msg,ann,Ann nods: hello');

    sock.send('sub,bob');
    assert.equal(await next('bob\'s greeting'), "msg,bob,Bob doesn't agree.");
    sock.send('msg,bob,x,y');
    assert.equal(await next('bob\'s answer'), 'msg,bob,Bob says no to: x,y');

    // carl greets, then unsubscribes himself.
    sock.send('sub,carl,');
    assert.equal(await next('carl\'s goodbye'), 'msg,carl,Carl says goodbye!');
    assert.equal(await next('carl\'s unsubscribe'), 'uns,carl');

    // After the client unsubscribes ann, her messages are ignored until a
    // new subscription, which greets again.
    sock.send('uns,ann,');
    sock.send('msg,ann,are you there?');
    sock.send('msg,bob,ping');
    assert.equal(await next('bob\'s answer'), 'msg,bob,Bob says no to: ping');
    sock.send('sub,ann,');
    assert.equal(await next('ann\'s second greeting'), 'msg,ann,Ann says hi!');

    // carl can be visited again, with the same result.
    sock.send('sub,carl');
    assert.equal(await next('carl\'s second goodbye'), 'msg,carl,Carl says goodbye!');
    assert.equal(await next('carl\'s second unsubscribe'), 'uns,carl');

    await closeClient(client);
    assert.deepEqual(log.rest(), []);
  });

  noErrorsCheck('multiplex', () => proc);
});
