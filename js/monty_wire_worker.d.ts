// Types for monty_wire_worker.mjs: monty-wire in a Web Worker, with a hard
// kill (browsers, and other hosts with module Web Workers).
import type { MontyWireSource, PrintCallback } from "./monty_wire.js";
import { MontyWireError, MontyWireTrapped } from "./monty_wire.js";

export { MontyWireError, MontyWireTrapped };

/** A request ran past its timeout; its worker was terminated and replaced. */
export declare class MontyWireTimeout extends Error {
  readonly name: "MontyWireTimeout";
  /** The timeout, in milliseconds. */
  readonly timeout: number;
  constructor(ms: number);
}

/** The worker was terminated (or replaced) while a request was in flight, or the session was lost with it. */
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
   * Milliseconds a `dispatch` may run before the worker is killed and
   * replaced, counted from when the worker starts on it (not while it waits
   * behind another request). Default: none.
   */
  timeout?: number;
}

/** Options of `MontyWireWorker.openSession`. */
export interface WorkerSessionOptions {
  /** Live print output, posted from the worker as it is printed (before the response arrives). */
  onPrint?: PrintCallback | null;
}

/**
 * One worker running one monty-wire instance. After a timeout or a trap the
 * worker is replaced at once by a fresh one (the compiled module is reused);
 * sessions do not survive that.
 */
export declare class MontyWireWorker {
  private constructor();
  static create(options?: MontyWireWorkerOptions): Promise<MontyWireWorker>;
  /** The protocol version the module speaks. */
  readonly protocolVersion: number;
  /** True after `terminate()`. */
  readonly terminated: boolean;
  /**
   * Sessions open in the current worker. A session dropped without
   * `close()` counts until the garbage collector reclaims it; it is then
   * closed in the worker.
   */
  readonly sessionCount: number;
  openSession(options?: WorkerSessionOptions): Promise<WorkerSession>;
  /** Kills the worker now; requests in flight reject with `MontyWireTerminated`. Nothing works afterwards. */
  terminate(): void;
  /**
   * Kills the worker and starts a fresh one; all sessions are lost. Resolves
   * once the fresh worker has loaded the module; rejects if it cannot (the
   * next call tries again) or after `terminate()`.
   */
  restart(): Promise<void>;
}

/** A session inside a `MontyWireWorker`'s worker. */
export declare class WorkerSession {
  private constructor();
  /** True after `close()`, or once its worker was terminated or replaced. */
  readonly closed: boolean;
  /** Live print output (forwarding is set up at `openSession`; pass `onPrint` there). */
  onPrint: PrintCallback | null;
  /**
   * Sends one `Request` message; resolves to the `Response` message, an
   * owned `Uint8Array`. A request view that covers its whole `ArrayBuffer` is
   * transferred to the worker (the caller's buffer is detached); any other
   * view is copied first. `timeout` (ms) overrides the worker's default;
   * it counts from when the worker starts on this request.
   * Rejects with `MontyWireTimeout`, `MontyWireTrapped`, `MontyWireTerminated`
   * or `MontyWireError`.
   */
  dispatch(request: Uint8Array | ArrayBuffer, options?: { timeout?: number }): Promise<Uint8Array>;
  /** Closes the session in its worker (if that is still running). */
  close(): Promise<void>;
}
