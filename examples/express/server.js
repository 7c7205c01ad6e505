'use strict';
// SockJS behind an Express 4 app: Express serves the page and the
// sockjs-client bundle, SockJS echoes whatever arrives under /echo.
//
//   node examples/express/server.js       (PORT defaults to 9999)
//   then open http://127.0.0.1:9999/ in a browser.

const http = require('node:http');
const path = require('node:path');
const express = require('express');

const sockjs = process.env.SOCKJS_IMPL ? require(process.env.SOCKJS_IMPL) : require('../..');

const HOST = '127.0.0.1';
const PORT = Number(process.env.PORT || 9999);

// 1. An echo service.
const echoService = sockjs.createServer({
  log: (severity, line) => {
    if (severity === 'error') console.error(line);
  },
});
echoService.on('connection', (conn) => {
  conn.on('data', (message) => {
    conn.write(message);
  });
});

// 2. The Express app: the page and the client library.
const app = express();
app.get('/', (req, res) => {
  res.sendFile(path.join(__dirname, 'index.html'));
});
app.get('/sockjs.js', (req, res) => {
  res.type('application/javascript');
  res.sendFile(require.resolve('sockjs-client/dist/sockjs.js'));
});

// 3. Express 4 apps are request handlers; SockJS needs the http server
// itself, so create it explicitly and hand it to both.
const server = http.createServer(app);
echoService.installHandlers(server, { prefix: '/echo' });

server.listen(PORT, HOST, () => {
  console.log(` [*] Listening on ${HOST}:${server.address().port}`);
});
