// The boundary turn loop of benches/boundary.rs under Node, through the
// WebAssembly build (js/dist/monty_wire.wasm and its glue, js/monty_wire.mjs):
// a Python loop making 10,000 external calls, each answered by the host.
//
// The JavaScript host does what a real one does: it builds every request with
// capnp-es (the code generated in js/gen/) and reads every response in place
// from the view on linear memory `Session.dispatch` returns.
//
//   bash scripts/build-wasm.sh && (cd js && npm ci) && node js/scripts/gen-schema.mjs
//   cargo bench --bench boundary -- turn_loop_10k    # the native numbers
//   node benches/wasm_turn_loop.mjs [--samples N]
//
// With the native run's results in target/criterion (or $CARGO_TARGET_DIR),
// it prints the WASM/native speed ratio next to the times.

import { readFileSync } from "node:fs";
import { performance } from "node:perf_hooks";

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
  let t = performance.now();
  const lap = (field) => {
    const now = performance.now();
    timing[field] += now - t;
    t = now;
  };
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

const first = turnLoop(session);
if (first !== EXPECTED) throw new Error(`the loop returned ${first}, expected ${EXPECTED}`);
for (let i = 0; i < WARM_UP; i++) turnLoop(session);

const times = [];
for (let i = 0; i < SAMPLES; i++) {
  const started = performance.now();
  turnLoop(session);
  times.push(performance.now() - started);
}
times.sort((a, b) => a - b);
const mean = times.reduce((a, b) => a + b, 0) / times.length;
const median = times[Math.floor(times.length / 2)];

// A separate pass for the breakdown, so the clock reads do not slow the timed runs.
const timing = { build: 0, dispatch: 0, read: 0 };
const breakdownRuns = Math.max(3, Math.floor(SAMPLES / 2));
for (let i = 0; i < breakdownRuns; i++) turnLoop(session, timing);
session.close();

const fmt = (ms) => `${ms.toFixed(2)} ms`;
console.log(`wasm turn_loop_10k (Node ${process.version}, ${SAMPLES} samples after ${WARM_UP} warm-up runs)`);
console.log(`  mean ${fmt(mean)}, median ${fmt(median)}, min ${fmt(times[0])}, max ${fmt(times.at(-1))}`);
console.log(`  per turn: ${((mean * 1e3) / Number(CALLS)).toFixed(2)} µs`);
const turns = breakdownRuns * (Number(CALLS) + 1);
const perTurn = (ms) => `${((ms * 1e3) / turns).toFixed(2)} µs`;
console.log(
  `  breakdown per turn: build request (capnp-es) ${perTurn(timing.build)}, ` +
    `dispatch (the module) ${perTurn(timing.dispatch)}, read response (capnp-es) ${perTurn(timing.read)}`,
);
for (const bench of ["wire", "wire_in_place", "direct"]) {
  const native = nativeMs(bench);
  if (native === undefined) continue;
  console.log(
    `  native ${bench}: ${fmt(native)}; WASM runs at ${(native / mean).toFixed(2)}x native speed (${(mean / native).toFixed(2)}x the time)`,
  );
}
