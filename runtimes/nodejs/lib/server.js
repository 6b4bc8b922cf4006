'use strict';
/**
 * The HTTP server of one function: routes, body limit, calls, answers, access log and housekeeping.
 *
 * - The function runs on the event loop, in the process' own context (so `instanceof Array`, Buffer and Error
 *   mean what the function expects). Kubeless ran it in a new `vm` context per call instead.
 * - Requests are not answered from their parser callback: their calls are queued, and one `setImmediate` per turn
 *   of the event loop calls the function for all of them inside a single `vm` frame (which lets the watchdog stop
 *   a synchronous call, see watchdog.js), then writes their answers back to back. The frame's cost is shared, and
 *   the responses leave together, so the client wakes up less often: with 16 connections this serves as many
 *   requests per second as a bare `http` server that answers from its callback (bench/nodejs_runtime_throughput.py),
 *   where one `vm` call per request cost 40% of the throughput. Only the function's own calls run inside the
 *   frame, so an interruption stops nothing but that call; the rest of the queue continues in a new frame.
 * - An asynchronous call (a promise, or a response the function answers later) that is still open at its deadline
 *   gets a 408 from the housekeeping tick; it stays "stuck" until its promise settles, and FUNC_MAX_STUCK stuck
 *   calls turn /healthz to 503 so that the kubelet restarts the pod.
 * - The access log is buffered and written once per housekeeping tick: one syscall per tick, not per request.
 * - Slow clients: Node's own timers bound a request's head (`headersTimeout`, also from a connection's opening) and
 *   a kept-alive connection's wait for its next request (`keepAliveTimeout`), both FUNC_HEADER_TIMEOUT; a timer
 *   per body bounds the body to FUNC_READ_TIMEOUT. Connections beyond FUNC_MAX_CONNECTIONS are the reserve, which
 *   answers /healthz and /metrics only, so that the kubelet does not restart a pod that is merely busy.
 */

const http = require('http');
const vm = require('vm');
const { performance } = require('perf_hooks');
const { Metrics, PROMETHEUS_TYPE } = require('./metrics');
const { Watchdog } = require('./watchdog');
const {
  TEXT_TYPE, EMPTY_BODY, RequestError, FunctionRequest, FunctionResponse, newEvent, encodeBody, errorMessage,
} = require('./messages');

const DEFAULT_CORS_METHODS = 'GET, POST, PUT, PATCH, DELETE, OPTIONS';
const BODYLESS_STATUSES = new Set([204, 304]);
const RESERVE_CONNECTIONS = 32; // beyond FUNC_MAX_CONNECTIONS, for /healthz and /metrics
const RESERVE_HEADER_TIMEOUT_MS = 1000; // a reserve connection is closed after this (or FUNC_HEADER_TIMEOUT)
const RESERVE = Symbol('a connection of the reserve');
// The longest timer Node keeps (longer fire at once, or are cut with a warning), less the second Node 20 adds to the
// keep-alive timeout.
const MAX_TIMER_MS = 2 ** 31 - 1 - 1000;
const LOG_BUFFER_LIMIT = 64 * 1024;
const INTERRUPTED = 'ERR_SCRIPT_EXECUTION_INTERRUPTED';

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

/** An asynchronous call: its promise is pending, or the function answers through the response itself. */
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

function isThenable(value) {
  return value !== null && (typeof value === 'object' || typeof value === 'function') &&
    typeof value.then === 'function';
}

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
    this.queue = []; // QueuedCall: the calls of this turn of the event loop
    this.invoked = 0; // queue[0..invoked) have been called
    this.answered = 0; // queue[0..answered) have been answered (or await their promise)
    this.runScheduled = false;
    this.runQueueBound = () => this.runQueue();
    this.syncCall = null; // the QueuedCall whose function runs now
    this.watchdog = new Watchdog();
    Object.defineProperty(globalThis, '__kubelessInvoke', { value: () => this.invokeQueued() });
    this.invokeScript = new vm.Script('__kubelessInvoke()', { filename: 'kubeless-invoke' });
    this.invokeOptions = { breakOnSigint: this.watchdog.canInterrupt, displayErrors: false };
    const headerTimeoutMs = Math.min(MAX_TIMER_MS, Math.ceil(config.headerTimeout * 1000));
    this.readTimeoutMs = Math.min(MAX_TIMER_MS, Math.ceil(config.readTimeout * 1000));
    this.reserveTimeoutMs = Math.min(RESERVE_HEADER_TIMEOUT_MS, headerTimeoutMs);
    this.headTimeoutMessage = `request head not received within ${config.headerTimeout} s`;
    this.bodyTimeoutMessage = `request body not received within ${config.readTimeout} s`;
    this.connections = 0; // open, not counting the reserve
    this.http = http.createServer({ IncomingMessage: FunctionRequest, ServerResponse: FunctionResponse,
      headersTimeout: headerTimeoutMs,
      // a backstop only, never shorter than the two rules: the body's own timer answers first
      requestTimeout: headerTimeoutMs + this.readTimeoutMs,
      connectionsCheckingInterval: Math.max(5, Math.min(1000, Math.floor(headerTimeoutMs / 4))),
    }, (req, res) => this.onRequest(req, res));
    this.http.keepAliveTimeout = headerTimeoutMs;
    this.http.maxConnections = config.maxConnections + RESERVE_CONNECTIONS; // beyond: closed at once, by Node
    this.http.on('connection', (socket) => this.onConnection(socket));
    this.http.on('clientError', (error, socket) => this.onClientError(error, socket));
  }

  /** Counts the connections; one beyond FUNC_MAX_CONNECTIONS joins the reserve, for one request and a second. */
  onConnection(socket) {
    if (this.connections < this.config.maxConnections) {
      this.connections += 1;
      socket.once('close', () => { this.connections -= 1; });
      return;
    }
    socket[RESERVE] = true;
    const timer = setTimeout(() => socket.destroy(), this.reserveTimeoutMs);
    socket.once('close', () => clearTimeout(timer));
  }

  // -- routing

  onRequest(req, res) {
    const started = performance.now();
    const method = req.method;
    if (req.socket[RESERVE] === true) return this.onReserveRequest(req, res, started);
    if (method === 'OPTIONS') return this.preflight(req, res, started);
    if (method === 'GET') {
      const query = req.url.indexOf('?');
      const route = query < 0 ? req.url : req.url.slice(0, query);
      if (route === '/healthz') return this.answerHealth(req, res, started, false);
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

  /** A request on a connection beyond FUNC_MAX_CONNECTIONS: probes and metrics are answered, calls are not. */
  onReserveRequest(req, res, started) {
    const route = req.method === 'GET' ? req.url.split('?', 1)[0] : '';
    if (route === '/healthz') return this.answerHealth(req, res, started, true);
    if (route === '/metrics') {
      return this.answer(req, res, started, 200, this.metrics.render(this.stuck), PROMETHEUS_TYPE, true);
    }
    this.answer(req, res, started, 503, 'too many connections', TEXT_TYPE, true);
  }

  answerHealth(req, res, started, close) {
    if (this.stuck < this.config.maxStuckCalls) return this.answer(req, res, started, 200, 'OK', TEXT_TYPE, close);
    this.answer(req, res, started, 503, 'too many stuck calls', TEXT_TYPE, close);
  }

  readBody(req, res, started) {
    const chunks = [];
    let size = 0;
    let rejected = false;
    const timer = setTimeout(() => { // FUNC_READ_TIMEOUT after the head
      if (rejected) return req.socket.destroy(); // a 413 was sent; the rest of the body is still coming
      rejected = true;
      chunks.length = 0;
      this.answerError(req, res, started, 408, this.bodyTimeoutMessage, true);
    }, this.readTimeoutMs);
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
      clearTimeout(timer);
      if (!rejected) this.call(req, res, started, chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size));
    });
    req.on('error', () => clearTimeout(timer)); // the client went away: nothing to answer
    req.on('close', () => clearTimeout(timer));
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
    if (error.code === 'ECONNRESET' || !socket.writable || (socket._httpMessage && socket._httpMessage.headersSent)) {
      return socket.destroy(); // nothing to say, or an answer already begun on the connection
    }
    const timedOut = error.code === 'ERR_HTTP_REQUEST_TIMEOUT'; // the head took longer than FUNC_HEADER_TIMEOUT
    if (timedOut && socket.bytesRead === 0) return socket.destroy(); // a connection that sent nothing: no answer
    const [status, reason] = timedOut ? [408, 'Request Timeout']
      : error.code === 'HPE_HEADER_OVERFLOW' ? [431, 'Request Header Fields Too Large'] : [400, 'Bad Request'];
    const body = Buffer.from(timedOut ? this.headTimeoutMessage : `${reason}: ${error.code || error.message}`);
    socket.end(`HTTP/1.1 ${status} ${reason}\r\nAccess-Control-Allow-Origin: *\r\n` +
      `Content-Type: ${TEXT_TYPE}\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
    this.log += `${this.clock.rfc3339()} - - ${status} 0.000ms\n`;
  }

  // -- calling the function

  call(req, res, started, body) {
    let event;
    try {
      event = newEvent(req, res, body, this.clock);
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

  /** terminateExecution stopped a call (see watchdog.js): none of the code after it ran, so the call is still
   * marked as running. It is answered with the others, in order. */
  recoverTerminatedCall() {
    const call = this.callInProgress();
    this.endSyncCall();
    if (call === null) return;
    call.terminated = true;
    this.invoked += 1;
    this.watchdog.dropSignals();
  }

  /** The call an interruption stopped, or null if it fell between two calls (the one before is complete). */
  callInProgress() {
    return this.syncCall !== null && this.syncCall === this.queue[this.invoked] ? this.syncCall : null;
  }

  /** Runs inside the `vm` frame: nothing but the function's calls, so an interruption can only stop one. */
  invokeQueued() {
    const queue = this.queue;
    const watchdog = this.watchdog;
    while (this.invoked < queue.length) {
      const call = queue[this.invoked];
      this.syncCall = call;
      watchdog.callStarted();
      try {
        call.result = this.func(call.event, { ...this.context });
      } catch (error) {
        call.error = error;
        call.threw = true;
      }
      watchdog.callEnded();
      call.event = null;
      this.invoked += 1; // before syncCall is cleared: see callInProgress
      this.syncCall = null;
    }
  }

  endSyncCall() {
    this.watchdog.callEnded();
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
    if (this.watchdog.claimSignal()) {
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

  /** Starts the housekeeping tick, and the watchdog thread that stops a function holding the event loop, which
   * the tick cannot. */
  startHousekeeping() {
    const tickMs = Math.min(50, Math.max(this.timeoutMs / 10, 5));
    setInterval(() => this.housekeep(), tickMs).unref();
    this.watchdog.start(this.timeoutMs, tickMs);
  }

  /** Every tick: show the watchdog the loop is alive, answer expired calls, flush the log. */
  housekeep() {
    this.watchdog.beat();
    if (this.queue.length > 0 && !this.runScheduled) this.runQueue(); // left by a terminateExecution
    this.watchdog.noticeTermination();
    const now = performance.now();
    for (const call of this.openCalls) {
      if (call.deadline > now) break;
      this.expire(call);
    }
    if (this.watchdog.hasPendingSigint()) this.onPendingSigint();
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
    this.watchdog.clearPendingSigint();
    if (!this.watchdog.claimSignal()) this.stop(); // claimed: the call it was meant for had just ended
  }

  stop() {
    if (this.stopping) return;
    this.stopping = true;
    this.http.close();
    if (this.http.closeIdleConnections) this.http.closeIdleConnections();
    // the pod's grace period but for a margin (a second, or a tenth of a short one): the process exits, its log
    // flushed, before the kubelet's SIGKILL
    const grace = this.config.gracePeriod;
    const deadline = performance.now() + (grace - Math.min(1, grace / 10)) * 1000;
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

module.exports = { FunctionServer };
