'use strict';
// Session and connection objects. They live at this path because consumers
// reach into it: webpack-dev-server patches
// `require('sockjs/lib/transport').Session.prototype.decorateConnection`,
// Meteor reads `conn._session.recv.connection`. The protocol itself runs in
// the native engine; a Session here is the JavaScript face of one native
// session.

const net = require('node:net');
const stream = require('node:stream');
const crypto = require('node:crypto');

const Transport = { CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3 };
const SEND_QUEUED = 0;
const SEND_REFUSED = 2;

// Request headers copied onto `conn.headers` (never cookies: they belong to
// the page, not to the SockJS connection). `whitelistedHeaders` copies
// these by name, one line each; api.test.js checks that the two agree.
const HEADER_WHITELIST = [
  'referer', 'x-client-ip', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-port',
  'x-cluster-client-ip', 'via', 'x-real-ip', 'x-forwarded-proto', 'x-ssl', 'dnt',
  'host', 'user-agent', 'accept-language',
];

// A random (version 4) UUID as one flat string. crypto.randomUUID() builds
// its result by concatenation, which V8 keeps as a chain of 14 small string
// objects for as long as the connection lives: ~450 bytes per idle session.
const UUID_BATCH = 256;
const uuidRandom = Buffer.alloc(16 * UUID_BATCH);
let uuidNext = UUID_BATCH;
const uuidText = Buffer.alloc(36);
const HEX = Buffer.from('0123456789abcdef');

function randomUuid() {
  if (uuidNext === UUID_BATCH) {
    crypto.randomFillSync(uuidRandom);
    uuidNext = 0;
  }
  const at = 16 * uuidNext++;
  uuidRandom[at + 6] = (uuidRandom[at + 6] & 0x0f) | 0x40;
  uuidRandom[at + 8] = (uuidRandom[at + 8] & 0x3f) | 0x80;
  let out = 0;
  for (let i = 0; i < 16; i++) {
    if (i === 4 || i === 6 || i === 8 || i === 10) uuidText[out++] = 0x2d;
    const byte = uuidRandom[at + i];
    uuidText[out++] = HEX[byte >> 4];
    uuidText[out++] = HEX[byte & 15];
  }
  return uuidText.toString('latin1', 0, 36);
}

// An EventEmitter's listener table with a null prototype like Node's own
// (`{ __proto__: null }`), but made by a constructor: V8 keeps it as a
// small fast object instead of a ~160-byte dictionary for every session.
function ListenerTable() {}
ListenerTable.prototype = Object.create(null);

// Addresses and some header values repeat across sessions (the local
// address always, Host and User-Agent nearly always, the remote address
// behind a proxy): keep one string of each instead of one per session.
// Node's parser makes a fresh string for every request's headers.
const seenStrings = new Map();
function shared(text) {
  if (typeof text !== 'string') return text;
  const known = seenStrings.get(text);
  if (known !== undefined) return known;
  if (seenStrings.size >= 512) seenStrings.clear();
  seenStrings.set(text, text);
  return text;
}

// HEADER_WHITELIST's headers of `h` that are set, in its order. One read by
// name per header, not a loop over the list: `h[key]` with a changing key
// is a megamorphic lookup, and for xhr-polling, which copies the headers at
// every poll, the loop cost ~0.6 us per message (2%). Host and User-Agent,
// the same for most sessions, are kept once (see `shared`).
function whitelistedHeaders(h) {
  const out = {};
  if (h.referer) out.referer = h.referer;
  if (h['x-client-ip']) out['x-client-ip'] = h['x-client-ip'];
  if (h['x-forwarded-for']) out['x-forwarded-for'] = h['x-forwarded-for'];
  if (h['x-forwarded-host']) out['x-forwarded-host'] = h['x-forwarded-host'];
  if (h['x-forwarded-port']) out['x-forwarded-port'] = h['x-forwarded-port'];
  if (h['x-cluster-client-ip']) out['x-cluster-client-ip'] = h['x-cluster-client-ip'];
  if (h.via) out.via = h.via;
  if (h['x-real-ip']) out['x-real-ip'] = h['x-real-ip'];
  if (h['x-forwarded-proto']) out['x-forwarded-proto'] = h['x-forwarded-proto'];
  if (h['x-ssl']) out['x-ssl'] = h['x-ssl'];
  if (h.dnt) out.dnt = h.dnt;
  if (h.host) out.host = shared(h.host);
  if (h['user-agent']) out['user-agent'] = shared(h['user-agent']);
  if (h['accept-language']) out['accept-language'] = h['accept-language'];
  return out;
}

// A legacy `stream.Stream`, as in sockjs-node 0.3: `write` after close
// returns false instead of emitting an error, and `pipe` works both ways.
class SockJSConnection extends stream.Stream {
  constructor(session) {
    super();
    this._events = new ListenerTable();
    this._session = session;
    this.id = randomUuid();
    this.headers = {};
    this.prefix = session.prefix;
  }

  toString() {
    return `<SockJSConnection ${this.id}>`;
  }

  write(string) {
    return this._session.send(String(string));
  }

  end(string) {
    if (string) this.write(string);
    this.close();
    return null;
  }

  close(code, reason) {
    return this._session.close(code, reason);
  }

  destroy() {
    this.end();
    this.removeAllListeners();
  }

  destroySoon() {
    this.destroy();
  }

  get readable() {
    return this._session.readyState === Transport.OPEN;
  }

  get writable() {
    return this._session.readyState === Transport.OPEN;
  }

  get readyState() {
    return this._session.readyState;
  }

  // Bytes written and not yet handed to the client's socket. write()
  // returns false past the `high_water_mark` option; 'drain' follows.
  get bufferedAmount() {
    return this._session.bufferedAmount();
  }
}

// `Session._recv` of an adopted WebSocket until `recv` is asked for.
const ADOPTED = Symbol('adopted');

class Session {
  /**
   * @param {object} engine the native server
   * @param {number} nativeId the engine's id of the session
   * @param {string} prefix the install's prefix
   */
  constructor(engine, nativeId, prefix) {
    this._engine = engine;
    this._nativeId = nativeId;
    this.prefix = prefix;
    this.readyState = Transport.CONNECTING;
    this._recv = null;
    this.connection = new SockJSConnection(this);
  }

  // What carries the session now: { connection: net.Socket, protocol,
  // response? }. Once the engine adopted the session's WebSocket, an
  // AdoptedReceiver, made when first asked for: most applications never
  // ask, and an idle session is then 48 bytes smaller.
  get recv() {
    if (this._recv === ADOPTED) this._recv = new AdoptedReceiver(this.connection, this.connection.protocol);
    return this._recv;
  }

  set recv(receiver) {
    this._recv = receiver;
  }

  // The engine adopted the session's WebSocket; Node's socket is about to
  // go (call after decorateConnection, which reads it).
  adopted() {
    this._recv = ADOPTED;
  }

  // Results of the engine's send (src/lib.rs).
  send(payload) {
    if (this.readyState !== Transport.OPEN) return false;
    const result = this._engine.send(this._nativeId, payload);
    if (result === SEND_REFUSED) {
      // The engine closed the session (hard buffer limit); 'close' follows.
      this.readyState = Transport.CLOSING;
    }
    return result === SEND_QUEUED;
  }

  bufferedAmount() {
    return this.readyState === Transport.CLOSED ? 0 : this._engine.bufferedAmount(this._nativeId);
  }

  close(status = 1000, reason = 'Normal closure') {
    if (this.readyState !== Transport.OPEN) return false;
    const done = this._engine.close(this._nativeId, Number(status) >>> 0, String(reason));
    if (done) this.readyState = Transport.CLOSING;
    return done;
  }

  // Copy what the application may want to know of the request that carries
  // the session now. Called for every receiver that joins the session.
  decorateConnection(req) {
    const socket = (this.recv && (this.recv.connection || (this.recv.response && this.recv.response.socket))) || null;
    // An adopted WebSocket's addresses were read by the engine.
    const known = this.recv && this.recv.addresses;
    let remoteAddress;
    let remotePort;
    let address;
    try {
      remoteAddress = shared(known ? known.remoteAddress : socket.remoteAddress);
      remotePort = known ? known.remotePort : socket.remotePort;
      address = known ? known.address : socket.address();
      if (address) address.address = shared(address.address);
    } catch {
      // A destroyed or foreign socket: the address is simply not known.
    }
    if (remoteAddress) {
      this.connection.remoteAddress = remoteAddress;
      this.connection.remotePort = remotePort;
      this.connection.address = address;
    }
    this.connection.url = req.url;
    // The URL itself when it has no query: one string kept per session, not two.
    const query = req.url.indexOf('?');
    this.connection.pathname = query === -1 ? req.url : req.url.slice(0, query);
    this.connection.protocol = this.recv && this.recv.protocol;
    this.connection.headers = whitelistedHeaders(req.headers);
  }
}

// What `conn._session.recv` is once the engine has adopted a WebSocket's
// descriptor and Node's own socket is gone. Its `connection` is a stand-in
// made only when asked for (most applications never ask): an unconnected
// net.Socket that keeps the connection's addresses and accepts the tuning
// calls consumers make (Meteor calls setTimeout). They do not reach the
// connection: the engine runs its own heartbeats and close handshakes, as
// the upgraded socket of sockjs-node ran none of these either. A class with
// a prototype getter, not a closure: it stays small for every idle session.
class AdoptedReceiver {
  constructor(connection, protocol) {
    this._connection = connection;
    this._standIn = null;
    this.protocol = protocol;
  }

  get connection() {
    if (!this._standIn) this._standIn = new AdoptedSocket(this._connection);
    return this._standIn;
  }
}

class AdoptedSocket extends net.Socket {
  // `conn` holds what decorateConnection copied from Node's socket.
  constructor(conn) {
    super();
    const local = conn.address || {};
    const remote = {
      remoteAddress: conn.remoteAddress,
      remotePort: conn.remotePort,
      remoteFamily: net.isIPv6(conn.remoteAddress || '') ? 'IPv6' : 'IPv4',
      localAddress: local.address,
      localPort: local.port,
    };
    for (const key of Object.keys(remote)) {
      Object.defineProperty(this, key, { value: remote[key], enumerable: true });
    }
    this._adoptedAddress = local;
  }

  address() {
    return this._adoptedAddress;
  }

  setKeepAlive() {
    return this;
  }

  setNoDelay() {
    return this;
  }
}

// Node's net.Socket keeps whether it set TCP_NODELAY under a symbol of its
// own (kSetNoDelay; an http.Server's connections have it by default). The
// engine skips the system call then. Found by its description on the first
// socket asked about; on a Node without it, the engine always sets it.
let kSetNoDelay;
function noDelaySet(socket) {
  if (kSetNoDelay === undefined) {
    kSetNoDelay = Object.getOwnPropertySymbols(socket).find((s) => s.description === 'kSetNoDelay') || null;
  }
  return kSetNoDelay !== null && socket[kSetNoDelay] === true;
}

module.exports = { Transport, Session, SockJSConnection, AdoptedReceiver, AdoptedSocket, HEADER_WHITELIST, noDelaySet };
