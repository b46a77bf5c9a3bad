// Live print output under each print delivery, through the WebAssembly build
// under Node: a Python loop of 20,000 `print(i, 'x')` (80,000 fragments),
// run in the calling thread (`MontyWire`, `onPrint` called during
// `dispatch`) and through a worker (`MontyWireWorker`, a `worker_threads`
// thread posting each delivery to this thread).
//
//   bash scripts/build-wasm.sh && (cd js && npm ci)
//   node benches/print_delivery.mjs [--samples N] [--wasm FILE] [--interval MS]
//
// Cases: no `onPrint` (output only in the response), then `onPrint` with
// `printDelivery` 0 (every fragment, as before print delivery existed),
// "lines", and an interval (default 16 ms). Each sample runs every case
// once, in turn, so all see the same load on a shared machine. A sample is
// one `run` request of the opened program, from `dispatch` until its
// response is in hand, by which time every delivery has reached `onPrint`.
// Reported: medians of wall-clock time and of the process's CPU time (all
// threads: this one, the worker's, Node's), and each against every
// fragment. `onPrint` counts calls and characters, no more.

import * as C from "../js/codec/monty_wire_codec.mjs";
import { MontyWire } from "../js/monty_wire.mjs";
import { MontyWireWorker } from "../js/monty_wire_worker.mjs";

const PRINTS = 20_000;
const PROGRAM = `for i in range(${PRINTS}):\n    print(i, 'x')`;

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const at = args.indexOf(name);
  return at >= 0 ? args[at + 1] : fallback;
};
const SAMPLES = Number(option("--samples", 15));
const WARM_UP = 2;
const INTERVAL = Number(option("--interval", 16));
const wasm = option("--wasm", "js/dist/monty_wire.wasm");

function request(fill) {
  const b = new C.Builder(256);
  fill(b, C.Request_newRoot(b));
  return b.finish().slice();
}
const OPEN = () => request((b, r) => C.OpenRun_set_code(b, C.Request_init_openRun(b, r), PROGRAM));
const RUN = () => request((b, r) => C.Request_init_run(b, r));

/** The characters of a response's output, checking that it completed. */
function outputChars(bytes) {
  const root = new C.Reader(bytes).root();
  if (C.Response_which(root) !== C.Response_Which.complete && C.Response_which(root) !== C.Response_Which.ok) {
    throw new Error(`unexpected response arm ${C.Response_which(root)}`);
  }
  const output = C.Response_output(root);
  let chars = 0;
  for (let i = 0; i < output.length; i++) chars += C.PrintSegment_text(output.struct(i)).length;
  return chars;
}

const EXPECTED_CHARS = Array.from({ length: PRINTS }, (_, i) => `${i} x\n`).join("").length;

const deliveries = [
  ["no onPrint", undefined, false],
  ["every fragment (0)", 0, true],
  ['"lines"', "lines", true],
  [`interval ${INTERVAL} ms`, INTERVAL, true],
];

/** `{ calls, chars, onPrint }`: a callback that counts. */
function counter() {
  const seen = { calls: 0, chars: 0 };
  seen.onPrint = (_stream, text) => {
    seen.calls++;
    seen.chars += text.length;
  };
  return seen;
}

const cpuMicros = () => {
  const { user, system } = process.cpuUsage();
  return user + system;
};

/** Times one run: `{ wall, cpu }` in ms, and the calls onPrint got. */
async function sample(run, seen) {
  seen.calls = 0;
  seen.chars = 0;
  const cpu = cpuMicros();
  const started = performance.now();
  const chars = outputChars(await run());
  const wall = performance.now() - started;
  const used = (cpuMicros() - cpu) / 1000;
  if (chars !== EXPECTED_CHARS) throw new Error(`the response holds ${chars} characters, not ${EXPECTED_CHARS}`);
  return { wall, cpu: used, calls: seen.calls, chars: seen.chars };
}

// --- the cases ---------------------------------------------------------------

const wire = await MontyWire.load(wasm);
const host = await MontyWireWorker.create({ wasm });
const cases = [];
for (const [name, printDelivery, live] of deliveries) {
  const seen = counter();
  const options = live ? { onPrint: seen.onPrint, printDelivery } : {};
  const page = wire.openSession(options);
  outputChars(page.dispatchCopy(OPEN()));
  cases.push({ where: "calling thread", name, seen, live, run: async () => page.dispatchCopy(RUN()) });
  const worker = await host.openSession(options);
  outputChars(await worker.dispatch(OPEN()));
  cases.push({ where: "worker", name, seen, live, run: () => worker.dispatch(RUN()) });
}

for (const c of cases) c.samples = [];
for (let i = 0; i < WARM_UP + SAMPLES; i++) {
  for (const c of cases) {
    const s = await sample(c.run, c.seen);
    if (c.live && s.chars !== EXPECTED_CHARS) throw new Error(`${c.where}, ${c.name}: onPrint saw ${s.chars} characters`);
    if (i >= WARM_UP) c.samples.push(s);
  }
}
host.terminate();

const median = (xs) => {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};

console.log(
  `${PRINTS} print(i, 'x') (${PRINTS * 4} fragments), ${SAMPLES} samples after ${WARM_UP} warm-up, Node ${process.version}, ${wasm}`,
);
console.log("| where | onPrint | calls | wall ms (median) | CPU ms (median) | wall vs every fragment | CPU vs every fragment |");
console.log("|---|---|---:|---:|---:|---:|---:|");
for (const where of ["calling thread", "worker"]) {
  const rows = cases.filter((c) => c.where === where);
  const base = rows.find((c) => c.name.startsWith("every fragment"));
  const baseWall = median(base.samples.map((s) => s.wall));
  const baseCpu = median(base.samples.map((s) => s.cpu));
  for (const c of rows) {
    const wall = median(c.samples.map((s) => s.wall));
    const cpu = median(c.samples.map((s) => s.cpu));
    const calls = median(c.samples.map((s) => s.calls));
    console.log(
      `| ${where} | ${c.name} | ${calls} | ${wall.toFixed(1)} | ${cpu.toFixed(1)} | ${(wall / baseWall).toFixed(2)} | ${(cpu / baseCpu).toFixed(2)} |`,
    );
  }
}
