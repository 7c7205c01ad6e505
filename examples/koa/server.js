'use strict';
// SockJS next to a Koa 2 app: Koa answers the page and the sockjs-client
// bundle, SockJS echoes whatever arrives under /echo.
//
//   node examples/koa/server.js           (PORT defaults to 9999)
//   then open http://127.0.0.1:9999/ in a browser.

const http = require('node:http');
const fs = require('node:fs');
const path = require('node:path');
const Koa = require('koa');

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

// 2. The Koa app. Paths it does not know fall through to Koa's 404.
const routes = {
  '/': { file: path.join(__dirname, 'index.html'), type: 'html' },
  '/sockjs.js': { file: require.resolve('sockjs-client/dist/sockjs.js'), type: 'js' },
};

const app = new Koa();
app.use(async (ctx) => {
  const route = routes[ctx.path];
  if (!route || (ctx.method !== 'GET' && ctx.method !== 'HEAD')) return;
  ctx.type = route.type;
  ctx.body = fs.createReadStream(route.file);
});

// 3. The http server, shared by Koa and SockJS.
const server = http.createServer(app.callback());
echoService.installHandlers(server, { prefix: '/echo' });

server.listen(PORT, HOST, () => {
  console.log(` [*] Listening on ${HOST}:${server.address().port}`);
});
