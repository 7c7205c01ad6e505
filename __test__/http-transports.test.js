'use strict';
// HTTP transports: xhr polling, xhr_send, xhr_streaming, eventsource,
// htmlfile, jsonp and jsonp_send. Framing, headers, CORS, preflights,
// response_limit, heartbeats, disconnect_delay, concurrent receivers,
// close frames, the server 'close' event, aborts, quoting and unicode.

const test = require('node:test');
const { describe, before, after } = test;
const assert = require('node:assert/strict');
const net = require('node:net');

const { startApp } = require('./helpers/app');
const {
  PRELUDE,
  abortSession,
  get,
  messagesOf,
  openStream,
  openXhrSession,
  post,
  request,
  requestSeen,
  sessionUrl,
  waitForEvent,
  xhrFrames,
} = require('./helpers/http');

const NO_CACHE = 'no-store, no-cache, no-transform, must-revalidate, max-age=0';
const JS_TYPE = 'application/javascript; charset=UTF-8';
const ONE_YEAR = 31536000;
const ORIGIN = 'http://example.test';

const HTMLFILE_HEAD = (cb) =>
  '<!doctype html>\n<html><head>\n' +
  '  <meta http-equiv="X-UA-Compatible" content="IE=edge" />\n' +
  '  <meta http-equiv="Content-Type" content="text/html; charset=UTF-8" />\n' +
  "</head><body><h2>Don't panic!</h2>\n  <script>\n" +
  '    document.domain = document.domain;\n' +
  `    var c = parent.${cb};\n` +
  '    c.start();\n' +
  '    function p(d) {c.message(d);};\n' +
  '    window.onload = function() {c.stop();};\n' +
  '  </script>';

const htmlFrame = (frame) => `<script>\np(${JSON.stringify(frame)});\n</script>\r\n`;
const jsonpFrame = (cb, frame) => `/**/${cb}(${JSON.stringify(frame)});\r\n`;
const esFrame = (frame) => `data: ${frame}\r\n\r\n`;

/** The connection object the server emits for the next session. */
function nextConnection(server, ms = 3000) {
  return waitForEvent(server, 'connection', ms, "the server's 'connection' event").then(([c]) => c);
}

/** Count 'close' events on a connection. */
function countCloses(conn) {
  const counter = { n: 0 };
  conn.on('close', () => {
    counter.n += 1;
  });
  return counter;
}

/**
 * Start a request the server will hold without sending headers (a pending
 * poll); resolves with the stream once the server has taken it in.
 */
async function openPending(httpServer, url, opts) {
  const u = new URL(url);
  const seen = requestSeen(httpServer, u.pathname + u.search);
  const s = openStream(url, opts);
  try {
    await seen;
  } catch (err) {
    s.destroy();
    throw err;
  }
  return s;
}

/** Messages carried by all "data: a[...]" frames of an eventsource body. */
function esMessages(text) {
  const out = [];
  for (const m of text.matchAll(/data: (a\[.*?\])\r\n\r\n/g)) out.push(...JSON.parse(m[1].slice(1)));
  return out;
}

/** Messages carried by all p("a[...]") frames of an htmlfile body. */
function htmlMessages(text) {
  const out = [];
  for (const m of text.matchAll(/<script>\np\(("a.*?")\);\n<\/script>\r\n/g)) {
    out.push(...JSON.parse(JSON.parse(m[1]).slice(1)));
  }
  return out;
}

let app;
before(async () => {
  app = await startApp({ server: { disconnect_delay: 1000 } });
});
after(() => app.close());

describe('xhr polling and xhr_send', () => {
  test('xhr: a new session answers "o\\n" as application/javascript, not cacheable', async () => {
    const url = sessionUrl(app.base);
    const r = await post(`${url}/xhr`);
    assert.equal(r.status, 200);
    assert.equal(r.body, 'o\n');
    assert.equal(r.headers['content-type'], JS_TYPE);
    assert.equal(r.headers['cache-control'], NO_CACHE);
    assert.equal(r.headers.expires, undefined);
    assert.equal(r.headers['last-modified'], undefined);
    await abortSession(url);
  });

  test('xhr_send: answers 204, empty body, text/plain UTF-8, not cacheable; message echoes as a["x"]\\n', async () => {
    const url = sessionUrl(app.base);
    await openXhrSession(url);
    const s = await post(`${url}/xhr_send`, '["x"]');
    assert.equal(s.status, 204);
    assert.equal(s.body, '');
    assert.equal(s.headers['content-type'], 'text/plain; charset=UTF-8');
    assert.equal(s.headers['cache-control'], NO_CACHE);
    const p = await post(`${url}/xhr`);
    assert.equal(p.status, 200);
    assert.equal(p.body, 'a["x"]\n');
    await abortSession(url);
  });

  test('xhr_send: several messages and several sends are delivered in order in one frame', async () => {
    const url = sessionUrl(app.base);
    await openXhrSession(url);
    assert.equal((await post(`${url}/xhr_send`, '["a","b"]')).status, 204);
    assert.equal((await post(`${url}/xhr_send`, '["c"]')).status, 204);
    const p = await post(`${url}/xhr`);
    assert.equal(p.body, 'a["a","b","c"]\n');
    await abortSession(url);
  });

  test('xhr_send: an empty array is accepted and delivers nothing', async () => {
    const url = sessionUrl(app.base);
    await openXhrSession(url);
    assert.equal((await post(`${url}/xhr_send`, '[]')).status, 204);
    assert.equal((await post(`${url}/xhr_send`, '["z"]')).status, 204);
    assert.equal((await post(`${url}/xhr`)).body, 'a["z"]\n');
    await abortSession(url);
  });

  test('xhr_send: accepted with the content types sockjs-client and old browsers use', async () => {
    const url = sessionUrl(app.base);
    await openXhrSession(url);
    const types = ['text/plain', 'T', 'application/json', 'application/xml', '', 'text/plain;charset=UTF-8', 'text/xml'];
    for (const ct of types) {
      const headers = ct === '' ? {} : { 'Content-Type': ct };
      const r = await post(`${url}/xhr_send`, '["a"]', headers);
      assert.equal(r.status, 204, `content type ${JSON.stringify(ct)}`);
    }
    const p = await post(`${url}/xhr`);
    assert.equal(p.body, `a[${types.map(() => '"a"').join(',')}]\n`);
    await abortSession(url);
  });

  test('xhr: the server id part is ignored, only the session id names the session', async () => {
    const sid = new URL(sessionUrl(app.base)).pathname.split('/').pop();
    assert.equal((await post(`${app.base}/echo/000/${sid}/xhr`)).body, 'o\n');
    assert.equal((await post(`${app.base}/echo/111/${sid}/xhr_send`, '["s"]')).status, 204);
    assert.equal((await post(`${app.base}/echo/999/${sid}/xhr`)).body, 'a["s"]\n');
    await abortSession(`${app.base}/echo/000/${sid}`);
  });

  test('xhr: a pending poll is answered as soon as a message is sent', async () => {
    const url = sessionUrl(app.base);
    await openXhrSession(url);
    const poll = await openPending(app.http, `${url}/xhr`, { method: 'POST' });
    try {
      const s = await post(`${url}/xhr_send`, '["late"]');
      assert.equal(s.status, 204);
      const body = await poll.waitEnd(3000, 'the pending poll to be answered');
      assert.equal((await poll.response).status, 200);
      assert.equal(body, 'a["late"]\n');
    } finally {
      poll.destroy();
    }
    await abortSession(url);
  });
});

describe('CORS and preflights', () => {
  test('xhr with Origin echoes it, allows credentials and varies on Origin', async () => {
    const url = sessionUrl(app.base);
    const r = await post(`${url}/xhr`, undefined, { Origin: ORIGIN });
    assert.equal(r.body, 'o\n');
    assert.equal(r.headers['access-control-allow-origin'], ORIGIN);
    assert.equal(r.headers['access-control-allow-credentials'], 'true');
    assert.equal(r.headers.vary, 'Origin');
    const s = await post(`${url}/xhr_send`, '["x"]', { Origin: ORIGIN });
    assert.equal(s.headers['access-control-allow-origin'], ORIGIN);
    assert.equal(s.headers['access-control-allow-credentials'], 'true');
    await abortSession(url);
  });

  test('xhr without Origin answers Access-Control-Allow-Origin "*" and no credentials', async () => {
    const url = sessionUrl(app.base);
    const r = await post(`${url}/xhr`);
    assert.equal(r.headers['access-control-allow-origin'], '*');
    assert.equal(r.headers['access-control-allow-credentials'], undefined);
    assert.equal(r.headers.vary, 'Origin');
    await abortSession(url);
  });

  test('xhr echoes Access-Control-Request-Headers as Access-Control-Allow-Headers', async () => {
    const url = sessionUrl(app.base);
    const r = await post(`${url}/xhr`, undefined, { Origin: ORIGIN, 'Access-Control-Request-Headers': 'a, b, c' });
    assert.equal(r.headers['access-control-allow-headers'], 'a, b, c');
    const r2 = await post(`${url}/xhr_send`, '[]', { Origin: ORIGIN });
    assert.equal(r2.headers['access-control-allow-headers'], undefined);
    await abortSession(url);
  });

  for (const suffix of ['xhr', 'xhr_send', 'xhr_streaming']) {
    test(`OPTIONS ${suffix}: 204, Allow-Methods "OPTIONS, POST", Max-Age, long cache, CORS`, async () => {
      const r = await request(`${app.base}/echo/abc/abc/${suffix}`, {
        method: 'OPTIONS',
        headers: {
          Origin: ORIGIN,
          'Access-Control-Request-Method': 'POST',
          'Access-Control-Request-Headers': 'content-type',
        },
      });
      assert.equal(r.status, 204);
      assert.equal(r.body, '');
      assert.equal(r.headers['access-control-allow-methods'], 'OPTIONS, POST');
      assert.equal(r.headers['access-control-max-age'], String(ONE_YEAR));
      assert.equal(r.headers['cache-control'], `public, max-age=${ONE_YEAR}`);
      assert.ok(Number.isFinite(Date.parse(r.headers.expires)), `Expires: ${r.headers.expires}`);
      assert.ok(Date.parse(r.headers.expires) > Date.now() + 300 * 86400000, 'Expires far ahead');
      assert.equal(r.headers['access-control-allow-origin'], ORIGIN);
      assert.equal(r.headers['access-control-allow-credentials'], 'true');
      assert.equal(r.headers['access-control-allow-headers'], 'content-type');
    });
  }

  test('OPTIONS does not create a session', async () => {
    const url = sessionUrl(app.base);
    const o = await request(`${url}/xhr`, { method: 'OPTIONS' });
    assert.equal(o.status, 204);
    const s = await post(`${url}/xhr_send`, '["x"]');
    assert.equal(s.status, 404);
  });
});

describe('xhr_streaming', () => {
  test('xhr_streaming: 2048 "h" prelude + "\\n", then "o\\n", then message frames', async () => {
    const url = sessionUrl(app.base);
    const s = openStream(`${url}/xhr_streaming`, { method: 'POST', headers: { Origin: ORIGIN } });
    try {
      const { status, headers } = await s.response;
      assert.equal(status, 200);
      assert.equal(headers['content-type'], JS_TYPE);
      assert.equal(headers['cache-control'], NO_CACHE);
      assert.equal(headers['access-control-allow-origin'], ORIGIN);
      assert.equal(headers['access-control-allow-credentials'], 'true');
      assert.equal(headers['content-length'], undefined);
      await s.readUntil((t) => t.length >= PRELUDE.length + 2, 3000, 'prelude and open frame');
      assert.equal(s.text, `${PRELUDE}o\n`);
      const r = await post(`${url}/xhr_send`, '["x"]');
      assert.equal(r.status, 204);
      const text = await s.readUntil((t) => t.endsWith('a["x"]\n'), 3000, 'the echoed frame');
      assert.equal(text, `${PRELUDE}o\na["x"]\n`);
    } finally {
      s.destroy();
    }
  });
});

describe('eventsource', () => {
  test('eventsource: text/event-stream, "\\r\\n" prelude, "data: o\\r\\n\\r\\n", then data frames', async () => {
    const url = sessionUrl(app.base);
    const s = openStream(`${url}/eventsource`);
    try {
      const { status, headers } = await s.response;
      assert.equal(status, 200);
      assert.equal(headers['content-type'], 'text/event-stream');
      assert.equal(headers['cache-control'], NO_CACHE);
      await s.readUntil((t) => t.length >= 2 + esFrame('o').length, 3000, 'prelude and open frame');
      assert.equal(s.text, `\r\n${esFrame('o')}`);
      assert.equal((await post(`${url}/xhr_send`, '["x"]')).status, 204);
      await s.readUntil((t) => t.endsWith(esFrame('a["x"]')), 3000, 'the echoed frame');
      assert.equal(s.text, `\r\n${esFrame('o')}${esFrame('a["x"]')}`);
      // Newlines and NUL are JSON-escaped inside the data line.
      assert.equal((await post(`${url}/xhr_send`, '["  \\u0000\\n\\r "]')).status, 204);
      const frame = esFrame('a["  \\u0000\\n\\r "]');
      await s.readUntil((t) => t.endsWith(frame), 3000, 'the escaped frame');
    } finally {
      s.destroy();
    }
  });

  test('eventsource: CORS origin echo with credentials; "null" origin gives "*"', async () => {
    for (const [origin, expected, creds] of [
      [ORIGIN, ORIGIN, 'true'],
      ['null', '*', undefined],
      [undefined, '*', undefined],
    ]) {
      const url = sessionUrl(app.base);
      const s = openStream(`${url}/eventsource`, { headers: origin ? { Origin: origin } : {} });
      try {
        const { headers } = await s.response;
        assert.equal(headers['access-control-allow-origin'], expected, `origin ${origin}`);
        assert.equal(headers['access-control-allow-credentials'], creds, `origin ${origin}`);
      } finally {
        s.destroy();
      }
    }
  });
});

describe('htmlfile', () => {
  test('htmlfile: text/html page padded past 1024 bytes with the callback, then script frames', async () => {
    const url = sessionUrl(app.base);
    const s = openStream(`${url}/htmlfile?c=%63allback`);
    try {
      const { status, headers } = await s.response;
      assert.equal(status, 200);
      assert.equal(headers['content-type'], 'text/html; charset=UTF-8');
      assert.equal(headers['cache-control'], NO_CACHE);
      const open = htmlFrame('o');
      const text = await s.readUntil((t) => t.endsWith(open), 3000, 'the open frame');
      const head = text.slice(0, text.length - open.length);
      assert.ok(head.length > 1024, `head is ${head.length} bytes`);
      assert.equal(head.trim(), HTMLFILE_HEAD('callback'));
      assert.ok(head.endsWith('\r\n\r\n'), 'padding ends with a blank line');
      assert.equal((await post(`${url}/xhr_send`, '["x"]')).status, 204);
      await s.readUntil((t) => t.endsWith(htmlFrame('a["x"]')), 3000, 'the echoed frame');
      assert.equal(s.text, head + open + '<script>\np("a[\\"x\\"]");\n</script>\r\n');
    } finally {
      s.destroy();
    }
  });

  test('htmlfile: the "callback" parameter name is accepted as well as "c"', async () => {
    const url = sessionUrl(app.base);
    const s = openStream(`${url}/htmlfile?callback=my_cb.x-1`);
    try {
      const text = await s.readUntil((t) => t.endsWith(htmlFrame('o')), 3000, 'the open frame');
      assert.ok(text.includes('var c = parent.my_cb.x-1;'));
    } finally {
      s.destroy();
    }
  });
});

describe('jsonp', () => {
  test('jsonp: "/**/cb(\\"o\\");\\r\\n" as application/javascript with nosniff, not cacheable', async () => {
    const url = sessionUrl(app.base);
    const r = await get(`${url}/jsonp?c=%63allback`);
    assert.equal(r.status, 200);
    assert.equal(r.body, '/**/callback("o");\r\n');
    assert.equal(r.headers['content-type'], JS_TYPE);
    assert.equal(r.headers['x-content-type-options'], 'nosniff');
    assert.equal(r.headers['cache-control'], NO_CACHE);
    await abortSession(url);
  });

  test('jsonp_send form-encoded d=: answers 200 "ok" (text/plain, length 2); message comes back', async () => {
    const url = sessionUrl(app.base);
    assert.equal((await get(`${url}/jsonp?c=x`)).body, jsonpFrame('x', 'o'));
    const s = await post(`${url}/jsonp_send`, `d=${encodeURIComponent('["x"]')}`, {
      'Content-Type': 'application/x-www-form-urlencoded',
    });
    assert.equal(s.status, 200);
    assert.equal(s.body, 'ok');
    assert.equal(s.headers['content-type'], 'text/plain; charset=UTF-8');
    assert.equal(s.headers['content-length'], '2');
    assert.equal(s.headers['cache-control'], NO_CACHE);
    const r = await get(`${url}/jsonp?c=x`);
    assert.equal(r.body, '/**/x("a[\\"x\\"]");\r\n');
    await abortSession(url);
  });

  test('jsonp_send text/plain body: answers "ok"; messages in order with form-encoded ones', async () => {
    const url = sessionUrl(app.base);
    assert.equal((await get(`${url}/jsonp?callback=x`)).body, jsonpFrame('x', 'o'));
    const a = await post(`${url}/jsonp_send`, 'd=%5B%22abc%22%5D', {
      'Content-Type': 'application/x-www-form-urlencoded',
    });
    assert.equal(a.body, 'ok');
    const b = await post(`${url}/jsonp_send`, '["%61bc"]', { 'Content-Type': 'text/plain' });
    assert.equal(b.status, 200);
    assert.equal(b.body, 'ok');
    const r = await get(`${url}/jsonp?c=x`);
    assert.equal(r.body, '/**/x("a[\\"abc\\",\\"%61bc\\"]");\r\n');
    await abortSession(url);
  });

  test('jsonp_send: an empty array d=[] is accepted', async () => {
    const url = sessionUrl(app.base);
    await get(`${url}/jsonp?c=x`);
    const e = await post(`${url}/jsonp_send`, 'd=%5B%5D', { 'Content-Type': 'application/x-www-form-urlencoded' });
    assert.equal(e.body, 'ok');
    await post(`${url}/jsonp_send`, 'd=%5B%22y%22%5D', { 'Content-Type': 'application/x-www-form-urlencoded' });
    assert.equal((await get(`${url}/jsonp?c=x`)).body, jsonpFrame('x', 'a["y"]'));
    await abortSession(url);
  });
});

describe('response_limit (4096 on /echo)', () => {
  const big = 'x'.repeat(4200);

  test('xhr_streaming ends after the limit and the session continues on a new request', async () => {
    const url = sessionUrl(app.base);
    const s1 = openStream(`${url}/xhr_streaming`, { method: 'POST' });
    let s2 = null;
    try {
      await s1.readUntil((t) => t === `${PRELUDE}o\n`, 3000, 'prelude and open frame');
      assert.equal((await post(`${url}/xhr_send`, JSON.stringify([big]))).status, 204);
      const text = await s1.waitEnd(3000, 'the streaming response to end after the limit');
      assert.equal(text, `${PRELUDE}o\na${JSON.stringify([big])}\n`);
      s2 = openStream(`${url}/xhr_streaming`, { method: 'POST' });
      await s2.readUntil((t) => t.length >= PRELUDE.length, 3000, 'the prelude of the next request');
      assert.equal((await post(`${url}/xhr_send`, '["again"]')).status, 204);
      const t2 = await s2.readUntil((t) => t.endsWith('\n') && t.length > PRELUDE.length, 3000, 'the next frame');
      assert.equal(t2, `${PRELUDE}a["again"]\n`);
    } finally {
      s1.destroy();
      if (s2) s2.destroy();
    }
  });

  test('eventsource ends after the limit and the session continues on a new request', async () => {
    const url = sessionUrl(app.base);
    const s1 = openStream(`${url}/eventsource`);
    let s2 = null;
    try {
      await s1.readUntil((t) => t.endsWith(esFrame('o')), 3000, 'the open frame');
      assert.equal((await post(`${url}/xhr_send`, JSON.stringify([big]))).status, 204);
      const text = await s1.waitEnd(3000, 'the eventsource response to end after the limit');
      assert.equal(text, `\r\n${esFrame('o')}${esFrame(`a${JSON.stringify([big])}`)}`);
      s2 = openStream(`${url}/eventsource`);
      await s2.readUntil((t) => t === '\r\n', 3000, 'the prelude of the next request');
      assert.equal((await post(`${url}/xhr_send`, '["again"]')).status, 204);
      const t2 = await s2.readUntil((t) => t.endsWith('\r\n\r\n'), 3000, 'the next frame');
      assert.equal(t2, `\r\n${esFrame('a["again"]')}`);
    } finally {
      s1.destroy();
      if (s2) s2.destroy();
    }
  });

  test('htmlfile ends after the limit and the session continues on a new request', async () => {
    const url = sessionUrl(app.base);
    const s1 = openStream(`${url}/htmlfile?c=cb`);
    let s2 = null;
    try {
      await s1.readUntil((t) => t.endsWith(htmlFrame('o')), 3000, 'the open frame');
      assert.equal((await post(`${url}/xhr_send`, JSON.stringify([big]))).status, 204);
      const text = await s1.waitEnd(3000, 'the htmlfile response to end after the limit');
      assert.ok(text.endsWith(htmlFrame(`a${JSON.stringify([big])}`)), 'last frame carries the big message');
      s2 = openStream(`${url}/htmlfile?c=cb`);
      await s2.readUntil((t) => t.includes('var c = parent.cb;') && t.endsWith('\r\n\r\n'), 3000, 'the next page head');
      assert.equal((await post(`${url}/xhr_send`, '["again"]')).status, 204);
      const t2 = await s2.readUntil((t) => t.endsWith('</script>\r\n'), 3000, 'the next frame');
      assert.ok(t2.endsWith(htmlFrame('a["again"]')));
      assert.ok(!t2.includes(htmlFrame('o')), 'no second open frame');
    } finally {
      s1.destroy();
      if (s2) s2.destroy();
    }
  });

  test('below the limit the streaming response stays open', async () => {
    const url = sessionUrl(app.base);
    const s = openStream(`${url}/xhr_streaming`, { method: 'POST' });
    try {
      await s.readUntil((t) => t === `${PRELUDE}o\n`, 3000, 'prelude and open frame');
      assert.equal((await post(`${url}/xhr_send`, '["small"]')).status, 204);
      await s.readUntil((t) => t.endsWith('a["small"]\n'), 3000, 'the small frame');
      assert.equal((await post(`${url}/xhr_send`, '["second"]')).status, 204);
      await s.readUntil((t) => t.endsWith('a["second"]\n'), 3000, 'a second frame on the same response');
      assert.equal(s.ended, false);
    } finally {
      s.destroy();
    }
  });
});

describe('heartbeats', () => {
  let hb;
  before(async () => {
    hb = await startApp({ server: { heartbeat_delay: 200, disconnect_delay: 1000 } });
  });
  after(() => hb.close());

  test('xhr_streaming receives an "h" frame after heartbeat_delay of silence', async () => {
    const url = sessionUrl(hb.base);
    const s = openStream(`${url}/xhr_streaming`, { method: 'POST' });
    try {
      const text = await s.readUntil((t) => t.length >= PRELUDE.length + 4, 3000, 'an h frame');
      assert.equal(text.slice(0, PRELUDE.length + 4), `${PRELUDE}o\nh\n`);
    } finally {
      s.destroy();
    }
  });

  test('eventsource receives "data: h" after heartbeat_delay of silence', async () => {
    const url = sessionUrl(hb.base);
    const s = openStream(`${url}/eventsource`);
    try {
      await s.readUntil((t) => t.includes(esFrame('h')), 3000, 'an h frame');
      assert.ok(s.text.startsWith(`\r\n${esFrame('o')}${esFrame('h')}`));
    } finally {
      s.destroy();
    }
  });

  test('a pending xhr poll is answered with "h\\n" after heartbeat_delay', async () => {
    const url = sessionUrl(hb.base);
    await openXhrSession(url);
    const poll = openStream(`${url}/xhr`, { method: 'POST' });
    try {
      const body = await poll.waitEnd(3000, 'the heartbeat answer');
      assert.equal(body, 'h\n');
    } finally {
      poll.destroy();
    }
    await abortSession(url);
  });
});

describe('disconnect_delay', () => {
  let dd;
  before(async () => {
    dd = await startApp({ server: { disconnect_delay: 200 } });
  });
  after(() => dd.close());

  test('with no receiver for disconnect_delay the session is closed: close event, then xhr_send 404', async () => {
    const url = sessionUrl(dd.base);
    const connP = nextConnection(dd.servers.echo);
    await openXhrSession(url);
    const conn = await connP;
    await waitForEvent(conn, 'close', 3000, "the server 'close' event after disconnect_delay");
    const s = await post(`${url}/xhr_send`, '["x"]');
    assert.equal(s.status, 404);
  });

  test('a session whose receivers come back in time outlives many disconnect_delay periods', async () => {
    // heartbeat_delay (400 ms) > disconnect_delay (200 ms): every pending
    // poll is held longer than disconnect_delay, then answered with "h".
    const hb = await startApp({ server: { heartbeat_delay: 400, disconnect_delay: 200 } });
    try {
      const url = sessionUrl(hb.base);
      const connP = nextConnection(hb.servers.echo);
      await openXhrSession(url);
      const conn = await connP;
      let closed = false;
      conn.on('close', () => {
        closed = true;
      });
      for (let i = 0; i < 3; i++) {
        const poll = openStream(`${url}/xhr`, { method: 'POST' });
        try {
          assert.equal(await poll.waitEnd(3000, `heartbeat ${i}`), 'h\n');
        } finally {
          poll.destroy();
        }
      }
      assert.equal(closed, false);
      assert.equal(conn.readyState, 1);
      assert.equal((await post(`${url}/xhr_send`, '["alive"]')).status, 204);
      assert.equal((await post(`${url}/xhr`)).body, 'a["alive"]\n');
      await abortSession(url);
    } finally {
      await hb.close();
    }
  });
});

describe('concurrent receivers', () => {
  test('xhr_streaming: a second receiver gets c[2010,"Another connection still open"] and ends', async () => {
    const url = sessionUrl(app.base);
    const s1 = openStream(`${url}/xhr_streaming`, { method: 'POST' });
    let s2 = null;
    try {
      await s1.readUntil((t) => t === `${PRELUDE}o\n`, 3000, 'the first open frame');
      s2 = openStream(`${url}/xhr_streaming`, { method: 'POST' });
      const text = await s2.waitEnd(3000, 'the second receiver to be closed');
      assert.equal(text, `${PRELUDE}c[2010,"Another connection still open"]\n`);
      // The first receiver is untouched.
      assert.equal((await post(`${url}/xhr_send`, '["still"]')).status, 204);
      await s1.readUntil((t) => t.endsWith('a["still"]\n'), 3000, 'a message on the first receiver');
    } finally {
      s1.destroy();
      if (s2) s2.destroy();
    }
  });

  test('xhr polling: a poll while another is pending gets c[2010,...]', async () => {
    const url = sessionUrl(app.base);
    await openXhrSession(url);
    const pending = await openPending(app.http, `${url}/xhr`, { method: 'POST' });
    try {
      const r = await post(`${url}/xhr`);
      assert.equal(r.status, 200);
      assert.equal(r.body, 'c[2010,"Another connection still open"]\n');
      assert.equal((await post(`${url}/xhr_send`, '["p"]')).status, 204);
      assert.equal(await pending.waitEnd(3000, 'the pending poll'), 'a["p"]\n');
    } finally {
      pending.destroy();
    }
    await abortSession(url);
  });

  test('jsonp: a second receiver gets the 2010 close frame in jsonp framing', async () => {
    const url = sessionUrl(app.base);
    assert.equal((await get(`${url}/jsonp?c=x`)).body, jsonpFrame('x', 'o'));
    const pending = await openPending(app.http, `${url}/jsonp?c=x`);
    try {
      const r = await get(`${url}/jsonp?c=y`);
      assert.equal(r.body, jsonpFrame('y', 'c[2010,"Another connection still open"]'));
    } finally {
      pending.destroy();
    }
  });
});

/**
 * One request over a raw socket, read to the end (Connection: close):
 * resolves with { head, chunks } for a chunked body, { head, body } for
 * one with a Content-Length.
 */
function rawExchange(base, method, path, ms = 3000) {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), hostname);
    const parts = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`${method} ${path}: no complete answer within ${ms} ms`));
    }, ms);
    socket.on('connect', () => socket.write(`${method} ${path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`));
    socket.on('data', (d) => parts.push(d));
    socket.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.on('end', () => {
      clearTimeout(timer);
      const all = Buffer.concat(parts).toString('latin1');
      const split = all.indexOf('\r\n\r\n');
      const head = all.slice(0, split).toLowerCase();
      let rest = all.slice(split + 4);
      if (!/\r\ntransfer-encoding: chunked/.test(head)) {
        resolve({ head, body: rest });
        return;
      }
      const chunks = [];
      for (let i = 0; i < 100 && rest.length > 0; i++) {
        const eol = rest.indexOf('\r\n');
        const size = parseInt(rest.slice(0, eol), 16);
        if (size === 0) break;
        chunks.push(rest.slice(eol + 2, eol + 2 + size));
        rest = rest.slice(eol + 2 + size + 2);
      }
      resolve({ head, chunks });
    });
  });
}

describe('how answers are cut into HTTP chunks', () => {
  test('a stream that ends at once sends its prelude and its frames as separate chunks', async () => {
    const path = new URL(sessionUrl(app.base, '/close')).pathname;
    const first = await rawExchange(app.base, 'POST', `${path}/xhr_streaming`);
    assert.deepEqual(first.chunks, [PRELUDE, 'o\n', 'c[3000,"Go away!"]\n']);
    // The session is closed: this answer is complete when it is made.
    const again = await rawExchange(app.base, 'POST', `${path}/xhr_streaming`);
    assert.deepEqual(again.chunks, [PRELUDE, 'c[3000,"Go away!"]\n']);
  });

  test('a complete answer in one piece has a Content-Length', async () => {
    const url = sessionUrl(app.base);
    const open = await rawExchange(app.base, 'POST', `${new URL(url).pathname}/xhr`);
    assert.match(open.head, /\r\ncontent-length: 2(\r\n|$)/);
    assert.equal(open.body, 'o\n');
    await abortSession(url);
  });
});

describe('close frame from the server (/close)', () => {
  test('xhr_streaming on /close: o, c[3000,"Go away!"], end; a later receiver gets the close frame', async () => {
    const url = sessionUrl(app.base, '/close');
    const s1 = openStream(`${url}/xhr_streaming`, { method: 'POST' });
    let s2 = null;
    try {
      const t1 = await s1.waitEnd(3000, 'the first response to end after the close frame');
      assert.equal(t1, `${PRELUDE}o\nc[3000,"Go away!"]\n`);
      s2 = openStream(`${url}/xhr_streaming`, { method: 'POST' });
      const t2 = await s2.waitEnd(3000, 'the second response to end');
      assert.equal(t2, `${PRELUDE}c[3000,"Go away!"]\n`);
    } finally {
      s1.destroy();
      if (s2) s2.destroy();
    }
  });

  test('xhr polling on /close: "o\\n", then c[3000,"Go away!"] on every later poll', async () => {
    const url = sessionUrl(app.base, '/close');
    assert.equal((await post(`${url}/xhr`)).body, 'o\n');
    assert.equal((await post(`${url}/xhr`)).body, 'c[3000,"Go away!"]\n');
    assert.equal((await post(`${url}/xhr`)).body, 'c[3000,"Go away!"]\n');
  });

  test('jsonp on /close: open, then the close frame twice', async () => {
    const url = sessionUrl(app.base, '/close');
    assert.equal((await get(`${url}/jsonp?c=x`)).body, '/**/x("o");\r\n');
    assert.equal((await get(`${url}/jsonp?c=x`)).body, '/**/x("c[3000,\\"Go away!\\"]");\r\n');
    assert.equal((await get(`${url}/jsonp?c=x`)).body, '/**/x("c[3000,\\"Go away!\\"]");\r\n');
  });

  test('eventsource and htmlfile on /close: open frame then close frame, then end', async () => {
    const es = openStream(`${sessionUrl(app.base, '/close')}/eventsource`);
    const hf = openStream(`${sessionUrl(app.base, '/close')}/htmlfile?c=cb`);
    try {
      const t1 = await es.waitEnd(3000, 'eventsource to end');
      assert.equal(t1, `\r\n${esFrame('o')}${esFrame('c[3000,"Go away!"]')}`);
      const t2 = await hf.waitEnd(3000, 'htmlfile to end');
      assert.ok(t2.endsWith(htmlFrame('o') + htmlFrame('c[3000,"Go away!"]')), JSON.stringify(t2.slice(-120)));
    } finally {
      es.destroy();
      hf.destroy();
    }
  });
});

describe("server-side 'close' event", () => {
  let cd;
  before(async () => {
    cd = await startApp({ server: { disconnect_delay: 150 } });
  });
  after(() => cd.close());

  test("'close' is emitted exactly once when the server closes the session", async () => {
    const url = sessionUrl(cd.base, '/close');
    const connP = nextConnection(cd.servers.close);
    assert.equal((await post(`${url}/xhr`)).body, 'o\n');
    const conn = await connP;
    const counter = countCloses(conn);
    assert.equal((await post(`${url}/xhr`)).body, 'c[3000,"Go away!"]\n');
    assert.equal((await post(`${url}/xhr`)).body, 'c[3000,"Go away!"]\n');
    await waitForEvent(conn, 'close', 3000, "the 'close' event");
    // After the close, the session id is free; using it again opens a new
    // session and must not re-emit 'close' on the old connection.
    const connP2 = nextConnection(cd.servers.close);
    assert.equal((await post(`${url}/xhr`)).body, 'o\n');
    const conn2 = await connP2;
    assert.notEqual(conn2, conn);
    await waitForEvent(conn2, 'close', 3000, "the second session's 'close' event");
    assert.equal(counter.n, 1);
  });

  test("'close' is emitted exactly once when the client goes away (timeout)", async () => {
    const url = sessionUrl(cd.base);
    const connP = nextConnection(cd.servers.echo);
    await openXhrSession(url);
    const conn = await connP;
    const counter = countCloses(conn);
    let ended = 0;
    conn.on('end', () => {
      ended += 1;
    });
    await waitForEvent(conn, 'close', 3000, "the 'close' event");
    // Poke the dead session: a send is refused, a poll opens a new one.
    assert.equal((await post(`${url}/xhr_send`, '["x"]')).status, 404);
    const connP2 = nextConnection(cd.servers.echo);
    assert.equal((await post(`${url}/xhr`)).body, 'o\n');
    const conn2 = await connP2;
    await waitForEvent(conn2, 'close', 3000, "the second session's 'close' event");
    assert.equal(counter.n, 1);
    assert.equal(ended, 1);
  });
});

describe('aborted streaming receiver', () => {
  for (const [name, method, suffix] of [
    ['xhr_streaming', 'POST', 'xhr_streaming'],
    ['eventsource', 'GET', 'eventsource'],
    ['htmlfile', 'GET', 'htmlfile?c=cb'],
  ]) {
    test(`${name}: a client abort closes the session at once (close event, then xhr_send 404)`, async () => {
      // disconnect_delay is far longer than the wait below: only an
      // immediate close can pass.
      const slow = await startApp({ server: { disconnect_delay: 30000 } });
      try {
        const url = sessionUrl(slow.base);
        const connP = nextConnection(slow.servers.echo);
        const s = openStream(`${url}/${suffix}`, { method });
        try {
          await s.response;
          const conn = await connP;
          assert.equal(conn.readyState, 1);
          const closed = waitForEvent(conn, 'close', 5000, "the 'close' event after the abort");
          s.destroy();
          await closed;
          assert.equal(conn.readyState, 3);
          const r = await post(`${url}/xhr_send`, '["x"]');
          assert.equal(r.status, 404);
        } finally {
          s.destroy();
        }
      } finally {
        await slow.close();
      }
    });
  }
});

describe('quoting and unicode', () => {
  // One character from each end of every range the server must escape.
  const ESCAPED = [
    0x01, 0x08, 0x1f, 0x200c, 0x200f, 0x2028, 0x2029, 0x202f, 0x2060, 0x206f, 0xfff0, 0xfffd, 0xffff,
  ];
  // eslint-disable-next-line no-control-regex
  const escapeRanges = /[\u0000-\u001f\u200c-\u200f\u2028-\u202f\u2060-\u206f\ufff0-\uffff]/u;

  test('xhr: characters in the SockJS escape ranges arrive as \\uXXXX escapes and round-trip', async () => {
    const url = sessionUrl(app.base);
    await openXhrSession(url);
    const message = `<${String.fromCharCode(...ESCAPED)}>`;
    // JSON.stringify leaves U+2028 etc. raw: the server sees them as UTF-8.
    const s = await post(`${url}/xhr_send`, JSON.stringify([message]));
    assert.equal(s.status, 204);
    const r = await post(`${url}/xhr`);
    const raw = r.body;
    assert.ok(raw.startsWith('a[') && raw.endsWith(']\n'), raw);
    assert.ok(!escapeRanges.test(raw.slice(0, -1)), `no raw escapable character in ${JSON.stringify(raw)}`);
    for (const cp of ESCAPED) {
      if (cp === 0x08) continue; // may legitimately be written as \b
      const esc = `\\u${cp.toString(16).padStart(4, '0')}`;
      assert.ok(raw.toLowerCase().includes(esc), `${esc} expected in ${JSON.stringify(raw)}`);
    }
    assert.deepEqual(JSON.parse(raw.slice(1, -1)), [message]);
    await abortSession(url);
  });

  test('xhr_streaming: escaped characters arrive escaped and round-trip', async () => {
    const url = sessionUrl(app.base);
    const s = openStream(`${url}/xhr_streaming`, { method: 'POST' });
    try {
      await s.readUntil((t) => t === `${PRELUDE}o\n`, 3000, 'open frame');
      const message = 'a\u2028b\u200dc\ufeffd\u2063e\n';
      assert.equal((await post(`${url}/xhr_send`, JSON.stringify([message]))).status, 204);
      const text = await s.readUntil((t) => t.length > PRELUDE.length + 2 && t.endsWith('\n'), 3000, 'the frame');
      const frame = text.slice(PRELUDE.length + 2, -1);
      assert.ok(!escapeRanges.test(frame), `no raw escapable character in ${JSON.stringify(frame)}`);
      assert.ok(frame.toLowerCase().includes('\\u2028'));
      assert.ok(frame.toLowerCase().includes('\\u200d'));
      assert.ok(frame.toLowerCase().includes('\\u2063'));
      assert.deepEqual(messagesOf([frame]), [message]);
    } finally {
      s.destroy();
    }
  });

  test('client-escaped characters (JSON \\u escapes in xhr_send) are decoded by the server', async () => {
    const url = sessionUrl(app.base);
    await openXhrSession(url);
    const message = '"\\\u007f\u00ad\u0600\u2000\u20ff\ufeff\u0300é';
    const body = `[${JSON.stringify(message).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)}]`;
    assert.ok(/^[\x20-\x7e]+$/.test(body), 'body is pure ASCII');
    assert.equal((await post(`${url}/xhr_send`, body)).status, 204);
    const r = await post(`${url}/xhr`);
    assert.deepEqual(messagesOf(xhrFrames(r.body)), [message]);
    await abortSession(url);
  });

  const UNICODE = ['😀 emoji 🎉', '漢字とかな', 'Ünïcödé ñ ß', 'mixed: ℕ → ∞, 𝄞 clef', 'Ελληνικά русский עברית'];

  test('xhr: emoji, CJK and other unicode round-trip', async () => {
    const url = sessionUrl(app.base);
    await openXhrSession(url);
    assert.equal((await post(`${url}/xhr_send`, JSON.stringify(UNICODE))).status, 204);
    const r = await post(`${url}/xhr`);
    assert.equal(r.status, 200);
    assert.deepEqual(messagesOf(xhrFrames(r.body)), UNICODE);
    await abortSession(url);
  });

  test('jsonp + jsonp_send: unicode round-trips through form encoding and the callback', async () => {
    const url = sessionUrl(app.base);
    await get(`${url}/jsonp?c=cb`);
    const s = await post(`${url}/jsonp_send`, `d=${encodeURIComponent(JSON.stringify(UNICODE))}`, {
      'Content-Type': 'application/x-www-form-urlencoded',
    });
    assert.equal(s.body, 'ok');
    const r = await get(`${url}/jsonp?c=cb`);
    const m = /^\/\*\*\/cb\((.*)\);\r\n$/s.exec(r.body);
    assert.ok(m, r.body);
    const frame = JSON.parse(m[1]);
    assert.deepEqual(messagesOf([frame]), UNICODE);
    await abortSession(url);
  });

  test('eventsource and htmlfile: unicode round-trips', async () => {
    const url1 = sessionUrl(app.base);
    const url2 = sessionUrl(app.base);
    const es = openStream(`${url1}/eventsource`);
    const hf = openStream(`${url2}/htmlfile?c=cb`);
    try {
      await es.readUntil((t) => t.endsWith(esFrame('o')), 3000, 'eventsource open');
      await hf.readUntil((t) => t.endsWith(htmlFrame('o')), 3000, 'htmlfile open');
      assert.equal((await post(`${url1}/xhr_send`, JSON.stringify(UNICODE))).status, 204);
      assert.equal((await post(`${url2}/xhr_send`, JSON.stringify(UNICODE))).status, 204);
      const t1 = await es.readUntil((t) => esMessages(t).length >= UNICODE.length, 3000, 'eventsource frames');
      assert.deepEqual(esMessages(t1), UNICODE);
      const t2 = await hf.readUntil((t) => htmlMessages(t).length >= UNICODE.length, 3000, 'htmlfile frames');
      assert.deepEqual(htmlMessages(t2), UNICODE);
    } finally {
      es.destroy();
      hf.destroy();
    }
  });
});
