// Generates js/codec/monty_wire_codec.mjs (and its declarations,
// monty_wire_codec.d.mts), the schema-specific reader and
// writer functions of the codec (js/codec/runtime.mjs is the rest), from the
// compiled schema schema/monty_wire.cgr (a CodeGeneratorRequest). Every
// offset, pointer index, discriminant and default comes from there.
//   node js/scripts/gen-codec.mjs           rewrite the committed module
// js/test/codec.test.mjs regenerates it in memory and fails when the
// committed file differs.
//
// For a struct (or group) X, field f, the module exports:
//   readers  X_which(s)               the union discriminant
//            X_f(s)                   a primitive (Int64/UInt64 as BigInt; X_f_number(s) as a
//                                     number when exact), a Text, a Data view, or a group (s itself)
//            X_f(s, out?)             a struct (StructReader) or list (ListReader)
//   writers  X_set_f(b, s, v)         a primitive, Text or Data; union arms set the discriminant
//            X_set_f(b, s)            a Void union arm
//            X_init_f(b, s[, n])      a struct, list or group: returns its offset
//            X_newRoot(b)             a root struct of type X in a reset Builder
//   layout   X_DATA_WORDS, X_POINTERS, X_BYTES (a struct list's element stride);
//            X_WHICH_AT and X_f_AT: byte offsets of the discriminant and of a field in the
//            data section (a primitive) or the pointer section (a Text, Data or list), for
//            readers that index a struct directly once they know its sections are full size
//   unions   X_Which                  arm name -> discriminant value
//   enums    E                        enumerant name -> value
import { readFile, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import * as capnp from "capnp-es";
import { CodeGeneratorRequest, Field_Which, Node_Which, Type_Which, Value_Which } from "capnp-es/capnp/schema";

const NO_DISCRIMINANT = 0xffff;

// Primitive types: byte size, DataView getter/setter.
const PRIMITIVES = {
  [Type_Which.INT8]: { bytes: 1, get: "getInt8", set: "setInt8", value: "int8" },
  [Type_Which.INT16]: { bytes: 2, get: "getInt16", set: "setInt16", value: "int16" },
  [Type_Which.INT32]: { bytes: 4, get: "getInt32", set: "setInt32", value: "int32" },
  [Type_Which.UINT8]: { bytes: 1, get: "getUint8", set: "setUint8", value: "uint8" },
  [Type_Which.UINT16]: { bytes: 2, get: "getUint16", set: "setUint16", value: "uint16" },
  [Type_Which.UINT32]: { bytes: 4, get: "getUint32", set: "setUint32", value: "uint32" },
  [Type_Which.ENUM]: { bytes: 2, get: "getUint16", set: "setUint16", value: "enum" },
  [Type_Which.FLOAT32]: { bytes: 4, get: "getFloat32", set: "setFloat32", value: "float32" },
  [Type_Which.FLOAT64]: { bytes: 8, get: "getFloat64", set: "setFloat64", value: "float64" },
};
// List element size codes (Cap'n Proto's ElementSize) for a List(T).
const LIST_SIZE = {
  [Type_Which.VOID]: 0,
  [Type_Which.BOOL]: 1,
  [Type_Which.INT8]: 2,
  [Type_Which.UINT8]: 2,
  [Type_Which.INT16]: 3,
  [Type_Which.UINT16]: 3,
  [Type_Which.ENUM]: 3,
  [Type_Which.INT32]: 4,
  [Type_Which.UINT32]: 4,
  [Type_Which.FLOAT32]: 4,
  [Type_Which.INT64]: 5,
  [Type_Which.UINT64]: 5,
  [Type_Which.FLOAT64]: 5,
  [Type_Which.TEXT]: 6,
  [Type_Which.DATA]: 6,
  [Type_Which.LIST]: 6,
  [Type_Which.STRUCT]: 7,
};

/** The module's source text (`js`) and its declarations (`dts`) for the CodeGeneratorRequest in `cgr` (bytes). */
export function generate(cgr) {
  const request = new capnp.Message(cgr, false).getRoot(CodeGeneratorRequest);
  const nodes = new Map();
  for (const node of request.nodes) nodes.set(node.id, node);
  const file = request.requestedFiles.get(0);
  const fileNode = nodes.get(file.id);
  const prefixOf = (node) => node.displayName.slice(node.displayName.indexOf(":") + 1).replaceAll(".", "_");

  // Every struct and enum of the file, nested ones included, in declaration order.
  const structs = [];
  const enums = [];
  const consts = [];
  const visit = (node) => {
    const which = node.which();
    if (which === Node_Which.STRUCT) structs.push(node);
    else if (which === Node_Which.ENUM) enums.push(node);
    else if (which === Node_Which.CONST) consts.push(node);
    for (const nested of node.nestedNodes) visit(nodes.get(nested.id));
    if (which === Node_Which.STRUCT) {
      for (const field of node.struct.fields) {
        if (field.which() === Field_Which.GROUP) visit(nodes.get(field.group.typeId));
      }
    }
  };
  for (const nested of fileNode.nestedNodes) visit(nodes.get(nested.id));

  const out = [];
  const dts = [];
  // `type`: the TypeScript of an export line (what follows its name), for the .d.mts.
  const emit = (line = "", type = undefined) => {
    out.push(line);
    if (type !== undefined) {
      const [, kind, name] = /^export (const|function) (\w+)/.exec(line);
      dts.push(`export declare ${kind} ${name}${type};`);
    }
  };
  emit(`// Generated by js/scripts/gen-codec.mjs from schema/monty_wire.cgr (${file.filename}). Do not edit:`);
  emit("// change the schema, then run `node js/scripts/gen-codec.mjs`. See js/codec/runtime.mjs for the");
  emit("// Reader, Builder and cursor types these functions work on.");
  emit("/* eslint-disable */");
  emit(
    'import { Builder, CodecError, ListReader, Reader, StructReader, readData, readInt64Number, readList, readStruct, readText, readUint64Number, writeInt64, writeUint64 } from "./runtime.mjs";',
  );
  emit();
  emit('export { Builder, CodecError, ListReader, Reader, StructReader } from "./runtime.mjs";');
  emit();
  emit("const EMPTY = new Uint8Array(0);");
  emit();

  for (const node of consts) {
    const value = node.const.value;
    if (value.which() === Value_Which.UINT32) emit(`export const ${prefixOf(node)} = ${value.uint32};`, ": number");
  }
  emit();

  for (const node of enums) {
    const names = node.enum.enumerants.map((e, i) => `${e.name}: ${i}`);
    emit(`export const ${prefixOf(node)} = Object.freeze({ ${names.join(", ")} });`, `: Readonly<{ ${names.join("; ")} }>`);
  }
  emit();

  for (const node of structs) {
    const struct = node.struct;
    const name = prefixOf(node);
    // A group shares its enclosing struct's sections; its layout is that struct's.
    let owner = node;
    while (owner.struct.isGroup) owner = nodes.get(owner.scopeId);
    emit(`// --- ${node.displayName.slice(fileNode.displayName.length + 1)}${struct.isGroup ? " (group)" : ""}`);
    if (!struct.isGroup) {
      emit(`export const ${name}_DATA_WORDS = ${struct.dataWordCount};`, ": number");
      emit(`export const ${name}_POINTERS = ${struct.pointerCount};`, ": number");
      emit(`export const ${name}_BYTES = ${(struct.dataWordCount + struct.pointerCount) * 8};`, ": number");
      emit(`export function ${name}_newRoot(b) {`, "(b: Builder): number");
      emit(`  return b.initRoot(${struct.dataWordCount}, ${struct.pointerCount});`);
      emit("}");
    }
    const fields = [...struct.fields];
    let discriminantAt = -1;
    if (struct.discriminantCount > 0) {
      discriminantAt = struct.discriminantOffset * 2;
      const arms = fields.filter((f) => f.discriminantValue !== NO_DISCRIMINANT).map((f) => `${f.name}: ${f.discriminantValue}`);
      emit(`export const ${name}_Which = Object.freeze({ ${arms.join(", ")} });`, `: Readonly<{ ${arms.join("; ")} }>`);
      emit(`export const ${name}_WHICH_AT = ${discriminantAt};`, ": number");
      emit(`export function ${name}_which(s) {`, "(s: StructReader): number");
      emit(`  return s.ds >= ${discriminantAt + 2} ? s.r.view.getUint16(s.d + ${discriminantAt}, true) : 0;`);
      emit("}");
    }
    for (const field of fields) {
      const fname = `${name}_${field.name}`;
      const arm = field.discriminantValue !== NO_DISCRIMINANT;
      const tag = arm ? `\n  b.view.setUint16(s + ${discriminantAt}, ${field.discriminantValue}, true);` : "";
      if (field.which() === Field_Which.GROUP) {
        emit(`export function ${fname}(s) {`, "(s: StructReader): StructReader");
        emit("  return s;");
        emit("}");
        emit(`export function ${name}_init_${field.name}(b, s) {${tag}`, "(b: Builder, s: number): number");
        emit("  return s;");
        emit("}");
        continue;
      }
      const slot = field.slot;
      const type = slot.type;
      const t = type.which();
      const ownerStruct = owner.struct;
      const dataBytes = ownerStruct.dataWordCount * 8;
      const pointerAt = dataBytes + slot.offset * 8;
      const def = slot.defaultValue;
      if (t === Type_Which.VOID) {
        if (arm) {
          emit(`export function ${name}_set_${field.name}(b, s) {${tag}`, "(b: Builder, s: number): void");
          emit("}");
        }
      } else if (t === Type_Which.BOOL) {
        const byte = slot.offset >> 3;
        const bit = slot.offset & 7;
        const d = def.bool ? 1 : 0;
        emit(`export function ${fname}(s) {`, "(s: StructReader): boolean");
        emit(`  return ((s.ds > ${byte} ? (s.r.view.getUint8(s.d + ${byte}) >> ${bit}) & 1 : 0) ^ ${d}) === 1;`);
        emit("}");
        emit(`export function ${name}_set_${field.name}(b, s, v) {${tag}`, "(b: Builder, s: number, v: boolean): void");
        emit(`  const x = b.view.getUint8(s + ${byte});`);
        emit(`  b.view.setUint8(s + ${byte}, (v ? ${1 - d} : ${d}) === 1 ? x | ${1 << bit} : x & ${0xff ^ (1 << bit)});`);
        emit("}");
      } else if (t === Type_Which.INT64 || t === Type_Which.UINT64) {
        const signed = t === Type_Which.INT64;
        const at = slot.offset * 8;
        const d = signed ? def.int64 : def.uint64;
        const big = signed ? "getBigInt64" : "getBigUint64";
        emit(`export const ${fname}_AT = ${at};`, ": number");
        const xor = d === 0n ? "" : ` ^ ${d}n`;
        emit(`export function ${fname}(s) {`, "(s: StructReader): bigint");
        emit(`  return s.ds >= ${at + 8} ? s.r.view.${big}(s.d + ${at}, true)${xor} : ${d}n;`);
        emit("}");
        if (d === 0n) {
          emit(`export function ${fname}_number(s) {`, "(s: StructReader): number | bigint");
          emit(`  return s.ds >= ${at + 8} ? ${signed ? "readInt64Number" : "readUint64Number"}(s.r.view, s.d + ${at}) : 0;`);
          emit("}");
          emit(`export function ${name}_set_${field.name}(b, s, v) {${tag}`, "(b: Builder, s: number, v: bigint | number): void");
          emit(`  ${signed ? "writeInt64" : "writeUint64"}(b.view, s + ${at}, v);`);
          emit("}");
        } else {
          emit(`export function ${name}_set_${field.name}(b, s, v) {${tag}`, "(b: Builder, s: number, v: bigint | number): void");
          emit(`  ${signed ? "writeInt64" : "writeUint64"}(b.view, s + ${at}, BigInt.as${signed ? "" : "U"}intN(64, BigInt(v)${xor}));`);
          emit("}");
        }
      } else if (PRIMITIVES[t]) {
        const p = PRIMITIVES[t];
        const at = slot.offset * p.bytes;
        const d = t === Type_Which.ENUM ? def.enum : def[p.value];
        if ((t === Type_Which.FLOAT32 || t === Type_Which.FLOAT64) && !Object.is(d, 0)) {
          throw new Error(`${fname}: float defaults other than 0 are not supported by this generator`);
        }
        const xor = d === 0 ? "" : ` ^ ${d}`;
        emit(`export const ${fname}_AT = ${at};`, ": number");
        // XOR in JavaScript works on int32: mask back to the field's width.
        const mask = d === 0 ? "" : p.get.startsWith("getUint") ? (p.bytes === 4 ? " >>> 0" : ` & ${2 ** (8 * p.bytes) - 1}`) : "";
        emit(`export function ${fname}(s) {`, "(s: StructReader): number");
        emit(`  return s.ds >= ${at + p.bytes} ? (s.r.view.${p.get}(s.d + ${at}, true)${xor})${mask} : ${d};`);
        emit("}");
        emit(`export function ${name}_set_${field.name}(b, s, v) {${tag}`, "(b: Builder, s: number, v: number): void");
        emit(`  b.view.${p.set}(s + ${at}, v${xor}, true);`);
        emit("}");
      } else if (t === Type_Which.TEXT || t === Type_Which.DATA) {
        const text = t === Type_Which.TEXT;
        const d = text ? (slot.hadExplicitDefault ? JSON.stringify(def.text) : '""') : "EMPTY";
        if (!text && slot.hadExplicitDefault) throw new Error(`${fname}: Data defaults are not supported by this generator`);
        const js = text ? "string" : "Uint8Array";
        emit(`export const ${fname}_AT = ${slot.offset * 8};`, ": number");
        emit(`export function ${fname}(s) {`, `(s: StructReader): ${js}`);
        emit(`  return s.pc > ${slot.offset} ? ${text ? "readText" : "readData"}(s.r, s.p + ${slot.offset * 8}, ${d}) : ${d};`);
        emit("}");
        emit(`export function ${name}_set_${field.name}(b, s, v) {${tag}`, `(b: Builder, s: number, v: ${js}): void`);
        emit(`  b.${text ? "setText" : "setData"}(s + ${pointerAt}, v);`);
        emit("}");
      } else if (t === Type_Which.STRUCT) {
        const target = nodes.get(type.struct.typeId).struct;
        emit(`export function ${fname}(s, out = new StructReader()) {`, "(s: StructReader, out?: StructReader): StructReader");
        emit(`  if (s.pc > ${slot.offset}) return readStruct(s.r, s.p + ${slot.offset * 8}, out);`);
        emit("  out.r = s.r;");
        emit("  out.d = out.p = s.d;");
        emit("  out.ds = out.pc = 0;");
        emit("  return out;");
        emit("}");
        emit(`export function ${name}_init_${field.name}(b, s) {${tag}`, "(b: Builder, s: number): number");
        emit(`  return b.initStruct(s + ${pointerAt}, ${target.dataWordCount}, ${target.pointerCount});`);
        emit("}");
      } else if (t === Type_Which.LIST) {
        const element = type.list.elementType;
        const e = element.which();
        const size = LIST_SIZE[e];
        if (size === undefined) throw new Error(`${fname}: List of type ${e} is not supported by this generator`);
        emit(`export const ${fname}_AT = ${slot.offset * 8};`, ": number");
        emit(`export function ${fname}(s, out = new ListReader()) {`, "(s: StructReader, out?: ListReader): ListReader");
        emit(`  if (s.pc > ${slot.offset}) return readList(s.r, s.p + ${slot.offset * 8}, ${size}, out);`);
        emit("  out.r = s.r;");
        emit("  out.o = s.d;");
        emit("  out.length = out.step = out.ds = out.pc = 0;");
        emit("  return out;");
        emit("}");
        emit(`export function ${name}_init_${field.name}(b, s, n) {${tag}`, "(b: Builder, s: number, n: number): number");
        if (size === 7) {
          const target = nodes.get(element.struct.typeId).struct;
          emit(`  return b.initStructList(s + ${pointerAt}, n, ${target.dataWordCount}, ${target.pointerCount});`);
        } else {
          emit(`  return b.initList(s + ${pointerAt}, ${size}, n);`);
        }
        emit("}");
      } else {
        throw new Error(`${fname}: type ${t} is not supported by this generator`);
      }
    }
    emit();
  }
  // Two exports of one name would be a schema this naming scheme cannot express.
  const seen = new Set();
  for (const line of out) {
    const m = /^export (?:const|function) (\w+)/.exec(line);
    if (m && seen.has(m[1])) throw new Error(`gen-codec: two exports named ${m[1]}`);
    if (m) seen.add(m[1]);
  }
  const header = [
    "// Generated by js/scripts/gen-codec.mjs from schema/monty_wire.cgr: the declarations of",
    "// monty_wire_codec.mjs. Do not edit.",
    'import type { Builder, ListReader, StructReader } from "./runtime.mjs";',
    "",
    'export { Builder, CodecError, ListReader, Reader, StructReader } from "./runtime.mjs";',
    "",
  ];
  return {
    js: `${out.join("\n").replace(/\n{3,}/g, "\n\n").trimEnd()}\n`,
    dts: `${[...header, ...dts].join("\n")}\n`,
  };
}

const js = dirname(dirname(fileURLToPath(import.meta.url)));
/** Where the schema and the generated module live. */
export const CGR_PATH = join(js, "..", "schema", "monty_wire.cgr");
export const CODEC_PATH = join(js, "codec", "monty_wire_codec.mjs");
export const DECLARATIONS_PATH = join(js, "codec", "monty_wire_codec.d.mts");

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { js: text, dts } = generate(await readFile(CGR_PATH));
  await writeFile(CODEC_PATH, text);
  await writeFile(DECLARATIONS_PATH, dts);
  console.log(`gen-codec: ${CODEC_PATH} (${text.length} bytes), ${DECLARATIONS_PATH} (${dts.length} bytes)`);
}
