// Python values as JavaScript values (js/codec/values.mjs): round trips
// JavaScript -> arena -> JavaScript, shared nodes and cycles, bytes as a view
// or a copy, agreement with capnp-es, and arenas refused.
// Needs js/node_modules (capnp-es) and js/gen/ (js/scripts/gen-schema.mjs).
import assert from "node:assert/strict";
import { test } from "node:test";
import * as capnp from "capnp-es";
import * as C from "../codec/monty_wire_codec.mjs";
import { Ellipsis, Float, FrozenSet, NotImplemented, Py, Tuple, decodeValue, encodeValue, readNodes, writeNodes } from "../codec/values.mjs";
import * as S from "../gen/monty_wire.js";
import { fillValue, repr } from "./protocol.mjs";

const roundTrip = (value, options) => decodeValue(encodeValue(value).slice(), options);
const uuid = Uint8Array.from({ length: 16 }, (_, i) => i * 7);

test("every kind of value comes back as it went", () => {
  const classType = new Py("classType", { name: "Point", id: uuid, hostDefined: true, isDataclass: true, attrs: new Map([["x", 1]]) });
  const values = [
    null,
    true,
    false,
    0,
    -1,
    2 ** 53 - 1,
    -(2 ** 53),
    2n ** 53n,
    -(2n ** 63n),
    2n ** 63n,
    -(2n ** 200n) + 1n,
    1.5,
    -0,
    Number.NaN,
    Number.POSITIVE_INFINITY,
    "",
    "ascii",
    "naïve – 中文 😀",
    "x".repeat(1000),
    new Uint8Array([0, 1, 255]),
    [1, [2, [3]]],
    new Tuple(1, "two"),
    new Set([1, "a"]),
    new FrozenSet([new Tuple(1, 2)]),
    new Map([
      [new Tuple(1, 2), "tuple key"],
      [3, null],
      ["s", [1]],
    ]),
    Ellipsis,
    NotImplemented,
    new Py("complex", { real: 1.5, imag: -2 }),
    new Py("date", { year: 2024, month: 2, day: 29 }),
    new Py("dateTime", { year: 1, month: 12, day: 31, hour: 23, minute: 59, second: 58, microsecond: 999999, offsetSeconds: -3600, zoneName: "X", fold: 1 }),
    new Py("dateTime", { year: 2000, month: 1, day: 1, hour: 0, minute: 0, second: 0, microsecond: 0, offsetSeconds: null, zoneName: null, fold: 0 }),
    new Py("time", { hour: 1, minute: 2, second: 3, microsecond: 4, offsetSeconds: 60, zoneName: null, fold: 0 }),
    new Py("timeDelta", { days: -1, seconds: 86399, microseconds: 5 }),
    new Py("timeZone", { offsetSeconds: 3600, name: "CET" }),
    new Py("timeZone", { offsetSeconds: 0, name: null }),
    new Py("decimal", { value: "1.20" }),
    new Py("exception", { type: "valueError", arg: "bad" }),
    new Py("exception", { type: "keyError", arg: null }),
    new Py("type", { value: "int" }),
    new Py("builtinFunction", { value: "len" }),
    new Py("path", { value: "/tmp/x" }),
    new Py("fileHandle", { path: "/f", mode: "appendUpdate", binary: true, position: 12 }),
    new Py("function", { name: "f", docstring: null }),
    new Py("function", { name: "g", docstring: "doc" }),
    new Py("repr", { value: "<object>" }),
    new Py("cycle", { value: "[...]" }),
    new Py("namedTuple", { typeName: "os.stat_result", fieldNames: ["a", "b"], values: [1, "x"] }),
    classType,
    new Py("classInstance", { classType, instanceId: uuid, attrs: new Map([["y", 2]]) }),
    new Py("module", { name: "pkg.sub", id: uuid, attrs: new Map([["k", Ellipsis]]) }),
  ];
  for (const value of values) {
    assert.deepStrictEqual(roundTrip(value), value, `round trip of ${String(value?.kind ?? value)}`);
  }
  // All of them in one arena, too.
  assert.deepStrictEqual(roundTrip(values), values);
  // A whole float stays a float only when asked for; it comes back a number.
  assert.equal(roundTrip(new Float(2)), 2);
});

test("a message that is not 4-byte aligned reads the same (through the DataView)", () => {
  const value = [1, -(2 ** 40), 2n ** 60n, "s", new Tuple(1, [2]), new Map([[1, 2]])];
  const message = encodeValue(value);
  const unaligned = new Uint8Array(message.length + 1).subarray(1);
  unaligned.set(message);
  assert.deepStrictEqual(decodeValue(unaligned), value);
});

test("ints: numbers up to 2^53, BigInt past it, whichever node kind carried them", () => {
  assert.equal(roundTrip(2 ** 53 - 1), 2 ** 53 - 1);
  assert.equal(roundTrip(2n ** 53n - 1n), 2 ** 53 - 1);
  assert.equal(roundTrip(2n ** 53n), 2n ** 53n);
  assert.equal(roundTrip(-(2n ** 70n)), -(2n ** 70n));
  assert.equal(roundTrip(2 ** 60), 2n ** 60n);
  // A bigInt node holding a small number (capnp-es writes it) reads as a number.
  const message = new capnp.Message();
  const value = message.initRoot(S.Value);
  const big = value._initNodes(1).get(0)._initBigInt();
  big.negative = true;
  big._initMagnitude(2).copyBuffer(new Uint8Array([1, 0]));
  assert.equal(decodeValue(new Uint8Array(message.toArrayBuffer())), -256);
});

test("a node used twice is one object, and a cycle is kept as a cycle leaf", () => {
  const shared = [1, 2];
  const back = roundTrip(new Tuple(shared, shared, new Map([["again", shared]])));
  assert.equal(back[0], back[1]);
  assert.equal(back[2].get("again"), back[0]);

  const list = [1];
  list.push(list);
  const dict = new Map();
  dict.set("self", dict);
  const tuple = new Tuple(2);
  tuple[0] = [tuple];
  tuple[1] = 0;
  const [l, d, t] = roundTrip([list, dict, tuple]);
  assert.deepStrictEqual(l, [1, new Py("cycle", { value: "[...]" })]);
  assert.deepStrictEqual(d, new Map([["self", new Py("cycle", { value: "{...}" })]]));
  assert.deepStrictEqual(t, new Tuple([new Py("cycle", { value: "(...)" })], 0));
});

test("bytes: a view on the message by default, or a copy", () => {
  const message = encodeValue(new Uint8Array([9, 8, 7])).slice();
  const view = decodeValue(message);
  assert.equal(view.buffer, message.buffer, "the view shares the message's buffer");
  const at = view.byteOffset - message.byteOffset + 1;
  message[at] = 42;
  assert.deepEqual([...view], [9, 42, 7], "and sees changes to it");
  const copy = decodeValue(message, { bytes: "copy" });
  assert.notEqual(copy.buffer, message.buffer);
  message[at] = 8;
  assert.deepEqual([...copy], [9, 42, 7], "a copy does not");
});

test("agrees with capnp-es: what values.mjs writes, capnp-es reads, and back", () => {
  const value = [null, true, 7, -(2n ** 64n), 1.25, "héllo", [1, [2]]];
  const es = new capnp.Message(encodeValue(value).slice(), false).getRoot(S.Value);
  assert.equal(repr(es), "[None, True, 7, -18446744073709551616, 1.25, 'héllo', [1, [2]]]");
  const message = new capnp.Message();
  fillValue(message.initRoot(S.Value), [null, false, 42, 2n ** 60n, 0.5, "ü", ["x", []]]);
  assert.deepStrictEqual(decodeValue(new Uint8Array(message.toArrayBuffer())), [null, false, 42, 2n ** 60n, 0.5, "ü", ["x", []]]);
});

test("several roots in one arena share their objects", () => {
  const b = new C.Builder();
  const inputs = C.Inputs_newRoot(b);
  const shared = new Map([[1, 2]]);
  const roots = writeNodes(b, (n) => C.Inputs_init_nodes(b, inputs, n), [shared, [shared]]);
  const at = C.Inputs_init_roots(b, inputs, roots.length);
  roots.forEach((root, i) => b.view.setUint32(at + 4 * i, root, true));
  const s = new C.Reader(b.finish()).root();
  const nodes = readNodes(C.Inputs_nodes(s));
  const list = C.Inputs_roots(s);
  const [first, second] = [nodes[list.u32(0)], nodes[list.u32(1)]];
  assert.equal(second[0], first);
});

test("arenas the schema forbids are refused", () => {
  const arena = (fill) => {
    const message = new capnp.Message();
    fill(message.initRoot(S.Value));
    return new Uint8Array(message.toArrayBuffer());
  };
  const forward = arena((v) => {
    const nodes = v._initNodes(2);
    nodes.get(0)._initList(1).set(0, 1); // a child after its holder
    nodes.get(1).none = true;
  });
  assert.throws(() => decodeValue(forward), /child's index must be lower/);
  const root = arena((v) => {
    v._initNodes(1).get(0).none = true;
    v.root = 1;
  });
  assert.throws(() => decodeValue(root), /root index 1 is outside/);
  const bigint = arena((v) => v._initNodes(1).get(0)._initBigInt()._initMagnitude(2).copyBuffer(new Uint8Array([0, 1])));
  assert.throws(() => decodeValue(bigint), /canonical/);
  assert.throws(() => encodeValue(Symbol("x")), TypeError);
});
