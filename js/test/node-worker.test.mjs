// MontyWireWorker in Node, where there is no global Worker: the worker is a
// worker_threads thread, with the same timeout kill and recovery as in a
// browser (js/test/browser/page.mjs runs the Web Worker side).
// Needs js/dist/monty_wire.wasm (scripts/build-wasm.sh) and js/gen/.
import assert from "node:assert/strict";
import { test } from "node:test";
import { MontyWireTerminated, MontyWireTimeout, MontyWireWorker } from "../monty_wire_worker.mjs";
import * as P from "./protocol.mjs";

const wasm = new URL("../dist/monty_wire.wasm", import.meta.url);

test("Node has no global Worker, so the worker is a worker_threads thread", () => {
  assert.equal(typeof globalThis.Worker, "undefined");
});

test("worker in Node: a run with live output, then a timeout kills `while True: pass` and a new worker answers", async () => {
  const host = await MontyWireWorker.create({ wasm, timeout: 1500 });
  try {
    const printed = [];
    const session = await host.openSession({ onPrint: (stream, text) => printed.push([stream, text]) });
    assert.equal(P.which(P.response(await session.dispatch(P.openRun("print('hi')\n6 * 7")))), "ok");
    assert.equal(P.repr(P.response(await session.dispatch(P.run())).complete), "42");
    assert.deepEqual(printed.map(([stream]) => stream), printed.map(() => "stdout"));
    assert.equal(printed.map(([, text]) => text).join(""), "hi\n", "live output came through the thread");

    // No time limit in the program's limits: only the worker's timeout stops it.
    const looping = await host.openSession();
    assert.equal(P.which(P.response(await looping.dispatch(P.openRun("while True:\n    pass")))), "ok");
    await assert.rejects(looping.dispatch(P.run()), MontyWireTimeout, "the run times out");
    assert.ok(looping.closed && session.closed, "the sessions died with their worker");
    await assert.rejects(session.dispatch(P.run()), MontyWireTerminated, "a lost session rejects");

    // A fresh worker answers.
    const fresh = await host.openSession();
    assert.equal(P.which(P.response(await fresh.dispatch(P.openRun("'alive'")))), "ok");
    assert.equal(P.repr(P.response(await fresh.dispatch(P.run(), { timeout: 60000 })).complete), "'alive'");
    assert.equal(host.sessionCount, 1);
  } finally {
    host.terminate();
  }
  await assert.rejects(host.openSession(), MontyWireTerminated, "nothing works after terminate()");
});

test("worker in Node: terminate() stops a request in flight, and restart() brings a fresh worker", async () => {
  const host = await MontyWireWorker.create({ wasm });
  const session = await host.openSession();
  await session.dispatch(P.openRun("while True:\n    pass"));
  const running = session.dispatch(P.run());
  setTimeout(() => host.restart(), 300);
  await assert.rejects(running, MontyWireTerminated, "the request rejects");
  const fresh = await host.openSession();
  assert.equal(P.which(P.response(await fresh.dispatch(P.openRun("1")))), "ok");
  host.terminate();
});
