'use strict';
// Distribution: `npm pack` gives a tarball that installs offline in a fresh
// directory and works as `require('sockjs')`, including the paths consumers
// require (`sockjs/lib/transport`).

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync } = require('node:child_process');

const root = path.join(__dirname, '..');

test('npm pack, then an offline install in a fresh directory, serves an echo', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sockjs-pack-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const run = (cmd, args, cwd) =>
    execFileSync(cmd, args, { cwd, encoding: 'utf8', timeout: 120000, stdio: ['ignore', 'pipe', 'pipe'] });
  const packed = JSON.parse(run('npm', ['pack', '--json', '--pack-destination', dir], root));
  const tarball = path.join(dir, packed[0].filename);
  const files = packed[0].files.map((f) => f.path);
  assert.ok(files.includes('index.js') && files.includes('index.d.ts') && files.includes('lib/transport.js'), files.join());
  assert.ok(files.some((f) => /^sockjs\..+\.node$/.test(f)), `the native addon is in the tarball: ${files.join()}`);
  assert.ok(!files.some((f) => f.startsWith('src/') || f.startsWith('crates/')), 'no sources in the tarball');

  const app = path.join(dir, 'app');
  fs.mkdirSync(app);
  fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }));
  run('npm', ['install', '--offline', '--no-audit', '--no-fund', tarball], app);

  const script = `
    const http = require('http');
    const sockjs = require('sockjs');
    const { Session } = require('sockjs/lib/transport');
    if (typeof Session.prototype.decorateConnection !== 'function') throw new Error('no decorateConnection');
    const echo = sockjs.createServer({ log() {} });
    echo.on('connection', (c) => c.on('data', (m) => c.write(m)));
    const s = http.createServer();
    echo.installHandlers(s, { prefix: '/echo' });
    s.listen(0, '127.0.0.1', async () => {
      const u = 'http://127.0.0.1:' + s.address().port + '/echo/0/p';
      const o = await (await fetch(u + '/xhr', { method: 'POST' })).text();
      await fetch(u + '/xhr_send', { method: 'POST', body: '["packed"]' });
      const a = await (await fetch(u + '/xhr', { method: 'POST' })).text();
      process.stdout.write(JSON.stringify([o, a]));
      process.exit(0);
    });`;
  const out = run(process.execPath, ['-e', script], app);
  assert.deepEqual(JSON.parse(out), ['o\n', 'a["packed"]\n']);
});
