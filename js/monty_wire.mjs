// monty-wire for JavaScript: loads the wasm32-wasip1 build of monty-wire and
// exchanges Cap'n Proto request and response messages with it through its
// linear memory. No dependencies, no bundler; browsers and Node 20+.
//
//   import { MontyWire } from "./monty_wire.mjs";
//   const wire = await MontyWire.load();          // ./dist/monty_wire.wasm
//   const session = wire.openSession({ onPrint: (stream, text) => ... });
//   const response = session.dispatch(requestBytes);  // a view, read it now
//
// The messages are `Request` and `Response` of schema/monty_wire.capnp; any
// Cap'n Proto library reads and writes them (the tests use capnp-es).
//
// A trap inside the module (a Rust panic, a stack overflow, running out of
// memory) kills the instance: every later call throws `MontyWireTrapped`
// (with what the module wrote to stderr, such as the panic message), and
// `MontyWire.load()` makes a fresh one. Code that can run away is only
// stoppable from outside: in browsers, run it in a worker
// (monty_wire_worker.mjs), which can be terminated.

/** `monty_wire_session_close` / `monty_wire_set_print_*` return codes. */
export const MONTY_WIRE_OK = 0;
export const MONTY_WIRE_UNKNOWN_SESSION = -1;
export const MONTY_WIRE_SESSION_BUSY = -2;
export const MONTY_WIRE_INTERNAL_ERROR = -3;

const WASI = "wasi_snapshot_preview1";
// WASI errno values.
const ESUCCESS = 0;
const EBADF = 8;
const EINVAL = 28;
const ENOSYS = 52;
// The descriptors the glue knows. 0-2 are the module's own stdio (the Rust
// runtime writes a panic's message to 2); Python's print output comes on 3
// and 4 (see monty_wire_set_print_stdio in src/abi/wasm.rs), so it can never be
// mistaken for the module's.
const MODULE_STDOUT = 1;
const MODULE_STDERR = 2;
const PRINT_STDOUT = 3;
const PRINT_STDERR = 4;
// WASI filetype and rights, for fd_fdstat_get.
const FILETYPE_CHARACTER_DEVICE = 2;
const RIGHT_FD_READ = 1n << 1n;
const RIGHT_FD_WRITE = 1n << 6n;
// getRandomValues fills at most 65536 bytes per call.
const RANDOM_CHUNK = 65536;
// How much of what the module wrote to stderr during a call a trap error keeps.
const STDERR_TAIL = 8192;

/**
 * The message of a `setPrintDelivery` request (schema/monty_wire.capnp) for
 * `delivery`, the option `printDelivery` of `openSession`:
 * - `0` (the default), each fragment `print()` writes, at once;
 * - `"lines"`, whole lines: one call per line, the rest of a line at a
 *   switch of stream or the end of the request;
 * - a number of milliseconds above 0 (`Infinity` included): what was
 *   gathered, once the oldest of it is that old, at the next write or the
 *   end of the request.
 * Throws `TypeError` for anything else. A `Uint8Array` of 48 bytes: one
 * segment holding the `Request` (8 data bytes, 1 pointer: tag 21 at byte 0)
 * and its `PrintDelivery` (16 data bytes: tag at byte 0, `interval` in
 * nanoseconds at byte 8); js/test/glue.test.mjs checks it against the codec.
 */
export function printDeliveryRequest(delivery) {
  let tag;
  let nanos = 0;
  if (delivery === "lines") {
    tag = 1;
  } else if (typeof delivery === "number" && delivery >= 0) {
    nanos = delivery * 1e6;
    tag = nanos === 0 ? 0 : 2;
  } else {
    throw new TypeError(`printDelivery must be "lines" or a number of milliseconds (0: every fragment), not ${String(delivery)}`);
  }
  const bytes = new Uint8Array(48);
  const dv = new DataView(bytes.buffer);
  dv.setUint32(4, 5, true); // one segment of 5 words
  dv.setUint32(12, 0x00010001, true); // root: a struct right after it, 1 data word, 1 pointer
  dv.setUint16(16, 21, true); // Request: setPrintDelivery
  dv.setUint32(28, 2, true); // its pointer: a struct right after it, 2 data words
  dv.setUint16(32, tag, true);
  if (tag === 2) {
    // Nanoseconds as a u64 without a BigInt; from 2^64 on (Infinity too), the largest.
    const n = Math.round(nanos);
    const high = n >= 2 ** 64 ? 0xffffffff : Math.floor(n / TWO_32);
    dv.setUint32(40, n >= 2 ** 64 ? 0xffffffff : n - high * TWO_32, true);
    dv.setUint32(44, high, true);
  }
  return bytes;
}

/** Whether a response message's arm is `ok` (the tag at the start of the root's data). */
function answeredOk(bytes) {
  if (bytes.byteLength < 16) return false;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const segments = dv.getUint32(0, true) + 1;
  const root = (4 + 4 * segments + 7) & ~7;
  const low = dv.getUint32(root, true);
  if ((low & 3) !== 0 || root + 10 > bytes.byteLength) return false;
  const data = root + 8 + (low >> 2) * 8;
  return data + 2 <= bytes.byteLength && dv.getUint16(data, true) === 0;
}

const constructToken = Symbol("MontyWire");
let wireDispatch, wireSetPrint, wireClose, wireCheckAlive, sessionOrphan;
// Lengths and addresses cross the boundary as wasm i32, which JavaScript
// reads as signed: `u32(x)` is the unsigned value, right past 2 GiB too.
const u32 = (x) => x >>> 0;

/**
 * Views on a memory's buffer, made once and made again only when the buffer
 * changes: growing a WebAssembly memory detaches the old buffer, whose views
 * then have length 0. `views()` returns `{ u8, dv }` on the current buffer.
 */
function memoryViews(memory) {
  let current = null;
  return () => {
    if (current === null || current.u8.length === 0) {
      const buffer = memory().buffer;
      current = { u8: new Uint8Array(buffer), dv: new DataView(buffer) };
    }
    return current;
  };
}

const isNode = typeof process !== "undefined" && process.versions != null && process.versions.node != null;

/** The instance trapped (or exited) and is dead; load a new one. */
export class MontyWireTrapped extends Error {
  constructor(message, options = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "MontyWireTrapped";
    /** What the module wrote to stderr during the call that trapped (a Rust panic message). */
    this.stderr = options.stderr ?? "";
  }
}

/** A misuse or a failure that leaves the instance alive (closed session, out of memory). */
export class MontyWireError extends Error {
  constructor(message, code) {
    super(message);
    this.name = "MontyWireError";
    /** The library's return code, when there is one (MONTY_WIRE_*). */
    this.code = code;
  }
}

/** `proc_exit` from inside the module (the `cause` of a `MontyWireTrapped`): it cannot continue afterwards. */
export class WasiExit extends Error {
  constructor(code) {
    super(`the module called proc_exit(${code})`);
    this.name = "WasiExit";
    this.exitCode = code;
  }
}

/**
 * Compiles the module from whatever `source` is:
 * a `WebAssembly.Module`; a `Response` or a promise of one (streamed when
 * served as application/wasm); an `ArrayBuffer` or a typed array; a URL or a
 * string (fetched, or read from disk for `file:` URLs and plain paths in
 * Node). Without a source: `dist/monty_wire.wasm` beside this file.
 */
export async function compileMontyWire(source) {
  source = await source;
  if (source === undefined || source === null) {
    source = new URL("./dist/monty_wire.wasm", import.meta.url);
  }
  if (source instanceof WebAssembly.Module) {
    return source;
  }
  if (source instanceof ArrayBuffer || ArrayBuffer.isView(source)) {
    return WebAssembly.compile(source);
  }
  if (typeof Response !== "undefined" && source instanceof Response) {
    return compileResponse(source);
  }
  if (typeof source === "string" || source instanceof URL) {
    let url = null;
    try {
      url = new URL(source);
    } catch {
      // Not an absolute URL: a path (Node) or a URL relative to the page.
    }
    if (isNode && (url === null || url.protocol === "file:")) {
      const { readFile } = await import("node:fs/promises");
      return WebAssembly.compile(await readFile(url ?? source));
    }
    const response = await fetch(url ?? new URL(source, globalThis.location?.href));
    if (!response.ok) {
      throw new MontyWireError(`fetching ${response.url} failed: HTTP ${response.status}`);
    }
    return compileResponse(response);
  }
  throw new TypeError("monty-wire: the wasm source must be a URL, a path, a Response, bytes or a WebAssembly.Module");
}

async function compileResponse(response) {
  const type = response.headers.get("Content-Type") ?? "";
  if (typeof WebAssembly.compileStreaming === "function" && type.split(";")[0].trim() === "application/wasm") {
    return WebAssembly.compileStreaming(response);
  }
  return WebAssembly.compile(await response.arrayBuffer());
}

/** What `load()` needs the module to export. */
const REQUIRED_EXPORTS = [
  "memory",
  "_initialize",
  "monty_wire_protocol_version",
  "monty_wire_session_open",
  "monty_wire_session_close",
  "monty_wire_dispatch",
  "monty_wire_buffer_free",
  "monty_wire_alloc",
  "monty_wire_dealloc",
  "monty_wire_set_print_stdio",
];

/**
 * One instance of the module: its own linear memory, sessions and state.
 * Single-threaded: a JavaScript realm uses it from its own thread only.
 */
export class MontyWire {
  #exports;
  #memory;
  /** The error that killed the instance, or null while it is alive. */
  #death = null;
  /** Address of the response buffer (MontyWireBuffer*) last returned, or 0. */
  #response = 0;
  /** The session inside `dispatch` right now (its live print output goes there). */
  #current = null;
  /** One streaming UTF-8 decoder per descriptor the module writes to. */
  #decoders = new Map();
  /** What the module itself wrote to stdout/stderr (fd 1, 2) during the current call. */
  #moduleOutput = "";
  /** Open sessions: handle -> WeakRef<Session>. A forgotten session is closed once collected. */
  #sessions = new Map();
  #registry = new FinalizationRegistry((handle) => this.#forget(handle));
  /** True while a call into the module runs (it must not be re-entered from onPrint). */
  #inside = false;
  /** `() => { u8, dv }`: views on linear memory, shared with the WASI functions. */
  #views;
  /** The buffer in linear memory requests are copied into, reused while they fit (0: none yet). */
  #requestPtr = 0;
  #requestCapacity = 0;

  /** Use `MontyWire.load()`. */
  constructor(token, instance, views) {
    if (token !== constructToken) {
      throw new TypeError("use MontyWire.load() to create a MontyWire");
    }
    this.#exports = instance.exports;
    this.#memory = instance.exports.memory;
    this.#views = views;
  }

  /**
   * Compiles (see `compileMontyWire`) and instantiates the module. A
   * `WebAssembly.Module` compiled once can be passed again to instantiate
   * more instances cheaply.
   */
  static async load(source) {
    const module = await compileMontyWire(source);
    const exported = new Set(WebAssembly.Module.exports(module).map((e) => e.name));
    const missing = REQUIRED_EXPORTS.filter((name) => !exported.has(name));
    if (missing.length > 0) {
      throw new MontyWireError(
        `this is not a monty-wire reactor module (built by scripts/build-wasm.sh): it does not export ${missing.join(", ")}`,
      );
    }
    let wire = null;
    const views = memoryViews(() => wire.#memory);
    const imports = wasiImports(module, {
      views,
      write: (fd, bytes) => wire.#write(fd, bytes),
    });
    const instance = await WebAssembly.instantiate(module, imports);
    wire = new MontyWire(constructToken, instance, views);
    // A WASI reactor: `_initialize` runs once, before any other export.
    wire.#call(() => instance.exports._initialize());
    return wire;
  }

  /** The protocol version the module speaks (`protocolVersion` in the schema). */
  get protocolVersion() {
    return this.#call(() => this.#exports.monty_wire_protocol_version());
  }

  /** True once the instance trapped; every call but `close()` then throws. */
  get dead() {
    return this.#death !== null;
  }

  /** The instance's linear memory (its `buffer` changes when it grows). */
  get memory() {
    return this.#memory;
  }

  /**
   * How many sessions are open in the module: opened and not closed. A
   * session the host dropped without closing counts until the garbage
   * collector has reclaimed it, at which point the glue closes it.
   */
  get sessionCount() {
    return this.#sessions.size;
  }

  /**
   * Opens an empty session. `onPrint(stream, text)` receives print output
   * live, while `dispatch` runs (the same text is in the response too).
   * `printDelivery` (see `printDeliveryRequest`) says how often: each
   * fragment (0, the default), `"lines"`, or at most once per that many
   * milliseconds; the session is sent that `setPrintDelivery` request at
   * once (a host may also send one itself, at any time).
   */
  openSession(options = {}) {
    const delivery = options.printDelivery === undefined ? null : printDeliveryRequest(options.printDelivery);
    const handle = this.#call(() => this.#exports.monty_wire_session_open());
    const session = new Session(constructToken, this, handle);
    this.#sessions.set(handle, new WeakRef(session));
    this.#registry.register(session, handle, session);
    if (delivery !== null && !answeredOk(session.dispatchCopy(delivery))) {
      session.close();
      throw new MontyWireError("monty-wire: the module refused the setPrintDelivery request (a module older than protocol 3?)");
    }
    if (options.onPrint) {
      session.onPrint = options.onPrint;
    }
    return session;
  }

  /**
   * Frees the last response buffer now instead of at the next dispatch. Any
   * view `dispatch` returned must not be read afterwards.
   */
  releaseResponse() {
    if (this.#response !== 0 && this.#death === null) {
      const buffer = this.#response;
      this.#response = 0;
      this.#call(() => this.#exports.monty_wire_buffer_free(buffer));
    }
  }

  // Module-private access for Session (not part of the API).
  static {
    wireDispatch = (wire, session, handle, request) => wire.#dispatch(session, handle, request);
    wireSetPrint = (wire, handle, enabled) => {
      const code = wire.#call(() => wire.#exports.monty_wire_set_print_stdio(handle, enabled ? 1 : 0));
      if (code !== MONTY_WIRE_OK) {
        throw new MontyWireError(`monty_wire_set_print_stdio failed with code ${code}`, code);
      }
    };
    wireClose = (wire, session, handle) => {
      wire.#sessions.delete(handle);
      wire.#registry.unregister(session);
      if (wire.#death === null) {
        wire.#call(() => wire.#exports.monty_wire_session_close(handle));
      }
      // On a dead instance there is nothing left to free.
    };
    wireCheckAlive = (wire) => wire.#call(() => undefined);
  }

  // --- internals -------------------------------------------------------

  #dispatch(session, handle, request) {
    if (!(request instanceof Uint8Array)) {
      if (request instanceof ArrayBuffer) {
        request = new Uint8Array(request);
      } else if (ArrayBuffer.isView(request)) {
        request = new Uint8Array(request.buffer, request.byteOffset, request.byteLength);
      } else {
        throw new TypeError("dispatch: the request must be a Uint8Array (or another ArrayBuffer view)");
      }
    }
    if (request.buffer === this.#views().u8.buffer) {
      // A view on linear memory (an earlier response, say) would be freed or
      // overwritten below: copy it out first.
      request = request.slice();
    }
    const len = request.byteLength;
    const exports = this.#enter();
    let buffer = -1;
    try {
      // The turn loop's path: free the last response, copy the request into
      // the reused request buffer, dispatch. One entry into the glue's
      // guard, no closures, views made again only when memory grew.
      if (this.#response !== 0) {
        const last = this.#response;
        this.#response = 0;
        exports.monty_wire_buffer_free(last);
      }
      if (len <= this.#requestCapacity || this.#growRequestBuffer(exports, len)) {
        const ptr = this.#requestPtr;
        this.#views().u8.set(request, ptr);
        this.#current = session;
        buffer = u32(exports.monty_wire_dispatch(handle, ptr, len));
      }
    } catch (error) {
      throw this.#trapped(error);
    } finally {
      this.#current = null;
      this.#leave();
    }
    if (buffer === -1) {
      throw new MontyWireError(`out of memory: cannot place a ${len}-byte request in linear memory`);
    }
    this.#response = buffer;
    // struct MontyWireBuffer { const uint8_t *data; size_t len; } on wasm32.
    const { u8, dv } = this.#views();
    return new Uint8Array(u8.buffer, dv.getUint32(buffer, true), dv.getUint32(buffer + 4, true));
  }

  /**
   * Replaces the request buffer with one of at least `len` bytes (inside
   * the guard of #enter). False when the module has no memory left for it:
   * then there is no request buffer.
   */
  #growRequestBuffer(exports, len) {
    if (this.#requestPtr !== 0) {
      exports.monty_wire_dealloc(this.#requestPtr, this.#requestCapacity);
      this.#requestPtr = 0;
      this.#requestCapacity = 0;
    }
    // Rounded up to a power of two (at least 1 KiB), so a growing series of
    // requests reallocates rarely; large requests get their exact size.
    const capacity = len <= 1 << 20 ? Math.max(1024, 2 ** Math.ceil(Math.log2(len))) : len;
    const ptr = u32(exports.monty_wire_alloc(capacity));
    if (ptr === 0) {
      return false;
    }
    this.#requestPtr = ptr;
    this.#requestCapacity = capacity;
    return true;
  }

  /** Enters the module's guard (see #call) and returns its exports. Pair with #leave in a finally. */
  #enter() {
    if (this.#death !== null) {
      throw new MontyWireTrapped(
        `monty-wire: this instance is dead (it trapped earlier: ${describe(this.#death)}); load a new one with MontyWire.load()`,
        { cause: this.#death },
      );
    }
    if (this.#inside) {
      throw new MontyWireError("monty-wire: the instance cannot be called from inside one of its own calls (from onPrint)");
    }
    this.#moduleOutput = "";
    this.#inside = true;
    return this.#exports;
  }

  /** Leaves the guard; reports what the module wrote to its own stdio if it carried on. */
  #leave() {
    this.#inside = false;
    if (this.#moduleOutput !== "" && this.#death === null) {
      // The module wrote to its own stdout/stderr and carried on: not
      // Python output (that comes on descriptors 3 and 4), so not onPrint's.
      console.error(`monty-wire: the module wrote: ${this.#moduleOutput.trimEnd()}`);
      this.#moduleOutput = "";
    }
  }

  /** An exception out of the module: the instance is dead. Returns the MontyWireTrapped to throw. */
  #trapped(error) {
    this.#die(error);
    const stderr = this.#moduleOutput;
    this.#moduleOutput = "";
    return new MontyWireTrapped(
      `monty-wire: the WebAssembly instance trapped (${describe(error)}) and is dead; load a new one with MontyWire.load()` +
        (stderr ? `\n${stderr.trimEnd()}` : ""),
      { cause: error, stderr },
    );
  }

  /** Calls into the module; any exception out of it kills the instance. */
  #call(f) {
    this.#enter();
    try {
      return f();
    } catch (error) {
      throw this.#trapped(error);
    } finally {
      this.#leave();
    }
  }

  #die(error) {
    this.#death = error;
    this.#response = 0;
    this.#requestPtr = 0;
    this.#requestCapacity = 0;
    this.#exports = null;
    for (const ref of this.#sessions.values()) {
      const session = ref.deref();
      if (session !== undefined) {
        sessionOrphan(session);
        this.#registry.unregister(session);
      }
    }
    this.#sessions.clear();
  }

  /** A session the host dropped without closing it was collected: close it in the module. */
  #forget(handle) {
    if (!this.#sessions.delete(handle) || this.#death !== null) {
      return;
    }
    this.#closeForgotten(handle);
  }

  #closeForgotten(handle) {
    if (this.#death !== null) {
      return;
    }
    if (this.#inside) {
      // Finalizers run as tasks of their own, never inside a call; but if
      // one ever did, closing would re-enter the module. Try again later.
      setTimeout(() => this.#closeForgotten(handle), 0);
      return;
    }
    try {
      this.#call(() => this.#exports.monty_wire_session_close(handle));
    } catch {
      // It trapped: the instance is dead now, and #call recorded why.
    }
  }

  /**
   * `fd_write` to a descriptor the glue knows. 3 and 4: Python's live print
   * output, for the session inside `dispatch`. 1 and 2: the module's own
   * output (a Rust panic's message, just before it traps), kept for
   * `MontyWireTrapped.stderr`.
   */
  #write(fd, bytes) {
    let decoder = this.#decoders.get(fd);
    if (decoder === undefined) {
      decoder = new TextDecoder("utf-8");
      this.#decoders.set(fd, decoder);
    }
    const text = decoder.decode(bytes, { stream: true });
    if (text === "") {
      return;
    }
    if (fd === MODULE_STDOUT || fd === MODULE_STDERR) {
      this.#moduleOutput = (this.#moduleOutput + text).slice(-STDERR_TAIL);
      return;
    }
    const onPrint = this.#current?.onPrint;
    if (typeof onPrint === "function") {
      try {
        onPrint(fd === PRINT_STDOUT ? "stdout" : "stderr", text);
      } catch (error) {
        // An exception must not unwind through the module (that would kill
        // it); report it and carry on.
        console.error("monty-wire: the onPrint callback threw:", error);
      }
    }
  }
}

/** One interpreter session of a `MontyWire` instance. */
export class Session {
  #wire;
  #handle;
  #onPrint = null;
  #closed = false;

  /** Use `MontyWire.openSession()`. */
  constructor(token, wire, handle) {
    if (token !== constructToken) {
      throw new TypeError("use MontyWire.openSession() to create a Session");
    }
    this.#wire = wire;
    this.#handle = handle;
  }

  /** The `MontyWire` instance this session lives in. */
  get wire() {
    return this.#wire;
  }

  /** The session's handle in the module (a u64, as a BigInt). */
  get handle() {
    return this.#handle;
  }

  /** True after `close()`, or once the instance died. */
  get closed() {
    return this.#closed;
  }

  /**
   * Live print output: `(stream: "stdout" | "stderr", text: string) => void`,
   * called during `dispatch`; null turns it off. Exceptions it throws are
   * reported with console.error and otherwise ignored.
   */
  get onPrint() {
    return this.#onPrint;
  }

  set onPrint(callback) {
    if (callback !== null && callback !== undefined && typeof callback !== "function") {
      throw new TypeError("onPrint must be a function or null");
    }
    this.#check();
    wireSetPrint(this.#wire, this.#handle, Boolean(callback));
    this.#onPrint = callback ?? null;
  }

  /**
   * Sends one `Request` message and returns the `Response` message.
   *
   * The result is a VIEW on the instance's linear memory, not a copy. It is
   * valid only until the next call into this `MontyWire` instance (another
   * `dispatch` on any of its sessions, `releaseResponse()`, `openSession()`,
   * `close()`, setting `onPrint`): the buffer is freed at the next dispatch,
   * and any call may grow memory, which detaches the view (it then reads as
   * empty). Decode it, or copy it (`dispatchCopy`), before anything else.
   */
  dispatch(request) {
    this.#check();
    return wireDispatch(this.#wire, this, this.#handle, request);
  }

  /** `dispatch`, returning an owned copy of the response (always safe to keep). */
  dispatchCopy(request) {
    const view = this.dispatch(request);
    const copy = view.slice();
    this.#wire.releaseResponse();
    return copy;
  }

  /** Closes the session and frees its state. Closing twice, or on a dead instance, does nothing. */
  close() {
    if (this.#closed) {
      return;
    }
    this.#closed = true;
    wireClose(this.#wire, this, this.#handle);
  }

  static {
    sessionOrphan = (session) => {
      session.#closed = true;
    };
  }

  #check() {
    wireCheckAlive(this.#wire); // throws MontyWireTrapped on a dead instance
    if (this.#closed) {
      throw new MontyWireError(`session ${this.#handle} is closed`, MONTY_WIRE_UNKNOWN_SESSION);
    }
  }
}

function describe(error) {
  if (error instanceof Error) {
    return `${error.name}: ${error.message}`;
  }
  return String(error);
}

/**
 * The WASI preview1 functions the module imports, as far as a sandbox
 * needs them: clocks, random bytes, output, an empty environment and
 * argument list, no preopened directories, `proc_exit` (throws) and
 * `sched_yield`. Every other WASI function the module declares returns
 * ENOSYS. Every address and length the module passes is an unsigned i32.
 */
function wasiImports(module, host) {
  const implemented = wasiFunctions(host);
  const wasi = {};
  for (const { module: from, name, kind } of WebAssembly.Module.imports(module)) {
    if (from !== WASI || kind !== "function") {
      throw new MontyWireError(`the module imports ${from}.${name} (${kind}), which monty-wire's glue does not provide`);
    }
    wasi[name] = implemented[name] ?? (() => ENOSYS);
  }
  if (wasi.clock_time_get === implemented.clock_time_get) {
    wasi.clock_time_get = dropPrecision(implemented[CLOCK]);
  }
  return { [WASI]: wasi };
}

/**
 * `clock_time_get(id: i32, precision: i64, time: i32) -> i32` through a
 * tiny WebAssembly function that drops `precision` and calls
 * `clock(id, time)`. Called from JavaScript directly, the i64 would arrive
 * as a new BigInt on every call, and the module reads the clock several
 * times per request.
 */
function dropPrecision(clock) {
  const shim = new WebAssembly.Module(
    new Uint8Array([
      0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
      // types: 0 (i32 i32) -> i32, 1 (i32 i64 i32) -> i32
      0x01, 0x0e, 0x02, 0x60, 0x02, 0x7f, 0x7f, 0x01, 0x7f, 0x60, 0x03, 0x7f, 0x7e, 0x7f, 0x01, 0x7f,
      // import "c" "c", of type 0: the JavaScript function
      0x02, 0x07, 0x01, 0x01, 0x63, 0x01, 0x63, 0x00, 0x00,
      // one function of type 1, exported as "c"
      0x03, 0x02, 0x01, 0x01, 0x07, 0x05, 0x01, 0x01, 0x63, 0x00, 0x01,
      // its body: call 0 (local 0, local 2)
      0x0a, 0x0a, 0x01, 0x08, 0x00, 0x20, 0x00, 0x20, 0x02, 0x10, 0x00, 0x0b,
    ]),
  );
  return new WebAssembly.Instance(shim, { c: { c: clock } }).exports.c;
}

const TWO_32 = 4294967296;
const CLOCK = Symbol("clock");

/**
 * Writes a time as a WASI timestamp (u64 nanoseconds) at `at`, without a
 * BigInt: `secs` whole seconds (below 2^32) and `nanos` more (below 2^31).
 * secs * 10^9 is secs * 1953125 * 2^9, and secs * 1953125 is exact in a
 * double, so the two 32-bit halves come out exact.
 */
function writeTimestamp(dv, at, secs, nanos) {
  const x = secs * 1953125;
  const high = Math.floor(x / 8388608); // x / 2^23: the high word of x * 2^9
  const low = (x - high * 8388608) * 512 + nanos; // below 2^32 + 2^31
  const carry = low >= TWO_32 ? 1 : 0;
  dv.setUint32(at, low - carry * TWO_32, true);
  dv.setUint32(at + 4, high + carry, true);
}

function wasiFunctions(host) {
  const views = host?.views;
  const u8 = () => views().u8;
  const dv = () => views().dv;
  const performance = globalThis.performance;
  const now = performance ? () => performance.now() : () => Date.now();
  // The realtime clock is the monotonic one from its origin: timeOrigin as
  // whole seconds and nanoseconds, added to now() split the same way.
  const origin = performance?.timeOrigin ?? Date.now() - now();
  const originSecs = Math.floor(origin / 1000);
  const originNanos = Math.round((origin - originSecs * 1000) * 1e6);
  /**
   * `clock_time_get` without its `precision` (see dropPrecision). Clocks: 0
   * realtime; 1 monotonic; 2 and 3, process and thread CPU time (the
   * monotonic clock). No BigInt: this runs several times per request.
   */
  const clock = (id, resultPtr) => {
    if (id >>> 0 > 3) {
      return EINVAL;
    }
    const ms = now();
    const at = u32(resultPtr);
    if (id !== 0) {
      // Nanoseconds since the origin stay below 2^53 for 104 days.
      const nanos = Math.round(ms * 1e6);
      const high = Math.floor(nanos / TWO_32);
      const view = dv();
      view.setUint32(at, nanos - high * TWO_32, true);
      view.setUint32(at + 4, high, true);
      return ESUCCESS;
    }
    const secs = Math.floor(ms / 1000);
    writeTimestamp(dv(), at, originSecs + secs, originNanos + Math.round((ms - secs * 1000) * 1e6));
    return ESUCCESS;
  };
  /** `environ_sizes_get` / `args_sizes_get` of an empty list: no strings, no bytes. */
  const noStrings = (countPtr, sizePtr) => {
    const view = dv();
    view.setUint32(u32(countPtr), 0, true);
    view.setUint32(u32(sizePtr), 0, true);
    return ESUCCESS;
  };
  const implemented = {
    clock_time_get(id, _precision, resultPtr) {
      return clock(id, resultPtr);
    },

    clock_res_get(id, resultPtr) {
      if (id < 0 || id > 3) {
        return EINVAL;
      }
      dv().setBigUint64(u32(resultPtr), 1000n, true);
      return ESUCCESS;
    },
    random_get(ptr, len) {
      [ptr, len] = [u32(ptr), u32(len)];
      const memory = u8();
      for (let offset = 0; offset < len; offset += RANDOM_CHUNK) {
        globalThis.crypto.getRandomValues(memory.subarray(ptr + offset, ptr + Math.min(len, offset + RANDOM_CHUNK)));
      }
      return ESUCCESS;
    },
    fd_write(fd, iovs, iovsLen, nwrittenPtr) {
      if (fd !== MODULE_STDOUT && fd !== MODULE_STDERR && fd !== PRINT_STDOUT && fd !== PRINT_STDERR) {
        return EBADF;
      }
      [iovs, iovsLen] = [u32(iovs), u32(iovsLen)];
      const view = dv();
      const memory = u8();
      let written = 0;
      for (let i = 0; i < iovsLen; i++) {
        const base = view.getUint32(iovs + i * 8, true);
        const len = view.getUint32(iovs + i * 8 + 4, true);
        if (len > 0) {
          host.write(fd, memory.subarray(base, base + len));
          written += len;
        }
      }
      // `host.write` may have run onPrint, which cannot grow this memory
      // (it cannot call in), but read the buffer afresh all the same.
      dv().setUint32(u32(nwrittenPtr), written, true);
      return ESUCCESS;
    },
    fd_fdstat_get(fd, resultPtr) {
      // struct fdstat { u8 filetype; u16 flags; u64 rights_base; u64 rights_inheriting; }
      if (fd < 0 || fd > PRINT_STDERR) {
        return EBADF;
      }
      const view = dv();
      const at = u32(resultPtr);
      new Uint8Array(view.buffer, at, 24).fill(0);
      view.setUint8(at, FILETYPE_CHARACTER_DEVICE);
      view.setBigUint64(at + 8, fd === 0 ? RIGHT_FD_READ : RIGHT_FD_WRITE, true);
      return ESUCCESS;
    },
    // No preopened directories: EBADF for the first descriptor asked about
    // ends wasi-libc's scan for them.
    fd_prestat_get() {
      return EBADF;
    },
    fd_prestat_dir_name() {
      return EBADF;
    },
    // The environment and the arguments are both empty lists of strings.
    environ_sizes_get: noStrings,
    environ_get() {
      return ESUCCESS;
    },
    args_sizes_get: noStrings,
    args_get() {
      return ESUCCESS;
    },
    proc_exit(code) {
      throw new WasiExit(u32(code));
    },
    sched_yield() {
      return ESUCCESS;
    },
  };
  // Not a WASI name (a symbol): the clock for the shim.
  implemented[CLOCK] = clock;
  return implemented;
}

/** The WASI functions the glue implements itself (any other import gets ENOSYS). */
export const WASI_IMPLEMENTED = Object.freeze(Object.keys(wasiFunctions(null)).sort());
