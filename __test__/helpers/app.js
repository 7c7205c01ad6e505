'use strict';
// The test application: the same SockJS apps as sockjs-node's own test server
// (echo, close, ticker, amplify, broadcast, cookie_needed_echo,
// disabled_websocket_echo), installed on a real http.Server bound to
// 127.0.0.1 on a free port. The implementation under test is this package,
// or the one named by SOCKJS_IMPL (used to check a test against sockjs@0.3.24).

const http = require('node:http');
const path = require('node:path');

const implPath = process.env.SOCKJS_IMPL || path.join(__dirname, '..', '..');
const sockjs = require(implPath);

/**
 * Start the test app.
 * @param {object} [opts]
 * @param {object} [opts.server] options given to every createServer()
 * @param {object} [opts.install] options merged into every installHandlers()
 * @returns {Promise<{port:number, base:string, http:http.Server, logs:Array, servers:object, close:Function}>}
 */
async function startApp(opts = {}) {
  const logs = [];
  const serverOpts = {
    sockjs_url: 'http://localhost:8080/lib/sockjs.js',
    log: (severity, line) => logs.push([severity, line]),
    ...(opts.server || {}),
  };
  const httpServer = http.createServer();
  // Listeners installed before sockjs: they must still see every URL outside
  // the prefixes.
  httpServer.on('request', (req, res) => {
    res.setHeader('content-type', 'text/plain');
    res.writeHead(404);
    res.end('404 - Nothing here (via test app)');
  });
  httpServer.on('upgrade', (req, socket) => {
    socket.end();
  });

  const echo = sockjs.createServer(serverOpts);
  echo.on('connection', (conn) => {
    conn.on('data', (m) => conn.write(m));
  });

  const close = sockjs.createServer(serverOpts);
  close.on('connection', (conn) => {
    conn.close(3000, 'Go away!');
  });

  const ticker = sockjs.createServer(serverOpts);
  ticker.on('connection', (conn) => {
    const tref = setInterval(() => conn.write('tick!'), 1000);
    conn.on('close', () => clearInterval(tref));
  });

  const amplify = sockjs.createServer(serverOpts);
  amplify.on('connection', (conn) => {
    conn.on('data', (m) => {
      let n = Math.floor(Number(m));
      n = n > 0 && n < 19 ? n : 1;
      conn.write('x'.repeat(2 ** n));
    });
  });

  const members = new Map();
  const broadcast = sockjs.createServer(serverOpts);
  broadcast.on('connection', (conn) => {
    members.set(conn.id, conn);
    conn.on('close', () => members.delete(conn.id));
    conn.on('data', (m) => {
      for (const c of members.values()) c.write(m);
    });
  });

  const inst = opts.install || {};
  echo.installHandlers(httpServer, { prefix: '/echo', response_limit: 4096, ...inst });
  echo.installHandlers(httpServer, { prefix: '/disabled_websocket_echo', websocket: false, ...inst });
  echo.installHandlers(httpServer, { prefix: '/cookie_needed_echo', jsessionid: true, ...inst });
  close.installHandlers(httpServer, { prefix: '/close', ...inst });
  ticker.installHandlers(httpServer, { prefix: '/ticker', ...inst });
  amplify.installHandlers(httpServer, { prefix: '/amplify', ...inst });
  broadcast.installHandlers(httpServer, { prefix: '/broadcast', ...inst });

  await new Promise((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
  const { port } = httpServer.address();
  return {
    port,
    base: `http://127.0.0.1:${port}`,
    http: httpServer,
    logs,
    servers: { echo, close, ticker, amplify, broadcast },
    close: () =>
      new Promise((resolve) => {
        if (typeof httpServer.closeAllConnections === 'function') httpServer.closeAllConnections();
        httpServer.close(() => resolve());
      }),
  };
}

module.exports = { startApp, sockjs, implPath };
