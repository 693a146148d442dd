/**
 * Runtime API HTTP client (the RIC side of `/2018-06-01/runtime/...`).
 *
 * `/next`, `/response`, `/error` and `/init/error` go through a minimal HTTP/1.1 client on one
 * kept-alive net.Socket: in a micro-benchmark on the target host node:http cost ~2x the CPU per
 * next+response cycle (~200 us vs ~90 us), and warm-invoke overhead is a platform target.
 * (The official client uses a native C++ client for the same reason.) Streamed responses use
 * node:http with a keep-alive Agent ({keepAlive: true, maxSockets: 1}) on a second connection,
 * as the official client does, because they need chunked encoding, trailers and backpressure.
 * node:http is only loaded when the handler streams (it costs a few ms of cold start).
 *
 * The socket is unref'd whenever no request is in flight, so the event loop can drain during an
 * invoke: that is what makes `callbackWaitsForEmptyEventLoop` (process 'beforeExit') work.
 *
 * Nimbus also hands the runtime a connection to the Runtime API that is already open, as fd
 * NIMBUS_RUNTIME_API_FD. Over it, requests are plain blocking reads and writes (FdConnection),
 * as the official client's native `next()` blocks: node:net and node:stream then never load at
 * cold start, which saves ~12 ms of it (their builtin code cache does not apply once the heap
 * flags are set). Without that fd (any other platform, or a lost connection) the net.Socket
 * client is used. Either way AWS_LAMBDA_RUNTIME_API names the endpoint.
 */
'use strict';

const fs = require('node:fs');

let net; // node:net, loaded on first use


const API = '/2018-06-01/runtime';
const USER_AGENT = `nimbus-ric-node/${process.versions.node}`;
const HEADER_END = Buffer.from('\r\n\r\n');

class RuntimeApiError extends Error {}

function splitAddress(address) {
  const i = address.lastIndexOf(':');
  const port = Number(address.slice(i + 1));
  if (i < 0 || !Number.isInteger(port)) {
    throw new RuntimeApiError(`AWS_LAMBDA_RUNTIME_API must be host:port, got '${address}'`);
  }
  return [address.slice(0, i).replace(/^\[|\]$/g, '') || '127.0.0.1', port];
}

/** One HTTP/1.1 connection carrying one request at a time. cb(err, {status, headers, body}). */
class Connection {
  /** `fd`: an open connection to adopt instead of connecting (once). */
  constructor(host, port, fd = null) {
    this.host = host;
    this.port = port;
    this.fd = fd;
    this.socket = null;
    this.buf = Buffer.alloc(0); // bytes received but not yet parsed
    this.cb = null;
  }

  request(data, cb, retried = false) {
    const reused = this.socket !== null;
    if (!reused) this._connect();
    this.cb = cb;
    this.data = data; // kept for the single resend after a dropped keep-alive connection
    this.reused = reused;
    this.retried = retried;
    this.gotBytes = false;
    this.head = null;
    this.parts = null;
    this.socket.ref();
    this.socket.write(data);
  }

  close() {
    if (this.socket) this.socket.destroy();
    this.socket = null;
  }

  _connect() {
    net ??= require('node:net');
    let socket;
    if (this.fd !== null) {
      socket = new net.Socket({ fd: this.fd, readable: true, writable: true });
      socket.setNoDelay(true);
      this.fd = null;
    } else {
      socket = net.connect({ host: this.host, port: this.port, noDelay: true });
    }
    // Listeners check identity: a stale socket's late events must not touch a newer one.
    socket.on('data', (d) => { if (this.socket === socket) this._onData(d); });
    socket.on('error', (e) => { if (this.socket === socket) this._onClose(e); });
    socket.on('close', () => { if (this.socket === socket) this._onClose(null); });
    this.socket = socket;
    this.buf = Buffer.alloc(0);
  }

  _finish(err, res) {
    const cb = this.cb;
    this.cb = this.data = this.parts = this.head = null;
    if (this.socket) this.socket.unref();
    if (cb) cb(err, res);
  }

  _onClose(err) {
    this.socket?.destroy();
    this.socket = null;
    if (!this.cb) return;
    if (this.head && this.head.length === -1) { // close-delimited body is complete now
      this._finish(null, { ...this.head, body: Buffer.concat(this.parts) });
    } else if (this.reused && !this.gotBytes && !this.retried) {
      // Kept-alive connection dropped while idle: safe to send the request again once.
      this.request(this.data, this.cb, true);
    } else {
      this._finish(err || new RuntimeApiError('Runtime API closed the connection'));
    }
  }

  _onData(chunk) {
    this.gotBytes = true;
    if (!this.cb) return; // nothing outstanding: ignore stray bytes
    try {
      if (this.head) { // collecting a body of known framing
        this.parts.push(chunk);
        this.have += chunk.length;
      } else {
        this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
        if (!this._parseHead()) return;
      }
      this._tryComplete();
    } catch (err) {
      this.close();
      this._finish(err);
    }
  }

  _parseHead() {
    for (;;) {
      const end = this.buf.indexOf(HEADER_END);
      if (end < 0) return false;
      const lines = this.buf.toString('latin1', 0, end).split('\r\n');
      const rest = this.buf.subarray(end + 4);
      const status = Number(lines[0].slice(9, 12));
      if (!lines[0].startsWith('HTTP/') || !status) throw new RuntimeApiError(`bad status line '${lines[0]}'`);
      this.buf = rest;
      if (status >= 100 && status < 200) continue; // interim response; the real one follows
      const headers = {};
      for (let i = 1; i < lines.length; i++) {
        const c = lines[i].indexOf(':');
        if (c > 0) headers[lines[i].slice(0, c).trim().toLowerCase()] = lines[i].slice(c + 1).trim();
      }
      let length = -1; // -1: until close; -2: chunked
      if (/chunked/i.test(headers['transfer-encoding'] ?? '')) length = -2;
      else if (headers['content-length'] !== undefined) length = Number(headers['content-length']);
      else if (status === 204 || status === 304) length = 0;
      const close = /close/i.test(headers.connection ?? '') || lines[0].startsWith('HTTP/1.0');
      this.head = { status, headers, length, close };
      this.parts = [rest];
      this.have = rest.length;
      this.buf = Buffer.alloc(0);
      return true;
    }
  }

  _tryComplete() {
    const { length } = this.head;
    let body;
    if (length >= 0) {
      if (this.have < length) return;
      const all = this.parts.length === 1 ? this.parts[0] : Buffer.concat(this.parts);
      body = all.subarray(0, length);
      this.buf = all.subarray(length);
    } else if (length === -2) {
      // A complete chunked message ends with CRLF CRLF; only then is decoding worth the copy.
      if (!endsWithEmptyLine(this.parts)) return;
      const all = Buffer.concat(this.parts);
      this.parts = [all];
      const decoded = decodeChunked(all);
      if (!decoded) return;
      [body, this.buf] = decoded;
    } else {
      return; // read until close
    }
    const { status, headers, close } = this.head;
    if (close) this.close();
    this._finish(null, { status, headers, body });
  }
}

/**
 * The same protocol over an inherited, already connected socket fd, with blocking I/O. The
 * answer is delivered on the next tick, so that a chain of invocations never nests on the
 * stack. A non-blocking fd (EAGAIN) is handed to a Connection that adopts it and waits for the
 * answer asynchronously; a failed one is replaced by a new Connection, and a request that got
 * no answer yet is sent again (as after a dropped keep-alive connection).
 */
class FdConnection extends Connection {
  constructor(fd, host, port) {
    super(host, port, fd);
    this.fallback = null;
    this.chunk = Buffer.allocUnsafe(64 * 1024);
  }

  request(data, cb) {
    if (this.fallback) return this.fallback.request(data, cb);
    let result = null;
    this.cb = (err, res) => { result = [err, res]; };
    this.gotBytes = false;
    this.head = null;
    this.parts = null;
    let written = false;
    try {
      const bytes = Buffer.from(data, 'latin1');
      for (let off = 0; off < bytes.length;) off += fs.writeSync(this.fd, bytes, off);
      written = true;
      while (!result) {
        const n = fs.readSync(this.fd, this.chunk, 0, this.chunk.length, null);
        if (n === 0) throw new RuntimeApiError('Runtime API closed the connection');
        this._onData(Buffer.from(this.chunk.subarray(0, n)));
      }
    } catch (err) {
      if (!result) return this._handOver(err, written, data, cb);
    }
    process.nextTick(cb, result[0], result[1]);
  }

  _handOver(err, written, data, cb) {
    if (err.code === 'EAGAIN' && written) {
      // Non-blocking fd: let an adopting Connection wait for this answer.
      const fallback = new Connection(this.host, this.port, this.fd);
      this.fd = null;
      this.fallback = fallback;
      fallback._connect();
      const { gotBytes, head, parts, have, buf } = this;
      Object.assign(fallback, { cb, data, reused: true, retried: false, gotBytes, head, parts, have, buf });
      fallback.socket.ref();
      return;
    }
    const answered = this.gotBytes;
    this.cb = this.parts = this.head = null;
    this.close();
    this.fallback = new Connection(this.host, this.port);
    if (answered) {
      process.nextTick(cb, err);
    } else {
      this.fallback.request(data, cb);
    }
  }

  close() {
    if (this.fallback) return this.fallback.close();
    if (this.fd !== null) {
      try { fs.closeSync(this.fd); } catch { /* already closed */ }
      this.fd = null;
    }
  }
}

/** The connection the platform opened for this runtime, if it did (see the file comment). */
function inheritedConnection(host, port) {
  const fd = Number(process.env.NIMBUS_RUNTIME_API_FD);
  // Not for the function's code or its child processes to see.
  delete process.env.NIMBUS_RUNTIME_API_FD;
  if (!Number.isInteger(fd) || fd < 0) return null;
  try {
    if (!fs.fstatSync(fd).isSocket()) return null;
  } catch {
    return null;
  }
  return new FdConnection(fd, host, port);
}

function endsWithEmptyLine(parts) {
  let tail = Buffer.alloc(0);
  for (let i = parts.length - 1; i >= 0 && tail.length < 4; i--) tail = Buffer.concat([parts[i], tail]);
  return tail.length >= 4 && tail.readUInt32BE(tail.length - 4) === 0x0d0a0d0a;
}

/** [body, rest] once a complete chunked body (incl. trailer section) is in buf, else null. */
function decodeChunked(buf) {
  const out = [];
  let pos = 0;
  for (;;) {
    const eol = buf.indexOf('\r\n', pos);
    if (eol < 0) return null;
    const size = parseInt(buf.toString('latin1', pos, eol).split(';')[0].trim() || '0', 16);
    pos = eol + 2;
    if (size === 0) {
      for (;;) { // trailer section ends with an empty line
        const end = buf.indexOf('\r\n', pos);
        if (end < 0) return null;
        const empty = end === pos;
        pos = end + 2;
        if (empty) return [Buffer.concat(out), buf.subarray(pos)];
      }
    }
    if (buf.length < pos + size + 2) return null;
    out.push(buf.subarray(pos, pos + size));
    pos += size + 2;
  }
}

class RapidClient {
  constructor(address) {
    [this.host, this.port] = splitAddress(address);
    this.commonHeaders = `Host: ${address}\r\nUser-Agent: ${USER_AGENT}\r\n`;
    this.nextRequest = `GET ${API}/invocation/next HTTP/1.1\r\n${this.commonHeaders}\r\n`;
    this.conn = inheritedConnection(this.host, this.port) ?? new Connection(this.host, this.port);
    this.http = null;
    this.agent = null;
  }

  /** Load node:http and create the keep-alive Agent (done at init for streaming handlers). */
  prepareStreaming() {
    if (this.http) return;
    this.http = require('node:http');
    this.agent = new this.http.Agent({ keepAlive: true, maxSockets: 1 });
  }

  /** cb(err, {id, headers, body: Buffer}) for the next event (long poll). */
  next(cb) {
    this.conn.request(this.nextRequest, (err, res) => {
      if (err) return cb(err);
      if (res.status !== 200) return cb(new RuntimeApiError(`/next answered ${res.status}: ${res.body.toString().slice(0, 512)}`));
      const id = res.headers['lambda-runtime-aws-request-id'];
      if (!id) return cb(new RuntimeApiError('invocation id is missing or invalid'));
      cb(null, { id, headers: res.headers, body: res.body });
    });
  }

  postResponse(id, body, cb) {
    this._post(this.conn, `/invocation/${encodeURIComponent(id)}/response`, body, '', cb);
  }

  postError(id, errorBody, xray, cb) {
    const extra = xray ? `Lambda-Runtime-Function-XRay-Error-Cause: ${xray}\r\n` : '';
    this._post(this.conn, `/invocation/${encodeURIComponent(id)}/error`, JSON.stringify(errorBody), extra, cb);
  }

  /**
   * Fatal-path posts (init error, uncaught exception) use their own short-lived connection:
   * they can happen while `/next` is parked on the main one.
   */
  postFatal(path, errorBody, extraHeaders, cb) {
    const conn = new Connection(this.host, this.port);
    this._post(conn, path, JSON.stringify(errorBody), extraHeaders, (err, res) => {
      conn.close();
      cb(err, res);
    });
  }

  postInitError(errorBody, cb) {
    const type = String(errorBody.errorType).replace(/[^\x20-\x7e]/g, '?');
    this.postFatal(`/init/error`, errorBody, `Lambda-Runtime-Function-Error-Type: ${type}\r\n`, cb);
  }

  _post(conn, path, body, extraHeaders, cb) {
    const head = `POST ${API}${path} HTTP/1.1\r\n${this.commonHeaders}Content-Type: application/json\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n${extraHeaders}\r\n`;
    conn.request(head + body, cb);
  }

  /** Streaming `/response`: returns the ClientRequest and a promise of the Runtime API's answer. */
  openResponseStream(id, highWaterMark) {
    this.prepareStreaming();
    let agent = this.agent;
    if (highWaterMark) {
      // streamifyResponse(handler, {highWaterMark}) sizes the socket's buffer, as in the official client.
      agent = new this.http.Agent({ keepAlive: false });
      net ??= require('node:net');
      agent.createConnection = (opts, onConnect) => net.createConnection({ ...opts, highWaterMark }, onConnect);
    }
    let resolve, reject;
    const responseDone = new Promise((res, rej) => { resolve = res; reject = rej; });
    responseDone.catch(() => {}); // observed by the caller; never an unhandled rejection
    const req = this.http.request({
      host: this.host,
      port: this.port,
      method: 'POST',
      path: `${API}/invocation/${encodeURIComponent(id)}/response`,
      agent,
      headers: {
        'User-Agent': USER_AGENT,
        'Lambda-Runtime-Function-Response-Mode': 'streaming',
        'Transfer-Encoding': 'chunked',
        Trailer: 'Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body',
        'Content-Type': 'application/octet-stream',
      },
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks) }));
      res.on('aborted', () => reject(new RuntimeApiError('streaming response aborted')));
    });
    req.on('error', reject);
    return { req, responseDone };
  }
}

module.exports = { RuntimeApiError, splitAddress, RapidClient };
