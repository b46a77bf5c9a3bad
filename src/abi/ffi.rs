//! The C entry points: six functions, bytes in and bytes out.
//!
//! A host opens a session, sends it request messages with
//! [`monty_wire_dispatch`] and reads each response in place from the
//! returned [`MontyWireBuffer`] until it frees it. Everything else (which
//! program to run, how to answer a call, what limits apply) is in the
//! messages, so this surface never grows with monty's.
//!
//! # Safety model
//! - Sessions are named by integer handles, never pointers: a null (0),
//!   closed or made-up handle is looked up, not dereferenced, and gets an
//!   `unknownSession` error response.
//! - A session is used by one thread at a time. A second thread that calls
//!   into a session while the first is still inside gets `sessionBusy`.
//! - No panic crosses the boundary: every entry point catches unwinding and
//!   turns it into an `internalError` response or an error code.
//! - Response buffers are tracked: freeing a pointer this library never
//!   returned, or null, does nothing. Freeing a buffer twice is undefined:
//!   its address may already belong to a later response.
//! - Any thread will do, however small its stack: each session runs monty
//!   on a stack of its own, sized for its recursion limit (see
//!   [`monty_wire_dispatch`]).
//!
//! The header (`include/monty_wire.h`, from `cbindgen.toml`) states the
//! ownership, threading and undefined-behaviour rules in full.

use std::{
    ffi::c_void,
    panic::{self, AssertUnwindSafe},
};

use monty_types::PrintStream;

pub use super::registry::{
    MONTY_WIRE_INTERNAL_ERROR, MONTY_WIRE_OK, MONTY_WIRE_SESSION_BUSY, MONTY_WIRE_UNKNOWN_SESSION, MontyWireBuffer,
    MontyWireSession,
};
use super::registry::{close_session, free_buffer, into_buffer, open_session, set_print_sink, with_session};
use crate::{
    PROTOCOL_VERSION, WireMessage,
    protocol::{ErrorCode, ProtocolError},
    session::error_response,
};

/// Receives print output while code runs: `stream` is 0 for stdout and 1 for
/// stderr, and `text` is `len` bytes of UTF-8 (not NUL-terminated) that are
/// valid only during the call.
pub type MontyWirePrintCallback =
    Option<unsafe extern "C" fn(user_data: *mut c_void, stream: u32, text: *const u8, len: usize)>;

fn internal_error(what: &str) -> WireMessage {
    error_response(ProtocolError::new(
        ErrorCode::InternalError,
        format!("monty-wire panicked while {what}"),
    ))
}

/// The protocol version this header describes (`protocolVersion` in the
/// schema), for a host to check at compile time; at run time
/// [`monty_wire_protocol_version`] says what the loaded library speaks.
pub const MONTY_WIRE_PROTOCOL_VERSION: u32 = 3;
const _: () = assert!(
    MONTY_WIRE_PROTOCOL_VERSION == PROTOCOL_VERSION,
    "the header's version is the schema's"
);

/// The protocol version this library speaks (`protocolVersion` in the
/// schema). A host compares it with the schema it was built against.
#[unsafe(no_mangle)]
pub extern "C" fn monty_wire_protocol_version() -> u32 {
    PROTOCOL_VERSION
}

/// Opens an empty session and returns its handle (never 0). Its first
/// request opens or loads a run or a REPL (`openRun`, `loadProgram`,
/// `openRepl`, `loadSession`); `typeCheck`, `detectContinuation` and
/// `setDumpKey` are accepted in any state, even empty. Close it with
/// [`monty_wire_session_close`].
#[unsafe(no_mangle)]
pub extern "C" fn monty_wire_session_open() -> MontyWireSession {
    open_session()
}

/// Closes a session and frees everything it holds (on the session's own
/// stack, like a request). A thread still inside the session finishes its
/// request first. Returns [`MONTY_WIRE_OK`], or
/// [`MONTY_WIRE_UNKNOWN_SESSION`] for a handle that is not open (closing
/// twice is harmless).
#[unsafe(no_mangle)]
pub extern "C" fn monty_wire_session_close(session: MontyWireSession) -> i32 {
    // Dropping a session runs monty's destructors; keep any panic in here.
    panic::catch_unwind(|| close_session(session)).unwrap_or(MONTY_WIRE_INTERNAL_ERROR)
}

/// Sends one request message to a session and returns its response.
///
/// The request is `request_len` bytes at `request`: one framed Cap'n Proto
/// message whose root is a `Request`. It is read in place, at any alignment,
/// and only during this call. The result is never null: every failure
/// (unknown handle, busy session, malformed bytes, wrong state) is a
/// `Response` carrying a `protocolError`.
///
/// Stack: this may be called from any thread, whatever its stack size (a
/// Dart VM thread's 1 MiB, a macOS secondary thread's 512 KiB, a musl
/// thread's 128 KiB). Importing the request's values, running Python and
/// exporting and encoding the response (exporting, ordering, hashing and
/// printing nested values recurse once per level, up to the session's
/// recursion limit) run on a stack the session owns: mapped on its first
/// request with room for its recursion limit, kept between requests, mapped
/// again larger when a request raises the limit, with a guard page below it.
/// The calling thread's stack holds only decoding, which does not recurse.
/// On Windows a request runs on a fiber of that size when the calling thread
/// has less stack left. In a WebAssembly build there is no switch: the
/// module's own stack applies, and overflowing it traps the instance.
///
/// # Safety
/// `request` must point to `request_len` readable bytes, or be null with
/// `request_len` 0, and must not be written to during the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn monty_wire_dispatch(
    session: MontyWireSession,
    request: *const u8,
    request_len: usize,
) -> *mut MontyWireBuffer {
    let bytes: &[u8] = if request.is_null() || request_len == 0 {
        &[]
    } else {
        // SAFETY: the caller guarantees `request_len` readable bytes at the
        // non-null `request`, unchanged for the duration of this call.
        unsafe { std::slice::from_raw_parts(request, request_len) }
    };
    let message = panic::catch_unwind(AssertUnwindSafe(|| {
        with_session(session, |s| s.handle_bytes(bytes)).unwrap_or_else(error_response)
    }))
    .unwrap_or_else(|_| internal_error("handling a request"));
    into_buffer(message)
}

/// Frees a buffer returned by [`monty_wire_dispatch`]. Null, or a pointer
/// this library did not return, is ignored.
///
/// # Safety
/// Free each buffer once, and read none of its bytes afterwards. A second
/// free is undefined: once freed, the address may be reused by a later
/// response, and the second free would free that one.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn monty_wire_buffer_free(buffer: *mut MontyWireBuffer) {
    free_buffer(buffer);
}

/// A host's C callback and its context pointer.
struct HostPrintCallback {
    callback: unsafe extern "C" fn(*mut c_void, u32, *const u8, usize),
    user_data: *mut c_void,
}

// SAFETY: the callback is only ever called from the thread that is inside
// the session; a host that registers one promises, as documented on
// `monty_wire_set_print_callback`, that it may be called from whichever
// thread dispatches to that session.
unsafe impl Send for HostPrintCallback {}

impl HostPrintCallback {
    fn call(&self, stream: PrintStream, text: &str) {
        let stream = match stream {
            PrintStream::Stdout => 0,
            PrintStream::Stderr => 1,
        };
        // SAFETY: the host registered this function for exactly this
        // signature; `text` is valid UTF-8 for the duration of the call.
        unsafe { (self.callback)(self.user_data, stream, text.as_ptr(), text.len()) }
    }
}

/// Registers a callback that receives print output while code runs, for
/// hosts that show it live; `callback` null removes it. Output is also in
/// every response either way. Returns [`MONTY_WIRE_OK`],
/// [`MONTY_WIRE_UNKNOWN_SESSION`] or [`MONTY_WIRE_SESSION_BUSY`].
///
/// # Safety
/// `callback` is called on whichever thread is dispatching to the session,
/// with `user_data` as given; both must stay valid until the callback is
/// replaced or the session closed. The callback must not unwind.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn monty_wire_set_print_callback(
    session: MontyWireSession,
    callback: MontyWirePrintCallback,
    user_data: *mut c_void,
) -> i32 {
    let sink = callback.map(|callback| HostPrintCallback { callback, user_data });
    panic::catch_unwind(AssertUnwindSafe(|| {
        set_print_sink(
            session,
            sink.map(|sink| Box::new(move |stream, text: &str| sink.call(stream, text)) as _),
        )
    }))
    .unwrap_or(MONTY_WIRE_INTERNAL_ERROR)
}
