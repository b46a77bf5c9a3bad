// Request builders and response readers over the capnp-es code generated
// from schema/monty_wire.cgr (js/gen/, made by js/scripts/gen-schema.mjs).
// Shared by the Node tests and the browser page, so nothing Node-only here.
import * as capnp from "capnp-es";
import * as S from "../gen/monty_wire.js";

export { S };

/** Builds a `Request` with `fill(request)` and returns its framed, unpacked bytes. */
export function request(fill) {
  const message = new capnp.Message();
  fill(message.initRoot(S.Request));
  return new Uint8Array(message.toArrayBuffer());
}

/** Reads a `Response` from bytes (a view on linear memory is fine: capnp-es copies it). */
export function response(bytes) {
  // `false`: not packed (capnp-es assumes packed by default).
  return new capnp.Message(bytes, false).getRoot(S.Response);
}

export function openRun(code, { scriptName, inputNames = [], maxRecursionDepth, maxTurnNanos, maxMemoryBytes, cwd } = {}) {
  return request((r) => {
    const open = r._initOpenRun();
    open.code = code;
    if (scriptName !== undefined) open.scriptName = scriptName;
    if (cwd !== undefined) open.cwd = cwd;
    const names = open._initInputNames(inputNames.length);
    inputNames.forEach((name, i) => names.set(i, name));
    if (maxRecursionDepth !== undefined || maxTurnNanos !== undefined || maxMemoryBytes !== undefined) {
      const limits = open._initLimits();
      if (maxRecursionDepth !== undefined) limits.maxRecursionDepth = BigInt(maxRecursionDepth);
      if (maxTurnNanos !== undefined) limits._initMaxTurnDuration().nanos = BigInt(maxTurnNanos);
      if (maxMemoryBytes !== undefined) limits._initMaxMemory().bytes = BigInt(maxMemoryBytes);
    }
  });
}

/** `start` (or `run`) with inputs that are host functions, by name. */
export function start(functionNames = [], { arm = "start" } = {}) {
  return request((r) => {
    const inputs = arm === "run" ? r._initRun() : r._initStart();
    const nodes = inputs._initNodes(functionNames.length);
    const roots = inputs._initRoots(functionNames.length);
    functionNames.forEach((name, i) => {
      nodes.get(i)._initFunction().name = name;
      roots.set(i, i);
    });
  });
}

export const run = () => start([], { arm: "run" });

/** Fills a `Value` from a small JS value: null, boolean, integer (number or bigint), string, array (list). */
export function fillValue(value, js) {
  const flat = [];
  const add = (v) => {
    if (Array.isArray(v)) {
      const items = v.map(add);
      flat.push({ list: items });
    } else {
      flat.push({ leaf: v });
    }
    return flat.length - 1;
  };
  const root = add(js);
  const nodes = value._initNodes(flat.length);
  flat.forEach((entry, i) => {
    const node = nodes.get(i);
    if (entry.list) {
      const list = node._initList(entry.list.length);
      entry.list.forEach((child, j) => list.set(j, child));
      return;
    }
    const v = entry.leaf;
    if (v === null) node.none = true;
    else if (typeof v === "boolean") node.boolValue = v;
    else if (typeof v === "bigint" || Number.isInteger(v)) node.intValue = BigInt(v);
    else if (typeof v === "number") node.float = v;
    else if (typeof v === "string") node.strValue = v;
    else throw new TypeError(`fillValue: ${typeof v}`);
  });
  value.root = root;
}

export const resumeCall = (js) => request((r) => fillValue(r._initResumeCall()._initValue(), js));
export const resumeCallFuture = () => request((r) => (r._initResumeCall().future = true));
export const resumeOsCall = (js) => request((r) => fillValue(r._initResumeOsCall()._initValue(), js));

/** `resolveFutures` with `[callId, jsValue]` pairs. */
export function resolveFutures(pairs) {
  return request((r) => {
    const list = r._initResolveFutures(pairs.length);
    pairs.forEach(([callId, js], i) => {
      const item = list.get(i);
      item.callId = callId;
      fillValue(item._initResult()._initValue(), js);
    });
  });
}

/** The name of the response's union arm: "complete", "functionCall", ... */
export function which(resp) {
  const arm = resp.which();
  const name = Object.entries(S.Response_Which).find(([, v]) => v === arm)?.[0];
  return name.toLowerCase().replace(/_([a-z])/g, (_, c) => c.toUpperCase());
}

export function enumName(enumObject, value) {
  return Object.entries(enumObject).find(([, v]) => v === value)?.[0];
}

/** Python's repr() of a `Value` (the node kinds these tests meet). */
export function repr(value) {
  const nodes = value.nodes;
  const memo = new Map();
  const show = (i) => {
    if (memo.has(i)) return memo.get(i);
    const node = nodes.get(i);
    const W = S.Node_Which;
    const items = (list) => Array.from({ length: list.length }, (_, j) => show(list.get(j)));
    let text;
    switch (node.which()) {
      case W.NONE:
        text = "None";
        break;
      case W.BOOL_VALUE:
        text = node.boolValue ? "True" : "False";
        break;
      case W.INT_VALUE:
        text = String(node.intValue);
        break;
      case W.BIG_INT: {
        const big = node.bigInt;
        let n = 0n;
        for (const byte of big.magnitude.toUint8Array()) n = (n << 8n) | BigInt(byte);
        text = String(big.negative ? -n : n);
        break;
      }
      case W.FLOAT:
        text = Number.isInteger(node.float) ? node.float.toFixed(1) : String(node.float);
        break;
      case W.STR_VALUE:
        text = `'${node.strValue.replace(/\\/g, "\\\\").replace(/'/g, "\\'").replace(/\n/g, "\\n")}'`;
        break;
      case W.LIST:
        text = `[${items(node.list).join(", ")}]`;
        break;
      case W.TUPLE: {
        const parts = items(node.tuple);
        text = parts.length === 1 ? `(${parts[0]},)` : `(${parts.join(", ")})`;
        break;
      }
      case W.DICT: {
        const pairs = node.dict;
        const parts = Array.from({ length: pairs.length }, (_, j) => {
          const p = pairs.get(j);
          return `${show(p.key)}: ${show(p.value)}`;
        });
        text = `{${parts.join(", ")}}`;
        break;
      }
      default:
        text = `<${enumName(W, node.which())}>`;
    }
    memo.set(i, text);
    return text;
  };
  return show(value.root);
}

/** `(stream, text)` pairs of the response's `output`. */
export function output(resp) {
  const segments = resp.output;
  return Array.from({ length: segments.length }, (_, i) => {
    const s = segments.get(i);
    return [s.stream === S.PrintStream.STDOUT ? "stdout" : "stderr", s.text];
  });
}
