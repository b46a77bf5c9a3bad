// Start-up in Node: loading js/dist/monty_wire.wasm (read, compile,
// instantiate) and a first run of `6 * 7`, in ms. One run per call; the
// machine's load shows in it.
//   node js/scripts/startup.mjs
import * as C from "../codec/monty_wire_codec.mjs";
import { MontyWire } from "../monty_wire.mjs";

const request = (fill) => {
  const b = new C.Builder();
  fill(b, C.Request_newRoot(b));
  return b.finish();
};
const started = performance.now();
const wire = await MontyWire.load();
const loaded = performance.now();
const session = wire.openSession();
session.dispatch(request((b, r) => C.OpenRun_set_code(b, C.Request_init_openRun(b, r), "6 * 7")));
const response = new C.Reader(session.dispatch(request((b, r) => C.Request_init_run(b, r)))).root();
const done = performance.now();
if (C.Response_which(response) !== C.Response_Which.complete) throw new Error("the first run did not complete");
const ms = (t) => Math.round(t);
console.log(`load ${ms(loaded - started)} ms, first run ${ms(done - loaded)} ms, first result ${ms(done - started)} ms after the import (${ms(done)} ms after Node started)`);
