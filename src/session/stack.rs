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
//! segment sized for its limits ([`StackNeed::bytes`]), taken on first use, kept
//! between requests and replaced by a larger one when a request raises the
//! recursion limit past what it holds. Below it lies a guard page, so a
//! recursion the sizing missed faults there instead of writing over other
//! memory. Switching onto it costs a few instructions, not a mapping per
//! request. Because every session has its own segment, a print callback that
//! dispatches to another session runs that session on its own segment.
//!
//! A closed session's segment is kept as a spare (at most [`SPARES`] of them
//! process-wide) and the next session to need one takes it: mapping a fresh
//! segment, faulting in the pages its first request touches and unmapping it
//! again made up over half of a short session's whole cost. When
//! a session's requests went deeper than the top [`KEPT_WARM`] bytes, the
//! pages below are handed back to the system as reclaimable (`MADV_FREE`)
//! before the segment becomes a spare, so what deep recursion touched is not
//! held after the session closes. A sentinel word just below the warm top
//! tells whether they did, without a system call: every frame that crosses
//! it writes over it, in practice (a frame that only reserved that word and
//! never wrote it would keep its pages resident until the spare is reused).
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

/// Whether a request that compiles a program and runs no Python (`openRun`)
/// runs on the calling thread's stack: only where that has [`BASE`] bytes
/// left by `stacker`'s count.
///
/// monty's parser asks `stacker` before it recurses. On the caller's stack
/// the answer is true; on a session's segment it is "no room" (see
/// `stacker_sees_through`), so the parser maps, faults in and unmaps a fresh
/// 1 MiB stack for every compile, which cost more than the rest of a short
/// session's first requests together. Compiling is bounded by [`BASE`]
/// whatever the recursion limit, as it runs no Python.
pub(crate) fn compiles_on_callers_stack() -> bool {
    // Elsewhere no segment is switched to (wasm32), or `stacker` switches
    // only when the caller lacks room anyway (Windows).
    cfg!(all(unix, not(target_family = "wasm"))) && stacker::remaining_stack().is_some_and(|left| left >= BASE)
}

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

/// Closed sessions' segments kept for the next ones, process-wide. Two or
/// three sessions opened and closed in turn by each of a few threads find
/// one; past that, a closing session's segment is unmapped.
#[cfg(all(unix, not(target_family = "wasm")))]
const SPARES: usize = 4;

/// The top of a spare segment that stays resident: what a request that does
/// not recurse deeply touches (about 140 KiB was measured for compiling),
/// with room to spare.
#[cfg(all(unix, not(target_family = "wasm")))]
const KEPT_WARM: usize = 1 << 20;

/// The stack a session runs on; empty until its first request.
#[derive(Default)]
pub(crate) struct SessionStack {
    #[cfg(all(unix, not(target_family = "wasm")))]
    segment: Option<segment::Segment>,
}

#[cfg(all(unix, not(target_family = "wasm")))]
impl Drop for SessionStack {
    fn drop(&mut self) {
        if let Some(segment) = self.segment.take() {
            segment::spare(segment);
        }
    }
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
        sync::{Mutex, PoisonError},
    };

    use super::{KEPT_WARM, SPARES};

    /// Segments no session holds, ready to be run on.
    static SPARE: Mutex<Vec<Segment>> = Mutex::new(Vec::new());

    /// A mapped stack: `len` bytes at `base`, with one inaccessible guard
    /// page just below `base` (stacks grow down on every target psm
    /// switches on for unix, except hppa, which Rust does not support).
    pub(super) struct Segment {
        mapping: NonNull<u8>,
        mapping_len: usize,
        base: *mut u8,
        len: usize,
    }

    /// What the sentinel word holds until a frame writes over it.
    const SENTINEL: u64 = 0x6d6f_6e74_795f_7769;

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
            if guarded != 0 {
                return None;
            }
            segment.set_sentinel();
            Some(segment)
        }

        /// One past the highest address of the segment.
        fn top(&self) -> usize {
            self.base as usize + self.len
        }

        /// The bytes below the warm top, and the sentinel word just below it
        /// (its last word); `None` for a segment no larger than the warm top.
        fn cold(&self) -> Option<(usize, *mut u64)> {
            let cold = self.len.checked_sub(KEPT_WARM).filter(|&cold| cold > 0)?;
            // SAFETY: `base` is page aligned and `cold` a positive multiple of
            // the page size (`len` and `KEPT_WARM` both are), so the word
            // ends at `base + cold`, inside the segment and aligned.
            Some((cold, unsafe { self.base.add(cold - 8).cast::<u64>() }))
        }

        fn set_sentinel(&self) {
            if let Some((_, sentinel)) = self.cold() {
                // SAFETY: an aligned word inside the segment (`cold`); nothing
                // runs on the segment now, and nothing else refers to it.
                unsafe { sentinel.write_volatile(SENTINEL) };
            }
        }

        /// Whether no frame has written over the sentinel since it was set
        /// (always, for a segment with no cold part).
        fn sentinel_intact(&self) -> bool {
            // SAFETY: as in `set_sentinel`; the word is plain initialised
            // memory (zero-filled when mapped, then written by frames).
            self.cold()
                .is_none_or(|(_, sentinel)| unsafe { sentinel.read_volatile() } == SENTINEL)
        }

        /// Lets the system reclaim the pages below the warm top if a frame
        /// reached them; `false` if it refuses (a kernel without `MADV_FREE`).
        fn release_cold_pages(&self) -> bool {
            if self.sentinel_intact() {
                return true;
            }
            let Some((cold, _)) = self.cold() else {
                return true;
            };
            // SAFETY: `[base, base + cold)` lies inside this segment's own
            // mapping, and nothing runs on the segment while it is spare, so
            // whether those pages keep their contents does not matter.
            let released = unsafe { libc::madvise(self.base.cast(), cold, libc::MADV_FREE) == 0 };
            self.set_sentinel();
            released
        }
    }

    /// Keeps a closed session's segment for the next session, or unmaps it
    /// when enough are kept already.
    pub(super) fn spare(segment: Segment) {
        if !segment.release_cold_pages() {
            return;
        }
        let mut spares = SPARE.lock().unwrap_or_else(PoisonError::into_inner);
        if spares.len() < SPARES {
            spares.push(segment);
        }
    }

    /// The smallest spare segment of at least `bytes` that this thread can
    /// run on.
    fn take_spare(bytes: usize) -> Option<Segment> {
        let mut spares = SPARE.lock().unwrap_or_else(PoisonError::into_inner);
        let best = spares
            .iter()
            .enumerate()
            .filter(|(_, s)| s.len >= bytes && stacker_sees_through(s))
            .min_by_key(|(_, s)| s.len)
            .map(|(i, _)| i)?;
        Some(spares.swap_remove(best))
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
            // The old segment goes first: it may suit another session.
            if let Some(old) = slot.take() {
                spare(old);
            }
            *slot = take_spare(bytes).or_else(|| Segment::map(bytes));
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

    #[cfg(test)]
    mod tests {
        use super::{KEPT_WARM, Segment};

        /// Recurses `levels` deep with a 4 KiB frame, writing each.
        fn recurse(levels: usize) -> u8 {
            let frame = std::hint::black_box([levels as u8; 4096]);
            if levels == 0 {
                return frame[0];
            }
            recurse(levels - 1).wrapping_add(frame[4095])
        }

        fn run_on(segment: &Segment, levels: usize) {
            // SAFETY: the segment is mapped, page aligned and owned by this
            // test; `recurse` does not unwind and fits it (a level takes 4 to
            // 12 KiB, optimised or not, and it is called with at most 512
            // levels on a 16 MiB segment).
            unsafe { psm::on_stack(segment.base, segment.len, || recurse(levels)) };
        }

        #[test]
        fn the_sentinel_tells_whether_a_request_reached_the_cold_pages() {
            let segment = Segment::map(16 << 20).expect("a 16 MiB segment");
            assert!(segment.sentinel_intact());
            // Well within the warm top.
            run_on(&segment, 16);
            assert!(segment.sentinel_intact());
            assert!(segment.release_cold_pages());
            // Past it: 2 MiB deep.
            run_on(&segment, KEPT_WARM * 2 / 4096);
            assert!(!segment.sentinel_intact());
            assert!(segment.release_cold_pages(), "MADV_FREE is refused");
            assert!(segment.sentinel_intact(), "set again once the pages are released");
        }
    }
}
