'use strict';
// sockjs-client 1.6.1 (dist/sockjs.js) in headless Chromium against the test
// app, forcing each browser transport in turn. The page comes from a second
// http.Server on another port, so every SockJS request is cross-origin: the
// XHR transports go through CORS and the iframe-* transports load the
// server's iframe page, whose sockjs_url points back at the page server.
// The scenarios are the ones client-node.test.js runs (helpers/client.js).

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { before, after } = require('node:test');
const { chromium } = require('playwright-core');
const C = require('./helpers/client.js');
const { CHROMIUM_PATH, CHROMIUM_ARGS } = require('./helpers/chromium.js');

const TRANSPORTS = [
  'websocket',
  'xhr-streaming',
  'xhr-polling',
  'eventsource',
  'iframe-eventsource',
  'iframe-htmlfile',
  'iframe-xhr-polling',
  'jsonp-polling',
];

/** Wait for the browser itself (launch, new page, navigation, closing). */
const BROWSER_MS = 30000;

let pageServer = null;
let apps = null;
let userDataDir = null;
let launching = null;
let context = null;
let page = null;
let pageErrors = [];

before(async () => {
  pageServer = await C.startPageServer();
  // The iframe transports' iframe page loads sockjs-client from the page server.
  apps = await C.startApps({ sockjs_url: `${pageServer.base}/sockjs.js` });
  userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sockjs-chromium-'));
  launching = chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: CHROMIUM_ARGS,
  });
  context = await C.withTimeout(launching, BROWSER_MS, 'Chromium to launch');
});

after(async () => {
  // Every step runs even if an earlier one failed; the first error is reported.
  const steps = [
    // A launch that timed out may still complete: close that browser too.
    () => launching && C.withTimeout(launching.then((c) => c.close(), () => {}), BROWSER_MS, 'Chromium to close'),
    () => apps && apps.close(),
    () => pageServer && C.withTimeout(pageServer.close(), 5000, 'the page server to close'),
    () => userDataDir && fs.rmSync(userDataDir, { recursive: true, force: true }),
  ];
  const errors = [];
  for (const step of steps) {
    try {
      await step();
    } catch (err) {
      errors.push(err);
    }
  }
  if (errors.length) throw errors[0];
});

/** A fresh page on the page server for each transport. */
async function openPage() {
  pageErrors = [];
  page = await C.withTimeout(context.newPage(), BROWSER_MS, 'a new page');
  page.on('pageerror', (err) => pageErrors.push(String(err && err.message)));
  await C.withTimeout(page.goto(`${pageServer.base}/`, { waitUntil: 'load' }), BROWSER_MS, 'the test page to load');
  const ready = await page.evaluate(
    () => typeof globalThis.SockJS === 'function' && typeof globalThis.sockjsScenarios === 'object',
  );
  if (!ready) throw new Error('the test page did not define SockJS and the scenarios');
}

async function closePage() {
  if (!page) return;
  const p = page;
  page = null;
  await C.withTimeout(p.close(), BROWSER_MS, 'the page to close');
}

/** Run a scenario in the page; the scenario bounds its own waits, this is a backstop. */
async function runInPage(name, ...args) {
  try {
    return await C.withTimeout(
      page.evaluate(([n, a]) => globalThis.sockjsScenarios[n](globalThis.SockJS, ...a), [name, args]),
      C.STEP_MS * 6,
      `scenario ${name} in the page`,
    );
  } catch (err) {
    if (pageErrors.length) err.message += `\nuncaught errors in the page: ${pageErrors.join(' | ')}`;
    throw err;
  }
}

const ctx = {
  apps: () => apps,
  run: runInPage,
  before: openPage,
  after: closePage,
};

for (const transport of TRANSPORTS) C.describeTransport(transport, ctx);
