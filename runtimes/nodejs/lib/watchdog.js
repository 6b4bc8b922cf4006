'use strict';
/**
 * The watchdog: a worker thread that stops a function holding the main thread's event loop past the timeout,
 * which no timer on that loop could do. Two cases:
 *
 * - A synchronous call runs through `vm.Script#runInThisContext({breakOnSigint: true})` (see server.js). When one
 *   call has held the loop past the timeout, the thread sends the process SIGINT, V8 stops the script and `vm`
 *   turns that into an ordinary exception, answered with 408; the server keeps serving with its state intact.
 *   Node's SIGINT helper thread is kept started (the REPL's own mechanism, `startSigintWatchdog`), so a `vm` frame
 *   costs 1 to 2 us; `runInThisContext({timeout})` would start a watchdog thread per frame instead: 44 us.
 * - A CPU loop in asynchronous code (after an `await`, in a timer) blocks the loop outside any `vm` call. The
 *   thread then stops it with the inspector's `Runtime.terminateExecution` (a session it connects only at that
 *   moment), once the loop has been held for the timeout and at least RAW_TERMINATION_MIN_MS: a termination lands
 *   in whatever JavaScript runs, so it must not hit a long garbage collection under a tiny timeout. V8 drops the
 *   pending microtasks, so other calls in flight may lose their continuations: they get their 408 at their
 *   deadline, and like the stopped call they stay stuck. Node must run with `--no-force-async-hooks-checks` (the
 *   image's CMD), or a termination inside a timer callback aborts the process on its async-id stack check.
 *
 * Kubeless timed out synchronous code only, and then exited the process.
 *
 * Both threads load this file: the server's `Watchdog` starts the worker on it, and the worker runs `watch`. So the
 * state they share is defined once, and the worker loads none of the server's modules.
 */

const { Worker, isMainThread, workerData } = require('worker_threads');
const { performance } = require('perf_hooks');

const RAW_TERMINATION_MIN_MS = 1000;

// Fields of the Int32Array the two threads share, and which thread writes each.
const CALL_SEQ = 0; // +1 each time a synchronous call starts (main)
const IN_CALL = 1; // 1 while a synchronous call runs (main)
const BEAT = 2; // +1 every housekeeping tick (main)
const SIGNALS_SENT = 3; // SIGINTs sent to stop a synchronous call (watchdog)
const TERMINATIONS = 4; // terminateExecution requests (watchdog)
const STATE_FIELDS = 5;

/** Thrown by repairAsyncIdStack; the process' uncaughtException listener must ignore it. */
const REPAIR = Symbol('repair the async id stack');

/** The main thread's side: what the server tells the watchdog, and what it learns of the watchdog's actions. */
class Watchdog {
  constructor() {
    this.state = new Int32Array(new SharedArrayBuffer(STATE_FIELDS * Int32Array.BYTES_PER_ELEMENT));
    this.sigint = startSigintHelper();
    this.signalsSeen = 0;
    this.terminationsSeen = 0;
  }

  /** Whether SIGINT can stop a synchronous call; if not, only terminateExecution stops the loops. */
  get canInterrupt() {
    return this.sigint !== null;
  }

  /** Starts the thread, which expects a beat every beatMs: with neither a beat nor a new call for the timeout, it
   * acts. */
  start(timeoutMs, beatMs) {
    try {
      const thread = new Worker(__filename, { workerData: { state: this.state, timeoutMs,
        tickMs: Math.max(beatMs / 2, 5), terminationMs: Math.max(timeoutMs, RAW_TERMINATION_MIN_MS),
        sigint: this.canInterrupt } });
      thread.on('error', (error) => process.stderr.write(`the watchdog thread failed: ${error.stack}\n`));
      thread.unref();
    } catch (error) { // then a function that holds the event loop is not stopped; asynchronous timeouts still work
      process.stderr.write(`cannot start the watchdog thread: ${error.stack}\n`);
    }
  }

  beat() {
    Atomics.add(this.state, BEAT, 1);
  }

  callStarted() {
    Atomics.add(this.state, CALL_SEQ, 1);
    Atomics.store(this.state, IN_CALL, 1);
  }

  callEnded() {
    Atomics.store(this.state, IN_CALL, 0);
  }

  /** Accounts for the SIGINTs the watchdog sent: false if there was none new, so the SIGINT that arrived came from
   * someone else (e.g. Ctrl-C). */
  claimSignal() {
    const sent = Atomics.load(this.state, SIGNALS_SENT);
    if (this.signalsSeen >= sent) return false;
    this.signalsSeen = sent;
    return true;
  }

  /** A terminated call will not see the SIGINT that may have been sent for it: count every one sent so far. */
  dropSignals() {
    this.signalsSeen = Atomics.load(this.state, SIGNALS_SENT);
  }

  /** Reports a termination since the last tick; terminateExecution skipped the code that pops Node's async-id
   * stack, so the stack is repaired after it. */
  noticeTermination() {
    const terminations = Atomics.load(this.state, TERMINATIONS);
    if (terminations === this.terminationsSeen) return;
    this.terminationsSeen = terminations;
    process.stderr.write('stopped a function blocking the event loop past its timeout\n');
    setImmediate(repairAsyncIdStack);
  }

  /** Whether Node's SIGINT helper holds a SIGINT that stopped no script. */
  hasPendingSigint() {
    return this.sigint !== null && this.sigint.watchdogHasPendingSigint();
  }

  clearPendingSigint() {
    this.sigint.stopSigintWatchdog();
    this.sigint.startSigintWatchdog();
  }
}

/** Node's SIGINT helper thread, kept started; null where Node does not offer it. process.binding('contextify') is
 * the REPL's own binding. */
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

/** An uncaught exception that a listener handles makes Node reset its async-id stack. */
function repairAsyncIdStack() {
  throw REPAIR;
}

/** The worker thread's loop: acts once per stall of the main thread, SIGINT first if a synchronous call holds it. */
function watch({ state, timeoutMs, tickMs, terminationMs, sigint }) {
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

if (!isMainThread) watch(workerData);

module.exports = { Watchdog, REPAIR };
