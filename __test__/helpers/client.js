'use strict';
// Shared pieces of the sockjs-client interoperability tests
// (client-browser.test.js runs them in Chromium, client-node.test.js in Node).
//
// The scenarios themselves live in installScenarios(), a self-contained
// function: Node calls it directly, and the page server sends its source to
// the browser, so both runs drive sockjs-client with the very same code. Each
// scenario takes the SockJS constructor first, returns a promise of a plain
// JSON-able object and bounds every wait with a timeout; the assertions are
// made in Node by describeTransport().

const fs = require('node:fs');
const http = require('node:http');
const assert = require('node:assert/strict');
const { describe, it, before, after } = require('node:test');

/** Per-step wait inside a scenario (open, one echo, the close event). */
const STEP_MS = 8000;
/**
 * heartbeat_delay and disconnect_delay of the app used for the client-close
 * test. A client cannot always cancel its pending request (jsonp-polling only
 * removes its <script>), so the server may learn of the close only when that
 * poll ends (at the next heartbeat) and disconnect_delay expires: the bound
 * on the wait has to cover both, hence short delays there.
 */
const CLIENT_CLOSE_DELAY_MS = 2000;
/** Bound on the server noticing a client close: the worst case above plus margin. */
const SERVER_CLOSE_MS = 2 * CLIENT_CLOSE_DELAY_MS + 8000;
/** heartbeat_delay of the heartbeat app, and how many heartbeats an idle session must survive. */
const HEARTBEAT_DELAY_MS = 300;
const HEARTBEATS = 4;
/** Backstop for one test as a whole. */
const TEST_MS = 40000;

/**
 * Define the scenarios on `root.sockjsScenarios`. Must not use anything from
 * its enclosing scope: its source text is what runs in the browser.
 * @param {object} root the global object to install into
 * @returns {object} the scenarios
 */
function installScenarios(root) {
  function preview(value) {
    const text = typeof value === 'string' ? value : String(value);
    return text.length > 40 ? `${JSON.stringify(text.slice(0, 40))}... (${text.length} chars)` : JSON.stringify(text);
  }

  // One sockjs-client socket with a log of everything it dispatched, so that
  // every wait is "until the log satisfies X, or the time is up".
  class Client {
    constructor(SockJS, url, transport) {
      this.forced = transport;
      this.events = [];
      this.checks = new Set();
      this.cursor = 0;
      const sock = new SockJS(url, null, { transports: [transport] });
      this.sock = sock;
      sock.addEventListener('open', () => this.record({ type: 'open', transport: sock.transport }));
      sock.addEventListener('message', (e) => this.record({ type: 'message', data: e.data }));
      sock.addEventListener('heartbeat', () => this.record({ type: 'heartbeat' }));
      sock.addEventListener('close', (e) =>
        this.record({ type: 'close', code: e.code, reason: e.reason, wasClean: e.wasClean }),
      );
    }

    record(event) {
      this.events.push(event);
      for (const check of Array.from(this.checks)) check();
    }

    describe() {
      const parts = this.events.map((e) => {
        if (e.type === 'message') return `message ${preview(e.data)}`;
        if (e.type === 'close') return `close ${e.code} ${JSON.stringify(e.reason)}`;
        if (e.type === 'open') return `open (${e.transport})`;
        return e.type;
      });
      return parts.length ? parts.join(', ') : 'none';
    }

    /**
     * Resolve with the first non-undefined value of test(events), re-run on
     * every new event; reject if it throws or after ms.
     */
    waitFor(what, ms, test) {
      return new Promise((resolve, reject) => {
        let timer = null;
        const finish = () => {
          clearTimeout(timer);
          this.checks.delete(check);
        };
        const check = () => {
          let result;
          try {
            result = test(this.events);
          } catch (err) {
            finish();
            reject(err);
            return;
          }
          if (result !== undefined) {
            finish();
            resolve(result);
          }
        };
        timer = setTimeout(() => {
          finish();
          reject(
            new Error(
              `[${this.forced}] timed out after ${ms} ms waiting for ${what}; events so far: ${this.describe()}`,
            ),
          );
        }, ms);
        this.checks.add(check);
        check();
      });
    }

    closeEvent() {
      return this.events.find((e) => e.type === 'close');
    }

    opened(ms) {
      return this.waitFor('the open event', ms, (events) => {
        const first = events.find((e) => e.type === 'open' || e.type === 'close');
        if (!first) return undefined;
        if (first.type === 'close') {
          throw new Error(
            `[${this.forced}] closed before open: ${first.code} ${JSON.stringify(first.reason)}`,
          );
        }
        return first;
      });
    }

    nextMessage(ms, what) {
      return this.waitFor(what, ms, (events) => {
        const messages = events.filter((e) => e.type === 'message');
        if (messages.length > this.cursor) {
          this.cursor += 1;
          return messages[this.cursor - 1].data;
        }
        const closed = this.closeEvent();
        if (closed) {
          throw new Error(
            `[${this.forced}] closed (${closed.code} ${JSON.stringify(closed.reason)}) while waiting for ${what}; ` +
              `events: ${this.describe()}`,
          );
        }
        return undefined;
      });
    }

    closed(ms) {
      return this.waitFor('the close event', ms, () => this.closeEvent());
    }

    /** Close (if still open) and wait for the close event; never rejects. */
    async dispose(ms) {
      try {
        if (this.sock.readyState === 0 || this.sock.readyState === 1) this.sock.close();
        await this.closed(ms);
      } catch {
        // Cleanup only: the scenario already reported what mattered.
      }
    }
  }

  async function withClient(SockJS, url, transport, ms, body) {
    const client = new Client(SockJS, url, transport);
    try {
      return await body(client);
    } finally {
      await client.dispose(ms);
    }
  }

  const scenarios = {
    /** Open, report the transport in use, close. */
    open(SockJS, url, transport, ms) {
      return withClient(SockJS, url, transport, ms, async (c) => {
        const ev = await c.opened(ms);
        return { transport: c.sock.transport, openEventTransport: ev.transport, readyState: c.sock.readyState };
      });
    },

    /** Send each message in turn and collect its echo. */
    echo(SockJS, url, transport, messages, ms) {
      return withClient(SockJS, url, transport, ms, async (c) => {
        await c.opened(ms);
        const echoes = [];
        for (let i = 0; i < messages.length; i += 1) {
          c.sock.send(messages[i]);
          echoes.push(await c.nextMessage(ms, `the echo of message #${i} ${preview(messages[i])}`));
        }
        return { transport: c.sock.transport, echoes };
      });
    },

    /** Connect to an app that closes every connection; report open and close. */
    serverClose(SockJS, url, transport, ms) {
      return withClient(SockJS, url, transport, ms, async (c) => {
        const ev = await c.opened(ms);
        const closed = await c.closed(ms);
        const messages = c.events.filter((e) => e.type === 'message').map((e) => e.data);
        return {
          transport: ev.transport,
          code: closed.code,
          reason: closed.reason,
          wasClean: closed.wasClean,
          messages,
        };
      });
    },

    /** Open, send `token` (so the server can find this session), await its echo, then close from the client. */
    clientClose(SockJS, url, transport, token, ms) {
      return withClient(SockJS, url, transport, ms, async (c) => {
        const ev = await c.opened(ms);
        c.sock.send(token);
        const echo = await c.nextMessage(ms, 'the echo of the token');
        c.sock.close();
        const closed = await c.closed(ms);
        return { transport: ev.transport, echo, code: closed.code, reason: closed.reason };
      });
    },

    /** Stay idle until `count` heartbeats arrived (failing on any close), then echo once. */
    heartbeat(SockJS, url, transport, count, message, ms) {
      return withClient(SockJS, url, transport, ms, async (c) => {
        const ev = await c.opened(ms);
        await c.waitFor(`${count} heartbeats while idle`, ms, (events) => {
          const closed = c.closeEvent();
          if (closed) {
            throw new Error(
              `[${transport}] closed (${closed.code} ${JSON.stringify(closed.reason)}) while idle; ` +
                `events: ${c.describe()}`,
            );
          }
          return events.filter((e) => e.type === 'heartbeat').length >= count ? true : undefined;
        });
        const idleMessages = c.events.filter((e) => e.type === 'message').length;
        c.sock.send(message);
        const echo = await c.nextMessage(ms, 'the echo after the heartbeats');
        return {
          transport: ev.transport,
          heartbeats: c.events.filter((e) => e.type === 'heartbeat').length,
          idleMessages,
          echo,
          readyState: c.sock.readyState,
        };
      });
    },
  };

  root.sockjsScenarios = scenarios;
  return scenarios;
}

/** Source of a script that installs the scenarios on the page's global object. */
function scenariosScript() {
  return `'use strict';\n(${installScenarios.toString()})(globalThis);\n`;
}

/** Reject with a clear message if `promise` does not settle within ms. */
function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** A plain message. */
function plainMessage() {
  return 'Hello, SockJS!';
}

/** About 100 KB of printable text with a varying pattern, so truncation or reordering shows. */
function bigMessage(size = 100 * 1024) {
  const parts = [];
  let length = 0;
  for (let i = 0; length < size; i += 1) {
    const chunk = `${i.toString(36)}:abcdefghijklmnopqrstuvwxyz|`;
    parts.push(chunk);
    length += chunk.length;
  }
  return parts.join('').slice(0, size);
}

/**
 * Characters that SockJS servers and clients must escape or that browsers
 * tend to mangle: C0 controls, zero-width and bidi marks, line/paragraph
 * separators, invisible operators, specials, then astral emoji, CJK and the
 * JSON/URL-significant ASCII characters.
 */
function escapeHeavyMessage() {
  const chars = [];
  const range = (from, to) => {
    for (let c = from; c <= to; c += 1) chars.push(String.fromCharCode(c));
  };
  range(0x0000, 0x001f);
  range(0x200c, 0x200f);
  range(0x2028, 0x202f);
  range(0x2060, 0x206f);
  range(0xfff0, 0xfffd);
  return `${chars.join('')}😀🎉👍🏽🧪 漢字かなカナ中文한국어 "quote" \\back\\slash /slash/ 100% %25 \u007f end`;
}

/** Describe where two strings first differ (for long strings, instead of a giant diff). */
function firstDifference(actual, expected) {
  const n = Math.min(actual.length, expected.length);
  let i = 0;
  while (i < n && actual.charCodeAt(i) === expected.charCodeAt(i)) i += 1;
  const units = (s) =>
    Array.from(s.slice(Math.max(0, i - 3), i + 5), (ch) =>
      ch
        .split('')
        .map((u) => `U+${u.charCodeAt(0).toString(16).padStart(4, '0')}`)
        .join('+'),
    ).join(' ');
  return (
    `lengths ${actual.length} (actual) vs ${expected.length} (expected); first difference at index ${i}: ` +
    `actual [${units(actual)}] vs expected [${units(expected)}]`
  );
}

/** assert that `actual` is exactly `expected`, with a compact message for long strings. */
function assertSameString(actual, expected, label) {
  assert.equal(typeof actual, 'string', `${label}: expected a string, got ${typeof actual}`);
  if (actual !== expected) assert.fail(`${label}: the echo differs from what was sent: ${firstDifference(actual, expected)}`);
}

/**
 * Watch `server` (a SockJS server) for the session that receives `token` as
 * data; `closed` resolves when that connection emits 'close'.
 * Both waits are functions, so that nothing times out unobserved.
 * @returns {{connection: (ms:number) => Promise<object>, closed: (ms:number) => Promise<void>, stop: Function}}
 */
function watchServerSession(server, token) {
  let onConnection;
  let found;
  const connection = new Promise((resolve) => {
    found = resolve;
  });
  const closedFlag = new Promise((resolve) => {
    onConnection = (conn) => {
      conn.on('data', (data) => {
        if (data === token) found(conn);
      });
      conn.on('close', () => {
        connection.then((c) => {
          if (c === conn) resolve(conn);
        });
      });
    };
  });
  server.on('connection', onConnection);
  const stop = () => server.removeListener('connection', onConnection);
  return {
    connection: (waitMs) => withTimeout(connection, waitMs, "the server's connection to receive the token"),
    closed: (waitMs) => withTimeout(closedFlag, waitMs, "the server's connection to emit 'close' after the client closed"),
    stop,
  };
}

/**
 * Start the page server: serves "/" (a page loading sockjs-client and the
 * scenarios), "/sockjs.js" (sockjs-client's browser bundle, also the
 * iframe's sockjs_url) and "/scenarios.js".
 */
async function startPageServer() {
  const clientJs = await fs.promises.readFile(require.resolve('sockjs-client/dist/sockjs.js'));
  const scenariosJs = scenariosScript();
  const html =
    '<!DOCTYPE html>\n<html>\n<head>\n<meta charset="utf-8">\n<title>sockjs-client tests</title>\n' +
    '<script src="/sockjs.js"></script>\n<script src="/scenarios.js"></script>\n</head>\n' +
    '<body><p>sockjs-client interoperability tests</p></body>\n</html>\n';
  const files = {
    '/': ['text/html; charset=utf-8', html],
    '/sockjs.js': ['application/javascript; charset=utf-8', clientJs],
    '/scenarios.js': ['application/javascript; charset=utf-8', scenariosJs],
  };
  const server = http.createServer((req, res) => {
    const file = files[req.url.split('?')[0]];
    if (!file || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found');
      return;
    }
    res.writeHead(200, { 'content-type': file[0], 'cache-control': 'no-store' });
    res.end(req.method === 'HEAD' ? undefined : file[1]);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  return {
    port,
    base: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * Start the three apps the tests use: `main` (default options), `heartbeat`
 * (heartbeat_delay HEARTBEAT_DELAY_MS) and `clientClose` (heartbeat_delay and
 * disconnect_delay CLIENT_CLOSE_DELAY_MS).
 * @param {object} [server] extra createServer() options for all three
 */
async function startApps(server = {}) {
  const { startApp } = require('./app.js');
  const apps = {};
  const close = async () => {
    const results = await Promise.allSettled(
      Object.entries(apps).map(([name, a]) => withTimeout(a.close(), 5000, `the ${name} app to close`)),
    );
    const failed = results.find((r) => r.status === 'rejected');
    if (failed) throw failed.reason;
  };
  try {
    apps.main = await startApp({ server });
    apps.heartbeat = await startApp({ server: { ...server, heartbeat_delay: HEARTBEAT_DELAY_MS } });
    apps.clientClose = await startApp({
      server: { ...server, heartbeat_delay: CLIENT_CLOSE_DELAY_MS, disconnect_delay: CLIENT_CLOSE_DELAY_MS },
    });
  } catch (err) {
    await close();
    throw err;
  }
  return { ...apps, close };
}

/**
 * Define the tests of one transport.
 * @param {string} transport sockjs-client transport name to force
 * @param {object} ctx
 * @param {(name:string, ...args:any[]) => Promise<object>} ctx.run runs a scenario (SockJS is supplied by the runner)
 * @param {() => object} ctx.apps the apps from startApps()
 * @param {Function} [ctx.before] run before this transport's tests
 * @param {Function} [ctx.after] run after this transport's tests
 */
function describeTransport(transport, ctx) {
  describe(transport, () => {
    if (ctx.before) before(() => ctx.before(transport));
    if (ctx.after) after(() => ctx.after(transport));

    const opts = { timeout: TEST_MS };
    const echoUrl = () => `${ctx.apps().main.base}/echo`;

    it('opens with the forced transport', opts, async () => {
      const r = await ctx.run('open', echoUrl(), transport, STEP_MS);
      assert.equal(r.transport, transport, `sock.transport after open (forced ${transport})`);
      assert.equal(r.openEventTransport, transport);
      assert.equal(r.readyState, 1, 'readyState after open');
    });

    const echoCases = [
      ['echoes a plain message', plainMessage],
      ['echoes a 100 KB message', bigMessage],
      ['echoes an escape-heavy unicode message', escapeHeavyMessage],
    ];
    for (const [title, make] of echoCases) {
      it(title, opts, async () => {
        const message = make();
        const r = await ctx.run('echo', echoUrl(), transport, [message], STEP_MS);
        assert.equal(r.transport, transport);
        assert.equal(r.echoes.length, 1);
        assertSameString(r.echoes[0], message, `${transport} ${title}`);
      });
    }

    it('reports a server-initiated close (3000 "Go away!")', opts, async () => {
      const r = await ctx.run('serverClose', `${ctx.apps().main.base}/close`, transport, STEP_MS);
      assert.equal(r.transport, transport);
      assert.deepEqual(r.messages, [], 'no messages before the close');
      assert.equal(r.code, 3000, `close code (reason ${JSON.stringify(r.reason)})`);
      assert.equal(r.reason, 'Go away!');
    });

    it("closes from the client and the server's connection emits 'close'", opts, async () => {
      const token = `client-close-${transport}-${Math.random().toString(36).slice(2)}`;
      const { clientClose } = ctx.apps();
      const watch = watchServerSession(clientClose.servers.echo, token);
      try {
        const r = await ctx.run('clientClose', `${clientClose.base}/echo`, transport, token, STEP_MS);
        assert.equal(r.transport, transport);
        assert.equal(r.echo, token);
        assert.equal(r.code, 1000, `client close code (reason ${JSON.stringify(r.reason)})`);
        const conn = await watch.connection(STEP_MS);
        assert.equal(conn.protocol, transportProtocol(transport), 'conn.protocol on the server');
        await watch.closed(SERVER_CLOSE_MS);
        assert.equal(conn.readyState, 3, 'server conn.readyState after close');
      } finally {
        watch.stop();
      }
    });

    it(`survives ${HEARTBEATS} heartbeats (heartbeat_delay ${HEARTBEAT_DELAY_MS} ms) idle and still echoes`, opts, async () => {
      const message = `after heartbeats over ${transport}`;
      const wait = STEP_MS + HEARTBEATS * HEARTBEAT_DELAY_MS * 3;
      const r = await ctx.run('heartbeat', `${ctx.apps().heartbeat.base}/echo`, transport, HEARTBEATS, message, wait);
      assert.equal(r.transport, transport);
      assert.ok(r.heartbeats >= HEARTBEATS, `heartbeats seen: ${r.heartbeats}`);
      assert.equal(r.idleMessages, 0, 'no messages while idle');
      assert.equal(r.echo, message);
      assert.equal(r.readyState, 1);
    });
  });
}

/** The server-side conn.protocol a sockjs-client transport maps to. */
function transportProtocol(transport) {
  const map = {
    websocket: 'websocket',
    'xhr-streaming': 'xhr-streaming',
    'xhr-polling': 'xhr-polling',
    eventsource: 'eventsource',
    'iframe-eventsource': 'eventsource',
    'iframe-htmlfile': 'htmlfile',
    'iframe-xhr-polling': 'xhr-polling',
    'jsonp-polling': 'jsonp-polling',
  };
  return map[transport];
}

module.exports = {
  STEP_MS,
  SERVER_CLOSE_MS,
  CLIENT_CLOSE_DELAY_MS,
  HEARTBEAT_DELAY_MS,
  HEARTBEATS,
  installScenarios,
  scenariosScript,
  withTimeout,
  plainMessage,
  bigMessage,
  escapeHeavyMessage,
  assertSameString,
  watchServerSession,
  startPageServer,
  startApps,
  describeTransport,
  transportProtocol,
};
