// Python values into JavaScript: the generated codec (js/codec/values.mjs)
// reading a `Value` message, against JSON.parse plus untagging of the tagged
// JSON the predecessor Dart binding used for the same values (section A.4 of
// its contract: tuples, sets and bytes as {"__type": ..., "value": ...}
// objects, dicts with non-str keys as arrays of pairs, bytes as arrays of
// numbers). No wasm needed: the messages come from the codec's own writer.
//
//   (cd js && npm ci)        # only for the capnp-es check below
//   node benches/js_values.mjs [--quick]
//
// Both sides start from what a host holds after a call: the message bytes
// (a Uint8Array, read in place), or the JSON text as a JavaScript string
// (so the JSON side is not charged for decoding UTF-8 out of linear memory).
// Each time is the median CPU time (user + system, so helper threads such as
// the garbage collector's count too) of repeated runs after warm-up, all in
// one process; CPU time, not the wall clock, because the machine is shared.
import { performance } from "node:perf_hooks";
import { Float, FrozenSet, Py, Tuple, decodeValue, encodeValue } from "../js/codec/values.mjs";

const QUICK = process.argv.includes("--quick");
const MIN_MS = QUICK ? 100 : 1000;
const MIN_RUNS = QUICK ? 3 : 7;

// --- the predecessor's tagged JSON (writer, then the reader's untagging) ---

/** The tagged JSON text of a JavaScript value as values.mjs models Python ones. */
function toTaggedJson(value) {
  const tag = (v) => {
    if (v === null || typeof v === "boolean" || typeof v === "string") return v;
    if (typeof v === "number") return Number.isFinite(v) ? v : Number.isNaN(v) ? "NaN" : v > 0 ? "Infinity" : "-Infinity";
    if (typeof v === "bigint") return v >= -(2n ** 63n) && v < 2n ** 63n ? Number(v) : String(v);
    if (v instanceof Float) return tag(v.value);
    if (v instanceof Tuple) return { __type: "tuple", value: v.map(tag) };
    if (Array.isArray(v)) return v.map(tag);
    if (v instanceof FrozenSet) return { __type: "frozenset", value: [...v].map(tag) };
    if (v instanceof Set) return { __type: "set", value: [...v].map(tag) };
    if (v instanceof Uint8Array) return { __type: "bytes", value: Array.from(v) };
    if (v instanceof Map) {
      if ([...v.keys()].every((k) => typeof k === "string")) {
        const object = {};
        for (const [k, x] of v) object[k] = tag(x);
        return object;
      }
      return [...v].map(([k, x]) => [tag(k), tag(x)]);
    }
    if (v instanceof Py && v.kind === "date") return { __type: "date", year: v.year, month: v.month, day: v.day };
    throw new Error(`no tagged JSON for ${v}`);
  };
  return JSON.stringify(tag(value));
}

/** The reader's side: JSON.parse, then the tagged objects into JavaScript values. */
function untag(v) {
  if (typeof v !== "object" || v === null) {
    if (v === "NaN") return Number.NaN;
    if (v === "Infinity") return Number.POSITIVE_INFINITY;
    if (v === "-Infinity") return Number.NEGATIVE_INFINITY;
    return v;
  }
  if (Array.isArray(v)) {
    const out = new Array(v.length);
    for (let i = 0; i < v.length; i++) out[i] = untag(v[i]);
    return out;
  }
  switch (v.__type) {
    case "tuple": {
      const out = new Tuple(v.value.length);
      for (let i = 0; i < v.value.length; i++) out[i] = untag(v.value[i]);
      return out;
    }
    case "set":
      return new Set(v.value.map(untag));
    case "frozenset":
      return new FrozenSet(v.value.map(untag));
    case "bytes":
      return Uint8Array.from(v.value);
    case "date":
      return new Py("date", { year: v.year, month: v.month, day: v.day });
    case undefined: {
      // A dict with str keys. It becomes a Map, as the codec's dicts do: an
      // object would reorder integer-like keys ("10" before "9"), and
      // insertion order is part of a Python dict.
      const map = new Map();
      for (const key in v) map.set(key, untag(v[key]));
      return map;
    }
    default:
      throw new Error(`unknown __type ${v.__type}`);
  }
}

// --- the values -------------------------------------------------------------

/** The values, each made only when its turn comes (so earlier ones can be collected). */
const CASES = [
  ["100k (int, str) tuples", () => Array.from({ length: 100_000 }, (_, i) => new Tuple(i, `name-${i}`))],
  ["dict of 10k entries (str -> int)", () => new Map(Array.from({ length: 10_000 }, (_, i) => [`key-${i}`, i * 3]))],
  ["100k ints", () => Array.from({ length: 100_000 }, (_, i) => i * 7919)],
  [
    "16 MiB of bytes",
    () => {
      const bytes = new Uint8Array(16 * 1024 * 1024);
      for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 131) & 0xff;
      return bytes;
    },
  ],
  [
    "1k nested records",
    () =>
      Array.from(
        { length: 1000 },
        (_, i) =>
          new Map([
            ["id", i],
            ["name", `user ${i}`],
            ["email", `user${i}@example.com`],
            ["score", i / 7],
            ["active", i % 3 === 0],
            ["tags", ["alpha", "beta", `t${i % 10}`]],
            ["point", new Tuple(i, -i)],
            ["address", new Map([["city", "Paris"], ["zip", `750${i % 20}`], ["lines", ["1 rue X", null]]])],
            ["joined", new Py("date", { year: 2020 + (i % 5), month: 1 + (i % 12), day: 1 + (i % 28) })],
          ]),
      ),
  ],
];

/** CPU time this process has used, in ms (steadier than the wall clock on a shared machine). */
function cpuMs() {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}

/** Median CPU ms of `run()`, repeated for at least MIN_MS and MIN_RUNS after warm-up. */
function time(run) {
  for (let i = 0; i < 3; i++) run();
  const times = [];
  const started = performance.now();
  while (times.length < MIN_RUNS || performance.now() - started < MIN_MS) {
    const t = cpuMs();
    run();
    times.push(cpuMs() - t);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

const rows = [];
for (const [name, make] of CASES) {
  const value = make();
  const message = encodeValue(value).slice();
  const json = toTaggedJson(value);
  let sink;
  const codec = time(() => (sink = decodeValue(message)));
  const codecCopy = value instanceof Uint8Array ? time(() => (sink = decodeValue(message, { bytes: "copy" }))) : undefined;
  const parse = time(() => (sink = untag(JSON.parse(json))));
  const parseOnly = time(() => (sink = JSON.parse(json)));
  void sink;
  rows.push({ name, codec, codecCopy, parse, parseOnly, message: message.length, json: json.length });
}

const ms = (x) => (x < 1 ? x.toFixed(3) : x < 10 ? x.toFixed(2) : x.toFixed(1));
const mb = (n) => `${(n / 1e6).toFixed(2)} MB`;
console.log(`Node ${process.version}, ${process.platform}/${process.arch}; median CPU time of runs over at least ${MIN_MS} ms each`);
console.log();
console.log("| value | codec: message -> JS | JSON.parse + untag | ratio | JSON.parse alone | ratio | message | JSON text |");
console.log("|---|---:|---:|---:|---:|---:|---:|---:|");
for (const r of rows) {
  // For bytes, the copy is the fair comparison: untagging makes a new array.
  const ours = r.codecCopy ?? r.codec;
  const codec = r.codecCopy === undefined ? `${ms(r.codec)} ms` : `${ms(r.codecCopy)} ms (copy; a view: ${ms(r.codec)} ms)`;
  const ratio = (theirs) => `${(theirs / ours).toFixed(1)}×`;
  console.log(
    `| ${r.name} | ${codec} | ${ms(r.parse)} ms | ${ratio(r.parse)} | ${ms(r.parseOnly)} ms | ${ratio(r.parseOnly)} | ${mb(r.message)} | ${mb(r.json)} |`,
  );
}
console.log();
console.log("ratio: the JSON time over the codec's (above 1: the codec is faster).");
