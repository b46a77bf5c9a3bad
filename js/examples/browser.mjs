// The quick start in a browser, with the program in a Web Worker that a
// timeout can kill. Serve the repository (node js/test/server.mjs) and open
// /js/examples/browser.html.
import * as capnp from "capnp-es";
import { ErrorCode, Request, Response, Response_Which } from "../gen/monty_wire.js";
import { MontyWireWorker } from "../monty_wire_worker.mjs";

const output = document.getElementById("output");
const show = (text) => output.append(text);

// Compiles js/dist/monty_wire.wasm once and starts a worker; a request that
// runs longer than 5 s kills it (a fresh worker takes its place) and is
// answered with a protocolError, deadlineExceeded.
const host = await MontyWireWorker.create({ timeout: 5000 });
const session = await host.openSession({ onPrint: (stream, text) => show(text) });

// One request in, one response out (an owned Uint8Array, transferred back).
async function send(fill) {
  const message = new capnp.Message();
  fill(message.initRoot(Request));
  const bytes = await session.dispatch(new Uint8Array(message.toArrayBuffer()));
  return new capnp.Message(bytes, false).getRoot(Response); // false: not packed
}

await send((request) => {
  const open = request._initOpenRun();
  open.code = "name = lookup_user(7)\nprint(f'hello {name}')\nf'{name} has {len(name)} letters'";
  open._initInputNames(1).set(0, "lookup_user");
});
let response = await send((request) => {
  const inputs = request._initStart();
  inputs._initNodes(1).get(0)._initFunction().name = "lookup_user";
  inputs._initRoots(1).set(0, 0);
});
while (response.which() === Response_Which.FUNCTION_CALL) {
  const call = response.functionCall;
  const id = call.args.nodes.get(call.args.positional.get(0)).intValue;
  show(`host: ${call.name}(${id})\n`);
  response = await send((request) => {
    const value = request._initResumeCall()._initValue();
    value._initNodes(1).get(0).strValue = id === 7n ? "Ada" : "nobody";
    value.root = 0;
  });
}
const value = response.complete;
show(`complete: ${value.nodes.get(value.root).strValue}\n`);

// Runaway code: only terminating the worker stops it. A new session for a
// new program; this request may take 1 s at most.
const runaway = await host.openSession();
await runaway.dispatch(openRun("while True:\n    pass"));
const stopped = new capnp.Message(await runaway.dispatch(run(), { timeout: 1000 }), false).getRoot(Response);
if (stopped.which() !== Response_Which.PROTOCOL_ERROR || stopped.protocolError.code !== ErrorCode.DEADLINE_EXCEEDED) {
  throw new Error(`unexpected response ${stopped.which()}`);
}
show(`stopped: ${stopped.protocolError.message}\n`);
// The worker was replaced and the session is empty: open it again.
await runaway.dispatch(openRun("6 * 7"));
const answer = new capnp.Message(await runaway.dispatch(run()), false).getRoot(Response).complete;
show(`fresh worker: ${answer.nodes.get(answer.root).intValue}\n`);

function openRun(code) {
  const message = new capnp.Message();
  message.initRoot(Request)._initOpenRun().code = code;
  return new Uint8Array(message.toArrayBuffer());
}

function run() {
  const message = new capnp.Message();
  message.initRoot(Request)._initRun();
  return new Uint8Array(message.toArrayBuffer());
}
