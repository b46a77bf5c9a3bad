// monty-wire in a Web Worker, for browsers: the only way to stop code that
// runs away (`while True: pass` with no time limit) is to terminate the
// worker it runs in. MontyWireWorker does that on a per-request timeout, or
// when asked, and starts a fresh worker for the next request.
//
//   import { MontyWireWorker } from "./monty_wire_worker.mjs";
//   const host = await MontyWireWorker.create({ timeout: 5000 });
//   const session = await host.openSession({ onPrint: (stream, text) => ... });
//   const response = await session.dispatch(requestBytes);   // an owned Uint8Array
//
// Requests are posted as transferred ArrayBuffers and responses come back
// transferred, so the only copies are into and out of linear memory.
//
// Node has no global Worker: there the worker is a `worker_threads` thread
// behind the same interface (see nodeWorkerClass), with the same kill.
import { MontyWireError, MontyWireTrapped, compileMontyWire } from "./monty_wire.mjs";

export { MontyWireError, MontyWireTrapped };

const constructToken = Symbol("MontyWireWorker");
let hostDispatch, hostClose, sessionLost;
// A SharedArrayBuffer cannot be transferred; it is copied instead.
const SharedArrayBufferOrNever = typeof SharedArrayBuffer === "function" ? SharedArrayBuffer : class Never {};

/** A request ran past its timeout; the worker was terminated (and restarted). */
export class MontyWireTimeout extends Error {
  constructor(ms) {
    super(`monty-wire: the request did not finish within ${ms} ms; its worker was terminated`);
    this.name = "MontyWireTimeout";
    this.timeout = ms;
  }
}

/** The worker was terminated while a request was in flight, or the session died with it. */
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
      this.#thread.on("error", (error) => this.onerror?.({ message: error?.message ?? String(error) }));
      this.#thread.on("exit", (code) => {
        if (!this.#terminated) this.onerror?.({ message: `the worker thread exited with code ${code}` });
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

/** A worker that runs one monty-wire instance, with a hard kill. */
export class MontyWireWorker {
  #options;
  #module;
  #worker = null;
  /** Bumped on every (re)start: sessions of an older generation are gone. */
  #generation = 0;
  /** Resolves to the generation once its worker has loaded the module; null when there is none. */
  #ready = null;
  /** id -> { op, resolve, reject, timeout, timer } of requests posted and not answered. */
  #pending = new Map();
  #nextId = 1;
  /** id -> WeakRef<WorkerSession> of the current worker's sessions. */
  #sessions = new Map();
  /** Closes, in its worker, a session the host dropped without closing it. */
  #registry = new FinalizationRegistry(({ generation, id }) => this.#forget(generation, id));
  #terminated = false;
  #protocolVersion = 0;

  constructor(token, options, module) {
    if (token !== constructToken) {
      throw new TypeError("use MontyWireWorker.create()");
    }
    this.#options = options;
    this.#module = module;
  }

  /**
   * Compiles the module once (on this thread, asynchronously) and starts a
   * worker.
   * - `wasm`: what `MontyWire.load` accepts (default dist/monty_wire.wasm).
   * - `workerUrl`: the worker script (default worker.mjs beside this file).
   * - `timeout`: ms a `dispatch` may run before the worker is killed and
   *   restarted (default: no timeout). It counts from when the worker
   *   starts on the request, not from when it was queued behind another.
   * After a timeout or a trap the worker is replaced by a fresh one at once
   * (the compiled module is reused, so that is quick); sessions do not
   * survive it.
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
   * Sessions open in the current worker. A session dropped without
   * `close()` counts until the garbage collector reclaims it; it is then
   * closed in the worker.
   */
  get sessionCount() {
    return this.#sessions.size;
  }

  /** Opens a session in the worker. `onPrint(stream, text)` gets live output. */
  async openSession(options = {}) {
    const generation = await this.#alive();
    const onPrint = options.onPrint ?? null;
    const id = await this.#request(generation, { op: "open", print: Boolean(onPrint) });
    const session = new WorkerSession(constructToken, this, generation, id, onPrint);
    this.#sessions.set(id, new WeakRef(session));
    this.#registry.register(session, { generation, id }, session);
    return session;
  }

  /**
   * Kills the worker at once, whatever it is running. Requests in flight
   * reject with `MontyWireTerminated`; nothing works afterwards (create a
   * new MontyWireWorker). To kill and keep going, use `restart()`.
   */
  terminate() {
    this.#terminated = true;
    this.#kill(new MontyWireTerminated("monty-wire: the worker was terminated"));
  }

  /**
   * Kills the worker and starts a fresh one; all sessions are lost. Resolves
   * once the fresh worker is ready; rejects after `terminate()`.
   */
  async restart() {
    if (this.#terminated) {
      throw new MontyWireTerminated("monty-wire: this MontyWireWorker was terminated; create a new one");
    }
    this.#kill(new MontyWireTerminated("monty-wire: the worker was restarted"));
    await this.#start();
  }

  // --- internals ----------------------------------------------------------

  #start() {
    const url = this.#options.workerUrl ?? new URL("./worker.mjs", import.meta.url);
    const Worker = workerClass();
    const worker = new Worker(url, { type: "module", name: "monty-wire" });
    this.#worker = worker;
    const generation = ++this.#generation;
    worker.onmessage = ({ data }) => this.#onMessage(generation, data);
    worker.onerror = (event) => {
      event.preventDefault?.();
      if (this.#worker === worker) {
        this.#kill(new MontyWireTerminated(`monty-wire: the worker failed: ${event.message ?? "error"}`));
      }
    };
    const ready = this.#request(generation, { op: "load", source: this.#module }).then(
      (info) => {
        this.#protocolVersion = info.protocolVersion;
        return generation;
      },
      (error) => {
        // A worker that could not load the module is of no use. Drop it, so
        // the next call starts another instead of failing the same way for
        // ever.
        if (this.#worker === worker) {
          this.#kill(new MontyWireTerminated("monty-wire: the worker could not load the module"));
        }
        if (this.#ready === ready) {
          this.#ready = null;
        }
        throw error;
      },
    );
    this.#ready = ready;
    return ready;
  }

  /** Replaces a worker that had to be killed, unless `terminate()` was called. */
  #replace() {
    if (!this.#terminated && this.#ready === null) {
      // A failure here is not lost: the next call starts another worker.
      this.#start().catch(() => {});
    }
  }

  #kill(error) {
    if (this.#worker) {
      this.#worker.terminate();
      this.#worker = null;
    }
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    for (const { reject, timer } of pending) {
      clearTimeout(timer);
      reject(error);
    }
    for (const ref of this.#sessions.values()) {
      const session = ref.deref();
      if (session !== undefined) {
        sessionLost(session);
        this.#registry.unregister(session);
      }
    }
    this.#sessions.clear();
    this.#ready = null;
  }

  async #alive() {
    if (this.#terminated) {
      throw new MontyWireTerminated("monty-wire: this MontyWireWorker was terminated; create a new one");
    }
    if (this.#ready === null) {
      this.#start();
    }
    return this.#ready;
  }

  #request(generation, message, transfer = [], timeout) {
    if (generation !== this.#generation || this.#worker === null) {
      return Promise.reject(new MontyWireTerminated("monty-wire: the worker this belongs to is gone"));
    }
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      const limited = typeof timeout === "number" && Number.isFinite(timeout);
      this.#pending.set(id, { op: message.op, resolve, reject, timeout: limited ? timeout : null, timer: undefined });
      this.#worker.ref?.(); // a Node thread: keep the process alive until the answer
      this.#worker.postMessage({ id, ...message }, transfer);
    });
  }

  /** The worker began on request `id`: its timeout starts now. */
  #started(id) {
    const pending = this.#pending.get(id);
    if (pending === undefined || pending.timeout === null) {
      return;
    }
    pending.timer = setTimeout(() => {
      if (this.#pending.get(id) !== pending) return;
      this.#pending.delete(id);
      pending.reject(new MontyWireTimeout(pending.timeout));
      this.#kill(new MontyWireTerminated("monty-wire: the worker was terminated after another request timed out"));
      this.#replace();
    }, pending.timeout);
  }

  #onMessage(generation, data) {
    if (generation !== this.#generation) {
      return;
    }
    if (data.op === "started") {
      this.#started(data.id);
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
    const pending = this.#pending.get(data.id);
    if (!pending) {
      return;
    }
    this.#pending.delete(data.id);
    clearTimeout(pending.timer);
    if (this.#pending.size === 0) this.#worker?.unref?.();
    if (!data.error) {
      pending.resolve(data.result);
      return;
    }
    const { name, message, stderr } = data.error;
    if (name === "MontyWireTrapped") {
      // The instance in the worker is dead: replace the worker (unless it
      // died loading the module: the failed load drops it, and the next
      // call tries again).
      pending.reject(new MontyWireTrapped(message, { stderr }));
      if (pending.op !== "load") {
        this.#kill(new MontyWireTerminated("monty-wire: the worker's instance trapped"));
        this.#replace();
      }
    } else {
      pending.reject(Object.assign(new MontyWireError(message), { name }));
    }
  }

  /** A session the host dropped without closing it was collected. */
  #forget(generation, id) {
    if (generation !== this.#generation || this.#worker === null || this.#sessions.get(id)?.deref() !== undefined) {
      return;
    }
    this.#sessions.delete(id);
    this.#request(generation, { op: "close", session: id }).catch(() => {});
  }

  static {
    hostDispatch = (host, generation, id, request, timeout) => {
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
      return host
        .#request(generation, { op: "dispatch", session: id, request: buffer }, [buffer], timeout ?? host.#options.timeout)
        .then((response) => new Uint8Array(response));
    };
    hostClose = (host, session, generation, id) => {
      host.#registry.unregister(session);
      if (generation !== host.#generation || host.#worker === null) {
        return Promise.resolve();
      }
      host.#sessions.delete(id);
      return host.#request(generation, { op: "close", session: id });
    };
  }
}

/** A session in a MontyWireWorker's worker. */
export class WorkerSession {
  #host;
  #generation;
  #id;
  #lost = false;
  #closed = false;
  /** `(stream: "stdout" | "stderr", text) => void`, set at openSession. */
  onPrint;

  constructor(token, host, generation, id, onPrint) {
    if (token !== constructToken) {
      throw new TypeError("use MontyWireWorker.openSession()");
    }
    this.#host = host;
    this.#generation = generation;
    this.#id = id;
    this.onPrint = onPrint;
  }

  /** True after `close()`, or once its worker was terminated or restarted. */
  get closed() {
    return this.#closed || this.#lost;
  }

  /**
   * Sends one `Request` message; resolves to the `Response` message, an owned
   * Uint8Array. A request that covers its whole ArrayBuffer is transferred
   * (the caller's buffer is detached); any other view is copied first.
   * `timeout` (ms) overrides the worker's default for this request.
   */
  dispatch(request, { timeout } = {}) {
    if (this.#closed) {
      return Promise.reject(new MontyWireError(`session ${this.#id} is closed`));
    }
    if (this.#lost) {
      return Promise.reject(
        new MontyWireTerminated("monty-wire: this session's worker was terminated or restarted; open a new session"),
      );
    }
    return hostDispatch(this.#host, this.#generation, this.#id, request, timeout);
  }

  /** Closes the session (in its worker, if that is still running). */
  async close() {
    if (this.#closed) {
      return;
    }
    this.#closed = true;
    if (!this.#lost) {
      await hostClose(this.#host, this, this.#generation, this.#id);
    }
  }

  static {
    sessionLost = (session) => {
      session.#lost = true;
    };
  }
}
