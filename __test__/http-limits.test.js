'use strict';
// Request head limits: oversized header blocks and request lines are
// answered by Node's HTTP parser with a status (431), before any SockJS code
// runs, and the server keeps serving.

const test = require('node:test');
const assert = require('node:assert/strict');
const W = require('./helpers/ws-frames.js');
const { startApp } = require('./helpers/app.js');

test('a header block over the limit is answered 431 and the server keeps serving', async () => {
  const app = await startApp();
  try {
    const big = await W.httpExchange(app.port, '/echo/info', { upgrade: false, headers: { 'X-Big': 'y'.repeat(20000) } });
    assert.equal(big.head.statusCode, 431);
    const res = await fetch(`${app.base}/echo/info`);
    assert.equal(res.status, 200);
  } finally {
    await app.close();
  }
});

test('a request URL over the limit is answered 431 and the server keeps serving', async () => {
  const app = await startApp();
  try {
    const big = await W.httpExchange(app.port, `/echo/0/${'s'.repeat(20000)}/xhr`, { method: 'POST', upgrade: false });
    assert.equal(big.head.statusCode, 431);
    const res = await fetch(`${app.base}/echo/0/small/xhr`, { method: 'POST' });
    assert.equal(await res.text(), 'o\n');
  } finally {
    await app.close();
  }
});
