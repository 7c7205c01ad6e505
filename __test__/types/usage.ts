// Type-level test of index.d.ts: code written the way users of
// @types/sockjs write it. Checked with `tsc -p __test__/types`, never run.

import * as http from 'http';
import * as sockjs from 'sockjs';

const options: sockjs.ServerOptions = {
  prefix: '/echo',
  sockjs_url: 'http://cdn.example.com/sockjs.min.js',
  response_limit: 128 * 1024,
  websocket: true,
  jsessionid: false,
  log: (severity: string, message: string) => {
    if (severity === 'error') console.error(message);
  },
  heartbeat_delay: 25000,
  disconnect_delay: 5000,
};

const echo: sockjs.Server = sockjs.createServer(options);
const clients: { [id: string]: sockjs.Connection } = {};

echo.on('connection', (conn: sockjs.Connection) => {
  clients[conn.id] = conn;
  const ip: string = conn.remoteAddress || '';
  const port: number | undefined = conn.remotePort;
  const ua: string | undefined = conn.headers['user-agent'];
  const where = `${conn.url} ${conn.pathname} ${conn.prefix} ${conn.protocol}`;
  console.log(ip, port, ua, where, conn.address && conn.address.port, String(conn));

  conn.on('data', (message) => {
    const m: string = message;
    if (m === 'bye') {
      conn.close(3000, 'x');
      return;
    }
    const ok: boolean = conn.write(m);
    if (!ok && conn.readyState === 3) conn.end();
  });
  conn.on('close', () => {
    delete clients[conn.id];
  });
  conn.once('end', () => undefined);
});

const server = http.createServer();
const installed: boolean = echo.installHandlers(server, { prefix: '/echo' });
server.listen(9999, '0.0.0.0');
console.log(installed);

// A second server through the other entry points.
const other = sockjs.listen(server, {
  prefix: '/other',
  transports: ['websocket', 'xhr-streaming', 'xhr-polling'],
  jsessionid: (req, res) => {
    res.setHeader('Set-Cookie', `JSESSIONID=${req.headers.cookie ? 'kept' : 'new'}; path=/`);
  },
  base_url: () => 'http://localhost:9999',
  disable_cors: true,
  max_message_size: 1024 * 1024,
  faye_server_options: { ping: 30 },
});
other.attach(server);
other.detach(server);

// Pipe a connection into itself (the classic echo).
other.on('connection', (conn) => {
  conn.pipe(conn);
});

// Middleware and listener handlers.
const mw = echo.middleware({ prefix: '/mw' });
const plain = http.createServer((req, res) => {
  if (!mw(req, res, () => undefined)) {
    res.writeHead(404);
    res.end();
  }
});
plain.on('upgrade', (req, socket, head) => {
  const taken: boolean = mw.upgrade(req, socket, head);
  if (!taken) socket.end();
});
const handler = echo.listener({ prefix: '/raw' }).getHandler();
plain.on('request', (req, res) => handler(req, res));
plain.on('upgrade', (req, socket, head) => handler(req, socket, head));

// Whatever the server emits, `connection` listeners get a Connection.
new sockjs.Server().once('connection', (conn) => conn.destroySoon());

// Additions of this package: backpressure, broadcast and limits.
const limited = sockjs.createServer({
  high_water_mark: 64 * 1024,
  max_buffered_bytes: 1 << 24,
  origins: ['https://app.example.com', 'localhost:*'],
  max_sessions: 10000,
  max_message_size: 1 << 20,
});
limited.on('connection', (conn: sockjs.Connection) => {
  if (!conn.write('x')) conn.once('drain', () => conn.write(`buffered ${conn.bufferedAmount}`));
});
const reached: number = limited.broadcast('to everyone');
limited.broadcast('to some', []);
void reached;
