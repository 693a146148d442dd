/**
 * Response streaming: the `awslambda` global (`streamifyResponse`, `HttpResponseStream`) and the
 * `responseStream` handed to streaming handlers (lambda-compat.md §1.4).
 *
 * Wire format: POST `/response` with `Lambda-Runtime-Function-Response-Mode: streaming`,
 * `Transfer-Encoding: chunked` and `Trailer: Lambda-Runtime-Function-Error-Type,
 * Lambda-Runtime-Function-Error-Body`. A failure mid-stream ends the body with those trailers
 * (Error-Body = base64 of the error JSON). HttpResponseStream.from() switches the content type to
 * `application/vnd.awslambda.http-integration-response` and prefixes the body with a JSON prelude
 * `{statusCode, headers, cookies}` followed by 8 NUL bytes.
 */
'use strict';

const { InvalidStreamingOperation, toRapidResponse } = require('./errors.cjs');

const HANDLER_STREAMING = Symbol.for('aws.lambda.runtime.handler.streaming');
const HANDLER_HIGHWATERMARK = Symbol.for('aws.lambda.runtime.handler.streaming.highWaterMark');
const STREAM_RESPONSE = 'response';
const FAIL = Symbol('fail');
const PRELUDE_CONTENT_TYPE = 'application/vnd.awslambda.http-integration-response';

/**
 * A real stream.Writable over the chunked POST, so `pipeline(src, responseStream)`, backpressure
 * and `end(data)` all behave as users expect; the prelude hook runs before the first byte even
 * when the body is only passed to end().
 *
 * Defined on first use: node:stream costs a few ms of every cold start, and only streaming
 * handlers need it.
 */
let ResponseStream;

function defineResponseStream() {
  const { Writable } = require('node:stream');
  ResponseStream = class ResponseStream extends Writable {
    constructor(req, options = {}) {
      super({ highWaterMark: options.highWaterMark });
      this._req = req;
      this._started = false;
      this._failed = false;
      this._onBeforeFirstWrite = undefined;
    }

    setContentType(contentType) {
      if (this._started) throw new InvalidStreamingOperation('Cannot set content-type, too late.');
      this._req.setHeader('Content-Type', contentType);
    }

    write(chunk, encoding, callback) {
      // The official client JSON-encodes anything that is not string/Buffer/Uint8Array.
      if (typeof chunk !== 'string' && !(chunk instanceof Uint8Array)) chunk = JSON.stringify(chunk);
      return super.write(chunk, encoding, callback);
    }

    _start() {
      if (this._started) return;
      this._started = true;
      if (typeof this._onBeforeFirstWrite === 'function') this._onBeforeFirstWrite((c) => this._req.write(c));
    }

    _write(chunk, encoding, callback) {
      if (this._failed) return callback();
      this._start();
      this._req.write(chunk, encoding, () => callback());
    }

    _final(callback) {
      if (this._failed) return callback();
      this._start();
      this._req.end(() => callback());
    }

    _destroy(err, callback) {
      if (!this._failed && !this._req.writableEnded) this._req.destroy(err ?? undefined);
      callback(err);
    }

    /** Terminate the body with the error trailers (no-op if the body was already ended). */
    [FAIL](err) {
      this._failed = true;
      const req = this._req;
      if (req.writableEnded || req.destroyed) return Promise.resolve();
      const error = toRapidResponse(err);
      req.addTrailers({
        'Lambda-Runtime-Function-Error-Type': String(error.errorType).replace(/[^\x20-\x7e]/g, '?'),
        'Lambda-Runtime-Function-Error-Body': Buffer.from(JSON.stringify(error)).toString('base64'),
      });
      return new Promise((resolve) => req.end(resolve));
    }
  };
  return ResponseStream;
}

function createResponseStream(req, options) {
  return new (ResponseStream ?? defineResponseStream())(req, options);
}

function failStream(stream, err) {
  return stream[FAIL](err);
}

class HttpResponseStream {
  static from(underlyingStream, prelude) {
    underlyingStream.setContentType(PRELUDE_CONTENT_TYPE);
    const metadataPrelude = JSON.stringify(prelude); // JSON never contains a NUL byte
    underlyingStream._onBeforeFirstWrite = (write) => {
      write(metadataPrelude);
      write(new Uint8Array(8));
    };
    return underlyingStream;
  }
}

/** Install `globalThis.awslambda` before user code loads (opt-out as in the official client). */
function installAwsLambdaGlobal() {
  const optOut = process.env.AWS_LAMBDA_NODEJS_NO_GLOBAL_AWSLAMBDA;
  if (optOut === '1' || optOut === 'true') return;
  globalThis.awslambda = {
    streamifyResponse(handler, options) {
      handler[HANDLER_STREAMING] = STREAM_RESPONSE;
      if (typeof options?.highWaterMark === 'number') handler[HANDLER_HIGHWATERMARK] = parseInt(options.highWaterMark, 10);
      return handler;
    },
    HttpResponseStream,
  };
}

module.exports = { HANDLER_STREAMING, HANDLER_HIGHWATERMARK, STREAM_RESPONSE, createResponseStream, failStream, HttpResponseStream, installAwsLambdaGlobal };
