#!/usr/bin/env node
'use strict';
/**
 * Kubeless Node.js runtime: serve one function, `handler(event, context)`, over HTTP.
 *
 * The contract is the Python runtime's (runtimes/python/kubeless_runtime.py): the same routes, CORS, event and
 * context fields, status codes and messages, metrics, stuck-call accounting and access log. Why it is built
 * this way:
 *
 * - Node's `http` module only, one file: it is copied into every function image and must not bring packages
 *   that could clash with the function's own node_modules.
 * - The function runs on the event loop, in the process' own context (so `instanceof Array`, Buffer and Error
 *   mean what the function expects). Kubeless ran it in a new `vm` context per call instead.
 * - Requests are not answered from their parser callback: their calls are queued, and one `setImmediate` per turn
 *   of the event loop calls the function for all of them inside a single `vm` frame (see 2. below), then writes
 *   their answers back to back. The frame's cost is shared, and the responses leave together, so the client
 *   wakes up less often: with 16 connections this serves as many requests per second as a bare `http` server
 *   that answers from its callback (bench/nodejs_runtime_throughput.py), where one `vm` call per request cost
 *   40% of the throughput.
 * - Timeouts, three cases:
 *   1. An asynchronous call (a promise, or a response the function answers later) that is still open at its
 *      deadline gets a 408 from the housekeeping timer; it stays "stuck" until its promise settles, and
 *      FUNC_MAX_STUCK stuck calls turn /healthz to 503 so that the kubelet restarts the pod.
 *   2. The synchronous part of a call runs through `vm.Script#runInThisContext({breakOnSigint: true})`.
 *      A watchdog worker thread watches a shared heartbeat; when one synchronous call has held the event loop
 *      past the timeout, it sends the process SIGINT, V8 stops the script and `vm` turns that into an
 *      ordinary exception, answered with 408. The server keeps serving with its state intact. Node's SIGINT
 *      helper thread is kept started (the REPL's own mechanism, `startSigintWatchdog`), so a `vm` frame costs
 *      1 to 2 us. The alternative, `runInThisContext({timeout})`, starts a watchdog thread per frame: 44 us.
 *      Only the function's own calls run inside the frame, so an interruption stops nothing but that call; the
 *      rest of the queue continues in a new frame.
 *   3. A CPU loop in asynchronous code (after an `await`, in a timer) blocks the loop outside any `vm` call.
 *      The watchdog then stops it with the inspector's `Runtime.terminateExecution` (a session it connects only
 *      at that moment), once the loop has been held for the timeout and at least RAW_TERMINATION_MIN_MS: a
 *      termination lands in whatever JavaScript runs, so it must not hit a long garbage collection under a
 *      tiny timeout. V8 drops the pending microtasks, so other calls in flight may lose their continuations:
 *      they get their 408 at their deadline, and like the stopped call they stay stuck. Node must run with
 *      `--no-force-async-hooks-checks` (the image's CMD), or a termination inside a timer callback aborts the
 *      process on its async-id stack check.
 *   Kubeless timed out synchronous code only, and then exited the process.
 * - The access log is buffered and written once per housekeeping tick: one syscall per tick, not per request.
 *
 * Configuration comes from the environment (see `configFromEnv`). Besides the Kubeless variables,
 * FUNC_TERMINATION_LOG names the pod's terminationMessagePath (default /dev/termination-log), written on a
 * start-up failure if it is writable. SIGTERM (and SIGINT from a terminal) stop the server gracefully.
 */

const fs = require('fs');
const http = require('http');
const path = require('path');
const url = require('url');
const vm = require('vm');
const { randomFillSync } = require('crypto');
const { performance } = require('perf_hooks');
const { Worker } = require('worker_threads');

const TEXT_TYPE = 'text/plain; charset=utf-8';
const JSON_TYPE = 'application/json';
const BYTES_TYPE = 'application/octet-stream';
const PROMETHEUS_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
const TEXT_MEDIA_TYPES = new Set(['application/x-www-form-urlencoded']);
const DEFAULT_CORS_METHODS = 'GET, POST, PUT, PATCH, DELETE, OPTIONS';
const BODYLESS_STATUSES = new Set([204, 304]);
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
// As the Python runtime writes them (repr of a float), so both runtimes' series have the same labels.
const BUCKET_LABELS = ['0.005', '0.01', '0.025', '0.05', '0.1', '0.25', '0.5', '1.0', '2.5', '5.0', '10.0', '+Inf'];
const SHUTDOWN_GRACE_MS = 5000;
const LOG_BUFFER_LIMIT = 64 * 1024;
const EMPTY_BODY = Buffer.alloc(0);
const INTERRUPTED = 'ERR_SCRIPT_EXECUTION_INTERRUPTED';
const RAW_TERMINATION_MIN_MS = 1000;

// Fields of the Int32Array that the main thread shares with the watchdog thread.
const CALL_SEQ = 0; // +1 each time a synchronous call starts (main)
const IN_CALL = 1; // 1 while a synchronous call runs (main)
const BEAT = 2; // +1 every housekeeping tick (main)
const SIGNALS_SENT = 3; // SIGINTs sent to stop a synchronous call (watchdog)
const TERMINATIONS = 4; // terminateExecution requests (watchdog)
const STATE_FIELDS = 5;

class ConfigError extends Error {}

class RequestError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

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
    maxBodyBytes: Math.floor(envNumber(env, 'REQ_MB_LIMIT', '1', { minimum: 0 }) * 1024 * 1024),
    maxStuckCalls: envNumber(env, 'FUNC_MAX_STUCK', '4', { integer: true, minimum: 1 }),
  };
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

// --- request ---------------------------------------------------------------------------------------------------

/** What a function sees of the request as event.extensions.request: Node's request plus `body` (a Buffer),
 * and Express' `path`, `query` and `get(header)`. */
class FunctionRequest extends http.IncomingMessage {
  constructor(socket) {
    super(socket);
    this.body = EMPTY_BODY;
  }

  get path() {
    const query = this.url.indexOf('?');
    return query < 0 ? this.url : this.url.slice(0, query);
  }

  get query() {
    const start = this.url.indexOf('?');
    const query = {};
    if (start < 0) return query;
    for (const [name, value] of new URLSearchParams(this.url.slice(start + 1))) {
      const previous = query[name];
      query[name] = previous === undefined ? value : [].concat(previous, value);
    }
    return query;
  }

  get(name) {
    return this.headers[name.toLowerCase()];
  }
}

/** event.extensions.response: Node's response, with CORS on whatever the function writes, and Express'
 * `status`, `set`, `send` and `json` for functions written against Kubeless' Express runtime. */
class FunctionResponse extends http.ServerResponse {
  writeHead(...args) {
    if (!this.hasHeader('access-control-allow-origin')) this.setHeader('Access-Control-Allow-Origin', '*');
    return super.writeHead(...args);
  }

  status(code) {
    this.statusCode = code;
    return this;
  }

  set(name, value) {
    this.setHeader(name, value);
    return this;
  }

  send(body) {
    const [payload, contentType] = encodeBody(body);
    if (contentType && !this.hasHeader('content-type')) this.setHeader('Content-Type', contentType);
    this.end(payload);
    return this;
  }

  json(value) {
    if (!this.hasHeader('content-type')) this.setHeader('Content-Type', JSON_TYPE);
    this.end(JSON.stringify(value));
    return this;
  }
}

const NO_CONTENT_TYPE = [null, null];

/** [media type, charset] of a Content-Type header, lower-cased; [null, null] when absent. */
function parseContentType(value) {
  if (!value) return NO_CONTENT_TYPE;
  const parts = value.split(';');
  let charset = null;
  for (let i = 1; i < parts.length; i++) {
    const separator = parts[i].indexOf('=');
    if (separator > 0 && parts[i].slice(0, separator).trim().toLowerCase() === 'charset') {
      charset = parts[i].slice(separator + 1).trim().replace(/^"|"$/g, '');
    }
  }
  return [parts[0].trim().toLowerCase(), charset];
}

const decoders = new Map();

/** The body as text in `charset` (default UTF-8); throws on bytes invalid in it or an unknown charset. */
function decodeText(body, charset) {
  const label = charset ? charset.toLowerCase() : 'utf-8';
  if (label === 'utf-8' || label === 'utf8') {
    if (!isUtf8(body)) throw new TypeError('the body is not valid utf-8');
    return body.toString('utf8');
  }
  let decoder = decoders.get(label);
  if (decoder === undefined) {
    decoder = newDecoder(label);
    decoders.set(label, decoder);
  }
  if (decoder === null) throw new RangeError(`unknown charset ${charset}`);
  return decoder.decode(body);
}

/** A strict TextDecoder for a charset label, also as Python spells some (latin-1, utf_8); null if unknown. */
function newDecoder(label) {
  for (const candidate of [label, label.replace(/[-_]/g, '')]) {
    try {
      return new TextDecoder(candidate, { fatal: true });
    } catch {
      // not a WHATWG label
    }
  }
  return null;
}

const isUtf8 = require('buffer').isUtf8 || ((body) => {
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(body);
    return true;
  } catch {
    return false;
  }
});

/** event.data: parsed JSON for JSON media types, text for text, forms and no type, a Buffer otherwise. */
function decodeData(body, mediaType, charset) {
  if (mediaType !== null && (mediaType === JSON_TYPE || mediaType.endsWith('+json'))) {
    if (body.length === 0) return null;
    try {
      return JSON.parse(decodeText(body, charset));
    } catch (error) {
      throw new RequestError(400, `invalid JSON body: ${error.message}`);
    }
  }
  if (body.length === 0) return '';
  if (mediaType === null || mediaType.startsWith('text/') || TEXT_MEDIA_TYPES.has(mediaType)) {
    try {
      return decodeText(body, charset);
    } catch {
      return body;
    }
  }
  return body;
}

// --- response --------------------------------------------------------------------------------------------------

/** [payload, content type] for a function's result: strings are text, bytes are bytes, the rest JSON. */
function encodeBody(value) {
  if (value === undefined || value === null) return ['', null];
  if (typeof value === 'string') return [value, TEXT_TYPE];
  if (value instanceof Uint8Array) return [value, BYTES_TYPE];
  if (value instanceof ArrayBuffer) return [Buffer.from(value), BYTES_TYPE];
  const json = JSON.stringify(value);
  return json === undefined ? ['', null] : [json, JSON_TYPE];
}

function errorMessage(error) {
  const name = error instanceof Error || (error && typeof error.name === 'string') ? error.name : 'Error';
  const message = error instanceof Error || (error && error.message !== undefined) ? error.message : error;
  return `${name}: ${String(message).replace(/[\r\n]+/g, ' ')}`;
}

const ID_POOL = Buffer.alloc(16 * 256);
let idPool = '';
let idOffset = 0;

/** A random UUID (version 4) in hex, as the Python runtime's uuid4().hex. Cut from a hex string of 256 of them,
 * made at once: randomUUID() plus removing its dashes costs four times as much. */
function newEventId() {
  if (idOffset === idPool.length) {
    randomFillSync(ID_POOL);
    for (let slot = 0; slot < ID_POOL.length; slot += 16) {
      ID_POOL[slot + 6] = (ID_POOL[slot + 6] & 0x0f) | 0x40;
      ID_POOL[slot + 8] = (ID_POOL[slot + 8] & 0x3f) | 0x80;
    }
    idPool = ID_POOL.toString('hex');
    idOffset = 0;
  }
  idOffset += 32;
  return idPool.slice(idOffset - 32, idOffset);
}

function isThenable(value) {
  return value !== null && (typeof value === 'object' || typeof value === 'function') &&
    typeof value.then === 'function';
}

/** The formatted timestamps each request needs, computed once per second. */
class Clock {
  constructor() {
    this.nextSecond = 0; // ms since the epoch when `text` expires
    this.text = '';
  }

  rfc3339() {
    const now = Date.now();
    if (now >= this.nextSecond) {
      const second = Math.floor(now / 1000);
      this.nextSecond = (second + 1) * 1000;
      this.text = new Date(second * 1000).toISOString().slice(0, 19) + 'Z';
    }
    return this.text;
  }
}

class MethodStats {
  constructor() {
    this.calls = 0;
    this.failures = 0;
    this.durationSum = 0;
    this.bucketCounts = new Array(DURATION_BUCKETS.length + 1).fill(0);
  }
}

class Metrics {
  constructor() {
    this.byMethod = new Map();
  }

  observe(method, seconds, failed) {
    let stats = this.byMethod.get(method);
    if (stats === undefined) {
      stats = new MethodStats();
      this.byMethod.set(method, stats);
    }
    stats.calls += 1;
    if (failed) stats.failures += 1;
    stats.durationSum += seconds;
    let bucket = 0;
    while (bucket < DURATION_BUCKETS.length && seconds > DURATION_BUCKETS[bucket]) bucket++;
    stats.bucketCounts[bucket] += 1;
  }

  render(stuckCalls) {
    const methods = [...this.byMethod.keys()].sort();
    const label = (method) => JSON.stringify(method); // a quoted, escaped label value
    const lines = ['# HELP function_calls_total Number of calls to the function.',
      '# TYPE function_calls_total counter'];
    for (const m of methods) lines.push(`function_calls_total{method=${label(m)}} ${this.byMethod.get(m).calls}`);
    lines.push('# HELP function_failures_total Number of calls that raised or timed out.',
      '# TYPE function_failures_total counter');
    for (const m of methods) lines.push(`function_failures_total{method=${label(m)}} ${this.byMethod.get(m).failures}`);
    lines.push('# HELP function_duration_seconds Duration of function calls.',
      '# TYPE function_duration_seconds histogram');
    for (const m of methods) {
      const stats = this.byMethod.get(m);
      let cumulative = 0;
      stats.bucketCounts.forEach((count, i) => {
        cumulative += count;
        lines.push(`function_duration_seconds_bucket{method=${label(m)},le="${BUCKET_LABELS[i]}"} ${cumulative}`);
      });
      lines.push(`function_duration_seconds_sum{method=${label(m)}} ${stats.durationSum}`);
      lines.push(`function_duration_seconds_count{method=${label(m)}} ${stats.calls}`);
    }
    lines.push('# HELP function_stuck_calls Timed-out calls whose thread is still running.',
      '# TYPE function_stuck_calls gauge', `function_stuck_calls ${stuckCalls}`);
    return lines.join('\n') + '\n';
  }
}

/** An asynchronous call: its promise is pending, or the function answers through the response itself. */
/** A request whose event is ready, waiting for its turn in the `vm` frame, then for its answer. */
class QueuedCall {
  constructor(req, res, started, event) {
    this.req = req;
    this.res = res;
    this.started = started;
    this.event = event;
    this.result = undefined;
    this.error = undefined;
    this.threw = false;
    this.terminated = false;
  }
}

class OpenCall {
  constructor(req, res, started, deadline) {
    this.req = req;
    this.res = res;
    this.started = started;
    this.deadline = deadline;
    this.pending = false; // its promise has not settled yet
    this.timedOut = false;
  }
}

// --- server ----------------------------------------------------------------------------------------------------

class FunctionServer {
  constructor(config, func) {
    this.config = config;
    this.func = func;
    this.context = { 'function-name': config.handlerName, timeout: config.timeout, runtime: config.runtime,
      'memory-limit': config.memoryLimit };
    this.timeoutMs = config.timeout * 1000;
    this.timeoutMessage = `Function timed out after ${config.timeout} s`;
    this.clock = new Clock();
    this.metrics = new Metrics();
    this.openCalls = new Set(); // in start order, hence in deadline order
    this.stuck = 0;
    this.stopping = false;
    this.log = '';
    this.state = new Int32Array(new SharedArrayBuffer(STATE_FIELDS * Int32Array.BYTES_PER_ELEMENT));
    this.signalsSeen = 0;
    this.terminationsSeen = 0;
    this.queue = []; // QueuedCall: the calls of this turn of the event loop
    this.invoked = 0; // queue[0..invoked) have been called
    this.answered = 0; // queue[0..answered) have been answered (or await their promise)
    this.runScheduled = false;
    this.runQueueBound = () => this.runQueue();
    this.syncCall = null; // the QueuedCall whose function runs now
    this.sigint = startSigintHelper();
    Object.defineProperty(globalThis, '__kubelessInvoke', { value: () => this.invokeQueued() });
    this.invokeScript = new vm.Script('__kubelessInvoke()', { filename: 'kubeless-invoke' });
    this.invokeOptions = { breakOnSigint: this.sigint !== null, displayErrors: false };
    this.http = http.createServer({ IncomingMessage: FunctionRequest, ServerResponse: FunctionResponse },
      (req, res) => this.onRequest(req, res));
    this.http.on('clientError', (error, socket) => this.onClientError(error, socket));
  }

  // -- routing

  onRequest(req, res) {
    const started = performance.now();
    const method = req.method;
    if (method === 'OPTIONS') return this.preflight(req, res, started);
    if (method === 'GET') {
      const query = req.url.indexOf('?');
      const route = query < 0 ? req.url : req.url.slice(0, query);
      if (route === '/healthz') {
        return this.stuck < this.config.maxStuckCalls ? this.answer(req, res, started, 200, 'OK', TEXT_TYPE)
          : this.answer(req, res, started, 503, 'too many stuck calls', TEXT_TYPE);
      }
      if (route === '/metrics') {
        return this.answer(req, res, started, 200, this.metrics.render(this.stuck), PROMETHEUS_TYPE);
      }
    }
    const length = req.headers['content-length'];
    if (length !== undefined && Number(length) > this.config.maxBodyBytes) return this.tooLarge(req, res, started);
    if ((length === undefined || length === '0') && req.headers['transfer-encoding'] === undefined) {
      return this.call(req, res, started, EMPTY_BODY);
    }
    this.readBody(req, res, started);
  }

  readBody(req, res, started) {
    const chunks = [];
    let size = 0;
    let rejected = false;
    req.on('data', (chunk) => {
      if (rejected) return;
      size += chunk.length;
      if (size > this.config.maxBodyBytes) { // chunked: the length shows only while reading
        rejected = true;
        chunks.length = 0;
        this.tooLarge(req, res, started);
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (!rejected) this.call(req, res, started, chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size));
    });
    req.on('error', () => {}); // the client went away: nothing to answer
  }

  preflight(req, res, started) {
    const headers = ['Access-Control-Allow-Origin', '*', 'Access-Control-Allow-Methods',
      req.headers['access-control-request-method'] || DEFAULT_CORS_METHODS];
    const requested = req.headers['access-control-request-headers'];
    if (requested) headers.push('Access-Control-Allow-Headers', requested);
    if (this.stopping) headers.push('Connection', 'close');
    http.ServerResponse.prototype.writeHead.call(res, 204, headers);
    res.end();
    this.logAccess(req, 204, started);
  }

  tooLarge(req, res, started) {
    // Not closing: Node reads and drops the rest of the body, so the client sees the 413 and not a reset.
    this.answer(req, res, started, 413, `request body larger than ${this.config.maxBodyBytes} bytes`, TEXT_TYPE);
  }

  onClientError(error, socket) {
    if (error.code === 'ECONNRESET' || !socket.writable) return socket.destroy();
    const [status, reason] = error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? [408, 'Request Timeout']
      : error.code === 'HPE_HEADER_OVERFLOW' ? [431, 'Request Header Fields Too Large'] : [400, 'Bad Request'];
    const body = Buffer.from(`${reason}: ${error.code || error.message}`);
    socket.end(`HTTP/1.1 ${status} ${reason}\r\nAccess-Control-Allow-Origin: *\r\n` +
      `Content-Type: ${TEXT_TYPE}\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
    this.log += `${this.clock.rfc3339()} - - ${status} 0.000ms\n`;
  }

  // -- calling the function

  call(req, res, started, body) {
    let event;
    try {
      req.body = body;
      const [mediaType, charset] = parseContentType(req.headers['content-type']);
      const headers = req.headers;
      event = {
        data: decodeData(body, mediaType, charset),
        'event-id': headers['event-id'] || newEventId(),
        'event-type': headers['event-type'] || mediaType || '',
        'event-time': headers['event-time'] || this.clock.rfc3339(),
        'event-namespace': headers['event-namespace'] || '',
        extensions: { request: req, response: res },
      };
    } catch (error) {
      if (!(error instanceof RequestError)) throw error;
      return this.answer(req, res, started, error.status, error.message, TEXT_TYPE);
    }
    this.queue.push(new QueuedCall(req, res, started, event));
    if (!this.runScheduled) {
      this.runScheduled = true;
      setImmediate(this.runQueueBound);
    }
  }

  /** Calls the function for every queued request inside one `vm` frame, whose cost (1 to 2 us) is then shared by
   * the requests that arrived in the same turn of the event loop; answers them once the frame is left. */
  runQueue() {
    this.runScheduled = false;
    this.recoverTerminatedCall();
    const queue = this.queue;
    while (this.answered < queue.length) {
      try {
        if (this.invoked < queue.length) this.invokeScript.runInThisContext(this.invokeOptions);
      } catch (error) { // SIGINT: the watchdog stopped the call in progress (or a person pressed Ctrl-C)
        const call = this.callInProgress();
        this.endSyncCall();
        if (call !== null) {
          call.error = error;
          call.threw = true;
          this.invoked += 1;
        }
      }
      while (this.answered < this.invoked) {
        const call = queue[this.answered];
        queue[this.answered++] = null;
        try {
          this.answerCall(call);
        } catch (error) { // a bug here must not leave the rest of the queue unanswered
          process.stderr.write(`cannot answer ${call.req.method} ${call.req.url}: ${error.stack}\n`);
          call.res.destroy();
        }
      }
    }
    queue.length = 0;
    this.invoked = 0;
    this.answered = 0;
  }

  answerCall(call) {
    const { req, res, started } = call;
    if (call.terminated) {
      this.metrics.observe(req.method, (performance.now() - started) / 1000, true);
      this.answerTimeout(req, res, started);
    } else if (call.threw) {
      this.failed(req, res, started, call.error);
    } else if (isThenable(call.result)) {
      this.awaitResult(req, res, started, call.result);
    } else {
      this.succeeded(req, res, started, call.result);
    }
  }

  /** terminateExecution stopped a call (see runWatchdog): none of the code after it ran, so the call is still
   * marked as running. It is answered with the others, in order. */
  recoverTerminatedCall() {
    const call = this.callInProgress();
    this.endSyncCall();
    if (call === null) return;
    call.terminated = true;
    this.invoked += 1;
    this.signalsSeen = Atomics.load(this.state, SIGNALS_SENT);
  }

  /** The call an interruption stopped, or null if it fell between two calls (the one before is complete). */
  callInProgress() {
    return this.syncCall !== null && this.syncCall === this.queue[this.invoked] ? this.syncCall : null;
  }

  /** Runs inside the `vm` frame: nothing but the function's calls, so an interruption can only stop one. */
  invokeQueued() {
    const queue = this.queue;
    const state = this.state;
    while (this.invoked < queue.length) {
      const call = queue[this.invoked];
      this.syncCall = call;
      Atomics.add(state, CALL_SEQ, 1);
      Atomics.store(state, IN_CALL, 1);
      try {
        call.result = this.func(call.event, { ...this.context });
      } catch (error) {
        call.error = error;
        call.threw = true;
      }
      Atomics.store(state, IN_CALL, 0);
      call.event = null;
      this.invoked += 1; // before syncCall is cleared: see callInProgress
      this.syncCall = null;
    }
  }

  endSyncCall() {
    Atomics.store(this.state, IN_CALL, 0);
    this.syncCall = null;
  }

  awaitResult(req, res, started, promise) {
    const call = new OpenCall(req, res, started, started + this.timeoutMs);
    call.pending = true;
    this.openCalls.add(call);
    // Promise.resolve: a thenable's own then() may throw; as a rejection that is a 500 like any other
    (promise instanceof Promise ? promise : Promise.resolve(promise)).then(
      (value) => this.settle(call, value, false, null), (error) => this.settle(call, undefined, true, error));
  }

  settle(call, value, rejected, error) {
    call.pending = false;
    if (call.timedOut) {
      this.stuck -= 1;
      const outcome = rejected ? 'failure' : 'result';
      process.stderr.write(`discarded the late ${outcome} of ${call.req.method} ${call.req.url}\n`);
      return;
    }
    if (!rejected && call.res.headersSent && !call.res.writableEnded) {
      return this.awaitFinish(call); // it stays among the open calls, in its place in deadline order
    }
    this.openCalls.delete(call);
    if (rejected) this.failed(call.req, call.res, call.started, error);
    else this.succeeded(call.req, call.res, call.started, value);
  }

  succeeded(req, res, started, result) {
    if (res.headersSent) return this.answeredByFunction(req, res, started);
    const status = res.statusCode; // 200 unless the function set it
    if (!Number.isInteger(status) || status < 200 || status > 599) {
      const error = new RangeError(`invalid status ${status}: must be an integer from 200 to 599`);
      return this.failed(req, res, started, error);
    }
    let payload, contentType;
    try {
      [payload, contentType] = encodeBody(result);
    } catch (error) { // JSON.stringify: a BigInt, a cycle
      return this.failed(req, res, started, error);
    }
    this.metrics.observe(req.method, (performance.now() - started) / 1000, false);
    this.answer(req, res, started, status, payload, contentType);
  }

  failed(req, res, started, error) {
    if (error && error.code === INTERRUPTED) return this.interrupted(req, res, started);
    process.stderr.write(`${error && error.stack ? error.stack : errorMessage(error)}\n`);
    this.metrics.observe(req.method, (performance.now() - started) / 1000, true);
    this.answerError(req, res, started, 500, errorMessage(error));
  }

  /** The function writes the response itself: count the call once the response is complete. */
  answeredByFunction(req, res, started) {
    if (res.writableEnded) {
      this.metrics.observe(req.method, (performance.now() - started) / 1000, false);
      return this.logAccess(req, res.statusCode, started);
    }
    const call = new OpenCall(req, res, started, started + this.timeoutMs);
    this.openCalls.add(call);
    this.awaitFinish(call);
  }

  awaitFinish(call) {
    call.res.once('finish', () => {
      if (call.timedOut) return;
      this.openCalls.delete(call);
      this.metrics.observe(call.req.method, (performance.now() - call.started) / 1000, false);
      this.logAccess(call.req, call.res.statusCode, call.started);
    });
  }

  /** A synchronous call stopped by SIGINT: by the watchdog (a timeout) or by someone else (shutting down). */
  interrupted(req, res, started) {
    const sent = Atomics.load(this.state, SIGNALS_SENT);
    if (this.signalsSeen < sent) {
      this.signalsSeen = sent;
      this.metrics.observe(req.method, (performance.now() - started) / 1000, true);
      return this.answerTimeout(req, res, started);
    }
    this.answerError(req, res, started, 503, 'the function was interrupted: the runtime is stopping');
    this.stop();
  }

  answerTimeout(req, res, started) {
    this.answerError(req, res, started, 408, this.timeoutMessage, true);
  }

  /** A message from the runtime, without the headers the function may have set for its own answer; if the
   * function already began its response, the connection is cut (the client sees a truncated reply). */
  answerError(req, res, started, status, message, close = false) {
    if (res.headersSent) {
      res.destroy();
      return this.logAccess(req, status, started);
    }
    for (const name of res.getHeaderNames()) res.removeHeader(name);
    this.answer(req, res, started, status, message, TEXT_TYPE, close);
  }

  // -- writing

  answer(req, res, started, status, payload, contentType, close = false) {
    const headers = ['Access-Control-Allow-Origin', '*'];
    if (contentType && !res.hasHeader('content-type')) headers.push('Content-Type', contentType);
    if (BODYLESS_STATUSES.has(status)) {
      payload = '';
    } else {
      headers.push('Content-Length', typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length);
    }
    if (close || this.stopping) headers.push('Connection', 'close');
    http.ServerResponse.prototype.writeHead.call(res, status, headers);
    res.end(payload);
    this.logAccess(req, status, started);
  }

  logAccess(req, status, started) {
    this.log += `${this.clock.rfc3339()} ${req.method} ${req.url} ${status} ` +
      `${(performance.now() - started).toFixed(3)}ms\n`;
    if (this.log.length > LOG_BUFFER_LIMIT) this.flushLog();
  }

  flushLog() {
    if (this.log) {
      process.stdout.write(this.log);
      this.log = '';
    }
  }

  // -- housekeeping

  /** Every tick: show the watchdog the loop is alive, answer expired calls, flush the log. */
  housekeep() {
    const state = this.state;
    Atomics.add(state, BEAT, 1);
    if (this.queue.length > 0 && !this.runScheduled) this.runQueue(); // left by a terminateExecution
    const terminations = Atomics.load(state, TERMINATIONS);
    if (terminations !== this.terminationsSeen) {
      this.terminationsSeen = terminations;
      process.stderr.write('stopped a function blocking the event loop past its timeout\n');
      setImmediate(repairAsyncIdStack);
    }
    const now = performance.now();
    for (const call of this.openCalls) {
      if (call.deadline > now) break;
      this.expire(call);
    }
    if (this.sigint !== null && this.sigint.watchdogHasPendingSigint()) this.onPendingSigint();
    this.flushLog();
  }

  expire(call) {
    this.openCalls.delete(call);
    call.timedOut = true;
    if (call.pending) this.stuck += 1;
    this.metrics.observe(call.req.method, (performance.now() - call.started) / 1000, true);
    this.answerTimeout(call.req, call.res, call.started);
  }

  /** A SIGINT arrived while no synchronous call ran: the watchdog's, late, or a person's Ctrl-C. */
  onPendingSigint() {
    this.sigint.stopSigintWatchdog();
    this.sigint.startSigintWatchdog(); // clears the pending flag
    const sent = Atomics.load(this.state, SIGNALS_SENT);
    if (this.signalsSeen < sent) this.signalsSeen = sent; // the call it was meant for had just ended
    else this.stop();
  }

  startWatchdog() {
    const tickMs = Math.min(50, Math.max(this.timeoutMs / 10, 5));
    setInterval(() => this.housekeep(), tickMs).unref();
    try {
      // Its source alone (evaluated), not this file: the thread then loads no module it does not use (3 MB).
      const watchdog = new Worker(`(${runWatchdog})(require('worker_threads').workerData)`, { eval: true,
        workerData: { state: this.state, timeoutMs: this.timeoutMs, tickMs: Math.max(tickMs / 2, 5),
          terminationMs: Math.max(this.timeoutMs, RAW_TERMINATION_MIN_MS), sigint: this.sigint !== null,
          fields: { CALL_SEQ, IN_CALL, BEAT, SIGNALS_SENT, TERMINATIONS } } });
      watchdog.on('error', (error) => process.stderr.write(`the watchdog thread failed: ${error.stack}\n`));
      watchdog.unref();
    } catch (error) { // then a function that holds the event loop is not stopped; asynchronous timeouts still work
      process.stderr.write(`cannot start the watchdog thread: ${error.stack}\n`);
    }
  }

  stop() {
    if (this.stopping) return;
    this.stopping = true;
    this.http.close();
    if (this.http.closeIdleConnections) this.http.closeIdleConnections();
    const deadline = performance.now() + SHUTDOWN_GRACE_MS;
    const waitForCalls = () => {
      if (this.openCalls.size + this.queue.length > 0 && performance.now() < deadline) {
        return setTimeout(waitForCalls, 10);
      }
      this.flushLog();
      process.exit(0);
    };
    waitForCalls();
  }
}

/** Node's SIGINT helper thread, kept started; null where Node does not offer it (then sync loops are only
 * stopped by terminateExecution). process.binding('contextify') is the REPL's own binding. */
function startSigintHelper() {
  let binding;
  try {
    binding = process.binding('contextify');
  } catch {
    return null;
  }
  if (typeof binding.startSigintWatchdog !== 'function' || !binding.startSigintWatchdog()) return null;
  return binding;
}

const REPAIR = Symbol('repair the async id stack');

/** terminateExecution skips the code that pops Node's async-id stack; an uncaught exception that a listener
 * handles makes Node reset that stack, so throw one. */
function repairAsyncIdStack() {
  throw REPAIR;
}

// --- the watchdog thread ---------------------------------------------------------------------------------------

/** Runs in a worker thread: stops a function that holds the main thread's event loop past the timeout.
 * Self-contained, as its source is all the thread gets. */
function runWatchdog({ state, timeoutMs, tickMs, terminationMs, sigint, fields }) {
  const { CALL_SEQ, IN_CALL, BEAT, SIGNALS_SENT, TERMINATIONS } = fields;
  const { performance } = require('perf_hooks');
  let seq = -1;
  let beat = -1;
  let since = 0;
  let acted = false;
  let session = null;
  setInterval(() => {
    const now = performance.now();
    const currentSeq = Atomics.load(state, CALL_SEQ);
    const currentBeat = Atomics.load(state, BEAT);
    if (currentSeq !== seq || currentBeat !== beat) { // the main thread made progress
      [seq, beat, since, acted] = [currentSeq, currentBeat, now, false];
      return;
    }
    if (acted || now - since < timeoutMs) return;
    if (sigint && Atomics.load(state, IN_CALL) === 1 && Atomics.load(state, CALL_SEQ) === seq) {
      acted = true;
      Atomics.add(state, SIGNALS_SENT, 1);
      process.kill(process.pid, 'SIGINT');
      return;
    }
    if (now - since < terminationMs) return;
    acted = true;
    if (session === null) {
      session = new (require('inspector').Session)();
      session.connectToMainThread();
    }
    Atomics.add(state, TERMINATIONS, 1);
    session.post('Runtime.terminateExecution');
  }, tickMs);
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
    server.startWatchdog();
    process.on('SIGTERM', () => server.stop());
    if (server.sigint === null) process.on('SIGINT', () => server.stop());
    process.stdout.write(`serving ${qualifiedName(config)} on ${config.host}:${server.http.address().port}\n`);
  };
  server.http.once('error', listenFailed);
  try {
    server.http.listen(config.port, config.host, serving);
  } catch (error) { // a port out of range
    listenFailed(error);
  }
}

main();
