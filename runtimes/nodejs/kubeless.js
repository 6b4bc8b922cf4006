#!/usr/bin/env node
'use strict';
/**
 * Kubeless Node.js runtime: serve one function, `handler(event, context)`, over HTTP.
 *
 * The contract is the Python runtime's (runtimes/python/kubeless_runtime.py, runtimes/README.md): the same routes,
 * CORS, event and context fields, status codes and messages, metrics, stuck-call accounting and access log.
 * This file reads the configuration, loads the function and starts the server; the rest is in lib/:
 *
 * - server.js: routing, the body limit, the calls (batched in one `vm` frame per turn of the event loop), the
 *   answers, the access log and the housekeeping tick that times out asynchronous calls;
 * - watchdog.js: the worker thread that stops a function holding the event loop past its timeout;
 * - messages.js: the event, the request and response objects a function gets, and how results become bodies;
 * - metrics.js: GET /metrics.
 *
 * Node's own modules only: the runtime is copied into every function image and must not bring packages that could
 * clash with the function's own node_modules.
 *
 * Configuration comes from the environment (see `configFromEnv`). Besides the Kubeless variables,
 * FUNC_TERMINATION_LOG names the pod's terminationMessagePath (default /dev/termination-log), written on a
 * start-up failure if it is writable. SIGTERM (and SIGINT from a terminal) stop the server gracefully.
 */

const fs = require('fs');
const path = require('path');
const url = require('url');
const { FunctionServer } = require('./lib/server');
const { REPAIR } = require('./lib/watchdog');
const { errorMessage } = require('./lib/messages');

const DEFAULT_BODY_LIMIT = 100 * 1024 * 1024;
const BODY_LIMIT_MEMORY_SHARE = 4; // without FUNC_MEMFILE_MAX, a body may take a quarter of FUNC_MEMORY_LIMIT
// A Kubernetes quantity: a decimal number, an optional exponent, an optional suffix.
const QUANTITY = /^\+?(\d+(?:\.\d*)?|\.\d+)(?:[eE]([+-]?\d+))?(Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E)?$/;
const QUANTITY_FACTORS = { m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18, Ki: 2 ** 10, Mi: 2 ** 20,
  Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60 };

class ConfigError extends Error {}

function envNumber(env, name, fallback, { integer = false, minimum }) {
  const raw = env[name] === undefined ? fallback : env[name];
  const value = (integer ? /^\s*[+-]?\d+\s*$/.test(raw) : raw.trim() !== '') ? Number(raw) : NaN;
  if (Number.isNaN(value)) throw new ConfigError(`${name} must be a number, got '${raw}'`);
  if (!(value >= minimum)) {
    throw new ConfigError(`${name} must be at least ${minimum}, got '${raw}'`);
  }
  return value;
}

function configFromEnv(env) {
  const timeout = envNumber(env, 'FUNC_TIMEOUT', '180', { minimum: 0.001 });
  return {
    handlerName: env.FUNC_HANDLER || '',
    moduleName: env.MOD_NAME || '',
    timeout, // seconds; a number, as the context shows it
    runtime: env.FUNC_RUNTIME || '',
    memoryLimit: env.FUNC_MEMORY_LIMIT || '',
    host: env.FUNC_HOST || '0.0.0.0',
    port: envNumber(env, 'FUNC_PORT', '8080', { integer: true, minimum: 0 }),
    installVolume: env.KUBELESS_INSTALL_VOLUME || '/kubeless',
    maxBodyBytes: bodyLimit(env),
    maxStuckCalls: envNumber(env, 'FUNC_MAX_STUCK', '4', { integer: true, minimum: 1 }),
    headerTimeout: envNumber(env, 'FUNC_HEADER_TIMEOUT', '10', { minimum: 0.001 }), // seconds, as written
    readTimeout: envNumber(env, 'FUNC_READ_TIMEOUT', '60', { minimum: 0.001 }),
    maxConnections: envNumber(env, 'FUNC_MAX_CONNECTIONS', '1024', { integer: true, minimum: 1 }),
    gracePeriod: envNumber(env, 'FUNC_GRACE_PERIOD', '30', { minimum: 0 }),
  };
}

/** FUNC_MEMFILE_MAX bytes, as the Python and Go runtimes read it; REQ_MB_LIMIT megabytes, Kubeless' variable for
 * its Node runtime, only when FUNC_MEMFILE_MAX is unset. With neither, 100 MiB, or a quarter of FUNC_MEMORY_LIMIT
 * when that is less. */
function bodyLimit(env) {
  if (env.FUNC_MEMFILE_MAX === undefined && env.REQ_MB_LIMIT !== undefined) {
    return Math.floor(envNumber(env, 'REQ_MB_LIMIT', null, { minimum: 0 }) * 1024 * 1024);
  }
  const memory = memoryLimitBytes(env.FUNC_MEMORY_LIMIT || '');
  const fallback = memory > 0 ? Math.min(DEFAULT_BODY_LIMIT, Math.floor(memory / BODY_LIMIT_MEMORY_SHARE))
    : DEFAULT_BODY_LIMIT;
  return envNumber(env, 'FUNC_MEMFILE_MAX', String(fallback), { integer: true, minimum: 0 });
}

/** FUNC_MEMORY_LIMIT, a Kubernetes quantity (134217728, 128Mi, 1G), in bytes; 0 when it is empty, "0" or
 * unreadable (the limit is then unknown), as the Python and Go runtimes read it. */
function memoryLimitBytes(quantity) {
  const match = QUANTITY.exec(quantity);
  if (match === null) return 0;
  const [, number, exponent, suffix] = match;
  const value = Number(number) * 10 ** Number(exponent || 0) * (suffix ? QUANTITY_FACTORS[suffix] : 1);
  return value > 0 && value < 2 ** 62 ? Math.floor(value) : 0;
}

function qualifiedName(config) {
  return `${config.moduleName}.${config.handlerName}`;
}

/** The function named by MOD_NAME and FUNC_HANDLER: the module's export, or its FUNC_HANDLER member. */
async function loadFunction(config) {
  if (!config.moduleName || !config.handlerName) throw new Error('MOD_NAME and FUNC_HANDLER must be set');
  const file = path.join(config.installVolume, `${config.moduleName}.js`);
  let exported;
  try {
    exported = require(file);
  } catch (error) {
    if (error.code !== 'ERR_REQUIRE_ESM') throw error;
    const namespace = await import(url.pathToFileURL(file).href); // the function is an ES module
    exported = typeof namespace[config.handlerName] === 'function' ? namespace : namespace.default;
  }
  if (exported != null && typeof exported[config.handlerName] === 'function') {
    return exported[config.handlerName].bind(exported); // `this` is the module's export, as for a method call
  }
  if (typeof exported === 'function') return exported;
  throw new TypeError(`${file} exports neither a function nor an object with a function ${config.handlerName}`);
}

// --- start-up --------------------------------------------------------------------------------------------------

function writeTerminationLog(message) {
  const file = process.env.FUNC_TERMINATION_LOG || '/dev/termination-log';
  try {
    fs.accessSync(file, fs.constants.W_OK); // Kubernetes creates it; elsewhere it is usually absent
    fs.writeFileSync(file, `${message}\n`);
  } catch {
    // no termination log here
  }
}

function failStart(message, error) {
  if (error && error.stack) process.stderr.write(`${error.stack}\n`);
  process.stderr.write(`${message}\n`);
  writeTerminationLog(message);
  process.exitCode = 1;
}

/** One line about a load failure: the error's first line, and where a syntax error is. */
function describeLoadError(error) {
  if (!(error instanceof Error)) return errorMessage(error);
  let line = `${error.name}: ${String(error.message).split('\n', 1)[0]}`;
  if (error instanceof SyntaxError && typeof error.stack === 'string') {
    const location = error.stack.split('\n', 1)[0];
    if (/:\d+$/.test(location)) line += ` (${location})`;
  }
  return line;
}

async function main() {
  let config;
  try {
    config = configFromEnv(process.env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    return failStart(`invalid configuration: ${error.message}`);
  }
  let func;
  try {
    func = await loadFunction(config);
  } catch (error) {
    return failStart(`cannot load handler ${qualifiedName(config)}: ${describeLoadError(error)}`, error);
  }
  process.on('uncaughtException', (error) => {
    if (error === REPAIR) return;
    process.stderr.write(`uncaught exception in the function: ${error && error.stack || error}\n`);
  });
  process.on('unhandledRejection', (error) => {
    process.stderr.write(`unhandled rejection in the function: ${error && error.stack || error}\n`);
  });
  const server = new FunctionServer(config, func);
  const listenFailed = (error) => {
    failStart(`cannot listen on ${config.host}:${config.port}: ${errorMessage(error)}`);
    process.exit(1);
  };
  const serving = () => {
    server.http.removeListener('error', listenFailed);
    server.http.on('error', (error) => process.stderr.write(`server error: ${error.stack}\n`));
    server.startHousekeeping();
    process.on('SIGTERM', () => server.stop());
    if (!server.watchdog.canInterrupt) process.on('SIGINT', () => server.stop());
    process.stdout.write(`serving ${qualifiedName(config)} on ${config.host}:${server.http.address().port}\n`);
  };
  server.http.once('error', listenFailed);
  try {
    server.http.listen(config.port, config.host, serving);
  } catch (error) { // a port out of range
    listenFailed(error);
  }
}

if (require.main === module) main();

module.exports = { configFromEnv, memoryLimitBytes, ConfigError }; // for the tests
