// A Python playground: the code runs in a Web Worker (MontyWireWorker), so
// Stop always works, even on `while True: pass`. Requests are written and
// responses read with the generated codec (js/codec/).
//
//   node js/test/server.mjs 8000   then open http://127.0.0.1:8000/js/examples/playground.html
//   (add ?wasm=../dist/monty_wire_typecheck.wasm for a module built with --type-check)
//
// The page tells a test (or a screenshot tool) where it is: <body
// data-state="..."> is "loading", then "idle" once the module is ready, "running"
// during a run, and "done", "error" or "stopped" after one; data-runs counts
// finished runs. document.title ends with the state.
import * as C from "../codec/monty_wire_codec.mjs";
import { Ellipsis, FrozenSet, NotImplemented, Py, Tuple, readValue } from "../codec/values.mjs";
import { MontyWireWorker } from "../monty_wire_worker.mjs";

const $ = (id) => document.getElementById(id);
const code = $("code");
const runButton = $("run");
const stopButton = $("stop");
const timeLimit = $("time-limit");
const panes = { output: $("output"), result: $("result"), traceback: $("traceback"), diagnostics: $("diagnostics") };

code.value = `def greet(name: str) -> str:
    return f"hello {name}"

for who in ["Ada", "Grace"]:
    print(greet(who))

squares = {n: n * n for n in range(5)}
squares
`;

/**
 * Start-up figures in ms since navigation started: this module running
 * (`script`), the module compiled and the worker ready (`ready`), the first
 * run finished (`firstResult`); and how long that run took (`firstRun`).
 */
const timings = { script: Math.round(performance.now()) };

function setState(state) {
  document.body.dataset.state = state;
  document.title = `monty-wire playground: ${state}`;
}

function show(pane, text, className) {
  const span = document.createElement("span");
  span.textContent = text;
  if (className) span.className = className;
  panes[pane].append(span);
}

setState("loading");
// Compiles the module (compileStreaming) and starts the worker: by default
// js/dist/monty_wire.wasm; `?wasm=<url>` names another one, such as a build
// with the type checker.
const wasm = new URLSearchParams(location.search).get("wasm");
const host = await MontyWireWorker.create({ wasm: wasm === null ? undefined : new URL(wasm, location.href) });
timings.ready = Math.round(performance.now());
$("status").textContent = "ready";
runButton.disabled = false;
setState("idle");

let runs = 0;
/** The session of the run in progress, or null. */
let current = null;
runButton.addEventListener("click", () => run(code.value));
stopButton.addEventListener("click", () => {
  // Kills the worker (whatever it is doing; a fresh one takes its place):
  // the request in flight is answered with a protocolError, `cancelled`.
  current?.cancel();
});
// Ctrl+Enter runs; Tab indents.
code.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
    event.preventDefault();
    if (!runButton.disabled) runButton.click();
  } else if (event.key === "Tab") {
    event.preventDefault();
    code.setRangeText("    ", code.selectionStart, code.selectionEnd, "end");
  }
});

async function run(source) {
  for (const pane of Object.values(panes)) pane.replaceChildren();
  runButton.disabled = true;
  stopButton.disabled = false;
  setState("running");
  const seconds = Number(timeLimit.value) || 5;
  $("status").textContent = `running (time limit ${seconds} s)`;
  const started = performance.now();
  let state = "done";
  try {
    const session = await host.openSession({ onPrint: (stream, text) => show("output", text, stream === "stderr" ? "stderr" : undefined) });
    current = session;
    await typeCheck(session, source);
    const opened = await send(session, (b, request) => {
      const open = C.Request_init_openRun(b, request);
      C.OpenRun_set_code(b, open, source);
      // monty's own limit: a run past it raises TimeoutError in Python.
      C.ResourceLimits_maxFeedDuration_set_nanos(b, C.OpenRun_init_limits(b, open), BigInt(Math.round(seconds * 1e9)));
    });
    // Code the interpreter's clock cannot interrupt (one long operation)
    // is stopped by MontyWireWorker: it kills the worker a second (its
    // default grace) after the limit, and the run is answered
    // `deadlineExceeded`.
    const response = C.Response_which(opened) === C.Response_Which.ok ? await send(session, (b, request) => C.Request_init_run(b, request)) : opened;
    state = showResponse(response);
    current = null;
    await session.close();
  } catch (error) {
    current = null;
    state = "error";
    show("traceback", String(error?.stack ?? error));
  }
  const ms = Math.round(performance.now() - started);
  timings.firstResult ??= Math.round(performance.now());
  timings.firstRun ??= ms;
  runs += 1;
  $("status").textContent = `${state} in ${ms} ms`;
  runButton.disabled = false;
  stopButton.disabled = true;
  document.body.dataset.runs = String(runs);
  document.body.dataset.timings = JSON.stringify(timings);
  setState(state);
}

/** Sends one request that `fill(builder, request)` writes; resolves to the response's root. */
async function send(session, fill, options) {
  const b = new C.Builder();
  fill(b, C.Request_newRoot(b));
  // An owned copy, which the worker takes over (transferred).
  const bytes = await session.dispatch(b.finish().slice(), options);
  return new C.Reader(bytes).root();
}

async function typeCheck(session, source) {
  const response = await send(session, (b, request) => C.TypeCheck_set_code(b, C.Request_init_typeCheck(b, request), source));
  if (C.Response_which(response) === C.Response_Which.typeCheckReport) {
    const rendered = C.TypeCheckReport_rendered(C.Response_typeCheckReport(response));
    show("diagnostics", rendered || "no type errors");
    return;
  }
  // The default module is built without the type checker and refuses with
  // invalidArgument; scripts/build-wasm.sh --type-check builds one with it.
  const error = C.Response_protocolError(response);
  const unsupported = C.ProtocolError_code(error) === C.ErrorCode.invalidArgument;
  show("diagnostics", unsupported ? "not available: this module was built without the type checker (scripts/build-wasm.sh --type-check)" : C.ProtocolError_message(error), "empty");
}

/** Shows a run's response; returns the page state it ends in. */
function showResponse(response) {
  switch (C.Response_which(response)) {
    case C.Response_Which.complete:
      show("result", pyRepr(readValue(C.Response_complete(response))));
      return "done";
    case C.Response_Which.pythonError:
      show("traceback", formatTraceback(C.Response_pythonError(response)));
      return "done";
    case C.Response_Which.protocolError: {
      const error = C.Response_protocolError(response);
      const code = C.ProtocolError_code(error);
      if (code === C.ErrorCode.cancelled || code === C.ErrorCode.deadlineExceeded || code === C.ErrorCode.workerCrashed) {
        // The worker was killed (Stop, or past the limit) or died; a fresh one runs the next program.
        show("traceback", `stopped: ${C.ProtocolError_message(error)}`);
        return "stopped";
      }
      show("traceback", `protocol error: ${C.ProtocolError_message(error)}`);
      return "error";
    }
    default:
      // The playground defines no host functions, so nothing suspends.
      show("traceback", `unexpected response (arm ${C.Response_which(response)})`);
      return "error";
  }
}

const EXC_NAMES = Object.fromEntries(Object.entries(C.ExcType).map(([name, n]) => [n, name[0].toUpperCase() + name.slice(1)]));

/** A Python exception as CPython prints it: frames outermost first, carets under the failing span. */
function formatTraceback(exc) {
  const lines = [];
  const frames = C.PythonException_traceback(exc);
  if (frames.length > 0) lines.push("Traceback (most recent call last):");
  for (let i = 0; i < frames.length; i++) {
    const frame = frames.struct(i);
    const name = C.StackFrame_frameName_which(frame) === C.StackFrame_frameName_Which.some ? C.StackFrame_frameName_some(frame) : "<module>";
    const where = C.StackFrame_hideFrameName(frame) ? "" : `, in ${name}`;
    lines.push(`  File "${C.StackFrame_filename(frame)}", line ${C.StackFrame_startLine(frame)}${where}`);
    if (C.StackFrame_previewLine_which(frame) !== C.StackFrame_previewLine_Which.some) continue;
    const preview = C.StackFrame_previewLine_some(frame);
    const text = preview.trimStart();
    lines.push(`    ${text}`);
    if (C.StackFrame_hideCaret(frame)) continue;
    // Columns are 1-based characters of the untrimmed line.
    const start = C.StackFrame_startColumn(frame) - 1 - (preview.length - text.length);
    const sameLine = C.StackFrame_endLine(frame) === C.StackFrame_startLine(frame);
    const end = sameLine ? C.StackFrame_endColumn(frame) - 1 - (preview.length - text.length) : text.length;
    if (start >= 0 && end > start) lines.push(`    ${" ".repeat(start)}${"^".repeat(end - start)}`);
  }
  const type = EXC_NAMES[C.PythonException_type(exc)] ?? `exception ${C.PythonException_type(exc)}`;
  const message = C.PythonException_message_which(exc) === C.PythonException_message_Which.some ? C.PythonException_message_some(exc) : "";
  lines.push(message ? `${type}: ${message}` : type);
  return lines.join("\n");
}

/** A JavaScript value from codec/values.mjs, written as Python writes its repr. */
function pyRepr(value, seen = new Set()) {
  if (value === null) return "None";
  if (value === true) return "True";
  if (value === false) return "False";
  if (typeof value === "bigint") return String(value);
  if (typeof value === "number") return Number.isInteger(value) && !Object.is(value, -0) ? String(value) : floatRepr(value);
  if (typeof value === "string") return strRepr(value);
  if (value === Ellipsis) return "Ellipsis";
  if (value === NotImplemented) return "NotImplemented";
  if (value instanceof Uint8Array) return `b${strRepr(Array.from(value, (byte) => String.fromCharCode(byte)).join(""))}`;
  if (seen.has(value)) return "...";
  seen.add(value);
  try {
    const items = (iterable) => Array.from(iterable, (item) => pyRepr(item, seen)).join(", ");
    if (value instanceof Tuple) return value.length === 1 ? `(${pyRepr(value[0], seen)},)` : `(${items(value)})`;
    if (Array.isArray(value)) return `[${items(value)}]`;
    if (value instanceof FrozenSet) return value.size ? `frozenset({${items(value)}})` : "frozenset()";
    if (value instanceof Set) return value.size ? `{${items(value)}}` : "set()";
    if (value instanceof Map) return `{${Array.from(value, ([k, v]) => `${pyRepr(k, seen)}: ${pyRepr(v, seen)}`).join(", ")}}`;
    // A `repr` or `cycle` node carries the text Python shows for it.
    if (value instanceof Py) return typeof value.value === "string" ? value.value : `<${value.kind}>`;
    return String(value);
  } finally {
    seen.delete(value);
  }
}

function floatRepr(x) {
  if (Number.isNaN(x)) return "nan";
  if (!Number.isFinite(x)) return x > 0 ? "inf" : "-inf";
  return Number.isInteger(x) ? x.toFixed(1) : String(x);
}

function strRepr(s) {
  const quote = s.includes("'") && !s.includes('"') ? '"' : "'";
  const escaped = s.replace(/[\\\n\r\t]/g, (c) => ({ "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t" })[c]);
  return quote + (quote === "'" ? escaped.replaceAll("'", "\\'") : escaped) + quote;
}
