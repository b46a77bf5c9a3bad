/*
 * monty-wire: the monty Python sandbox behind one Cap'n Proto protocol.
 *
 * Requests and responses are framed Cap'n Proto messages described by
 * schema/monty_wire.capnp; README.md documents the protocol. A host checks
 * at compile time that it was built against this header's protocol with
 * MONTY_WIRE_PROTOCOL_VERSION, and at run time that the library it loaded
 * speaks the same with monty_wire_protocol_version().
 *
 * Ownership
 * - Request bytes belong to the caller. monty_wire_dispatch reads them in
 *   place, at any alignment, only during the call.
 * - A response buffer belongs to the library until the caller passes it to
 *   monty_wire_buffer_free, once. Until then its len bytes at data are one
 *   framed message, 8-byte aligned, unchanged, and independent of the
 *   session (closing the session does not free them). monty_wire_dispatch
 *   never returns NULL: every failure is a response carrying a
 *   protocolError.
 * - Sessions are integer handles, never pointers: 0, a closed or a made-up
 *   handle is looked up and refused (unknownSession, or
 *   MONTY_WIRE_UNKNOWN_SESSION), never dereferenced. Closing twice is
 *   harmless.
 *
 * Isolation
 * - monty_wire_session_open runs the session's engine in the host's
 *   process. monty_wire_session_open_isolated runs it in a worker process:
 *   the same requests and responses, but a native stack overflow, an
 *   allocation past the session's maxMemory, or a request that outlives its
 *   time limits ends only the worker (workerCrashed, deadlineExceeded), and
 *   monty_wire_cancel stops a request at once (cancelled). After those the
 *   session is empty; its next request runs in a fresh worker.
 * - The worker binary is the monty-wire executable built with this library:
 *   the path passed to monty_wire_session_open_isolated, or else the
 *   MONTY_WIRE_WORKER environment variable. The library runs
 *   "<path> worker". Without one, or where processes cannot be started
 *   (iOS, the WebAssembly module), requests answer workerUnavailable.
 *
 * Threads
 * - Every function may be called from any thread. A session serves one
 *   call at a time: a call into a session another thread is inside gets
 *   sessionBusy (or MONTY_WIRE_SESSION_BUSY) at once and never blocks.
 *   Different sessions run in parallel.
 * - monty_wire_cancel is meant for another thread than the one inside
 *   monty_wire_dispatch: it never waits for the session.
 * - monty_wire_session_close does not wait: a call still inside an
 *   in-process session finishes, and the session is freed when it returns;
 *   a call inside an isolated session is cancelled.
 * - The print callback runs during monty_wire_dispatch, on the thread that
 *   called it; its text is valid only during the callback. Each call
 *   carries one fragment print() wrote, or, after a setPrintDelivery
 *   request, what the session gathered of one stream (whole lines, or what
 *   an interval gathered); everything is delivered before
 *   monty_wire_dispatch returns. Setting a
 *   session's callback from inside that session's callback is refused with
 *   MONTY_WIRE_SESSION_BUSY, and the old callback stays in use.
 * - No panic crosses this boundary: it becomes an internalError response
 *   (the session is reset to empty) or MONTY_WIRE_INTERNAL_ERROR.
 *
 * Undefined behaviour (the library cannot detect these)
 * - Reading a response's bytes after freeing its buffer.
 * - Freeing a buffer twice. Freeing NULL, or a pointer the library never
 *   returned, is ignored; but a freed buffer's address may be reused by a
 *   later response, and a second free would then free that one.
 * - A request pointer that does not point to request_len readable bytes
 *   (NULL is allowed with request_len 0), or bytes changed during the call.
 * - A print callback that unwinds (throws) into the library, or whose code
 *   or user_data becomes invalid before it is replaced or its session is
 *   closed.
 * - Unloading the library while any of its functions is running.
 */

#ifndef MONTY_WIRE_H
#define MONTY_WIRE_H

/* Generated from src/abi/ by cbindgen; do not edit. */

#include <stddef.h>
#include <stdint.h>

// `monty_wire_session_close`, `monty_wire_set_print_callback` or
// `monty_wire_cancel` succeeded.
#define MONTY_WIRE_OK 0

// The handle is 0, closed, or was never returned by `monty_wire_session_open`.
#define MONTY_WIRE_UNKNOWN_SESSION -1

// Another thread is inside this session.
#define MONTY_WIRE_SESSION_BUSY -2

// The library failed (a caught panic).
#define MONTY_WIRE_INTERNAL_ERROR -3

// `monty_wire_cancel` on an in-process session: a request running in the
// host's own process cannot be stopped (use the session's time limits, or
// an isolated session).
#define MONTY_WIRE_NOT_ISOLATED -4

// The protocol version this header describes (`protocolVersion` in the
// schema), for a host to check at compile time; at run time
// [`monty_wire_protocol_version`] says what the loaded library speaks.
#define MONTY_WIRE_PROTOCOL_VERSION 3

// A session handle. 0 is never a valid handle.
typedef uint64_t MontyWireSession;

// A response message: `len` bytes at `data`, 8-byte aligned, valid until
// the buffer is passed to `monty_wire_buffer_free`.
typedef struct MontyWireBuffer {
  // The first byte of the framed Cap'n Proto message.
  const uint8_t *data;
  // Its length in bytes (a multiple of 8).
  size_t len;
} MontyWireBuffer;

// Receives print output while code runs: `stream` is 0 for stdout and 1 for
// stderr, and `text` is `len` bytes of UTF-8 (not NUL-terminated) that are
// valid only during the call. Each call carries one fragment `print()`
// wrote (an argument, a separator, the end), or, once the session has
// taken a `setPrintDelivery` request, what it gathered of one stream:
// whole lines, or what an interval gathered. Either way the calls come in
// the order the text was written, and all of a request's output has come
// before `monty_wire_dispatch` returns.
typedef void (*MontyWirePrintCallback)(void *user_data,
                                       uint32_t stream,
                                       const uint8_t *text,
                                       size_t len);

#ifdef __cplusplus
extern "C" {
#endif // __cplusplus

// The protocol version this library speaks (`protocolVersion` in the
// schema). A host compares it with the schema it was built against.
uint32_t monty_wire_protocol_version(void);

// Opens an empty session and returns its handle (never 0). Its first
// request opens or loads a run or a REPL (`openRun`, `loadProgram`,
// `openRepl`, `loadSession`); `typeCheck`, `detectContinuation`,
// `setDumpKey` and `setPrintDelivery` are accepted in any state, even
// empty. Close it with
// [`monty_wire_session_close`].
MontyWireSession monty_wire_session_open(void);

// Opens an empty isolated session and returns its handle (never 0): one
// whose engine runs in a worker process, so that nothing the sandboxed
// code does (a native stack overflow, an allocation that fails, a
// long-running operation) can take the host down. It takes the same
// requests and gives the same responses as a session from
// [`monty_wire_session_open`], and adds four outcomes: `workerUnavailable`
// (no worker could start; the next request tries again), and
// `workerCrashed`, `deadlineExceeded` and `cancelled` (the worker ended
// during the request; the session is empty again, and its next request runs
// in a fresh worker).
//
// `worker_path` is the `monty-wire` executable built with this library (its
// `worker` subcommand serves the session), as a NUL-terminated path (UTF-8
// on Windows); null means the path in the environment variable
// `MONTY_WIRE_WORKER`. The library runs `<worker_path> worker` with the
// host's environment and working directory.
//
// The worker holds the session's heap to its limits' `maxMemory` (2 GiB
// without one), and the library kills it when a request that runs Python
// outlives the session's time limits plus one second. Workers are kept
// ready per path (two idle), so opening does not wait for a process once
// the first has started; a session closed while its worker is healthy
// hands it back for reuse.
//
// Where no process can be started (iOS, the WebAssembly module) this still
// returns a handle, and every request is answered `workerUnavailable`.
//
// # Safety
// `worker_path` must be null or point to a NUL-terminated string that stays
// unchanged during the call.
MontyWireSession monty_wire_session_open_isolated(const char *worker_path);

// Stops the request running in an isolated session, at once, from any
// thread: its worker is killed, and the `monty_wire_dispatch` waiting on it
// returns a `cancelled` response (the session is empty again). A session
// with no request running is left alone. Returns [`MONTY_WIRE_OK`],
// [`MONTY_WIRE_UNKNOWN_SESSION`], or [`MONTY_WIRE_NOT_ISOLATED`] for an
// in-process session, whose requests run on the host's own thread and
// cannot be stopped from outside (its time limits stop Python code).
int32_t monty_wire_cancel(MontyWireSession session);

// Closes a session and frees everything it holds (on the session's own
// stack, like a request). A thread still inside an in-process session
// finishes its request first; in an isolated session that request is
// cancelled (it returns `cancelled`), so closing never waits on a worker.
// Returns [`MONTY_WIRE_OK`], or
// [`MONTY_WIRE_UNKNOWN_SESSION`] for a handle that is not open (closing
// twice is harmless).
int32_t monty_wire_session_close(MontyWireSession session);

// Sends one request message to a session and returns its response.
//
// The request is `request_len` bytes at `request`: one framed Cap'n Proto
// message whose root is a `Request`. It is read in place, at any alignment,
// and only during this call. The result is never null: every failure
// (unknown handle, busy session, malformed bytes, wrong state) is a
// `Response` carrying a `protocolError`.
//
// Stack: this may be called from any thread, whatever its stack size (a
// Dart VM thread's 1 MiB, a macOS secondary thread's 512 KiB, a musl
// thread's 128 KiB). Importing the request's values, running Python and
// exporting and encoding the response (exporting, ordering, hashing and
// printing nested values recurse once per level, up to the session's
// recursion limit) run on a stack the session owns: mapped on its first
// request with room for its recursion limit, kept between requests, mapped
// again larger when a request raises the limit, with a guard page below it.
// The calling thread's stack holds only decoding, which does not recurse.
// On Windows a request runs on a fiber of that size when the calling thread
// has less stack left. In a WebAssembly build there is no switch: the
// module's own stack applies, and overflowing it traps the instance.
//
// # Safety
// `request` must point to `request_len` readable bytes, or be null with
// `request_len` 0, and must not be written to during the call.
struct MontyWireBuffer *monty_wire_dispatch(MontyWireSession session,
                                            const uint8_t *request,
                                            size_t request_len);

// Frees a buffer returned by [`monty_wire_dispatch`]. Null, or a pointer
// this library did not return, is ignored.
//
// # Safety
// Free each buffer once, and read none of its bytes afterwards. A second
// free is undefined: once freed, the address may be reused by a later
// response, and the second free would free that one.
void monty_wire_buffer_free(struct MontyWireBuffer *buffer);

// Registers a callback that receives print output while code runs, for
// hosts that show it live; `callback` null removes it. How often it is
// called is the session's `setPrintDelivery` (each fragment by default; see
// [`MontyWirePrintCallback`]). Output is also in every response either way. Returns [`MONTY_WIRE_OK`],
// [`MONTY_WIRE_UNKNOWN_SESSION`] or [`MONTY_WIRE_SESSION_BUSY`].
//
// # Safety
// `callback` is called on whichever thread is dispatching to the session,
// with `user_data` as given; both must stay valid until the callback is
// replaced or the session closed. The callback must not unwind.
int32_t monty_wire_set_print_callback(MontyWireSession session,
                                      MontyWirePrintCallback callback,
                                      void *user_data);

#ifdef __cplusplus
}  // extern "C"
#endif  // __cplusplus

#endif  /* MONTY_WIRE_H */
