'use strict';
// sockjs-client 1.6.1 running in Node against the test app, over every
// transport sockjs-client offers in Node: websocket (faye-websocket),
// xhr-streaming and xhr-polling (its http-based XHR driver) and eventsource
// (the `eventsource` package). The iframe and jsonp transports need a DOM
// (global.document) and are covered by client-browser.test.js.
//
// sockjs-client's own origin in Node is http://localhost, so every request
// is cross-origin (CORS code paths on the server).

const { before, after } = require('node:test');
const SockJS = require('sockjs-client');
const C = require('./helpers/client.js');

const TRANSPORTS = ['websocket', 'xhr-streaming', 'xhr-polling', 'eventsource'];

let apps = null;

before(async () => {
  apps = await C.startApps();
});

after(async () => {
  if (apps) await apps.close();
});

const scenarios = C.installScenarios({});

const ctx = {
  apps: () => apps,
  run: (name, ...args) => scenarios[name](SockJS, ...args),
};

for (const transport of TRANSPORTS) C.describeTransport(transport, ctx);
