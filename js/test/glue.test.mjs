// The glue in Node: node --test js/test/
// Needs js/dist/monty_wire.wasm (scripts/build-wasm.sh) and js/gen/
// (js/scripts/gen-schema.mjs); scripts/test-web.sh makes both.
import { readFile } from "node:fs/promises";
import { test } from "node:test";
import * as glue from "../monty_wire.mjs";
import { scenarios } from "./scenarios.mjs";

const wasm = new URL("../dist/monty_wire.wasm", import.meta.url);
// Compiled once; every scenario instantiates it afresh.
const module = await WebAssembly.compile(await readFile(wasm));
const schema = await readFile(new URL("../../schema/monty_wire.capnp", import.meta.url), "utf8");
const schemaVersion = Number(/const protocolVersion\s*:UInt32\s*=\s*(\d+)/.exec(schema)[1]);
const context = { ...glue, schemaVersion, load: () => glue.MontyWire.load(module) };

for (const scenario of scenarios) {
  test(scenario.name, () => scenario.run(context));
}

test("loads from a path, a file: URL, bytes and a Response", async () => {
  const bytes = await readFile(wasm);
  for (const source of [wasm, wasm.href, wasm.pathname, bytes, new Response(bytes, { headers: { "Content-Type": "application/wasm" } })]) {
    const wire = await glue.MontyWire.load(source);
    if (wire.protocolVersion < 2) throw new Error("protocol version");
  }
  // The default: dist/monty_wire.wasm beside monty_wire.mjs.
  await glue.MontyWire.load();
});

test("imports only WASI preview1 functions the glue provides", async () => {
  const imports = WebAssembly.Module.imports(module).map((i) => `${i.module}.${i.name}`);
  const provided = [
    "args_get",
    "args_sizes_get",
    "clock_res_get",
    "clock_time_get",
    "environ_get",
    "environ_sizes_get",
    "fd_write",
    "proc_exit",
    "random_get",
    "sched_yield",
  ].map((n) => `wasi_snapshot_preview1.${n}`);
  const missing = imports.filter((i) => !provided.includes(i));
  if (missing.length) throw new Error(`imports answered with ENOSYS: ${missing.join(", ")}`);
  const exports = WebAssembly.Module.exports(module).map((e) => e.name);
  for (const name of ["_initialize", "monty_wire_alloc", "monty_wire_dealloc", "monty_wire_set_print_stdio", "monty_wire_dispatch"]) {
    if (!exports.includes(name)) throw new Error(`missing export ${name}`);
  }
  if (exports.includes("_start")) throw new Error("a reactor has no _start");
});

test("js/examples/quickstart.mjs (the README's Node quick start) prints what the README shows", async () => {
  const { execFile } = await import("node:child_process");
  const script = new URL("../examples/quickstart.mjs", import.meta.url).pathname;
  const stdout = await new Promise((resolve, reject) =>
    execFile(process.execPath, [script], (error, out, err) => (error ? reject(new Error(`${error.message}\n${err}`)) : resolve(out))),
  );
  const expected = "host: lookup_user(7)\nhello Ada\ncomplete: Ada has 3 letters\n";
  if (stdout !== expected) throw new Error(`got:\n${stdout}`);
});
