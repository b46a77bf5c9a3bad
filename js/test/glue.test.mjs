// The glue in Node: node --test js/test/
// Needs js/dist/monty_wire.wasm and js/dist/monty_wire_test_hooks.wasm
// (scripts/build-wasm.sh, the second with --test-hooks) and js/gen/
// (js/scripts/gen-schema.mjs); scripts/test-web.sh makes all three.
import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { test } from "node:test";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import binaryen from "binaryen";
import * as C from "../codec/monty_wire_codec.mjs";
import * as glue from "../monty_wire.mjs";
import { check, eq, scenarios } from "./scenarios.mjs";

const wasm = new URL("../dist/monty_wire.wasm", import.meta.url);
const hooksWasm = new URL("../dist/monty_wire_test_hooks.wasm", import.meta.url);
// Compiled once; every scenario instantiates them afresh.
const module = await WebAssembly.compile(await readFile(wasm));
const hooksModule = await WebAssembly.compile(await readFile(hooksWasm));
const schema = await readFile(new URL("../../schema/monty_wire.capnp", import.meta.url), "utf8");
const schemaVersion = Number(/const protocolVersion\s*:UInt32\s*=\s*(\d+)/.exec(schema)[1]);
const sessionSource = await readFile(new URL("../../src/session/mod.rs", import.meta.url), "utf8");
const panicScriptName = /PANIC_SCRIPT_NAME: &str = "(.*)";/.exec(sessionSource)[1];
setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc");
const context = {
  ...glue,
  schemaVersion,
  panicScriptName,
  collectGarbage: async () => gc(),
  load: () => glue.MontyWire.load(module),
  loadHooks: () => glue.MontyWire.load(hooksModule),
};

for (const scenario of scenarios) {
  test(scenario.name, () => scenario.run(context));
}

test("loads from a path, a file: URL, bytes and a Response", async () => {
  const bytes = await readFile(wasm);
  for (const source of [wasm, wasm.href, wasm.pathname, bytes, new Response(bytes, { headers: { "Content-Type": "application/wasm" } })]) {
    const wire = await glue.MontyWire.load(source);
    eq(wire.protocolVersion, schemaVersion, `protocol version, loaded from ${source?.constructor?.name}`);
  }
  // The default: dist/monty_wire.wasm beside monty_wire.mjs.
  eq((await glue.MontyWire.load()).protocolVersion, schemaVersion, "protocol version, default source");
});

test("exports the C ABI and the reactor entry points; imports only what the glue implements", () => {
  const cAbi = [
    "monty_wire_protocol_version",
    "monty_wire_session_open",
    "monty_wire_session_open_isolated",
    "monty_wire_cancel",
    "monty_wire_session_close",
    "monty_wire_dispatch",
    "monty_wire_buffer_free",
    "monty_wire_set_print_callback",
  ];
  const reactor = ["monty_wire_alloc", "monty_wire_dealloc", "monty_wire_set_print_stdio", "_initialize"];
  for (const [what, m] of [
    ["monty_wire.wasm", module],
    ["monty_wire_test_hooks.wasm", hooksModule],
  ]) {
    const exports = new Map(WebAssembly.Module.exports(m).map((e) => [e.name, e.kind]));
    for (const name of [...cAbi, ...reactor]) {
      eq(exports.get(name), "function", `${what} exports ${name}`);
    }
    eq(exports.get("memory"), "memory", `${what} exports its memory`);
    check(!exports.has("_start"), `${what}: a reactor has no _start`);
    const imports = WebAssembly.Module.imports(m);
    const foreign = imports.filter((i) => i.module !== "wasi_snapshot_preview1" || i.kind !== "function");
    eq(foreign, [], `${what} imports only WASI preview1 functions`);
    const unimplemented = imports.map((i) => i.name).filter((name) => !glue.WASI_IMPLEMENTED.includes(name));
    eq(unimplemented, [], `${what} imports only WASI functions the glue implements (not ENOSYS stubs)`);
  }
});

// A module assembled here, with the same exports as monty-wire, that calls
// the glue's WASI functions the way wasi-libc and Rust's std do, with every
// address past 2 GiB (which wasm passes to JavaScript as a negative i32).
const probeWat = `(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_prestat_get" (func $fd_prestat_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_fdstat_get" (func $fd_fdstat_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock_time_get (param i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "random_get" (func $random_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  ;; 2 GiB + 64 KiB: every address below from 0x80000000 up.
  (memory (export "memory") 32769)
  (data (i32.const 0x80000100) "printed past 2 GiB")
  (data (i32.const 0x80000120) "module stderr")
  ;; Results at 0, 4, 8...: what each call returned.
  (func (export "_initialize")
    (i32.store (i32.const 0) (call $fd_prestat_get (i32.const 3) (i32.const 0x80000200)))
    (i32.store (i32.const 4) (call $fd_fdstat_get (i32.const 0) (i32.const 0x80000300)))
    (i32.store (i32.const 8) (call $fd_fdstat_get (i32.const 1) (i32.const 0x80000320)))
    (i32.store (i32.const 12) (call $fd_fdstat_get (i32.const 2) (i32.const 0x80000340)))
    (i32.store (i32.const 16) (call $fd_fdstat_get (i32.const 9) (i32.const 0x80000360)))
    (i32.store (i32.const 20) (call $clock_time_get (i32.const 0) (i64.const 1) (i32.const 0x80000400)))
    (i32.store (i32.const 24) (call $random_get (i32.const 0x80000500) (i32.const 32)))
    (i32.store (i32.const 28) (call $path_open (i32.const 3) (i32.const 0) (i32.const 0) (i32.const 0)
      (i32.const 0) (i64.const 0) (i64.const 0) (i32.const 0) (i32.const 0))))
  (func (export "monty_wire_protocol_version") (result i32)
    (call $proc_exit (i32.const 7))
    (unreachable))
  (func (export "monty_wire_session_open") (result i64) (i64.const 1))
  (func (export "monty_wire_session_close") (param i64) (result i32) (i32.const 0))
  (func (export "monty_wire_set_print_stdio") (param i64 i32) (result i32) (i32.const 0))
  (func (export "monty_wire_set_print_callback") (param i64 i32 i32) (result i32) (i32.const 0))
  (func (export "monty_wire_alloc") (param i32) (result i32) (i32.const 0x80001000))
  (func (export "monty_wire_dealloc") (param i32 i32))
  (func (export "monty_wire_buffer_free") (param i32))
  ;; Prints on fd 3 (Python's stdout), writes to fd 2 (the module's stderr)
  ;; and echoes the request as the response.
  (func (export "monty_wire_dispatch") (param i64 i32 i32) (result i32)
    (i32.store (i32.const 0x80000600) (i32.const 0x80000100))
    (i32.store (i32.const 0x80000604) (i32.const 18))
    (i32.store (i32.const 32) (call $fd_write (i32.const 3) (i32.const 0x80000600) (i32.const 1) (i32.const 0x80000610)))
    (i32.store (i32.const 36) (i32.load (i32.const 0x80000610)))
    (i32.store (i32.const 0x80000600) (i32.const 0x80000120))
    (i32.store (i32.const 0x80000604) (i32.const 13))
    (drop (call $fd_write (i32.const 2) (i32.const 0x80000600) (i32.const 1) (i32.const 0x80000610)))
    (memory.copy (i32.const 0x80002000) (local.get 1) (local.get 2))
    (i32.store (i32.const 0x80003000) (i32.const 0x80002000))
    (i32.store (i32.const 0x80003004) (local.get 2))
    (i32.const 0x80003000)))`;

test("WASI: addresses past 2 GiB, no preopens, character devices, ENOSYS, proc_exit", async () => {
  const assembled = binaryen.parseText(probeWat);
  assembled.setFeatures(binaryen.Features.BulkMemory | binaryen.Features.BulkMemoryOpt);
  check(assembled.validate(), "the probe module validates");
  const bytes = assembled.emitBinary();
  assembled.dispose();

  const wire = await glue.MontyWire.load(bytes);
  const memory = new DataView(wire.memory.buffer);
  const results = Array.from({ length: 8 }, (_, i) => memory.getInt32(i * 4, true));
  eq(results, [8, 0, 0, 0, 8, 0, 0, 52], "errno of each call (EBADF, 4 x fdstat, clock, random, ENOSYS)");
  // struct fdstat { u8 filetype; u16 flags; u64 rights_base; u64 rights_inheriting; }
  for (const [fd, at, rights] of [
    [0, 0x80000300, 1n << 1n],
    [1, 0x80000320, 1n << 6n],
    [2, 0x80000340, 1n << 6n],
  ]) {
    eq(memory.getUint8(at), 2, `fd ${fd} is a character device`);
    eq(memory.getBigUint64(at + 8, true), rights, `fd ${fd} rights`);
  }
  const nanos = memory.getBigUint64(0x80000400, true);
  const ms = Number(nanos / 1_000_000n);
  check(Math.abs(ms - Date.now()) < 60_000, `the realtime clock, written past 2 GiB (${ms})`);
  check(new Uint8Array(wire.memory.buffer, 0x80000500, 32).some((b) => b !== 0), "random bytes written past 2 GiB");

  const printed = [];
  const session = wire.openSession({ onPrint: (stream, text) => printed.push([stream, text]) });
  const errors = [];
  const consoleError = console.error;
  console.error = (...args) => errors.push(args.join(" "));
  let view;
  try {
    view = session.dispatch(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]));
  } finally {
    console.error = consoleError;
  }
  eq(view.byteOffset, 0x80002000, "the response view starts past 2 GiB");
  eq([...view], [1, 2, 3, 4, 5, 6, 7, 8], "the response (the request echoed)");
  eq(memory.getInt32(32, true), 0, "fd_write succeeded");
  eq(memory.getUint32(36, true), 18, "fd_write reported the bytes written");
  eq(printed, [["stdout", "printed past 2 GiB"]], "fd 3 is Python's stdout, and nothing else reached onPrint");
  eq(errors, ["monty-wire: the module wrote: module stderr"], "the module's own stderr is reported, not printed");

  let trap = null;
  try {
    void wire.protocolVersion;
  } catch (e) {
    trap = e;
  }
  check(trap instanceof glue.MontyWireTrapped, `proc_exit surfaces as MontyWireTrapped (${trap})`);
  check(trap.cause instanceof glue.WasiExit && trap.cause.exitCode === 7, `its cause is WasiExit(7) (${trap.cause})`);
  check(wire.dead && session.closed, "the instance is dead");
});

test("printDeliveryRequest writes the setPrintDelivery request the codec reads", () => {
  const max = 2n ** 64n - 1n;
  for (const [delivery, arm, nanos] of [
    [0, "everyFragment", 0n],
    ["lines", "lines", 0n],
    [16, "interval", 16_000_000n],
    [0.5, "interval", 500_000n],
    [1e9, "interval", 10n ** 15n],
    [2 ** 40, "interval", 2n ** 40n * 1_000_000n],
    [1e14, "interval", 10n ** 20n > max ? max : 10n ** 20n],
    [Infinity, "interval", max],
  ]) {
    const bytes = glue.printDeliveryRequest(delivery);
    const root = new C.Reader(bytes).root();
    eq(C.Request_which(root), C.Request_Which.setPrintDelivery, `${delivery}: a setPrintDelivery request`);
    const pd = C.Request_setPrintDelivery(root);
    eq(C.PrintDelivery_which(pd), C.PrintDelivery_Which[arm], `${delivery}: ${arm}`);
    eq(C.PrintDelivery_interval(pd), nanos, `${delivery}: the interval in nanoseconds`);
  }
  for (const bad of ["words", -1, Number.NaN, "16", null, undefined, {}]) {
    let error = null;
    try {
      glue.printDeliveryRequest(bad);
    } catch (e) {
      error = e;
    }
    check(error instanceof TypeError, `${String(bad)} is refused`);
  }
});

test("refuses a module that is not a monty-wire reactor", async () => {
  const command = binaryen.parseText(`(module (memory (export "memory") 1) (func (export "_start")))`);
  const bytes = command.emitBinary();
  command.dispose();
  let error = null;
  try {
    await glue.MontyWire.load(bytes);
  } catch (e) {
    error = e;
  }
  check(error instanceof glue.MontyWireError && /does not export _initialize/.test(error.message), `refused (${error})`);
});

test("js/examples/quickstart.mjs (the README's Node quick start) prints what the README shows", async () => {
  const script = new URL("../examples/quickstart.mjs", import.meta.url).pathname;
  const stdout = await new Promise((resolve, reject) =>
    execFile(process.execPath, [script], (error, out, err) => (error ? reject(new Error(`${error.message}\n${err}`)) : resolve(out))),
  );
  const readme = await readFile(new URL("../README.md", import.meta.url), "utf8");
  const source = await readFile(script, "utf8");
  const listed = /^\[`js\/examples\/quickstart\.mjs`\]\(examples\/quickstart\.mjs\)[^`]*```js\n([\s\S]*?)^```$/m.exec(readme);
  check(listed !== null, "js/README.md lists js/examples/quickstart.mjs");
  eq(listed[1], source, "the code js/README.md shows is js/examples/quickstart.mjs, whole");
  const shown = /```sh\n[^`]*node js\/examples\/quickstart\.mjs\n```\n\nThis prints:\n\n```text\n([^`]*)```/.exec(readme);
  check(shown !== null, "js/README.md shows the quick start's output");
  eq(stdout, shown[1], "the output js/README.md shows");
  eq(stdout, "host: lookup_user(7)\nhello Ada\ncomplete: Ada has 3 letters\n", "the quick start's output");
});
