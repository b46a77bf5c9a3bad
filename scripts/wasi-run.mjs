// Runs a wasm32-wasip1 command module (such as a `cargo test` binary) under
// Node's built-in WASI, with the repository as its working directory:
//   node scripts/wasi-run.mjs target/wasm32-wasip1/debug/deps/roundtrip-*.wasm [args...]
import { readFile } from "node:fs/promises";
import { argv, exit } from "node:process";
import { WASI } from "node:wasi";

const [wasmPath, ...args] = argv.slice(2);
if (!wasmPath) {
  console.error("usage: node scripts/wasi-run.mjs MODULE.wasm [args...]");
  exit(2);
}
const wasi = new WASI({
  version: "preview1",
  args: [wasmPath, ...args],
  env: { RUST_BACKTRACE: "1" },
  preopens: { ".": "." },
  returnOnExit: true,
});
const module = await WebAssembly.compile(await readFile(wasmPath));
const instance = await WebAssembly.instantiate(module, wasi.getImportObject());
exit(wasi.start(instance));
