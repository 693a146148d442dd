/**
 * console patching, mirroring the official Node RIC's LogPatch (lambda-compat.md §7).
 *
 * Text format (default): `<ISO time>\t<request id>\t<LEVEL>\t<util.format(args)>`, with '\n'
 * inside the message replaced by '\r' so one console call stays one line (= one log record).
 * Before the first invoke the request id prints as `undefined`, as on AWS.
 * AWS_LAMBDA_LOG_FORMAT=JSON switches to `{"timestamp","level","requestId","message",...}`;
 * AWS_LAMBDA_LOG_LEVEL filters levels; `_LAMBDA_TELEMETRY_LOG_FD` selects the framed fd sink
 * (4-byte type | 4-byte length | 8-byte µs timestamp | payload, big-endian).
 */
'use strict';

const fs = require('node:fs');
const util = require('node:util');
const { intoError, toFormatted } = require('./errors.cjs');

// Same global symbols as the official client, so libraries that peek at them keep working.
const REQUEST_ID = Symbol.for('aws.lambda.runtime.requestId');
const TENANT_ID = Symbol.for('aws.lambda.runtime.tenantId');

function setCurrentRequest(requestId, tenantId) {
  globalThis[REQUEST_ID] = requestId;
  globalThis[TENANT_ID] = tenantId;
}

const LEVELS = Object.freeze({
  TRACE: { name: 'TRACE', priority: 1, tlvMask: 0b00100 },
  DEBUG: { name: 'DEBUG', priority: 2, tlvMask: 0b01000 },
  INFO: { name: 'INFO', priority: 3, tlvMask: 0b01100 },
  WARN: { name: 'WARN', priority: 4, tlvMask: 0b10000 },
  ERROR: { name: 'ERROR', priority: 5, tlvMask: 0b10100 },
  FATAL: { name: 'FATAL', priority: 6, tlvMask: 0b11000 },
});

function jsonErrorReplacer(_key, value) {
  if (value instanceof Error) {
    return Object.assign({
      errorType: value?.constructor?.name ?? 'UnknownError',
      errorMessage: value.message,
      stackTrace: typeof value.stack === 'string' ? value.stack.split('\n') : value.stack,
    }, value);
  }
  return value;
}

function formatJson(time, level, message, params) {
  const result = { timestamp: time, level: level.name, requestId: globalThis[REQUEST_ID] };
  const tenantId = globalThis[TENANT_ID];
  if (tenantId !== undefined && tenantId !== null) result.tenantId = tenantId;
  if (params.length === 0) {
    result.message = message;
    try {
      return JSON.stringify(result, jsonErrorReplacer);
    } catch {
      result.message = util.format(message);
      return JSON.stringify(result);
    }
  }
  result.message = util.format(message, ...params);
  for (const param of [message, ...params]) {
    if (param instanceof Error) {
      result.errorType = param?.constructor?.name ?? 'UnknownError';
      result.errorMessage = param.message;
      result.stackTrace = typeof param.stack === 'string' ? param.stack.split('\n') : [];
      break;
    }
  }
  return JSON.stringify(result);
}

function formatText(time, level, message, params) {
  return `${time}\t${globalThis[REQUEST_ID]}\t${level.name}\t${util.format(message, ...params)}`;
}

function stdoutSink(format) {
  return (level, message, params) => {
    const line = format(new Date().toISOString(), level, message, params);
    process.stdout.write(line.replace(/\n/g, '\r') + '\n');
  };
}

function fdSink(fd, format, frameType) {
  const header = Buffer.alloc(16);
  return (level, message, params) => {
    const now = new Date();
    const payload = Buffer.from(format(now.toISOString(), level, message, params) + '\n', 'utf8');
    header.writeUInt32BE((frameType | level.tlvMask) >>> 0, 0);
    header.writeInt32BE(payload.length, 4);
    header.writeBigInt64BE(BigInt(now.valueOf()) * 1000n, 8);
    fs.writeSync(fd, header);
    fs.writeSync(fd, payload);
  };
}

let errorLogger = (message, err) => console.error(message, toFormatted(intoError(err)));

/** Log an error the way the official client does ("Invoke Error", "Uncaught Exception", ...). */
function logError(message, err) {
  errorLogger(message, err);
}

function patchConsole() {
  const json = process.env.AWS_LAMBDA_LOG_FORMAT?.toUpperCase() === 'JSON';
  const format = json ? formatJson : formatText;
  let sink;
  const fdEnv = process.env._LAMBDA_TELEMETRY_LOG_FD;
  if (fdEnv !== undefined && fdEnv !== null) {
    delete process.env._LAMBDA_TELEMETRY_LOG_FD; // not inherited by the user's child processes
    sink = fdSink(parseInt(fdEnv, 10), format, json ? 0xa55a0002 : 0xa55a0003);
  } else {
    sink = stdoutSink(format);
  }
  if (json) errorLogger = (_message, err) => console.error(intoError(err));

  const minimum = LEVELS[process.env.AWS_LAMBDA_LOG_LEVEL?.toUpperCase()] ?? LEVELS.TRACE;
  const method = (level) => (level.priority >= minimum.priority
    ? (message, ...params) => sink(level, message, params)
    : () => {});
  console.trace = method(LEVELS.TRACE);
  console.debug = method(LEVELS.DEBUG);
  console.info = method(LEVELS.INFO);
  console.log = console.info;
  console.warn = method(LEVELS.WARN);
  console.error = method(LEVELS.ERROR);
  console.fatal = (message, ...params) => sink(LEVELS.FATAL, message, params);
}

module.exports = { setCurrentRequest, logError, patchConsole };
