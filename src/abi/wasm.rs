//! WebAssembly exports beside the C entry points, for JavaScript hosts.
//!
//! Compiled only on `wasm32` with the `wasm-reactor` feature (which
//! `scripts/build-wasm.sh` turns on): without it, a wasm32 binary built from
//! this crate stays a plain WASI command.
//!
//! On `wasm32` the six `extern "C"` functions of [`super::ffi`] are exported
//! from the module as they are. A JavaScript host additionally needs:
//!
//! - [`monty_wire_alloc`] / [`monty_wire_dealloc`], to place request bytes
//!   in linear memory before passing them to `monty_wire_dispatch`;
//! - [`monty_wire_set_print_stdio`], because JavaScript cannot hand a
//!   function pointer to `monty_wire_set_print_callback`: it sends live
//!   print output through the WASI `fd_write` import, on descriptors of its
//!   own ([`PRINT_STDOUT_FD`], [`PRINT_STDERR_FD`]), where the host receives
//!   it.
//!
//! Python's print output never goes to descriptors 1 and 2. Those are the
//! module's own stdout and stderr, where the Rust runtime writes a panic's
//! message (and an allocation failure's) just before the module traps, so a
//! host can tell one from the other: text on 3 and 4 is what the sandboxed
//! program printed, text on 2 is about the module itself.
//!
//! The module is a WASI *reactor*: it exports `_initialize`, which the host
//! calls once after instantiating it and before anything else, and has no
//! `_start`.
//!
//! Panics abort on wasm32 (there is no unwinding), which traps: the host must
//! treat a trapped instance as dead and instantiate a new one. `js/` does.

use std::{
    alloc::{Layout, alloc, dealloc},
    ptr::NonNull,
    sync::atomic::{AtomicBool, Ordering},
};

use monty_types::PrintStream;

use super::registry::{MontyWireSession, set_print_sink};

unsafe extern "C" {
    /// Runs the module's static constructors; synthesized by `wasm-ld`.
    fn __wasm_call_ctors();
}

static INITIALIZED: AtomicBool = AtomicBool::new(false);

/// The WASI reactor entry point: the host calls it once, right after
/// instantiating the module. Later calls do nothing.
///
/// Defining it (and calling `__wasm_call_ctors` from it) is what makes
/// `wasm-ld` link a reactor: without it, a `cdylib` is linked as a command
/// whose every export runs the constructors and destructors around itself.
#[unsafe(no_mangle)]
pub extern "C" fn _initialize() {
    if !INITIALIZED.swap(true, Ordering::Relaxed) {
        // SAFETY: `__wasm_call_ctors` is the linker's constructor function;
        // the flag above makes this its only call, as the reactor ABI
        // requires, and it runs before any other export touches the
        // module's state.
        unsafe { __wasm_call_ctors() }
        // Memory is counted from here on: the baseline is what the module
        // holds now, and no hard ceiling is armed, so `maxMemory` raises
        // MemoryError in the sandbox rather than trapping. This is what
        // `monty_alloc::set_hard_limit(None)` does, except that it also takes
        // a module that has not allocated anything yet (a count of 0, which
        // `set_hard_limit` refuses as "allocator not installed").
        let live = monty_types::LIVE_MEMORY.load(Ordering::Relaxed);
        monty_types::BASELINE_MEMORY.fetch_min(live, Ordering::Relaxed);
    }
}

/// The module is a program of its own (unlike the native library, which
/// must not impose an allocator on its host), so it counts heap bytes with
/// monty's allocator: `maxMemory` works and usage reports memory. Running
/// out of linear memory traps, as it would without it.
#[global_allocator]
static ALLOCATOR: monty_alloc::LimitedAllocator = monty_alloc::LimitedAllocator;

/// Alignment of every [`monty_wire_alloc`] block: one Cap'n Proto word, so a
/// request written there is read in place on the aligned path.
const ALIGN: usize = 8;

/// The layout of a `len`-byte block, or `None` when `len` is 0 or too large.
fn layout(len: usize) -> Option<Layout> {
    if len == 0 {
        return None;
    }
    Layout::from_size_align(len, ALIGN).ok()
}

/// Allocates `len` bytes of linear memory for the host to write a request
/// into, 8-byte aligned. Returns null when memory is exhausted.
///
/// `len` 0 is valid: it returns a non-null, aligned pointer that must not be
/// read or written, and that [`monty_wire_dealloc`] accepts with `len` 0.
/// Free every block with [`monty_wire_dealloc`] and the same `len`.
#[unsafe(no_mangle)]
pub extern "C" fn monty_wire_alloc(len: usize) -> *mut u8 {
    if len == 0 {
        return NonNull::<u64>::dangling().as_ptr().cast();
    }
    match layout(len) {
        // SAFETY: the layout has a non-zero size (checked above) and a valid
        // power-of-two alignment (`Layout::from_size_align` succeeded).
        Some(layout) => unsafe { alloc(layout) },
        None => std::ptr::null_mut(),
    }
}

/// Frees a block from [`monty_wire_alloc`]. Null, or `len` 0, does nothing.
///
/// # Safety
/// `ptr` must come from [`monty_wire_alloc`] called with this same `len`, and
/// must not have been freed already.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn monty_wire_dealloc(ptr: *mut u8, len: usize) {
    if ptr.is_null() {
        return;
    }
    if let Some(layout) = layout(len) {
        // SAFETY: the caller guarantees `ptr` was returned by
        // `monty_wire_alloc(len)`, which allocated it with exactly this
        // layout, and that it is freed only once.
        unsafe { dealloc(ptr, layout) }
    }
}

/// The WASI descriptor live `print()` output to stdout goes to.
pub const PRINT_STDOUT_FD: u32 = 3;
/// The WASI descriptor live `print()` output to stderr goes to.
pub const PRINT_STDERR_FD: u32 = 4;

/// Writes all of `bytes` to WASI descriptor `fd` (the standard library's
/// `File` writes through the `fd_write` import); errors are ignored (a host
/// that does not know the descriptor answers `EBADF`).
fn write_fd(fd: u32, bytes: &[u8]) {
    use std::{fs::File, io::Write, mem::ManuallyDrop, os::fd::FromRawFd};
    let Ok(fd) = i32::try_from(fd) else { return };
    // SAFETY: the descriptor is the host's, open for the module's whole
    // life (the glue answers `fd_write` and `fd_fdstat_get` for it), and
    // `ManuallyDrop` keeps this `File` from ever closing it.
    let mut file = ManuallyDrop::new(unsafe { File::from_raw_fd(fd) });
    let _ = file.write_all(bytes);
}

/// Writes one delivery of print output (a fragment, or what the session's
/// `setPrintDelivery` gathered) to the host at once, on the print
/// descriptor of its stream. Errors are ignored: live output is a courtesy, and the
/// same text is in the response anyway.
fn write_stdio(stream: PrintStream, text: &str) {
    let fd = match stream {
        PrintStream::Stdout => PRINT_STDOUT_FD,
        PrintStream::Stderr => PRINT_STDERR_FD,
    };
    write_fd(fd, text.as_bytes());
}

/// Turns live print output of a session on (`enabled` non-zero) or off.
///
/// While on, every fragment `print()` writes is also written with WASI
/// `fd_write` to descriptor [`PRINT_STDOUT_FD`] (3, for stdout) or
/// [`PRINT_STDERR_FD`] (4, for stderr) as it is printed, so the host's
/// `fd_write` import sees it during `monty_wire_dispatch`; or, once the
/// session has taken a `setPrintDelivery` request, what it gathered of one
/// stream, one `fd_write` a delivery. They are not
/// descriptors 1 and 2, the module's own stdout and stderr: a panic's
/// message goes there, and must not pass for Python output. It replaces a
/// callback set with `monty_wire_set_print_callback`, and the other way
/// round. Returns `MONTY_WIRE_OK`, `MONTY_WIRE_UNKNOWN_SESSION` or
/// `MONTY_WIRE_SESSION_BUSY`.
#[unsafe(no_mangle)]
pub extern "C" fn monty_wire_set_print_stdio(session: MontyWireSession, enabled: u32) -> i32 {
    set_print_sink(session, (enabled != 0).then(|| Box::new(write_stdio) as _))
}
