// The Web Worker side of MontyWireWorker (monty_wire_worker.mjs): one
// MontyWire instance per worker. Started as a module worker:
//   new Worker(new URL("./worker.mjs", import.meta.url), { type: "module" })
//
// Messages in:  { id, op: "load", source }                   source: WebAssembly.Module | URL string | ArrayBuffer
//               { id, op: "open", session, print, setup? }   session: the id the page gives it; print: forward live output;
//                                                            setup: requests to dispatch first (ArrayBuffers, such as
//                                                            setPrintDelivery)
//               { id, op: "dispatch", session, request, open? }
//                                                            request: ArrayBuffer (transferred); open: { print, setup }
//                                                            opens the session first (empty), then dispatches each
//                                                            request of `setup` (ArrayBuffers, such as setDumpKey)
//               { id, op: "close", session }
// Messages out: { id, result } / { id, error: { name, message, stderr, exitCode? } }
//               dispatch: result is an ArrayBuffer, transferred
//               { op: "print", session, stream, text }       live output, one message per delivery of the session's
//                                                            print delivery, before the dispatch reply
//
// Requests are served one at a time, in order, each after the previous one
// finished (loading is asynchronous: a request that arrives meanwhile
// waits). MontyWireWorker posts the next request only once the previous one
// is answered, so the one running is always the last one posted.
import { MontyWire, WasiExit } from "./monty_wire.mjs";

// The worker's side of the channel: the Web Worker's global scope, or in
// Node (a worker_threads thread, see monty_wire_worker.mjs) its parent port,
// which holds messages until the listener is attached.
const channel = { post: (message, transfer) => globalThis.postMessage(message, transfer) };
const inNode = typeof process !== "undefined" && process.versions?.node && typeof WorkerGlobalScope === "undefined";

let wire = null;
const sessions = new Map();

/** Opens session `id` (closing one already open under that id), then dispatches each request of `setup`. */
function open(id, print, setup = []) {
  sessions.get(id)?.close();
  const onPrint = print ? (stream, text) => channel.post({ op: "print", session: id, stream, text }) : null;
  const session = wire.openSession({ onPrint });
  sessions.set(id, session);
  for (const request of setup) session.dispatchCopy(new Uint8Array(request));
  return session;
}

function handle({ op, ...data }) {
  switch (op) {
    case "load":
      return MontyWire.load(data.source).then((loaded) => {
        wire = loaded;
        return { protocolVersion: wire.protocolVersion };
      });
    case "open":
      open(data.session, data.print, data.setup);
      return data.session;
    case "dispatch": {
      if (data.open) {
        open(data.session, data.open.print, data.open.setup);
      }
      const session = sessions.get(data.session);
      if (!session) {
        throw Object.assign(new Error(`session ${data.session} is not open in this worker`), { name: "MontyWireError" });
      }
      // The one copy out of linear memory; the copy is then transferred.
      const response = session.dispatchCopy(new Uint8Array(data.request));
      return { transfer: response.buffer };
    }
    case "close": {
      sessions.get(data.session)?.close();
      sessions.delete(data.session);
      return null;
    }
    default:
      throw new Error(`unknown op ${op}`);
  }
}

let queue = Promise.resolve();

const receive = (data) => {
  queue = queue.then(() => serve(data));
};
if (inNode) {
  import("node:worker_threads").then(({ parentPort }) => {
    channel.post = (message, transfer) => parentPort.postMessage(message, transfer);
    parentPort.on("message", receive);
  });
} else {
  globalThis.onmessage = ({ data }) => receive(data);
}

async function serve(data) {
  const { id } = data;
  try {
    const result = await handle(data);
    if (result && result.transfer instanceof ArrayBuffer) {
      channel.post({ id, result: result.transfer }, [result.transfer]);
    } else {
      channel.post({ id, result });
    }
  } catch (error) {
    channel.post({
      id,
      error: {
        name: error?.name ?? "Error",
        message: error?.message ?? String(error),
        stderr: error?.stderr ?? "",
        // proc_exit from inside the module: its status.
        exitCode: error?.cause instanceof WasiExit ? error.cause.exitCode : undefined,
      },
    });
  }
}
