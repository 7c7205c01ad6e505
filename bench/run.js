'use strict';
// The benchmark runner: this package (a release build of the repository's
// tracked files, made under bench/.work/) against sockjs@0.3.24 from npm
// (bench/ref/), the same app (bench/app.js), the same load (bench/loadgen).
//
//   node bench/run.js [--quick] [--reps N] [--only id,id] [--source head|worktree] [--rebuild]
//
// For every scenario, repetition and implementation: a fresh server pinned to
// one core, the load generator pinned to another, server CPU and RSS read
// from /proc between the generator's checkpoints; medians of the repetitions
// go to bench/results/latest.{md,svg,json}. See bench/README.md.

const { spawn, spawnSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const readline = require('node:readline');
const { CLK_TCK, median, sampleProcess } = require('./proc.js');

const BENCH = __dirname;
const ROOT = path.resolve(BENCH, '..');
const WORK = path.join(BENCH, '.work');
const OURS = path.join(WORK, 'ours');
const OURS_STAMP = path.join(WORK, 'ours.source');
const LOGS = path.join(WORK, 'logs');
const RESULTS = path.join(BENCH, 'results');
const LOADGEN_DIR = path.join(BENCH, 'loadgen');
const LOADGEN = path.join(LOADGEN_DIR, 'target', 'release', 'sockjs-loadgen');
const REF = path.join(BENCH, 'ref');
const REF_MODULE = path.join(REF, 'node_modules', 'sockjs');
const REF_VERSION = '0.3.24';
const APP = path.join(BENCH, 'app.js');

// Descriptors each child may open (20,000 idle sessions need one each,
// and the generator as many again in its own process).
const NOFILE = 65536;
// Descriptors kept free besides the sessions' (Node's own, the engine's, and
// the duplicates that exist while WebSockets are handed over).
const FD_HEADROOM = 300;
const SERVER_START_MS = 20000;
const STOP_GRACE_MS = 3000;

// ---------------------------------------------------------------- options

const USAGE = `usage: node bench/run.js [options]
  --quick               1 repetition, smaller counts and shorter phases (about a minute)
  --reps N              repetitions per scenario and implementation (default 3; median)
  --only a,b            only scenarios whose id starts with one of these
  --source head|worktree  build ours from HEAD (default) or from the tracked files as they are
  --rebuild             rebuild ours even if its source is unchanged
  --server-core N       core the servers are pinned to (default 0)
  --loadgen-core N      core the load generator is pinned to (default 1)`;

function parseArgs(argv) {
  const opts = { quick: false, reps: null, only: null, source: 'head', rebuild: false, serverCore: 0, loadCore: 1 };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) throw new Error(`${arg} needs a value`);
      return argv[++i];
    };
    if (arg === '--quick') opts.quick = true;
    else if (arg === '--rebuild') opts.rebuild = true;
    else if (arg === '--reps') opts.reps = Number(value());
    else if (arg === '--only') opts.only = value().split(',');
    else if (arg === '--source') opts.source = value();
    else if (arg === '--server-core') opts.serverCore = Number(value());
    else if (arg === '--loadgen-core') opts.loadCore = Number(value());
    else if (arg === '--help' || arg === '-h') {
      console.log(USAGE);
      process.exit(0);
    } else throw new Error(`unknown option ${arg}`);
  }
  if (!['head', 'worktree'].includes(opts.source)) throw new Error('--source is head or worktree');
  if (opts.reps === null) opts.reps = opts.quick ? 1 : 3;
  if (!(opts.reps >= 1 && opts.reps <= 9)) throw new Error('--reps is 1..9');
  return opts;
}

// -------------------------------------------------------------- scenarios

// Per scenario: what the generator runs, what one counted unit is, and the
// metrics shown. `full` and `quick` differ only in counts and durations.
function scenarios(quick, nofile) {
  const timing = quick
    ? ['--warmup-ms', 300, '--duration-ms', 1000, '--max-messages', 500000]
    : ['--warmup-ms', 1000, '--duration-ms', 3000, '--max-messages', 2000000];
  const rate = ['msgs_per_s', 'p50_us', 'p99_us', 'cpu_us_per_msg'];
  const echo = (transport, sessions, inflight) => [
    'echo', '--transport', transport, '--sessions', sessions, '--inflight', inflight, ...timing,
  ];
  // Each idle session holds a descriptor in the server and one in the
  // generator; where the limit cannot be raised far enough (a hard limit
  // below 20,000 + headroom) the count is lowered to fit and says so.
  // `settledMs`: a second RSS reading that much later, when both servers
  // have sent heartbeats and V8 has shrunk its heap for an idle process.
  // `warmChurnMs`: churn that long before the count starts (`-warm` in the
  // id), so that one-time costs of the process (V8 compiling the opening
  // path, its young generation growing to the rate of openings) are paid
  // before it, as in a server that has been running a while.
  const idle = (wanted, settledMs, warmChurnMs = 0) => {
    const fit = Math.floor((nofile - FD_HEADROOM) / 100) * 100;
    const sessions = Math.min(wanted, fit);
    const capped = sessions < wanted
      ? ` (${wanted.toLocaleString('en-US')} wanted; open-files hard limit ${nofile.toLocaleString('en-US')})`
      : '';
    const warm = warmChurnMs > 0;
    return {
      id: `idle-${sessions}${warm ? '-warm' : ''}`,
      title: `idle sessions (SockJS WebSocket), ${sessions.toLocaleString('en-US')}${capped}${
        warm ? `, opened after ${warmChurnMs / 1000} s of churn` : ''}`,
      unit: 'session',
      args: ['idle', '--sessions', sessions, '--concurrency', 200, '--settle-ms', 1000, '--settled-ms', settledMs,
        '--warm-churn-ms', warmChurnMs],
      metrics: [
        'rss_per_session', ...(settledMs > 0 ? ['rss_settled_per_session'] : []),
        'msgs_per_s', 'p50_us', 'p99_us', 'cpu_us_per_msg',
      ],
      budgetMs: 120000 + settledMs + warmChurnMs,
    };
  };
  const big = quick ? 200 : 1000;
  return [
    {
      id: 'sockjs-ws-echo-100x1',
      title: 'SockJS WebSocket echo, 100 sessions × 1 in flight',
      unit: 'msg',
      args: echo('sockjs-ws', 100, 1),
      metrics: rate,
    },
    {
      id: `sockjs-ws-echo-${big}x4`,
      title: `SockJS WebSocket echo, ${big.toLocaleString('en-US')} sessions × 4 in flight`,
      unit: 'msg',
      args: echo('sockjs-ws', big, 4),
      metrics: rate,
    },
    // Few sessions: each message then wakes the server from idle, and the
    // engine's thread and JavaScript's take turns for every batch (see the
    // README's performance section). Not among the issue's targets; kept so
    // that the weak end shows.
    {
      id: 'sockjs-ws-echo-1x1',
      title: 'SockJS WebSocket echo, 1 session × 1 in flight',
      unit: 'msg',
      args: echo('sockjs-ws', 1, 1),
      metrics: rate,
    },
    {
      id: 'sockjs-ws-echo-10x1',
      title: 'SockJS WebSocket echo, 10 sessions × 1 in flight',
      unit: 'msg',
      args: echo('sockjs-ws', 10, 1),
      metrics: rate,
    },
    {
      id: 'raw-ws-echo-100x1',
      title: 'raw WebSocket echo, 100 sessions × 1 in flight',
      unit: 'msg',
      args: echo('raw-ws', 100, 1),
      metrics: rate,
    },
    {
      id: `broadcast-${big}`,
      title: `broadcast fan-out, 1 sender → ${big.toLocaleString('en-US')} receivers (2 rounds in flight)`,
      unit: 'delivery',
      args: ['broadcast', '--prefix', '/broadcast', '--sessions', big, '--window', 2, '--concurrency', 200, ...timing],
      metrics: rate,
    },
    {
      id: `broadcast-native-${big}`,
      title: `broadcast fan-out through server.broadcast() (0.3.24: the write loop), 1 sender → ${big.toLocaleString('en-US')} receivers`,
      unit: 'delivery',
      args: ['broadcast', '--prefix', '/broadcast-native', '--sessions', big, '--window', 2, '--concurrency', 200, ...timing],
      metrics: rate,
    },
    idle(quick ? 1000 : 5000, quick ? 0 : 30000),
    idle(quick ? 1000 : 5000, 0, quick ? 300 : 1000),
    idle(quick ? 4000 : 20000, 0),
    {
      id: 'churn',
      title: 'session churn: open, one echo, close (20 workers)',
      unit: 'cycle',
      args: ['churn', '--concurrency', 20, ...timing],
      metrics: rate,
    },
    {
      id: 'xhr-streaming-echo-100x1',
      title: 'xhr-streaming echo, 100 sessions × 1 in flight',
      unit: 'msg',
      args: echo('xhr-streaming', 100, 1),
      metrics: rate,
    },
    {
      id: 'xhr-polling-echo-100x1',
      title: 'xhr-polling echo (send, then poll), 100 sessions × 1 in flight',
      unit: 'msg',
      args: echo('xhr-polling', 100, 1),
      metrics: rate,
    },
  ];
}

const PLURAL = { delivery: 'deliveries' };

const METRICS = {
  msgs_per_s: { label: (u) => `throughput (${PLURAL[u] || `${u}s`}/s)`, better: 'higher', digits: 0 },
  p50_us: { label: () => 'p50 latency (µs)', better: 'lower', digits: 0 },
  p99_us: { label: () => 'p99 latency (µs)', better: 'lower', digits: 0 },
  cpu_us_per_msg: { label: (u) => `server CPU per ${u} (µs)`, better: 'lower', digits: 1 },
  rss_per_session: { label: () => 'RSS per idle session, 1 s after the last opened (KiB)', better: 'lower', digits: 1 },
  rss_settled_per_session: { label: () => 'RSS per idle session, 31 s after (KiB)', better: 'lower', digits: 1 },
};

// ---------------------------------------------------------------- helpers

const say = (line) => process.stderr.write(`${line}\n`);

// Resolves to what `promise` gives, or to 'late' after `ms`; the timer never
// outlives the race.
function within(promise, ms) {
  let timer;
  const late = new Promise((resolve) => {
    timer = setTimeout(() => resolve('late'), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

function run(cmd, args, options = {}) {
  const result = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, ...options });
  if (result.error) throw new Error(`${cmd}: ${result.error.message}`);
  return result;
}

function must(cmd, args, options = {}) {
  const result = run(cmd, args, options);
  if (result.status !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} failed (${result.status}):\n${tail(`${result.stdout || ''}${result.stderr || ''}`)}`);
  }
  return result.stdout;
}

function tail(text, lines = 30) {
  return String(text).trimEnd().split('\n').slice(-lines).join('\n');
}

function openFilesLimit(pid) {
  try {
    const limits = fs.readFileSync(`/proc/${pid}/limits`, 'utf8');
    const m = /^Max open files\s+(\d+|unlimited)/m.exec(limits);
    return m ? (m[1] === 'unlimited' ? Infinity : Number(m[1])) : null;
  } catch {
    return null;
  }
}

// --------------------------------------------------------------- children

const children = new Set();

function killAll(signal = 'SIGKILL') {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(child.pid, signal);
      } catch {
        // already gone
      }
    }
  }
}

process.on('exit', () => killAll());
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(signal, () => {
    say(`\n${signal}: stopping`);
    killAll();
    process.exit(130);
  });
}

// Starts `argv` pinned to `core`, with the descriptor limit raised by a
// shell wrapper (`ulimit -n`); the wrapper execs, so the pid is the program's.
function spawnPinned(core, argv, options) {
  const wrapper = `ulimit -n ${NOFILE} 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec taskset -c "$0" "$@"`;
  const child = spawn('bash', ['-c', wrapper, String(core), ...argv], { stdio: ['pipe', 'pipe', 'pipe'], ...options });
  children.add(child);
  child.exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  child.exited.then(() => children.delete(child));
  child.stdin.on('error', () => {});
  return child;
}

function collect(stream, limit = 256 * 1024) {
  const box = { text: '' };
  stream.setEncoding('utf8');
  stream.on('data', (chunk) => {
    if (box.text.length < limit) box.text += chunk;
  });
  return box;
}

async function stop(child) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(child.pid, 'SIGTERM');
  } catch {
    return;
  }
  if ((await within(child.exited, STOP_GRACE_MS)) === 'late') {
    try {
      process.kill(child.pid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
    await child.exited;
  }
}

async function startServer(impl, opts) {
  const server = spawnPinned(opts.serverCore, [process.execPath, APP], {
    env: { ...process.env, SOCKJS_PATH: impl.module, PORT: '0', NODE_ENV: 'production' },
  });
  const stderr = collect(server.stderr);
  const port = await new Promise((resolve) => {
    const lines = readline.createInterface({ input: server.stdout });
    const timer = setTimeout(() => resolve(null), SERVER_START_MS);
    lines.on('line', (line) => {
      const m = /^READY (\d+)$/.exec(line);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    server.exited.then(() => {
      clearTimeout(timer);
      resolve(null);
    });
  });
  if (!port) {
    await stop(server);
    throw new Error(`${impl.name} server did not start:\n${tail(stderr.text)}`);
  }
  server.stdout.resume();
  return { server, port, stderr };
}

// One scenario, one implementation, one fresh server.
async function runOnce(scn, impl, opts) {
  const { server, port, stderr } = await startServer(impl, opts);
  const samples = { ready: sampleProcess(server.pid) };
  const nofile = openFilesLimit(server.pid);
  const budgetMs = scn.budgetMs || 60000;
  const args = [...scn.args, '--port', port, '--sync', '--max-total-ms', budgetMs].map(String);
  const gen = spawnPinned(opts.loadCore, [LOADGEN, ...args], {});
  const genErr = collect(gen.stderr);
  const genSamples = {};
  let result = null;
  let error = null;
  const lines = readline.createInterface({ input: gen.stdout });
  lines.on('line', (line) => {
    let event;
    try {
      event = JSON.parse(line);
    } catch {
      return;
    }
    if (event.event === 'checkpoint') {
      samples[event.name] = sampleProcess(server.pid);
      genSamples[event.name] = sampleProcess(gen.pid);
      gen.stdin.write('go\n');
    } else if (event.event === 'result') {
      result = event;
    } else if (event.event === 'error') {
      error = event.error;
    }
  });
  if ((await within(gen.exited, budgetMs + 15000)) === 'late') {
    error = error || 'the load generator overstayed its budget';
    await stop(gen);
  }
  const genExit = await gen.exited;
  const end = sampleProcess(server.pid);
  const serverExit = server.exitCode !== null || server.signalCode !== null
    ? { code: server.exitCode, signal: server.signalCode }
    : null;
  await stop(server);
  if (!result && !error) error = `the load generator exited (${genExit.code ?? genExit.signal}) without a result`;
  return {
    impl: impl.key,
    result,
    error,
    samples: { ...samples, end },
    nofile,
    serverDied: serverExit,
    serverStderr: stderr.text,
    loadgenStderr: genErr.text,
    metrics: metricsOf(scn, result, samples, genSamples),
  };
}

function metricsOf(scn, result, samples, genSamples) {
  if (!result || result.messages === 0) return {};
  const start = samples['measure-start'];
  const end = samples['measure-end'];
  const m = {
    msgs_per_s: result.msgs_per_s,
    p50_us: result.p50_us,
    p99_us: result.p99_us,
  };
  if (start && end) {
    const cpuUs = ((end.ticks - start.ticks) * 1e6) / CLK_TCK;
    m.cpu_us_per_msg = cpuUs / result.messages;
    m.cpu_busy = cpuUs / 1e6 / result.seconds;
  }
  const g0 = genSamples['measure-start'];
  const g1 = genSamples['measure-end'];
  if (g0 && g1) m.loadgen_busy = (g1.ticks - g0.ticks) / CLK_TCK / result.seconds;
  const rss = samples.rss;
  if (scn.metrics.includes('rss_per_session') && start && rss && result.sessions > 0) {
    m.rss_per_session = (rss.rssKiB - start.rssKiB) / result.sessions;
    m.rss_kib = rss.rssKiB;
  }
  const settled = samples['rss-settled'];
  if (scn.metrics.includes('rss_settled_per_session') && start && settled && result.sessions > 0) {
    m.rss_settled_per_session = (settled.rssKiB - start.rssKiB) / result.sessions;
  }
  return m;
}

// ------------------------------------------------------------ preparation

function git(...args) {
  return must('git', ['-C', ROOT, ...args]).trim();
}

// What the build of ours is made from: HEAD's tree, or the tracked files
// as they are in the work tree.
function sourceId(mode) {
  if (mode === 'head') return `head:${git('rev-parse', 'HEAD^{tree}')}`;
  const hash = crypto.createHash('sha256');
  for (const file of git('ls-files', '-z').split('\0').filter(Boolean).sort()) {
    const full = path.join(ROOT, file);
    hash.update(`${file}\0`);
    if (fs.existsSync(full) && fs.statSync(full).isFile()) hash.update(fs.readFileSync(full));
    hash.update('\0');
  }
  return `worktree:${hash.digest('hex')}`;
}

function findAddon(dir) {
  if (!fs.existsSync(dir)) return null;
  const name = fs.readdirSync(dir).find((f) => /^sockjs\..+\.node$/.test(f));
  return name ? path.join(dir, name) : null;
}

function prepareOurs(opts) {
  const id = sourceId(opts.source);
  const stamp = fs.existsSync(OURS_STAMP) ? fs.readFileSync(OURS_STAMP, 'utf8').trim() : '';
  if (!opts.rebuild && stamp === id && findAddon(OURS)) {
    say(`ours: reusing the release build in ${path.relative(ROOT, OURS)} (${id.slice(0, 20)}…)`);
    return id;
  }
  say(`ours: copying the ${opts.source === 'head' ? "HEAD's" : "work tree's"} tracked files to ${path.relative(ROOT, OURS)}`);
  fs.rmSync(OURS_STAMP, { force: true });
  fs.mkdirSync(OURS, { recursive: true });
  // Keep node_modules and cargo's target/ so that a rebuild is incremental.
  for (const entry of fs.readdirSync(OURS)) {
    if (entry !== 'node_modules' && entry !== 'target') fs.rmSync(path.join(OURS, entry), { recursive: true, force: true });
  }
  if (opts.source === 'head') {
    must('bash', ['-c', 'set -o pipefail; git -C "$0" archive --format=tar HEAD | tar -x -C "$1"', ROOT, OURS]);
  } else {
    for (const file of git('ls-files', '-z').split('\0').filter(Boolean)) {
      const from = path.join(ROOT, file);
      if (!fs.existsSync(from) || !fs.statSync(from).isFile()) continue;
      const to = path.join(OURS, file);
      fs.mkdirSync(path.dirname(to), { recursive: true });
      fs.copyFileSync(from, to);
      fs.chmodSync(to, fs.statSync(from).mode);
    }
  }
  say('ours: npm install (builds the release addon through `prepare`; the first build takes minutes)');
  const log = path.join(WORK, 'build-ours.log');
  const started = Date.now();
  const result = run('bash', ['-c', 'npm install --no-audit --no-fund >"$0" 2>&1', log], {
    cwd: OURS,
    env: { ...process.env, CARGO_TERM_COLOR: 'never' },
    timeout: 40 * 60 * 1000,
  });
  if (result.status !== 0 || !findAddon(OURS)) {
    throw new Error(`building ours failed (see ${log}):\n${tail(fs.readFileSync(log, 'utf8'))}`);
  }
  say(`ours: built in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  fs.writeFileSync(OURS_STAMP, `${id}\n`);
  return id;
}

function prepareReference() {
  const pkg = path.join(REF_MODULE, 'package.json');
  const version = fs.existsSync(pkg) ? JSON.parse(fs.readFileSync(pkg, 'utf8')).version : null;
  if (version !== REF_VERSION) {
    say(`reference: installing sockjs@${REF_VERSION} into ${path.relative(ROOT, REF)}`);
    const lock = fs.existsSync(path.join(REF, 'package-lock.json'));
    must('npm', [lock ? 'ci' : 'install', '--no-audit', '--no-fund'], { cwd: REF });
  }
  const installed = JSON.parse(fs.readFileSync(pkg, 'utf8')).version;
  if (installed !== REF_VERSION) throw new Error(`bench/ref has sockjs ${installed}, not ${REF_VERSION}`);
}

function buildLoadgen() {
  say('loadgen: cargo build --release');
  must('cargo', ['build', '--release', '--quiet'], { cwd: LOADGEN_DIR, env: { ...process.env, CARGO_TERM_COLOR: 'never' } });
}

// The open-files limit a child gets from the wrapper of spawnPinned.
function achievableNofile() {
  const r = run('bash', ['-c', `ulimit -n ${NOFILE} 2>/dev/null || ulimit -n "$(ulimit -Hn)"; ulimit -n`]);
  const text = r.stdout.trim();
  return text === 'unlimited' ? NOFILE : Number(text) || 1024;
}

function checkMachine(opts) {
  for (const tool of ['taskset', 'bash', 'cargo', 'git', 'npm']) {
    if (run('bash', ['-c', `command -v ${tool}`]).status !== 0) throw new Error(`${tool} is needed`);
  }
  const cores = os.availableParallelism ? os.availableParallelism() : os.cpus().length;
  if (cores < 2) {
    say('warning: one core only: server and load generator share it');
    opts.serverCore = 0;
    opts.loadCore = 0;
  }
  return cores;
}

// ----------------------------------------------------------------- report

function fmt(value, digits) {
  if (value === null || value === undefined || !Number.isFinite(value)) return 'n/a';
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

// >1 means ours is better, whichever direction the metric goes.
function advantage(metric, ours, ref) {
  if (!(ours > 0) || !(ref > 0)) return null;
  return METRICS[metric].better === 'higher' ? ours / ref : ref / ours;
}

function summarize(list, runs) {
  const rows = [];
  for (const scn of list) {
    for (const metric of scn.metrics) {
      const value = (impl) => median(runs.filter((r) => r.scenario === scn.id && r.impl === impl).map((r) => r.metrics[metric]));
      const ours = value('ours');
      const ref = value('ref');
      rows.push({
        scenario: scn.id,
        title: scn.title,
        metric,
        label: METRICS[metric].label(scn.unit),
        better: METRICS[metric].better,
        ours,
        ref,
        ratio: ours !== null && ref ? ours / ref : null,
        advantage: advantage(metric, ours, ref),
      });
    }
  }
  return rows;
}

function busyOf(list, runs) {
  const of = (id, impl, key) => median(runs.filter((r) => r.scenario === id && r.impl === impl).map((r) => r.metrics[key]));
  return list.map((scn) => ({
    scenario: scn.id,
    ours: of(scn.id, 'ours', 'cpu_busy'),
    ref: of(scn.id, 'ref', 'cpu_busy'),
    genOurs: of(scn.id, 'ours', 'loadgen_busy'),
    genRef: of(scn.id, 'ref', 'loadgen_busy'),
  }));
}

function problemsOf(runs) {
  const problems = [];
  for (const r of runs) {
    const what = [];
    if (r.error) what.push(`error: ${r.error}`);
    if (r.result && r.result.errors > 0) what.push(`${r.result.errors} errors, e.g. ${JSON.stringify(r.result.error_samples.slice(0, 3))}`);
    if (r.serverDied) what.push(`server exited during the run (${JSON.stringify(r.serverDied)})`);
    if (r.result && r.result.alive_after !== undefined && r.result.alive_after !== r.result.sessions) {
      what.push(`${r.result.sessions - r.result.alive_after} idle sessions no longer echoed`);
    }
    const stderr = r.serverStderr.trim();
    if (stderr) what.push(`server stderr:\n\n\`\`\`\n${tail(stderr, 15)}\n\`\`\``);
    if (what.length) problems.push({ scenario: r.scenario, impl: r.impl, rep: r.rep, what });
  }
  return problems;
}

function markdown(meta, rows, busy, problems) {
  const out = [];
  out.push('# Benchmark: sockjs (Rust engine) vs sockjs@0.3.24', '');
  out.push(`${meta.date}, ${meta.quick ? '**quick mode** (smaller counts, 1 repetition)' : `full mode, median of ${meta.reps} runs`}; ` +
    `ours: ${meta.source} (commit ${meta.commit}${meta.dirty && meta.sourceMode === 'head' ? ', uncommitted changes not included' : ''}); ` +
    `Node ${meta.node}; ${meta.cpu}, ${meta.cores} cores; server on core ${meta.serverCore}, load generator on core ${meta.loadCore}; ` +
    `load average ${meta.loadBefore} before, ${meta.loadAfter} after; took ${meta.seconds} s.`, '');
  out.push('"ours / 0.3.24" is the plain ratio of the medians; whether higher or lower is better is in the last column. ' +
    'Latencies are measured by the load generator (send to checked echo); server CPU is utime+stime of the whole ' +
    'server process from /proc over the measured phase, divided by the units counted.', '');
  out.push('| scenario | metric | ours | sockjs 0.3.24 | ours / 0.3.24 | better |');
  out.push('| --- | --- | ---: | ---: | ---: | --- |');
  for (const row of rows) {
    const digits = METRICS[row.metric].digits;
    const ratio = row.ratio === null ? 'n/a' : `${row.ratio.toFixed(2)}×`;
    out.push(`| ${row.scenario} | ${row.label} | ${fmt(row.ours, digits)} | ${fmt(row.ref, digits)} | ${ratio} | ${row.better} |`);
  }
  out.push('', '![ours vs sockjs 0.3.24](latest.svg)', '');
  out.push('How busy the two pinned cores were during the measured phase (CPU seconds per second, median; ' +
    '100% = that core saturated). A server well below 100% was not the bottleneck: the round trips of the ' +
    'scenario, the load generator (near 100%) or other work on the machine set the pace.', '');
  out.push('| scenario | server: ours | server: 0.3.24 | load generator: against ours | against 0.3.24 |');
  out.push('| --- | ---: | ---: | ---: | ---: |');
  const pct = (v) => (v === null ? 'n/a' : `${fmt(v * 100, 0)}%`);
  for (const b of busy) {
    out.push(`| ${b.scenario} | ${pct(b.ours)} | ${pct(b.ref)} | ${pct(b.genOurs)} | ${pct(b.genRef)} |`);
  }
  out.push('', '## Scenarios', '');
  for (const scn of meta.scenarios) out.push(`- \`${scn.id}\`: ${scn.title}.`);
  out.push('', '## Problems seen', '');
  if (problems.length === 0) out.push('None: every payload came back intact, no server wrote to stderr or exited.');
  for (const p of problems) {
    out.push(`- \`${p.scenario}\`, ${p.impl === 'ours' ? 'ours' : 'sockjs 0.3.24'}, run ${p.rep + 1}: ${p.what.join('; ')}`);
  }
  if (meta.noisy) {
    out.push('', `Note: ${meta.noisy}`);
  }
  return `${out.join('\n')}\n`;
}

function xml(text) {
  return String(text).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]);
}

// A horizontal bar per scenario and metric: how many times better ours is
// (log scale, 1× in the middle; right and green: ours better).
function svgChart(meta, rows) {
  const shown = rows.filter((r) => r.advantage !== null);
  const width = 980;
  const labelW = 420;
  const plotL = labelW + 10;
  const plotR = width - 70;
  const top = 70;
  const rowH = 20;
  const gap = 8;
  const maxLog = 4; // 1/16× .. 16×
  const x = (adv) => {
    const l = Math.max(-maxLog, Math.min(maxLog, Math.log2(adv)));
    return plotL + ((l + maxLog) / (2 * maxLog)) * (plotR - plotL);
  };
  let y = top;
  let last = null;
  const bars = [];
  for (const row of shown) {
    if (last !== null && row.scenario !== last) y += gap;
    last = row.scenario;
    const x0 = x(1);
    const x1 = x(row.advantage);
    const good = row.advantage >= 1;
    const clipped = Math.abs(Math.log2(row.advantage)) > maxLog;
    const label = `${row.scenario} · ${row.label.replace(/ \(.*\)$/, '')}`;
    bars.push(`<text x="${labelW}" y="${y + 14}" text-anchor="end" class="l">${xml(label)}</text>`);
    bars.push(`<rect x="${Math.min(x0, x1).toFixed(1)}" y="${y + 3}" width="${Math.max(1, Math.abs(x1 - x0)).toFixed(1)}" ` +
      `height="${rowH - 6}" fill="${good ? '#2e7d32' : '#c62828'}"/>`);
    const text = `${row.advantage >= 10 ? row.advantage.toFixed(0) : row.advantage.toFixed(2)}×${clipped ? ' (off scale)' : ''}`;
    const tx = good ? x1 + 4 : x1 - 4;
    bars.push(`<text x="${tx.toFixed(1)}" y="${y + 14}" text-anchor="${good ? 'start' : 'end'}" class="v">${xml(text)}</text>`);
    y += rowH;
  }
  const bottom = y + 10;
  const ticks = [];
  for (let l = -maxLog; l <= maxLog; l++) {
    const tx = x(2 ** l).toFixed(1);
    const label = l >= 0 ? `${2 ** l}×` : `1/${2 ** -l}×`;
    ticks.push(`<line x1="${tx}" y1="${top - 4}" x2="${tx}" y2="${bottom}" class="${l === 0 ? 'one' : 'grid'}"/>`);
    ticks.push(`<text x="${tx}" y="${bottom + 16}" text-anchor="middle" class="t">${label}</text>`);
  }
  const height = bottom + 56;
  const subtitle = `${meta.quick ? 'quick mode, 1 run' : `median of ${meta.reps} runs`} · ${meta.date} · commit ${meta.commit} · ` +
    `server pinned to 1 core · ${meta.cores}-core machine${meta.noisy ? ', shared with other work (noisy)' : ''}`;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif">`,
    '<style>.l{font-size:12px;fill:#222}.v{font-size:11px;fill:#222}.t{font-size:11px;fill:#555}' +
      '.grid{stroke:#ddd;stroke-width:1}.one{stroke:#333;stroke-width:1.5}.h{font-size:16px;font-weight:bold}.s{font-size:11px;fill:#555}</style>',
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
    `<text x="12" y="24" class="h">sockjs (Rust engine) vs sockjs 0.3.24: times better, log scale (right/green: ours better)</text>`,
    `<text x="12" y="44" class="s">${xml(subtitle)}</text>`,
    ...ticks,
    ...bars,
    `<text x="12" y="${height - 12}" class="s">Throughput: ours/0.3.24. Latency, CPU and RSS: 0.3.24/ours. Numbers: bench/results/latest.md</text>`,
    '</svg>',
    '',
  ].join('\n');
}

function loadAverage() {
  return os.loadavg().map((v) => v.toFixed(2)).join(' ');
}

// ------------------------------------------------------------------- main

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const started = Date.now();
  const cores = checkMachine(opts);
  fs.mkdirSync(WORK, { recursive: true });
  fs.rmSync(LOGS, { recursive: true, force: true });
  fs.mkdirSync(LOGS, { recursive: true });
  buildLoadgen();
  prepareReference();
  const source = prepareOurs(opts);
  const impls = [
    { key: 'ours', name: 'ours', module: OURS },
    { key: 'ref', name: `sockjs ${REF_VERSION}`, module: REF_MODULE },
  ];
  const nofile = achievableNofile();
  if (nofile < NOFILE) say(`note: open-files limit for the children is ${nofile} (hard limit; ${NOFILE} wanted)`);
  let list = scenarios(opts.quick, nofile);
  if (opts.only) {
    list = list.filter((s) => opts.only.some((o) => s.id.startsWith(o)));
    if (list.length === 0) throw new Error('--only matched no scenario');
  }
  const loadBefore = loadAverage();
  const benchStarted = Date.now();
  say(`running ${list.length} scenarios × ${opts.reps} × 2 (${opts.quick ? 'quick' : 'full'}); server on core ${opts.serverCore}, load on core ${opts.loadCore}`);
  const runs = [];
  for (const scn of list) {
    for (let rep = 0; rep < opts.reps; rep++) {
      // Alternate who goes first so that drift hits both alike.
      const order = rep % 2 === 0 ? impls : [...impls].reverse();
      for (const impl of order) {
        const t0 = Date.now();
        let outcome;
        try {
          outcome = await runOnce(scn, impl, opts);
        } catch (e) {
          outcome = { impl: impl.key, error: e.message, metrics: {}, serverStderr: '', loadgenStderr: '', samples: {} };
        }
        outcome.scenario = scn.id;
        outcome.rep = rep;
        runs.push(outcome);
        const log = path.join(LOGS, `${scn.id}.${impl.key}.${rep + 1}.log`);
        fs.writeFileSync(log, `server stderr:\n${outcome.serverStderr}\nloadgen stderr:\n${outcome.loadgenStderr}\n` +
          `result: ${JSON.stringify(outcome.result)}\nerror: ${outcome.error}\n`);
        const m = outcome.metrics;
        const brief = outcome.error
          ? `FAILED: ${outcome.error.split('\n')[0]}`
          : `${fmt(m.msgs_per_s, 0)}/s p50 ${fmt(m.p50_us, 0)} µs p99 ${fmt(m.p99_us, 0)} µs ` +
            `cpu ${fmt(m.cpu_us_per_msg, 1)} µs (busy: server ${fmt(m.cpu_busy * 100, 0)}%, ` +
            `loadgen ${fmt(m.loadgen_busy * 100, 0)}%)` +
            (m.rss_per_session !== undefined ? ` rss ${fmt(m.rss_per_session, 1)} KiB/session` : '') +
            (outcome.result.errors ? ` ERRORS ${outcome.result.errors}` : '') +
            (outcome.serverStderr.trim() ? ' (server stderr)' : '');
        say(`  ${scn.id} [${rep + 1}/${opts.reps}] ${impl.name.padEnd(12)} ${brief}  (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
      }
    }
  }
  const loadAfter = loadAverage();
  const rows = summarize(list, runs);
  const problems = problemsOf(runs);
  const busy = busyOf(list, runs);
  const commit = git('rev-parse', '--short', 'HEAD');
  const dirty = git('status', '--porcelain', '--untracked-files=no') !== '';
  const meta = {
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    quick: opts.quick,
    reps: opts.reps,
    sourceMode: opts.source,
    source: opts.source === 'head' ? 'HEAD' : 'work tree (tracked files)',
    sourceId: source,
    commit: opts.source === 'worktree' && dirty ? `${commit}+changes` : commit,
    dirty,
    node: process.version,
    cpu: (os.cpus()[0] || {}).model || 'unknown CPU',
    cores,
    serverCore: opts.serverCore,
    loadCore: opts.loadCore,
    nofile,
    loadBefore,
    loadAfter,
    seconds: Math.round((Date.now() - benchStarted) / 1000),
    noisy: Number(loadBefore.split(' ')[0]) > 0.5 || Number(loadAfter.split(' ')[0]) > 2.5
      ? 'the machine had other load during this run (see the load averages), so the numbers are noisy.'
      : null,
    scenarios: list.map(({ id, title, unit, args }) => ({ id, title, unit, args: args.map(String) })),
  };
  fs.mkdirSync(RESULTS, { recursive: true });
  const stripped = runs.map((r) => ({ ...r, serverStderr: tail(r.serverStderr, 40), loadgenStderr: tail(r.loadgenStderr, 40) }));
  fs.writeFileSync(path.join(RESULTS, 'latest.json'), `${JSON.stringify({ meta, rows, busy, problems, runs: stripped }, null, 2)}\n`);
  fs.writeFileSync(path.join(RESULTS, 'latest.md'), markdown(meta, rows, busy, problems));
  fs.writeFileSync(path.join(RESULTS, 'latest.svg'), svgChart(meta, rows));
  say(`\n${markdown(meta, rows, busy, problems)}`);
  say(`wrote bench/results/latest.{md,svg,json}; benchmark ${meta.seconds} s, all in ${Math.round((Date.now() - started) / 1000)} s (${meta.commit})`);
}

main().catch((e) => {
  say(`bench: ${e.stack || e.message}`);
  killAll();
  process.exit(1);
});
