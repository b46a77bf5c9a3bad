//! Isolated sessions: the session engine in a worker process of its own.
//!
//! monty cannot be made crash-proof inside the host's process: a native
//! stack overflow or a failed allocation aborts, and one long operation
//! (`10**10**8`) never reaches a time check. An isolated session runs its
//! engine in a worker process (`monty-wire worker`, [`serve`]) and speaks
//! to it in the protocol's own messages, framed over a pipe
//! ([`frame`]). The worker enforces the session's `maxMemory` on its whole
//! heap (monty's allocator); the library kills it when a request outlives
//! the session's time limits plus a grace, or when the host cancels; and a
//! worker that dies answers its request with `workerCrashed`, leaving the
//! host and every other session untouched. Workers are kept ready in a
//! pool, and reused after a session that ended cleanly.
//!
//! Hosts choose isolation per session (`monty_wire_session_open_isolated`);
//! the rest of the C ABI is the same for both kinds.

#[cfg(not(target_family = "wasm"))]
mod frame;
#[cfg(worker_processes)]
mod isolated;
#[cfg(worker_processes)]
pub mod pool;
#[cfg(worker_processes)]
mod process;
#[cfg(not(target_family = "wasm"))]
mod serve;
#[cfg(worker_processes)]
mod watchdog;

#[cfg(worker_processes)]
pub(crate) use isolated::Running;
#[cfg(worker_processes)]
pub use isolated::{DEADLINE_GRACE, IsolatedSession, WORKER_ENV};
#[cfg(not(target_family = "wasm"))]
pub use serve::{ArmCeiling, DEFAULT_MEMORY_CEILING, memory_ceiling, serve};
#[cfg(not(worker_processes))]
pub use unavailable::{IsolatedSession, Running};

/// Where no process can be started (the web module; iOS and Apple's other
/// mobile systems, whose apps may not start processes), an isolated
/// session answers every request with `workerUnavailable`.
#[cfg(not(worker_processes))]
mod unavailable {
    use std::{path::PathBuf, sync::Arc};

    use crate::{
        WireMessage,
        protocol::{ErrorCode, ProtocolError},
        session::{PrintSink, error_response},
    };

    /// Nothing to cancel: no request ever runs.
    #[derive(Default)]
    pub struct Running;

    impl Running {
        pub(crate) fn cancel(&self) {}
    }

    /// A session that cannot have a worker on this platform.
    pub struct IsolatedSession;

    impl IsolatedSession {
        /// The session; its requests say why it has no worker.
        #[must_use]
        pub fn open(_binary: Option<PathBuf>) -> Self {
            Self
        }

        /// The same session: it never has a worker here.
        #[must_use]
        pub fn unavailable(_why: String) -> Self {
            Self
        }

        pub(crate) fn running(&self) -> Arc<Running> {
            Arc::default()
        }

        /// Print output never comes: no code runs.
        pub fn set_print_sink(&mut self, _sink: Option<PrintSink>) {}

        /// `workerUnavailable`, whatever the request.
        #[allow(clippy::unused_self)]
        pub fn handle_bytes(&mut self, _request: &[u8]) -> WireMessage {
            error_response(ProtocolError::new(
                ErrorCode::WorkerUnavailable,
                "isolated sessions need worker processes, which this platform cannot start \
                 (the web module, iOS): open an in-process session",
            ))
        }
    }
}
