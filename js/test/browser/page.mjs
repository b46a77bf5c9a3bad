// The browser test page: the in-process scenarios (the same file Node runs),
// then the Web Worker wrapper, including a hard kill of `while True: pass`.
// Served from the repository root by js/test/server.mjs; driven by
// js/test/chromium.test.mjs, which reads `window.__results`.
import * as glue from "../../monty_wire.mjs";
import { MontyWireTerminated, MontyWireTimeout, MontyWireWorker } from "../../monty_wire_worker.mjs";
import * as P from "../protocol.mjs";
import { check, eq, scenarios } from "../scenarios.mjs";

const wasmUrl = new URL("../../dist/monty_wire.wasm", import.meta.url);

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
    name: "worker: a timeout kills `while True: pass` and a new worker answers",
    async run() {
      const host = await MontyWireWorker.create({ wasm: wasmUrl, timeout: 1500 });
      const session = await host.openSession();
      // No time limit in the program's limits: only the worker's timeout stops it.
      eq(P.which(P.response(await session.dispatch(P.openRun("while True:\n    pass")))), "ok", "openRun");
      const started = performance.now();
      const error = await rejection(session.dispatch(P.run()));
      const elapsed = performance.now() - started;
      check(error instanceof MontyWireTimeout, `the run times out (${error})`);
      check(elapsed >= 1400 && elapsed < 10000, `after about the timeout (${elapsed.toFixed(0)} ms)`);
      check(session.closed, "the session died with its worker");
      const lost = await rejection(session.dispatch(P.run()));
      check(lost instanceof MontyWireTerminated, `a lost session rejects (${lost})`);
      // The page's main thread was never blocked, and a fresh worker answers.
      const fresh = await host.openSession();
      eq(P.which(P.response(await fresh.dispatch(P.openRun("'alive'")))), "ok", "openRun");
      eq(P.repr(P.response(await fresh.dispatch(P.run())).complete), "'alive'", "fresh worker");
      // A per-request timeout overrides the default.
      eq(P.which(P.response(await fresh.dispatch(P.run(), { timeout: 60000 }))), "complete", "per-request timeout");
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
    name: "worker: a trap in the worker is reported and the worker replaced",
    async run() {
      const host = await MontyWireWorker.create({ wasm: wasmUrl });
      const session = await host.openSession();
      await session.dispatch(
        P.openRun("x = []\nfor i in range(200000):\n    x = [x]\nlen(repr(x))", { maxRecursionDepth: 1_000_000_000 }),
      );
      const error = await rejection(session.dispatch(P.run()));
      check(error instanceof glue.MontyWireTrapped, `MontyWireTrapped from the worker (${error})`);
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
  // Compiled once (streaming, off the main thread's critical path); every
  // scenario instantiates it afresh.
  const module = await glue.compileMontyWire(wasmUrl);
  const context = { ...glue, schemaVersion, load: () => glue.MontyWire.load(module) };
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
