// monty-wire in a Web Worker, for browsers: the only way to stop code that
// runs away (`while True: pass` with no time limit, or one long operation
// such as `10**10**8`) is to terminate the worker it runs in.
// MontyWireWorker does that when a request runs past its deadline, or when
// the host cancels it, and starts a fresh worker for what comes next.
//
//   import { MontyWireWorker } from "./monty_wire_worker.mjs";
//   const host = await MontyWireWorker.create({ timeout: 5000 });
//   const session = await host.openSession({ onPrint: (stream, text) => ... });
//   const response = await session.dispatch(requestBytes);   // an owned Uint8Array
//
// Like a native isolated session, a request whose worker was killed or died
// is answered with an ordinary `Response` carrying a `protocolError`:
// `deadlineExceeded`, `cancelled` or `workerCrashed`. The session is then
// empty again, and its next request runs in the fresh worker.
//
// Requests are posted as transferred ArrayBuffers and responses come back
// transferred, so the only copies are into and out of linear memory.
//
// Node has no global Worker: there the worker is a `worker_threads` thread
// behind the same interface (see nodeWorkerClass), with the same kill.
import * as C from "./codec/monty_wire_codec.mjs";
import { MontyWireError, MontyWireTrapped, compileMontyWire, printDeliveryRequest } from "./monty_wire.mjs";

export { MontyWireError, MontyWireTrapped };

const constructToken = Symbol("MontyWireWorker");
let hostDispatch, hostClose, hostCancel, sessionState;
// A SharedArrayBuffer cannot be transferred; it is copied instead.
const SharedArrayBufferOrNever = typeof SharedArrayBuffer === "function" ? SharedArrayBuffer : class Never {};

/** How much of what a dead worker wrote to stderr `WorkerExit.stderrTail` keeps (as native does). */
const STDERR_TAIL = 4096;
/** The default grace added to a session's time limits to make its deadline, in ms (as native does). */
const DEFAULT_GRACE = 1000;

/** `terminate()` was called: nothing works any more, and requests in flight reject with this. */
export class MontyWireTerminated extends Error {
  constructor(message) {
    super(message);
    this.name = "MontyWireTerminated";
  }
}

/**
 * A Web Worker made of a Node `worker_threads` Worker: what MontyWireWorker
 * uses of one (onmessage, onerror, postMessage, terminate). The thread keeps
 * Node's event loop alive only while a request is in flight (`ref`/`unref`),
 * as an idle Web Worker does not keep a page open.
 */
function nodeWorkerClass(threads) {
  return class NodeWorker {
    #thread;
    #terminated = false;
    onmessage = null;
    onerror = null;

    constructor(url, options) {
      this.#thread = new threads.Worker(url instanceof URL ? url : new URL(url), { name: options?.name });
      this.#thread.unref();
      this.#thread.on("message", (data) => this.onmessage?.({ data }));
      this.#thread.on("error", (error) =>
        this.onerror?.({ message: error?.message ?? String(error), outOfMemory: error?.code === "ERR_WORKER_OUT_OF_MEMORY" }),
      );
      this.#thread.on("exit", (code) => {
        if (!this.#terminated) this.onerror?.({ message: `the worker thread exited with code ${code}`, exitCode: code });
      });
    }

    postMessage(message, transfer) {
      this.#thread.postMessage(message, transfer);
    }

    terminate() {
      this.#terminated = true;
      this.#thread.terminate();
    }

    ref() {
      this.#thread.ref();
    }

    unref() {
      this.#thread.unref();
    }
  };
}

/** In Node, the Worker over worker_threads, once `needWorker()` made it. */
let NodeWorker;

/** The Worker constructor: the global one (looked up afresh each time), else NodeWorker. */
const workerClass = () => globalThis.Worker ?? NodeWorker;

/** Makes sure there is a Worker constructor, loading worker_threads in Node. */
async function needWorker() {
  if (workerClass() === undefined && typeof process !== "undefined" && process.versions?.node) {
    NodeWorker = nodeWorkerClass(await import("node:worker_threads"));
  }
  if (workerClass() === undefined) throw new TypeError("monty-wire: this environment has no Worker");
}

// --- the few fields of a request and a response the wrapper reads ---------

const R = C.Request_Which;
/** Requests that run Python: the session's time limits bound them, so its deadline applies. */
const RUNS_PYTHON = new Set([
  R.run,
  R.start,
  R.resumeCall,
  R.resumeOsCall,
  R.resumeNameLookup,
  R.resolveFutures,
  R.abort,
  R.feedRun,
  R.feedStart,
  R.callFunction,
]);
/** Requests that fill an empty session, answered `ok` when they did. */
const FILLS = new Set([R.openRun, R.loadProgram, R.openRepl, R.loadSession]);

/** `{ feed, turn, sleep }` of a `ResourceLimits`, in ms, each null when unlimited. */
function timeLimits(limits) {
  const ms = (which, nanos) => (which === 1 ? Number(nanos) / 1e6 : null);
  return {
    feed: ms(C.ResourceLimits_maxFeedDuration_which(limits), C.ResourceLimits_maxFeedDuration_nanos_number(limits)),
    turn: ms(C.ResourceLimits_maxTurnDuration_which(limits), C.ResourceLimits_maxTurnDuration_nanos_number(limits)),
    sleep: ms(C.ResourceLimits_maxTotalSleep_which(limits), C.ResourceLimits_maxTotalSleep_nanos_number(limits)),
  };
}

/**
 * What the wrapper needs of a request: its kind, and the time limits or the
 * dump key it sets. Bytes that are not a request the codec reads are left
 * to the module, which answers them with a `protocolError`.
 */
function inspectRequest(bytes) {
  try {
    const request = new C.Reader(bytes).root();
    const which = C.Request_which(request);
    switch (which) {
      case R.openRun:
        return { which, limits: timeLimits(C.OpenRun_limits(C.Request_openRun(request))) };
      case R.loadProgram:
        return { which, limits: timeLimits(C.LoadProgram_limits(C.Request_loadProgram(request))) };
      case R.openRepl:
        return { which, limits: timeLimits(C.OpenRepl_limits(C.Request_openRepl(request))) };
      case R.loadSession:
        return { which, limits: timeLimits(C.LoadSession_limits(C.Request_loadSession(request))) };
      case R.setLimits:
        return { which, limits: timeLimits(C.Request_setLimits(request)) };
      case R.setDumpKey:
        return { which, key: C.Request_setDumpKey(request).slice() };
      case R.setPrintDelivery:
        // The request itself, replayed in a fresh worker (the caller's buffer is transferred).
        return { which, request: bytes.slice().buffer };
      default:
        return { which };
    }
  } catch {
    return { which: -1 };
  }
}

/** True for a response whose arm is `ok`. */
function answeredOk(bytes) {
  try {
    return C.Response_which(new C.Reader(bytes).root()) === C.Response_Which.ok;
  } catch {
    return false;
  }
}

/**
 * A `Response` carrying only a `protocolError`, as the module writes one:
 * `code` of `ErrorCode`, `message`, and with `exit` a `WorkerExit`
 * (`{ exitCode, signal, outOfMemory, stderrTail }`). An owned Uint8Array.
 */
function protocolErrorResponse(code, message, exit) {
  const b = new C.Builder(256 + message.length * 3 + (exit ? exit.stderrTail.length * 3 : 0));
  const error = C.Response_init_protocolError(b, C.Response_newRoot(b));
  C.ProtocolError_set_code(b, error, code);
  C.ProtocolError_set_message(b, error, message);
  if (exit) {
    const e = C.ProtocolError_init_workerExit(b, error);
    C.WorkerExit_set_exitCode(b, e, exit.exitCode);
    C.WorkerExit_set_signal(b, e, exit.signal);
    C.WorkerExit_set_outOfMemory(b, e, exit.outOfMemory);
    C.WorkerExit_set_stderrTail(b, e, exit.stderrTail);
  }
  return b.finish().slice();
}

/** A `setDumpKey` request: replayed in a fresh worker, so a session's dump key carries over. */
function setDumpKeyRequest(key) {
  const b = new C.Builder(64 + key.byteLength);
  C.Request_set_setDumpKey(b, C.Request_newRoot(b), key);
  return b.finish().slice().buffer;
}

/** The last `STDERR_TAIL` bytes of `text`, whole characters. */
function tail(text) {
  const bytes = new TextEncoder().encode(text);
  return bytes.byteLength <= STDERR_TAIL ? text : new TextDecoder().decode(bytes.subarray(bytes.byteLength - STDERR_TAIL)).replace(/^\uFFFD+/, "");
}

/** A Rust allocation failure (the module's heap could not grow): how an out-of-memory trap reads. */
const OUT_OF_MEMORY = /memory allocation of \d+ bytes failed/;

/** A worker that runs one monty-wire instance, with a hard kill. */
export class MontyWireWorker {
  #options;
  #module;
  #grace;
  #worker = null;
  /** Bumped on every (re)start: sessions open in an older generation are empty. */
  #generation = 0;
  /** Resolves to the generation once its worker has loaded the module; null when there is no worker. */
  #ready = null;
  /** True once the current worker has loaded the module. */
  #loaded = false;
  /** Jobs waiting for the worker, in order: one is posted at a time. */
  #queue = [];
  /** The job posted to the worker and not answered yet, or null. */
  #running = null;
  #nextId = 1;
  #nextSession = 1;
  /** key -> WeakRef<WorkerSession>: every session opened and not closed (nor collected). */
  #sessions = new Map();
  /** Closes, in its worker, a session the host dropped without closing it. */
  #registry = new FinalizationRegistry((slot) => this.#forget(slot));
  #terminated = false;
  #protocolVersion = 0;

  constructor(token, options, module) {
    if (token !== constructToken) {
      throw new TypeError("use MontyWireWorker.create()");
    }
    this.#options = options;
    this.#module = module;
    this.#grace = options.grace ?? DEFAULT_GRACE;
  }

  /**
   * Compiles the module once (on this thread, asynchronously) and starts a
   * worker.
   * - `wasm`: what `MontyWire.load` accepts (default dist/monty_wire.wasm).
   * - `workerUrl`: the worker script (default worker.mjs beside this file).
   * - `timeout`: ms a `dispatch` may run before its worker is killed
   *   (default: none). It counts from when the worker starts on it.
   * - `grace`: ms added to a session's time limits to make the deadline of
   *   its requests that run Python (default 1000; Infinity turns it off).
   * A request past its deadline is answered `deadlineExceeded`, and a fresh
   * worker replaces the killed one at once (the compiled module is reused,
   * so that is quick).
   */
  static async create(options = {}) {
    await needWorker();
    const module = await compileMontyWire(options.wasm);
    const host = new MontyWireWorker(constructToken, options, module);
    await host.#start();
    return host;
  }

  /** The protocol version the module speaks. */
  get protocolVersion() {
    return this.#protocolVersion;
  }

  /** True after `terminate()`. */
  get terminated() {
    return this.#terminated;
  }

  /**
   * Sessions opened and not closed, including those emptied by a kill. A
   * session dropped without `close()` counts until the garbage collector
   * reclaims it; it is then closed in its worker.
   */
  get sessionCount() {
    return this.#sessions.size;
  }

  /**
   * Opens a session in the worker. `onPrint(stream, text)` gets live output,
   * and `printDelivery` says how often (as `MontyWire.openSession` does: each
   * fragment, `"lines"`, or at most once per that many ms): the worker posts
   * one message per delivery. Rejects if the worker cannot start or load the
   * module (the next call tries again), or after `terminate()`.
   */
  async openSession(options = {}) {
    this.#checkAlive();
    const onPrint = options.onPrint ?? null;
    const delivery = options.printDelivery === undefined ? null : printDeliveryRequest(options.printDelivery).buffer;
    const key = this.#nextSession++;
    const session = new WorkerSession(constructToken, this, key, onPrint);
    const state = sessionState(session);
    state.printDelivery = delivery;
    this.#sessions.set(key, new WeakRef(session));
    this.#registry.register(session, state.slot, session);
    try {
      await this.#enqueue({
        op: "open",
        session,
        message: { op: "open", session: key, print: Boolean(onPrint), setup: delivery === null ? [] : [delivery] },
      });
    } catch (error) {
      this.#sessions.delete(key);
      this.#registry.unregister(session);
      state.closed = true;
      throw error;
    }
    return session;
  }

  /**
   * Kills the worker at once, whatever it is running. Requests in flight
   * reject with `MontyWireTerminated`; nothing works afterwards (create a
   * new MontyWireWorker). To kill and keep going, use `restart()` or a
   * session's `cancel()`.
   */
  terminate() {
    this.#terminated = true;
    this.#kill({ kind: "terminate" });
  }

  /**
   * Kills the worker and starts a fresh one. A request it was running is
   * answered `cancelled`; every session is empty afterwards (one that held a
   * program answers its next request `cancelled`, see the README). Resolves
   * once the fresh worker is ready; rejects if it cannot start (the next
   * call tries again) or after `terminate()`.
   */
  async restart() {
    this.#checkAlive();
    this.#kill({ kind: "cancel", why: "the worker was restarted (restart()) during the request" });
    await this.#start();
  }

  // --- internals ----------------------------------------------------------

  #checkAlive() {
    if (this.#terminated) {
      throw new MontyWireTerminated("monty-wire: this MontyWireWorker was terminated; create a new one");
    }
  }

  #start() {
    const url = this.#options.workerUrl ?? new URL("./worker.mjs", import.meta.url);
    const Worker = workerClass();
    const worker = new Worker(url, { type: "module", name: "monty-wire" });
    this.#worker = worker;
    this.#loaded = false;
    const generation = ++this.#generation;
    worker.onmessage = ({ data }) => this.#onMessage(generation, data);
    worker.onerror = (event) => {
      event.preventDefault?.();
      if (this.#worker === worker) this.#died(event);
    };
    let settle;
    const ready = new Promise((resolve, reject) => (settle = { resolve, reject }));
    // Whoever needs the worker awaits `ready`; a failure nobody awaited is
    // not lost either: the next call starts another worker.
    ready.catch(() => {});
    this.#ready = ready;
    this.#post({
      op: "load",
      message: { op: "load", source: this.#module },
      resolve: (info) => {
        this.#protocolVersion = info.protocolVersion;
        this.#loaded = true;
        settle.resolve(generation);
      },
      reject: (error) => settle.reject(error),
    });
    return ready;
  }

  /** Replaces a worker that had to be killed, unless `terminate()` was called. */
  #replace() {
    if (!this.#terminated && this.#worker === null) {
      this.#start();
    }
  }

  /** Queues a job; resolves or rejects with its answer. Starts a worker if there is none. */
  #enqueue(job) {
    return new Promise((resolve, reject) => {
      job.resolve = resolve;
      job.reject = reject;
      this.#queue.push(job);
      if (this.#worker === null) {
        this.#start();
      } else {
        this.#pump();
      }
    });
  }

  /** Posts the next job when the worker is ready and idle. */
  #pump() {
    while (this.#running === null && this.#loaded && this.#queue.length > 0) {
      const job = this.#queue.shift();
      if (this.#prepare(job)) this.#post(job);
    }
  }

  /**
   * Makes a queued job ready to post to the current worker, or settles it
   * without posting (returns false): a request of a session that must first
   * hear that its worker was killed, or a close of a session that is not
   * open in this worker.
   */
  #prepare(job) {
    const { session } = job;
    if (job.op === "open") {
      sessionState(session).slot.generation = this.#generation;
      return true;
    }
    if (job.op === "close") {
      if (job.slot.generation !== this.#generation) {
        job.resolve(null);
        return false;
      }
      job.slot.generation = 0;
      return true;
    }
    // A dispatch.
    const state = sessionState(session);
    if (state.notice !== null) {
      const { code, message, exit } = state.notice;
      state.notice = null;
      job.resolve(protocolErrorResponse(code, message, exit));
      return false;
    }
    if (state.slot.generation !== this.#generation) {
      // Open it again in this worker (it is empty there), with its dump key
      // and its print delivery.
      const setup = [];
      if (state.dumpKey) setup.push(setDumpKeyRequest(state.dumpKey));
      if (state.printDelivery) setup.push(state.printDelivery);
      job.message.open = { print: Boolean(session.onPrint), setup };
      state.slot.generation = this.#generation;
    }
    // Its deadline: the host's timeout, or, for a request that runs Python,
    // the session's time limit plus the sleeps it may make (maxTotalSleep,
    // which monty's clocks do not count) plus the grace, whichever is
    // shorter; the rule of native isolated sessions.
    job.deadline = null;
    if (typeof job.timeout === "number" && Number.isFinite(job.timeout)) {
      job.deadline = { ms: job.timeout, why: `its timeout of ${job.timeout} ms` };
    }
    const limits = state.limits;
    if (RUNS_PYTHON.has(job.effect.which) && limits !== null) {
      const limit = Math.min(limits.feed ?? Infinity, limits.turn ?? Infinity) + (limits.sleep ?? 0);
      const ms = limit + this.#grace;
      if (Number.isFinite(ms) && (job.deadline === null || ms < job.deadline.ms)) {
        job.deadline = {
          ms,
          why: `its deadline of ${ms} ms (the session's time limit and sleeps, ${limit} ms, plus a grace of ${this.#grace} ms)`,
        };
      }
    }
    return true;
  }

  #post(job) {
    job.id = this.#nextId++;
    this.#running = job;
    this.#worker.ref?.(); // a Node thread: keep the process alive until the answer
    this.#worker.postMessage({ id: job.id, ...job.message }, job.transfer ?? []);
    if (job.deadline) {
      job.timer = setTimeout(() => {
        if (this.#running !== job) return;
        this.#kill({ kind: "deadline", why: `the request ran past ${job.deadline.why}, and its worker was killed` });
        this.#replace();
      }, job.deadline.ms);
    }
  }

  #onMessage(generation, data) {
    if (generation !== this.#generation) {
      return;
    }
    if (data.op === "print") {
      const onPrint = this.#sessions.get(data.session)?.deref()?.onPrint;
      if (typeof onPrint === "function") {
        try {
          onPrint(data.stream, data.text);
        } catch (error) {
          console.error("monty-wire: the onPrint callback threw:", error);
        }
      }
      return;
    }
    const job = this.#running;
    if (job === null || job.id !== data.id) {
      return;
    }
    if (data.error?.name === "MontyWireTrapped") {
      // The instance in the worker is dead: kill the worker, answering the
      // job (a worker that traps while loading the module is unavailable).
      const { message, stderr = "", exitCode } = data.error;
      const loaded = this.#loaded;
      this.#kill({
        kind: "crash",
        why: `the worker died during the request: its instance trapped (${message.split("\n")[0]})`,
        error: new MontyWireTrapped(message, { stderr }),
        exit: { exitCode: exitCode ?? -1, signal: 0, outOfMemory: OUT_OF_MEMORY.test(stderr), stderrTail: tail(stderr) },
      });
      if (loaded) this.#replace();
      return;
    }
    if (job.op === "load" && data.error) {
      // A worker that could not load the module is of no use. Drop it, so
      // the next call starts another instead of failing the same way for
      // ever.
      const { name, message } = data.error;
      this.#kill({ kind: "unavailable", why: `the worker could not load the module (${message})`, error: Object.assign(new MontyWireError(message), { name }) });
      return;
    }
    this.#running = null;
    clearTimeout(job.timer);
    if (this.#queue.length === 0) this.#worker?.unref?.();
    if (data.error) {
      const { name, message } = data.error;
      job.reject(Object.assign(new MontyWireError(message), { name }));
    } else if (job.op === "dispatch") {
      const response = new Uint8Array(data.result);
      this.#settled(job, response);
      job.resolve(response);
    } else {
      job.resolve(data.result);
    }
    this.#pump();
  }

  /** What an answered request did to its session: it holds a program now, new limits, a dump key, a print delivery. */
  #settled(job, response) {
    const { effect } = job;
    if (effect.which !== R.setDumpKey && effect.which !== R.setPrintDelivery && effect.limits === undefined) return;
    if (!answeredOk(response)) return;
    const state = sessionState(job.session);
    if (effect.which === R.setDumpKey) {
      state.dumpKey = effect.key.byteLength > 0 ? effect.key : null;
      return;
    }
    if (effect.which === R.setPrintDelivery) {
      state.printDelivery = effect.request;
      return;
    }
    state.limits = effect.limits;
    if (FILLS.has(effect.which)) state.holdsState = true;
  }

  /** The worker failed or its thread ended on its own. */
  #died(event) {
    const message = event.message ?? "error";
    const loaded = this.#loaded;
    this.#kill({
      kind: "crash",
      why: `the worker died: ${message}`,
      error: new MontyWireError(`monty-wire: the worker failed: ${message}`),
      exit: {
        exitCode: typeof event.exitCode === "number" ? event.exitCode : -1,
        signal: 0,
        outOfMemory: Boolean(event.outOfMemory),
        stderrTail: tail(message),
      },
    });
    // A worker that never loaded the module is not replaced at once: the
    // next call starts another (so a worker script that cannot load does
    // not start workers in a loop).
    if (loaded) this.#replace();
  }

  /**
   * Kills the worker. `cause.kind` is what happened:
   * - "deadline", "cancel", "crash": the request it was running is answered
   *   `deadlineExceeded`, `cancelled` or `workerCrashed`; every session of the
   *   worker is empty afterwards, and one that held a program answers its
   *   next request (without running it) `cancelled`, or `workerCrashed`
   *   after a crash. Queued requests stay queued for the next worker.
   * - "unavailable": the worker could not load the module; it and every
   *   queued job fail (requests are answered `workerUnavailable`).
   * - "terminate": everything in flight rejects with MontyWireTerminated.
   */
  #kill(cause) {
    if (this.#worker) {
      this.#worker.terminate();
      this.#worker = null;
    }
    const generation = this.#generation;
    const running = this.#running;
    this.#running = null;
    this.#ready = null;
    this.#loaded = false;
    if (running?.op === "load" && (cause.kind === "crash" || cause.kind === "unavailable")) {
      cause = { kind: "unavailable", why: cause.why, error: cause.error ?? new MontyWireError(`monty-wire: ${cause.why}`) };
    }
    const culprit = running?.session ?? null;
    if (running) {
      clearTimeout(running.timer);
      if (running.op === "open" && (cause.kind === "deadline" || cause.kind === "cancel")) {
        // Opening is harmless: do it again in the next worker.
        this.#queue.unshift(running);
      } else if (running.op === "load" && cause.kind === "cancel") {
        // restart() while the worker loaded: the queue waits for the next one.
        running.reject(new MontyWireError("monty-wire: the worker was restarted while it loaded the module"));
      } else {
        this.#answerKilled(running, cause, true);
      }
    }
    const who = culprit === null ? "" : ` during session ${sessionState(culprit).key}'s request`;
    for (const ref of this.#sessions.values()) {
      const session = ref.deref();
      if (session === undefined) continue;
      const state = sessionState(session);
      if (state.slot.generation !== generation) continue;
      state.slot.generation = 0;
      if (cause.kind === "terminate") {
        state.lost = true;
        continue;
      }
      if (state.holdsState && session !== culprit && state.notice === null && cause.kind !== "unavailable") {
        const crashed = cause.kind === "crash";
        state.notice = {
          code: crashed ? C.ErrorCode.workerCrashed : C.ErrorCode.cancelled,
          message: `monty-wire: this session's worker was lost${who}: ${cause.why}. The program this session held is gone: the session is empty again, and this request did not run`,
          exit: crashed ? cause.exit : undefined,
        };
      }
      state.holdsState = false;
      state.limits = null;
    }
    if (cause.kind === "terminate" || cause.kind === "unavailable") {
      const queued = this.#queue;
      this.#queue = [];
      for (const job of queued) this.#answerKilled(job, cause, false);
    }
    if (cause.kind === "terminate") {
      for (const ref of this.#sessions.values()) {
        const session = ref.deref();
        if (session !== undefined) this.#registry.unregister(session);
      }
      this.#sessions.clear();
    }
  }

  /** Answers a job its worker was killed under (`running`: it was the one posted). */
  #answerKilled(job, cause, running) {
    switch (cause.kind) {
      case "terminate":
        job.reject(new MontyWireTerminated("monty-wire: the worker was terminated"));
        return;
      case "unavailable":
        if (job.op === "dispatch") {
          job.resolve(protocolErrorResponse(C.ErrorCode.workerUnavailable, `monty-wire: ${cause.why}; this request did not run`));
        } else if (job.op === "close") {
          job.resolve(null);
        } else {
          job.reject(cause.error);
        }
        return;
      default:
        break;
    }
    if (job.op === "close") {
      job.resolve(null);
      return;
    }
    if (job.op !== "dispatch") {
      job.reject(cause.error ?? new MontyWireTerminated(`monty-wire: ${cause.why}`));
      return;
    }
    const code = { deadline: C.ErrorCode.deadlineExceeded, cancel: C.ErrorCode.cancelled, crash: C.ErrorCode.workerCrashed }[cause.kind];
    const state = sessionState(job.session);
    state.holdsState = false;
    state.limits = null;
    const other = running || job.session === null ? "" : " (this request had not started: it waited behind another)";
    job.resolve(
      protocolErrorResponse(code, `monty-wire: ${cause.why}; the session is empty again${other}`, cause.kind === "crash" ? cause.exit : undefined),
    );
  }

  /** A session the host dropped without closing it was collected. */
  #forget(slot) {
    if (!this.#sessions.has(slot.key) || this.#sessions.get(slot.key).deref() !== undefined) {
      return;
    }
    this.#sessions.delete(slot.key);
    if (slot.generation === this.#generation && this.#worker !== null) {
      this.#enqueue({ op: "close", slot, message: { op: "close", session: slot.key } }).catch(() => {});
    }
  }

  static {
    hostDispatch = (host, session, request, timeout) => {
      let buffer;
      if (request instanceof ArrayBuffer) {
        buffer = request;
      } else if (
        ArrayBuffer.isView(request) &&
        request.byteOffset === 0 &&
        request.byteLength === request.buffer.byteLength &&
        !(request.buffer instanceof SharedArrayBufferOrNever)
      ) {
        buffer = request.buffer;
      } else if (ArrayBuffer.isView(request)) {
        buffer = request.buffer.slice(request.byteOffset, request.byteOffset + request.byteLength);
      } else {
        return Promise.reject(new TypeError("dispatch: the request must be a Uint8Array or an ArrayBuffer"));
      }
      const state = sessionState(session);
      const effect = inspectRequest(new Uint8Array(buffer));
      if (state.notice !== null && host.#queue.every((job) => job.session !== session) && host.#running?.session !== session) {
        // Nothing of this session waits before it: say what happened now.
        const { code, message, exit } = state.notice;
        state.notice = null;
        return Promise.resolve(protocolErrorResponse(code, message, exit));
      }
      return host.#enqueue({
        op: "dispatch",
        session,
        effect,
        timeout: timeout ?? host.#options.timeout,
        message: { op: "dispatch", session: state.key, request: buffer },
        transfer: [buffer],
      });
    };
    hostClose = (host, session) => {
      const state = sessionState(session);
      host.#registry.unregister(session);
      host.#sessions.delete(state.key);
      if (host.#running?.session === session && host.#running.op === "dispatch") {
        // Closing a session during its request cancels it, as closing a
        // native isolated session does.
        hostCancel(host, session, "the session was closed during the request (close())");
        return Promise.resolve();
      }
      // Its requests still queued run first (they may open it in a fresh
      // worker); the close follows them.
      if ((state.slot.generation !== host.#generation || host.#worker === null) && host.#queue.every((job) => job.session !== session)) {
        return Promise.resolve();
      }
      return host.#enqueue({ op: "close", slot: state.slot, message: { op: "close", session: state.key } });
    };
    hostCancel = (host, session, why = "the host cancelled the request (cancel())") => {
      const state = sessionState(session);
      let cancelled = false;
      const kept = [];
      for (const job of host.#queue) {
        if (job.session === session && job.op === "dispatch") {
          host.#answerKilled(job, { kind: "cancel", why: `${why} before it started` }, true);
          cancelled = true;
        } else {
          kept.push(job);
        }
      }
      host.#queue = kept;
      if (host.#running?.session === session && host.#running.op === "dispatch") {
        host.#kill({ kind: "cancel", why: `${why}, and its worker was killed` });
        host.#replace();
        return true;
      }
      if (cancelled && state.slot.generation === host.#generation && host.#worker !== null) {
        // Nothing ran: empty the session all the same (the code says it
        // is), by closing it in the worker; its next request opens it again.
        host.#enqueue({ op: "close", slot: state.slot, message: { op: "close", session: state.key } }).catch(() => {});
      }
      return cancelled;
    };
  }
}

/** A session in a MontyWireWorker's worker. */
export class WorkerSession {
  #host;
  /** What the host keeps of the session (see sessionState). */
  #state;
  /** `(stream: "stdout" | "stderr", text) => void`, set at openSession. */
  onPrint;

  constructor(token, host, key, onPrint) {
    if (token !== constructToken) {
      throw new TypeError("use MontyWireWorker.openSession()");
    }
    this.#host = host;
    this.#state = {
      key,
      /** Where the session is open: `generation` is its worker's, or 0 when it must be opened again. Shared with the finalizer. */
      slot: { key, generation: 0 },
      /** True once a request filled it (openRun, loadProgram, openRepl, loadSession answered `ok`). */
      holdsState: false,
      /** `{ feed, turn }` of its time limits in ms, or null. */
      limits: null,
      /** The key of its last `setDumpKey`, replayed in a fresh worker; or null. */
      dumpKey: null,
      /** Its last `setPrintDelivery` request (an ArrayBuffer), replayed in a fresh worker; or null. */
      printDelivery: null,
      /** The error its next request is answered with: its worker was killed while it held a program. */
      notice: null,
      closed: false,
      /** Its MontyWireWorker was terminated. */
      lost: false,
    };
    this.onPrint = onPrint;
  }

  /** True after `close()`, or once its MontyWireWorker was terminated. */
  get closed() {
    return this.#state.closed || this.#state.lost;
  }

  /**
   * Sends one `Request` message; resolves to the `Response` message, an owned
   * Uint8Array. A request that covers its whole ArrayBuffer is transferred
   * (the caller's buffer is detached); any other view is copied first.
   * `timeout` (ms) overrides the worker's default for this request. A
   * request past its deadline, cancelled, or whose worker died is answered
   * with a `protocolError` (`deadlineExceeded`, `cancelled`,
   * `workerCrashed`); one whose worker cannot start, `workerUnavailable`.
   */
  dispatch(request, { timeout } = {}) {
    if (this.#state.lost) {
      return Promise.reject(new MontyWireTerminated("monty-wire: this session's MontyWireWorker was terminated"));
    }
    if (this.#state.closed) {
      return Promise.reject(new MontyWireError(`session ${this.#state.key} is closed`));
    }
    return hostDispatch(this.#host, this, request, timeout);
  }

  /**
   * Cancels this session's requests in flight: the one running is stopped by
   * killing the worker, and is answered `cancelled`, as are the session's
   * requests waiting behind another. The session is empty afterwards.
   * Returns true if there was a request to cancel.
   */
  cancel() {
    if (this.closed) return false;
    return hostCancel(this.#host, this);
  }

  /**
   * Closes the session (in its worker, if it is open there). Closing it
   * while one of its requests runs cancels that request.
   */
  async close() {
    if (this.closed) {
      return;
    }
    this.#state.closed = true;
    await hostClose(this.#host, this);
  }

  static {
    sessionState = (session) => session.#state;
  }
}
