//! The state both front doors share: open sessions by handle, the response
//! buffers a host holds, and the status codes it reads.
//!
//! Sessions are named by integer handles, never pointers, so a null, closed
//! or made-up handle is looked up and refused, not dereferenced. Response
//! buffers are tracked by address, so freeing a pointer the library never
//! returned (or one already freed, while no later buffer reuses its address)
//! does nothing.

use std::{
    cell::RefCell,
    sync::{
        Arc, Mutex, MutexGuard, TryLockError,
        atomic::{AtomicU64, Ordering},
    },
};

use capnp::Word;
use rustc_hash::{FxBuildHasher, FxHashMap, FxHashSet};

use crate::{
    WireMessage,
    codec::message,
    protocol::{ErrorCode, ProtocolError},
    session::{PrintSink, Session},
    spares::{self, Spares},
    worker::{IsolatedSession, Running},
};

/// A session handle. 0 is never a valid handle.
pub type MontyWireSession = u64;

/// A response message: `len` bytes at `data`, 8-byte aligned, valid until
/// the buffer is passed to `monty_wire_buffer_free`.
#[repr(C)]
pub struct MontyWireBuffer {
    /// The first byte of the framed Cap'n Proto message.
    pub data: *const u8,
    /// Its length in bytes (a multiple of 8).
    pub len: usize,
}

/// `monty_wire_session_close`, `monty_wire_set_print_callback` or
/// `monty_wire_cancel` succeeded.
pub const MONTY_WIRE_OK: i32 = 0;
/// The handle is 0, closed, or was never returned by `monty_wire_session_open`.
pub const MONTY_WIRE_UNKNOWN_SESSION: i32 = -1;
/// Another thread is inside this session.
pub const MONTY_WIRE_SESSION_BUSY: i32 = -2;
/// The library failed (a caught panic).
pub const MONTY_WIRE_INTERNAL_ERROR: i32 = -3;
/// `monty_wire_cancel` on an in-process session: a request running in the
/// host's own process cannot be stopped (use the session's time limits, or
/// an isolated session).
pub const MONTY_WIRE_NOT_ISOLATED: i32 = -4;

/// The header a host reads, followed by the buffer it describes. `repr(C)`
/// with the header first, so a pointer to this is a pointer to the header.
#[repr(C)]
struct OwnedBuffer {
    header: MontyWireBuffer,
    words: Vec<Word>,
}

/// A session of either kind, behind its handle.
pub(crate) enum Engine {
    /// The engine runs in the host's process.
    InProcess(Session),
    /// The engine runs in a worker process.
    Isolated(IsolatedSession),
}

impl Engine {
    pub(crate) fn handle_bytes(&mut self, request: &[u8]) -> WireMessage {
        match self {
            Self::InProcess(session) => session.handle_bytes(request),
            Self::Isolated(session) => session.handle_bytes(request),
        }
    }

    fn set_print_sink(&mut self, sink: Option<PrintSink>) {
        match self {
            Self::InProcess(session) => session.set_print_sink(sink),
            Self::Isolated(session) => session.set_print_sink(sink),
        }
    }
}

/// An open session: its engine, used by one thread at a time, and for an
/// isolated one what another thread's `cancel` reaches without waiting.
struct Entry {
    engine: Mutex<Engine>,
    running: Option<Arc<Running>>,
}

type SharedSession = Arc<Entry>;

static SESSIONS: Mutex<FxHashMap<MontyWireSession, SharedSession>> = Mutex::new(FxHashMap::with_hasher(FxBuildHasher));
static NEXT_SESSION: AtomicU64 = AtomicU64::new(1);
/// Addresses of the buffers handed out and not yet freed.
static LIVE_BUFFERS: Mutex<FxHashSet<usize>> = Mutex::new(FxHashSet::with_hasher(FxBuildHasher));

/// Locks a registry. Registry updates cannot panic halfway, so a poisoned
/// lock (a panic elsewhere while it was held) still guards consistent data.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Registers a new empty session and returns its handle.
pub(crate) fn open_session(engine: Engine) -> MontyWireSession {
    let running = match &engine {
        Engine::InProcess(_) => None,
        Engine::Isolated(session) => Some(session.running()),
    };
    let handle = NEXT_SESSION.fetch_add(1, Ordering::Relaxed);
    let entry = Entry {
        engine: Mutex::new(engine),
        running,
    };
    lock(&SESSIONS).insert(handle, Arc::new(entry));
    handle
}

/// Forgets a session, dropping it once no thread is inside it; the status
/// says whether the handle was open. A request in flight in an isolated
/// session is cancelled: closing never waits for a worker.
pub(crate) fn close_session(handle: MontyWireSession) -> i32 {
    // Taken out first, so the registry is not locked while it drops.
    let removed = lock(&SESSIONS).remove(&handle);
    match removed {
        Some(entry) => {
            if let Some(running) = &entry.running {
                running.cancel();
            }
            MONTY_WIRE_OK
        }
        None => MONTY_WIRE_UNKNOWN_SESSION,
    }
}

fn entry(handle: MontyWireSession) -> Result<SharedSession, ProtocolError> {
    lock(&SESSIONS).get(&handle).cloned().ok_or_else(|| {
        ProtocolError::new(
            ErrorCode::UnknownSession,
            format!("session handle {handle} is not open (null, closed, or never opened)"),
        )
    })
}

/// Stops the request in flight in an isolated session, from any thread.
pub(crate) fn cancel_session(handle: MontyWireSession) -> i32 {
    match entry(handle) {
        Ok(entry) => match &entry.running {
            Some(running) => {
                running.cancel();
                MONTY_WIRE_OK
            }
            None => MONTY_WIRE_NOT_ISOLATED,
        },
        Err(_) => MONTY_WIRE_UNKNOWN_SESSION,
    }
}

/// Runs `f` on the session, or says why it cannot.
pub(crate) fn with_session<T>(handle: MontyWireSession, f: impl FnOnce(&mut Engine) -> T) -> Result<T, ProtocolError> {
    let session = entry(handle)?;
    let mut guard = match session.engine.try_lock() {
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

/// Replaces a session's live print sink, as a status code.
pub(crate) fn set_print_sink(handle: MontyWireSession, sink: Option<PrintSink>) -> i32 {
    match with_session(handle, |s| s.set_print_sink(sink)) {
        Ok(()) => MONTY_WIRE_OK,
        Err(error) if error.code == ErrorCode::SessionBusy => MONTY_WIRE_SESSION_BUSY,
        Err(_) => MONTY_WIRE_UNKNOWN_SESSION,
    }
}

/// How many freed buffer headers a thread keeps for its next responses.
const SPARE_HEADERS: usize = 4;

thread_local! {
    /// Freed headers (their message buffers taken out), so a turn's
    /// response allocates no header; the buffers go back to the codec
    /// (`codec::message::recycle`). The boxes themselves are what is reused
    /// (their allocations), so the list holds boxes.
    static SPARES: Spares<Box<OwnedBuffer>> = const { RefCell::new(Vec::new()) };
}

/// Hands a response to the host: the message's buffer behind a header the
/// host reads, registered until [`free_buffer`].
pub(crate) fn into_buffer(message: WireMessage) -> *mut MontyWireBuffer {
    let words = message.into_words();
    let header = MontyWireBuffer {
        data: Word::words_to_bytes(&words).as_ptr(),
        len: words.len() * 8,
    };
    let owned = match spares::take(&SPARES, |_| true) {
        Some(mut owned) => {
            *owned = OwnedBuffer { header, words };
            owned
        }
        None => Box::new(OwnedBuffer { header, words }),
    };
    let raw = Box::into_raw(owned);
    lock(&LIVE_BUFFERS).insert(raw as usize);
    raw.cast::<MontyWireBuffer>()
}

/// Frees a buffer from [`into_buffer`]; an address that is not a live buffer
/// (null, already freed, never returned) is ignored.
pub(crate) fn free_buffer(buffer: *mut MontyWireBuffer) {
    if buffer.is_null() || !lock(&LIVE_BUFFERS).remove(&(buffer as usize)) {
        return;
    }
    // SAFETY: the address was in LIVE_BUFFERS, so it came from
    // `Box::into_raw` in `into_buffer` and has not been freed since;
    // removing it first makes this the only owner.
    let mut owned = unsafe { Box::from_raw(buffer.cast::<OwnedBuffer>()) };
    message::recycle(std::mem::take(&mut owned.words));
    spares::keep(&SPARES, owned, SPARE_HEADERS);
}
