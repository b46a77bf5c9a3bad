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
//! - Response buffers are tracked: freeing one twice, or freeing a pointer
//!   this library never returned, does nothing.

use std::{
    collections::{HashMap, HashSet},
    ffi::c_void,
    panic::{self, AssertUnwindSafe},
    sync::{
        Arc, LazyLock, Mutex, MutexGuard, TryLockError,
        atomic::{AtomicU64, Ordering},
    },
};

use capnp::Word;
use monty_types::PrintStream;

use crate::{
    PROTOCOL_VERSION, WireMessage,
    protocol::{ErrorCode, ProtocolError},
    session::{Session, error_response},
};

/// A session handle. 0 is never a valid handle.
pub type MontyWireSession = u64;

/// A response message: `len` bytes at `data`, 8-byte aligned, valid until
/// the buffer is passed to [`monty_wire_buffer_free`].
#[repr(C)]
pub struct MontyWireBuffer {
    /// The first byte of the framed Cap'n Proto message.
    pub data: *const u8,
    /// Its length in bytes (a multiple of 8).
    pub len: usize,
}

/// Receives print output while code runs: `stream` is 0 for stdout and 1 for
/// stderr, and `text` is `len` bytes of UTF-8 (not NUL-terminated) that are
/// valid only during the call.
pub type MontyWirePrintCallback =
    Option<unsafe extern "C" fn(user_data: *mut c_void, stream: u32, text: *const u8, len: usize)>;

/// [`monty_wire_session_close`] and [`monty_wire_set_print_callback`]
/// succeeded.
pub const MONTY_WIRE_OK: i32 = 0;
/// The handle is 0, closed, or was never returned by [`monty_wire_session_open`].
pub const MONTY_WIRE_UNKNOWN_SESSION: i32 = -1;
/// Another thread is inside this session.
pub const MONTY_WIRE_SESSION_BUSY: i32 = -2;
/// The library failed (a caught panic).
pub const MONTY_WIRE_INTERNAL_ERROR: i32 = -3;

/// The header a host reads, followed by the buffer it describes. `repr(C)`
/// with the header first, so a pointer to this is a pointer to the header.
#[repr(C)]
struct OwnedBuffer {
    header: MontyWireBuffer,
    words: Vec<Word>,
}

type SharedSession = Arc<Mutex<Session>>;

static SESSIONS: LazyLock<Mutex<HashMap<MontyWireSession, SharedSession>>> = LazyLock::new(Default::default);
static NEXT_SESSION: AtomicU64 = AtomicU64::new(1);
/// Addresses of the buffers handed out and not yet freed.
static LIVE_BUFFERS: LazyLock<Mutex<HashSet<usize>>> = LazyLock::new(Default::default);

/// Locks a registry. Registry updates cannot panic halfway, so a poisoned
/// lock (a panic elsewhere while it was held) still guards consistent data.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn find_session(handle: MontyWireSession) -> Option<SharedSession> {
    lock(&SESSIONS).get(&handle).cloned()
}

/// Runs `f` on the session, or says why it cannot.
pub(crate) fn with_session<T>(handle: MontyWireSession, f: impl FnOnce(&mut Session) -> T) -> Result<T, ProtocolError> {
    let session = find_session(handle).ok_or_else(|| {
        ProtocolError::new(
            ErrorCode::UnknownSession,
            format!("session handle {handle} is not open (null, closed, or never opened)"),
        )
    })?;
    let mut guard = match session.try_lock() {
        Ok(guard) => guard,
        Err(TryLockError::WouldBlock) => {
            return Err(ProtocolError::new(
                ErrorCode::SessionBusy,
                format!("session {handle} is in use by another thread"),
            ));
        }
        // The engine catches its own panics before they unwind through
        // this lock, so the state behind a poisoned lock is still whole.
        Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
    };
    Ok(f(&mut guard))
}

fn into_buffer(message: WireMessage) -> *mut MontyWireBuffer {
    let words = message.into_words();
    let header = MontyWireBuffer {
        data: Word::words_to_bytes(&words).as_ptr(),
        len: words.len() * 8,
    };
    let raw = Box::into_raw(Box::new(OwnedBuffer { header, words }));
    lock(&LIVE_BUFFERS).insert(raw as usize);
    raw.cast::<MontyWireBuffer>()
}

fn internal_error(what: &str) -> WireMessage {
    error_response(ProtocolError::new(
        ErrorCode::InternalError,
        format!("monty-wire panicked while {what}"),
    ))
}

/// The protocol version this library speaks (`protocolVersion` in the
/// schema). A host compares it with the schema it was built against.
#[unsafe(no_mangle)]
pub extern "C" fn monty_wire_protocol_version() -> u32 {
    PROTOCOL_VERSION
}

/// Opens an empty session and returns its handle (never 0). Its first
/// request opens a run. Close it with [`monty_wire_session_close`].
#[unsafe(no_mangle)]
pub extern "C" fn monty_wire_session_open() -> MontyWireSession {
    let handle = NEXT_SESSION.fetch_add(1, Ordering::Relaxed);
    lock(&SESSIONS).insert(handle, Arc::new(Mutex::new(Session::new())));
    handle
}

/// Closes a session and frees everything it holds. A thread still inside
/// the session finishes its request first. Returns [`MONTY_WIRE_OK`], or
/// [`MONTY_WIRE_UNKNOWN_SESSION`] for a handle that is not open (closing
/// twice is harmless).
#[unsafe(no_mangle)]
pub extern "C" fn monty_wire_session_close(session: MontyWireSession) -> i32 {
    // Dropping a session runs monty's destructors; keep any panic in here.
    panic::catch_unwind(|| {
        // Taken out first, so the registry is not locked while it drops.
        let removed = lock(&SESSIONS).remove(&session);
        match removed {
            Some(_) => MONTY_WIRE_OK,
            None => MONTY_WIRE_UNKNOWN_SESSION,
        }
    })
    .unwrap_or(MONTY_WIRE_INTERNAL_ERROR)
}

/// Sends one request message to a session and returns its response.
///
/// The request is `request_len` bytes at `request`: one framed Cap'n Proto
/// message whose root is a `Request`. It is read in place, at any alignment,
/// and only during this call. The result is never null: every failure
/// (unknown handle, busy session, malformed bytes, wrong state) is a
/// `Response` carrying a `protocolError`.
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

/// Frees a buffer returned by [`monty_wire_dispatch`]. Null, an already
/// freed buffer, or a pointer this library did not return are ignored.
///
/// # Safety
/// The host must not read the buffer's bytes after freeing it.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn monty_wire_buffer_free(buffer: *mut MontyWireBuffer) {
    if buffer.is_null() || !lock(&LIVE_BUFFERS).remove(&(buffer as usize)) {
        return;
    }
    // SAFETY: the address was in LIVE_BUFFERS, so it came from
    // `Box::into_raw` in `into_buffer` and has not been freed; removing it
    // first makes this the only free.
    drop(unsafe { Box::from_raw(buffer.cast::<OwnedBuffer>()) });
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
    let result = panic::catch_unwind(AssertUnwindSafe(|| {
        with_session(session, |s| {
            s.set_print_sink(sink.map(|sink| Box::new(move |stream, text: &str| sink.call(stream, text)) as _));
        })
    }));
    match result {
        Ok(Ok(())) => MONTY_WIRE_OK,
        Ok(Err(error)) if error.code == ErrorCode::SessionBusy => MONTY_WIRE_SESSION_BUSY,
        Ok(Err(_)) => MONTY_WIRE_UNKNOWN_SESSION,
        Err(_) => MONTY_WIRE_INTERNAL_ERROR,
    }
}
