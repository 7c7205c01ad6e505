'use strict';

// The native engine as an object: the binding exports free functions that
// take a handle first (see src/lib.rs for why it is not a napi class); this
// class keeps the handle and gives index.js and lib/transport.js methods.

const native = require('../binding.js');

// Where request() leaves a plan's numbers (src/lib.rs: PLAN_SLOTS, SLOT_*):
// filled in place on every call, read at once.
const planOut = new Float64Array(8);
// The plan's text starts with a header block not seen before (PLAN_NEW_HEADERS).
const PLAN_NEW_HEADERS = 16;
// Where adoptWebsocket() leaves its numbers (src/lib.rs: ADOPT_*): the id,
// the peer's port, the local port, the local family (4 or 6). A Uint32Array,
// not a Float64Array: V8 reads a Float64Array's element as a heap number
// even when it is a small integer, and an object field once given one keeps
// every later value boxed (16 bytes more per id and port of every session).
const adoptOut = new Uint32Array(4);
// adoptWebsocket()'s flags (src/lib.rs: ADOPT_RAW, ADOPT_NODELAY_SET).
const ADOPT_RAW = 1;
const ADOPT_NODELAY_SET = 2;
const PROTOCOLS = native.protocols();
// A u32 id (or -1, none) read from planOut as a small integer, not a heap
// number (see adoptOut): it is kept in the session and as a Map key.
const smallId = (value) => (value < 0 ? -1 : value >>> 0);
// Room for the (code, id) pairs of 2,048 events per drain; a larger batch
// brings its own array.
const DRAIN_CODES = 4096;

class Engine {
  /** @param {() => void} wake called when events wait to be drained */
  constructor(wake) {
    // The addon holds `wake` weakly (a strong native reference would keep
    // the server it closes over alive forever); this keeps it while the
    // engine lives.
    this.wake = wake;
    this.handle = native.create(wake);
    this.codes = new Uint32Array(DRAIN_CODES);
    // The header blocks request() has sent, by id (src/lib.rs:
    // SLOT_HEADERS), as writeHead's flat [name, value, ...] lists: Node
    // writes such a list out without storing each header in its map. Never
    // changed once made (writeHead only reads them).
    this.headerLists = [];
  }

  install(options) { return native.install(this.handle, options); }
  // How to answer a request: { status, flags, receiver, conn (-1: none),
  // headers (a flat list), body, framesAt (where the frames start in body),
  // protocol }.
  request(install, head, body, tooLarge, baseUrl) {
    const text = native.request(this.handle, install, head, body, tooLarge, baseUrl, planOut);
    const flags = planOut[1];
    const bodyAt = planOut[4];
    const protocol = planOut[5];
    const headersId = planOut[7];
    let headers;
    if (headersId >= 0 && !(flags & PLAN_NEW_HEADERS)) {
      headers = this.headerLists[headersId];
    } else {
      headers = bodyAt === 0 ? [] : text.slice(0, bodyAt).split('\n');
      if (headersId >= 0) this.headerLists[headersId] = headers;
    }
    return {
      status: planOut[0],
      flags,
      receiver: smallId(planOut[2]),
      conn: smallId(planOut[3]),
      headers,
      body: bodyAt === 0 ? text : text.slice(bodyAt),
      framesAt: planOut[6] - bodyAt,
      protocol: protocol < 0 ? undefined : PROTOCOLS[protocol],
    };
  }
  // Whether an upgrade proceeds: UPGRADE_SOCKJS or UPGRADE_RAW, else a
  // Buffer holding the whole HTTP refusal to write.
  upgrade(install, head, upgrade, connection, version, key) {
    return native.upgrade(this.handle, install, head, upgrade, connection, version, key);
  }
  // Adopt a plain TCP socket's descriptor: { id, addresses }, where
  // `addresses` ({ remoteAddress, remotePort, address }, as Node's socket
  // gives them) is null when the socket itself had better be asked.
  // `noDelaySet`: Node set TCP_NODELAY on the socket already.
  adoptWebsocket(install, raw, fd, key, head, noDelaySet) {
    const flags = (raw ? ADOPT_RAW : 0) | (noDelaySet ? ADOPT_NODELAY_SET : 0);
    const ips = native.adoptWebsocket(this.handle, install, flags, fd, key, head, adoptOut);
    const space = ips.indexOf(' ');
    const addresses = space === -1 ? null : {
      remoteAddress: ips.slice(0, space),
      remotePort: adoptOut[1],
      address: { address: ips.slice(space + 1), family: adoptOut[3] === 6 ? 'IPv6' : 'IPv4', port: adoptOut[2] },
    };
    return { id: adoptOut[0], addresses };
  }
  pipeWebsocket(install, raw, key, head) { return native.pipeWebsocket(this.handle, install, raw, key, head); }
  pipeFeed(conn, bytes) { return native.pipeFeed(this.handle, conn, bytes); }
  pipeEnd(conn) { return native.pipeEnd(this.handle, conn); }
  pipeBlocked(conn, blocked) { return native.pipeBlocked(this.handle, conn, blocked); }
  receiverAborted(receiver) { return native.receiverAborted(this.handle, receiver); }
  send(conn, message) { return native.send(this.handle, conn, message); }
  broadcast(message, conns) { return native.broadcast(this.handle, message, conns); }
  bufferedAmount(conn) { return native.bufferedAmount(this.handle, conn); }
  close(conn, code, reason) { return native.close(this.handle, conn, code, reason); }
  terminateAll(code, reason) { return native.terminateAll(this.handle, code, reason); }
  shutdown(code, reason, waitMs) { return native.shutdown(this.handle, code, reason, waitMs); }
  // Events since the last drain: [codes, count, strings, buffers], `count`
  // numbers of (code, id) pairs in `codes` (src/lib.rs: EventBatch). The
  // codes go into this engine's own array when they fit: it is overwritten
  // by the next drain, which comes from a later setImmediate, never from
  // inside the loop that reads this one.
  drain() {
    const [count, overflow, strings, buffers] = native.drain(this.handle, this.codes);
    return [overflow || this.codes, count, strings, buffers];
  }

  static chunkingTestSchedule() { return native.chunkingTestSchedule(); }
}

module.exports = { Engine, UPGRADE_RAW: native.UPGRADE_RAW };
