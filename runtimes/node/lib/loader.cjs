/**
 * Handler resolution from `_HANDLER` (lambda-compat.md §3.4), after the official client's
 * UserFunction loader.
 *
 * `dir/file.export` / `file.obj.method`: the module is the basename up to its FIRST '.', the rest
 * is a property path. In `<task root>/<dir>/<module>` it tries, in order: the name as-is (require),
 * `.js` (require, or import() when the nearest package.json says "type": "module"), `.mjs`
 * (import()), `.cjs` (require), a directory module, then Node's resolution (node_modules, NODE_PATH).
 * import() also waits for top-level await. Errors: `..` in the handler or no '.' →
 * Runtime.MalformedHandlerName; module not found → Runtime.ImportModuleError; SyntaxError →
 * Runtime.UserCodeSyntaxError; missing / non-function export → Runtime.HandlerNotFound.
 * Anything else thrown while the module initialises propagates with its own type.
 */
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const { pathToFileURL } = require('node:url');
const { HandlerNotFound, ImportModuleError, MalformedHandlerName, MalformedStreamingHandler, UserCodeSyntaxError } = require('./errors.cjs');
const { HANDLER_HIGHWATERMARK, HANDLER_STREAMING, STREAM_RESPONSE } = require('./streaming.cjs');

const FUNCTION_EXPR = /^([^.]*)\.(.*)$/;

const isFile = (file) => fs.statSync(file, { throwIfNoEntry: false })?.isFile() ?? false;

function tryRequire(file) {
  return isFile(file) ? require(file) : undefined;
}

async function tryImport(file) {
  return isFile(file) ? import(pathToFileURL(file).href) : undefined;
}

/** Nearest package.json decides whether `.js` is ESM; node_modules boundaries stop the search. */
function hasPackageJsonTypeModule(folder) {
  for (;;) {
    if (folder.endsWith('/node_modules')) return false;
    const pj = path.join(folder, 'package.json');
    if (fs.existsSync(pj)) {
      try {
        return JSON.parse(fs.readFileSync(pj, 'utf8'))?.type === 'module';
      } catch (e) {
        console.warn(`${pj} cannot be read, it will be ignored for ES module detection purposes.`, e);
        return false;
      }
    }
    const parent = path.dirname(folder);
    if (parent === folder) return false;
    folder = parent;
  }
}

async function loadModule(appRoot, moduleRoot, moduleName) {
  const base = path.resolve(appRoot, moduleRoot, moduleName);
  const extensionless = tryRequire(base);
  if (extensionless) return extensionless;

  const typeModule = hasPackageJsonTypeModule(path.dirname(base));
  if (!typeModule) {
    const cjs = tryRequire(base + '.js');
    if (cjs) return cjs;
  }
  const loaded = (typeModule && (await tryImport(base + '.js'))) ||
    (await tryImport(base + '.mjs')) ||
    tryRequire(base + '.cjs');
  if (loaded) return loaded;

  // A directory module (package.json "main" or index.js).
  if (fs.statSync(base, { throwIfNoEntry: false })?.isDirectory()) return require(base);
  // Node's own resolution from the task root (node_modules, NODE_PATH), not from this file.
  const resolved = require.resolve(moduleName, { paths: [appRoot, path.join(appRoot, moduleRoot)] });
  return require(resolved);
}

async function loadHandler(appRoot, handlerString) {
  if (handlerString.includes('..')) {
    throw new MalformedHandlerName(`'${handlerString}' is not a valid handler name. Use absolute paths when specifying root directories in handler names.`);
  }
  const moduleAndHandler = path.basename(handlerString);
  const moduleRoot = handlerString.substring(0, handlerString.indexOf(moduleAndHandler));
  const match = moduleAndHandler.match(FUNCTION_EXPR);
  if (!match) throw new MalformedHandlerName('Bad handler');
  const [, moduleName, handlerPath] = match;

  let userModule;
  try {
    userModule = await loadModule(appRoot, moduleRoot, moduleName);
  } catch (e) {
    if (e instanceof SyntaxError) throw new UserCodeSyntaxError(e);
    if (e?.code === 'MODULE_NOT_FOUND') throw new ImportModuleError(e);
    throw e;
  }

  const handler = handlerPath.split('.').reduce((obj, key) => obj && obj[key], userModule);
  if (!handler) throw new HandlerNotFound(`${handlerString} is undefined or not exported`);
  if (typeof handler !== 'function') throw new HandlerNotFound(`${handlerString} is not a function`);

  const streaming = handler[HANDLER_STREAMING];
  if (streaming && streaming !== STREAM_RESPONSE) {
    throw new MalformedStreamingHandler('Only response streaming is supported.');
  }
  const hwm = parseInt(handler[HANDLER_HIGHWATERMARK], 10);
  return {
    handler,
    streaming: Boolean(streaming),
    highWaterMark: Number.isNaN(hwm) ? undefined : hwm,
    isAsync: handler.constructor?.name === 'AsyncFunction',
  };
}

module.exports = { loadHandler };
