/**
 * Runtime error classes and error-body formatting, mirroring aws-lambda-nodejs-runtime-interface-client.
 *
 * Body posted to `/invocation/{id}/error` and `/init/error` (lambda-compat.md §1.3):
 * `{"errorType", "errorMessage", "trace": [stack lines]}` — note `trace`, not `stackTrace`.
 * Non-Error values (`throw "x"`, `callback({..})`) become `{errorType: typeof value,
 * errorMessage: String(value), trace: []}`, exactly like the official client.
 */
'use strict';

const util = require('node:util');

function runtimeError(name, makeMessage = (m) => m) {
  const cls = class extends Error {
    constructor(arg) {
      super(makeMessage(arg));
    }
  };
  // The official client sets the name on the prototype, so `err.name` is `Runtime.<X>` while
  // the properties stay non-enumerable (JSON logs look the same).
  Object.defineProperty(cls, 'name', { value: name });
  cls.prototype.name = `Runtime.${name}`;
  return cls;
}

const ImportModuleError = runtimeError('ImportModuleError', (e) => String(e));
const HandlerNotFound = runtimeError('HandlerNotFound');
const MalformedHandlerName = runtimeError('MalformedHandlerName');
const MalformedStreamingHandler = runtimeError('MalformedStreamingHandler');
const InvalidStreamingOperation = runtimeError('InvalidStreamingOperation');
const JSONStringifyError = runtimeError('JSONStringifyError');
const NodeJsExit = runtimeError('NodeJsExit', () =>
  'The Lambda runtime client detected an unexpected Node.js exit code. This is most commonly caused by a Promise that was never settled. For more information, see https://nodejs.org/docs/latest/api/process.html#exit-codes');

class UserCodeSyntaxError extends Error {
  constructor(original) {
    super(String(original));
    this.stack = original?.stack; // keep the location of the syntax error
  }
}
UserCodeSyntaxError.prototype.name = 'Runtime.UserCodeSyntaxError';

class UnhandledPromiseRejection extends Error {
  constructor(reason, promise) {
    super(reason);
    this.reason = reason;
    this.promise = promise;
  }
}
UnhandledPromiseRejection.prototype.name = 'Runtime.UnhandledPromiseRejection';

function isErrorLike(obj) {
  return Boolean(obj && typeof obj.name === 'string' && typeof obj.message === 'string' &&
    typeof obj.stack === 'string' && obj.name && obj.message && obj.stack);
}

/** The JSON body the Runtime API receives for an error. */
function toRapidResponse(error) {
  try {
    if (util.types.isNativeError(error) || error instanceof Error || isErrorLike(error)) {
      return {
        errorType: error.name,
        errorMessage: error.message,
        trace: typeof error.stack === 'string' ? error.stack.split('\n') : [],
      };
    }
    return { errorType: typeof error, errorMessage: error.toString(), trace: [] };
  } catch {
    return {
      errorType: 'handled',
      errorMessage: 'callback called with Error argument, but there was a problem while retrieving one or more of its message, name, and stack',
      trace: [],
    };
  }
}

function intoError(err) {
  return err instanceof Error ? err : new Error(err);
}

/** Error name, message, code and stack are non-enumerable; expose them for JSON logs. */
function withEnumerableProperties(_key, value) {
  if (value instanceof Error) {
    const ret = Object.assign({ errorType: value.name, errorMessage: value.message, code: value.code }, value);
    if (typeof value.stack === 'string') ret.stack = value.stack.split('\n');
    return ret;
  }
  return value;
}

/** Text-log rendering of an error; always starts with a tab, as in the official client. */
function toFormatted(error) {
  try {
    return '\t' + JSON.stringify(error, withEnumerableProperties);
  } catch {
    return '\t' + JSON.stringify(toRapidResponse(error));
  }
}

const FRAME = /^\s*at (?:(.*?) \()?(.*?):(\d+):\d+\)?$/;

/** Value of Lambda-Runtime-Function-XRay-Error-Cause (best-effort, ASCII-only header value). */
function xrayCause(error) {
  try {
    const body = toRapidResponse(error);
    const stack = [];
    const paths = new Set();
    for (const line of body.trace.slice(1)) {
      const m = FRAME.exec(line);
      if (!m) continue;
      stack.push({ path: m[2], line: Number(m[3]), label: m[1] || 'anonymous' });
      paths.add(m[2]);
    }
    const cause = {
      working_directory: process.cwd(),
      exceptions: [{ type: body.errorType, message: body.errorMessage, stack }],
      paths: [...paths],
    };
    const json = JSON.stringify(cause).replace(/[\u007f-\uffff]/g,
      (c) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0'));
    return json.length < 1024 * 1024 ? json : undefined;
  } catch {
    return undefined;
  }
}

module.exports = { ImportModuleError, HandlerNotFound, MalformedHandlerName, MalformedStreamingHandler, InvalidStreamingOperation, JSONStringifyError, NodeJsExit, UserCodeSyntaxError, UnhandledPromiseRejection, toRapidResponse, intoError, toFormatted, xrayCause };
