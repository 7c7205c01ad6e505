'use strict';
// The engine's I/O threads run under SCHED_BATCH on Linux, so that waking
// them from JavaScript does not preempt JavaScript's thread on a shared
// core (crates/sockjs-engine/src/runtime.rs); SOCKJS_IO_POLICY=normal keeps
// the default policy. Read from /proc in a child process that starts a
// server.

const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { execFileSync } = require('node:child_process');

const root = path.join(__dirname, '..');

// Prints {"<thread name>": [policy, ...]} for the child's threads once a
// server has its engine (made when the server is installed; the runtime
// starts with the first engine).
const CHILD = `
const fs = require('node:fs');
const http = require('node:http');
const sockjs = require(${JSON.stringify(root)});
const server = sockjs.createServer({ log: () => {} });
server.installHandlers(http.createServer(), { prefix: '/echo' });
// A new thread names itself, then sets its policy, once it runs: on a busy
// machine that can be after the runtime's start returned. Look again every
// 10 ms until the I/O threads have the policy expected (EXPECT_POLICY), for
// at most 2 s; the test judges what was seen last.
const expected = Number(process.env.EXPECT_POLICY);
const settled = (seen) => seen['sockjs-io'] && seen['sockjs-io'].every((p) => p === expected);
let byName = {};
for (let attempt = 0; attempt < 200 && !settled(byName); attempt++) {
  if (attempt > 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
  byName = {};
  for (const tid of fs.readdirSync('/proc/self/task')) {
    const stat = fs.readFileSync('/proc/self/task/' + tid + '/stat', 'utf8');
    const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
    // Field 41 of stat(5), policy; the fields after the name start at 3.
    const policy = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[41 - 3]);
    (byName[name] = byName[name] || []).push(policy);
  }
}
process.stdout.write(JSON.stringify(byName));
void server;
process.exit(0);
`;

const SCHED_OTHER = 0;
const SCHED_BATCH = 3;

function threadPolicies(env) {
  const out = execFileSync(process.execPath, ['-e', CHILD], {
    env: { ...process.env, ...env },
    encoding: 'utf8',
    timeout: 20000,
  });
  return JSON.parse(out);
}

test('io-threads: the engine runs its I/O threads under SCHED_BATCH, and JavaScript\'s stays normal', (t) => {
  if (process.platform !== 'linux') return t.skip('a Linux scheduling policy');
  const policies = threadPolicies({ SOCKJS_IO_POLICY: '', EXPECT_POLICY: String(SCHED_BATCH) });
  assert.ok(policies['sockjs-io'] && policies['sockjs-io'].length > 0, JSON.stringify(policies));
  assert.deepEqual([...new Set(policies['sockjs-io'])], [SCHED_BATCH], JSON.stringify(policies));
  assert.deepEqual([...new Set(policies.node)], [SCHED_OTHER], JSON.stringify(policies));
  return undefined;
});

test('io-threads: SOCKJS_IO_POLICY=normal keeps the default policy', (t) => {
  if (process.platform !== 'linux') return t.skip('a Linux scheduling policy');
  const policies = threadPolicies({ SOCKJS_IO_POLICY: 'normal', EXPECT_POLICY: String(SCHED_OTHER) });
  assert.ok(policies['sockjs-io'] && policies['sockjs-io'].length > 0, JSON.stringify(policies));
  assert.deepEqual([...new Set(policies['sockjs-io'])], [SCHED_OTHER], JSON.stringify(policies));
  return undefined;
});
