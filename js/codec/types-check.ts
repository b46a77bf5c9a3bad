// Type-checked (never run): tsc -p js/codec. Uses the codec's declarations as
// a TypeScript host would (the example in js/README.md's codec section).
import * as C from "./monty_wire_codec.mjs";
import { Tuple, type PyValue, decodeValue, encodeValue, readNodes, writeValue } from "./values.mjs";

export function readCall(view: Uint8Array): PyValue | null {
  const response: C.StructReader = new C.Reader(view).root();
  if (C.Response_which(response) !== C.Response_Which.functionCall) return null;
  const call = C.Response_functionCall(response);
  const name: string = C.FunctionCall_name(call);
  const args = C.FunctionCall_args(call);
  const values: PyValue[] = readNodes(C.Arguments_nodes(args));
  const line: number = C.SourceRange_start(C.FunctionCall_position(call));
  const callId: number = C.FunctionCall_callId(call);
  return name.length + line + callId >= 0 ? values[C.Arguments_positional(args).u32(0)] : null;
}

export function resume(b: C.Builder, value: PyValue): Uint8Array {
  b.reset();
  const request: number = C.Request_newRoot(b);
  writeValue(b, C.CallResult_init_value(b, C.Request_init_resumeCall(b, request)), value);
  return b.finish();
}

export const roundTrip: PyValue = decodeValue(encodeValue(new Tuple<PyValue>(1, "two")), { bytes: "copy" });
