/**
 * The invoke loop of the Node RIC, after the official client's Runtime/CallbackContext/
 * StreamingContext/InvokeContext.
 *
 * Buffered handlers: `handler(event, context, callback)`. A returned promise settles the invoke;
 * otherwise `callback(err, result)` or `context.succeed/fail/done` does; the first call wins.
 * `callbackWaitsForEmptyEventLoop` (default true) is implemented as on AWS: after callback(), the
 * response is posted from process 'beforeExit', i.e. once timers/sockets the handler left behind
 * are done. This works because the Runtime API socket is unref'd while no request is in flight.
 * If the loop drains with the invoke unsettled: async handler → Runtime.NodeJsExit error,
 * otherwise a `null` response (official behaviour).
 * Streaming handlers (`awslambda.streamifyResponse`): `handler(event, responseStream, context)`.
 */
'use strict';

const { JSONStringifyError, NodeJsExit, toRapidResponse, xrayCause } = require('./errors.cjs');
const { logError, setCurrentRequest } = require('./logging.cjs');
const { createResponseStream, failStream } = require('./streaming.cjs');

const env = process.env;
const FUNCTION_VERSION = env.AWS_LAMBDA_FUNCTION_VERSION;
const FUNCTION_NAME = env.AWS_LAMBDA_FUNCTION_NAME;
const MEMORY_LIMIT_IN_MB = env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE; // a string, as in the official client
const LOG_GROUP_NAME = env.AWS_LAMBDA_LOG_GROUP_NAME;
const LOG_STREAM_NAME = env.AWS_LAMBDA_LOG_STREAM_NAME;

// Single process-wide 'beforeExit' hook whose action changes per invoke (official design).
const NOOP = () => {};
let beforeExitListener = NOOP;
const onBeforeExit = () => beforeExitListener();
const resetBeforeExit = () => { beforeExitListener = NOOP; };
const setBeforeExit = (fn) => { beforeExitListener = fn; };

const isPromise = (v) => v !== null && (typeof v === 'object' || typeof v === 'function') && typeof v.then === 'function';

function parseJsonHeader(value, name) {
  if (value === undefined) return undefined;
  try {
    return JSON.parse(value);
  } catch (err) {
    throw new Error(`Cannot parse ${name} as json: ${err.toString()}`);
  }
}

/** Adds the environment and header data to the callback/streaming context (official field order). */
function buildContext(base, id, headers) {
  const deadline = Number(headers['lambda-runtime-deadline-ms']); // NaN when absent, as on AWS
  base.functionVersion = FUNCTION_VERSION;
  base.functionName = FUNCTION_NAME;
  base.memoryLimitInMB = MEMORY_LIMIT_IN_MB;
  base.logGroupName = LOG_GROUP_NAME;
  base.logStreamName = LOG_STREAM_NAME;
  base.clientContext = parseJsonHeader(headers['lambda-runtime-client-context'], 'ClientContext');
  base.identity = parseJsonHeader(headers['lambda-runtime-cognito-identity'], 'CognitoIdentity');
  base.invokedFunctionArn = headers['lambda-runtime-invoked-function-arn'];
  base.awsRequestId = id;
  base.tenantId = headers['lambda-runtime-aws-tenant-id'];
  base.getRemainingTimeInMillis = () => deadline - Date.now();
  return base;
}

class Runtime {
  /** errorCallbacks: {uncaughtException, unhandledRejection}, re-targeted at each invoke. */
  constructor(client, loaded, errorCallbacks, onFatal) {
    this.client = client;
    this.handler = loaded.handler;
    this.isAsync = loaded.isAsync;
    this.streaming = loaded.streaming;
    this.highWaterMark = loaded.highWaterMark;
    this.errorCallbacks = errorCallbacks;
    this.onFatal = onFatal; // Runtime API unusable: log and exit
    if (this.streaming) client.prepareStreaming(); // pay for node:http during init, not invoke 1
    this.scheduleNext = () => this.client.next(this.onNext);
    this.dispatch = (invocation) => {
      if (this.streaming) this.invokeStreaming(invocation);
      else this.invokeBuffered(invocation);
    };
    // nextTick: user code then runs on a short stack (clean error traces), not inside our
    // socket's 'data' event handler.
    this.onNext = (err, invocation) => (err ? this.onFatal(err) : process.nextTick(this.dispatch, invocation));
  }

  start() {
    this.scheduleNext();
  }

  beginInvoke(id, headers) {
    setCurrentRequest(id, headers['lambda-runtime-aws-tenant-id']);
    const trace = headers['lambda-runtime-trace-id'];
    if (trace) env._X_AMZN_TRACE_ID = trace;
    else delete env._X_AMZN_TRACE_ID;
    this.errorCallbacks.uncaughtException = (error) => this.postFatalInvokeError(id, error, 129);
    this.errorCallbacks.unhandledRejection = (error) => this.postFatalInvokeError(id, error, 128);
  }

  postFatalInvokeError(id, error, exitCode) {
    const body = toRapidResponse(error);
    const xray = xrayCause(error);
    const extra = xray ? `Lambda-Runtime-Function-XRay-Error-Cause: ${xray}\r\n` : '';
    this.client.postFatal(`/invocation/${encodeURIComponent(id)}/error`, body, extra, () => process.exit(exitCode));
  }

  /** After a POST: a transport failure is fatal; a non-2xx answer is logged and the loop goes on. */
  afterPost(err, res) {
    if (err) return this.onFatal(err);
    if (res.status < 200 || res.status > 299) {
      console.error(`Runtime API rejected the result: HTTP ${res.status} ${res.body.toString().slice(0, 512)}`);
    }
    this.scheduleNext();
  }

  postResult(id, result) {
    let body;
    try {
      body = JSON.stringify(result === undefined ? null : result);
    } catch {
      return this.postError(id, new JSONStringifyError('Unable to stringify response body'));
    }
    this.client.postResponse(id, body, (err, res) => this.afterPost(err, res));
  }

  postError(id, error) {
    logError('Invoke Error', error);
    this.client.postError(id, toRapidResponse(error), xrayCause(error), (err, res) => this.afterPost(err, res));
  }

  invokeBuffered({ id, headers, body }) {
    this.beginInvoke(id, headers);
    let waitForEmptyEventLoop = true;
    let finished = false; // only the first callback/succeed/fail/done call counts
    let completed = false; // a result was posted (or the beforeExit fallback fired)

    const complete = (result) => {
      if (completed) {
        console.error('Invocation has already been reported as done. Cannot call complete more than once per invocation.');
        return;
      }
      completed = true;
      this.postResult(id, result);
    };
    const done = (err, result) => {
      resetBeforeExit();
      if (err !== undefined && err !== null) this.postError(id, err);
      else complete(result);
    };
    const callback = (err, result) => {
      resetBeforeExit();
      if (err !== undefined && err !== null) this.postError(id, err);
      else if (!waitForEmptyEventLoop) complete(result);
      else setBeforeExit(() => setImmediate(() => complete(result)));
    };
    const once = (fn) => (a, b) => {
      if (!finished) {
        finished = true;
        fn(a, b);
      }
    };
    const context = {
      get callbackWaitsForEmptyEventLoop() { return waitForEmptyEventLoop; },
      set callbackWaitsForEmptyEventLoop(value) { waitForEmptyEventLoop = value; },
      succeed: once((result) => done(null, result)),
      fail: once((err) => done(err === undefined || err === null ? 'handled' : err, null)),
      done: once(done),
    };
    const onceCallback = once(callback);

    // Event loop drained with the invoke still open.
    setBeforeExit(() => {
      completed = finished = true;
      if (this.isAsync) this.postError(id, new NodeJsExit());
      else this.postResult(id, null);
    });

    try {
      buildContext(context, id, headers);
      const result = this.handler(JSON.parse(body.toString()), context, onceCallback);
      if (isPromise(result)) result.then(context.succeed, context.fail);
    } catch (err) {
      onceCallback(err);
    }
  }

  async invokeStreaming({ id, headers, body }) {
    this.beginInvoke(id, headers);
    let waitForEmptyEventLoop = true;
    const { req, responseDone } = this.client.openResponseStream(id, this.highWaterMark);
    const stream = createResponseStream(req, { highWaterMark: this.highWaterMark });
    setBeforeExit(() => this.scheduleNext()); // handler never settled: move on, as officially

    try {
      const context = buildContext({
        get callbackWaitsForEmptyEventLoop() { return waitForEmptyEventLoop; },
        set callbackWaitsForEmptyEventLoop(value) { waitForEmptyEventLoop = value; },
      }, id, headers);
      const result = this.handler(JSON.parse(body.toString()), stream, context);
      if (!isPromise(result)) throw new Error('Streaming does not support non-async handlers.');
      if ((await result) !== undefined) console.warn('Streaming handlers ignore return values.');
      const answer = await responseDone;
      if (answer.status < 200 || answer.status > 299) {
        console.error(`Runtime API rejected the streamed result: HTTP ${answer.status} ${answer.body.toString().slice(0, 512)}`);
      }
      if (!stream.writableEnded) throw new Error('Response stream is not finished.');
    } catch (err) {
      logError('Invoke Error', err);
      await failStream(stream, err);
      await responseDone.catch((e) => console.error('Streaming response failed:', e.message));
    }

    resetBeforeExit();
    if (!waitForEmptyEventLoop) this.scheduleNext();
    else setBeforeExit(() => setImmediate(() => this.scheduleNext()));
  }
}

module.exports = { onBeforeExit, Runtime };
