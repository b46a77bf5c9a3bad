//! On wasm32, a memory limit within what the address space can hold.
//!
//! A wasm32 module has a 4 GiB linear memory, and Rust refuses any single
//! allocation over `isize::MAX` (2 GiB − 1) with a "capacity overflow" panic,
//! which aborts the module. monty checks large allocations (sequence repeats,
//! big integers, string building, ...) against `maxMemory` before making them,
//! but only when a limit is set, and only against the limit set. So every
//! limit the module takes is capped at [`CEILING`]: with no limit, or one
//! above it, such a request raises `MemoryError` in Python and the instance
//! lives on.

use monty_types::ResourceLimits;

use crate::protocol::Request;

/// The most heap a program may hold on wasm32, over what the module holds
/// when idle (monty counts memory from that baseline): `isize::MAX`, so no
/// allocation monty checks first can reach the size at which Rust's
/// collections panic, and the module's own memory plus this stays under
/// the 4 GiB linear memory.
pub(crate) const CEILING: usize = isize::MAX.unsigned_abs();

/// `request` with the limits it carries (if any) capped at [`CEILING`].
pub(crate) fn cap_limits(mut request: Request) -> Request {
    let limits: &mut ResourceLimits = match &mut request {
        Request::OpenRun(open) => &mut open.limits,
        Request::OpenRepl(open) => &mut open.limits,
        Request::SetLimits(limits) | Request::LoadProgram { limits, .. } | Request::LoadSession { limits, .. } => {
            limits
        }
        _ => return request,
    };
    limits.max_memory = Some(limits.max_memory.map_or(CEILING, |bytes| bytes.min(CEILING)));
    request
}
