// Runs a Python program that calls back into the host, in Node:
//   bash scripts/build-wasm.sh && (cd js && npm ci) && node js/scripts/gen-schema.mjs
//   node js/examples/quickstart.mjs
import * as capnp from "capnp-es";
import { Request, Response, Response_Which } from "../gen/monty_wire.js";
import { MontyWire } from "../monty_wire.mjs";

const wire = await MontyWire.load(); // js/dist/monty_wire.wasm
const session = wire.openSession({ onPrint: (stream, text) => process.stdout.write(text) });

// One request in, one response out. The response is a view on the module's
// memory: decode it before the next call (capnp-es copies it here).
function send(fill) {
  const message = new capnp.Message();
  fill(message.initRoot(Request));
  const view = session.dispatch(new Uint8Array(message.toArrayBuffer()));
  return new capnp.Message(view, false).getRoot(Response); // false: not packed
}

send((request) => {
  const open = request._initOpenRun();
  open.code = "name = lookup_user(7)\nprint(f'hello {name}')\nf'{name} has {len(name)} letters'";
  open._initInputNames(1).set(0, "lookup_user");
});
// Start it, passing the host function `lookup_user` as its input.
let response = send((request) => {
  const inputs = request._initStart();
  inputs._initNodes(1).get(0)._initFunction().name = "lookup_user";
  inputs._initRoots(1).set(0, 0);
});
// The suspension loop: answer every call until the program completes.
while (response.which() === Response_Which.FUNCTION_CALL) {
  const call = response.functionCall;
  const id = call.args.nodes.get(call.args.positional.get(0)).intValue;
  console.log(`host: ${call.name}(${id})`);
  response = send((request) => {
    const value = request._initResumeCall()._initValue();
    value._initNodes(1).get(0).strValue = id === 7n ? "Ada" : "nobody";
    value.root = 0;
  });
}
if (response.which() !== Response_Which.COMPLETE) {
  throw new Error(`unexpected response ${response.which()}`);
}
const value = response.complete;
console.log("complete:", value.nodes.get(value.root).strValue);
session.close();
