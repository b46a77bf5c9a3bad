// The hand-written half of the schema codec: reading and writing Cap'n Proto
// messages as monty-wire writes them (one segment, unpacked) on a DataView,
// with no object per field. monty_wire_codec.mjs, generated from the schema
// by js/scripts/gen-codec.mjs, holds the other half: where every field lives.
//
// Reading: `new Reader(bytes)` checks the frame; `reader.root(out)` and the
// generated getters fill small cursor objects (`StructReader`, `ListReader`)
// that the caller may reuse. Every pointer is bounds-checked when followed.
// What the library never writes is refused with a `CodecError`: far
// pointers, capabilities, messages of more than one segment, trailing bytes.
//
// Writing: a `Builder` fills one reused, growable buffer; structs and lists
// are byte offsets into it (plain numbers, valid across growth), and
// `finish()` returns the framed message as a view on that buffer.

const TEXT_DECODER = new TextDecoder();
const TEXT_ENCODER = new TextEncoder();
const TWO_32 = 4294967296;
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** A message this codec cannot read: malformed, truncated, or a form the library never writes. */
export class CodecError extends Error {
  constructor(message) {
    super(`monty-wire codec: ${message}`);
    this.name = "CodecError";
  }
}

/** A struct in a message being read: its data and pointer sections (byte offsets into `r.view`). */
export class StructReader {
  constructor() {
    /** @type {Reader} */
    this.r = null;
    /** Data section: start and size in bytes. */
    this.d = 0;
    this.ds = 0;
    /** Pointer section: start, and number of pointers. */
    this.p = 0;
    this.pc = 0;
  }
}

/** A list in a message being read. Elements are `step` bytes apart from `o`. */
export class ListReader {
  constructor() {
    /** @type {Reader} */
    this.r = null;
    this.o = 0;
    /** Number of elements. */
    this.length = 0;
    this.step = 0;
    /** For lists of structs: each element's data size (bytes) and pointer count. */
    this.ds = 0;
    this.pc = 0;
  }

  /** Element `i` of a List(UInt32). */
  u32(i) {
    if (i >>> 0 >= this.length) throw new RangeError(`list index ${i} out of range (length ${this.length})`);
    return this.r.view.getUint32(this.o + i * 4, true);
  }

  /** Element `i` of a list of structs, into `out`. */
  struct(i, out = new StructReader()) {
    if (i >>> 0 >= this.length) throw new RangeError(`list index ${i} out of range (length ${this.length})`);
    out.r = this.r;
    out.d = this.o + i * this.step;
    out.ds = this.ds;
    out.p = out.d + this.ds;
    out.pc = this.pc;
    return out;
  }

  /** Element `i` of a List(Text). */
  text(i) {
    if (i >>> 0 >= this.length) throw new RangeError(`list index ${i} out of range (length ${this.length})`);
    return readText(this.r, this.o + i * 8, "");
  }

  /** Element `i` of a List(Data), a view on the message. */
  data(i) {
    if (i >>> 0 >= this.length) throw new RangeError(`list index ${i} out of range (length ${this.length})`);
    return readData(this.r, this.o + i * 8, EMPTY);
  }
}

const EMPTY = new Uint8Array(0);

/**
 * A framed, single-segment message to read. The bytes are read in place,
 * never copied. `u8`, `view` and `i32` cover the whole buffer the message is
 * in, and every offset (`start`, `end`, the cursors') is a byte offset in
 * that buffer, so `reset` can read the next message of the same buffer (a
 * host's turn loop on linear memory) without making new views.
 */
export class Reader {
  /** @param {Uint8Array | ArrayBuffer} bytes */
  constructor(bytes) {
    this.u8 = null;
    this.view = null;
    this.i32 = null;
    /** The whole buffer as int32 words (little-endian platforms), or null. */
    this.words = null;
    this.start = 0;
    this.end = 0;
    /** Scratch: the byte length of the last Text or Data followed. */
    this.len = 0;
    /**
     * List elements left to hand out. A message whose pointers alias one list
     * many times could otherwise make a reader walk far more elements than
     * the message holds (Cap'n Proto's traversal limit, in elements).
     */
    this.budget = 0;
    this.reset(bytes);
  }

  /**
   * Reads another message instead, checking its frame as the constructor
   * does. Views are made again only when `bytes` is on another buffer (or
   * the buffer changed size): a WebAssembly memory that grew.
   */
  reset(bytes) {
    const u8 = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
    const buffer = u8.buffer;
    if (this.u8 === null || this.u8.buffer !== buffer || this.u8.length !== buffer.byteLength) {
      this.u8 = new Uint8Array(buffer);
      this.view = new DataView(buffer);
      this.words = LITTLE_ENDIAN ? new Int32Array(buffer, 0, buffer.byteLength >> 2) : null;
    }
    const at = u8.byteOffset;
    const n = u8.byteLength;
    if (n < 8) throw new CodecError("truncated message: no segment table");
    const view = this.view;
    const segments = view.getUint32(at, true) + 1;
    if (segments !== 1) {
      throw new CodecError(`the message has ${segments} segments; monty-wire writes and reads single-segment messages`);
    }
    const words = view.getUint32(at + 4, true);
    const size = 8 + words * 8;
    if (size > n) throw new CodecError(`truncated message: the segment needs ${size} bytes, there are ${n}`);
    if (size < n) throw new CodecError(`${n - size} trailing bytes after the message`);
    if (words === 0) throw new CodecError("truncated message: the segment has no root pointer");
    this.start = at + 8;
    this.end = at + size;
    this.len = 0;
    this.budget = 8 * words;
    /**
     * The buffer as int32 words, when the message is 4-byte aligned and the
     * platform little-endian (typed arrays use the platform's byte order):
     * the fastest reads V8 has, for readers that index fields directly
     * (word `offset >> 2`). Else null.
     */
    this.i32 = (at & 3) === 0 ? this.words : null;
    return this;
  }

  /** The root struct, into `out`. */
  root(out = new StructReader()) {
    return readStruct(this, this.start, out);
  }
}

function pointerKindError(lo, expected, at) {
  const kind = lo & 3;
  if (kind === 2) return new CodecError(`far pointer at byte ${at}: monty-wire messages have one segment and no far pointers`);
  if (kind === 3) return new CodecError(`capability pointer at byte ${at}: monty-wire messages carry no capabilities`);
  return new CodecError(`expected a ${expected} pointer at byte ${at}, found a ${kind === 0 ? "struct" : "list"} pointer`);
}

/** Follows the struct pointer at byte `at` into `out` (an empty struct, all defaults, if it is null). */
export function readStruct(r, at, out) {
  const v = r.view;
  const lo = v.getUint32(at, true);
  const hi = v.getUint32(at + 4, true);
  out.r = r;
  if (lo === 0 && hi === 0) {
    out.d = out.p = at;
    out.ds = out.pc = 0;
    return out;
  }
  if ((lo & 3) !== 0) throw pointerKindError(lo, "struct", at);
  const d = at + 8 + (lo >> 2) * 8;
  const ds = (hi & 0xffff) * 8;
  const pc = hi >>> 16;
  if (d < r.start || d + ds + pc * 8 > r.end) throw new CodecError(`struct pointer at byte ${at} points outside the message`);
  out.d = d;
  out.ds = ds;
  out.p = d + ds;
  out.pc = pc;
  return out;
}

// Element sizes of a list pointer: how many bits one element takes.
const ELEMENT_BITS = [0, 1, 8, 16, 32, 64, 64];
const COMPOSITE = 7;

/**
 * Follows the list pointer at byte `at` into `out` (an empty list if it is
 * null). `size` is the element size code the schema implies (0 void ... 6
 * pointer, 7 structs); any other encoding is refused.
 */
export function readList(r, at, size, out) {
  const v = r.view;
  const lo = v.getUint32(at, true);
  const hi = v.getUint32(at + 4, true);
  out.r = r;
  if (lo === 0 && hi === 0) {
    out.o = at;
    out.length = out.step = out.ds = out.pc = 0;
    return out;
  }
  if ((lo & 3) !== 1) throw pointerKindError(lo, "list", at);
  const got = hi & 7;
  if (got !== size) throw new CodecError(`list at byte ${at} has element size code ${got}; the schema's type needs ${size}`);
  const body = at + 8 + (lo >> 2) * 8;
  const count = hi >>> 3;
  r.budget -= count;
  if (r.budget < 0) throw new CodecError(`the message's lists hold more elements, followed so far, than 8 per word of the message: pointers alias one list too often`);
  if (size !== COMPOSITE) {
    const bytes = Math.ceil((count * ELEMENT_BITS[size]) / 8);
    if (body < r.start || body + bytes > r.end) throw new CodecError(`list pointer at byte ${at} points outside the message`);
    if (size === 0 && count > (r.end - r.start) / 8) throw new CodecError(`list at byte ${at} claims more elements than the message has words`);
    out.o = body;
    out.length = count;
    out.step = ELEMENT_BITS[size] / 8;
    out.ds = out.pc = 0;
    return out;
  }
  // `count` is in words; a tag word in front describes the elements.
  if (body < r.start || body + 8 + count * 8 > r.end) throw new CodecError(`list pointer at byte ${at} points outside the message`);
  const tagLo = v.getUint32(body, true);
  const tagHi = v.getUint32(body + 4, true);
  if ((tagLo & 3) !== 0) throw new CodecError(`the struct list at byte ${at} has a malformed tag`);
  const elements = tagLo >>> 2;
  const ds = (tagHi & 0xffff) * 8;
  const pc = tagHi >>> 16;
  const step = ds + pc * 8;
  if (elements * step > count * 8) throw new CodecError(`the struct list at byte ${at} has more elements than its words hold`);
  if (step === 0 && elements > (r.end - r.start) / 8) throw new CodecError(`the struct list at byte ${at} claims more elements than the message has words`);
  out.o = body + 8;
  out.length = elements;
  out.step = step;
  out.ds = ds;
  out.pc = pc;
  return out;
}

/** The bytes of the List(UInt8) at byte `at`: start and length, or -1 for null. */
function bytesAt(r, at, what) {
  const v = r.view;
  const lo = v.getUint32(at, true);
  const hi = v.getUint32(at + 4, true);
  if (lo === 0 && hi === 0) return -1;
  if ((lo & 3) !== 1) throw pointerKindError(lo, what, at);
  if ((hi & 7) !== 2) throw new CodecError(`${what} at byte ${at} is not a list of bytes`);
  const body = at + 8 + (lo >> 2) * 8;
  const count = hi >>> 3;
  if (body < r.start || body + count > r.end) throw new CodecError(`${what} pointer at byte ${at} points outside the message`);
  r.len = count;
  return body;
}

/** The Text at pointer `at`; `fallback` if the pointer is null. */
export function readText(r, at, fallback) {
  const body = bytesAt(r, at, "text");
  if (body < 0) return fallback;
  const n = r.len - 1;
  if (n < 0 || r.u8[body + n] !== 0) throw new CodecError(`text at byte ${at} is not NUL-terminated`);
  return decodeUtf8(r.u8, body, n);
}

/** The Data at pointer `at`, a view on the message; `fallback` if the pointer is null. */
export function readData(r, at, fallback) {
  const body = bytesAt(r, at, "data");
  if (body < 0) return fallback;
  return r.u8.subarray(body, body + r.len);
}

/** UTF-8 bytes to a string; short ASCII strings without TextDecoder's call overhead. */
export function decodeUtf8(u8, start, n) {
  if (n > 2 * ASCII_RUN) return TEXT_DECODER.decode(u8.subarray(start, start + n));
  const end = start + n;
  let h = n;
  for (let i = start; i < end; i++) {
    const c = u8[i];
    if (c >= 0x80) return TEXT_DECODER.decode(u8.subarray(start, end));
    h = (Math.imul(h, 31) + c) | 0;
  }
  // Short ASCII strings repeat (dict keys, names): hand back the string made
  // last time, which spares an allocation and, as a Map key, rehashing.
  const slot = (h ^ (h >>> 13)) & (SHORT_CACHE.length - 1);
  const known = SHORT_CACHE[slot];
  if (known.length === n) {
    let i = 0;
    while (i < n && known.charCodeAt(i) === u8[start + i]) i++;
    if (i === n) return known;
  }
  const s = n <= ASCII_RUN ? ascii(u8, start, n) : ascii(u8, start, ASCII_RUN) + ascii(u8, start + ASCII_RUN, n - ASCII_RUN);
  SHORT_CACHE[slot] = s;
  return s;
}

/** Strings up to twice this many bytes are decoded here (and cached when ASCII). */
const ASCII_RUN = 16;
const SHORT_CACHE = new Array(4096).fill("");

/**
 * `n` (at most ASCII_RUN) ASCII bytes as a string, made in one call: a loop
 * of `+=` would allocate a string per character.
 */
function ascii(a, i, n) {
  const f = String.fromCharCode;
  switch (n) {
    case 0:
      return "";
    case 1:
      return f(a[i]);
    case 2:
      return f(a[i], a[i + 1]);
    case 3:
      return f(a[i], a[i + 1], a[i + 2]);
    case 4:
      return f(a[i], a[i + 1], a[i + 2], a[i + 3]);
    case 5:
      return f(a[i], a[i + 1], a[i + 2], a[i + 3], a[i + 4]);
    case 6:
      return f(a[i], a[i + 1], a[i + 2], a[i + 3], a[i + 4], a[i + 5]);
    case 7:
      return f(a[i], a[i + 1], a[i + 2], a[i + 3], a[i + 4], a[i + 5], a[i + 6]);
    case 8:
      return f(a[i], a[i + 1], a[i + 2], a[i + 3], a[i + 4], a[i + 5], a[i + 6], a[i + 7]);
    case 9:
      return f(a[i], a[i + 1], a[i + 2], a[i + 3], a[i + 4], a[i + 5], a[i + 6], a[i + 7], a[i + 8]);
    case 10:
      return f(a[i], a[i + 1], a[i + 2], a[i + 3], a[i + 4], a[i + 5], a[i + 6], a[i + 7], a[i + 8], a[i + 9]);
    case 11:
      return f(a[i], a[i + 1], a[i + 2], a[i + 3], a[i + 4], a[i + 5], a[i + 6], a[i + 7], a[i + 8], a[i + 9], a[i + 10]);
    case 12:
      return f(a[i], a[i + 1], a[i + 2], a[i + 3], a[i + 4], a[i + 5], a[i + 6], a[i + 7], a[i + 8], a[i + 9], a[i + 10], a[i + 11]);
    case 13:
      return f(a[i], a[i + 1], a[i + 2], a[i + 3], a[i + 4], a[i + 5], a[i + 6], a[i + 7], a[i + 8], a[i + 9], a[i + 10], a[i + 11], a[i + 12]);
    case 14:
      return f(a[i], a[i + 1], a[i + 2], a[i + 3], a[i + 4], a[i + 5], a[i + 6], a[i + 7], a[i + 8], a[i + 9], a[i + 10], a[i + 11], a[i + 12], a[i + 13]);
    case 15:
      return f(a[i], a[i + 1], a[i + 2], a[i + 3], a[i + 4], a[i + 5], a[i + 6], a[i + 7], a[i + 8], a[i + 9], a[i + 10], a[i + 11], a[i + 12], a[i + 13], a[i + 14]);
    case 16:
      return f(a[i], a[i + 1], a[i + 2], a[i + 3], a[i + 4], a[i + 5], a[i + 6], a[i + 7], a[i + 8], a[i + 9], a[i + 10], a[i + 11], a[i + 12], a[i + 13], a[i + 14], a[i + 15]);
  }
  throw new RangeError(`ascii: ${n} bytes is more than ${ASCII_RUN}`);
}

/** A 64-bit signed integer as a number when it is exact, else a BigInt. */
export function readInt64Number(view, at) {
  const hi = view.getInt32(at + 4, true);
  const lo = view.getInt32(at, true);
  // An int32 stays a small integer for V8 (no heap number to allocate).
  if ((hi === 0 && lo >= 0) || (hi === -1 && lo < 0)) return lo;
  if (hi >= -0x200000 && hi < 0x200000) return hi * TWO_32 + (lo >>> 0);
  return view.getBigInt64(at, true);
}

/** A 64-bit unsigned integer as a number when it is exact, else a BigInt. */
export function readUint64Number(view, at) {
  const hi = view.getUint32(at + 4, true);
  if (hi < 0x200000) return hi * TWO_32 + view.getUint32(at, true);
  return view.getBigUint64(at, true);
}

/** Writes a signed 64-bit integer given as a BigInt or an integral number. */
export function writeInt64(view, at, value) {
  if (typeof value === "bigint") {
    view.setBigInt64(at, value, true);
    return;
  }
  if (!Number.isInteger(value) || value < -9223372036854775808 || value >= 9223372036854775808) {
    throw new RangeError(`${value} is not a 64-bit integer`);
  }
  const hi = Math.floor(value / TWO_32);
  view.setUint32(at, value - hi * TWO_32, true);
  view.setInt32(at + 4, hi, true);
}

/** Writes an unsigned 64-bit integer given as a BigInt or an integral number. */
export function writeUint64(view, at, value) {
  if (typeof value === "bigint") {
    view.setBigUint64(at, value, true);
    return;
  }
  if (!Number.isInteger(value) || value < 0 || value >= 18446744073709551616) {
    throw new RangeError(`${value} is not an unsigned 64-bit integer`);
  }
  const hi = Math.floor(value / TWO_32);
  view.setUint32(at, value - hi * TWO_32, true);
  view.setUint32(at + 4, hi, true);
}

/**
 * Writes one single-segment message into a buffer it keeps and grows.
 * `reset()` starts the next message in the same buffer. Structs and lists are
 * byte offsets into the buffer; they stay valid when it grows, views do not
 * (read `b.view` and `b.u8` afresh after anything that allocates).
 */
export class Builder {
  constructor(capacity = 4096) {
    this.#use(new ArrayBuffer(Math.max(64, capacity)));
    this.pos = 16;
  }

  #use(buffer) {
    this.buffer = buffer;
    this.u8 = new Uint8Array(buffer);
    this.view = new DataView(buffer);
  }

  /** Starts a new message: the buffer is zeroed up to where the last one ended. */
  reset() {
    this.u8.fill(0, 0, this.pos);
    this.pos = 16;
    return this;
  }

  /** Reserves `bytes` (a multiple of 8) of zeroed space; returns its offset. */
  alloc(bytes) {
    const at = this.pos;
    const end = at + bytes;
    if (end > this.u8.byteLength) this.#grow(end);
    this.pos = end;
    return at;
  }

  #grow(needed) {
    let size = this.u8.byteLength * 2;
    while (size < needed) size *= 2;
    const old = this.u8;
    this.#use(new ArrayBuffer(size));
    this.u8.set(old.subarray(0, this.pos));
  }

  /** Allocates the root struct; returns its offset. */
  initRoot(dataWords, pointers) {
    if (this.pos !== 16) throw new Error("monty-wire codec: the builder already holds a message; reset() it first");
    return this.initStruct(8, dataWords, pointers);
  }

  /** Allocates a struct and points the pointer at byte `at` to it; returns its offset. */
  initStruct(at, dataWords, pointers) {
    const d = this.alloc((dataWords + pointers) * 8);
    const v = this.view;
    v.setUint32(at, ((d - at - 8) / 8) << 2, true);
    v.setUint32(at + 4, dataWords | (pointers << 16), true);
    return d;
  }

  /** Allocates a list of `n` elements of size code `size` (0..6) at pointer `at`; returns its first element's offset. */
  initList(at, size, n) {
    if (n >= 1 << 29) throw new RangeError(`a list of ${n} elements is too long`);
    const body = this.alloc(Math.ceil((n * ELEMENT_BITS[size]) / 64) * 8);
    const v = this.view;
    v.setUint32(at, (((body - at - 8) / 8) << 2) | 1, true);
    v.setUint32(at + 4, size | (n << 3), true);
    return body;
  }

  /** Allocates a list of `n` structs at pointer `at`; returns its first element's offset. */
  initStructList(at, n, dataWords, pointers) {
    const words = n * (dataWords + pointers);
    if (words >= 1 << 29) throw new RangeError(`a list of ${n} structs is too long`);
    const body = this.alloc(8 + words * 8);
    const v = this.view;
    v.setUint32(at, (((body - at - 8) / 8) << 2) | 1, true);
    v.setUint32(at + 4, COMPOSITE | (words << 3), true);
    v.setUint32(body, n << 2, true);
    v.setUint32(body + 4, dataWords | (pointers << 16), true);
    return body + 8;
  }

  /** Writes `text` as a Text at pointer `at`. */
  setText(at, text) {
    const n = text.length;
    let body = this.pos;
    let written = -1;
    if (n <= 64) {
      // Short strings: copy ASCII by hand; anything else goes through encodeInto.
      if (body + n + 1 > this.u8.byteLength) this.#grow(body + n + 8);
      const u8 = this.u8;
      written = n;
      for (let i = 0; i < n; i++) {
        const c = text.charCodeAt(i);
        if (c >= 0x80) {
          written = -1; // encodeInto rewrites this ASCII prefix
          break;
        }
        u8[body + i] = c;
      }
    }
    if (written < 0) {
      const max = n * 3 + 1;
      if (body + max > this.u8.byteLength) this.#grow(body + max + 8);
      written = TEXT_ENCODER.encodeInto(text, this.u8.subarray(body, body + max)).written;
    }
    this.pos = body + (Math.floor((written + 1 + 7) / 8) * 8);
    this.#listPointer(at, body, 2, written + 1);
  }

  /** Writes `bytes` (a Uint8Array) as a Data at pointer `at`. */
  setData(at, bytes) {
    const n = bytes.byteLength;
    const body = this.alloc(Math.ceil(n / 8) * 8);
    this.u8.set(bytes, body);
    this.#listPointer(at, body, 2, n);
  }

  #listPointer(at, body, size, n) {
    if (n >= 1 << 29) throw new RangeError(`a list of ${n} elements is too long`);
    const v = this.view;
    v.setUint32(at, (((body - at - 8) / 8) << 2) | 1, true);
    v.setUint32(at + 4, size | (n << 3), true);
  }

  /** The framed message: a view on the builder's buffer, valid until the next reset or growth. */
  finish() {
    this.view.setUint32(0, 0, true);
    this.view.setUint32(4, (this.pos - 8) / 8, true);
    return this.u8.subarray(0, this.pos);
  }
}
