//! The C entry points: eight functions, bytes in and bytes out.
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
//! - A host chooses per session whether the engine runs in its own process
//!   ([`monty_wire_session_open`]) or in a worker process that sandboxed
//!   code cannot take the host down from
//!   ([`monty_wire_session_open_isolated`]); the other functions work the
//!   same on both.
//!
//! The header (`include/monty_wire.h`, from `cbindgen.toml`) states the
//! ownership, threading and undefined-behaviour rules in full.

use std::{
    ffi::{CStr, c_char, c_void},
    panic::{self, AssertUnwindSafe},
    path::PathBuf,
};

use monty_types::PrintStream;

use super::registry::{
    Engine, cancel_session, close_session, free_buffer, into_buffer, open_session, set_print_sink, with_session,
};
pub use super::registry::{
    MONTY_WIRE_INTERNAL_ERROR, MONTY_WIRE_NOT_ISOLATED, MONTY_WIRE_OK, MONTY_WIRE_SESSION_BUSY,
    MONTY_WIRE_UNKNOWN_SESSION, MontyWireBuffer, MontyWireSession,
};
use crate::{
    PROTOCOL_VERSION, Session, WireMessage,
    protocol::{ErrorCode, ProtocolError},
    session::error_response,
    worker::IsolatedSession,
};

/// Receives print output while code runs: `stream` is 0 for stdout and 1 for
/// stderr, and `text` is `len` bytes of UTF-8 (not NUL-terminated) that are
/// valid only during the call. Each call carries one fragment `print()`
/// wrote (an argument, a separator, the end), or, once the session has
/// taken a `setPrintDelivery` request, what it gathered of one stream:
/// whole lines, or what an interval gathered. Either way the calls come in
/// the order the text was written, and all of a request's output has come
/// before `monty_wire_dispatch` returns.
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
/// `openRepl`, `loadSession`); `typeCheck`, `detectContinuation`,
/// `setDumpKey` and `setPrintDelivery` are accepted in any state, even
/// empty. Close it with
/// [`monty_wire_session_close`].
#[unsafe(no_mangle)]
pub extern "C" fn monty_wire_session_open() -> MontyWireSession {
    open_session(Engine::InProcess(Session::new()))
}

/// Opens an empty isolated session and returns its handle (never 0): one
/// whose engine runs in a worker process, so that nothing the sandboxed
/// code does (a native stack overflow, an allocation that fails, a
/// long-running operation) can take the host down. It takes the same
/// requests and gives the same responses as a session from
/// [`monty_wire_session_open`], and adds four outcomes: `workerUnavailable`
/// (no worker could start; the next request tries again), and
/// `workerCrashed`, `deadlineExceeded` and `cancelled` (the worker ended
/// during the request; the session is empty again, and its next request runs
/// in a fresh worker).
///
/// `worker_path` is the `monty-wire` executable built with this library (its
/// `worker` subcommand serves the session), as a NUL-terminated path (UTF-8
/// on Windows); null means the path in the environment variable
/// `MONTY_WIRE_WORKER`. The library runs `<worker_path> worker` with the
/// host's environment and working directory.
///
/// The worker holds the session's heap to its limits' `maxMemory` (2 GiB
/// without one), and the library kills it when a request that runs Python
/// outlives the session's time limits plus one second. Workers are kept
/// ready per path (two idle), so opening does not wait for a process once
/// the first has started; a session closed while its worker is healthy
/// hands it back for reuse.
///
/// Where no process can be started (iOS, the WebAssembly module) this still
/// returns a handle, and every request is answered `workerUnavailable`.
///
/// # Safety
/// `worker_path` must be null or point to a NUL-terminated string that stays
/// unchanged during the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn monty_wire_session_open_isolated(worker_path: *const c_char) -> MontyWireSession {
    let binary = if worker_path.is_null() {
        None
    } else {
        // SAFETY: the caller guarantees a NUL-terminated string, unchanged
        // for the duration of this call.
        Some(unsafe { CStr::from_ptr(worker_path) })
    };
    panic::catch_unwind(|| {
        let binary = binary.map(worker_path_of);
        let session = match binary {
            Some(Err(why)) => IsolatedSession::unavailable(why),
            Some(Ok(path)) => IsolatedSession::open(Some(path)),
            None => IsolatedSession::open(None),
        };
        open_session(Engine::Isolated(session))
    })
    // The handle promised is still an isolated session's: never an
    // in-process one the host did not ask for.
    .unwrap_or_else(|_| {
        open_session(Engine::Isolated(IsolatedSession::unavailable(
            "opening the isolated session failed (a caught panic)".to_owned(),
        )))
    })
}

#[cfg(unix)]
fn worker_path_of(path: &CStr) -> Result<PathBuf, String> {
    use std::os::unix::ffi::OsStrExt;
    Ok(PathBuf::from(std::ffi::OsStr::from_bytes(path.to_bytes())))
}

#[cfg(not(unix))]
fn worker_path_of(path: &CStr) -> Result<PathBuf, String> {
    path.to_str()
        .map(PathBuf::from)
        .map_err(|_| "the worker path is not UTF-8".to_owned())
}

/// Stops the request running in an isolated session, at once, from any
/// thread: its worker is killed, and the `monty_wire_dispatch` waiting on it
/// returns a `cancelled` response (the session is empty again). A session
/// with no request running is left alone. Returns [`MONTY_WIRE_OK`],
/// [`MONTY_WIRE_UNKNOWN_SESSION`], or [`MONTY_WIRE_NOT_ISOLATED`] for an
/// in-process session, whose requests run on the host's own thread and
/// cannot be stopped from outside (its time limits stop Python code).
#[unsafe(no_mangle)]
pub extern "C" fn monty_wire_cancel(session: MontyWireSession) -> i32 {
    panic::catch_unwind(|| cancel_session(session)).unwrap_or(MONTY_WIRE_INTERNAL_ERROR)
}

/// Closes a session and frees everything it holds (on the session's own
/// stack, like a request). A thread still inside an in-process session
/// finishes its request first; in an isolated session that request is
/// cancelled (it returns `cancelled`), so closing never waits on a worker.
/// Returns [`MONTY_WIRE_OK`], or
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
/// hosts that show it live; `callback` null removes it. How often it is
/// called is the session's `setPrintDelivery` (each fragment by default; see
/// [`MontyWirePrintCallback`]). Output is also in every response either way. Returns [`MONTY_WIRE_OK`],
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
