'use strict';
// The JavaScript API: createServer, listen, installHandlers, middleware,
// listener().getHandler(), the SockJSConnection object on HTTP sessions
// (properties, readyState, write/end/close/destroy, events, streams) and the
// internals other projects patch or reach into (Session.prototype
// .decorateConnection as in webpack-dev-server, _session.recv.connection as
// in Meteor).

const test = require('node:test');
const { describe, before, after } = test;
const assert = require('node:assert/strict');
const EventEmitter = require('node:events');
const http = require('node:http');
const net = require('node:net');
const path = require('node:path');
const { execFile } = require('node:child_process');
const { Readable } = require('node:stream');
const WebSocket = require('ws');

const { startApp, sockjs, implPath } = require('./helpers/app');
const {
  HEADER_WHITELIST,
  PRELUDE,
  abortSession,
  closeServer,
  echoRoundTrip,
  get,
  listen,
  openStream,
  openXhrSession,
  post,
  sessionUrl,
  waitForEvent,
} = require('./helpers/http');

const quiet = { log: () => {} };
function nextConnection(server, ms = 3000) {
  return waitForEvent(server, 'connection', ms, "the server's 'connection' event").then(([c]) => c);
}

/** An http.Server with an app 404 listener, started on a free port. */
async function plainHttp() {
  const server = http.createServer((req, res) => {
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('app 404');
  });
  const base = await listen(server);
  return { server, base };
}

describe('module surface (no network)', () => {
  test('createServer() returns an EventEmitter', () => {
    const srv = sockjs.createServer(quiet);
    assert.ok(srv instanceof EventEmitter);
    let got = null;
    srv.on('custom', (v) => {
      got = v;
    });
    srv.emit('custom', 42);
    assert.equal(got, 42);
  });

  test('createServer() without options works', () => {
    const srv = sockjs.createServer();
    assert.ok(srv instanceof EventEmitter);
    assert.equal(typeof srv.installHandlers, 'function');
    assert.equal(typeof srv.listener, 'function');
    assert.equal(typeof srv.middleware, 'function');
  });

  test('listen() without an http server returns a Server', () => {
    const srv = sockjs.listen(undefined, quiet);
    assert.ok(srv instanceof EventEmitter);
    assert.equal(typeof srv.installHandlers, 'function');
  });

  test('middleware() returns a function with an .upgrade function', () => {
    const mw = sockjs.createServer(quiet).middleware({ prefix: '/mw' });
    assert.equal(typeof mw, 'function');
    assert.equal(typeof mw.upgrade, 'function');
  });

  test('listener(opts).getHandler() returns a function', () => {
    const listener = sockjs.createServer(quiet).listener({ prefix: '/l' });
    assert.equal(typeof listener.getHandler, 'function');
    assert.equal(typeof listener.getHandler(), 'function');
  });

  test('lib/transport exposes Session.prototype.decorateConnection', () => {
    const transport = require(path.join(implPath, 'lib', 'transport'));
    assert.equal(typeof transport.Session, 'function');
    assert.equal(typeof transport.Session.prototype.decorateConnection, 'function');
  });

  test("lib/transport's HEADER_WHITELIST is the list the connection tests check conn.headers against", () => {
    // decorateConnection copies the headers by name, not from this list:
    // the two must not drift apart.
    const transport = require(path.join(implPath, 'lib', 'transport'));
    assert.deepEqual(transport.HEADER_WHITELIST, HEADER_WHITELIST);
  });
});

describe('installing', () => {
  test('listen(http_server, options) installs handlers at options.prefix', async () => {
    const { server, base } = await plainHttp();
    try {
      const srv = sockjs.listen(server, { ...quiet, prefix: '/lst' });
      assert.ok(srv instanceof EventEmitter);
      srv.on('connection', (c) => c.on('data', (m) => c.write(m)));
      assert.equal((await get(`${base}/lst`)).body, 'Welcome to SockJS!\n');
      assert.equal((await get(`${base}/other`)).body, 'app 404');
      const url = sessionUrl(base, '/lst');
      await openXhrSession(url);
      assert.deepEqual(await echoRoundTrip(url, ['via listen']), ['via listen']);
      await abortSession(url);
    } finally {
      await closeServer(server);
    }
  });

  test("log('info'): one line per request, with its status, or (unfinished) while the response stays open", async () => {
    const { server, base } = await plainHttp();
    const lines = [];
    try {
      const srv = sockjs.createServer({ prefix: '/logged', log: (severity, line) => lines.push([severity, line]) });
      srv.installHandlers(server);
      srv.on('connection', (c) => c.on('data', (m) => c.write(m)));
      await get(`${base}/logged/info`);
      const url = sessionUrl(base, '/logged');
      await openXhrSession(url);
      assert.deepEqual(await echoRoundTrip(url, ['logged']), ['logged']);
      // Its xhr_streaming request stays open: logged as (unfinished).
      await abortSession(url);
      const info = lines.filter(([severity]) => severity === 'info').map(([, line]) => line);
      const path = new URL(url).pathname;
      const expected = [
        /^GET \/logged\/info 0ms 200$/,
        new RegExp(`^POST ${path}/xhr 0ms 200$`),
        new RegExp(`^POST ${path}/xhr_send \\d+ms 204$`),
        new RegExp(`^POST ${path}/xhr_streaming 0ms \\(unfinished\\)$`),
      ];
      for (const pattern of expected) {
        assert.ok(info.some((line) => pattern.test(line)), `a line like ${pattern} in ${JSON.stringify(info)}`);
      }
    } finally {
      await closeServer(server);
    }
  });

  test("an xhr_send is answered once its messages were delivered and the replies handed over, as sockjs-node does", async () => {
    const { server, base } = await plainHttp();
    const order = [];
    try {
      const srv = sockjs.createServer({ ...quiet, prefix: '/ordered' });
      srv.installHandlers(server);
      srv.on('connection', (c) => c.on('data', (m) => {
        order.push(`data ${m}`);
        c.write(m);
      }));
      // A listener added after the install still sees every request.
      server.on('request', (req, res) => {
        if (req.url.endsWith('/xhr_send')) res.on('finish', () => order.push('answered'));
      });
      const url = sessionUrl(base, '/ordered');
      await openXhrSession(url);
      assert.deepEqual(await echoRoundTrip(url, ['one', 'two']), ['one', 'two']);
      assert.deepEqual(order, ['data one', 'data two', 'answered']);
      await abortSession(url);
    } finally {
      await closeServer(server);
    }
  });

  test('createServer options (prefix) apply when installHandlers gets none', async () => {
    const { server, base } = await plainHttp();
    try {
      sockjs.createServer({ ...quiet, prefix: '/fromserver' }).installHandlers(server);
      assert.equal((await get(`${base}/fromserver`)).body, 'Welcome to SockJS!\n');
      assert.equal((await get(`${base}/`)).body, 'app 404');
    } finally {
      await closeServer(server);
    }
  });

  test('one Server installed at two prefixes and on two http servers serves all of them', async () => {
    const a = await plainHttp();
    const b = await plainHttp();
    try {
      const srv = sockjs.createServer(quiet);
      const prefixes = [];
      srv.on('connection', (c) => {
        prefixes.push(c.prefix);
        c.on('data', (m) => c.write(`${c.prefix}:${m}`));
      });
      srv.installHandlers(a.server, { prefix: '/one' });
      srv.installHandlers(a.server, { prefix: '/two' });
      srv.installHandlers(b.server, { prefix: '/three' });
      const targets = [
        [a.base, '/one'],
        [a.base, '/two'],
        [b.base, '/three'],
      ];
      for (const [base, prefix] of targets) {
        const url = sessionUrl(base, prefix);
        await openXhrSession(url);
        assert.deepEqual(await echoRoundTrip(url, ['m']), [`${prefix}:m`]);
        await abortSession(url);
      }
      assert.deepEqual(prefixes, ['/one', '/two', '/three']);
      // Each http server only serves its own prefixes.
      assert.equal((await get(`${b.base}/one`)).body, 'app 404');
      assert.equal((await get(`${a.base}/three`)).body, 'app 404');
    } finally {
      await closeServer(a.server);
      await closeServer(b.server);
    }
  });

  test('middleware(): handles URLs under its prefix (returns true), leaves others (returns false)', async () => {
    const srv = sockjs.createServer(quiet);
    srv.on('connection', (c) => c.on('data', (m) => c.write(m)));
    const mw = srv.middleware({ prefix: '/mw' });
    const results = [];
    const server = http.createServer((req, res) => {
      const handled = mw(req, res);
      results.push([req.url, handled]);
      if (!handled) {
        res.writeHead(418, { 'content-type': 'text/plain' });
        res.end('not sockjs');
      }
    });
    server.on('upgrade', (req, socket, head) => {
      if (!mw.upgrade(req, socket, head)) socket.destroy();
    });
    const base = await listen(server);
    try {
      assert.equal((await get(`${base}/mw`)).body, 'Welcome to SockJS!\n');
      const other = await get(`${base}/elsewhere`);
      assert.equal(other.status, 418);
      assert.equal(other.body, 'not sockjs');
      assert.deepEqual(results, [
        ['/mw', true],
        ['/elsewhere', false],
      ]);
      const url = sessionUrl(base, '/mw');
      await openXhrSession(url);
      assert.deepEqual(await echoRoundTrip(url, ['mw']), ['mw']);
      await abortSession(url);
    } finally {
      await closeServer(server);
    }
  });

  test('middleware().upgrade handles a raw websocket under its prefix', async () => {
    const srv = sockjs.createServer(quiet);
    srv.on('connection', (c) => c.on('data', (m) => c.write(m)));
    const mw = srv.middleware({ prefix: '/mw' });
    const server = http.createServer((req, res) => {
      if (!mw(req, res)) res.end();
    });
    server.on('upgrade', (req, socket, head) => {
      if (!mw.upgrade(req, socket, head)) socket.destroy();
    });
    const base = await listen(server);
    const ws = new WebSocket(`${base.replace('http', 'ws')}/mw/websocket`);
    try {
      await waitForEvent(ws, 'open', 3000, 'the websocket to open');
      const msg = waitForEvent(ws, 'message', 3000, 'the echo');
      ws.send('over upgrade');
      const [data] = await msg;
      assert.equal(data.toString(), 'over upgrade');
    } finally {
      ws.terminate();
      await closeServer(server);
    }
  });

  test('listener(opts).getHandler(): true for URLs under the prefix, false otherwise', async () => {
    const handler = sockjs.createServer(quiet).listener({ prefix: '/gh' }).getHandler();
    const results = [];
    const server = http.createServer((req, res) => {
      const handled = handler(req, res);
      results.push([req.url, handled]);
      if (!handled) res.end('fallback');
    });
    const base = await listen(server);
    try {
      const paths = ['/gh', '/gh/', '/gh/info', '/gh/a/b/xhr_send', '/ghx', '/g', '/', '/other/gh'];
      for (const p of paths) await get(base + p);
      assert.deepEqual(results, [
        ['/gh', true],
        ['/gh/', true],
        ['/gh/info', true],
        ['/gh/a/b/xhr_send', true],
        ['/ghx', false],
        ['/g', false],
        ['/', false],
        ['/other/gh', false],
      ]);
      assert.equal((await get(`${base}/gh`)).body, 'Welcome to SockJS!\n');
      assert.equal((await get(`${base}/ghx`)).body, 'fallback');
    } finally {
      await closeServer(server);
    }
  });
});

describe('connection object on HTTP sessions', () => {
  let app;
  before(async () => {
    app = await startApp({ server: { disconnect_delay: 200 } });
  });
  after(() => app.close());

  // An xhr_streaming session on the echo server with its open frame read;
  // the caller destroys `s`.
  async function openStreamingSession() {
    const url = sessionUrl(app.base);
    const connP = nextConnection(app.servers.echo);
    const s = openStream(`${url}/xhr_streaming`, { method: 'POST' });
    try {
      const conn = await connP;
      await s.readUntil((t) => t === `${PRELUDE}o\n`, 3000, 'the open frame');
      return { url, conn, s };
    } catch (e) {
      s.destroy();
      throw e;
    }
  }

  test('properties: id, headers whitelist, remote/local address, url, pathname, prefix, protocol', async () => {
    const url = sessionUrl(app.base);
    const connP = nextConnection(app.servers.echo);
    const s = openStream(`${url}/xhr_streaming?t=42`, {
      method: 'POST',
      headers: {
        'User-Agent': 'sockjs-api-test/1.0',
        Referer: 'http://referer.example.test/page',
        'X-Forwarded-For': '10.1.2.3',
        'Accept-Language': 'fr',
        'X-Client-IP': '10.0.0.1',
        'X-Forwarded-Host': 'forwarded.example.test',
        'X-Forwarded-Port': '8443',
        'X-Cluster-Client-IP': '10.0.0.2',
        Via: '1.1 proxy.example.test',
        'X-Real-IP': '10.0.0.3',
        'X-Forwarded-Proto': 'https',
        'X-SSL': 'on',
        DNT: '1',
        Cookie: 'secret=do-not-leak; JSESSIONID=x',
        Origin: 'http://origin.example.test',
        Authorization: 'Basic c2VjcmV0',
      },
    });
    try {
      const conn = await connP;
      await s.readUntil((t) => t === `${PRELUDE}o\n`, 3000, 'the open frame');
      assert.equal(typeof conn.id, 'string');
      assert.ok(conn.id.length > 0);
      assert.equal(conn.headers.host, `127.0.0.1:${app.port}`);
      assert.equal(conn.headers['user-agent'], 'sockjs-api-test/1.0');
      assert.equal(conn.headers.referer, 'http://referer.example.test/page');
      assert.equal(conn.headers['x-forwarded-for'], '10.1.2.3');
      assert.equal(conn.headers['accept-language'], 'fr');
      assert.equal(conn.headers.cookie, undefined);
      assert.equal(conn.headers.authorization, undefined);
      assert.equal(conn.headers['x-client-ip'], '10.0.0.1');
      assert.equal(conn.headers['x-forwarded-host'], 'forwarded.example.test');
      assert.equal(conn.headers['x-forwarded-port'], '8443');
      assert.equal(conn.headers['x-cluster-client-ip'], '10.0.0.2');
      assert.equal(conn.headers.via, '1.1 proxy.example.test');
      assert.equal(conn.headers['x-real-ip'], '10.0.0.3');
      assert.equal(conn.headers['x-forwarded-proto'], 'https');
      assert.equal(conn.headers['x-ssl'], 'on');
      assert.equal(conn.headers.dnt, '1');
      // Every whitelisted header was sent, and only those were copied.
      assert.deepEqual(Object.keys(conn.headers).sort(), [...HEADER_WHITELIST].sort());
      assert.equal(conn.remoteAddress, '127.0.0.1');
      assert.equal(conn.remotePort, s.req.socket.localPort);
      assert.equal(conn.address.address, '127.0.0.1');
      assert.equal(conn.address.port, app.port);
      const pathname = `${new URL(url).pathname}/xhr_streaming`;
      assert.equal(conn.url, `${pathname}?t=42`);
      assert.equal(conn.pathname, pathname);
      assert.equal(conn.prefix, '/echo');
      assert.equal(conn.protocol, 'xhr-streaming');
      assert.equal(conn.readyState, 1);
      assert.equal(conn.readable, true);
      assert.equal(conn.writable, true);
      assert.equal(conn.toString(), `<SockJSConnection ${conn.id}>`);
    } finally {
      s.destroy();
    }
  });

  // The listener table is our own small object (lib/transport.js); it must
  // behave as Node's null-prototype one does.
  test('conn as an EventEmitter: on, once, off, eventNames, listenerCount, removeAllListeners; no inherited names', async () => {
    const { conn, s } = await openStreamingSession();
    try {
      for (const name of ['toString', 'constructor', 'hasOwnProperty', '__proto__']) {
        assert.equal(conn.listenerCount(name), 0, name);
        assert.equal(conn.emit(name), false, name);
      }
      const heard = [];
      const a = (x) => heard.push(`a:${x}`);
      conn.on('custom', a);
      conn.once('custom', (x) => heard.push(`once:${x}`));
      conn.on('toString', (x) => heard.push(`toString:${x}`));
      assert.deepEqual(conn.eventNames().filter((n) => n === 'custom' || n === 'toString'), ['custom', 'toString']);
      assert.equal(conn.listenerCount('custom'), 2);
      conn.emit('custom', 1);
      conn.emit('custom', 2);
      conn.emit('toString', 3);
      assert.equal(String(conn), `<SockJSConnection ${conn.id}>`);
      conn.off('custom', a);
      assert.equal(conn.emit('custom', 4), false);
      assert.deepEqual(heard, ['a:1', 'once:1', 'a:2', 'toString:3']);
      conn.removeAllListeners();
      assert.deepEqual(conn.eventNames(), []);
      conn.on('custom', a);
      conn.emit('custom', 5);
      assert.deepEqual(heard.slice(-1), ['a:5']);
    } finally {
      s.destroy();
    }
  });

  test('two sessions get different connection ids', async () => {
    const ids = [];
    for (let i = 0; i < 2; i++) {
      const url = sessionUrl(app.base);
      const connP = nextConnection(app.servers.echo);
      await openXhrSession(url);
      ids.push((await connP).id);
      await abortSession(url);
    }
    assert.notEqual(ids[0], ids[1]);
  });

  for (const [protocol, method, suffix] of [
    ['xhr-polling', 'POST', 'xhr'],
    ['xhr-streaming', 'POST', 'xhr_streaming'],
    ['eventsource', 'GET', 'eventsource'],
    ['htmlfile', 'GET', 'htmlfile?c=cb'],
    ['jsonp-polling', 'GET', 'jsonp?c=cb'],
  ]) {
    test(`protocol is '${protocol}' for ${suffix.split('?')[0]}`, async () => {
      const url = sessionUrl(app.base);
      const connP = nextConnection(app.servers.echo);
      const s = openStream(`${url}/${suffix}`, { method });
      try {
        const conn = await connP;
        assert.equal(conn.protocol, protocol);
        assert.equal(conn.prefix, '/echo');
      } finally {
        s.destroy();
      }
      await abortSession(url);
    });
  }

  test("readyState is 1 while open, 2 right after close(), 3 after 'close'; write() true then false", async () => {
    const { conn, s } = await openStreamingSession();
    try {
      assert.equal(conn.readyState, 1);
      assert.equal(conn.write('before close'), true);
      const closed = waitForEvent(conn, 'close', 3000, "the 'close' event");
      conn.close(4001, 'custom reason');
      assert.equal(conn.readyState, 2);
      assert.equal(conn.readable, false);
      assert.equal(conn.writable, false);
      assert.equal(conn.write('after close'), false);
      const text = await s.waitEnd(3000, 'the response to end after close()');
      assert.equal(text, `${PRELUDE}o\na["before close"]\nc[4001,"custom reason"]\n`);
      await closed;
      assert.equal(conn.readyState, 3);
      assert.equal(conn.write('after closed'), false);
    } finally {
      s.destroy();
    }
  });

  test('close() without arguments sends c[1000,"Normal closure"]', async () => {
    const { conn, s } = await openStreamingSession();
    try {
      conn.close();
      const text = await s.waitEnd(3000, 'the response to end');
      assert.equal(text, `${PRELUDE}o\nc[1000,"Normal closure"]\n`);
    } finally {
      s.destroy();
    }
  });

  test("end(msg) sends msg then closes; 'end' then 'close' are emitted exactly once", async () => {
    const { url, conn, s } = await openStreamingSession();
    try {
      const events = [];
      conn.on('end', () => events.push('end'));
      conn.on('close', () => events.push('close'));
      const closed = waitForEvent(conn, 'close', 3000, "the 'close' event");
      conn.end('bye');
      const text = await s.waitEnd(3000, 'the response to end');
      assert.equal(text, `${PRELUDE}o\na["bye"]\nc[1000,"Normal closure"]\n`);
      await closed;
      // A later request on the same id is a new session, not this one.
      const again = await post(`${url}/xhr_send`, '["late"]');
      assert.equal(again.status, 404);
      assert.deepEqual(events, ['end', 'close']);
    } finally {
      s.destroy();
    }
  });

  test('end() without a message just closes', async () => {
    const { conn, s } = await openStreamingSession();
    try {
      conn.end();
      assert.equal(await s.waitEnd(3000, 'the response to end'), `${PRELUDE}o\nc[1000,"Normal closure"]\n`);
    } finally {
      s.destroy();
    }
  });

  for (const method of ['destroy', 'destroySoon']) {
    test(`${method}() closes the session with c[1000,"Normal closure"]`, async () => {
      const { conn, s } = await openStreamingSession();
      try {
        conn[method]();
        assert.equal(conn.readyState, 2);
        assert.equal(conn.write('x'), false);
        const text = await s.waitEnd(3000, 'the response to end');
        assert.equal(text, `${PRELUDE}o\nc[1000,"Normal closure"]\n`);
      } finally {
        s.destroy();
      }
    });
  }

  test("'data' per message as a string, then 'end' and 'close' once each when the client aborts", async () => {
    const { url, conn, s } = await openStreamingSession();
    const events = [];
    try {
      conn.on('data', (m) => events.push(['data', m]));
      conn.on('end', () => events.push(['end']));
      conn.on('close', () => events.push(['close']));
      assert.equal((await post(`${url}/xhr_send`, '["one","two"]')).status, 204);
      await s.readUntil((t) => t.includes('"two"'), 3000, 'the echoes');
      const closed = waitForEvent(conn, 'close', 3000, "the 'close' event");
      s.destroy();
      await closed;
      assert.equal((await post(`${url}/xhr_send`, '["three"]')).status, 404);
      assert.deepEqual(events, [['data', 'one'], ['data', 'two'], ['end'], ['close']]);
    } finally {
      s.destroy();
    }
  });
});

describe('connection as a stream', () => {
  let server;
  let base;
  before(async () => {
    server = http.createServer((req, res) => {
      res.writeHead(404);
      res.end();
    });
    const piped = sockjs.createServer({ ...quiet, disconnect_delay: 200 });
    piped.on('connection', (conn) => conn.pipe(conn));
    piped.installHandlers(server, { prefix: '/pipe' });
    const fed = sockjs.createServer({ ...quiet, disconnect_delay: 200 });
    fed.on('connection', (conn) => Readable.from(['one', 'two', 'three']).pipe(conn));
    fed.installHandlers(server, { prefix: '/fed' });
    base = await listen(server);
  });
  after(() => closeServer(server));

  test('conn.pipe(conn) echoes', async () => {
    const url = sessionUrl(base, '/pipe');
    const s = openStream(`${url}/xhr_streaming`, { method: 'POST' });
    try {
      await s.readUntil((t) => t === `${PRELUDE}o\n`, 3000, 'the open frame');
      assert.equal((await post(`${url}/xhr_send`, '["ping"]')).status, 204);
      await s.readUntil((t) => t.endsWith('a["ping"]\n'), 3000, 'the piped echo');
      assert.equal((await post(`${url}/xhr_send`, '["pong"]')).status, 204);
      await s.readUntil((t) => t.endsWith('a["pong"]\n'), 3000, 'the second piped echo');
    } finally {
      s.destroy();
    }
  });

  test('a Readable piped into conn delivers its chunks, then ends the session', async () => {
    const url = sessionUrl(base, '/fed');
    const s = openStream(`${url}/xhr_streaming`, { method: 'POST' });
    try {
      const text = await s.waitEnd(3000, 'the piped data and the close');
      const frames = text.slice(PRELUDE.length).split('\n').filter(Boolean);
      assert.equal(frames[0], 'o');
      assert.equal(frames[frames.length - 1], 'c[1000,"Normal closure"]');
      const messages = frames.slice(1, -1).flatMap((f) => {
        assert.equal(f[0], 'a', `message frame expected, got ${f}`);
        return JSON.parse(f.slice(1));
      });
      assert.deepEqual(messages, ['one', 'two', 'three']);
    } finally {
      s.destroy();
    }
  });
});

describe('internals other projects rely on', () => {
  let app;
  before(async () => {
    app = await startApp({ server: { disconnect_delay: 200 } });
  });
  after(() => app.close());

  test('a patch of Session.prototype.decorateConnection (webpack-dev-server) applies to new connections', async () => {
    const { Session } = require(path.join(implPath, 'lib', 'transport'));
    const original = Session.prototype.decorateConnection;
    let calls = 0;
    Session.prototype.decorateConnection = function patched(req) {
      calls += 1;
      original.call(this, req);
      const { connection } = this;
      if (connection.headers && !('origin' in connection.headers) && req.headers.origin) {
        connection.headers.origin = req.headers.origin;
      }
    };
    try {
      const url = sessionUrl(app.base);
      const connP = nextConnection(app.servers.echo);
      await openXhrSession(url, { Origin: 'http://wds.example.test', 'User-Agent': 'wds' });
      const conn = await connP;
      assert.ok(calls >= 1, 'the patched method was called');
      assert.equal(conn.headers.origin, 'http://wds.example.test');
      assert.equal(conn.headers['user-agent'], 'wds');
      await abortSession(url);
    } finally {
      Session.prototype.decorateConnection = original;
    }
    // Unpatched again: origin is not in the whitelist.
    const url = sessionUrl(app.base);
    const connP = nextConnection(app.servers.echo);
    await openXhrSession(url, { Origin: 'http://wds.example.test' });
    const conn = await connP;
    assert.equal(conn.headers.origin, undefined);
    await abortSession(url);
  });

  for (const [kind, suffix] of [
    ['websocket', () => `/echo/000/${Date.now()}/websocket`],
    ['websocket-raw', () => '/echo/websocket'],
  ]) {
    test(`conn._session.recv.connection is the net socket with setTimeout (Meteor) for ${kind}`, async () => {
      const connP = nextConnection(app.servers.echo);
      const ws = new WebSocket(`ws://127.0.0.1:${app.port}${suffix()}`);
      try {
        await waitForEvent(ws, 'open', 3000, 'the websocket to open');
        const conn = await connP;
        assert.equal(conn.protocol, kind);
        const socket = conn._session.recv.connection;
        assert.ok(socket instanceof net.Socket, 'recv.connection is a net.Socket');
        assert.equal(typeof socket.setTimeout, 'function');
        socket.setTimeout(45 * 1000);
        assert.equal(socket.timeout, 45 * 1000);
        assert.equal(socket.remotePort, conn.remotePort);
      } finally {
        ws.terminate();
      }
    });
  }
});

describe('application errors', () => {
  test("a 'data' listener that throws: the error reaches uncaughtException once, and no other message is lost", async () => {
    // In a child process: the test runner treats an uncaught exception in its
    // own process as a failure. sockjs 0.3.24 drops the rest of the batch
    // ("a2" here); the engine delivers it and rethrows after the batch.
    const fixture = path.join(__dirname, 'fixtures', 'throwing-listener.js');
    const stdout = await new Promise((resolve, reject) => {
      execFile(process.execPath, [fixture], { timeout: 15000 }, (err, out) => (err ? reject(err) : resolve(out)));
    });
    const { uncaught, frames } = JSON.parse(stdout);
    assert.deepEqual(uncaught, ['thrown by the listener']);
    const messages = (list) => list.flatMap((f) => JSON.parse(f.slice(1)));
    assert.deepEqual(messages(frames.a), ['a1', 'a2', 'a3']);
    assert.deepEqual(messages(frames.b), ['b1', 'b2']);
  });
});
