'use strict';
// Bad input on the HTTP transports: wrong payloads, unknown sessions, bad
// callbacks, unsupported content types, a huge body and invalid UTF-8.
// After each, an unrelated session opened beforehand must still work, and
// at the end a brand new session must still open and echo.

const test = require('node:test');
const { describe, before, after } = test;
const assert = require('node:assert/strict');
const net = require('node:net');

const { startApp } = require('./helpers/app');
const {
  PRELUDE,
  abortSession,
  echoRoundTrip,
  get,
  messagesOf,
  openStream,
  openXhrSession,
  post,
  request,
  sessionUrl,
  xhrFrames,
} = require('./helpers/http');

const FORM = { 'Content-Type': 'application/x-www-form-urlencoded' };

let app;
// An xhr_streaming session opened before any bad input. Its receiver stays
// attached for the whole file, so it cannot time out between tests.
let bystander;
let pings = 0;

/** The session opened before any bad input must still echo. */
async function assertBystanderAlive() {
  pings += 1;
  const frame = `a${JSON.stringify([`ping ${pings}`])}\n`;
  const s = await post(`${bystander.url}/xhr_send`, JSON.stringify([`ping ${pings}`]));
  assert.equal(s.status, 204, 'xhr_send to the already-open session');
  await bystander.stream.readUntil((t) => t.endsWith(frame), 3000, `the echo of ping ${pings} on the already-open session`);
}

/** A fresh xhr session on /echo. */
async function freshSession() {
  const url = sessionUrl(app.base);
  await openXhrSession(url);
  return url;
}

before(async () => {
  app = await startApp({ server: { disconnect_delay: 1000 } });
  const url = sessionUrl(app.base);
  const stream = openStream(`${url}/xhr_streaming`, { method: 'POST' });
  bystander = { url, stream };
  await stream.readUntil((t) => t === `${PRELUDE}o\n`, 3000, 'the bystander session to open');
});
after(async () => {
  if (bystander) bystander.stream.destroy();
  await app.close();
});

describe('xhr_send payloads', () => {
  test('xhr_send: empty body answers 500 "Payload expected."', async () => {
    const url = await freshSession();
    const r = await post(`${url}/xhr_send`, '');
    assert.equal(r.status, 500);
    assert.equal(r.body, 'Payload expected.');
    // The target session itself is not harmed.
    assert.deepEqual(await echoRoundTrip(url, ['after empty']), ['after empty']);
    await assertBystanderAlive();
    await abortSession(url);
  });

  test('xhr_send: broken JSON answers 500 "Broken JSON encoding."', async () => {
    const url = await freshSession();
    for (const body of ['["x', '[x]', '{', '["a",]', 'nope']) {
      const r = await post(`${url}/xhr_send`, body);
      assert.equal(r.status, 500, `body ${JSON.stringify(body)}`);
      assert.equal(r.body, 'Broken JSON encoding.', `body ${JSON.stringify(body)}`);
    }
    assert.deepEqual(await echoRoundTrip(url, ['after broken']), ['after broken']);
    await assertBystanderAlive();
    await abortSession(url);
  });

  test('xhr_send: JSON that is not an array answers 500 "Payload expected."', async () => {
    const url = await freshSession();
    for (const body of ['{"a":1}', '"x"', '1', 'null', 'true', '0']) {
      const r = await post(`${url}/xhr_send`, body);
      assert.equal(r.status, 500, `body ${body}`);
      assert.equal(r.body, 'Payload expected.', `body ${body}`);
    }
    // Nothing of the refused payloads was delivered.
    assert.deepEqual(await echoRoundTrip(url, ['after non-array']), ['after non-array']);
    await assertBystanderAlive();
    await abortSession(url);
  });

  test('xhr_send: an unsupported content type answers 500 "Payload expected."', async () => {
    const url = await freshSession();
    const r = await post(`${url}/xhr_send`, '["x"]', { 'Content-Type': 'application/octet-stream' });
    assert.equal(r.status, 500);
    assert.equal(r.body, 'Payload expected.');
    assert.deepEqual(await echoRoundTrip(url, ['after octet']), ['after octet']);
    await abortSession(url);
  });

  test('xhr_send: unknown session answers 404 and creates no session', async () => {
    const url = sessionUrl(app.base);
    const r = await post(`${url}/xhr_send`, '["x"]');
    assert.equal(r.status, 404);
    const again = await post(`${url}/xhr_send`, '["x"]');
    assert.equal(again.status, 404);
    // The id is free: a poll opens a new session with nothing queued.
    assert.equal((await post(`${url}/xhr`)).body, 'o\n');
    assert.deepEqual(await echoRoundTrip(url, ['fresh']), ['fresh']);
    await assertBystanderAlive();
    await abortSession(url);
  });
});

describe('callbacks', () => {
  test('jsonp without callback answers 500 "\\"callback\\" parameter required"', async () => {
    const url = sessionUrl(app.base);
    for (const q of ['', '?', '?cb=x', '?C=x']) {
      const r = await get(`${url}/jsonp${q}`);
      assert.equal(r.status, 500, `query ${q}`);
      assert.equal(r.body, '"callback" parameter required', `query ${q}`);
    }
    // No session was opened by the refused requests.
    assert.equal((await post(`${url}/xhr_send`, '["x"]')).status, 404);
    await assertBystanderAlive();
  });

  test('jsonp with invalid callback characters answers 500 "invalid \\"callback\\" parameter"', async () => {
    const url = sessionUrl(app.base);
    for (const cb of ['%20', '*', 'abc(', 'abc%28', 'a;alert(1)', 'a%0Ab', 'x<y', 'a/b', '%C3%A9']) {
      const r = await get(`${url}/jsonp?c=${cb}`);
      assert.equal(r.status, 500, `callback ${cb}`);
      assert.equal(r.body, 'invalid "callback" parameter', `callback ${cb}`);
    }
    assert.equal((await post(`${url}/xhr_send`, '["x"]')).status, 404);
    await assertBystanderAlive();
  });

  test('jsonp with a callback over 32 characters answers 500; exactly 32 is accepted', async () => {
    const url = sessionUrl(app.base);
    const long = await get(`${url}/jsonp?c=${'a'.repeat(33)}`);
    assert.equal(long.status, 500);
    assert.equal(long.body, 'invalid "callback" parameter');
    const ok = await get(`${url}/jsonp?c=${'b'.repeat(32)}`);
    assert.equal(ok.status, 200);
    assert.equal(ok.body, `/**/${'b'.repeat(32)}("o");\r\n`);
    await assertBystanderAlive();
    await abortSession(url);
  });

  test('jsonp accepts callbacks made of letters, digits, "-", "_" and "."', async () => {
    const url = sessionUrl(app.base);
    const r = await get(`${url}/jsonp?c=Az09-_.x`);
    assert.equal(r.status, 200);
    assert.equal(r.body, '/**/Az09-_.x("o");\r\n');
    await abortSession(url);
  });

  test('htmlfile without callback answers 500 "\\"callback\\" parameter required"', async () => {
    const url = sessionUrl(app.base);
    const r = await get(`${url}/htmlfile`);
    assert.equal(r.status, 500);
    assert.equal(r.body, '"callback" parameter required');
    assert.equal((await post(`${url}/xhr_send`, '["x"]')).status, 404);
    await assertBystanderAlive();
  });

  test('htmlfile with invalid callback characters answers 500 "invalid \\"callback\\" parameter"', async () => {
    const url = sessionUrl(app.base);
    for (const cb of ['%20', '*', 'abc(', 'abc%28', '%3Cscript%3E']) {
      const r = await get(`${url}/htmlfile?c=${cb}`);
      assert.equal(r.status, 500, `callback ${cb}`);
      assert.equal(r.body, 'invalid "callback" parameter', `callback ${cb}`);
    }
    assert.equal((await post(`${url}/xhr_send`, '["x"]')).status, 404);
    await assertBystanderAlive();
  });
});

describe('jsonp_send payloads', () => {
  test('jsonp_send with an unsupported content type answers 500 "Payload expected."', async () => {
    const url = await freshSession();
    for (const ct of ['application/octet-stream', 'application/json', 'multipart/form-data; boundary=x']) {
      const r = await post(`${url}/jsonp_send`, 'd=%5B%22x%22%5D', { 'Content-Type': ct });
      assert.equal(r.status, 500, ct);
      assert.equal(r.body, 'Payload expected.', ct);
    }
    assert.deepEqual(await echoRoundTrip(url, ['after jsonp_send']), ['after jsonp_send']);
    await assertBystanderAlive();
    await abortSession(url);
  });

  test('jsonp_send with an empty or d-less form answers 500 "Payload expected."', async () => {
    const url = await freshSession();
    for (const body of ['', 'd=', 'p=p']) {
      const r = await post(`${url}/jsonp_send`, body, FORM);
      assert.equal(r.status, 500, `body ${JSON.stringify(body)}`);
      assert.equal(r.body, 'Payload expected.', `body ${JSON.stringify(body)}`);
    }
    const plain = await post(`${url}/jsonp_send`, '', { 'Content-Type': 'text/plain' });
    assert.equal(plain.status, 500);
    assert.equal(plain.body, 'Payload expected.');
    await assertBystanderAlive();
    await abortSession(url);
  });

  test('jsonp_send with broken JSON answers 500 "Broken JSON encoding."', async () => {
    const url = await freshSession();
    const f = await post(`${url}/jsonp_send`, 'd=%5B%22x', FORM);
    assert.equal(f.status, 500);
    assert.equal(f.body, 'Broken JSON encoding.');
    const p = await post(`${url}/jsonp_send`, '["x', { 'Content-Type': 'text/plain' });
    assert.equal(p.status, 500);
    assert.equal(p.body, 'Broken JSON encoding.');
    assert.deepEqual(await echoRoundTrip(url, ['after broken form']), ['after broken form']);
    await abortSession(url);
  });

  test('jsonp_send with JSON that is not an array answers 500 "Payload expected."', async () => {
    const url = await freshSession();
    const r = await post(`${url}/jsonp_send`, `d=${encodeURIComponent('{"a":1}')}`, FORM);
    assert.equal(r.status, 500);
    assert.equal(r.body, 'Payload expected.');
    await abortSession(url);
  });

  test('jsonp_send to an unknown session answers 404', async () => {
    const url = sessionUrl(app.base);
    const r = await post(`${url}/jsonp_send`, 'd=%5B%22x%22%5D', FORM);
    assert.equal(r.status, 404);
    await assertBystanderAlive();
  });
});

describe('huge and malformed bodies', () => {
  test('xhr_send with a 10 MB body gets an HTTP answer (or a closed connection) and the server keeps serving', async (t) => {
    const url = await freshSession();
    const body = `["${'x'.repeat(10 * 1024 * 1024)}"]`;
    let outcome;
    try {
      const r = await request(`${url}/xhr_send`, { method: 'POST', body, timeout: 20000 });
      outcome = `HTTP ${r.status} ${JSON.stringify(r.body.slice(0, 80))}`;
      assert.ok(r.status >= 200 && r.status < 600, `a real HTTP status, got ${r.status}`);
    } catch (err) {
      // A server may refuse the body by closing the connection; a client
      // timeout is not acceptable (it throws "timed out ..." without a code).
      assert.ok(['ECONNRESET', 'EPIPE'].includes(err.code), `connection closed, got ${err.message}`);
      outcome = `connection closed (${err.code})`;
    }
    t.diagnostic(`10 MB xhr_send: ${outcome}`);
    await abortSession(url);
    await assertBystanderAlive();
    const fresh = await freshSession();
    assert.deepEqual(await echoRoundTrip(fresh, ['after 10 MB']), ['after 10 MB']);
    await abortSession(fresh);
  });

  test('xhr_sends whose clients leave before the answer: every message delivered, no error, the session goes on', async () => {
    const url = await freshSession();
    const { port } = new URL(app.base);
    const path = new URL(url).pathname;
    // Each client writes a whole xhr_send and closes at once: its answer,
    // written after the drain, finds the connection gone.
    const sent = Array.from({ length: 20 }, (_, i) => `gone ${i}`);
    await Promise.all(sent.map((message) => new Promise((resolve, reject) => {
      const body = JSON.stringify([message]);
      const socket = net.connect(Number(port), '127.0.0.1', () => {
        const head = `POST ${path}/xhr_send HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: ${body.length}\r\n\r\n`;
        socket.end(head + body, () => {
          socket.destroy();
          resolve();
        });
      });
      socket.on('error', reject);
    })));
    // The echoes of all 20 reach the next polls, in any order of arrival.
    const echoed = [];
    for (let poll = 0; poll < 20 && echoed.length < sent.length; poll++) {
      const r = await post(`${url}/xhr`, '');
      assert.equal(r.status, 200);
      echoed.push(...messagesOf(xhrFrames(r.body)));
    }
    assert.deepEqual([...echoed].sort(), [...sent].sort());
    assert.deepEqual(await echoRoundTrip(url, ['still here']), ['still here']);
    await abortSession(url);
    await assertBystanderAlive();
  });

  test('xhr_send with invalid UTF-8 bytes: 204, each bad sequence becomes U+FFFD, escaped in the frame', async () => {
    const url = await freshSession();
    const body = Buffer.concat([
      Buffer.from('["a'),
      Buffer.from([0xff]), // never valid
      Buffer.from('b'),
      Buffer.from([0xe2, 0x82]), // truncated 3-byte sequence
      Buffer.from('c'),
      Buffer.from([0xc0, 0xaf]), // overlong encoding of "/"
      Buffer.from('"]'),
    ]);
    const s = await post(`${url}/xhr_send`, body);
    assert.equal(s.status, 204);
    const r = await post(`${url}/xhr`);
    assert.equal(r.status, 200);
    const frames = xhrFrames(r.body);
    assert.deepEqual(messagesOf(frames), ['a\ufffdb\ufffdc\ufffd\ufffd']);
    // U+FFFD is in the range the server escapes.
    assert.ok(r.body.toLowerCase().includes('\\ufffd'), r.body);
    assert.ok(!r.body.includes('\ufffd'), 'no raw U+FFFD in the frame');
    assert.deepEqual(await echoRoundTrip(url, ['after bad utf-8']), ['after bad utf-8']);
    await assertBystanderAlive();
    await abortSession(url);
  });

  test('jsonp_send text/plain with invalid UTF-8 bytes delivers U+FFFD and answers "ok"', async () => {
    const url = sessionUrl(app.base);
    assert.equal((await get(`${url}/jsonp?c=cb`)).body, '/**/cb("o");\r\n');
    const body = Buffer.concat([Buffer.from('["x'), Buffer.from([0xfe]), Buffer.from('y"]')]);
    const s = await post(`${url}/jsonp_send`, body, { 'Content-Type': 'text/plain' });
    assert.equal(s.status, 200);
    assert.equal(s.body, 'ok');
    const r = await get(`${url}/jsonp?c=cb`);
    const m = /^\/\*\*\/cb\((.*)\);\r\n$/s.exec(r.body);
    assert.ok(m, r.body);
    assert.deepEqual(messagesOf([JSON.parse(m[1])]), ['x\ufffdy']);
    await assertBystanderAlive();
    await abortSession(url);
  });
});

describe('after all the bad input', () => {
  test('a new session on /echo still opens and echoes', async () => {
    const url = sessionUrl(app.base);
    const r = await post(`${url}/xhr`);
    assert.equal(r.status, 200);
    assert.equal(r.body, 'o\n');
    assert.deepEqual(await echoRoundTrip(url, ['still', 'here']), ['still', 'here']);
    await assertBystanderAlive();
    await abortSession(url);
  });

  test('the greeting and /info are still served', async () => {
    assert.equal((await get(`${app.base}/echo`)).body, 'Welcome to SockJS!\n');
    const info = await get(`${app.base}/echo/info`);
    assert.equal(info.status, 200);
    assert.equal(JSON.parse(info.body).websocket, true);
  });
});
