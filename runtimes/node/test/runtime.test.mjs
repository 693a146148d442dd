/**
 * End-to-end tests of the Node RIC: bootstrap.cjs runs as a subprocess against FakeRuntimeApi.
 * Run: node --test runtimes/node/test/
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { API, FakeRuntimeApi, RicProcess } from '../test-support/fake-api.mjs';

const CJS_APP = `
let counter = 0;
exports.hello = async (event) => ({ hello: event.name });
exports.count = async () => ++counter;
exports.ctx = async (event, context) => ({
  functionName: context.functionName,
  functionVersion: context.functionVersion,
  invokedFunctionArn: context.invokedFunctionArn,
  memoryLimitInMB: context.memoryLimitInMB,
  awsRequestId: context.awsRequestId,
  logGroupName: context.logGroupName,
  logStreamName: context.logStreamName,
  identity: context.identity,
  clientContext: context.clientContext,
  remaining: context.getRemainingTimeInMillis(),
  waits: context.callbackWaitsForEmptyEventLoop,
  legacy: [typeof context.done, typeof context.succeed, typeof context.fail],
  trace: process.env._X_AMZN_TRACE_ID,
});
exports.fail = async () => { throw new TypeError('boom'); };
exports.throwString = async () => { throw 'just a string'; };
exports.syncThrow = () => { throw new Error('sync boom'); };
exports.logs = async () => { console.log('hello %s', 'log'); console.warn('careful'); console.error('multi\\nline'); return 1; };
exports.callback = (event, context, callback) => {
  const result = { viaCallback: true, timerFired: false };
  // callbackWaitsForEmptyEventLoop (default true): the result is sent after this timer ran.
  setTimeout(() => { result.timerFired = true; }, 50);
  callback(null, result);
};
exports.callbackNoWait = (event, context, callback) => {
  context.callbackWaitsForEmptyEventLoop = false;
  setTimeout(() => {}, 3000); // must not delay the response
  callback(null, 'fast');
};
exports.callbackError = (event, context, callback) => callback(new RangeError('cb failed'));
exports.legacySucceed = (event, context) => { context.succeed('legacy ok'); };
exports.sync = () => 'sync result is ignored';
exports.circular = async () => { const o = {}; o.self = o; return o; };
exports.nested = { deeper: { fn: async () => 'nested property' } };
exports.rejectLater = async () => { Promise.reject(new Error('nobody catches me')); await new Promise((r) => setTimeout(r, 1000)); };
exports.timerThrows = async () => { setTimeout(() => { throw new Error('timer boom'); }, 5); await new Promise((r) => setTimeout(r, 1000)); };
exports.notAFunction = 42;
`;

const STREAMING_APP = `
exports.stream = awslambda.streamifyResponse(async (event, responseStream, context) => {
  responseStream.setContentType('text/plain');
  responseStream.write('hello ');
  await new Promise((r) => setTimeout(r, 10));
  responseStream.write(Buffer.from('streamed '));
  responseStream.end(context.awsRequestId);
});
exports.http = awslambda.streamifyResponse(async (event, responseStream) => {
  const s = awslambda.HttpResponseStream.from(responseStream, { statusCode: 201, headers: { 'x-a': 'b' } });
  s.end('body');
});
exports.midFail = awslambda.streamifyResponse(async (event, responseStream) => {
  responseStream.write('partial');
  throw new Error('stream broke');
});
`;

let api;
const procs = [];
before(async () => { api = await new FakeRuntimeApi().listen(); });
after(async () => {
  await Promise.all(procs.map((p) => p.stop()));
  await api.close();
});

async function start(handler, files = { 'app.js': CJS_APP }, env) {
  await api.drained();
  api.posts = [];
  const proc = await RicProcess.start(api, handler, files, env);
  procs.push(proc);
  return proc;
}

async function invokeOnce(handler, files, event = {}, opts) {
  const proc = await start(handler, files);
  const id = api.addEvent(event, opts);
  const [post] = await api.waitPosts(1);
  await proc.stop();
  const json = /json/.test(post.headers['content-type']);
  return { id, post, body: json ? JSON.parse(post.body) : undefined, proc };
}

describe('buffered handlers', () => {
  test('hello response (CommonJS .js, async)', async () => {
    const { id, post, body } = await invokeOnce('app.hello', undefined, { name: 'nimbus' });
    assert.equal(post.path, `${API}/invocation/${id}/response`);
    assert.deepEqual(body, { hello: 'nimbus' });
  });

  test('context fields and remaining time', async () => {
    const { id, body } = await invokeOnce('app.ctx', undefined, {}, { headers: {
      'Lambda-Runtime-Cognito-Identity': '{"cognitoIdentityId":"id-1","cognitoIdentityPoolId":"pool"}',
      'Lambda-Runtime-Client-Context': '{"custom":{"k":"v"}}',
    } });
    assert.equal(body.functionName, 'fn');
    assert.equal(body.functionVersion, '$LATEST');
    assert.equal(body.memoryLimitInMB, '256');
    assert.equal(body.awsRequestId, id);
    assert.equal(body.invokedFunctionArn, 'arn:aws:lambda:us-east-1:123456789012:function:fn');
    assert.equal(body.logGroupName, '/aws/lambda/fn');
    assert.match(body.logStreamName, /^2024\/01\/01\//);
    assert.deepEqual(body.identity, { cognitoIdentityId: 'id-1', cognitoIdentityPoolId: 'pool' });
    assert.deepEqual(body.clientContext, { custom: { k: 'v' } });
    assert.ok(body.remaining > 0 && body.remaining <= 10000, String(body.remaining));
    assert.equal(body.waits, true);
    assert.deepEqual(body.legacy, ['function', 'function', 'function']);
    assert.match(body.trace, /^Root=1-5bef4de7/);
  });

  test('handler exception body uses trace, no Error-Type header', async () => {
    const { id, post, body, proc } = await invokeOnce('app.fail');
    assert.equal(post.path, `${API}/invocation/${id}/error`);
    assert.deepEqual(Object.keys(body), ['errorType', 'errorMessage', 'trace']);
    assert.equal(body.errorType, 'TypeError');
    assert.equal(body.errorMessage, 'boom');
    assert.equal(body.trace[0], 'TypeError: boom');
    assert.match(body.trace[1], /app\.js:\d+/);
    assert.equal(post.headers['lambda-runtime-function-error-type'], undefined);
    assert.match(post.headers['lambda-runtime-function-xray-error-cause'], /"type":"TypeError"/);
    assert.match(proc.stdout, new RegExp(`\\t${id}\\tERROR\\tInvoke Error \\t\\{"errorType":"TypeError","errorMessage":"boom"`));
  });

  test('non-Error throw and sync throw', async () => {
    let { body } = await invokeOnce('app.throwString');
    assert.deepEqual(body, { errorType: 'string', errorMessage: 'just a string', trace: [] });
    ({ body } = await invokeOnce('app.syncThrow'));
    assert.equal(body.errorType, 'Error');
    assert.equal(body.errorMessage, 'sync boom');
  });

  test('module state survives across invokes (warm reuse)', async () => {
    const proc = await start('app.count');
    api.addEvent({});
    api.addEvent({});
    const posts = await api.waitPosts(2);
    assert.deepEqual(posts.map((p) => JSON.parse(p.body)), [1, 2]);
    await proc.stop();
  });

  test('callback handler waits for the event loop to drain', async () => {
    const { body } = await invokeOnce('app.callback');
    assert.deepEqual(body, { viaCallback: true, timerFired: true });
  });

  test('callbackWaitsForEmptyEventLoop=false responds at once', async () => {
    const t0 = Date.now();
    const { body } = await invokeOnce('app.callbackNoWait');
    assert.equal(body, 'fast');
    assert.ok(Date.now() - t0 < 2500);
  });

  test('callback error, legacy context.succeed, sync handler without callback', async () => {
    let { body, post } = await invokeOnce('app.callbackError');
    assert.match(post.path, /\/error$/);
    assert.equal(body.errorType, 'RangeError');
    ({ body } = await invokeOnce('app.legacySucceed'));
    assert.equal(body, 'legacy ok');
    ({ body } = await invokeOnce('app.sync'));
    assert.equal(body, null); // event loop drained without callback → null, as on AWS
  });

  test('unserialisable result and empty event body', async () => {
    let { body } = await invokeOnce('app.circular');
    assert.equal(body.errorType, 'Runtime.JSONStringifyError');
    ({ body } = await invokeOnce('app.hello', undefined, undefined, { raw: '' }));
    assert.equal(body.errorType, 'SyntaxError');
  });

  test('logging lines carry timestamp, request id and level', async () => {
    const { id, proc } = await invokeOnce('app.logs');
    const ts = '\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z';
    assert.match(proc.stdout, new RegExp(`^${ts}\\t${id}\\tINFO\\thello log$`, 'm'));
    assert.match(proc.stdout, new RegExp(`^${ts}\\t${id}\\tWARN\\tcareful$`, 'm'));
    assert.match(proc.stdout, new RegExp(`^${ts}\\t${id}\\tERROR\\tmulti\\rline$`, 'm'));
  });

  test('JSON log format and log level filter', async () => {
    const proc = await start('app.logs', undefined, { AWS_LAMBDA_LOG_FORMAT: 'JSON', AWS_LAMBDA_LOG_LEVEL: 'WARN' });
    const id = api.addEvent({});
    await api.waitPosts(1);
    const records = (await proc.stop()).trim().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual(records.map((r) => [r.level, r.message, r.requestId]),
      [['WARN', 'careful', id], ['ERROR', 'multi\nline', id]]); // INFO filtered out
  });

  test('property path handler and nested folder', async () => {
    let { body } = await invokeOnce('app.nested.deeper.fn');
    assert.equal(body, 'nested property');
    ({ body } = await invokeOnce('sub/dir/mod.handler', { 'sub/dir/mod.js': 'exports.handler = async () => "nested folder";' }));
    assert.equal(body, 'nested folder');
  });

  test('reconnects when the server drops the idle connection; chunked and large events', async () => {
    const proc = await start('app.hello');
    api.dropAfterNext = api.chunkedNext = true;
    try {
      const big = 'y'.repeat(5 * 1024 * 1024);
      api.addEvent({ name: big });
      api.addEvent({ name: 'small' });
      const posts = await api.waitPosts(2);
      assert.equal(JSON.parse(posts[0].body).hello.length, big.length);
      assert.deepEqual(JSON.parse(posts[1].body), { hello: 'small' });
    } finally {
      api.dropAfterNext = api.chunkedNext = false;
      await proc.stop();
    }
  });

  test('uncaught exception during an invoke posts the error and exits 129', async () => {
    const proc = await start('app.timerThrows');
    const id = api.addEvent({});
    const [post] = await api.waitPosts(1);
    assert.equal(post.path, `${API}/invocation/${id}/error`);
    assert.equal(JSON.parse(post.body).errorMessage, 'timer boom');
    assert.equal(await proc.exited, 129);
  });

  test('unhandled rejection during an invoke posts the error and exits 128', async () => {
    const proc = await start('app.rejectLater');
    const id = api.addEvent({});
    const [post] = await api.waitPosts(1);
    assert.equal(post.path, `${API}/invocation/${id}/error`);
    assert.equal(JSON.parse(post.body).errorType, 'Runtime.UnhandledPromiseRejection');
    assert.equal(await proc.exited, 128);
  });
});

describe('module formats', () => {
  const cases = {
    '.cjs': { 'app.cjs': 'exports.handler = async () => "cjs";' },
    '.mjs with top-level await': { 'app.mjs': 'const v = await Promise.resolve("mjs"); export const handler = async () => v;' },
    '"type":"module" .js': { 'package.json': '{"type":"module"}', 'app.js': 'export async function handler() { return "esm-js"; }' },
    'extensionless file': { app: 'exports.handler = async () => "bare";' },
    'directory module': { 'app/index.js': 'exports.handler = async () => "dir";' },
  };
  const expected = { '.cjs': 'cjs', '.mjs with top-level await': 'mjs', '"type":"module" .js': 'esm-js', 'extensionless file': 'bare', 'directory module': 'dir' };
  for (const [name, files] of Object.entries(cases)) {
    test(name, async () => {
      const { body } = await invokeOnce('app.handler', files);
      assert.equal(body, expected[name]);
    });
  }
});

describe('init errors', () => {
  async function initError(handler, files, errorType, messagePart) {
    const proc = await start(handler, files);
    const [post] = await api.waitPosts(1);
    assert.equal(await proc.exited, 129);
    assert.equal(post.path, `${API}/init/error`);
    assert.equal(post.headers['lambda-runtime-function-error-type'], errorType);
    const body = JSON.parse(post.body);
    assert.equal(body.errorType, errorType);
    assert.ok(body.errorMessage.includes(messagePart), body.errorMessage);
    assert.ok(Array.isArray(body.trace));
    assert.match(proc.stdout, /\tundefined\tERROR\tUncaught Exception \t\{"errorType":/);
    await proc.stop();
    return body;
  }

  test('.. in handler', () => initError('../app.handler', {}, 'Runtime.MalformedHandlerName', 'is not a valid handler name'));
  test('no dot', () => initError('app', {}, 'Runtime.MalformedHandlerName', 'Bad handler'));
  test('missing module', () => initError('missing.handler', {}, 'Runtime.ImportModuleError', "Error: Cannot find module 'missing'"));
  test('syntax error', () => initError('app.handler', { 'app.js': 'exports.handler = async ( => 1;' }, 'Runtime.UserCodeSyntaxError', 'SyntaxError'));
  test('handler not exported', () => initError('app.nope', { 'app.js': CJS_APP }, 'Runtime.HandlerNotFound', 'app.nope is undefined or not exported'));
  test('export not a function', () => initError('app.notAFunction', { 'app.js': CJS_APP }, 'Runtime.HandlerNotFound', 'app.notAFunction is not a function'));
  test('exception during module init keeps its type', () => initError('app.handler', { 'app.mjs': 'throw new RangeError("bad config");' }, 'RangeError', 'bad config'));
});

describe('response streaming', () => {
  test('chunked body with streaming headers', async () => {
    const { id, post } = await invokeOnce('app.stream', { 'app.js': STREAMING_APP });
    assert.equal(post.path, `${API}/invocation/${id}/response`);
    assert.equal(post.headers['lambda-runtime-function-response-mode'], 'streaming');
    assert.equal(post.headers['transfer-encoding'], 'chunked');
    assert.equal(post.headers.trailer, 'Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body');
    assert.equal(post.headers['content-type'], 'text/plain');
    assert.equal(post.body.toString(), `hello streamed ${id}`);
    assert.deepEqual(post.trailers, {});
  });

  test('HttpResponseStream prelude', async () => {
    const { post } = await invokeOnce('app.http', { 'app.js': STREAMING_APP });
    assert.equal(post.headers['content-type'], 'application/vnd.awslambda.http-integration-response');
    const prelude = '{"statusCode":201,"headers":{"x-a":"b"}}';
    assert.equal(post.body.subarray(0, prelude.length).toString(), prelude);
    assert.deepEqual([...post.body.subarray(prelude.length, prelude.length + 8)], [0, 0, 0, 0, 0, 0, 0, 0]);
    assert.equal(post.body.subarray(prelude.length + 8).toString(), 'body');
  });

  test('mid-stream error is sent as trailers', async () => {
    const { post } = await invokeOnce('app.midFail', { 'app.js': STREAMING_APP });
    assert.equal(post.body.toString(), 'partial');
    assert.equal(post.trailers['lambda-runtime-function-error-type'], 'Error');
    const error = JSON.parse(Buffer.from(post.trailers['lambda-runtime-function-error-body'], 'base64'));
    assert.equal(error.errorMessage, 'stream broke');
    assert.ok(Array.isArray(error.trace));
  });
});
