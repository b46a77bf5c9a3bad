// The protocol scenarios, run in-process against a MontyWire instance. Node
// runs them with node:test (glue.test.mjs) and Chromium runs the same file
// from browser/page.mjs, so this module uses no Node APIs.
//
// Each scenario gets `load()` (a fresh instance from the compiled module),
// `loadHooks()` (the same from the module built with the crate's test
// hooks), `schemaVersion` (protocolVersion from schema/monty_wire.capnp),
// `panicScriptName` (PANIC_SCRIPT_NAME from src/session/mod.rs),
// `collectGarbage()` (a full collection; resolves when it is done) and the
// glue's exports.
import * as P from "./protocol.mjs";

const { S } = P;

export function check(condition, message) {
  if (!condition) {
    throw new Error(`check failed: ${message}`);
  }
}

export function eq(actual, expected, what) {
  const a = JSON.stringify(actual, (_, v) => (typeof v === "bigint" ? `${v}n` : v));
  const e = JSON.stringify(expected, (_, v) => (typeof v === "bigint" ? `${v}n` : v));
  if (a !== e) {
    throw new Error(`${what}: expected ${e}, got ${a}`);
  }
}

function expectArm(resp, arm) {
  const got = P.which(resp);
  if (got !== arm) {
    let detail = "";
    if (got === "protocolError") detail = `: ${resp.protocolError.message}`;
    if (got === "pythonError") detail = `: ${P.enumName(S.ExcType, resp.pythonError.type)} ${resp.pythonError.message.some}`;
    throw new Error(`expected a ${arm} response, got ${got}${detail}`);
  }
  return resp;
}

/** Dispatches and decodes at once: the view is read before anything else touches the instance. */
function send(session, bytes) {
  return P.response(session.dispatch(bytes));
}

/** Collects garbage until `done()` holds (finalizers run in tasks of their own, after a collection). */
export async function collectUntil(collectGarbage, done) {
  for (let i = 0; i < 50 && !done(); i++) {
    await collectGarbage();
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return done();
}

function open(session, code, options) {
  expectArm(send(session, P.openRun(code, options)), "ok");
}

export const scenarios = [
  {
    name: "runs a program to completion and returns its value",
    async run({ load, schemaVersion }) {
      const wire = await load();
      eq(wire.protocolVersion, schemaVersion, "protocol version (the schema's protocolVersion)");
      const s2 = wire.openSession();
      open(s2, "x = [1, 2]\n(x, x, 'two', 2**70, None)");
      const view = s2.dispatch(P.run());
      check(view instanceof Uint8Array, "dispatch returns a Uint8Array");
      check(view.buffer === wire.memory.buffer, "the response is a view on linear memory (zero copy)");
      check(view.byteOffset % 8 === 0 && view.byteLength % 8 === 0, "the response is word-aligned");
      const resp = expectArm(P.response(view), "complete");
      eq(P.repr(resp.complete), "([1, 2], [1, 2], 'two', 1180591620717411303424, None)", "value");
      const tuple = resp.complete.nodes.get(resp.complete.root).tuple;
      eq(tuple.get(0), tuple.get(1), "the list used twice is one node");
      // Compile once, run many; dispatchCopy gives an owned copy that
      // survives later calls.
      const copy = s2.dispatchCopy(P.run());
      check(copy.buffer !== wire.memory.buffer, "dispatchCopy returns an owned copy");
      send(s2, P.run());
      eq(P.repr(P.response(copy).complete), "([1, 2], [1, 2], 'two', 1180591620717411303424, None)", "copy");
      s2.close();
      s2.close(); // closing twice is harmless
      let error = null;
      try {
        s2.dispatch(P.run());
      } catch (e) {
        error = e;
      }
      check(error?.name === "MontyWireError", `dispatch on a closed session throws MontyWireError (${error})`);
    },
  },
  {
    name: "streams print output through onPrint during dispatch",
    async run({ load }) {
      const wire = await load();
      const live = [];
      let dispatching = false;
      const session = wire.openSession({
        onPrint(stream, text) {
          check(dispatching, "onPrint is called during dispatch");
          live.push([stream, text]);
        },
      });
      open(session, "import sys\nfor i in range(3):\n    print('line', i)\nprint('oops', file=sys.stderr)\nprint('é€😀', end='')\n'done'");
      dispatching = true;
      const resp = expectArm(send(session, P.run()), "complete");
      dispatching = false;
      eq(P.repr(resp.complete), "'done'", "value");
      // Fragments as print() writes them (argument, separator, end), in order.
      check(live.length > 4, `print is streamed in fragments (${live.length})`);
      const joined = (stream) =>
        live
          .filter(([s]) => s === stream)
          .map(([, t]) => t)
          .join("");
      eq(joined("stdout"), "line 0\nline 1\nline 2\né€😀", "live stdout");
      eq(joined("stderr"), "oops\n", "live stderr");
      eq(
        P.output(resp),
        [
          ["stdout", "line 0\nline 1\nline 2\n"],
          ["stderr", "oops\n"],
          ["stdout", "é€😀"],
        ],
        "response output",
      );
      // Off again: nothing live, the response still has it.
      session.onPrint = null;
      live.length = 0;
      const again = expectArm(send(session, P.run()), "complete");
      eq(live.length, 0, "no live output after onPrint = null");
      eq(P.output(again).length, 3, "output still in the response");
    },
  },
  {
    name: "printDelivery: lines and an interval gather print output; order and the response are unchanged",
    async run({ load, printDeliveryRequest, MontyWireError }) {
      const wire = await load();
      const code =
        "import sys\nfor i in range(3):\n    print(i, 'x')\nprint('a\\nb', end='')\nprint('err', end='', file=sys.stderr)\nprint('tail', end='')\n'done'";
      const outputOf = [
        ["stdout", "0 x\n1 x\n2 x\na\nb"],
        ["stderr", "err"],
        ["stdout", "tail"],
      ];
      const expected = new Map([
        [0, null], // every fragment: checked below
        [
          "lines",
          [
            ["stdout", "0 x\n"],
            ["stdout", "1 x\n"],
            ["stdout", "2 x\n"],
            ["stdout", "a\n"],
            ["stdout", "b"],
            ["stderr", "err"],
            ["stdout", "tail"],
          ],
        ],
        // No interval passes during the run: a switch of stream and the end deliver.
        [Infinity, outputOf],
        [3_600_000, outputOf],
      ]);
      for (const [printDelivery, calls] of expected) {
        const live = [];
        let dispatching = false;
        const session = wire.openSession({
          onPrint(stream, text) {
            check(dispatching, "onPrint is called during dispatch");
            live.push([stream, text]);
          },
          printDelivery,
        });
        open(session, code);
        dispatching = true;
        const resp = expectArm(send(session, P.run()), "complete");
        dispatching = false;
        eq(P.output(resp), outputOf, `response output (${printDelivery})`);
        if (calls === null) {
          eq(live.length, 15, "every fragment (four per print(i, 'x'), and no empty one)");
          eq(live.map(([, t]) => t).join(""), "0 x\n1 x\n2 x\na\nberrtail", "every fragment's text");
        } else {
          eq(live, calls, `calls of onPrint (${printDelivery})`);
        }
        session.close();
      }
      // A host may send the request itself, in any state.
      const session = wire.openSession();
      const live = [];
      session.onPrint = (stream, text) => live.push([stream, text]);
      expectArm(send(session, printDeliveryRequest("lines")), "ok");
      open(session, "print(1, 2)\nprint(3, 4)");
      expectArm(send(session, printDeliveryRequest(0)), "ok");
      expectArm(send(session, P.run()), "complete");
      eq(live.length, 8, "back to every fragment");
      live.length = 0;
      expectArm(send(session, printDeliveryRequest("lines")), "ok");
      expectArm(send(session, P.run()), "complete");
      eq(live, [["stdout", "1 2\n"], ["stdout", "3 4\n"]], "lines again");
      session.close();
      // Anything else is refused before a session opens.
      const before = wire.sessionCount;
      for (const bad of ["words", -1, Number.NaN, "16", null, {}]) {
        let error = null;
        try {
          wire.openSession({ printDelivery: bad });
        } catch (e) {
          error = e;
        }
        check(error instanceof TypeError, `printDelivery ${String(bad)} is refused with a TypeError (${error})`);
      }
      eq(wire.sessionCount, before, "no session was left open");
      check(MontyWireError !== undefined, "the glue's error class is there");
    },
  },
  {
    name: "guards: onPrint cannot re-enter or kill the instance; a response view can be sent back",
    async run({ load, MontyWireError }) {
      const wire = await load();
      const session = wire.openSession();
      const errors = [];
      const consoleError = console.error;
      console.error = (...args) => errors.push(args);
      try {
        let reentry = null;
        session.onPrint = () => {
          try {
            session.dispatch(P.run());
          } catch (e) {
            reentry = e;
          }
          throw new Error("a failing print callback");
        };
        open(session, "print('x')\n'ok'");
        eq(P.repr(expectArm(send(session, P.run()), "complete").complete), "'ok'", "value despite the callback");
        check(reentry instanceof MontyWireError, `re-entry from onPrint is refused (${reentry})`);
        check(errors.length > 0 && String(errors[0][1]).includes("a failing print callback"), "the throw is reported");
      } finally {
        session.onPrint = null;
        console.error = consoleError;
      }
      check(!wire.dead, "the instance is alive");
      // Sending bytes that live in linear memory (here: a response view,
      // which the next dispatch frees) is safe: the glue copies them first.
      // A `complete` Response has the union tag of a `run` Request, so it
      // runs the program again.
      const view = session.dispatch(P.run());
      eq(P.repr(expectArm(send(session, view), "complete").complete), "'ok'", "a response view sent back as a request");
    },
  },
  {
    name: "reports a Python exception with its traceback",
    async run({ load }) {
      const wire = await load();
      const session = wire.openSession();
      open(session, "def inner(x):\n    return 1 / x\n\ndef outer():\n    return inner(0)\n\nouter()", {
        scriptName: "calc.py",
      });
      const resp = expectArm(send(session, P.run()), "pythonError");
      const exc = resp.pythonError;
      eq(P.enumName(S.ExcType, exc.type), "ZERO_DIVISION_ERROR", "type");
      eq(exc.message.some, "division by zero", "message");
      const frames = Array.from({ length: exc.traceback.length }, (_, i) => {
        const f = exc.traceback.get(i);
        const name = f.frameName.which() === S.StackFrame_FrameName_Which.NONE ? null : f.frameName.some;
        return [f.filename, f.startLine, name];
      });
      eq(
        frames,
        [
          ["calc.py", 7, "<module>"],
          ["calc.py", 5, "outer"],
          ["calc.py", 2, "inner"],
        ],
        "traceback (outermost first)",
      );
      eq(exc.traceback.get(2).previewLine.some.trim(), "return 1 / x", "preview line");
      // The session is ready again.
      expectArm(send(session, P.run()), "pythonError");
    },
  },
  {
    name: "counts heap bytes: usage reports memory and maxMemory raises MemoryError",
    async run({ load }) {
      const wire = await load();
      const session = wire.openSession();
      open(session, "xs = []\nwhile True:\n    xs.append('x' * 10_000)", { maxMemoryBytes: 20_000_000 });
      const resp = expectArm(send(session, P.run()), "pythonError");
      eq(P.enumName(S.ExcType, resp.pythonError.type), "MEMORY_ERROR", "type");
      // A run that fits, suspended while it holds a hundred 10 kB strings:
      // memory is measured, and counts at least those.
      const fits = wire.openSession();
      open(fits, "xs = ['x' * 10_000 for _ in range(100)]\nf(len(xs))", {
        inputNames: ["f"],
        maxMemoryBytes: 20_000_000,
      });
      const call = expectArm(send(fits, P.start(["f"])), "functionCall");
      const memory = call.usage.memory;
      eq(memory.which(), S.Usage_Memory_Which.BYTES, "memory is measured");
      check(memory.bytes >= 1_000_000n, `usage counts the program's heap (${memory.bytes} bytes)`);
      session.close();
      fits.close();
    },
  },
  {
    name: "an allocation past what wasm32 can hold raises MemoryError, with no limit and with maxMemory 3 GB",
    async run({ load }) {
      // Each of these once panicked with "capacity overflow" (a single
      // allocation over 2 GiB) and trapped, killing the instance.
      const programs = ["'a' * 2_500_000_000", "[0] * 300_000_000", "'a' * 2_200_000_000"];
      const wire = await load();
      for (const maxMemoryBytes of [undefined, 3_000_000_000]) {
        for (const code of programs) {
          const what = `${code} with maxMemory ${maxMemoryBytes ?? "unset"}`;
          const session = wire.openSession();
          open(session, code, { maxMemoryBytes });
          const resp = send(session, P.run());
          eq(P.which(resp), "pythonError", `${what}: response`);
          eq(P.enumName(S.ExcType, resp.pythonError.type), "MEMORY_ERROR", `${what}: type`);
          // The instance lives on, and the same session runs again.
          eq(P.which(send(session, P.run())), "pythonError", `${what}: a second run`);
          session.close();
        }
      }
      // The same through a REPL, and through setLimits on a ready run.
      const repl = wire.openSession();
      expectArm(send(repl, P.request((r) => (r._initOpenRepl()._initLimits()._initMaxMemory().bytes = 3_000_000_000n))), "ok");
      const fed = send(repl, P.request((r) => (r._initFeedRun().code = "'a' * 2_200_000_000")));
      eq(P.enumName(S.ExcType, expectArm(fed, "pythonError").pythonError.type), "MEMORY_ERROR", "a REPL feed");
      repl.close();
      const reset = wire.openSession();
      open(reset, "[0] * 300_000_000", { maxMemoryBytes: 1_000_000 });
      expectArm(send(reset, P.request((r) => r._initSetLimits())), "ok");
      eq(P.enumName(S.ExcType, expectArm(send(reset, P.run()), "pythonError").pythonError.type), "MEMORY_ERROR", "after setLimits with no limit");
      reset.close();
      const next = wire.openSession();
      open(next, "len('a' * 1_000_000)");
      eq(P.repr(expectArm(send(next, P.run()), "complete").complete), "1000000", "the next request");
      next.close();
    },
  },
  {
    name: "awaits two host futures resolved out of order (asyncio.gather)",
    async run({ load }) {
      const wire = await load();
      const session = wire.openSession();
      open(
        session,
        "import asyncio\nasync def main():\n    return await asyncio.gather(fetch('a'), fetch('b'))\nasyncio.run(main())",
        { inputNames: ["fetch"] },
      );
      let resp = send(session, P.start(["fetch"]));
      const calls = [];
      while (P.which(resp) === "functionCall") {
        const call = resp.functionCall;
        eq(call.name, "fetch", "function name");
        const arg = call.args.nodes.get(call.args.positional.get(0)).strValue;
        calls.push([call.callId, arg]);
        resp = send(session, P.resumeCallFuture());
      }
      eq(
        calls.map(([, a]) => a),
        ["a", "b"],
        "both calls made before awaiting",
      );
      expectArm(resp, "resolveFutures");
      eq(resp.resolveFutures.pendingCallIds.length, 2, "two pending futures");
      // Resolve 'b' first, then 'a'.
      const [[idA], [idB]] = calls;
      resp = expectArm(send(session, P.resolveFutures([[idB, "result b"]])), "resolveFutures");
      eq(resp.resolveFutures.pendingCallIds.length, 1, "one pending future left");
      eq(resp.resolveFutures.pendingCallIds.get(0), idA, "the one left is 'a'");
      resp = expectArm(send(session, P.resolveFutures([[idA, "result a"]])), "complete");
      eq(P.repr(resp.complete), "['result a', 'result b']", "gather keeps call order");
      eq(resp.usage.suspensions, 4n, "suspensions counted");
    },
  },
  {
    name: "answers an OS call",
    async run({ load }) {
      const wire = await load();
      const session = wire.openSession();
      open(session, "from pathlib import Path\nPath('notes.txt').read_text().upper()", { cwd: "/data" });
      const resp = expectArm(send(session, P.start()), "osCall");
      const call = resp.osCall;
      eq(call.name, "Path.read_text", "os call name");
      eq(call.which(), S.OsCall_Which.READ_TEXT, "os call arm");
      eq(call.readText, "/data/notes.txt", "absolute virtual path");
      const done = expectArm(send(session, P.resumeOsCall("hello from the host")), "complete");
      eq(P.repr(done.complete), "'HELLO FROM THE HOST'", "value");
    },
  },
  {
    name: "answers malformed bytes with a protocolError and keeps going",
    async run({ load }) {
      const wire = await load();
      const session = wire.openSession();
      for (const bytes of [new Uint8Array([1, 2, 3]), new Uint8Array(0), new Uint8Array(64).fill(0xff)]) {
        const resp = expectArm(send(session, bytes), "protocolError");
        const code = P.enumName(S.ErrorCode, resp.protocolError.code);
        check(
          ["MALFORMED_MESSAGE", "TRUNCATED_MESSAGE"].includes(code),
          `malformed ${bytes.length} bytes -> ${code}: ${resp.protocolError.message}`,
        );
      }
      // A request the session's state does not accept.
      eq(
        P.enumName(S.ErrorCode, expectArm(send(session, P.run()), "protocolError").protocolError.code),
        "WRONG_STATE",
        "run before openRun",
      );
      open(session, "40 + 2");
      eq(P.repr(expectArm(send(session, P.run()), "complete").complete), "42", "still works");
    },
  },
  {
    name: "a session the host forgot is closed once it is garbage-collected",
    async run({ load, collectGarbage }) {
      const wire = await load();
      const kept = wire.openSession();
      (() => {
        const forgotten = wire.openSession();
        open(forgotten, "'x' * 1000");
      })();
      eq(wire.sessionCount, 2, "two sessions open");
      check(await collectUntil(collectGarbage, () => wire.sessionCount === 1), "the forgotten session was closed");
      open(kept, "1");
      eq(P.repr(expectArm(send(kept, P.run()), "complete").complete), "1", "the kept session still works");
      kept.close();
      eq(wire.sessionCount, 0, "none left");
    },
  },
  {
    name: "a trap kills the instance; a fresh instance works",
    async run({ load, MontyWireTrapped }) {
      const wire = await load();
      const session = wire.openSession();
      const other = wire.openSession();
      // A million-deep nesting with the recursion limit lifted: repr()
      // recurses natively and overflows the stack, which no Rust code can
      // catch. (Variants: copy.deepcopy overflows the shadow stack in linear
      // memory, "memory access out of bounds".)
      open(session, "x = []\nfor i in range(200000):\n    x = [x]\nlen(repr(x))", {
        maxRecursionDepth: 1_000_000_000,
      });
      let trap = null;
      try {
        send(session, P.run());
      } catch (e) {
        trap = e;
      }
      check(trap instanceof MontyWireTrapped, `the trap surfaces as MontyWireTrapped (${trap})`);
      check(trap.cause instanceof Error, "with the engine's error as its cause");
      check(wire.dead, "the instance reports dead");
      check(session.closed && other.closed, "its sessions are closed");
      for (const [what, call] of [
        ["dispatch", () => other.dispatch(P.run())],
        ["openSession", () => wire.openSession()],
        ["protocolVersion", () => wire.protocolVersion],
      ]) {
        let later = null;
        try {
          call();
        } catch (e) {
          later = e;
        }
        check(later instanceof MontyWireTrapped, `${what} after the trap throws MontyWireTrapped (${later})`);
      }
      session.close(); // never throws

      const fresh = await load();
      const s = fresh.openSession();
      open(s, "'alive'");
      eq(P.repr(expectArm(send(s, P.run()), "complete").complete), "'alive'", "fresh instance");

      // The shadow-stack variant traps as a WebAssembly.RuntimeError.
      const third = await load();
      const t = third.openSession();
      open(t, "import copy\nx = []\nfor i in range(200000):\n    x = [x]\ncopy.deepcopy(x)", {
        maxRecursionDepth: 1_000_000_000,
      });
      let trap2 = null;
      try {
        send(t, P.run());
      } catch (e) {
        trap2 = e;
      }
      check(trap2 instanceof MontyWireTrapped, `deepcopy trap (${trap2})`);
      check(third.dead, "third instance dead");
      check(!fresh.dead, "other instances are unaffected");
      eq(P.repr(expectArm(send(s, P.run()), "complete").complete), "'alive'", "fresh instance still fine");
    },
  },
  {
    name: "a Rust panic traps: MontyWireTrapped carries its message, which never reaches onPrint",
    async run({ loadHooks, MontyWireTrapped, panicScriptName }) {
      const wire = await loadHooks();
      const printed = [];
      const onPrint = (stream, text) => printed.push([stream, text]);
      // Python output on both streams first, in a session that stays open.
      const other = wire.openSession({ onPrint });
      open(other, "import sys\nprint('to stdout')\nprint('to stderr', file=sys.stderr)\n1");
      expectArm(send(other, P.run()), "complete");
      eq(printed, [["stdout", "to stdout"], ["stdout", "\n"], ["stderr", "to stderr"], ["stderr", "\n"]], "Python output");
      printed.length = 0;
      // Opening a run under this script name panics inside the engine; on
      // wasm32 a panic aborts, which traps.
      const session = wire.openSession({ onPrint });
      let trap = null;
      try {
        send(session, P.openRun("1", { scriptName: panicScriptName }));
      } catch (e) {
        trap = e;
      }
      check(trap instanceof MontyWireTrapped, `the panic surfaces as MontyWireTrapped (${trap})`);
      check(trap.cause instanceof WebAssembly.RuntimeError, `its cause is the engine's trap (${trap.cause})`);
      check(/panicked at .*\binduced by the test hook/s.test(trap.stderr), `.stderr has the panic message: ${JSON.stringify(trap.stderr)}`);
      check(trap.message.includes("induced by the test hook"), "the message shows it too");
      eq(printed, [], "nothing reached onPrint (the panic message is not Python's stderr)");
      check(wire.dead, "the instance is dead");
      check(session.closed && other.closed, "its sessions are closed");
      let later = null;
      try {
        wire.openSession();
      } catch (e) {
        later = e;
      }
      check(later instanceof MontyWireTrapped && later.stderr === "", `later calls throw MontyWireTrapped (${later})`);
      const fresh = await loadHooks();
      const s = fresh.openSession();
      open(s, "'alive'");
      eq(P.repr(expectArm(send(s, P.run()), "complete").complete), "'alive'", "a fresh instance works");
    },
  },
];
