'use strict';
// Several virtual channels over one SockJS connection, using
// websocket-multiplex. Three channels are registered:
//   ann  - greets, then acknowledges every message,
//   bob  - disagrees, then refuses every message,
//   carl - says goodbye and closes the channel right away.
//
//   node examples/multiplex/server.js     (PORT defaults to 9999)
//   then open http://127.0.0.1:9999/ in a browser.

const http = require('node:http');
const express = require('express');
const { MultiplexServer } = require('websocket-multiplex');

const sockjs = process.env.SOCKJS_IMPL ? require(process.env.SOCKJS_IMPL) : require('../..');

const HOST = '127.0.0.1';
const PORT = Number(process.env.PORT || 9999);

// 1. The SockJS service carrying the multiplexed traffic.
const service = sockjs.createServer({
  log: (severity, line) => {
    if (severity === 'error') console.error(line);
  },
});

// 2. The channels.
const multiplexer = new MultiplexServer(service);

multiplexer.registerChannel('ann').on('connection', (channel) => {
  channel.write('Ann says hi!');
  channel.on('data', (data) => {
    channel.write(`Ann nods: ${data}`);
  });
});

multiplexer.registerChannel('bob').on('connection', (channel) => {
  channel.write("Bob doesn't agree.");
  channel.on('data', (data) => {
    channel.write(`Bob says no to: ${data}`);
  });
});

multiplexer.registerChannel('carl').on('connection', (channel) => {
  channel.write('Carl says goodbye!');
  // Close this one channel; the SockJS connection itself stays open.
  channel.end();
});

// 3. Express serves the page and both client libraries.
const app = express();
app.get('/', (req, res) => {
  res.sendFile(`${__dirname}/index.html`);
});
app.get('/sockjs.js', (req, res) => {
  res.type('application/javascript');
  res.sendFile(require.resolve('sockjs-client/dist/sockjs.js'));
});
app.get('/multiplex.js', (req, res) => {
  res.type('application/javascript');
  res.sendFile(require.resolve('websocket-multiplex/multiplex_client.js'));
});

const server = http.createServer(app);
service.installHandlers(server, { prefix: '/multiplex' });

server.listen(PORT, HOST, () => {
  console.log(` [*] Listening on ${HOST}:${server.address().port}`);
});
