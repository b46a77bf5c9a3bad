//! WebAssembly exports beside the C entry points, for JavaScript hosts.
//!
//! On `wasm32` the six `extern "C"` functions of [`crate::ffi`] are exported
//! from the module as they are. A JavaScript host additionally needs:
//!
//! - [`monty_wire_alloc`] / [`monty_wire_dealloc`], to place request bytes
//!   in linear memory before passing them to `monty_wire_dispatch`;
//! - [`monty_wire_set_print_stdio`], because JavaScript cannot hand a
//!   function pointer to `monty_wire_set_print_callback`: it sends live
//!   print output to WASI file descriptors 1 (stdout) and 2 (stderr), where
//!   the host's `fd_write` import receives it.
//!
//! The module is a WASI *reactor*: it exports `_initialize`, which the host
//! calls once after instantiating it and before anything else, and has no
//! `_start`.
//!
//! Panics abort on wasm32 (there is no unwinding), which traps: the host must
//! treat a trapped instance as dead and instantiate a new one. `js/` does.

use std::{
    alloc::{Layout, alloc, dealloc},
    io::Write,
    ptr::NonNull,
    sync::atomic::{AtomicBool, Ordering},
};

use monty_types::PrintStream;

use crate::{
    ffi::{MONTY_WIRE_OK, MONTY_WIRE_SESSION_BUSY, MONTY_WIRE_UNKNOWN_SESSION, MontyWireSession, with_session},
    protocol::ErrorCode,
};

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
    }
}

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

/// Writes one print fragment to WASI stdout or stderr, at once.
fn write_stdio(stream: PrintStream, text: &str) {
    // Errors are ignored: live output is a courtesy, and the same text is
    // in the response anyway. Flushing passes every fragment to the host's
    // `fd_write` as it is printed, not at the next newline.
    let _ = match stream {
        PrintStream::Stdout => {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes()).and_then(|()| out.flush())
        }
        PrintStream::Stderr => std::io::stderr().lock().write_all(text.as_bytes()),
    };
}

/// Turns live print output of a session on (`enabled` non-zero) or off.
///
/// While on, every fragment `print()` writes is also written to WASI file
/// descriptor 1 (stdout) or 2 (stderr) as it is printed, so the host's
/// `fd_write` import sees it during `monty_wire_dispatch`. It replaces a
/// callback set with `monty_wire_set_print_callback`, and the other way
/// round. Returns [`MONTY_WIRE_OK`], [`MONTY_WIRE_UNKNOWN_SESSION`] or
/// [`MONTY_WIRE_SESSION_BUSY`].
#[unsafe(no_mangle)]
pub extern "C" fn monty_wire_set_print_stdio(session: MontyWireSession, enabled: u32) -> i32 {
    let sink = (enabled != 0).then(|| Box::new(write_stdio) as _);
    match with_session(session, |s| s.set_print_sink(sink)) {
        Ok(()) => MONTY_WIRE_OK,
        Err(error) if error.code == ErrorCode::SessionBusy => MONTY_WIRE_SESSION_BUSY,
        Err(_) => MONTY_WIRE_UNKNOWN_SESSION,
    }
}
