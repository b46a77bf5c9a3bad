// The boundary turn loop of benches/boundary.rs under Node, through the
// WebAssembly build (js/dist/monty_wire.wasm and its glue, js/monty_wire.mjs):
// a Python loop making 10,000 external calls, each answered by the host.
//
// The JavaScript host does what a real one does: it builds every request and
// reads every response in place from the view on linear memory
// `Session.dispatch` returns. It does so twice in one run: with capnp-es (the
// code generated in js/gen/), and with the schema codec generated into
// js/codec/ (DataView readers and a reused Builder).
//
//   bash scripts/build-wasm.sh && (cd js && npm ci) && node js/scripts/gen-schema.mjs
//   cargo bench --bench boundary -- turn_loop_10k    # the native numbers
//   node benches/wasm_turn_loop.mjs [--samples N]
//
// With the native run's results in target/criterion (or $CARGO_TARGET_DIR),
// it prints the WASM/native speed ratio next to the times.

import { readFileSync } from "node:fs";
import { performance } from "node:perf_hooks";

import * as C from "../js/codec/monty_wire_codec.mjs";
import { MontyWire } from "../js/monty_wire.mjs";
import * as S from "../js/gen/monty_wire.js";

// capnp-es is installed in js/node_modules (the generated code imports it
// from there); load the same module instance by its path.
const capnp = await import(new URL("../js/node_modules/capnp-es/dist/index.mjs", import.meta.url));

const CALLS = 10_000n;
const TURN_LOOP = "total = 0\nfor i in range(10_000):\n    total += f(i)\ntotal";
const EXPECTED = (CALLS * (CALLS + 1n)) / 2n;

const args = process.argv.slice(2);
const samplesArg = args.indexOf("--samples");
const SAMPLES = samplesArg >= 0 ? Number(args[samplesArg + 1]) : 10;
const WARM_UP = 3;

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

/** A function that adds the time since its last call (or since now) to `timing[field]`, in ms. */
function stopwatch(timing) {
  let t = performance.now();
  return (field) => {
    const now = performance.now();
    timing[field] += now - t;
    t = now;
  };
}

/**
 * One run of the loop; returns the result. With `timing`, adds the time spent
 * building requests, inside `dispatch` (the module: decode, interpreter,
 * encode) and reading responses to its fields, in ms.
 */
function turnLoop(session, timing) {
  if (!timing) {
    let reply = response(session.dispatch(startRequest));
    while (reply.which() === S.Response_Which.FUNCTION_CALL) {
      const call = reply.functionCall;
      const n = call.args.nodes.get(call.args.positional.get(0)).intValue;
      reply = response(session.dispatch(resumeRequest(n + 1n)));
    }
    return result(reply);
  }
  const lap = stopwatch(timing);
  let view = session.dispatch(startRequest);
  lap("dispatch");
  for (;;) {
    const reply = response(view);
    if (reply.which() !== S.Response_Which.FUNCTION_CALL) return result(reply);
    const call = reply.functionCall;
    const n = call.args.nodes.get(call.args.positional.get(0)).intValue;
    lap("read");
    const bytes = resumeRequest(n + 1n);
    lap("build");
    view = session.dispatch(bytes);
    lap("dispatch");
  }
}

// --- the same host on the generated codec: one Builder, reused cursors ---

const builder = new C.Builder();
const cursor = { response: new C.StructReader(), call: new C.StructReader(), args: new C.StructReader(), node: new C.StructReader(), list: new C.ListReader(), positional: new C.ListReader() };

function codecResume(n) {
  const b = builder.reset();
  const result = C.Request_init_resumeCall(b, C.Request_newRoot(b));
  const value = C.CallResult_init_value(b, result);
  C.Node_set_intValue(b, C.Value_init_nodes(b, value, 1), n);
  C.Value_set_root(b, value, 0);
  return b.finish();
}

/** The int argument of a `functionCall` response, or null for any other response (`cursor.response` holds it). */
function codecArgument(view) {
  const { response, call, args, node, list, positional } = cursor;
  new C.Reader(view).root(response);
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

function turnLoopCodec(session, timing) {
  if (!timing) {
    let n = codecArgument(session.dispatch(startRequest));
    while (n !== null) n = codecArgument(session.dispatch(codecResume(n + 1)));
    return codecResult();
  }
  const lap = stopwatch(timing);
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

/** The value of a `complete` response, which must be an int. */
function result(reply) {
  if (reply.which() !== S.Response_Which.COMPLETE) {
    throw new Error(`the loop ended with response arm ${reply.which()}`);
  }
  const value = reply.complete;
  return value.nodes.get(value.root).intValue;
}

/** Mean of a criterion estimate of the native run, in ms, if it is there. */
function nativeMs(bench) {
  const target = process.env.CARGO_TARGET_DIR ?? new URL("../target", import.meta.url).pathname;
  try {
    const estimates = JSON.parse(
      readFileSync(`${target}/criterion/boundary_turn_loop_10k/${bench}/new/estimates.json`, "utf8"),
    );
    return estimates.mean.point_estimate / 1e6;
  } catch {
    return undefined;
  }
}

const wire = await MontyWire.load();
const session = wire.openSession();
const opened = response(session.dispatch(openRequest));
if (opened.which() !== S.Response_Which.OK) {
  throw new Error(`openRun failed with response arm ${opened.which()}`);
}

const fmt = (ms) => `${ms.toFixed(2)} ms`;
console.log(`wasm turn_loop_10k (Node ${process.version}, ${SAMPLES} samples after ${WARM_UP} warm-up runs)`);
const means = {};
for (const [host, loop] of [
  ["capnp-es", turnLoop],
  ["generated codec", turnLoopCodec],
]) {
  const first = loop(session);
  if (first !== EXPECTED) throw new Error(`the loop returned ${first}, expected ${EXPECTED}`);
  for (let i = 0; i < WARM_UP; i++) loop(session);

  const times = [];
  for (let i = 0; i < SAMPLES; i++) {
    const started = performance.now();
    loop(session);
    times.push(performance.now() - started);
  }
  times.sort((a, b) => a - b);
  const mean = times.reduce((a, b) => a + b, 0) / times.length;
  const median = times[Math.floor(times.length / 2)];
  means[host] = mean;

  // A separate pass for the breakdown, so the clock reads do not slow the timed runs.
  const timing = { build: 0, dispatch: 0, read: 0 };
  const breakdownRuns = Math.max(3, Math.floor(SAMPLES / 2));
  for (let i = 0; i < breakdownRuns; i++) loop(session, timing);

  console.log(`host: ${host}`);
  console.log(`  mean ${fmt(mean)}, median ${fmt(median)}, min ${fmt(times[0])}, max ${fmt(times.at(-1))}`);
  console.log(`  per turn: ${((mean * 1e3) / Number(CALLS)).toFixed(2)} µs`);
  const turns = breakdownRuns * (Number(CALLS) + 1);
  const perTurn = (ms) => `${((ms * 1e3) / turns).toFixed(2)} µs`;
  console.log(
    `  breakdown per turn: build request ${perTurn(timing.build)}, ` +
      `dispatch (the module) ${perTurn(timing.dispatch)}, read response ${perTurn(timing.read)}`,
  );
}
session.close();
const mean = means["generated codec"];
console.log(`the generated codec's loop takes ${(mean / means["capnp-es"]).toFixed(2)}x the time of capnp-es's`);
for (const bench of ["wire", "wire_in_place", "direct"]) {
  const native = nativeMs(bench);
  if (native === undefined) continue;
  console.log(
    `  native ${bench}: ${fmt(native)}; WASM with the generated codec runs at ${(native / mean).toFixed(2)}x native speed (${(mean / native).toFixed(2)}x the time); with capnp-es ${(native / means["capnp-es"]).toFixed(2)}x`,
  );
}
