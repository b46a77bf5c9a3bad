// Types for monty_wire_worker.mjs: monty-wire in a Web Worker, with a hard
// kill (browsers, and other hosts with module Web Workers; Node through
// worker_threads).
import type { MontyWireSource, PrintCallback, PrintDelivery } from "./monty_wire.js";
import { MontyWireError, MontyWireTrapped } from "./monty_wire.js";

export { MontyWireError, MontyWireTrapped };

/** `terminate()` was called: requests in flight reject with it, and so does everything afterwards. */
export declare class MontyWireTerminated extends Error {
  readonly name: "MontyWireTerminated";
  constructor(message: string);
}

/** Options of `MontyWireWorker.create`. */
export interface MontyWireWorkerOptions {
  /** The module; compiled once on the calling thread and posted to every worker. Default: dist/monty_wire.wasm. */
  wasm?: MontyWireSource | PromiseLike<MontyWireSource>;
  /** The worker script. Default: worker.mjs beside monty_wire_worker.mjs. */
  workerUrl?: string | URL;
  /**
   * Milliseconds a `dispatch` may run before its worker is killed and the
   * request answered `deadlineExceeded`, counted from when the worker starts
   * on it (not while it waits behind another request). Default: none.
   */
  timeout?: number;
  /**
   * Milliseconds added to a session's time limits (the smaller of
   * `maxFeedDuration` and `maxTurnDuration` of the `ResourceLimits` its
   * `openRun`, `loadProgram`, `openRepl`, `loadSession` or `setLimits` set)
   * to make the deadline of its requests that run Python. Default 1000;
   * `Infinity` turns these deadlines off (the `timeout` still applies).
   */
  grace?: number;
}

/** Options of `MontyWireWorker.openSession`. */
export interface WorkerSessionOptions {
  /** Live print output, posted from the worker as it is printed (before the response arrives). */
  onPrint?: PrintCallback | null;
  /**
   * How often `onPrint` is called, as for `MontyWire.openSession`: the worker
   * posts one message per delivery, so `"lines"` or an interval saves most of
   * the cost of posting each fragment. Kept for the session's life, also in a
   * fresh worker after a kill, as is a `setPrintDelivery` request the host
   * sends itself. `openSession` rejects with `TypeError` for a value that is
   * not a `PrintDelivery`.
   */
  printDelivery?: PrintDelivery;
}

/**
 * One worker running one monty-wire instance. A request that runs past its
 * deadline, is cancelled, or whose worker dies is answered with a
 * `protocolError` (`deadlineExceeded`, `cancelled`, `workerCrashed`); a
 * fresh worker then replaces the old one at once (the compiled module is
 * reused), and the worker's sessions are empty.
 */
export declare class MontyWireWorker {
  private constructor();
  static create(options?: MontyWireWorkerOptions): Promise<MontyWireWorker>;
  /** The protocol version the module speaks. */
  readonly protocolVersion: number;
  /** True after `terminate()`. */
  readonly terminated: boolean;
  /**
   * Sessions opened and not closed, including those a kill emptied. A
   * session dropped without `close()` counts until the garbage collector
   * reclaims it; it is then closed in the worker.
   */
  readonly sessionCount: number;
  /** Opens a session; rejects if the worker cannot start or load the module (the next call tries again). */
  openSession(options?: WorkerSessionOptions): Promise<WorkerSession>;
  /** Kills the worker now; requests in flight reject with `MontyWireTerminated`. Nothing works afterwards. */
  terminate(): void;
  /**
   * Kills the worker and starts a fresh one: a request it was running is
   * answered `cancelled`, and every session is empty. Resolves once the
   * fresh worker has loaded the module; rejects if it cannot (the next call
   * tries again) or after `terminate()`.
   */
  restart(): Promise<void>;
}

/** A session inside a `MontyWireWorker`'s worker. */
export declare class WorkerSession {
  private constructor();
  /** True after `close()`, or once its `MontyWireWorker` was terminated. */
  readonly closed: boolean;
  /** Live print output (forwarding is set up at `openSession`; pass `onPrint` there). */
  onPrint: PrintCallback | null;
  /**
   * Sends one `Request` message; resolves to the `Response` message, an
   * owned `Uint8Array`. A request view that covers its whole `ArrayBuffer` is
   * transferred to the worker (the caller's buffer is detached); any other
   * view is copied first. `timeout` (ms) overrides the worker's default;
   * it counts from when the worker starts on this request.
   *
   * A request whose worker was killed or died is answered, like any other,
   * with a `Response`: its `protocolError` is `deadlineExceeded`,
   * `cancelled` or `workerCrashed` (with `workerExit`), and the session is
   * empty afterwards; `workerUnavailable` when no worker could load the
   * module. Rejects only with `MontyWireError` (a closed session),
   * `MontyWireTerminated` (after `terminate()`) or `TypeError`.
   */
  dispatch(request: Uint8Array | ArrayBuffer, options?: { timeout?: number }): Promise<Uint8Array>;
  /**
   * Cancels this session's requests in flight: the one running is stopped
   * by killing the worker; it and those waiting are answered `cancelled`.
   * The session is empty afterwards. Returns true if there was one.
   */
  cancel(): boolean;
  /** Closes the session in its worker; closing it during one of its requests cancels that request. */
  close(): Promise<void>;
}
