'use strict';
// webpack-dev-server 5 with its SockJS transport on both ends
// (webSocketServer: 'sockjs', client.webSocketTransport: 'sockjs'), run
// programmatically over a copy of __test__/fixtures/wds-app. Through the
// npm override, webpack-dev-server's `require('sockjs')` is this package.
// A headless Chromium opens the app; its HMR client connects over SockJS,
// a source edit is pushed as a hot update and applied without a reload,
// and webpack-dev-server's patch of Session#decorateConnection (adding the
// Origin header to conn.headers) is seen on the server's connection.

const { describe, test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { CHROMIUM_PATH, CHROMIUM_ARGS } = require('./helpers/chromium.js');
const { freePort } = require('./helpers/http.js');

const ROOT = path.join(__dirname, '..');
const FIXTURE = path.join(__dirname, 'fixtures', 'wds-app');
const BUILD_MS = 30000; // first compile, page load and SockJS handshake
const HMR_MS = 30000; // file watch, rebuild, push, apply
const WAIT_MS = 5000; // anything else
const SUITE_MS = 120000;

// Session#decorateConnection as this package defines it, taken before
// webpack-dev-server's SockJSServer module (which patches it) is loaded.
const { Session, HEADER_WHITELIST } = require(path.join(ROOT, 'lib', 'transport'));
const originalDecorateConnection = Session.prototype.decorateConnection;

const webpack = require('webpack');
const WebpackDevServer = require('webpack-dev-server');
const { chromium } = require('playwright-core');

// ---------------------------------------------------------------- helpers

/**
 * Something that changes over time (frames, console lines, connections):
 * call notify() after each change, and until() waits, bounded, for a
 * predicate over the current state to hold.
 */
class Observed {
  constructor(describeState) {
    this.describeState = describeState;
    this.waiters = new Set();
  }

  notify() {
    for (const check of [...this.waiters]) check();
  }

  until(predicate, ms, what) {
    return new Promise((resolve, reject) => {
      const check = () => {
        let value;
        try {
          value = predicate();
        } catch (err) {
          finish();
          reject(err);
          return;
        }
        if (value) {
          finish();
          resolve(value);
        }
      };
      const timer = setTimeout(() => {
        finish();
        reject(new Error(`timed out after ${ms} ms waiting for ${what}; state: ${this.describeState()}`));
      }, ms);
      const finish = () => {
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      this.waiters.add(check);
      check();
    });
  }
}

/** The webpack-dev-server messages inside one SockJS frame ('a[...]'), if any. */
function messagesOf(frame) {
  if (typeof frame !== 'string' || frame[0] !== 'a') return [];
  return JSON.parse(frame.slice(1)).map((item) => JSON.parse(item));
}

// ---------------------------------------------------------------- shared state

const state = {
  appDir: null, // the fixture copy
  profileDir: null, // Chromium's user data dir
  port: 0,
  server: null,
  context: null,
  page: null,
  // What the browser saw.
  sockets: [], // { url, frames: [string], closed: boolean }
  messages: [], // webpack-dev-server messages received over SockJS, in order
  consoleLines: [],
  pageErrors: [],
  hotUpdateRequests: [],
  loads: 0,
  // What the sockjs server saw.
  connections: [], // { conn, closed: boolean }
};

const observed = new Observed(() => JSON.stringify({
  sockets: state.sockets.map((s) => ({ url: s.url, frames: s.frames.length, closed: s.closed })),
  messages: state.messages.map((m) => m.type),
  console: state.consoleLines.slice(-15),
  pageErrors: state.pageErrors,
  loads: state.loads,
  connections: state.connections.length,
}).slice(0, 3000));

function serverClients() {
  return state.server && state.server.webSocketServer ? state.server.webSocketServer.clients : [];
}

// ---------------------------------------------------------------- lifecycle

describe('webpack-dev-server 5 over this sockjs', { timeout: SUITE_MS }, () => {
  before(async () => {
    state.appDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sockjs-wds-app-'));
    fs.cpSync(FIXTURE, state.appDir, { recursive: true });
    state.profileDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sockjs-wds-chromium-'));
    state.port = await freePort();

    const config = require(path.join(state.appDir, 'webpack.config.js'));
    const compiler = webpack(config);
    state.server = new WebpackDevServer({
      host: '127.0.0.1',
      port: state.port,
      hot: true,
      liveReload: false, // a failed hot update must not hide behind a reload
      webSocketServer: 'sockjs',
      client: { webSocketTransport: 'sockjs', overlay: false, logging: 'info' },
      static: { directory: path.join(state.appDir, 'public'), watch: false },
      open: false,
      setupExitSignals: false,
    }, compiler);
    await state.server.start();

    state.server.webSocketServer.implementation.on('connection', (conn) => {
      const entry = { conn, closed: false };
      state.connections.push(entry);
      conn.on('close', () => {
        entry.closed = true;
        observed.notify();
      });
      observed.notify();
    });

    state.context = await chromium.launchPersistentContext(state.profileDir, {
      executablePath: CHROMIUM_PATH,
      headless: true,
      args: CHROMIUM_ARGS,
      timeout: BUILD_MS,
    });
    state.page = state.context.pages()[0] || await state.context.newPage();
    const { page } = state;
    page.on('console', (msg) => {
      state.consoleLines.push(msg.text());
      observed.notify();
    });
    page.on('pageerror', (err) => {
      state.pageErrors.push(String(err));
      observed.notify();
    });
    page.on('load', () => {
      state.loads += 1;
      observed.notify();
    });
    page.on('request', (req) => {
      if (/\.hot-update\.(json|js)$/.test(new URL(req.url()).pathname)) {
        state.hotUpdateRequests.push(req.url());
        observed.notify();
      }
    });
    page.on('websocket', (ws) => {
      const entry = { url: ws.url(), frames: [], closed: false };
      state.sockets.push(entry);
      ws.on('framereceived', ({ payload }) => {
        const text = typeof payload === 'string' ? payload : payload.toString('utf8');
        entry.frames.push(text);
        for (const m of messagesOf(text)) state.messages.push(m);
        observed.notify();
      });
      ws.on('close', () => {
        entry.closed = true;
        observed.notify();
      });
      observed.notify();
    });
  });

  after(async () => {
    if (state.context) await state.context.close().catch(() => {});
    if (state.server) await state.server.stop();
    for (const dir of [state.profileDir, state.appDir]) {
      if (dir) fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  // -------------------------------------------------------------- tests

  test('webpack-dev-server resolves sockjs to this project', () => {
    const sockjsServerFile = require.resolve('webpack-dev-server/lib/servers/SockJSServer.js');
    const resolved = require.resolve('sockjs', { paths: [path.dirname(sockjsServerFile)] });
    assert.equal(resolved, path.join(ROOT, 'index.js'), `sockjs resolved to ${resolved}`);
    assert.ok(!path.relative(ROOT, resolved).split(path.sep).includes('node_modules'), resolved);
    assert.equal(require(resolved), require(ROOT), 'the very same module object');
    const transport = require.resolve('sockjs/lib/transport', { paths: [path.dirname(sockjsServerFile)] });
    assert.equal(transport, path.join(ROOT, 'lib', 'transport.js'));
  });

  test('the dev server runs a sockjs Server of this package under /ws', () => {
    const wss = state.server.webSocketServer;
    assert.ok(wss, 'webSocketServer was created');
    assert.ok(wss.implementation instanceof require(ROOT).Server, 'implementation is this package\'s Server');
    assert.equal(state.server.options.webSocketServer.type, 'sockjs');
    assert.equal(state.server.options.webSocketServer.options.path, '/ws');
    assert.notEqual(Session.prototype.decorateConnection, originalDecorateConnection,
      'webpack-dev-server replaced Session.prototype.decorateConnection');
    assert.ok(!HEADER_WHITELIST.includes('origin'), 'origin is not among the headers this package copies itself');
  });

  test('the page\'s HMR client connects over SockJS (websocket transport) and gets hot, hash, ok', async () => {
    const { page, port } = state;
    await page.goto(`http://127.0.0.1:${port}/`, { waitUntil: 'load', timeout: BUILD_MS });

    const wsUrl = new RegExp(`^ws://127\\.0\\.0\\.1:${port}/ws/\\d+/[^/]+/websocket$`);
    const socket = await observed.until(() => state.sockets.find((s) => wsUrl.test(s.url)), BUILD_MS,
      'the page to open a SockJS websocket under /ws');
    await observed.until(() => socket.frames[0] === 'o', BUILD_MS, 'the SockJS open frame');
    await observed.until(() => state.messages.some((m) => m.type === 'ok'), BUILD_MS,
      'the first "ok" message over SockJS');

    const types = state.messages.map((m) => m.type);
    assert.equal(types[0], 'hot', `first message: ${JSON.stringify(types)}`);
    assert.ok(!types.includes('liveReload'), 'live reload is off');
    const hash = state.messages.find((m) => m.type === 'hash');
    assert.ok(hash && /^[0-9a-f]+$/.test(hash.data), `a hash message before ok: ${JSON.stringify(types)}`);
    assert.ok(types.indexOf('hash') < types.indexOf('ok'), JSON.stringify(types));
    assert.ok(!types.includes('error') && !types.includes('errors'), JSON.stringify(state.messages));

    await observed.until(
      () => state.consoleLines.some((l) => l.includes('[webpack-dev-server]') && l.includes('Hot Module Replacement enabled')),
      WAIT_MS, 'the client to log that HMR is enabled');
    assert.equal(await page.textContent('#greeting', { timeout: WAIT_MS }), 'greeting v1');
    assert.deepEqual(state.pageErrors, []);
  });

  test('the sockjs connection is a client of the dev server and carries the Origin header', async () => {
    const entry = await observed.until(() => state.connections[0], WAIT_MS, 'a connection on the sockjs server');
    assert.equal(state.connections.length, 1, 'one page, one connection');
    const { conn } = entry;
    assert.deepEqual(serverClients(), [conn], 'the connection is the dev server\'s only client');
    assert.equal(conn.readyState, 1);
    assert.equal(conn.protocol, 'websocket');
    assert.equal(conn.prefix, '/ws');
    assert.equal(conn.headers.host, `127.0.0.1:${state.port}`);
    assert.equal(conn.headers.origin, `http://127.0.0.1:${state.port}`,
      `headers.origin added by webpack-dev-server's decorateConnection patch; headers: ${JSON.stringify(conn.headers)}`);
    assert.equal(conn.remoteAddress, '127.0.0.1');
    assert.equal(conn.send, conn.write, 'webpack-dev-server aliased send to write');
  });

  test('an edit is pushed over SockJS as a hot update and applied without a reload', async () => {
    const { page } = state;
    await page.evaluate(() => {
      globalThis.sockjsTestMarker = 'still the same page';
    });
    const loadsBefore = state.loads;
    const seenBefore = state.messages.length;
    const oldHash = state.messages.filter((m) => m.type === 'hash').at(-1).data;

    fs.writeFileSync(path.join(state.appDir, 'src', 'greeting.js'),
      "'use strict';\n// Edited by the test.\nmodule.exports = 'greeting v2';\n");

    const since = () => state.messages.slice(seenBefore);
    await observed.until(() => since().some((m) => m.type === 'ok'), HMR_MS,
      'an "ok" message over SockJS after the edit');
    const types = since().map((m) => m.type);
    const newHash = since().find((m) => m.type === 'hash');
    assert.ok(newHash, `a hash message after the edit: ${JSON.stringify(types)}`);
    assert.notEqual(newHash.data, oldHash, 'the rebuild has a new hash');
    assert.ok(types.indexOf('hash') < types.lastIndexOf('ok'), JSON.stringify(types));
    assert.ok(!types.includes('error') && !types.includes('errors'), JSON.stringify(since()));

    await page.waitForFunction(() => globalThis.document.getElementById('greeting').textContent === 'greeting v2', null,
      { timeout: HMR_MS }).catch((err) => {
      throw new Error(`the page did not show "greeting v2": ${err.message}; state: ${observed.describeState()}`);
    });
    assert.ok(state.hotUpdateRequests.some((u) => u.endsWith('.hot-update.json')),
      `the HMR runtime fetched a hot-update manifest: ${JSON.stringify(state.hotUpdateRequests)}`);
    await observed.until(() => state.consoleLines.some((l) => l.includes('[HMR] Updated modules:')), WAIT_MS,
      'the HMR runtime to log the updated modules');
    assert.equal(await page.evaluate(() => globalThis.sockjsTestMarker), 'still the same page', 'no reload happened');
    assert.equal(state.loads, loadsBefore, 'no further load event');
    assert.equal(state.sockets.length, 1, 'the same SockJS connection carried the update');
    assert.deepEqual(state.pageErrors, []);
  });

  test('closing the page closes the sockjs connection on the server', async () => {
    await state.page.close();
    await observed.until(() => state.connections[0].closed, WAIT_MS, 'the server-side connection to close');
    assert.deepEqual(serverClients(), [], 'the dev server dropped its client');
    assert.equal(state.connections[0].conn.readyState, 3);
  });
});
