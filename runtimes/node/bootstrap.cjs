/**
 * Nimbus Node.js runtime interface client (RIC): process entry point.
 *
 * CommonJS on purpose: Node's ESM loader (module jobs, facades for every `node:` import) costs a
 * cold start more than all of this client's own code; it is only brought in when a handler is
 * an ES module. Started by the platform as
 *   /usr/bin/node --max-semi-space-size=<M/20> --max-old-space-size=<M*9/10> /var/runtime/node/bootstrap.cjs
 * (M = AWS_LAMBDA_FUNCTION_MEMORY_SIZE) with the working directory at LAMBDA_TASK_ROOT. Node sizes
 * its heap from host RAM when it cannot see its cgroup, so the heap flags are what make a
 * runaway function fail with a JS heap error instead of being OOM-killed.
 *
 * Init: patch console, install the process-level error hooks, install `globalThis.awslambda`,
 * load the handler from `_HANDLER`; on failure log "Uncaught Exception", POST `/init/error`
 * (Error-Type header = errorType) and exit(129). Then run the invoke loop (lib/runtime.cjs).
 */
'use strict';

const { toFormatted, toRapidResponse, UnhandledPromiseRejection } = require('./lib/errors.cjs');
const { loadHandler } = require('./lib/loader.cjs');
const { patchConsole } = require('./lib/logging.cjs');
const { RapidClient } = require('./lib/rapid.cjs');
const { onBeforeExit, Runtime } = require('./lib/runtime.cjs');
const { installAwsLambdaGlobal } = require('./lib/streaming.cjs');

patchConsole();

let exiting = false;

function fatal(message, error, exitCode, report) {
  if (exiting) return; // a second failure while we are already reporting one
  exiting = true;
  console.error(message, toFormatted(error));
  report(error, exitCode);
}

const client = new RapidClient(process.env.AWS_LAMBDA_RUNTIME_API || '127.0.0.1:9001');
const postInitError = (error, exitCode) =>
  client.postInitError(toRapidResponse(error), () => process.exit(exitCode));

// Before the first invoke these report init errors; Runtime re-targets them at each invoke.
const errorCallbacks = {
  uncaughtException: (error) => postInitError(error, 129),
  unhandledRejection: (error) => postInitError(error, 128),
};

process.on('uncaughtException', (error) => {
  fatal('Uncaught Exception', error, 129, (e) => errorCallbacks.uncaughtException(e));
});
process.on('unhandledRejection', (reason, promise) => {
  const error = new UnhandledPromiseRejection(reason?.toString(), promise);
  fatal('Unhandled Promise Rejection', error, 128, (e) => errorCallbacks.unhandledRejection(e));
});
process.on('beforeExit', onBeforeExit);

installAwsLambdaGlobal();

function start(loaded) {
  const onFatal = (error) => {
    // The Runtime API itself failed (connection refused/reset, bad /next answer): nothing can be
    // reported through it any more, so just log and let the platform reset the environment.
    if (exiting) return;
    exiting = true;
    console.error(`Unexpected Top Level Error: ${error}`);
    process.exit(129);
  };
  new Runtime(client, loaded, errorCallbacks, onFatal).start();
}

const appRoot = process.env.LAMBDA_TASK_ROOT || process.cwd();
loadHandler(appRoot, process.env._HANDLER || '').then(
  (loaded) => loaded && start(loaded),
  (error) => fatal('Uncaught Exception', error, 129, postInitError),
);
