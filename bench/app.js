'use strict';
// The benchmark's server app, the same for both implementations:
//   SOCKJS_PATH=<dir of a sockjs package> PORT=0 node bench/app.js
// /echo echoes every message (raw WebSocket: /echo/websocket); on
// /broadcast a session sends 'join' to join the audience (answered with
// 'joined'), and any other message is written to every member, one
// conn.write per member (there is no server-wide broadcast API in 0.3);
// /broadcast-native does the same through server.broadcast() where the
// package has it.
// Logging is off. Prints `READY <port>` once listening on 127.0.0.1, and
// exits when its stdin closes (the runner is gone) or on SIGTERM/SIGINT.

const http = require('node:http');
const path = require('node:path');

const modulePath = process.env.SOCKJS_PATH;
if (!modulePath) {
  console.error('SOCKJS_PATH is not set');
  process.exit(2);
}
const sockjs = require(path.resolve(modulePath));
const port = Number(process.env.PORT || 0);
const quiet = () => {};

const echo = sockjs.createServer({ log: quiet });
echo.on('connection', (conn) => {
  conn.on('data', (message) => conn.write(message));
});

// Sessions join an audience by sending 'join' (answered with 'joined');
// any other message goes to every member through `send`.
function audienceServer(send) {
  const members = new Set();
  const server = sockjs.createServer({ log: quiet });
  server.on('connection', (conn) => {
    conn.on('data', (message) => {
      if (message === 'join') {
        members.add(conn);
        conn.write('joined');
        return;
      }
      send(server, message, members);
    });
    conn.on('close', () => members.delete(conn));
  });
  return server;
}

const writeLoop = (server, message, members) => {
  for (const member of members) member.write(message);
};
const broadcast = audienceServer(writeLoop);
// The same fan-out through the package's one-call broadcast where it has one
// (this package), else the same write loop (sockjs 0.3.24 has none).
const nativeBroadcast = audienceServer((server, message, members) => {
  if (typeof server.broadcast === 'function') server.broadcast(message, members);
  else writeLoop(server, message, members);
});

const server = http.createServer();
echo.installHandlers(server, { prefix: '/echo' });
broadcast.installHandlers(server, { prefix: '/broadcast' });
nativeBroadcast.installHandlers(server, { prefix: '/broadcast-native' });

server.listen(port, '127.0.0.1', () => {
  process.stdout.write(`READY ${server.address().port}\n`);
});

const stop = () => process.exit(0);
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.stdin.on('end', stop);
process.stdin.on('error', stop);
process.stdin.resume();
