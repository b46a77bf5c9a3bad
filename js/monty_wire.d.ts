// Types for monty_wire.mjs: the monty-wire WebAssembly module in a
// JavaScript host (browsers and Node 20+). Requests and responses are the
// framed, unpacked Cap'n Proto messages of schema/monty_wire.capnp.

/** Return codes of `monty_wire_session_close` / `monty_wire_set_print_*`. */
export declare const MONTY_WIRE_OK: 0;
export declare const MONTY_WIRE_UNKNOWN_SESSION: -1;
export declare const MONTY_WIRE_SESSION_BUSY: -2;
export declare const MONTY_WIRE_INTERNAL_ERROR: -3;

/** Which stream a piece of print output went to. */
export type PrintStream = "stdout" | "stderr";

/**
 * Receives print output live during `dispatch`: each fragment `print()`
 * writes, or what the session's `PrintDelivery` gathered of one stream.
 */
export type PrintCallback = (stream: PrintStream, text: string) => void;

/**
 * How often a session hands print output to `onPrint` (a `setPrintDelivery`
 * request, schema/monty_wire.capnp):
 * - `0` (the default): each fragment `print()` writes, at once
 *   (`print(i, 'x')` is four calls);
 * - `"lines"`: whole lines, one call per line; the rest of a line comes at a
 *   switch of stream or at the end of the request;
 * - milliseconds above 0 (`Infinity` too): everything gathered, in one call,
 *   at the first write once the oldest of it is that old. There is no timer:
 *   what nothing follows waits for the end of the request.
 * Whatever the choice, a write to the other stream first delivers what was
 * gathered, and everything is delivered before the response: the text, its
 * order and each response's `output` are the same.
 */
export type PrintDelivery = "lines" | number;

/**
 * The `setPrintDelivery` request message for `delivery` (48 bytes), for a
 * host that sends it itself. Throws `TypeError` for a value that is not a
 * `PrintDelivery`.
 */
export declare function printDeliveryRequest(delivery: PrintDelivery): Uint8Array;

/**
 * Where the module comes from: a URL or path (fetched; in Node, `file:` URLs
 * and plain paths are read from disk), a `Response` or a promise of one
 * (compiled while streaming when served as `application/wasm`), the bytes, or
 * a compiled `WebAssembly.Module`. Omitted: `dist/monty_wire.wasm` beside
 * monty_wire.mjs.
 */
export type MontyWireSource =
  | string
  | URL
  | Response
  | PromiseLike<Response>
  | ArrayBuffer
  | ArrayBufferView
  | WebAssembly.Module;

/** The instance trapped (a Rust panic, a stack overflow, out of memory) or exited, and is dead. */
export declare class MontyWireTrapped extends Error {
  readonly name: "MontyWireTrapped";
  /**
   * The engine's error: a `WebAssembly.RuntimeError`, a `RangeError` for an
   * exhausted call stack, or a `WasiExit`.
   */
  readonly cause?: unknown;
  /**
   * What the module itself wrote to stdout/stderr (WASI fd 1 and 2) during
   * the call that trapped: a Rust panic's message, if it was a panic. Never
   * Python output, which comes on descriptors of its own.
   */
  readonly stderr: string;
  constructor(message: string, options?: { cause?: unknown; stderr?: string });
}

/** A misuse or failure that leaves the instance alive (a closed session, no memory for a request). */
export declare class MontyWireError extends Error {
  readonly name: string;
  /** The library's return code, when there is one (`MONTY_WIRE_*`). */
  readonly code?: number;
  constructor(message: string, code?: number);
}

/** `proc_exit` called inside the module: the `cause` of the `MontyWireTrapped` that call throws. */
export declare class WasiExit extends Error {
  readonly name: "WasiExit";
  /** The exit code the module passed to `proc_exit`. */
  readonly exitCode: number;
  constructor(code: number);
}

/** The `wasi_snapshot_preview1` functions the glue implements; it answers any other the module imports with ENOSYS. */
export declare const WASI_IMPLEMENTED: readonly string[];

/** Compiles the module (see `MontyWireSource`); compile once, `load` many. */
export declare function compileMontyWire(source?: MontyWireSource | PromiseLike<MontyWireSource>): Promise<WebAssembly.Module>;

/** Options of `MontyWire.openSession`. */
export interface SessionOptions {
  /** Live print output; the same text is in every response's `output` too. */
  onPrint?: PrintCallback | null;
  /**
   * How often `onPrint` is called (default 0, each fragment). The session is
   * sent the `setPrintDelivery` request at once; `openSession` throws
   * `TypeError` for a value that is not a `PrintDelivery`.
   */
  printDelivery?: PrintDelivery;
}

/**
 * One instance of the module: its own linear memory and sessions. Calls are
 * synchronous and run on the calling thread: a long Python run blocks it. In
 * browsers, prefer `MontyWireWorker` (monty_wire_worker.mjs), which can kill
 * runaway code.
 */
export declare class MontyWire {
  private constructor();
  /**
   * Compiles (unless given a `WebAssembly.Module`) and instantiates the module, then calls its `_initialize`.
   * Rejects with `MontyWireError` if the module is not a monty-wire reactor (see scripts/build-wasm.sh).
   */
  static load(source?: MontyWireSource | PromiseLike<MontyWireSource>): Promise<MontyWire>;
  /** The protocol version the module speaks (`protocolVersion` in the schema). */
  readonly protocolVersion: number;
  /** True once the instance trapped: every call but `Session.close()` then throws `MontyWireTrapped`. */
  readonly dead: boolean;
  /** The instance's linear memory; its `buffer` is replaced whenever memory grows. */
  readonly memory: WebAssembly.Memory;
  /**
   * Sessions open in the module. A session dropped without `close()` counts
   * until the garbage collector reclaims it; the glue then closes it.
   */
  readonly sessionCount: number;
  /** Opens an empty session; its first request opens or loads a run or a REPL (`openRun`, `loadProgram`, `openRepl`, `loadSession`); `typeCheck`, `detectContinuation`, `setDumpKey` and `setPrintDelivery` are accepted in any state. */
  openSession(options?: SessionOptions): Session;
  /** Frees the last response buffer now, instead of at the next dispatch. Views of it must not be read afterwards. */
  releaseResponse(): void;
}

/** A session of a `MontyWire` instance. */
export declare class Session {
  private constructor();
  /** The instance the session lives in. */
  readonly wire: MontyWire;
  /** The module's u64 handle. */
  readonly handle: bigint;
  /** True after `close()`, or once the instance died. */
  readonly closed: boolean;
  /**
   * Live print output, called synchronously during `dispatch`; `null` turns
   * it off. Only what the Python program printed: never the module's own
   * stderr (such as a panic message). An exception it throws is reported
   * with `console.error` and otherwise ignored (it must not unwind through
   * the module).
   */
  onPrint: PrintCallback | null;
  /**
   * Sends one `Request` message and returns the `Response` message as a VIEW
   * on the instance's linear memory (zero copy, 8-byte aligned).
   *
   * The view is valid only until the next call into the same `MontyWire`
   * instance, whichever session it is on: the next `dispatch` frees the
   * buffer, and any call may grow memory, which detaches the view (it then
   * has length 0). Decode it, or copy it (`view.slice()`, `dispatchCopy`),
   * before anything else touches the instance.
   *
   * Every refusal (malformed bytes, wrong state) is a `protocolError`
   * response, not an exception. Throws `MontyWireTrapped` if the module
   * traps, `MontyWireError` if the session is closed.
   */
  dispatch(request: Uint8Array | ArrayBuffer | ArrayBufferView): Uint8Array;
  /** `dispatch`, returning an owned copy of the response (safe to keep). */
  dispatchCopy(request: Uint8Array | ArrayBuffer | ArrayBufferView): Uint8Array;
  /** Closes the session and frees its state. Never throws: closing twice, or on a dead instance, does nothing. */
  close(): void;
}
