// The boundary turn loop of benches/boundary.rs, through the WebAssembly
// build under Node and through the native library, side by side in one run:
// a Python loop making 10,000 external calls, each answered by the host.
//
//   bash scripts/build-wasm.sh && (cd js && npm ci) && node js/scripts/gen-schema.mjs
//   cargo build --release --no-default-features --example turn_loop
//   node benches/wasm_turn_loop.mjs [--samples N] [--wasm FILE]...
//
// `--wasm` (repeatable) names the modules to measure, each in its own
// instance, all interleaved with the native loop (default
// js/dist/monty_wire.wasm); for example also js/dist/monty_wire_speed.wasm
// from `scripts/build-wasm.sh --speed`.
//
// The native side is examples/turn_loop.rs (the C ABI, the host reading each
// call's argument in place; `turn_loop_10k/wire_in_place` of
// benches/boundary.rs), started as a child process that runs one loop per
// command. Each sample runs the native loop once, then the WASM loop once,
// so both see the same load on a shared machine. Both report wall-clock
// time and the CPU time of the thread that ran the loop (Linux's
// /proc/thread-self/schedstat, counted in scheduler ticks: summed over all
// samples, not per sample). The ratio is WASM speed / native speed.
//
// The JavaScript host does what a real one does: it builds every request and
// reads every response in place from the view on linear memory
// `Session.dispatch` returns. The lean host uses the schema codec generated
// into js/codec/ (one reused Builder and Reader, reused cursors, only the
// fields a turn needs); for reference, the same loop with capnp-es (the code
// generated in js/gen/) runs too.

import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { createInterface } from "node:readline";

import * as C from "../js/codec/monty_wire_codec.mjs";
import { MontyWire } from "../js/monty_wire.mjs";
import * as S from "../js/gen/monty_wire.js";

// capnp-es is installed in js/node_modules (the generated code imports it
// from there); load the same module instance by its path.
const capnp = await import(new URL("../js/node_modules/capnp-es/dist/index.mjs", import.meta.url));

const CALLS = 10_000;
const TURN_LOOP = "total = 0\nfor i in range(10_000):\n    total += f(i)\ntotal";
const EXPECTED = (BigInt(CALLS) * BigInt(CALLS + 1)) / 2n;

const args = process.argv.slice(2);
const samplesArg = args.indexOf("--samples");
const SAMPLES = samplesArg >= 0 ? Number(args[samplesArg + 1]) : 20;
const WARM_UP = 3;
const modules = args.flatMap((arg, i) => (arg === "--wasm" ? [args[i + 1]] : []));
if (modules.length === 0) modules.push("js/dist/monty_wire.wasm");

/** CPU time this thread has run, in ns (Linux), or NaN. */
function threadCpuNs() {
  try {
    return Number(readFileSync("/proc/thread-self/schedstat", "utf8").split(" ")[0]);
  } catch {
    return Number.NaN;
  }
}

// --- the native loop, in a child process ------------------------------------

const target = process.env.CARGO_TARGET_DIR ?? new URL("../target", import.meta.url).pathname;
const nativeBinary = `${target}/release/examples/turn_loop`;
if (!existsSync(nativeBinary)) {
  console.error(`no ${nativeBinary}: build it with\n  cargo build --release --no-default-features --example turn_loop`);
  process.exit(2);
}
const native = spawn(nativeBinary, [], { stdio: ["pipe", "pipe", "inherit"] });
const nativeLines = createInterface({ input: native.stdout })[Symbol.asyncIterator]();
const nativeReady = (await nativeLines.next()).value;
if (nativeReady !== `ready ${CALLS}`) throw new Error(`the native loop said ${JSON.stringify(nativeReady)}`);

/** One native loop: `{ wall, cpu }` in ns. */
async function nativeRun() {
  native.stdin.write("run\n");
  const [wall, cpu] = (await nativeLines.next()).value.split(" ").map(Number);
  return { wall, cpu };
}

// --- the WASM loop with capnp-es --------------------------------------------

/** Builds a `Request` with `fill(request)`: framed, unpacked bytes. */
function request(fill) {
  const message = new capnp.Message();
  fill(message.initRoot(S.Request));
  return new Uint8Array(message.toArrayBuffer());
}

/** Reads a `Response` in place (`false`: the bytes are not packed). */
function response(bytes) {
  return new capnp.Message(bytes, false).getRoot(S.Response);
}

const openRequest = request((r) => {
  const open = r._initOpenRun();
  open.code = TURN_LOOP;
  open._initInputNames(1).set(0, "f");
  // Room for 10,000 round trips (the default allows 1,000).
  open._initLimits().maxSuspensions = 20_000n;
});

const startRequest = request((r) => {
  const inputs = r._initStart();
  inputs._initNodes(1).get(0)._initFunction().name = "f";
  inputs._initRoots(1).set(0, 0);
});

function resumeRequest(n) {
  return request((r) => {
    const value = r._initResumeCall()._initValue();
    value._initNodes(1).get(0).intValue = n;
    value.root = 0;
  });
}

function turnLoopCapnp(session) {
  let reply = response(session.dispatch(startRequest));
  while (reply.which() === S.Response_Which.FUNCTION_CALL) {
    const call = reply.functionCall;
    const n = call.args.nodes.get(call.args.positional.get(0)).intValue;
    reply = response(session.dispatch(resumeRequest(n + 1n)));
  }
  if (reply.which() !== S.Response_Which.COMPLETE) {
    throw new Error(`the loop ended with response arm ${reply.which()}`);
  }
  const value = reply.complete;
  return value.nodes.get(value.root).intValue;
}

// --- the lean WASM loop: the generated codec --------------------------------

const builder = new C.Builder();
let reader = null;
const cursor = {
  response: new C.StructReader(),
  call: new C.StructReader(),
  args: new C.StructReader(),
  node: new C.StructReader(),
  list: new C.ListReader(),
  positional: new C.ListReader(),
};

/** A `resumeCall` answering the int `n`: a view on the reused builder. */
function codecResume(n) {
  const b = builder.reset();
  const value = C.CallResult_init_value(b, C.Request_init_resumeCall(b, C.Request_newRoot(b)));
  C.Node_set_intValue(b, C.Value_init_nodes(b, value, 1), n);
  C.Value_set_root(b, value, 0);
  return b.finish();
}

/** The int argument of a `functionCall` response, or null for any other response (`cursor.response` holds it). */
function codecArgument(view) {
  const { response, call, args, node, list, positional } = cursor;
  reader = reader === null ? new C.Reader(view) : reader.reset(view);
  reader.root(response);
  if (C.Response_which(response) !== C.Response_Which.functionCall) return null;
  C.Response_functionCall(response, call);
  C.FunctionCall_args(call, args);
  const index = C.Arguments_positional(args, positional).u32(0);
  return C.Node_intValue_number(C.Arguments_nodes(args, list).struct(index, node));
}

function codecResult() {
  const { response, node, list } = cursor;
  if (C.Response_which(response) !== C.Response_Which.complete) {
    throw new Error(`the loop ended with response arm ${C.Response_which(response)}`);
  }
  const value = C.Response_complete(response, cursor.args);
  return BigInt(C.Node_intValue_number(C.Value_nodes(value, list).struct(C.Value_root(value), node)));
}

/**
 * One run of the loop. With `timing`, adds the time spent building
 * requests, inside `dispatch` (the module: decode, interpreter, encode) and
 * reading responses to its fields, in ms (clock reads of their own: a
 * separate pass).
 */
function turnLoopCodec(session, timing) {
  if (!timing) {
    let n = codecArgument(session.dispatch(startRequest));
    while (n !== null) n = codecArgument(session.dispatch(codecResume(n + 1)));
    return codecResult();
  }
  let t = performance.now();
  const lap = (field) => {
    const now = performance.now();
    timing[field] += now - t;
    t = now;
  };
  let view = session.dispatch(startRequest);
  lap("dispatch");
  for (;;) {
    const n = codecArgument(view);
    lap("read");
    if (n === null) return codecResult();
    const bytes = codecResume(n + 1);
    lap("build");
    view = session.dispatch(bytes);
    lap("dispatch");
  }
}

// --- the run ----------------------------------------------------------------

/** Loads a module and opens the loop's program in a session of it. */
async function openLoop(path) {
  const wire = await MontyWire.load(new URL(path, `file://${process.cwd()}/`));
  const session = wire.openSession();
  const opened = response(session.dispatch(openRequest));
  if (opened.which() !== S.Response_Which.OK) {
    throw new Error(`openRun failed with response arm ${opened.which()}`);
  }
  return session;
}
const sessions = await Promise.all(modules.map(openLoop));

/** One WASM loop: `{ wall, cpu }` in ns. */
function wasmRun(loop, session) {
  const cpu = threadCpuNs();
  const started = performance.now();
  loop(session);
  return { wall: (performance.now() - started) * 1e6, cpu: threadCpuNs() - cpu };
}

for (const session of sessions) {
  for (const loop of [turnLoopCodec, turnLoopCapnp]) {
    const first = loop(session);
    if (first !== EXPECTED) throw new Error(`${loop.name} returned ${first}, expected ${EXPECTED}`);
  }
}
for (let i = 0; i < WARM_UP; i++) {
  await nativeRun();
  for (const session of sessions) wasmRun(turnLoopCodec, session);
  wasmRun(turnLoopCapnp, sessions[0]);
}

const runs = { native: [], codec: sessions.map(() => []), capnp: [] };
for (let i = 0; i < SAMPLES; i++) {
  runs.native.push(await nativeRun());
  sessions.forEach((session, m) => runs.codec[m].push(wasmRun(turnLoopCodec, session)));
}
// capnp-es is 4x slower: half the samples, after the interleaved ones, on the first module.
for (let i = 0; i < Math.ceil(SAMPLES / 2); i++) runs.capnp.push(wasmRun(turnLoopCapnp, sessions[0]));
native.stdin.end();

const timing = { build: 0, dispatch: 0, read: 0 };
const breakdownRuns = Math.max(3, Math.floor(SAMPLES / 4));
for (let i = 0; i < breakdownRuns; i++) turnLoopCodec(sessions[0], timing);
for (const session of sessions) session.close();

/** Per-turn µs: the median and the mean wall time, and the mean CPU time (its ticks summed over all samples). */
function perTurn(samples) {
  const walls = samples.map((s) => s.wall).sort((a, b) => a - b);
  const median = walls[walls.length >> 1] / CALLS / 1e3;
  const mean = walls.reduce((sum, w) => sum + w, 0) / walls.length / CALLS / 1e3;
  const cpu = samples.reduce((sum, s) => sum + s.cpu, 0) / samples.length / CALLS / 1e3;
  return { median, mean, cpu };
}
const nativeStats = perTurn(runs.native);
const us = (x) => `${x.toFixed(2)} µs`;
const ratio = (a, b) => (Number.isNaN(a / b) ? "n/a" : `${(a / b).toFixed(2)}x`);
const load = readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");

console.log(`turn_loop_10k: native and WASM (Node ${process.version}) side by side, ${SAMPLES} interleaved samples after ${WARM_UP} warm-up rounds; load average ${load}`);
console.log("| per turn | wall, median | wall, mean | CPU, mean | WASM speed / native: wall, median | CPU, mean |");
console.log("|---|---|---|---|---|---|");
console.log(`| native (C ABI, host reads in place) | ${us(nativeStats.median)} | ${us(nativeStats.mean)} | ${us(nativeStats.cpu)} | | |`);
const rows = [
  ...modules.map((path, m) => [`WASM \`${path.split("/").pop()}\`, JS host with the generated codec`, perTurn(runs.codec[m])]),
  [`WASM \`${modules[0].split("/").pop()}\`, JS host with capnp-es`, perTurn(runs.capnp)],
];
for (const [name, s] of rows) {
  console.log(
    `| ${name} | ${us(s.median)} | ${us(s.mean)} | ${us(s.cpu)} | **${ratio(nativeStats.median, s.median)}** | **${ratio(nativeStats.cpu, s.cpu)}** |`,
  );
}
const turns = breakdownRuns * (CALLS + 1);
const part = (ms) => us((ms * 1e3) / turns);
console.log(
  `${modules[0].split("/").pop()} with the generated codec, per turn (a separate pass, with clock reads of its own): build request ${part(timing.build)}, ` +
    `dispatch (the module) ${part(timing.dispatch)}, read response ${part(timing.read)}`,
);
