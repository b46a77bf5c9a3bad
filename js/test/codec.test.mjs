// The generated codec (js/codec/): it is what js/scripts/gen-codec.mjs makes
// of the committed schema; it agrees with capnp-es on random messages
// written by either and read by the other; it refuses malformed input.
// Needs js/node_modules (capnp-es) and js/gen/ (js/scripts/gen-schema.mjs).
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { test } from "node:test";
import * as capnp from "capnp-es";
import { CodeGeneratorRequest, Field_Which, Node_Which, Type_Which } from "capnp-es/capnp/schema";
import * as C from "../codec/monty_wire_codec.mjs";
import { CGR_PATH, CODEC_PATH, DECLARATIONS_PATH, generate } from "../scripts/gen-codec.mjs";
import * as S from "../gen/monty_wire.js";

const cgr = await readFile(CGR_PATH);

test("the committed codec is what gen-codec.mjs makes of schema/monty_wire.cgr", async () => {
  const { js, dts } = generate(cgr);
  for (const [path, text] of [
    [CODEC_PATH, js],
    [DECLARATIONS_PATH, dts],
  ]) {
    assert.ok(
      (await readFile(path, "utf8")) === text,
      `${path} is stale: run \`node js/scripts/gen-codec.mjs\` and commit the result`,
    );
  }
});

test("the declarations name exactly what the module exports", async () => {
  const { dts } = generate(cgr);
  const declared = [...dts.matchAll(/^export declare (?:const|function) (\w+)/gm)].map((m) => m[1]);
  const reexported = /^export \{ (.*) \} from "\.\/runtime\.mjs";$/m.exec(dts)[1].split(", ");
  assert.deepEqual([...declared, ...reexported].sort(), Object.keys(C).sort());
});

// --- the schema, as the property test walks it ---------------------------------

// Unlimited traversal: capnp-es counts every pointer it makes against the
// limit, and the walks below read the schema over and over.
const unlimited = (message) => {
  message._capnp.traversalLimit = Number.POSITIVE_INFINITY;
  return message;
};
const request = unlimited(new capnp.Message(cgr, false)).getRoot(CodeGeneratorRequest);
const nodes = new Map();
for (const node of request.nodes) nodes.set(node.id, node);
const nameOf = (id) => {
  const node = nodes.get(id);
  return node.displayName.slice(node.displayName.indexOf(":") + 1);
};
const prefixOf = (id) => nameOf(id).replaceAll(".", "_");
const esClass = (id) => S[prefixOf(id)];
const cap = (name) => name[0].toUpperCase() + name.slice(1);

const INTS = {
  [Type_Which.INT8]: [-128, 127],
  [Type_Which.INT16]: [-32768, 32767],
  [Type_Which.INT32]: [-(2 ** 31), 2 ** 31 - 1],
  [Type_Which.UINT8]: [0, 255],
  [Type_Which.UINT16]: [0, 65535],
  [Type_Which.UINT32]: [0, 2 ** 32 - 1],
};

// A seeded PRNG (mulberry32), so a failure can be replayed from its seed.
function prng(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (lo, hi) => lo + Math.floor(next() * (hi - lo + 1));
  return { next, int, pick: (items) => items[int(0, items.length - 1)] };
}

const CHARS = ["a", "Z", "0", " ", "é", "ß", "€", "中", "😀", "\n", "\u0001"];

/** A random plain value of the struct `id`: { field: value, $which: arm }. */
function randomStruct(rng, id, depth) {
  const struct = nodes.get(id).struct;
  const fields = [...struct.fields];
  const out = {};
  const arms = fields.filter((f) => f.discriminantValue !== 0xffff);
  const chosen = arms.length > 0 ? rng.pick(arms) : null;
  if (chosen) out.$which = chosen.name;
  for (const field of fields) {
    if (field.discriminantValue !== 0xffff && field !== chosen) continue;
    if (field.which() === Field_Which.GROUP) {
      out[field.name] = randomStruct(rng, field.group.typeId, depth);
      continue;
    }
    let value = randomOf(rng, field.slot.type, depth);
    // Too deep for more: the chosen union arm is still set, empty.
    if (value === undefined && field === chosen) value = field.slot.type.which() === Type_Which.LIST ? [] : {};
    if (value !== undefined) out[field.name] = value;
  }
  return out;
}

function randomOf(rng, type, depth) {
  const t = type.which();
  if (t === Type_Which.VOID) return true;
  if (t === Type_Which.BOOL) return rng.next() < 0.5;
  if (INTS[t]) return rng.int(...INTS[t]);
  if (t === Type_Which.ENUM) return rng.int(0, nodes.get(type.enum.typeId).enum.enumerants.length - 1);
  if (t === Type_Which.INT64) return BigInt.asIntN(64, (BigInt(rng.int(0, 2 ** 32 - 1)) << 32n) | BigInt(rng.int(0, 2 ** 32 - 1)));
  if (t === Type_Which.UINT64) return rng.pick([0n, 1n, 1000n, 2n ** 53n, 2n ** 64n - 1n, BigInt(rng.int(0, 2 ** 32 - 1)) << 20n]);
  if (t === Type_Which.FLOAT32) return Math.fround(rng.next() * 1e6 - 5e5);
  if (t === Type_Which.FLOAT64) return rng.pick([0, -0, 1.5, -1e300, Number.POSITIVE_INFINITY, Number.NaN, rng.next()]);
  if (t === Type_Which.TEXT) {
    let s = "";
    for (let n = rng.pick([0, 1, 3, 8, 30, 70]); n > 0; n--) s += rng.pick(CHARS);
    return s;
  }
  if (t === Type_Which.DATA) return Uint8Array.from({ length: rng.pick([0, 1, 7, 16, 33]) }, () => rng.int(0, 255));
  if (t === Type_Which.STRUCT) return depth > 3 ? undefined : randomStruct(rng, type.struct.typeId, depth + 1);
  if (t === Type_Which.LIST) {
    if (depth > 3) return undefined;
    const element = type.list.elementType;
    const n = element.which() === Type_Which.STRUCT ? rng.int(0, 3) : rng.int(0, 5);
    const items = [];
    for (let i = 0; i < n; i++) items.push(randomOf(rng, element, depth + 1) ?? {});
    return items;
  }
  throw new Error(`type ${t}`);
}

// --- writing and reading with the generated codec ----------------------------

function writeMine(b, s, id, value) {
  const prefix = prefixOf(id);
  for (const field of nodes.get(id).struct.fields) {
    if (!(field.name in value)) continue;
    const v = value[field.name];
    if (field.which() === Field_Which.GROUP) {
      writeMine(b, C[`${prefix}_init_${field.name}`](b, s), field.group.typeId, v);
      continue;
    }
    const type = field.slot.type;
    const t = type.which();
    if (t === Type_Which.VOID) C[`${prefix}_set_${field.name}`](b, s);
    else if (t === Type_Which.STRUCT) writeMine(b, C[`${prefix}_init_${field.name}`](b, s), type.struct.typeId, v);
    else if (t === Type_Which.LIST) {
      const at = C[`${prefix}_init_${field.name}`](b, s, v.length);
      const element = type.list.elementType;
      v.forEach((item, i) => {
        const e = element.which();
        if (e === Type_Which.STRUCT) writeMine(b, at + i * C[`${prefixOf(element.struct.typeId)}_BYTES`], element.struct.typeId, item);
        else if (e === Type_Which.TEXT) b.setText(at + i * 8, item);
        else if (e === Type_Which.UINT32) b.view.setUint32(at + i * 4, item, true);
        else throw new Error(`list of ${e}`);
      });
    } else C[`${prefix}_set_${field.name}`](b, s, v);
  }
}

function readMine(s, id, expected, path) {
  const prefix = prefixOf(id);
  if ("$which" in expected) {
    const arm = C[`${prefix}_Which`][expected.$which];
    assert.equal(C[`${prefix}_which`](s), arm, `${path}: union arm`);
  }
  for (const field of nodes.get(id).struct.fields) {
    if (!(field.name in expected)) continue;
    const e = expected[field.name];
    const where = `${path}.${field.name}`;
    if (field.which() === Field_Which.GROUP) {
      readMine(C[`${prefix}_${field.name}`](s), field.group.typeId, e, where);
      continue;
    }
    const type = field.slot.type;
    const t = type.which();
    if (t === Type_Which.VOID) continue;
    const got = C[`${prefix}_${field.name}`](s);
    if (t === Type_Which.STRUCT) readMine(got, type.struct.typeId, e, where);
    else if (t === Type_Which.LIST) {
      assert.equal(got.length, e.length, `${where}: length`);
      const element = type.list.elementType;
      e.forEach((item, i) => {
        const k = element.which();
        if (k === Type_Which.STRUCT) readMine(got.struct(i), element.struct.typeId, item, `${where}[${i}]`);
        else if (k === Type_Which.TEXT) assert.equal(got.text(i), item, `${where}[${i}]`);
        else assert.equal(got.u32(i), item, `${where}[${i}]`);
      });
    } else if (t === Type_Which.DATA) assert.deepEqual(got, e, where);
    else assert.ok(Object.is(got, e), `${where}: ${String(got)} !== ${String(e)}`);
  }
}

// --- writing and reading with capnp-es ---------------------------------------

function writeEs(es, id, value) {
  for (const field of nodes.get(id).struct.fields) {
    if (!(field.name in value)) continue;
    const v = value[field.name];
    if (field.which() === Field_Which.GROUP) {
      writeEs(es[`_init${cap(field.name)}`](), field.group.typeId, v);
      continue;
    }
    const type = field.slot.type;
    const t = type.which();
    if (t === Type_Which.STRUCT) writeEs(es[`_init${cap(field.name)}`](), type.struct.typeId, v);
    else if (t === Type_Which.DATA) es[`_init${cap(field.name)}`](v.length).copyBuffer(v);
    else if (t === Type_Which.LIST) {
      const list = es[`_init${cap(field.name)}`](v.length);
      const element = type.list.elementType;
      v.forEach((item, i) => {
        if (element.which() === Type_Which.STRUCT) writeEs(list.get(i), element.struct.typeId, item);
        else list.set(i, item);
      });
    } else es[field.name] = v;
  }
}

function readEs(es, id, expected, path) {
  if ("$which" in expected) {
    const arm = C[`${prefixOf(id)}_Which`][expected.$which];
    assert.equal(es.which(), arm, `${path}: union arm`);
  }
  for (const field of nodes.get(id).struct.fields) {
    if (!(field.name in expected)) continue;
    const e = expected[field.name];
    const where = `${path}.${field.name}`;
    if (field.which() === Field_Which.GROUP) {
      readEs(es[field.name], field.group.typeId, e, where);
      continue;
    }
    const type = field.slot.type;
    const t = type.which();
    if (t === Type_Which.VOID) continue;
    const got = es[field.name];
    if (t === Type_Which.STRUCT) readEs(got, type.struct.typeId, e, where);
    else if (t === Type_Which.DATA) assert.deepEqual(got.toUint8Array(), e, where);
    else if (t === Type_Which.LIST) {
      assert.equal(got.length, e.length, `${where}: length`);
      const element = type.list.elementType;
      e.forEach((item, i) => {
        if (element.which() === Type_Which.STRUCT) readEs(got.get(i), element.struct.typeId, item, `${where}[${i}]`);
        else assert.equal(got.get(i), item, `${where}[${i}]`);
      });
    } else if (t === Type_Which.UINT32) {
      // capnp-es 0.0.16 reads a UInt32 with a default (XOR) as a signed
      // number past 2^31 (-619067927 for 3675899369): compare the bits.
      assert.equal(got >>> 0, e, where);
    } else assert.ok(Object.is(got, e), `${where}: ${String(got)} !== ${String(e)}`);
  }
}

const idOf = (name) => [...nodes.values()].find((n) => n.which() === Node_Which.STRUCT && nameOf(n.id) === name).id;
const ROOTS = ["Request", "Response", "Value", "Inputs", "Arguments", "Dump"].map(idOf);
const NODE_ID = idOf("Node");

/** Random messages with a root of each kind, and one Value per Node arm (so every arm is met). */
function* cases(rng, count) {
  for (let i = 0; i < count; i++) {
    const id = ROOTS[i % ROOTS.length];
    yield [id, randomStruct(rng, id, 0)];
  }
  for (const arm of Object.keys(C.Node_Which)) {
    for (let k = 0; k < 3; k++) {
      let node;
      do node = randomStruct(rng, NODE_ID, 2);
      while (node.$which !== arm);
      yield [idOf("Value"), { nodes: [node], root: 0 }];
    }
  }
}

test("property: messages written by the generated codec read the same in capnp-es", () => {
  const rng = prng(0x5eed);
  const b = new C.Builder(64); // small, so growth is exercised too
  for (const [id, value] of cases(rng, 600)) {
    b.reset();
    writeMine(b, C[`${prefixOf(id)}_newRoot`](b), id, value);
    const bytes = b.finish().slice();
    const es = unlimited(new capnp.Message(bytes, false)).getRoot(esClass(id));
    readEs(es, id, value, nameOf(id));
    // And the codec reads its own writing.
    readMine(new C.Reader(bytes).root(), id, value, nameOf(id));
  }
});

test("property: messages written by capnp-es read the same in the generated codec", () => {
  const rng = prng(0xc0dec);
  for (const [id, value] of cases(rng, 600)) {
    const message = unlimited(new capnp.Message());
    writeEs(message.initRoot(esClass(id)), id, value);
    const bytes = new Uint8Array(message.toArrayBuffer());
    readMine(new C.Reader(bytes).root(), id, value, nameOf(id));
  }
});

test("defaults come from the schema (XOR on the wire)", () => {
  const b = new C.Builder();
  const open = C.OpenRun_newRoot(b);
  const limits = C.OpenRun_init_limits(b, open);
  C.ResourceLimits_set_maxSuspensions(b, limits, 20000n);
  const bytes = b.finish().slice();
  const es = new capnp.Message(bytes, false).getRoot(S.OpenRun);
  assert.equal(es.limits.maxSuspensions, 20000n);
  assert.equal(es.limits.maxRecursionDepth, 1000n);
  assert.equal(es.scriptName, "main.py");
  assert.equal(es.compileOptions.assertMessageMaxBytes, 120);
  const s = new C.Reader(bytes).root();
  assert.equal(C.OpenRun_scriptName(s), "main.py");
  assert.equal(C.OpenRun_cwd(s), "/");
  assert.equal(C.ResourceLimits_maxRecursionDepth(C.OpenRun_limits(s)), 1000n);
  assert.equal(C.CompileOptions_assertMessageMaxBytes(C.OpenRun_compileOptions(s)), 120);
});

// --- malformed input ---------------------------------------------------------

/** A Value message with one str node, written by the codec. */
function sample() {
  const b = new C.Builder();
  const v = C.Value_newRoot(b);
  const node = C.Value_init_nodes(b, v, 1);
  C.Node_set_strValue(b, node, "hello");
  return b.finish().slice();
}

function readAll(bytes) {
  const v = new C.Reader(bytes).root();
  const list = C.Value_nodes(v);
  return C.Node_strValue(list.struct(0));
}

test("malformed input is refused with a clear error", () => {
  assert.equal(readAll(sample()), "hello");
  const refuse = (bytes, pattern) => assert.throws(() => readAll(bytes), (e) => e instanceof C.CodecError && pattern.test(e.message));

  const two = sample();
  new DataView(two.buffer).setUint32(0, 1, true);
  refuse(two, /2 segments/);

  const far = sample();
  new DataView(far.buffer).setUint32(8 + 8 + 8, 2 | (1 << 3), true); // Value.nodes: a far pointer
  refuse(far, /far pointer/);

  const cap = sample();
  new DataView(cap.buffer).setUint32(8, 3, true); // the root: a capability pointer
  refuse(cap, /capability/);

  const out = sample();
  new DataView(out.buffer).setUint32(8 + 8 + 8, (1000 << 2) | 1, true); // Value.nodes far past the end
  refuse(out, /outside the message/);

  refuse(sample().subarray(0, 40), /truncated/);
  refuse(sample().subarray(0, 4), /truncated/);
  const trailing = new Uint8Array(sample().length + 8);
  trailing.set(sample());
  refuse(trailing, /trailing/);

  const wrongList = sample();
  const dv = new DataView(wrongList.buffer);
  dv.setUint32(8 + 8 + 8 + 4, (dv.getUint32(8 + 8 + 8 + 4, true) & ~7) | 4, true); // struct list claimed as List(UInt32)
  refuse(wrongList, /element size/);

  // 1,000 nodes whose lists all alias one list of 1,000 items: 10^6 elements to walk from ~26k bytes.
  const b = new C.Builder();
  const v = C.Value_newRoot(b);
  const first = C.Value_init_nodes(b, v, 1000);
  const items = C.Node_init_list(b, first, 1000);
  for (let i = 1; i < 1000; i++) {
    const at = first + i * C.Node_BYTES;
    C.Node_init_list(b, at, 0); // sets the arm; the pointer is made to alias below
    const ptr = at + C.Node_DATA_WORDS * 8 + C.Node_list_AT;
    b.view.setUint32(ptr, (((items - ptr - 8) / 8) << 2) | 1, true);
    b.view.setUint32(ptr + 4, 4 | (1000 << 3), true);
  }
  const aliased = b.finish().slice();
  assert.throws(
    () => {
      const list = C.Value_nodes(new C.Reader(aliased).root());
      for (let i = 0; i < list.length; i++) C.Node_list(list.struct(i));
    },
    (e) => e instanceof C.CodecError && /alias/.test(e.message),
  );

  const unterminated = sample();
  const at = unterminated.indexOf(0x6f, 40); // the "o" of "hello", then its NUL
  unterminated[at + 1] = 0x21;
  refuse(unterminated, /NUL/);
});
