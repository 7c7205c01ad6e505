'use strict';
// HTTP endpoints that are not transports: greeting, /info, iframe pages,
// /chunking_test, 404/405 dispatching, JSESSIONID, requests outside the
// prefixes, disable_cors and base_url.

const test = require('node:test');
const { describe, before, after } = test;
const assert = require('node:assert/strict');
const net = require('node:net');

const { startApp } = require('./helpers/app');
const {
  Collector,
  abortSession,
  get,
  openStream,
  post,
  request,
  sessionUrl,
} = require('./helpers/http');

const NO_CACHE = 'no-store, no-cache, no-transform, must-revalidate, max-age=0';
const ONE_YEAR = 31536000;
const TEST_APP_404 = '404 - Nothing here (via test app)';
const SOCKJS_404 = '404 Error: Page not found\n';

function assertLongCache(headers) {
  assert.equal(headers['cache-control'], `public, max-age=${ONE_YEAR}`);
  assert.ok(headers.expires, 'Expires header expected');
  const expires = Date.parse(headers.expires);
  assert.ok(Number.isFinite(expires), `Expires is a date: ${headers.expires}`);
  // About one year ahead (allow generous slack for clock granularity).
  const days = (expires - Date.now()) / 86400000;
  assert.ok(days > 360 && days < 370, `Expires about a year ahead, got ${days} days`);
  assert.equal(headers['last-modified'], undefined);
}

function accessControlHeaders(headers) {
  return Object.keys(headers).filter((h) => h.startsWith('access-control-'));
}

let app;
before(async () => {
  app = await startApp({ server: { disconnect_delay: 1000 } });
});
after(() => app.close());

// First, so that 0.3.24's chunking_test timer chain (about 4 s, it keeps
// running after the client aborts) overlaps the other tests.
describe('/chunking_test', () => {
  test('OPTIONS /chunking_test answers 204 with Allow-Methods "OPTIONS, POST" and long cache', async () => {
    const r = await request(`${app.base}/echo/chunking_test`, {
      method: 'OPTIONS',
      headers: { Origin: 'http://example.test' },
    });
    assert.equal(r.status, 204);
    assert.equal(r.body, '');
    assert.equal(r.headers['access-control-allow-methods'], 'OPTIONS, POST');
    assert.equal(r.headers['access-control-max-age'], String(ONE_YEAR));
    assert.equal(r.headers['access-control-allow-origin'], 'http://example.test');
    assertLongCache(r.headers);
  });

  test('POST /chunking_test streams "h\\n" then 2048 spaces + "h\\n"', async () => {
    const s = openStream(`${app.base}/echo/chunking_test`, { method: 'POST' });
    try {
      const { status, headers } = await s.response;
      assert.equal(status, 200);
      assert.equal(headers['content-type'], 'application/javascript; charset=UTF-8');
      assert.equal(headers['access-control-allow-origin'], '*');
      const expected = `h\n${' '.repeat(2048)}h\n`;
      const text = await s.readUntil((t) => t.length >= expected.length, 3000, 'the first two chunks');
      assert.equal(text.slice(0, expected.length), expected);
    } finally {
      s.destroy();
    }
  });
});

describe('greeting', () => {
  for (const path of ['/echo', '/echo/']) {
    test(`GET ${path} answers 200 "Welcome to SockJS!\\n" as text/plain UTF-8`, async () => {
      const r = await get(app.base + path);
      assert.equal(r.status, 200);
      assert.equal(r.headers['content-type'], 'text/plain; charset=UTF-8');
      assert.equal(r.body, 'Welcome to SockJS!\n');
      assert.equal(r.headers['set-cookie'], undefined);
    });
  }

  test('greeting on the jsessionid service sets no cookie', async () => {
    const r = await get(`${app.base}/cookie_needed_echo`);
    assert.equal(r.status, 200);
    assert.equal(r.body, 'Welcome to SockJS!\n');
    assert.equal(r.headers['set-cookie'], undefined);
  });
});

describe('/info', () => {
  test('GET /info answers JSON with websocket, cookie_needed, origins and entropy', async () => {
    const r = await get(`${app.base}/echo/info`);
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-type'], 'application/json; charset=UTF-8');
    const info = JSON.parse(r.body);
    assert.equal(info.websocket, true);
    assert.equal(info.cookie_needed, false);
    assert.deepEqual(info.origins, ['*:*']);
    assert.equal(typeof info.entropy, 'number');
    assert.ok(Number.isInteger(info.entropy), 'entropy is an integer');
    assert.ok(info.entropy >= 0 && info.entropy <= 0xffffffff, `entropy in [0, 2^32-1]: ${info.entropy}`);
    assert.equal(info.base_url, undefined);
  });

  test('GET /info gives a fresh entropy on each call', async () => {
    const seen = new Set();
    for (let i = 0; i < 4; i++) {
      const r = await get(`${app.base}/echo/info`);
      seen.add(JSON.parse(r.body).entropy);
    }
    // Four equal 32-bit random numbers in a row would be a broken source.
    assert.ok(seen.size >= 2, `entropy values: ${[...seen].join(', ')}`);
  });

  test('GET /info is not cacheable and sets no cookie', async () => {
    const r = await get(`${app.base}/echo/info`);
    assert.equal(r.headers['cache-control'], NO_CACHE);
    assert.equal(r.headers.expires, undefined);
    assert.equal(r.headers['last-modified'], undefined);
    assert.equal(r.headers['set-cookie'], undefined);
  });

  test('GET /info without Origin answers Access-Control-Allow-Origin "*" without credentials', async () => {
    const r = await get(`${app.base}/echo/info`);
    assert.equal(r.headers['access-control-allow-origin'], '*');
    assert.equal(r.headers['access-control-allow-credentials'], undefined);
    assert.equal(r.headers.vary, 'Origin');
  });

  test('GET /info with an Origin echoes it and allows credentials', async () => {
    const r = await get(`${app.base}/echo/info`, { Origin: 'http://example.test' });
    assert.equal(r.headers['access-control-allow-origin'], 'http://example.test');
    assert.equal(r.headers['access-control-allow-credentials'], 'true');
    assert.equal(r.headers.vary, 'Origin');
  });

  test('every answer has its own headers, past the 256 header blocks the engine gives ids to', async () => {
    // Each Origin makes a distinct header block: the first ones get ids and
    // go to JavaScript once, later ones go as text every time.
    const origins = Array.from({ length: 300 }, (_, i) => `http://o${i}.example.test`);
    for (const origin of [...origins, origins[3], origins[299], origins[3]]) {
      const r = await get(`${app.base}/echo/info`, { Origin: origin });
      assert.equal(r.status, 200);
      assert.equal(r.headers['access-control-allow-origin'], origin);
      assert.equal(r.headers['access-control-allow-credentials'], 'true');
    }
    const r = await get(`${app.base}/echo/info`);
    assert.equal(r.headers['access-control-allow-origin'], '*');
    assert.equal(r.headers['access-control-allow-credentials'], undefined);
  });

  test('GET /info with an empty Origin is answered as without one (sockjs-node tests it for truth)', async () => {
    const r = await get(`${app.base}/echo/info`, { Origin: '' });
    assert.equal(r.headers['access-control-allow-origin'], '*');
    assert.equal(r.headers['access-control-allow-credentials'], undefined);
  });

  test('GET /info with query string (as sockjs-client sends it) is served', async () => {
    const r = await get(`${app.base}/echo/info?t=1234567`);
    assert.equal(r.status, 200);
    assert.equal(JSON.parse(r.body).websocket, true);
  });

  test('OPTIONS /info answers 204 with Allow-Methods "OPTIONS, GET", Max-Age and long cache', async () => {
    const r = await request(`${app.base}/echo/info`, {
      method: 'OPTIONS',
      headers: { Origin: 'http://example.test', 'Access-Control-Request-Method': 'GET' },
    });
    assert.equal(r.status, 204);
    assert.equal(r.body, '');
    assert.equal(r.headers['access-control-allow-methods'], 'OPTIONS, GET');
    assert.equal(r.headers['access-control-max-age'], String(ONE_YEAR));
    assert.equal(r.headers['access-control-allow-origin'], 'http://example.test');
    assert.equal(r.headers['access-control-allow-credentials'], 'true');
    assertLongCache(r.headers);
  });

  test('OPTIONS /info with Origin "null" echoes "null"', async () => {
    const r = await request(`${app.base}/echo/info`, {
      method: 'OPTIONS',
      headers: { Origin: 'null', 'Access-Control-Request-Method': 'GET' },
    });
    assert.equal(r.status, 204);
    assert.equal(r.headers['access-control-allow-origin'], 'null');
  });

  test('GET /info on /disabled_websocket_echo says websocket: false', async () => {
    const r = await get(`${app.base}/disabled_websocket_echo/info`);
    assert.equal(r.status, 200);
    const info = JSON.parse(r.body);
    assert.equal(info.websocket, false);
    assert.equal(info.cookie_needed, false);
  });

  test('GET /info on /cookie_needed_echo says cookie_needed: true and sets no cookie', async () => {
    const r = await get(`${app.base}/cookie_needed_echo/info`);
    assert.equal(r.status, 200);
    const info = JSON.parse(r.body);
    assert.equal(info.cookie_needed, true);
    assert.equal(info.websocket, true);
    assert.equal(r.headers['set-cookie'], undefined);
  });
});

describe('iframe pages', () => {
  const SOCKJS_URL = 'http://localhost:8080/lib/sockjs.js';

  for (const name of ['/iframe.html', '/iframe-a.html', '/iframe-1.2.3.html', '/iframe-0.1.2abc-dirty.2144.html']) {
    test(`GET ${name} serves the iframe page with the configured sockjs_url`, async () => {
      const r = await get(app.base + '/echo' + name);
      assert.equal(r.status, 200);
      assert.equal(r.headers['content-type'], 'text/html; charset=UTF-8');
      assert.ok(r.body.startsWith('<!DOCTYPE html>'), 'page starts with the doctype');
      assert.ok(r.body.includes(`<script src="${SOCKJS_URL}"></script>`), 'script tag with sockjs_url');
      assert.ok(r.body.includes('document.domain = document.domain;'));
      assert.ok(r.body.includes('SockJS.bootstrap_iframe();'));
      assert.equal(Number(r.headers['content-length']), Buffer.byteLength(r.body));
      assert.equal(r.headers['set-cookie'], undefined);
    });
  }

  test('GET /iframe-a.html?t=123 (cache-busting query) serves the page', async () => {
    const r = await get(`${app.base}/echo/iframe-a.html?t=123`);
    assert.equal(r.status, 200);
    assert.ok(r.body.includes(SOCKJS_URL));
  });

  test('iframe page is cacheable for a year: Cache-Control public, max-age=31536000 and Expires', async () => {
    const r = await get(`${app.base}/echo/iframe.html`);
    assert.equal(r.status, 200);
    assertLongCache(r.headers);
  });

  test('iframe page has a stable quoted ETag; the same for every iframe name', async () => {
    const r1 = await get(`${app.base}/echo/iframe.html`);
    const r2 = await get(`${app.base}/echo/iframe.html`);
    const r3 = await get(`${app.base}/echo/iframe-1.2.3.html`);
    assert.match(r1.headers.etag, /^"[^"]+"$/);
    assert.equal(r1.headers.etag, r2.headers.etag);
    assert.equal(r1.headers.etag, r3.headers.etag);
  });

  test('If-None-Match with the ETag answers 304 with an empty body and no content-type', async () => {
    const r1 = await get(`${app.base}/echo/iframe.html`);
    const r = await get(`${app.base}/echo/iframe.html`, { 'If-None-Match': r1.headers.etag });
    assert.equal(r.status, 304);
    assert.equal(r.body, '');
    assert.equal(r.headers['content-type'], undefined);
  });

  test('If-None-Match with another ETag answers 200 with the page', async () => {
    const r = await get(`${app.base}/echo/iframe.html`, { 'If-None-Match': '"not-the-etag"' });
    assert.equal(r.status, 200);
    assert.ok(r.body.includes(SOCKJS_URL));
  });

  test('a different sockjs_url gives a page with that url and a different ETag', async () => {
    const other = await startApp({ server: { sockjs_url: '/static/sockjs-custom.js' } });
    try {
      const r = await get(`${other.base}/echo/iframe.html`);
      assert.equal(r.status, 200);
      assert.ok(r.body.includes('<script src="/static/sockjs-custom.js"></script>'));
      assert.ok(!r.body.includes(SOCKJS_URL));
      const def = await get(`${app.base}/echo/iframe.html`);
      assert.notEqual(r.headers.etag, def.headers.etag);
    } finally {
      await other.close();
    }
  });

  for (const name of ['/iframe.htm', '/iframe-.HTML', '/iframe', '/IFRAME.HTML', '/iframe.HTML', '/iframe.xml', '/iframe-/.html']) {
    test(`GET ${name} answers 404`, async () => {
      const r = await get(app.base + '/echo' + name);
      assert.equal(r.status, 404);
      assert.notEqual(r.body, TEST_APP_404);
    });
  }
});

describe('404 inside the prefix', () => {
  const paths = [
    ['GET', '/echo/a'],
    ['GET', '/echo/a.html'],
    ['GET', '/echo//'],
    ['GET', '/echo///'],
    ['GET', '/echo/a/a'],
    ['GET', '/echo/a/a/'],
    ['GET', '/echo/a/b/unknown'],
    ['POST', '/echo/a/b/c/xhr'],
    ['POST', '/echo/a.b/c/xhr'],
    ['POST', '/echo/a/b.c/xhr'],
    ['POST', '/echo//c/xhr'],
    ['POST', '/echo/a//xhr'],
    ['POST', '/echo///xhr'],
    ['GET', '/echo/a/b/c/eventsource'],
  ];
  for (const [method, path] of paths) {
    test(`${method} ${path} answers 404 from sockjs`, async () => {
      const r = await request(app.base + path, { method });
      assert.equal(r.status, 404);
      assert.notEqual(r.body, TEST_APP_404, 'must be answered by sockjs, not the app listener');
    });
  }

  test('404 body and content type are those of sockjs 0.3.24', async () => {
    const r = await get(`${app.base}/echo/nope`);
    assert.equal(r.status, 404);
    assert.equal(r.headers['content-type'], 'text/plain; charset=UTF-8');
    assert.equal(r.body, SOCKJS_404);
  });

  test('a session path with a trailing slash is accepted (POST /echo/a/b/xhr/)', async () => {
    const url = sessionUrl(app.base);
    const r = await post(`${url}/xhr/`);
    assert.equal(r.status, 200);
    assert.equal(r.body, 'o\n');
  });

  test('any server and session id without dots or slashes is accepted', async () => {
    for (const part of ['/_/_x', '/1/x2', `/abcdefgh_i-j%20/abc_i-j%20${Date.now()}`]) {
      const r = await post(`${app.base}/echo${part}/xhr`);
      assert.equal(r.status, 200, part);
      assert.equal(r.body, 'o\n', part);
    }
  });
});

describe('405 with Allow', () => {
  const cases = [
    ['POST', '/echo', 'GET'],
    ['POST', '/echo/', 'GET'],
    ['PUT', '/echo/info', 'OPTIONS, GET'],
    ['POST', '/echo/info', 'OPTIONS, GET'],
    ['POST', '/echo/iframe.html', 'GET'],
    ['GET', '/echo/chunking_test', 'OPTIONS, POST'],
    ['GET', '/echo/a/b/xhr', 'POST, OPTIONS'],
    ['GET', '/echo/a/b/xhr_send', 'POST, OPTIONS'],
    ['GET', '/echo/a/b/xhr_streaming', 'POST, OPTIONS'],
    ['PUT', '/echo/a/b/xhr', 'POST, OPTIONS'],
    ['POST', '/echo/a/b/jsonp', 'GET'],
    ['GET', '/echo/a/b/jsonp_send', 'POST'],
    ['POST', '/echo/a/b/eventsource', 'GET'],
    ['OPTIONS', '/echo/a/b/htmlfile', 'GET'],
    ['POST', '/echo/a/b/websocket', 'GET'],
    ['POST', '/echo/websocket', 'GET'],
  ];
  for (const [method, path, allow] of cases) {
    test(`${method} ${path} answers 405 with Allow "${allow}"`, async () => {
      const r = await request(app.base + path, { method });
      assert.equal(r.status, 405);
      assert.equal(r.headers.allow, allow);
      assert.equal(r.body, '');
      assert.equal(r.headers['content-type'], undefined);
    });
  }
});

describe('JSESSIONID', () => {
  test('xhr on /cookie_needed_echo sets JSESSIONID=dummy; path=/ without a cookie', async () => {
    const url = sessionUrl(app.base, '/cookie_needed_echo');
    const r = await post(`${url}/xhr`);
    assert.equal(r.status, 200);
    assert.equal(r.body, 'o\n');
    assert.deepEqual(r.headers['set-cookie'], ['JSESSIONID=dummy; path=/']);
  });

  test('xhr on /cookie_needed_echo echoes the JSESSIONID the client sent', async () => {
    const url = sessionUrl(app.base, '/cookie_needed_echo');
    const r = await post(`${url}/xhr`, undefined, { Cookie: 'a=b; JSESSIONID=abcdef; c=d' });
    assert.equal(r.status, 200);
    assert.equal(r.body, 'o\n');
    assert.deepEqual(r.headers['set-cookie'], ['JSESSIONID=abcdef; path=/']);
  });

  test('xhr_send, jsonp and jsonp_send on /cookie_needed_echo set the cookie too', async () => {
    const url = sessionUrl(app.base, '/cookie_needed_echo');
    const j = await get(`${url}/jsonp?c=cb`);
    assert.equal(j.body, '/**/cb("o");\r\n');
    assert.deepEqual(j.headers['set-cookie'], ['JSESSIONID=dummy; path=/']);
    const js = await post(`${url}/jsonp_send`, 'd=%5B%22x%22%5D', {
      'Content-Type': 'application/x-www-form-urlencoded',
    });
    assert.equal(js.body, 'ok');
    assert.deepEqual(js.headers['set-cookie'], ['JSESSIONID=dummy; path=/']);
    const xs = await post(`${url}/xhr_send`, '["y"]');
    assert.equal(xs.status, 204);
    assert.deepEqual(xs.headers['set-cookie'], ['JSESSIONID=dummy; path=/']);
    const back = await get(`${url}/jsonp?c=cb`);
    assert.equal(back.body, '/**/cb("a[\\"x\\",\\"y\\"]");\r\n');
  });

  test('streaming transports on /cookie_needed_echo set the cookie', async () => {
    for (const [method, suffix] of [
      ['POST', 'xhr_streaming'],
      ['GET', 'eventsource'],
      ['GET', 'htmlfile?c=cb'],
    ]) {
      const url = sessionUrl(app.base, '/cookie_needed_echo');
      const s = openStream(`${url}/${suffix}`, { method });
      try {
        const { status, headers } = await s.response;
        assert.equal(status, 200, suffix);
        assert.deepEqual(headers['set-cookie'], ['JSESSIONID=dummy; path=/'], suffix);
      } finally {
        s.destroy();
      }
    }
  });

  test('xhr on /echo (jsessionid off) sets no cookie', async () => {
    const url = sessionUrl(app.base);
    const r = await post(`${url}/xhr`, undefined, { Cookie: 'JSESSIONID=abcdef' });
    assert.equal(r.status, 200);
    assert.equal(r.headers['set-cookie'], undefined);
  });

  test('jsessionid as a function(req, res) is called for each session request and may set headers', async () => {
    const calls = [];
    const jsessionid = (req, res) => {
      calls.push([req.method, req.url]);
      res.setHeader('Set-Cookie', 'MYSID=42; path=/');
    };
    const custom = await startApp({ install: { jsessionid } });
    try {
      const url = sessionUrl(custom.base);
      const path = new URL(url).pathname;
      const r = await post(`${url}/xhr`);
      assert.equal(r.body, 'o\n');
      assert.deepEqual(r.headers['set-cookie'], ['MYSID=42; path=/']);
      // The engine's own headers still go out beside the application's.
      assert.equal(r.headers['content-type'], 'application/javascript; charset=UTF-8');
      const s = await post(`${url}/xhr_send`, '["m"]');
      assert.equal(s.status, 204);
      assert.deepEqual(s.headers['set-cookie'], ['MYSID=42; path=/']);
      const p = await post(`${url}/xhr`);
      assert.equal(p.body, 'a["m"]\n');
      assert.deepEqual(calls, [
        ['POST', `${path}/xhr`],
        ['POST', `${path}/xhr_send`],
        ['POST', `${path}/xhr`],
      ]);
      await abortSession(url);
    } finally {
      await custom.close();
    }
  });
});

describe('requests outside the prefixes', () => {
  for (const path of ['/', '/other', '/echoX', '/ech', '/echo_x/info', '/xecho', '/ECHO']) {
    test(`GET ${path} reaches the earlier listener untouched`, async () => {
      const r = await get(app.base + path);
      assert.equal(r.status, 404);
      assert.equal(r.body, TEST_APP_404);
      assert.equal(r.headers['content-type'], 'text/plain');
      assert.equal(r.headers['access-control-allow-origin'], undefined);
    });
  }

  test('POST /echoX/a/b/xhr reaches the earlier listener untouched', async () => {
    const r = await post(`${app.base}/echoX/a/b/xhr`);
    assert.equal(r.status, 404);
    assert.equal(r.body, TEST_APP_404);
  });

  test('an upgrade request outside the prefixes reaches the earlier upgrade listener', async () => {
    const sock = net.connect(app.port, '127.0.0.1');
    const c = new Collector(sock);
    try {
      sock.write(
        'GET /other/websocket HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\n' +
          'Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n' +
          'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
      );
      // The test app's upgrade listener ends the socket without a word.
      const text = await c.waitEnd(3000, 'the app upgrade listener to end the socket');
      assert.equal(text, '');
    } finally {
      sock.destroy();
    }
  });
});

describe('disable_cors', () => {
  let nocors;
  before(async () => {
    nocors = await startApp({ install: { disable_cors: true } });
  });
  after(() => nocors.close());

  test('GET /info with disable_cors has no Access-Control-* headers and no origins', async () => {
    const r = await get(`${nocors.base}/echo/info`, { Origin: 'http://example.test' });
    assert.equal(r.status, 200);
    assert.deepEqual(accessControlHeaders(r.headers), []);
    assert.equal(r.headers.vary, undefined);
    const info = JSON.parse(r.body);
    assert.equal('origins' in info, false);
    assert.equal(info.websocket, true);
  });

  test('xhr and xhr_send with disable_cors have no Access-Control-* headers', async () => {
    const url = sessionUrl(nocors.base);
    const headers = { Origin: 'http://example.test', 'Access-Control-Request-Headers': 'x-a' };
    const r = await post(`${url}/xhr`, undefined, headers);
    assert.equal(r.body, 'o\n');
    assert.deepEqual(accessControlHeaders(r.headers), []);
    const s = await post(`${url}/xhr_send`, '["a"]', headers);
    assert.equal(s.status, 204);
    assert.deepEqual(accessControlHeaders(s.headers), []);
    const p = await post(`${url}/xhr`, undefined, headers);
    assert.equal(p.body, 'a["a"]\n');
    assert.deepEqual(accessControlHeaders(p.headers), []);
    await abortSession(url);
  });

  test('OPTIONS preflight with disable_cors gives no Access-Control-Allow-Origin', async () => {
    const r = await request(`${nocors.base}/echo/a/b/xhr`, {
      method: 'OPTIONS',
      headers: { Origin: 'http://example.test' },
    });
    assert.equal(r.status, 204);
    assert.equal(r.headers['access-control-allow-origin'], undefined);
    assert.equal(r.headers['access-control-allow-credentials'], undefined);
  });
});

describe('base_url', () => {
  test('base_url as a string appears in /info', async () => {
    const b = await startApp({ install: { base_url: 'http://cdn.example.test/echo' } });
    try {
      const r = await get(`${b.base}/echo/info`);
      assert.equal(JSON.parse(r.body).base_url, 'http://cdn.example.test/echo');
    } finally {
      await b.close();
    }
  });

  test('base_url as a function is called for each /info request', async () => {
    let n = 0;
    const b = await startApp({ install: { base_url: () => `http://n${++n}.example.test/echo` } });
    try {
      const r1 = JSON.parse((await get(`${b.base}/echo/info`)).body);
      const r2 = JSON.parse((await get(`${b.base}/echo/info`)).body);
      assert.equal(r1.base_url, 'http://n1.example.test/echo');
      assert.equal(r2.base_url, 'http://n2.example.test/echo');
      assert.equal(n, 2);
    } finally {
      await b.close();
    }
  });
});
