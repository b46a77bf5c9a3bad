// The browser test page: the in-process scenarios (the same file Node runs),
// then the Web Worker wrapper, including a hard kill of `while True: pass`.
// Served from the repository root by js/test/server.mjs; driven by
// js/test/chromium.test.mjs, which reads `window.__results`.
import * as glue from "../../monty_wire.mjs";
import * as C from "../../codec/monty_wire_codec.mjs";
import { MontyWireTerminated, MontyWireWorker } from "../../monty_wire_worker.mjs";
import * as P from "../protocol.mjs";
import { check, collectUntil, eq, scenarios } from "../scenarios.mjs";

const wasmUrl = new URL("../../dist/monty_wire.wasm", import.meta.url);
const hooksUrl = new URL("../../dist/monty_wire_test_hooks.wasm", import.meta.url);

/** `{ code, message, stderrTail }` of a response's protocolError (code by name), or null for any other arm. */
function protocolError(bytes) {
  const root = new C.Reader(bytes).root();
  if (C.Response_which(root) !== C.Response_Which.protocolError) return null;
  const error = C.Response_protocolError(root);
  return {
    code: Object.entries(C.ErrorCode).find(([, v]) => v === C.ProtocolError_code(error))[0],
    message: C.ProtocolError_message(error),
    stderrTail: C.WorkerExit_stderrTail(C.ProtocolError_workerExit(error)),
  };
}

async function rejection(promise) {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  return null;
}

const workerScenarios = [
  {
    name: "worker: runs a program with live print output",
    async run() {
      const host = await MontyWireWorker.create({ wasm: wasmUrl });
      const live = [];
      const session = await host.openSession({ onPrint: (stream, text) => live.push([stream, text]) });
      const request = P.openRun("for i in range(3):\n    print(i)\n'sum', 0 + 1 + 2");
      const opened = P.response(await session.dispatch(request));
      eq(P.which(opened), "ok", "openRun");
      check(request.byteLength === 0, "the request's buffer was transferred to the worker");
      const response = await session.dispatch(P.run());
      check(response instanceof Uint8Array && response.byteOffset === 0, "an owned, transferred response");
      const resp = P.response(response);
      eq(P.repr(resp.complete), "('sum', 3)", "value");
      eq(live.map(([, t]) => t).join(""), "0\n1\n2\n", "live output arrived before the response");
      // A view into a larger buffer is copied, not transferred.
      const big = new Uint8Array(P.run().byteLength + 16);
      const view = big.subarray(8, 8 + P.run().byteLength);
      view.set(P.run());
      eq(P.which(P.response(await session.dispatch(view))), "complete", "dispatch of a sub-view");
      check(big.byteLength > 0, "the caller's buffer is intact");
      await session.close();
      host.terminate();
    },
  },
  {
    name: "worker: the suspension loop with host futures",
    async run() {
      const host = await MontyWireWorker.create({ wasm: wasmUrl });
      const session = await host.openSession();
      const send = async (bytes) => P.response(await session.dispatch(bytes));
      eq(
        P.which(
          await send(
            P.openRun(
              "import asyncio\nasync def main():\n    return await asyncio.gather(f(1), f(2))\nasyncio.run(main())",
              { inputNames: ["f"] },
            ),
          ),
        ),
        "ok",
        "openRun",
      );
      let resp = await send(P.start(["f"]));
      const ids = [];
      while (P.which(resp) === "functionCall") {
        ids.push(resp.functionCall.callId);
        resp = await send(P.resumeCallFuture());
      }
      eq(P.which(resp), "resolveFutures", "awaiting futures");
      resp = await send(P.resolveFutures([[ids[1], 20]]));
      resp = await send(P.resolveFutures([[ids[0], 10]]));
      eq(P.repr(resp.complete), "[10, 20]", "value");
      host.terminate();
    },
  },
  {
    name: "worker: a timeout kills `while True: pass`, answered deadlineExceeded; the sessions are empty and a new worker answers",
    async run() {
      const host = await MontyWireWorker.create({ wasm: wasmUrl, timeout: 1500 });
      const session = await host.openSession();
      const other = await host.openSession();
      eq(P.which(P.response(await other.dispatch(P.openRun("'other'")))), "ok", "openRun");
      // No time limit in the program's limits: only the worker's timeout stops it.
      eq(P.which(P.response(await session.dispatch(P.openRun("while True:\n    pass")))), "ok", "openRun");
      const started = performance.now();
      const error = protocolError(await session.dispatch(P.run()));
      const elapsed = performance.now() - started;
      eq(error?.code, "deadlineExceeded", "the run is answered deadlineExceeded");
      check(/ran past its timeout of 1500 ms/.test(error.message), `the message says why: ${error.message}`);
      check(elapsed >= 1400 && elapsed < 10000, `after about the timeout (${elapsed.toFixed(0)} ms)`);
      check(!session.closed && !other.closed, "the sessions stay open");
      eq(protocolError(await session.dispatch(P.run()))?.code, "wrongState", "the session is empty");
      // The other session held a program: its next request says so and does not run.
      eq(protocolError(await other.dispatch(P.run()))?.code, "cancelled", "the other session hears of it");
      // The page's main thread was never blocked, and a fresh worker answers.
      eq(P.which(P.response(await session.dispatch(P.openRun("'alive'")))), "ok", "openRun");
      eq(P.repr(P.response(await session.dispatch(P.run())).complete), "'alive'", "fresh worker");
      // A per-request timeout overrides the default.
      eq(P.which(P.response(await session.dispatch(P.run(), { timeout: 60000 }))), "complete", "per-request timeout");
      host.terminate();
      const after = await rejection(host.openSession());
      check(after instanceof MontyWireTerminated, `nothing works after terminate() (${after})`);
      const another = await MontyWireWorker.create({ wasm: wasmUrl });
      const s = await another.openSession();
      eq(P.which(P.response(await s.dispatch(P.openRun("1")))), "ok", "a new MontyWireWorker works");
      another.terminate();
    },
  },
  {
    name: "worker: one long operation (10**10**8) is killed at the session's time limit plus the grace",
    async run() {
      const host = await MontyWireWorker.create({ wasm: wasmUrl, grace: 300 });
      const session = await host.openSession();
      eq(P.which(P.response(await session.dispatch(P.openRun("x = 10**10**8\n1", { maxTurnNanos: 100_000_000 })))), "ok", "openRun");
      const started = performance.now();
      const error = protocolError(await session.dispatch(P.run()));
      const elapsed = performance.now() - started;
      eq(error?.code, "deadlineExceeded", "answered deadlineExceeded");
      check(/deadline of 400 ms/.test(error.message), `the message says why: ${error.message}`);
      check(elapsed < 10000, `killed early (${elapsed.toFixed(0)} ms)`);
      eq(P.which(P.response(await session.dispatch(P.openRun("6 * 7")))), "ok", "openRun again");
      eq(P.repr(P.response(await session.dispatch(P.run())).complete), "42", "fresh worker");
      host.terminate();
    },
  },
  {
    name: "worker: cancel() stops a running request, answered cancelled",
    async run() {
      const host = await MontyWireWorker.create({ wasm: wasmUrl });
      const session = await host.openSession();
      eq(P.which(P.response(await session.dispatch(P.openRun("while True:\n    pass")))), "ok", "openRun");
      const running = session.dispatch(P.run());
      await new Promise((resolve) => setTimeout(resolve, 300));
      eq(session.cancel(), true, "there was a request to cancel");
      eq(protocolError(await running)?.code, "cancelled", "answered cancelled");
      eq(session.cancel(), false, "nothing left to cancel");
      eq(P.which(P.response(await session.dispatch(P.openRun("'again'")))), "ok", "openRun again");
      eq(P.repr(P.response(await session.dispatch(P.run())).complete), "'again'", "fresh worker");
      host.terminate();
    },
  },
  {
    name: "worker: terminate() stops a request in flight",
    async run() {
      const host = await MontyWireWorker.create({ wasm: wasmUrl });
      const session = await host.openSession();
      await session.dispatch(P.openRun("while True:\n    pass"));
      const running = session.dispatch(P.run());
      setTimeout(() => host.terminate(), 300);
      const error = await rejection(running);
      check(error instanceof MontyWireTerminated, `the request rejects (${error})`);
    },
  },
  {
    name: "worker: a timeout counts from when the request runs, not while it waits in the queue",
    async run() {
      const host = await MontyWireWorker.create({ wasm: wasmUrl, timeout: 1500 });
      const session = await host.openSession();
      // The first program runs about 2.5 s and then stops itself (its own
      // time limit), under a per-request timeout that lets it.
      eq(
        P.which(P.response(await session.dispatch(P.openRun("while True:\n    pass", { maxTurnNanos: 2_500_000_000 })))),
        "ok",
        "openRun",
      );
      const other = await host.openSession();
      eq(P.which(P.response(await other.dispatch(P.openRun("'quick'")))), "ok", "openRun");
      const started = performance.now();
      const long = session.dispatch(P.run(), { timeout: 30_000 });
      // Queued behind it for about 2.5 s, itself quick: within its 1.5 s.
      const quick = other.dispatch(P.run());
      const [longResult, quickResult] = await Promise.allSettled([long, quick]);
      const elapsed = performance.now() - started;
      check(longResult.status === "fulfilled", `the long request finished (${longResult.reason})`);
      eq(P.which(P.response(longResult.value)), "pythonError", "stopped by its own time limit");
      check(quickResult.status === "fulfilled", `the queued request did not time out (${quickResult.reason})`);
      eq(P.repr(P.response(quickResult.value).complete), "'quick'", "the queued request's value");
      check(elapsed > 2000, `the queued request waited for the long one (${elapsed.toFixed(0)} ms)`);
      host.terminate();
    },
  },
  {
    name: "worker: a failed start does not poison later calls; restart() resolves, and rejects after terminate()",
    async run() {
      // Sabotage the next worker: its script fails to load, or the module
      // it is sent is not monty-wire (so MontyWire.load fails inside it).
      const RealWorker = globalThis.Worker;
      let sabotage = null;
      globalThis.Worker = class extends RealWorker {
        #how;
        constructor(url, options) {
          const how = sabotage;
          sabotage = null;
          super(how === "script" ? new URL("../../no-such-worker.mjs", import.meta.url) : url, options);
          this.#how = how;
        }
        postMessage(message, transfer) {
          if (this.#how === "load" && message.op === "load") {
            message = { ...message, source: new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]).buffer };
          }
          super.postMessage(message, transfer);
        }
      };
      try {
        const host = await MontyWireWorker.create({ wasm: wasmUrl });
        for (const [how, expected] of [
          ["script", glue.MontyWireError],
          ["load", glue.MontyWireError],
        ]) {
          sabotage = how;
          const failed = await rejection(host.restart());
          check(failed instanceof expected, `restart() with a failing ${how} rejects with ${expected.name} (${failed})`);
          // The next call starts another worker instead of repeating the failure.
          const session = await host.openSession();
          eq(P.which(P.response(await session.dispatch(P.openRun("1")))), "ok", `works after a failed ${how}`);
        }
        eq(await host.restart(), undefined, "restart() resolves to undefined");
        host.terminate();
        const after = await rejection(host.restart());
        check(after instanceof MontyWireTerminated, `restart() after terminate() rejects (${after})`);
      } finally {
        globalThis.Worker = RealWorker;
      }
    },
  },
  {
    name: "worker: a Rust panic is answered workerCrashed with its message; the worker is replaced",
    async run({ panicScriptName }) {
      const host = await MontyWireWorker.create({ wasm: hooksUrl });
      const printed = [];
      const session = await host.openSession({ onPrint: (stream, text) => printed.push([stream, text]) });
      eq(P.which(P.response(await session.dispatch(P.openRun("print('hi')")))), "ok", "openRun");
      eq(P.which(P.response(await session.dispatch(P.run()))), "complete", "run");
      eq(printed.map(([, t]) => t).join(""), "hi\n", "Python output");
      printed.length = 0;
      const panicking = await host.openSession({ onPrint: (stream, text) => printed.push([stream, text]) });
      const error = protocolError(await panicking.dispatch(P.openRun("1", { scriptName: panicScriptName })));
      eq(error?.code, "workerCrashed", "answered workerCrashed");
      check(/panicked at .*\binduced by the test hook/s.test(error.stderrTail), `workerExit.stderrTail has the panic message: ${JSON.stringify(error.stderrTail)}`);
      eq(printed, [], "the panic message did not reach onPrint");
      eq(protocolError(await session.dispatch(P.run()))?.code, "workerCrashed", "the other session's program is gone");
      const fresh = await host.openSession();
      await fresh.dispatch(P.openRun("6 * 7"));
      eq(P.repr(P.response(await fresh.dispatch(P.run())).complete), "42", "replacement worker");
      host.terminate();
    },
  },
  {
    name: "worker: a session the host forgot is closed in its worker once it is garbage-collected",
    async run({ collectGarbage }) {
      // Record what goes to the worker and what it answers.
      const RealWorker = globalThis.Worker;
      const posted = [];
      const answered = new Map();
      globalThis.Worker = class extends RealWorker {
        constructor(url, options) {
          super(url, options);
          this.addEventListener("message", ({ data }) => data.id !== undefined && data.op === undefined && answered.set(data.id, data));
        }
        postMessage(message, transfer) {
          posted.push(message);
          super.postMessage(message, transfer);
        }
      };
      let host;
      try {
        host = await MontyWireWorker.create({ wasm: wasmUrl });
      } finally {
        globalThis.Worker = RealWorker;
      }
      const kept = await host.openSession();
      await (async () => {
        const forgotten = await host.openSession();
        await forgotten.dispatch(P.openRun("'x' * 1000"));
      })();
      eq(host.sessionCount, 2, "two sessions open");
      check(await collectUntil(collectGarbage, () => host.sessionCount === 1), "the forgotten session was closed");
      const [opened] = posted.filter((m) => m.op === "open").slice(1);
      const forgottenId = answered.get(opened.id).result;
      const close = posted.find((m) => m.op === "close");
      eq(close?.session, forgottenId, "the worker was told to close it");
      for (let i = 0; i < 50 && !answered.has(close.id); i++) {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      eq(answered.get(close.id), { id: close.id, result: null }, "and closed it");
      eq(P.which(P.response(await kept.dispatch(P.openRun("1")))), "ok", "the kept session still works");
      await kept.close();
      eq(host.sessionCount, 0, "none left");
      host.terminate();
    },
  },
  {
    name: "worker: a trap in the worker is reported and the worker replaced",
    async run() {
      const host = await MontyWireWorker.create({ wasm: wasmUrl });
      const session = await host.openSession();
      await session.dispatch(
        P.openRun("x = []\nfor i in range(200000):\n    x = [x]\nlen(repr(x))", { maxRecursionDepth: 1_000_000_000 }),
      );
      const error = protocolError(await session.dispatch(P.run()));
      eq(error?.code, "workerCrashed", "answered workerCrashed");
      const fresh = await host.openSession();
      await fresh.dispatch(P.openRun("6 * 7"));
      eq(P.repr(P.response(await fresh.dispatch(P.run())).complete), "42", "replacement worker");
      host.terminate();
    },
  },
];

async function main() {
  const results = [];
  const list = document.getElementById("results");
  const schema = await (await fetch("/schema/monty_wire.capnp")).text();
  const schemaVersion = Number(/const protocolVersion\s*:UInt32\s*=\s*(\d+)/.exec(schema)[1]);
  const sessionSource = await (await fetch("/src/session/mod.rs")).text();
  const panicScriptName = /PANIC_SCRIPT_NAME: &str = "(.*)";/.exec(sessionSource)[1];
  // Compiled once (streaming, off the main thread's critical path); every
  // scenario instantiates them afresh.
  const module = await glue.compileMontyWire(wasmUrl);
  const hooksModule = await glue.compileMontyWire(hooksUrl);
  const context = {
    ...glue,
    schemaVersion,
    panicScriptName,
    // Exposed by chromium.test.mjs: a full collection through the DevTools protocol.
    collectGarbage: () => window.__collectGarbage(),
    load: () => glue.MontyWire.load(module),
    loadHooks: () => glue.MontyWire.load(hooksModule),
  };
  let ticks = 0;
  const ticker = setInterval(() => ticks++, 10);
  for (const scenario of [...scenarios, ...workerScenarios]) {
    const started = performance.now();
    let error = null;
    try {
      await scenario.run(context);
    } catch (e) {
      error = `${e?.name}: ${e?.message}\n${e?.stack ?? ""}`;
    }
    const ms = Math.round(performance.now() - started);
    results.push({ name: scenario.name, ok: error === null, error, ms });
    const item = document.createElement("li");
    item.textContent = `${error === null ? "ok" : "FAIL"} ${scenario.name} (${ms} ms)${error ? `: ${error}` : ""}`;
    list.append(item);
  }
  clearInterval(ticker);
  results.push({
    name: "the page keeps working: timers ran and the DOM updates",
    ok: ticks > 0 && list.children.length === results.length,
    error: ticks > 0 ? null : "no timer ticks",
    ms: 0,
  });
  document.getElementById("status").textContent = results.every((r) => r.ok) ? "all passed" : "FAILED";
  window.__results = results;
}

main().catch((error) => {
  window.__results = [{ name: "page setup", ok: false, error: `${error?.name}: ${error?.message}\n${error?.stack}`, ms: 0 }];
});
