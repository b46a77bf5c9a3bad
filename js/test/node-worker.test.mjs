// MontyWireWorker in Node, where there is no global Worker: the worker is a
// worker_threads thread, with the same kills, outcome codes and recovery as
// in a browser (js/test/browser/page.mjs runs the Web Worker side).
// Needs js/dist/monty_wire.wasm and js/dist/monty_wire_test_hooks.wasm
// (scripts/build-wasm.sh) and js/gen/.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { test } from "node:test";
import * as C from "../codec/monty_wire_codec.mjs";
import { printDeliveryRequest } from "../monty_wire.mjs";
import { MontyWireError, MontyWireTerminated, MontyWireWorker } from "../monty_wire_worker.mjs";
import * as P from "./protocol.mjs";

const wasm = new URL("../dist/monty_wire.wasm", import.meta.url);
const hooks = new URL("../dist/monty_wire_test_hooks.wasm", import.meta.url);
const panicScriptName = /PANIC_SCRIPT_NAME: &str = "(.*)";/.exec(
  await readFile(new URL("../../src/session/mod.rs", import.meta.url), "utf8"),
)[1];

/** A request written with the generated codec: `fill(b, request)`. */
function request(fill) {
  const b = new C.Builder();
  fill(b, C.Request_newRoot(b));
  return b.finish().slice();
}

/** `{ code, message, exit }` of a response's protocolError (code by name), or null for any other arm. */
function protocolError(bytes) {
  const root = new C.Reader(bytes).root();
  if (C.Response_which(root) !== C.Response_Which.protocolError) return null;
  const error = C.Response_protocolError(root);
  const code = Object.entries(C.ErrorCode).find(([, v]) => v === C.ProtocolError_code(error))[0];
  const exit = C.ProtocolError_workerExit(error);
  // workerExit is the second pointer: null (absent) unless the worker crashed.
  const hasExit = error.pc > 1 && error.r.view.getBigUint64(error.p + 8, true) !== 0n;
  return {
    code,
    message: C.ProtocolError_message(error),
    exit: hasExit
      ? {
          exitCode: C.WorkerExit_exitCode(exit),
          signal: C.WorkerExit_signal(exit),
          outOfMemory: C.WorkerExit_outOfMemory(exit),
          stderrTail: C.WorkerExit_stderrTail(exit),
        }
      : null,
  };
}

const ok = async (session, bytes) => assert.equal(P.which(P.response(await session.dispatch(bytes))), "ok");
const value = async (session, bytes) => P.repr(P.response(await session.dispatch(bytes)).complete);

test("Node has no global Worker, so the worker is a worker_threads thread", () => {
  assert.equal(typeof globalThis.Worker, "undefined");
});

test("worker in Node: live output; a timeout answers deadlineExceeded, the sessions are empty, and a new worker answers", async () => {
  const host = await MontyWireWorker.create({ wasm, timeout: 1500 });
  try {
    const printed = [];
    const session = await host.openSession({ onPrint: (stream, text) => printed.push([stream, text]) });
    await ok(session, P.openRun("print('hi')\n6 * 7"));
    assert.equal(await value(session, P.run()), "42");
    assert.deepEqual(printed.map(([stream]) => stream), printed.map(() => "stdout"));
    assert.equal(printed.map(([, text]) => text).join(""), "hi\n", "live output came through the thread");
    const idle = await host.openSession(); // holds nothing

    // No time limit in the program's limits: only the worker's timeout stops it.
    const looping = await host.openSession();
    await ok(looping, P.openRun("while True:\n    pass"));
    const timedOut = protocolError(await looping.dispatch(P.run()));
    assert.equal(timedOut.code, "deadlineExceeded");
    assert.match(timedOut.message, /ran past its timeout of 1500 ms/);
    assert.equal(timedOut.exit, null, "workerExit only comes with workerCrashed");
    assert.ok(!looping.closed && !session.closed, "the sessions stay open");
    assert.equal(host.sessionCount, 3);

    // The session whose request was killed is empty: a run is refused, an
    // openRun works (in the fresh worker).
    assert.equal(protocolError(await looping.dispatch(P.run())).code, "wrongState");
    await ok(looping, P.openRun("'again'"));
    assert.equal(await value(looping, P.run()), "'again'");

    // A session that held a program hears what happened at its next request,
    // which does not run; then it is empty.
    const lost = protocolError(await session.dispatch(P.run()));
    assert.equal(lost.code, "cancelled");
    assert.match(lost.message, /during session \d+'s request: the request ran past its timeout.*this request did not run/s);
    assert.equal(protocolError(await session.dispatch(P.run())).code, "wrongState");
    await ok(session, P.openRun("6 * 7"));
    assert.equal(P.repr(P.response(await session.dispatch(P.run(), { timeout: 60000 })).complete), "42");
    assert.equal(printed.map(([, text]) => text).join(""), "hi\n", "printing goes on in the fresh worker");

    // A session that held nothing just works.
    await ok(idle, P.openRun("'idle'"));
    assert.equal(await value(idle, P.run()), "'idle'");
  } finally {
    host.terminate();
  }
  await assert.rejects(host.openSession(), MontyWireTerminated, "nothing works after terminate()");
});

test("worker in Node: the deadline derived from the session's time limits kills one long operation", async () => {
  // 10**10**8 is one operation: the interpreter's clock never interrupts it.
  const host = await MontyWireWorker.create({ wasm, grace: 300 });
  try {
    const session = await host.openSession();
    await ok(session, P.openRun("x = 10**10**8\n1", { maxTurnNanos: 100_000_000 }));
    const started = performance.now();
    const error = protocolError(await session.dispatch(P.run()));
    const elapsed = performance.now() - started;
    assert.equal(error?.code, "deadlineExceeded");
    assert.match(error.message, /deadline of 400 ms \(the session's time limit and sleeps, 100 ms, plus a grace of 300 ms\)/);
    assert.ok(elapsed < 30_000, `killed early (${elapsed.toFixed(0)} ms)`);
    // Requests that run no Python are not bound by it; the fresh session has no limits.
    await ok(session, P.openRun("'fine'"));
    assert.equal(await value(session, P.run()), "'fine'");
  } finally {
    host.terminate();
  }
});

test("worker in Node: cancel() answers the running request `cancelled` and the queued ones too", async () => {
  const host = await MontyWireWorker.create({ wasm });
  try {
    const session = await host.openSession();
    const other = await host.openSession();
    await ok(session, P.openRun("while True:\n    pass"));
    await ok(other, P.openRun("'other'"));
    assert.equal(session.cancel(), false, "nothing in flight");
    const running = session.dispatch(P.run());
    const queued = session.dispatch(P.run());
    const otherQueued = other.dispatch(P.run()); // waits behind the loop, in the same worker
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(session.cancel(), true);
    const [first, second] = [protocolError(await running), protocolError(await queued)];
    assert.equal(first.code, "cancelled");
    assert.match(first.message, /cancelled the request \(cancel\(\)\), and its worker was killed/);
    assert.equal(second.code, "cancelled");
    assert.match(second.message, /before it started/);
    // The other session's queued request ran in the fresh worker, without
    // its program: it is told, and did not run.
    assert.equal(protocolError(await otherQueued).code, "cancelled");
    await ok(other, P.openRun("'other again'"));
    assert.equal(await value(other, P.run()), "'other again'");
    await ok(session, P.openRun("1 + 1"));
    assert.equal(await value(session, P.run()), "2");
  } finally {
    host.terminate();
  }
});

test("worker in Node: restart() and close() during a request answer it `cancelled`; terminate() rejects", async () => {
  const host = await MontyWireWorker.create({ wasm });
  const session = await host.openSession();
  await ok(session, P.openRun("while True:\n    pass"));
  let running = session.dispatch(P.run());
  setTimeout(() => host.restart(), 300);
  const restarted = protocolError(await running);
  assert.equal(restarted.code, "cancelled");
  assert.match(restarted.message, /restarted/);
  await ok(session, P.openRun("while True:\n    pass"));
  running = session.dispatch(P.run());
  await new Promise((resolve) => setTimeout(resolve, 300));
  await session.close();
  const closed = protocolError(await running);
  assert.equal(closed.code, "cancelled");
  assert.match(closed.message, /closed during the request/);
  await assert.rejects(session.dispatch(P.run()), MontyWireError, "a closed session rejects");
  const fresh = await host.openSession();
  await ok(fresh, P.openRun("while True:\n    pass"));
  running = fresh.dispatch(P.run());
  setTimeout(() => host.terminate(), 300);
  await assert.rejects(running, MontyWireTerminated, "terminate() rejects what is in flight");
  assert.ok(fresh.closed);
});

test("worker in Node: a trap answers workerCrashed with workerExit; a Rust panic's message is its stderrTail", async () => {
  const host = await MontyWireWorker.create({ wasm: hooks });
  try {
    const session = await host.openSession();
    await ok(session, P.openRun("x = []\nfor i in range(200000):\n    x = [x]\nlen(repr(x))", { maxRecursionDepth: 1_000_000_000 }));
    const trapped = protocolError(await session.dispatch(P.run()));
    assert.equal(trapped.code, "workerCrashed");
    assert.match(trapped.message, /the worker died during the request: its instance trapped/);
    assert.deepEqual({ ...trapped.exit, stderrTail: "" }, { exitCode: -1, signal: 0, outOfMemory: false, stderrTail: "" });
    await ok(session, P.openRun("6 * 7"));
    assert.equal(await value(session, P.run()), "42", "the fresh worker runs the emptied session");

    const panicking = await host.openSession();
    const panicked = protocolError(await panicking.dispatch(P.openRun("1", { scriptName: panicScriptName })));
    assert.equal(panicked.code, "workerCrashed");
    assert.match(panicked.exit.stderrTail, /panicked at .*induced by the test hook/s);
    // The other session held a program: it hears of the crash.
    const told = protocolError(await session.dispatch(P.run()));
    assert.equal(told.code, "workerCrashed");
    assert.match(told.exit.stderrTail, /induced by the test hook/);
    await ok(panicking, P.openRun("'after'"));
    assert.equal(await value(panicking, P.run()), "'after'");
  } finally {
    host.terminate();
  }
});

test("worker in Node: a session's dump key carries over to the fresh worker", async () => {
  const host = await MontyWireWorker.create({ wasm });
  try {
    // An unsealed dump, from a session with no key.
    const writer = await host.openSession();
    await ok(writer, request((b, r) => C.Request_init_openRepl(b, r)));
    const fed = await writer.dispatch(request((b, r) => C.Feed_set_code(b, C.Request_init_feedRun(b, r), "x = 1")));
    assert.equal(protocolError(fed), null);
    const dumped = new C.Reader(await writer.dispatch(request((b, r) => C.Request_set_dumpSession(b, r)))).root();
    const dump = C.Response_dump(dumped).slice();
    const load = () => request((b, r) => C.LoadSession_set_dump(b, C.Request_init_loadSession(b, r), dump));

    const keyed = await host.openSession();
    await ok(keyed, request((b, r) => C.Request_set_setDumpKey(b, r, new Uint8Array(32).fill(7))));
    assert.equal(protocolError(await keyed.dispatch(load())).code, "invalidDump", "a keyed session refuses it");
    await ok(keyed, P.openRun("while True:\n    pass"));
    const running = keyed.dispatch(P.run());
    await new Promise((resolve) => setTimeout(resolve, 300));
    keyed.cancel();
    assert.equal(protocolError(await running).code, "cancelled");
    assert.equal(protocolError(await keyed.dispatch(load())).code, "invalidDump", "and still has its key after the kill");
    const keyless = await host.openSession();
    assert.equal(P.which(P.response(await keyless.dispatch(load()))), "ok", "a session with no key loads it");
  } finally {
    host.terminate();
  }
});

test("worker in Node: printDelivery posts output in batches, before the response, and carries over to the fresh worker", async () => {
  const host = await MontyWireWorker.create({ wasm });
  try {
    const printed = [];
    let answered = false;
    const onPrint = (stream, text) => {
      assert.ok(!answered, "no output arrives after its response");
      printed.push([stream, text]);
    };
    // A REPL: opened again after each kill, which empties it.
    const openRepl = (session) => ok(session, request((b, r) => C.Request_init_openRepl(b, r)));
    const feed = (code) => request((b, r) => C.Feed_set_code(b, C.Request_init_feedRun(b, r), code));
    const snippet = "import sys\nfor i in range(3):\n    print(i, 'x')\nprint('err', end='', file=sys.stderr)\nprint('tail', end='')";
    const printOnce = async (session) => {
      answered = false;
      const response = P.response(await session.dispatch(feed(snippet)));
      answered = true;
      assert.deepEqual(P.output(response), [["stdout", "0 x\n1 x\n2 x\n"], ["stderr", "err"], ["stdout", "tail"]]);
      return printed.splice(0);
    };
    const lines = [["stdout", "0 x\n"], ["stdout", "1 x\n"], ["stdout", "2 x\n"], ["stderr", "err"], ["stdout", "tail"]];
    const session = await host.openSession({ onPrint, printDelivery: "lines" });
    await openRepl(session);
    assert.deepEqual(await printOnce(session), lines, "one message a line");

    // Killed: the fresh worker opens the session again with its delivery.
    assert.equal(protocolError(await session.dispatch(feed("while True:\n    pass"), { timeout: 300 })).code, "deadlineExceeded");
    await openRepl(session);
    assert.deepEqual(await printOnce(session), lines, "still one message a line in the fresh worker");

    // One the host sends itself is kept too.
    await ok(session, printDeliveryRequest(Infinity));
    const gathered = [["stdout", "0 x\n1 x\n2 x\n"], ["stderr", "err"], ["stdout", "tail"]];
    assert.deepEqual(await printOnce(session), gathered, "gathered until a switch of stream or the end");
    const running = session.dispatch(feed("while True:\n    pass"));
    await new Promise((resolve) => setTimeout(resolve, 300));
    session.cancel();
    assert.equal(protocolError(await running).code, "cancelled");
    await openRepl(session);
    assert.deepEqual(await printOnce(session), gathered, "and kept after the kill");

    // Every fragment, the default: a message each (empty ones are never written).
    const fragments = await host.openSession({ onPrint });
    await openRepl(fragments);
    assert.equal((await printOnce(fragments)).length, 14, "a message a fragment");
    await assert.rejects(host.openSession({ printDelivery: "words" }), TypeError);
  } finally {
    host.terminate();
  }
});
