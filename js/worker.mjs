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
      const onPrint = data.print ? (stream, text) => self.postMessage({ op: "print", session: id, stream, text }) : null;
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

self.onmessage = ({ data }) => {
  queue = queue.then(() => serve(data));
};

async function serve(data) {
  const { id } = data;
  self.postMessage({ op: "started", id });
  try {
    const result = await handle(data);
    if (result && result.transfer instanceof ArrayBuffer) {
      self.postMessage({ id, result: result.transfer }, [result.transfer]);
    } else {
      self.postMessage({ id, result });
    }
  } catch (error) {
    self.postMessage({
      id,
      error: { name: error?.name ?? "Error", message: error?.message ?? String(error), stderr: error?.stderr ?? "" },
    });
  }
}
