/*
 * monty-wire: the monty Python sandbox behind one Cap'n Proto protocol.
 *
 * Requests and responses are framed Cap'n Proto messages described by
 * schema/monty_wire.capnp. See README.md for ownership and lifetimes.
 */

#ifndef MONTY_WIRE_H
#define MONTY_WIRE_H

/* Generated from src/ffi.rs by cbindgen; do not edit. */

#include <stddef.h>
#include <stdint.h>

// [`monty_wire_session_close`] and [`monty_wire_set_print_callback`]
// succeeded.
#define MONTY_WIRE_OK 0

// The handle is 0, closed, or was never returned by [`monty_wire_session_open`].
#define MONTY_WIRE_UNKNOWN_SESSION -1

// Another thread is inside this session.
#define MONTY_WIRE_SESSION_BUSY -2

// The library failed (a caught panic).
#define MONTY_WIRE_INTERNAL_ERROR -3

// A session handle. 0 is never a valid handle.
typedef uint64_t MontyWireSession;

// A response message: `len` bytes at `data`, 8-byte aligned, valid until
// the buffer is passed to [`monty_wire_buffer_free`].
typedef struct MontyWireBuffer {
  // The first byte of the framed Cap'n Proto message.
  const uint8_t *data;
  // Its length in bytes (a multiple of 8).
  size_t len;
} MontyWireBuffer;

// Receives print output while code runs: `stream` is 0 for stdout and 1 for
// stderr, and `text` is `len` bytes of UTF-8 (not NUL-terminated) that are
// valid only during the call.
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
// request opens a run. Close it with [`monty_wire_session_close`].
MontyWireSession monty_wire_session_open(void);

// Closes a session and frees everything it holds. A thread still inside
// the session finishes its request first. Returns [`MONTY_WIRE_OK`], or
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
// # Safety
// `request` must point to `request_len` readable bytes, or be null with
// `request_len` 0, and must not be written to during the call.
struct MontyWireBuffer *monty_wire_dispatch(MontyWireSession session,
                                            const uint8_t *request,
                                            size_t request_len);

// Frees a buffer returned by [`monty_wire_dispatch`]. Null, an already
// freed buffer, or a pointer this library did not return are ignored.
//
// # Safety
// The host must not read the buffer's bytes after freeing it.
void monty_wire_buffer_free(struct MontyWireBuffer *buffer);

// Registers a callback that receives print output while code runs, for
// hosts that show it live; `callback` null removes it. Output is also in
// every response either way. Returns [`MONTY_WIRE_OK`],
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
