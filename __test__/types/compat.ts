// Type-level test: code that compiled against @types/sockjs 0.3.36 keeps
// compiling against index.d.ts. Checked with `tsc -p __test__/types`.

import sockjs from 'sockjs';
import * as http from 'http';

// The Connection is a NodeJS.ReadWriteStream, as @types/sockjs declared it.
function takesStream(s: NodeJS.ReadWriteStream): NodeJS.ReadWriteStream {
  return s;
}

const service = sockjs.createServer({ log: () => {} });
service.on('connection', (conn: sockjs.Connection) => {
  takesStream(conn);
  const readyState: number = conn.readyState;
  const id: string = conn.id;
  const headers: { [key: string]: string } = conn.headers;
  conn.close('3000', 'reason given as a string');
  conn.destroy();
  console.log(readyState, id, headers);
});
// The untyped catch-all listener still compiles.
service.on('anything', (...args: any[]) => console.log(args));
const result: any = service.installHandlers(http.createServer(), { prefix: '/s' });
console.log(result);
