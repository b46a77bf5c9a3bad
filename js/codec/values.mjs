// Python values as JavaScript values, read from and written to `Value`
// arenas (and the `nodes` lists of `Inputs`, `Arguments`, `NamedValues`)
// through the generated codec.
//
//   Python                  JavaScript
//   None, bool, str         null, boolean, string
//   int                     number when exact (|n| <= 2^53), else BigInt; either kind of node
//   float                   number (write `new Float(x)` to send a whole float as a float)
//   list / tuple            Array / Tuple (an Array subclass)
//   set / frozenset         Set / FrozenSet (a Set subclass)
//   dict                    Map: any key, insertion order
//   bytes                   Uint8Array: a view on the message, or a copy ({ bytes: "copy" })
//   ... / NotImplemented    Ellipsis / NotImplemented (frozen singletons)
//   everything else         Py: { kind: "<Node arm>", ...the arm's fields }
//
// A node used twice is one JavaScript object; a `cycle` leaf is a Py of kind
// "cycle". Written back, a JavaScript object reached twice is one node, and
// a reference back to an enclosing container becomes a `cycle` leaf with the
// placeholder Python shows for it.
import * as C from "./monty_wire_codec.mjs";
import { CodecError, ListReader, StructReader, readInt64Number, readList, readText } from "./runtime.mjs";

// The Node arms, by their schema names: the one place these names appear.
const {
  ellipsis: ELLIPSIS,
  notImplemented: NOT_IMPLEMENTED,
  none: NONE,
  boolValue: BOOL,
  intValue: INT,
  bigInt: BIG_INT,
  float: FLOAT,
  complex: COMPLEX,
  strValue: STR,
  bytes: BYTES,
  date: DATE,
  dateTime: DATE_TIME,
  time: TIME,
  timeDelta: TIME_DELTA,
  timeZone: TIME_ZONE,
  decimal: DECIMAL,
  exception: EXCEPTION,
  type: TYPE,
  builtinFunction: BUILTIN_FUNCTION,
  path: PATH,
  fileHandle: FILE_HANDLE,
  function: FUNCTION,
  repr: REPR,
  cycle: CYCLE,
  list: LIST,
  tuple: TUPLE,
  set: SET,
  frozenSet: FROZEN_SET,
  namedTuple: NAMED_TUPLE,
  dict: DICT,
  classType: CLASS_TYPE,
  classInstance: CLASS_INSTANCE,
  module: MODULE,
} = C.Node_Which;
// After a rename in the schema a name above would read as undefined and
// silently match nothing: refuse to load instead.
const MISSING = [ELLIPSIS, NOT_IMPLEMENTED, NONE, BOOL, INT, BIG_INT, FLOAT, COMPLEX, STR, BYTES, DATE, DATE_TIME, TIME, TIME_DELTA, TIME_ZONE, DECIMAL, EXCEPTION, TYPE, BUILTIN_FUNCTION, PATH, FILE_HANDLE, FUNCTION, REPR, CYCLE, LIST, TUPLE, SET, FROZEN_SET, NAMED_TUPLE, DICT, CLASS_TYPE, CLASS_INSTANCE, MODULE].filter((arm) => typeof arm !== "number").length;
if (MISSING > 0) {
  throw new Error("monty-wire values.mjs: Node's arms in the generated codec are not the ones this file names; update it to the schema");
}
const NODE_ARMS = Object.keys(C.Node_Which);
const EXC_TYPES = Object.keys(C.ExcType);
const FILE_MODES = Object.keys(C.FileMode);

/** A Python tuple. */
export class Tuple extends Array {}
/** A Python frozenset. */
export class FrozenSet extends Set {}
/** A float to write as a float even when it is whole (plain numbers that are whole become ints). */
export class Float {
  constructor(value) {
    this.value = value;
  }
}
/** Any other Python value: `kind` is its Node arm ("date", "namedTuple", ...), the rest its fields. */
export class Py {
  constructor(kind, fields) {
    this.kind = kind;
    if (fields !== undefined) Object.assign(this, fields);
  }
}
export const Ellipsis = Object.freeze(new Py("ellipsis", {}));
export const NotImplemented = Object.freeze(new Py("notImplemented", {}));

const TWO_53 = 2 ** 53;
const TEXT_KINDS = new Set(["decimal", "type", "builtinFunction", "path", "repr", "cycle"]);
/** Node arm -> the getter of a Text arm. */
const TEXT_GETTERS = [];
for (const kind of TEXT_KINDS) TEXT_GETTERS[C.Node_Which[kind]] = C[`Node_${kind}`];

/**
 * Reads and writes the time-of-day fields `DateTime` and `Time` share (`X` is
 * either): hour to microsecond, the UTC offset (null when naive), the zone
 * name (null when none) and fold.
 */
function clock(X) {
  const FIELDS = ["hour", "minute", "second", "microsecond", "fold"];
  const get = FIELDS.map((name) => C[`${X}_${name}`]);
  const set = FIELDS.map((name) => C[`${X}_set_${name}`]);
  // The groups are named after their struct: DateTime.dateTimeOffset, Time.timeOffset, ...
  const OFFSET = `${X}_${X[0].toLowerCase()}${X.slice(1)}Offset`;
  const ZONE = `${X}_${X[0].toLowerCase()}${X.slice(1)}ZoneName`;
  const naive = C[`${OFFSET}_Which`].naive;
  const noZone = C[`${ZONE}_Which`].none;
  return {
    read(sub, v) {
      for (let k = 0; k < FIELDS.length; k++) v[FIELDS[k]] = get[k](sub);
      v.offsetSeconds = C[`${OFFSET}_which`](sub) === naive ? null : C[`${OFFSET}_seconds`](sub);
      v.zoneName = C[`${ZONE}_which`](sub) === noZone ? null : C[`${ZONE}_some`](sub);
      return v;
    },
    write(b, sub, v) {
      for (let k = 0; k < FIELDS.length; k++) set[k](b, sub, v[FIELDS[k]] ?? 0);
      setOptional(b, sub, v.offsetSeconds, C[`${OFFSET}_set_naive`], C[`${OFFSET}_set_seconds`]);
      setOptional(b, sub, v.zoneName, C[`${ZONE}_set_none`], C[`${ZONE}_set_some`]);
    },
  };
}
const DATE_TIME_CLOCK = clock("DateTime");
const TIME_CLOCK = clock("Time");

function child(index, holder) {
  if (index >= holder) {
    throw new CodecError(`node ${holder} refers to node ${index}; a child's index must be lower than its holder's`);
  }
  return index;
}

function optionalText(which, s, read) {
  return which(s) === 0 ? null : read(s);
}

function readBigInt(s, i) {
  const negative = C.BigInt_negative(s);
  const magnitude = C.BigInt_magnitude(s);
  if ((magnitude.length > 0 && magnitude[0] === 0) || (magnitude.length === 0 && negative)) {
    throw new CodecError(`node ${i}: a bigInt that is not in canonical form`);
  }
  if (magnitude.length <= 6) {
    let n = 0;
    for (const byte of magnitude) n = n * 256 + byte;
    return negative ? -n : n;
  }
  let hex = "0x";
  for (const byte of magnitude) hex += (byte < 16 ? "0" : "") + byte.toString(16);
  const big = BigInt(hex);
  if (big <= TWO_53) return negative ? -Number(big) : Number(big);
  return negative ? -big : big;
}

function readPairs(list, out, holder, pair) {
  const map = new Map();
  const i32 = list.r.i32;
  if (i32 !== null && list.ds >= C.Pair_DATA_WORDS * 8) {
    // Full-size pairs in an aligned message: index the words directly.
    const step = list.step >> 2;
    for (let j = 0, w = list.o >> 2; j < list.length; j++, w += step) {
      const key = i32[w + (C.Pair_key_AT >> 2)] >>> 0;
      const value = i32[w + (C.Pair_value_AT >> 2)] >>> 0;
      if (key >= holder || value >= holder) child(Math.max(key, value), holder);
      map.set(out[key], out[value]);
    }
    return map;
  }
  for (let j = 0; j < list.length; j++) {
    list.struct(j, pair);
    map.set(out[child(C.Pair_key(pair), holder)], out[child(C.Pair_value(pair), holder)]);
  }
  return map;
}

/**
 * The JavaScript values of every node of an arena (`nodes`, a ListReader of
 * Node): `result[i]` is node i. One forward pass; children come first.
 * `options.bytes`: "view" (default: a Uint8Array on the message, valid as
 * long as its bytes are) or "copy".
 */
export function readNodes(nodes, options) {
  const n = nodes.length;
  const out = new Array(n);
  if (n === 0) return out;
  // Any kind of element from the start: a first float would make V8 store
  // unboxed doubles, and the first object after it copy the whole array.
  out[0] = null;
  const s = nodes.struct(0);
  const at = new Context(options);
  const { r, o, step, ds } = nodes;
  const view = r.view;
  // Nodes whose sections are the schema's full size (what the library
  // writes) are read by offset for the common arms; the rest, and any
  // shorter node, through the cursor.
  const i32 = r.i32;
  const full = ds >= C.Node_DATA_WORDS * 8 && nodes.pc >= C.Node_POINTERS && i32 !== null;
  const whichWord = C.Node_WHICH_AT >> 2;
  const whichShift = (C.Node_WHICH_AT & 2) * 8;
  const intWord = C.Node_intValue_AT >> 2;
  for (let i = 0; i < n; i++) {
    // Node i: only the section starts move from one node to the next.
    const d = o + i * step;
    if (full) {
      const w = d >> 2;
      const which = (i32[w + whichWord] >>> whichShift) & 0xffff;
      if (which === INT) {
        const lo = i32[w + intWord];
        const hi = i32[w + intWord + 1];
        out[i] = (hi === 0 && lo >= 0) || (hi === -1 && lo < 0) ? lo : readInt64Number(view, d + C.Node_intValue_AT);
        continue;
      }
      if (which === STR) {
        out[i] = readText(r, d + ds + C.Node_strValue_AT, "");
        continue;
      }
      if (which === TUPLE) {
        out[i] = readItems(readList(r, d + ds + C.Node_tuple_AT, U32_LIST, at.list), new Tuple(at.list.length), out, i);
        continue;
      }
      if (which === LIST) {
        out[i] = readItems(readList(r, d + ds + C.Node_list_AT, U32_LIST, at.list), new Array(at.list.length), out, i);
        continue;
      }
    }
    s.d = d;
    s.p = d + ds;
    out[i] = readNode(s, C.Node_which(s), i, out, at);
  }
  return out;
}

/** The element size code of a List(UInt32). */
const U32_LIST = 4;

/** Cursors and options one readNodes call reuses. */
class Context {
  constructor(options) {
    this.copyBytes = options?.bytes === "copy";
    this.sub = new StructReader();
    this.pair = new StructReader();
    this.list = new ListReader();
  }
}

/** Fills `items` with the nodes a List(UInt32) of indices names. */
function readItems(list, items, out, holder) {
  const len = list.length;
  const i32 = list.r.i32;
  if (i32 !== null) {
    // Indices are UInt32 and the list 4-byte aligned: (x >>> 0) reads one.
    for (let j = 0, w = list.o >> 2; j < len; j++) {
      const c = i32[w + j] >>> 0;
      if (c >= holder) child(c, holder);
      items[j] = out[c];
    }
    return items;
  }
  const view = list.r.view;
  for (let j = 0; j < len; j++) items[j] = out[child(view.getUint32(list.o + 4 * j, true), holder)];
  return items;
}

/** Node `i` (at cursor `s`, union arm `which`) as a JavaScript value. */
function readNode(s, which, i, out, at) {
  const { sub, pair, list, copyBytes } = at;
  let v;
  switch (which) {
    case INT:
      v = C.Node_intValue_number(s);
      break;
    case STR:
      v = C.Node_strValue(s);
      break;
    case TUPLE:
    case LIST: {
      if (which === TUPLE) C.Node_tuple(s, list);
      else C.Node_list(s, list);
      v = readItems(list, which === TUPLE ? new Tuple(list.length) : new Array(list.length), out, i);
      break;
    }
    case DICT:
      v = readPairs(C.Node_dict(s, list), out, i, pair);
      break;
    case FLOAT:
      v = C.Node_float(s);
      break;
    case BOOL:
      v = C.Node_boolValue(s);
      break;
    case NONE:
      v = null;
      break;
    case BYTES: {
      const view = C.Node_bytes(s);
      v = copyBytes ? view.slice() : view;
      break;
    }
    case SET:
    case FROZEN_SET: {
      if (which === SET) C.Node_set(s, list);
      else C.Node_frozenSet(s, list);
      const set = which === SET ? new Set() : new FrozenSet();
      for (let j = 0; j < list.length; j++) set.add(out[child(list.u32(j), i)]);
      v = set;
      break;
    }
    case BIG_INT:
      v = readBigInt(C.Node_bigInt(s, sub), i);
      break;
    case ELLIPSIS:
      v = Ellipsis;
      break;
    case NOT_IMPLEMENTED:
      v = NotImplemented;
      break;
    case COMPLEX:
      C.Node_complex(s, sub);
      v = new Py("complex", { real: C.Complex_real(sub), imag: C.Complex_imag(sub) });
      break;
    case DATE:
      C.Node_date(s, sub);
      v = new Py("date");
      v.year = C.Date_year(sub);
      v.month = C.Date_month(sub);
      v.day = C.Date_day(sub);
      break;
    case DATE_TIME:
      C.Node_dateTime(s, sub);
      v = new Py("dateTime");
      v.year = C.DateTime_year(sub);
      v.month = C.DateTime_month(sub);
      v.day = C.DateTime_day(sub);
      DATE_TIME_CLOCK.read(sub, v);
      break;
    case TIME:
      v = TIME_CLOCK.read(C.Node_time(s, sub), new Py("time"));
      break;
    case TIME_DELTA:
      C.Node_timeDelta(s, sub);
      v = new Py("timeDelta", {
        days: C.TimeDelta_days(sub),
        seconds: C.TimeDelta_seconds(sub),
        microseconds: C.TimeDelta_microseconds(sub),
      });
      break;
    case TIME_ZONE:
      C.Node_timeZone(s, sub);
      v = new Py("timeZone", {
        offsetSeconds: C.TimeZone_offsetSeconds(sub),
        name: optionalText(C.TimeZone_name_which, sub, C.TimeZone_name_some),
      });
      break;
    case EXCEPTION:
      C.Node_exception(s, sub);
      v = new Py("exception", {
        type: EXC_TYPES[C.ExceptionValue_type(sub)] ?? C.ExceptionValue_type(sub),
        arg: optionalText(C.ExceptionValue_arg_which, sub, C.ExceptionValue_arg_some),
      });
      break;
    case DECIMAL:
    case TYPE:
    case BUILTIN_FUNCTION:
    case PATH:
    case REPR:
    case CYCLE:
      v = new Py(NODE_ARMS[which], { value: TEXT_GETTERS[which](s) });
      break;
    case FILE_HANDLE:
      C.Node_fileHandle(s, sub);
      v = new Py("fileHandle", {
        path: C.FileHandle_path(sub),
        mode: FILE_MODES[C.FileHandle_mode(sub)] ?? C.FileHandle_mode(sub),
        binary: C.FileHandle_binary(sub),
        position: C.FileHandle_position_number(sub),
      });
      break;
    case FUNCTION:
      C.Node_function(s, sub);
      v = new Py("function", {
        name: C.Function_name(sub),
        docstring: optionalText(C.Function_docstring_which, sub, C.Function_docstring_some),
      });
      break;
    case NAMED_TUPLE: {
      C.Node_namedTuple(s, sub);
      const names = C.NamedTuple_fieldNames(sub, new ListReader());
      const fieldNames = new Array(names.length);
      for (let j = 0; j < names.length; j++) fieldNames[j] = names.text(j);
      C.NamedTuple_values(sub, list);
      const values = new Array(list.length);
      for (let j = 0; j < list.length; j++) values[j] = out[child(list.u32(j), i)];
      v = new Py("namedTuple", { typeName: C.NamedTuple_typeName(sub), fieldNames, values });
      break;
    }
    case CLASS_TYPE:
      C.Node_classType(s, sub);
      v = new Py("classType", {
        name: C.ClassType_name(sub),
        id: C.ClassType_id(sub).slice(),
        hostDefined: C.ClassType_hostDefined(sub),
        isDataclass: C.ClassType_isDataclass(sub),
        attrs: readPairs(C.ClassType_attrs(sub, list), out, i, pair),
      });
      break;
    case CLASS_INSTANCE:
      C.Node_classInstance(s, sub);
      v = new Py("classInstance", {
        classType: out[child(C.ClassInstance_classType(sub), i)],
        instanceId: C.ClassInstance_instanceId(sub).slice(),
        attrs: readPairs(C.ClassInstance_attrs(sub, list), out, i, pair),
      });
      break;
    case MODULE:
      C.Node_module(s, sub);
      v = new Py("module", {
        name: C.Module_name(sub),
        id: C.Module_id(sub).slice(),
        attrs: readPairs(C.Module_attrs(sub, list), out, i, pair),
      });
      break;
    default:
      throw new CodecError(`node ${i} has union arm ${which}, which this codec does not know`);
  }
  return v;
}

/** The JavaScript value of a `Value` struct (a StructReader). */
export function readValue(value, options) {
  const nodes = readNodes(C.Value_nodes(value), options);
  const root = C.Value_root(value);
  if (root >= nodes.length) throw new CodecError(`the root index ${root} is outside the arena of ${nodes.length} nodes`);
  return nodes[root];
}

/** Reads a framed message whose root is a `Value`: bytes in, JavaScript value out. */
export function decodeValue(bytes, options) {
  return readValue(new C.Reader(bytes).root(), options);
}

// --- writing -----------------------------------------------------------------

const CYCLE_TEXT = (v) => (v instanceof Tuple ? "(...)" : Array.isArray(v) ? "[...]" : v instanceof Py ? "..." : "{...}");

/**
 * Lays out JavaScript values as an arena in post-order: `add(v)` returns
 * v's node index. Objects reached twice get one node; a reference back to a
 * container being laid out becomes a cycle leaf.
 */
class Arena {
  values = [];
  kids = [];
  #seen = new Map();
  #open = new Set();

  add(v) {
    const isObject = typeof v === "object" && v !== null;
    if (isObject) {
      const known = this.#seen.get(v);
      if (known !== undefined) return known;
      if (this.#open.has(v)) return this.#leaf(new Py("cycle", { value: CYCLE_TEXT(v) }), null);
      this.#open.add(v);
    }
    let kids = null;
    if (Array.isArray(v)) {
      kids = v.map((item) => this.add(item));
    } else if (v instanceof Set) {
      kids = [...v].map((item) => this.add(item));
    } else if (v instanceof Map) {
      kids = [];
      for (const [key, value] of v) kids.push(this.add(key), this.add(value));
    } else if (v instanceof Py) {
      if (v.kind === "namedTuple") kids = v.values.map((item) => this.add(item));
      else if (v.kind === "classInstance") kids = [this.add(v.classType), ...this.#pairs(v.attrs)];
      else if (v.kind === "classType" || v.kind === "module") kids = this.#pairs(v.attrs);
    }
    const index = this.#leaf(v, kids);
    if (isObject) {
      this.#open.delete(v);
      this.#seen.set(v, index);
    }
    return index;
  }

  #pairs(attrs) {
    const kids = [];
    for (const [key, value] of attrs ?? []) kids.push(this.add(key), this.add(value));
    return kids;
  }

  #leaf(v, kids) {
    this.values.push(v);
    this.kids.push(kids);
    return this.values.length - 1;
  }
}

function writeU32List(b, at, kids, from = 0) {
  for (let j = from; j < kids.length; j++) b.view.setUint32(at + (j - from) * 4, kids[j], true);
}

function writePairs(b, at, kids, from) {
  for (let j = from; j < kids.length; j += 2) {
    const p = at + ((j - from) / 2) * C.Pair_BYTES;
    C.Pair_set_key(b, p, kids[j]);
    C.Pair_set_value(b, p, kids[j + 1]);
  }
}

function writeInt(b, s, v) {
  if (typeof v === "number" ? Number.isInteger(v) && Math.abs(v) < 2 ** 63 : v >= -(2n ** 63n) && v < 2n ** 63n) {
    C.Node_set_intValue(b, s, v);
    return;
  }
  const big = BigInt(v);
  const negative = big < 0n;
  let hex = (negative ? -big : big).toString(16);
  if (hex.length % 2) hex = `0${hex}`;
  const magnitude = new Uint8Array(hex.length / 2);
  for (let j = 0; j < magnitude.length; j++) magnitude[j] = parseInt(hex.slice(2 * j, 2 * j + 2), 16);
  const sub = C.Node_init_bigInt(b, s);
  C.BigInt_set_negative(b, sub, negative);
  C.BigInt_set_magnitude(b, sub, magnitude);
}

/** Sets the `none` arm of an optional union for null or undefined, else the other arm to `value`. */
function setOptional(b, s, value, setNone, setSome) {
  if (value === null || value === undefined) setNone(b, s);
  else setSome(b, s, value);
}

function writeNode(b, s, v, kids) {
  switch (typeof v) {
    case "number":
      if (Number.isInteger(v) && !Object.is(v, -0)) writeInt(b, s, v);
      else C.Node_set_float(b, s, v);
      return;
    case "bigint":
      writeInt(b, s, v);
      return;
    case "string":
      C.Node_set_strValue(b, s, v);
      return;
    case "boolean":
      C.Node_set_boolValue(b, s, v);
      return;
  }
  if (v === null || v === undefined) {
    C.Node_set_none(b, s);
  } else if (Array.isArray(v)) {
    writeU32List(b, v instanceof Tuple ? C.Node_init_tuple(b, s, kids.length) : C.Node_init_list(b, s, kids.length), kids);
  } else if (v instanceof Set) {
    writeU32List(b, v instanceof FrozenSet ? C.Node_init_frozenSet(b, s, kids.length) : C.Node_init_set(b, s, kids.length), kids);
  } else if (v instanceof Map) {
    writePairs(b, C.Node_init_dict(b, s, kids.length / 2), kids, 0);
  } else if (v instanceof Uint8Array) {
    C.Node_set_bytes(b, s, v);
  } else if (v instanceof Float) {
    C.Node_set_float(b, s, v.value);
  } else if (v instanceof Py) {
    writePy(b, s, v, kids);
  } else {
    throw new TypeError(`monty-wire: cannot send ${Object.prototype.toString.call(v)} as a Python value`);
  }
}

function writePy(b, s, v, kids) {
  switch (v.kind) {
    case "ellipsis":
      return C.Node_set_ellipsis(b, s);
    case "notImplemented":
      return C.Node_set_notImplemented(b, s);
    case "complex": {
      const sub = C.Node_init_complex(b, s);
      C.Complex_set_real(b, sub, v.real);
      C.Complex_set_imag(b, sub, v.imag);
      return;
    }
    case "date": {
      const sub = C.Node_init_date(b, s);
      C.Date_set_year(b, sub, v.year);
      C.Date_set_month(b, sub, v.month);
      C.Date_set_day(b, sub, v.day);
      return;
    }
    case "dateTime": {
      const sub = C.Node_init_dateTime(b, s);
      C.DateTime_set_year(b, sub, v.year);
      C.DateTime_set_month(b, sub, v.month);
      C.DateTime_set_day(b, sub, v.day);
      DATE_TIME_CLOCK.write(b, sub, v);
      return;
    }
    case "time":
      TIME_CLOCK.write(b, C.Node_init_time(b, s), v);
      return;
    case "timeDelta": {
      const sub = C.Node_init_timeDelta(b, s);
      C.TimeDelta_set_days(b, sub, v.days);
      C.TimeDelta_set_seconds(b, sub, v.seconds);
      C.TimeDelta_set_microseconds(b, sub, v.microseconds);
      return;
    }
    case "timeZone": {
      const sub = C.Node_init_timeZone(b, s);
      C.TimeZone_set_offsetSeconds(b, sub, v.offsetSeconds);
      setOptional(b, sub, v.name, C.TimeZone_name_set_none, C.TimeZone_name_set_some);
      return;
    }
    case "exception": {
      const sub = C.Node_init_exception(b, s);
      C.ExceptionValue_set_type(b, sub, typeof v.type === "number" ? v.type : C.ExcType[v.type]);
      setOptional(b, sub, v.arg, C.ExceptionValue_arg_set_none, C.ExceptionValue_arg_set_some);
      return;
    }
    case "fileHandle": {
      const sub = C.Node_init_fileHandle(b, s);
      C.FileHandle_set_path(b, sub, v.path);
      C.FileHandle_set_mode(b, sub, typeof v.mode === "number" ? v.mode : C.FileMode[v.mode]);
      C.FileHandle_set_binary(b, sub, v.binary);
      C.FileHandle_set_position(b, sub, v.position);
      return;
    }
    case "function": {
      const sub = C.Node_init_function(b, s);
      C.Function_set_name(b, sub, v.name);
      setOptional(b, sub, v.docstring, C.Function_docstring_set_none, C.Function_docstring_set_some);
      return;
    }
    case "namedTuple": {
      const sub = C.Node_init_namedTuple(b, s);
      C.NamedTuple_set_typeName(b, sub, v.typeName);
      const names = C.NamedTuple_init_fieldNames(b, sub, v.fieldNames.length);
      v.fieldNames.forEach((name, j) => b.setText(names + j * 8, name));
      writeU32List(b, C.NamedTuple_init_values(b, sub, kids.length), kids);
      return;
    }
    case "classType": {
      const sub = C.Node_init_classType(b, s);
      C.ClassType_set_name(b, sub, v.name);
      C.ClassType_set_id(b, sub, v.id);
      C.ClassType_set_hostDefined(b, sub, v.hostDefined);
      C.ClassType_set_isDataclass(b, sub, v.isDataclass);
      writePairs(b, C.ClassType_init_attrs(b, sub, kids.length / 2), kids, 0);
      return;
    }
    case "classInstance": {
      const sub = C.Node_init_classInstance(b, s);
      C.ClassInstance_set_classType(b, sub, kids[0]);
      C.ClassInstance_set_instanceId(b, sub, v.instanceId);
      writePairs(b, C.ClassInstance_init_attrs(b, sub, (kids.length - 1) / 2), kids, 1);
      return;
    }
    case "module": {
      const sub = C.Node_init_module(b, s);
      C.Module_set_name(b, sub, v.name);
      C.Module_set_id(b, sub, v.id);
      writePairs(b, C.Module_init_attrs(b, sub, kids.length / 2), kids, 0);
      return;
    }
  }
  if (TEXT_KINDS.has(v.kind)) {
    C[`Node_set_${v.kind}`](b, s, v.value);
    return;
  }
  throw new TypeError(`monty-wire: unknown Py kind ${v.kind}`);
}

/**
 * Writes `roots` (JavaScript values) as one arena: allocates the list of
 * nodes with `initNodes(n)` (e.g. `(n) => C.Value_init_nodes(b, s, n)`) and
 * returns the node index of each root. Shared objects stay shared across roots.
 */
export function writeNodes(b, initNodes, roots) {
  const arena = new Arena();
  const indices = roots.map((v) => arena.add(v));
  const { values, kids } = arena;
  const first = initNodes(values.length);
  for (let i = 0; i < values.length; i++) writeNode(b, first + i * C.Node_BYTES, values[i], kids[i]);
  return indices;
}

/** Writes `value` into the `Value` struct at offset `s` of builder `b`. */
export function writeValue(b, s, value) {
  const [root] = writeNodes(b, (n) => C.Value_init_nodes(b, s, n), [value]);
  C.Value_set_root(b, s, root);
}

/** A framed message whose root is a `Value` holding `value`, in builder `b` (reset first). */
export function encodeValue(value, b = new C.Builder()) {
  b.reset();
  writeValue(b, C.Value_newRoot(b), value);
  return b.finish();
}
