'use strict';
// SockJS echo example: every message a client sends comes back to it.
//
//   node examples/echo/server.js          (PORT defaults to 9999)
//   then open http://127.0.0.1:9999/ in a browser.
//
// The page and the sockjs-client library are served by a tiny static file
// listener below; SockJS itself answers everything under /echo.

const http = require('node:http');
const fs = require('node:fs');
const path = require('node:path');

const sockjs = process.env.SOCKJS_IMPL ? require(process.env.SOCKJS_IMPL) : require('../..');

const HOST = '127.0.0.1';
const PORT = Number(process.env.PORT || 9999);

// 1. The SockJS echo service.
const echo = sockjs.createServer({
  log: (severity, line) => {
    if (severity === 'error') console.error(line);
  },
});
echo.on('connection', (conn) => {
  conn.on('data', (message) => {
    conn.write(message);
  });
});

// 2. Static files: the page, and the sockjs-client bundle from node_modules.
function clientBundle() {
  try {
    return require.resolve('sockjs-client/dist/sockjs.js');
  } catch {
    return null;
  }
}

const files = {
  '/': { file: path.join(__dirname, 'index.html'), type: 'text/html; charset=UTF-8' },
  '/index.html': { file: path.join(__dirname, 'index.html'), type: 'text/html; charset=UTF-8' },
  '/sockjs.js': { file: clientBundle(), type: 'application/javascript; charset=UTF-8' },
};

function serveStatic(req, res) {
  const { pathname } = new URL(req.url, 'http://localhost');
  const entry = files[pathname];
  if ((req.method !== 'GET' && req.method !== 'HEAD') || !entry || !entry.file) {
    res.writeHead(404, { 'Content-Type': 'text/plain; charset=UTF-8' });
    res.end('404 Not Found\n');
    return;
  }
  fs.stat(entry.file, (err, stat) => {
    if (err) {
      res.writeHead(404, { 'Content-Type': 'text/plain; charset=UTF-8' });
      res.end('404 Not Found\n');
      return;
    }
    res.writeHead(200, { 'Content-Type': entry.type, 'Content-Length': stat.size });
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    const stream = fs.createReadStream(entry.file);
    stream.on('error', () => res.destroy());
    stream.pipe(res);
  });
}

// 3. The http server: static files for 'request', nothing for 'upgrade'
// (SockJS takes the requests under its prefix before these listeners).
const server = http.createServer();
server.on('request', serveStatic);
server.on('upgrade', (req, socket) => {
  socket.end();
});

echo.installHandlers(server, { prefix: '/echo' });

server.listen(PORT, HOST, () => {
  console.log(` [*] Listening on ${HOST}:${server.address().port}`);
});
