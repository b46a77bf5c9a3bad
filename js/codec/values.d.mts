// Declarations of values.mjs: Python values as JavaScript values.
import type { Builder, ListReader, StructReader } from "./runtime.mjs";

/** A Python tuple. */
export declare class Tuple<T = PyValue> extends Array<T> {}
/** A Python frozenset. */
export declare class FrozenSet<T = PyValue> extends Set<T> {}
/** A float to write as a float even when it is whole. */
export declare class Float {
  constructor(value: number);
  value: number;
}
/** Any other Python value: `kind` is its Node arm, the rest its fields. */
export declare class Py {
  constructor(kind: string, fields?: Record<string, unknown>);
  kind: string;
  [field: string]: unknown;
}
export declare const Ellipsis: Py;
export declare const NotImplemented: Py;

/** What a Python value reads as. */
export type PyValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | PyValue[]
  | Tuple
  | Set<PyValue>
  | FrozenSet
  | Map<PyValue, PyValue>
  | Float
  | Py;

export interface ReadOptions {
  /** "view" (default): a Uint8Array on the message; "copy": an owned copy. */
  bytes?: "view" | "copy";
}

export declare function readNodes(nodes: ListReader, options?: ReadOptions): PyValue[];
export declare function readValue(value: StructReader, options?: ReadOptions): PyValue;
export declare function decodeValue(bytes: Uint8Array | ArrayBuffer, options?: ReadOptions): PyValue;
export declare function writeNodes(b: Builder, initNodes: (n: number) => number, roots: unknown[]): number[];
export declare function writeValue(b: Builder, s: number, value: unknown): void;
export declare function encodeValue(value: unknown, b?: Builder): Uint8Array;
