/**
 * In-test fake of the Lambda Runtime API plus a helper that runs the Node RIC against it.
 *
 * `GET /next` long-polls a queue of events; every POST is recorded (path, headers, raw body,
 * trailers) so tests can assert on exactly what the RIC sent. Kept outside test/ because
 * `node --test <dir>` would run every module in that directory as a test file.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const NODE = '/usr/bin/node';
export const API = '/2018-06-01/runtime';
const BOOTSTRAP = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'bootstrap.cjs');

export class FakeRuntimeApi {
  constructor() {
    this.events = [];
    this.waitingNext = [];
    this.posts = [];
    this.postWaiters = [];
    this.server = http.createServer((req, res) => this.handle(req, res));
  }

  async listen() {
    await new Promise((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.address = `127.0.0.1:${this.server.address().port}`;
    return this;
  }

  handle(req, res) {
    if (req.method === 'GET' && req.url === `${API}/invocation/next`) {
      const next = this.events.shift();
      if (next) return this.sendEvent(res, next);
      this.waitingNext.push(res);
      // A killed RIC leaves its long poll behind; never hand an event to a dead connection.
      res.on('close', () => { this.waitingNext = this.waitingNext.filter((r) => r !== res); });
      return;
    }
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      this.posts.push({ path: req.url, headers: req.headers, body: Buffer.concat(chunks), trailers: req.trailers });
      res.writeHead(202, { 'Content-Type': 'application/json' }).end('{"status":"OK"}');
      this.postWaiters = this.postWaiters.filter((w) => !w());
    });
  }

  sendEvent(res, { body, headers }) {
    if (this.chunkedNext) { // no Content-Length: node:http falls back to chunked encoding
      res.writeHead(200, headers);
      res.write(body.slice(0, body.length >> 1));
      res.end(body.slice(body.length >> 1));
    } else {
      res.writeHead(200, { ...headers, 'Content-Length': Buffer.byteLength(body) }).end(body);
    }
    // Simulate a server that drops idle keep-alive connections (without "Connection: close").
    if (this.dropAfterNext) res.on('finish', () => res.socket?.destroy());
  }

  addEvent(event, { headers = {}, raw, deadlineIn = 10000 } = {}) {
    const id = randomUUID();
    const item = {
      body: raw ?? JSON.stringify(event),
      headers: {
        'Lambda-Runtime-Aws-Request-Id': id,
        'Lambda-Runtime-Deadline-Ms': String(Date.now() + deadlineIn),
        'Lambda-Runtime-Invoked-Function-Arn': 'arn:aws:lambda:us-east-1:123456789012:function:fn',
        'Lambda-Runtime-Trace-Id': 'Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1',
        'Content-Type': 'application/json',
        ...headers,
      },
    };
    const waiting = this.waitingNext.shift();
    if (waiting) this.sendEvent(waiting, item);
    else this.events.push(item);
    return id;
  }

  /** Resolves once no (dead) RIC connection is parked on /next, so events reach the new RIC. */
  async drained(timeoutMs = 2000) {
    const deadline = Date.now() + timeoutMs;
    while (this.waitingNext.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 2));
    this.waitingNext = [];
  }

  waitPosts(count, timeoutMs = 5000) {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (this.posts.length < count) return false;
        clearTimeout(timer);
        resolve(this.posts.slice());
        return true;
      };
      const timer = setTimeout(() => {
        this.postWaiters = this.postWaiters.filter((w) => w !== check);
        reject(new Error(`expected ${count} posts, got ${JSON.stringify(this.posts.map((p) => p.path))}`));
      }, timeoutMs);
      if (!check()) this.postWaiters.push(check);
    });
  }

  close() {
    for (const res of this.waitingNext) res.destroy();
    this.server.closeAllConnections?.();
    return new Promise((resolve) => this.server.close(resolve));
  }
}

/**
 * With NIMBUS_TEST_INHERITED_FD=1 every RIC gets its Runtime API connection already open as fd 3
 * (NIMBUS_RUNTIME_API_FD), as Nimbus starts it, instead of connecting itself.
 */
const INHERITED_FD = process.env.NIMBUS_TEST_INHERITED_FD === '1';

/** Writes `files` ({relative path: source}) to a fresh task root and spawns bootstrap.cjs. */
export class RicProcess {
  static async start(api, handler, files, extraEnv = {}) {
    if (!INHERITED_FD) return new RicProcess(api, handler, files, extraEnv);
    const [host, port] = api.address.split(':');
    const socket = await new Promise((resolve, reject) => {
      const s = net.connect({ host, port: Number(port), noDelay: true }, () => resolve(s));
      s.on('error', reject);
    });
    socket.pause();
    const proc = new RicProcess(api, handler, files, { NIMBUS_RUNTIME_API_FD: '3', ...extraEnv }, socket);
    socket.destroy(); // the child has its own copy
    return proc;
  }

  constructor(api, handler, files, extraEnv = {}, socket = undefined) {
    this.taskRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'nimbus-ric-node-'));
    for (const [rel, source] of Object.entries(files)) {
      const file = path.join(this.taskRoot, rel);
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, source);
    }
    this.stdout = '';
    this.stderr = '';
    this.child = spawn(NODE, ['--max-old-space-size=230', BOOTSTRAP], {
      cwd: this.taskRoot,
      env: {
        PATH: '/usr/bin:/bin',
        AWS_LAMBDA_RUNTIME_API: api.address,
        _HANDLER: handler,
        LAMBDA_TASK_ROOT: this.taskRoot,
        AWS_LAMBDA_FUNCTION_NAME: 'fn',
        AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
        AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '256',
        AWS_LAMBDA_LOG_GROUP_NAME: '/aws/lambda/fn',
        AWS_LAMBDA_LOG_STREAM_NAME: '2024/01/01/[$LATEST]0123456789abcdef0123456789abcdef',
        AWS_REGION: 'us-east-1',
        ...extraEnv,
      },
      stdio: socket ? ['ignore', 'pipe', 'pipe', socket] : ['ignore', 'pipe', 'pipe'],
    });
    this.child.stdout.on('data', (d) => { this.stdout += d; });
    this.child.stderr.on('data', (d) => { this.stderr += d; });
    this.exited = new Promise((resolve) => this.child.on('close', (code) => resolve(code)));
  }

  async stop() {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
    await this.exited;
    fs.rmSync(this.taskRoot, { recursive: true, force: true });
    return this.stdout;
  }
}
