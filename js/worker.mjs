// The Web Worker side of MontyWireWorker (monty_wire_worker.mjs): one
// MontyWire instance per worker. Started as a module worker:
//   new Worker(new URL("./worker.mjs", import.meta.url), { type: "module" })
//
// Messages in:  { id, op: "load", source }                   source: WebAssembly.Module | URL string | ArrayBuffer
//               { id, op: "open", print }                    print: forward live output
//               { id, op: "dispatch", session, request }     request: ArrayBuffer (transferred)
//               { id, op: "close", session }
// Messages out: { op: "started", id }                        the worker began on request `id`
//               { id, result } / { id, error: { name, message, stderr } }
//               dispatch: result is an ArrayBuffer, transferred
//               { op: "print", session, stream, text }       live output, before the dispatch reply
//
// Requests are served one at a time, in order, each after the previous one
// finished (loading is asynchronous: a request that arrives meanwhile waits).
// "started" lets the page time a request from when it runs, not from when
// it was queued behind another.
import { MontyWire } from "./monty_wire.mjs";

// The worker's side of the channel: the Web Worker's global scope, or in
// Node (a worker_threads thread, see monty_wire_worker.mjs) its parent port,
// which holds messages until the listener is attached.
const channel = { post: (message, transfer) => globalThis.postMessage(message, transfer) };
const inNode = typeof process !== "undefined" && process.versions?.node && typeof WorkerGlobalScope === "undefined";

let wire = null;
const sessions = new Map();
let nextSession = 1;

function handle({ op, ...data }) {
  switch (op) {
    case "load":
      return MontyWire.load(data.source).then((loaded) => {
        wire = loaded;
        return { protocolVersion: wire.protocolVersion };
      });
    case "open": {
      const id = nextSession++;
      const onPrint = data.print ? (stream, text) => channel.post({ op: "print", session: id, stream, text }) : null;
      sessions.set(id, wire.openSession({ onPrint }));
      return id;
    }
    case "dispatch": {
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
  channel.post({ op: "started", id });
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
      error: { name: error?.name ?? "Error", message: error?.message ?? String(error), stderr: error?.stderr ?? "" },
    });
  }
}
