// Declarations of runtime.mjs: the reader, builder and cursors the generated
// codec (monty_wire_codec.mjs) works on.

/** A message this codec cannot read: malformed, truncated, or a form the library never writes. */
export declare class CodecError extends Error {}

/**
 * A framed, single-segment message, read in place. `u8`, `view` and `i32`
 * cover the whole buffer the message is in; `start`, `end` and the cursors'
 * offsets are byte offsets in that buffer.
 */
export declare class Reader {
  constructor(bytes: Uint8Array | ArrayBuffer);
  readonly u8: Uint8Array;
  readonly view: DataView;
  /** The buffer as int32 words when the message is 4-byte aligned on a little-endian platform, else null. */
  readonly i32: Int32Array | null;
  readonly start: number;
  readonly end: number;
  /**
   * Reads another message, checking its frame; the views are made again only
   * when it is on another buffer (a WebAssembly memory that grew).
   */
  reset(bytes: Uint8Array | ArrayBuffer): this;
  /** The root struct, into `out` (a new cursor if none is given). */
  root(out?: StructReader): StructReader;
}

/** A struct in a message being read: reused by the getters that take `out`. */
export declare class StructReader {
  r: Reader;
  /** Data section start and size, in bytes. */
  d: number;
  ds: number;
  /** Pointer section start, and pointer count. */
  p: number;
  pc: number;
}

/** A list in a message being read. */
export declare class ListReader {
  r: Reader;
  o: number;
  length: number;
  step: number;
  ds: number;
  pc: number;
  u32(i: number): number;
  struct(i: number, out?: StructReader): StructReader;
  text(i: number): string;
  data(i: number): Uint8Array;
}

/** Writes one single-segment message into a buffer it keeps and grows. */
export declare class Builder {
  constructor(capacity?: number);
  readonly buffer: ArrayBuffer;
  readonly u8: Uint8Array;
  readonly view: DataView;
  pos: number;
  reset(): this;
  alloc(bytes: number): number;
  initRoot(dataWords: number, pointers: number): number;
  initStruct(at: number, dataWords: number, pointers: number): number;
  initList(at: number, size: number, n: number): number;
  initStructList(at: number, n: number, dataWords: number, pointers: number): number;
  setText(at: number, text: string): void;
  setData(at: number, bytes: Uint8Array): void;
  /** The framed message: a view on the builder's buffer, valid until the next reset or growth. */
  finish(): Uint8Array;
}

export declare function readStruct(r: Reader, at: number, out: StructReader): StructReader;
export declare function readList(r: Reader, at: number, size: number, out: ListReader): ListReader;
export declare function readText(r: Reader, at: number, fallback: string): string;
export declare function readData(r: Reader, at: number, fallback: Uint8Array): Uint8Array;
export declare function decodeUtf8(u8: Uint8Array, start: number, n: number): string;
export declare function readInt64Number(view: DataView, at: number): number | bigint;
export declare function readUint64Number(view: DataView, at: number): number | bigint;
export declare function writeInt64(view: DataView, at: number, value: bigint | number): void;
export declare function writeUint64(view: DataView, at: number, value: bigint | number): void;
