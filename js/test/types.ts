// Type-checked (never run) by scripts/test-web.sh: tsc --noEmit -p js/test.
// Uses the declarations as a TypeScript host would, so they cannot drift
// from what the examples in js/README.md do.
import {
  MontyWire,
  MontyWireTrapped,
  type PrintDelivery,
  type PrintStream,
  printDeliveryRequest,
  Session,
  WASI_IMPLEMENTED,
  WasiExit,
} from "../monty_wire.mjs";
import * as C from "../codec/monty_wire_codec.mjs";
import { MontyWireTerminated, MontyWireWorker, type WorkerSession } from "../monty_wire_worker.mjs";

export async function inProcess(request: Uint8Array): Promise<number> {
  const wire: MontyWire = await MontyWire.load(new URL("../dist/monty_wire.wasm", import.meta.url));
  const version: number = wire.protocolVersion;
  const delivery: PrintDelivery = "lines";
  const session: Session = wire.openSession({
    onPrint: (stream: PrintStream, text: string) => console.log(stream, text),
    printDelivery: delivery,
  });
  const deliveryRequest: Uint8Array = printDeliveryRequest(16);
  const handle: bigint = session.handle;
  const open: number = wire.sessionCount;
  const wasi: readonly string[] = WASI_IMPLEMENTED;
  try {
    const view: Uint8Array = session.dispatch(request);
    const owned: Uint8Array = session.dispatchCopy(request);
    wire.releaseResponse();
    return view.byteLength + owned.byteLength + version + Number(handle) + deliveryRequest.byteLength;
  } catch (error) {
    if (error instanceof MontyWireTrapped) {
      const stderr: string = error.stderr;
      const exit: number = error.cause instanceof WasiExit ? error.cause.exitCode : 0;
      return stderr.length + exit + open + wasi.length;
    }
    throw error;
  } finally {
    session.close();
  }
}

export async function inWorker(request: Uint8Array): Promise<Uint8Array | null> {
  const host = await MontyWireWorker.create({ timeout: 5000, grace: 500 });
  const session: WorkerSession = await host.openSession({ onPrint: (stream, text) => console.log(stream, text), printDelivery: 16 });
  try {
    const response: Uint8Array = await session.dispatch(request, { timeout: 1000 });
    const root = new C.Reader(response).root();
    if (C.Response_which(root) === C.Response_Which.protocolError) {
      const code: number = C.ProtocolError_code(C.Response_protocolError(root));
      if (code === C.ErrorCode.deadlineExceeded || code === C.ErrorCode.cancelled || code === C.ErrorCode.workerCrashed) {
        return null; // the session is empty again: open it again, or load a dump
      }
    }
    const cancelled: boolean = session.cancel(); // nothing in flight: false
    const restarted: void = await host.restart(); // a fresh worker for what comes next
    return cancelled ? null : (restarted ?? response);
  } catch (error) {
    if (error instanceof MontyWireTerminated) {
      return null;
    }
    throw error;
  } finally {
    await session.close();
    host.terminate();
  }
}
