// Type definitions for the `sockjs` package: the sockjs-node 0.3 API (with
// the 0.4 additions attach/detach and the `transports` option) served by a
// native engine. Written by hand against index.js and lib/transport.js; the
// exported names match those of @types/sockjs so existing code compiles.

/// <reference types="node" />

import { EventEmitter } from 'events';
import type * as http from 'http';
import type * as https from 'https';
import type * as net from 'net';
import type * as stream from 'stream';

/** Severity passed to {@link ServerOptions.log}. */
export type LogSeverity = 'debug' | 'info' | 'error';

/** Transport names accepted by {@link ServerOptions.transports}. */
export type TransportName =
  | 'eventsource'
  | 'htmlfile'
  | 'jsonp-polling'
  | 'websocket'
  | 'websocket-raw'
  | 'xhr-polling'
  | 'xhr-streaming';

/**
 * Anything that emits Node's `'request'` and `'upgrade'` events: an
 * `http.Server`, an `https.Server`, or another emitter with the same events.
 * SockJS puts its handler in front of the listeners already registered and
 * passes on to them every request outside its prefix.
 */
export type HttpServerLike = http.Server | https.Server | NodeJS.EventEmitter;

export interface ServerOptions {
  /**
   * Path under which SockJS answers, e.g. `'/echo'`. Requests whose URL is
   * outside it are left to the server's other listeners.
   * @default ''
   */
  prefix?: string | undefined;

  /**
   * URL of the sockjs-client script loaded by the iframe-based transports
   * (the `/iframe.html` page).
   * @default 'https://cdn.jsdelivr.net/npm/sockjs-client@1/dist/sockjs.min.js'
   */
  sockjs_url?: string | undefined;

  /**
   * Bytes a streaming HTTP response (xhr-streaming, eventsource, htmlfile)
   * may carry before it is closed and the client opens a new one.
   * @default 131072 (128 KiB)
   */
  response_limit?: number | undefined;

  /**
   * Whether the WebSocket transports (`/websocket` and the raw `/websocket`
   * endpoint) are offered. When false, `/info` reports `websocket: false`.
   * @default true
   */
  websocket?: boolean | undefined;

  /**
   * The transports offered (sockjs 0.4 option). Transports not listed are
   * refused. When omitted, every transport is offered (subject to
   * {@link websocket}).
   */
  transports?: ReadonlyArray<TransportName> | undefined;

  /**
   * Sticky-session cookie handling. `true` sets a `JSESSIONID` cookie (dummy
   * value unless the request carries one) and reports `cookie_needed: true`
   * in `/info`; a function is called with `(req, res)` on the requests that
   * need the cookie, so it can set it itself.
   * @default false
   */
  jsessionid?: boolean | ((req: http.IncomingMessage, res: http.ServerResponse) => void) | undefined;

  /**
   * Receives the server's log lines. The default writes every line, of
   * every severity, with `console.log`.
   */
  log?: ((severity: LogSeverity, message: string) => void) | undefined;

  /**
   * Milliseconds of silence after which the server sends a heartbeat frame
   * (`h`) so that proxies keep the connection open.
   * @default 25000
   */
  heartbeat_delay?: number | undefined;

  /**
   * Milliseconds a session without a receiving connection (between two
   * polling requests) stays alive before it is closed.
   * @default 5000
   */
  disconnect_delay?: number | undefined;

  /**
   * When true, no CORS headers (`Access-Control-Allow-*`) are sent.
   * @default false
   */
  disable_cors?: boolean | undefined;

  /**
   * Base URL reported by `/info` for clients to connect to (sockjs 0.4
   * option): a fixed string, or a function called on each `/info` request.
   */
  base_url?: string | (() => string) | undefined;

  /**
   * Accepted for compatibility with sockjs-node, which passed it to
   * faye-websocket; ignored here (the WebSocket server is native).
   */
  faye_server_options?: unknown;

  /**
   * Largest message accepted, in bytes: the body of an `xhr_send` or
   * `jsonp_send` request and a single WebSocket message. Larger request
   * bodies are answered with 413; a larger WebSocket message closes the
   * connection with code 1009.
   * @default 67108864 (64 MiB)
   */
  max_message_size?: number | undefined;

  /**
   * Buffered bytes (written by the application, not yet taken by the
   * client's socket) past which `write()` returns false; `'drain'` follows
   * once the buffer is empty.
   * @default 1048576 (1 MiB)
   */
  high_water_mark?: number | undefined;

  /**
   * Buffered bytes past which a session is closed (code 1008, with a log
   * line) instead of growing the server's memory.
   * @default 16777216 (16 MiB)
   */
  max_buffered_bytes?: number | undefined;

  /**
   * Origins allowed to use the server: `'*:*'` for any, full origins such as
   * `'https://app.example.com'`, or `host:port` with `*` on either side.
   * Requests and WebSocket upgrades from other origins get 403; `/info`
   * reports the list.
   * @default ['*:*']
   */
  origins?: string[] | undefined;

  /**
   * Sessions one Server may hold at once; new sessions past it get 503.
   * `0` means no limit.
   * @default 0
   */
  max_sessions?: number | undefined;
}

/**
 * The function that {@link Listener.getHandler} and {@link Server.middleware}
 * return. Call it from an http server's `'request'` listener (or as
 * Connect/Express middleware) and from its `'upgrade'` listener. It returns
 * true when the URL is under the prefix and the request was taken;
 * otherwise false, after calling `next` if one was given.
 */
export interface RequestHandler {
  (req: http.IncomingMessage, res: http.ServerResponse, next?: () => void): boolean;
  (req: http.IncomingMessage, socket: stream.Duplex, head: Buffer): boolean;
}

/** A {@link RequestHandler} ready to use as Connect/Express middleware. */
export interface Middleware extends RequestHandler {
  /** The same handler, for the http server's `'upgrade'` event. */
  upgrade: RequestHandler;
}

/** One install of a {@link Server}: a prefix, its options and its handler. */
export interface Listener {
  getHandler(): RequestHandler;
}

/**
 * A SockJS server. It emits `'connection'` with a {@link Connection} for
 * each new session, on whichever of its installs the session was opened.
 */
export class Server extends EventEmitter {
  constructor(options?: ServerOptions);

  /** The options given to the constructor over the defaults. */
  options: ServerOptions;

  /**
   * Installs SockJS on an http server (sockjs-node 0.3): its handler runs
   * first for `'request'` and `'upgrade'`, and the listeners registered
   * before it run for the URLs outside the prefix. `options` are laid over
   * this server's options for this install only.
   * @returns true
   */
  installHandlers(server: HttpServerLike, options?: ServerOptions): boolean;

  /**
   * Write `message` to every open connection of this Server, or to the given
   * ones: quoted and framed once by the engine, written by each session's
   * transport. Returns how many connections took it. (Not in sockjs-node.)
   */
  broadcast(message: string, connections?: Iterable<Connection>): number;

  /**
   * Installs SockJS on an http server with this server's own options
   * (sockjs 0.4). Attaching twice to the same server does nothing.
   */
  attach(server: HttpServerLike): void;

  /**
   * Undoes {@link attach} (sockjs 0.4): removes the handler and gives the
   * earlier listeners their place back. When no server is attached any
   * more, the open sessions are closed.
   */
  detach(server: HttpServerLike): void;

  /**
   * A handler usable as Connect/Express middleware; its `upgrade` property
   * is the handler to call for the http server's `'upgrade'` event.
   * `options` are laid over this server's options.
   */
  middleware(options?: ServerOptions): Middleware;

  /** A new install, with `options` laid over this server's options. */
  listener(options?: ServerOptions): Listener;

  addListener(event: 'connection', listener: (conn: Connection) => void): this;
  addListener(event: string | symbol, listener: (...args: any[]) => void): this;
  on(event: 'connection', listener: (conn: Connection) => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
  once(event: 'connection', listener: (conn: Connection) => void): this;
  once(event: string | symbol, listener: (...args: any[]) => void): this;
  prependListener(event: 'connection', listener: (conn: Connection) => void): this;
  prependListener(event: string | symbol, listener: (...args: any[]) => void): this;
  prependOnceListener(event: 'connection', listener: (conn: Connection) => void): this;
  prependOnceListener(event: string | symbol, listener: (...args: any[]) => void): this;
  off(event: 'connection', listener: (conn: Connection) => void): this;
  off(event: string | symbol, listener: (...args: any[]) => void): this;
  removeListener(event: 'connection', listener: (conn: Connection) => void): this;
  removeListener(event: string | symbol, listener: (...args: any[]) => void): this;
  emit(event: 'connection', conn: Connection): boolean;
  emit(event: string | symbol, ...args: any[]): boolean;
}

/** `Connection.readyState` values. */
export type ReadyState = 0 | 1 | 2 | 3;

/**
 * One SockJS session, whatever transport carries it.
 *
 * At runtime this is a legacy `stream.Stream` (as in sockjs-node 0.3):
 * `'data'` events carry whole messages as strings, `pipe()` works in both
 * directions, and `write()` after close returns false instead of throwing.
 * It is typed as a `NodeJS.ReadWriteStream` for compatibility with
 * @types/sockjs, but the Readable-only methods that type declares
 * (`read`, `pause`, `resume`, `isPaused`, `setEncoding`, `unpipe`,
 * `unshift`, `wrap`, async iteration) do not exist on the object.
 */
export interface Connection extends NodeJS.ReadWriteStream {
  /** Random UUID of the session. */
  readonly id: string;

  /**
   * A whitelisted copy of the request headers of the request that carries
   * the session now (referer, x-client-ip, x-forwarded-for,
   * x-forwarded-host, x-forwarded-port, x-cluster-client-ip, via, x-real-ip,
   * x-forwarded-proto, x-ssl, dnt, host, user-agent, accept-language).
   * Cookies are never copied.
   */
  headers: Record<string, string>;

  /** Peer address of the carrying socket, when it is known. */
  remoteAddress?: string;
  /** Peer port of the carrying socket, when it is known. */
  remotePort?: number;
  /** Local address of the carrying socket, when it is known. */
  address?: net.AddressInfo;

  /** URL of the request that carries the session now. */
  url: string;
  /** `url` without its query string. */
  pathname: string;
  /** Prefix of the install that opened the session. */
  prefix: string;
  /**
   * Transport carrying the session now, e.g. `'websocket'`,
   * `'websocket-raw'`, `'xhr-streaming'`, `'xhr-polling'`.
   */
  protocol: string;

  /** 0 connecting, 1 open, 2 closing, 3 closed. */
  readonly readyState: ReadyState;

  /**
   * Bytes written and not yet taken by the client's socket. `write()`
   * returns false past the `high_water_mark` option; `'drain'` follows.
   */
  readonly bufferedAmount: number;
  /** True while the session is open. */
  readonly readable: boolean;
  /** True while the session is open. */
  readonly writable: boolean;

  /**
   * Sends one message. Returns false when the session is not open (the
   * message is dropped). A Buffer is sent as its UTF-8 text; callbacks and
   * encodings, accepted for stream compatibility, are ignored.
   */
  write(message: string): boolean;
  write(message: string | Uint8Array, cb?: (err?: Error | null) => void): boolean;
  write(message: string, encoding?: BufferEncoding, cb?: (err?: Error | null) => void): boolean;

  /**
   * Sends `message` if given, then closes the session with 1000 "Normal
   * closure". Typed as returning the connection so that a Connection can
   * be a `pipe()` destination; it actually returns null, as sockjs-node
   * does, so do not chain on it. Callbacks are ignored.
   */
  end(message?: string): this;
  end(cb?: () => void): this;
  end(message: string | Uint8Array, cb?: () => void): this;
  end(message: string, encoding?: BufferEncoding, cb?: () => void): this;

  /**
   * Closes the session with a close frame carrying `code` and `reason`
   * (default 1000, "Normal closure"). Returns false when the session was
   * not open. A numeric string is accepted, as @types/sockjs typed it.
   */
  close(code?: number | string, reason?: string): boolean;

  /** Closes the session and removes every listener from the connection. */
  destroy(): void;
  /** Same as {@link destroy}. */
  destroySoon(): void;

  /** `<SockJSConnection id>` */
  toString(): string;

  addListener(event: 'data', listener: (message: string) => void): this;
  addListener(event: 'end' | 'close' | 'drain', listener: () => void): this;
  addListener(event: string | symbol, listener: (...args: any[]) => void): this;
  on(event: 'data', listener: (message: string) => void): this;
  on(event: 'end' | 'close' | 'drain', listener: () => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
  once(event: 'data', listener: (message: string) => void): this;
  once(event: 'end' | 'close' | 'drain', listener: () => void): this;
  once(event: string | symbol, listener: (...args: any[]) => void): this;
  prependListener(event: 'data', listener: (message: string) => void): this;
  prependListener(event: 'end' | 'close' | 'drain', listener: () => void): this;
  prependListener(event: string | symbol, listener: (...args: any[]) => void): this;
  prependOnceListener(event: 'data', listener: (message: string) => void): this;
  prependOnceListener(event: 'end' | 'close' | 'drain', listener: () => void): this;
  prependOnceListener(event: string | symbol, listener: (...args: any[]) => void): this;
  off(event: 'data', listener: (message: string) => void): this;
  off(event: 'end' | 'close' | 'drain', listener: () => void): this;
  off(event: string | symbol, listener: (...args: any[]) => void): this;
  removeListener(event: 'data', listener: (message: string) => void): this;
  removeListener(event: 'end' | 'close', listener: () => void): this;
  removeListener(event: string | symbol, listener: (...args: any[]) => void): this;
}

/** Creates a {@link Server}; same as `new Server(options)`. */
export function createServer(options?: ServerOptions): Server;

/**
 * Creates a {@link Server} and, when `httpServer` is given, installs it
 * there with `options` (`createServer(options).installHandlers(httpServer)`).
 */
export function listen(httpServer: HttpServerLike | null | undefined, options?: ServerOptions): Server;
