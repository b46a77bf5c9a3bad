//! The native stack a session runs monty and the codec on.
//!
//! Several of monty's paths recurse once per nesting level of a value:
//! exporting a nested result, ordering (`<`), hashing or printing nested
//! values, `json.dumps` and `copy.deepcopy`; the traceback of a
//! `RecursionError` takes a little stack per Python frame. monty bounds that
//! depth by the session's recursion limit, but not the stack it takes: at the
//! default limit of 1,000 an export needs more than the 1 MiB a Dart VM
//! thread has. Decoding a host's value, importing it into the sandbox and
//! dropping it do not recurse (values are flat arenas), so the codec's depth
//! limit asks nothing of the stack, and decoding stays on the caller's.
//!
//! So a session does not use its caller's stack. Each one owns a stack
//! segment sized for its limits ([`needed`]), mapped on first use, kept
//! between requests and mapped again larger when a request raises the
//! recursion limit past what it holds. Below it lies a guard page, so a
//! recursion the sizing missed faults there instead of writing over other
//! memory. Switching onto it costs a few instructions, not a mapping per
//! request. Because every session has its own segment, a print callback that
//! dispatches to another session runs that session on its own segment.
//!
//! Where the switch happens:
//! - Unix (Linux, Android, macOS, iOS): onto the session's own segment with
//!   [`psm::on_stack`].
//! - Windows: psm cannot switch stacks there (unwinding and the stack bounds
//!   Windows keeps per thread must agree), so `stacker` runs the request on a
//!   fiber with a fresh stack of the needed size, only when the caller's
//!   thread has less stack left than that.
//! - wasm32: no switch (there is no second native stack to switch to). The
//!   module's shadow stack and the engine's call stack hold the default
//!   recursion limit; past a raised one an overflow traps the instance,
//!   which the host replaces (js/README.md).

use monty_types::{DEFAULT_MAX_RECURSION_DEPTH, ResourceLimits};

use crate::protocol::Request;

/// What the limits of a session ask of its stack.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StackNeed {
    /// The highest recursion limit the session has been given.
    recursion_limit: usize,
}

impl Default for StackNeed {
    fn default() -> Self {
        Self {
            recursion_limit: DEFAULT_MAX_RECURSION_DEPTH,
        }
    }
}

impl StackNeed {
    /// Takes in the recursion limit a request sets, if it sets one.
    ///
    /// The segment only grows: a session that once had a high limit keeps the
    /// stack for it (the pages it never touched cost no memory).
    pub(crate) fn note(&mut self, request: &Request) {
        if let Some(limits) = request_limits(request) {
            self.recursion_limit = self.recursion_limit.max(limits.max_recursion_depth);
        }
    }

    /// Stack bytes for these limits.
    pub(crate) fn bytes(self) -> usize {
        let recursion = self.recursion_limit.saturating_mul(PER_RECURSION_LEVEL);
        BASE.saturating_add(recursion).min(MAX_STACK)
    }
}

/// The limits a request sets for the runs and feeds that follow it.
fn request_limits(request: &Request) -> Option<&ResourceLimits> {
    match request {
        Request::OpenRun(open) => Some(&open.limits),
        Request::OpenRepl(open) => Some(&open.limits),
        Request::SetLimits(limits) | Request::LoadProgram { limits, .. } | Request::LoadSession { limits, .. } => {
            Some(limits)
        }
        _ => None,
    }
}

// Measured in a debug build with a probe that ran each path on a zeroed
// segment and found the lowest byte written. Debug builds keep every local
// of every frame, so a release build needs less; one sizing serves both.

/// What a request needs besides its recursion: compiling, the session
/// machinery, encoding, and monty's parser up to where it grows its own
/// stack (about 140 KiB was measured).
const BASE: usize = 2 << 20;

/// Per level of the recursion limit: the deepest path per level (ordering
/// and exporting nested lists take about 9 KiB a level; `repr`, `hash` and
/// `json.dumps` 3 to 5 KiB; a Python frame in a `RecursionError`'s traceback
/// under 100 bytes).
const PER_RECURSION_LEVEL: usize = 12 << 10;

/// The most address space one session reserves for its stack. Pages are
/// only backed by memory once touched, so on 64-bit targets this is cheap;
/// 32-bit targets have 4 GiB of address space in all and reserve less.
/// Limits that would need more get this much, and a recursion past it
/// faults at the guard page.
#[cfg(target_pointer_width = "64")]
const MAX_STACK: usize = 4 << 30;
#[cfg(not(target_pointer_width = "64"))]
const MAX_STACK: usize = 256 << 20;

/// The stack a session runs on; empty until its first request.
#[derive(Default)]
pub(crate) struct SessionStack {
    #[cfg(all(unix, not(target_family = "wasm")))]
    segment: Option<segment::Segment>,
}

impl SessionStack {
    /// Runs `f` on a stack with at least `need` bytes, whatever stack the
    /// calling thread has. A panic in `f` is carried across and resumed here.
    pub(crate) fn run<R>(&mut self, need: StackNeed, f: impl FnOnce() -> R) -> R {
        self.run_bytes(need.bytes(), f)
    }

    #[cfg(all(unix, not(target_family = "wasm")))]
    fn run_bytes<R>(&mut self, bytes: usize, f: impl FnOnce() -> R) -> R {
        segment::run(&mut self.segment, bytes, f)
    }

    #[cfg(target_family = "wasm")]
    #[allow(clippy::unused_self)]
    fn run_bytes<R>(&mut self, _bytes: usize, f: impl FnOnce() -> R) -> R {
        f()
    }

    #[cfg(not(any(unix, target_family = "wasm")))]
    #[allow(clippy::unused_self)]
    fn run_bytes<R>(&mut self, bytes: usize, f: impl FnOnce() -> R) -> R {
        stacker::maybe_grow(bytes, bytes, f)
    }
}

#[cfg(all(unix, not(target_family = "wasm")))]
mod segment {
    use std::{
        panic::{self, AssertUnwindSafe},
        ptr::NonNull,
    };

    /// A mapped stack: `len` bytes at `base`, with one inaccessible guard
    /// page just below `base` (stacks grow down on every target psm
    /// switches on for unix, except hppa, which Rust does not support).
    pub(super) struct Segment {
        mapping: NonNull<u8>,
        mapping_len: usize,
        base: *mut u8,
        len: usize,
    }

    // SAFETY: the segment is plain memory owned by one session; nothing in it
    // is tied to the thread that mapped it, and it is only ever run on by
    // the one thread inside the session.
    unsafe impl Send for Segment {}

    impl Segment {
        /// Maps a segment of at least `bytes`, or `None` when the system
        /// refuses the address space.
        fn map(bytes: usize) -> Option<Self> {
            let page = page_size();
            let len = bytes.checked_next_multiple_of(page)?.max(page);
            let mapping_len = len.checked_add(page)?;
            #[cfg(any(target_os = "linux", target_os = "android"))]
            // Not counted against the commit limit until touched: most of
            // the segment is headroom for limits a run rarely reaches.
            let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_STACK;
            #[cfg(not(any(target_os = "linux", target_os = "android")))]
            let flags = libc::MAP_PRIVATE | libc::MAP_ANON;
            // SAFETY: an anonymous private mapping at an address of the
            // system's choosing; no existing memory is affected.
            let raw = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    mapping_len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    flags,
                    -1,
                    0,
                )
            };
            if raw == libc::MAP_FAILED {
                return None;
            }
            let mapping = NonNull::new(raw.cast::<u8>())?;
            let segment = Self {
                mapping,
                mapping_len,
                // SAFETY: `page` < `mapping_len`, so this stays inside the mapping.
                base: unsafe { mapping.as_ptr().add(page) },
                len,
            };
            // SAFETY: the first page of a mapping this segment owns; making it
            // inaccessible is the guard page.
            let guarded = unsafe { libc::mprotect(raw, page, libc::PROT_NONE) };
            // Without its guard page the segment is not used (dropping it unmaps).
            (guarded == 0).then_some(segment)
        }

        /// One past the highest address of the segment.
        fn top(&self) -> usize {
            self.base as usize + self.len
        }
    }

    impl Drop for Segment {
        fn drop(&mut self) {
            // SAFETY: the mapping is this segment's own, and no code runs on
            // it any more (a segment is only dropped off it).
            unsafe { libc::munmap(self.mapping.as_ptr().cast(), self.mapping_len) };
        }
    }

    fn page_size() -> usize {
        // SAFETY: sysconf has no preconditions.
        let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        usize::try_from(size).ok().filter(|&s| s > 0).unwrap_or(4096)
    }

    /// Whether code running on `segment` would see the true stack left when
    /// it asks `stacker`.
    ///
    /// monty's parser asks `stacker` before it recurses and grows its own
    /// stack when little is left. `stacker` measures from the calling
    /// thread's own stack limit, which it does not know has changed: on a
    /// segment below that limit it sees no room and grows (correct), but on a
    /// segment above the thread's stack it would see room that is not there.
    fn stacker_sees_through(segment: &Segment) -> bool {
        match stacker::remaining_stack() {
            // It cannot tell, so it always grows.
            None => true,
            Some(remaining) => segment.top() <= (psm::stack_pointer() as usize).saturating_sub(remaining),
        }
    }

    /// Runs `f` on `slot`'s segment, mapping it first when it is missing,
    /// too small, or where the parser's stack check cannot see it.
    pub(super) fn run<R>(slot: &mut Option<Segment>, bytes: usize, f: impl FnOnce() -> R) -> R {
        let usable = |s: &Segment| s.len >= bytes && stacker_sees_through(s);
        if !slot.as_ref().is_some_and(usable) {
            // The old segment goes first, so its address space can be reused.
            *slot = None;
            *slot = Segment::map(bytes);
        }
        match slot {
            Some(segment) if stacker_sees_through(segment) => {
                // SAFETY: `base` is page aligned and `len` a multiple of the
                // page size, both more than any target's stack alignment, and
                // `len` is far below `isize::MAX`. The closure does not
                // unwind: the panic is caught on the segment and resumed after
                // switching back. Nothing else runs on the segment meanwhile:
                // it belongs to one session, used by one thread at a time.
                let result =
                    unsafe { psm::on_stack(segment.base, segment.len, || panic::catch_unwind(AssertUnwindSafe(f))) };
                result.unwrap_or_else(|payload| panic::resume_unwind(payload))
            }
            // A fresh mapping landed above this thread's stack, or none could
            // be had: `stacker` makes a stack it knows about for this request
            // (and panics if it cannot have one either, which the C entry
            // points report as `internalError`).
            _ => stacker::grow(bytes, f),
        }
    }
}
