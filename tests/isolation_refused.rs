//! An isolated session that cannot have a worker says so on every request
//! (`workerUnavailable`) instead of failing to open: on the web module and
//! on iOS, where no process can be started (this test runs on wasm32-wasip1
//! in CI), and elsewhere when the worker binary cannot be run.

mod common;

use common::{Host, expect_code};
use monty_wire::{
    ffi::{MONTY_WIRE_OK, monty_wire_cancel, monty_wire_session_open_isolated},
    protocol::{ErrorCode, Request},
};

#[test]
fn an_isolated_session_without_a_worker_answers_worker_unavailable() {
    let path = if cfg!(target_family = "wasm") {
        c"monty-wire"
    } else {
        c"/nonexistent/monty-wire"
    };
    // SAFETY: a NUL-terminated string that outlives the call.
    let handle = unsafe { monty_wire_session_open_isolated(path.as_ptr()) };
    assert_ne!(handle, 0);
    let host = Host { handle };
    for _ in 0..2 {
        let error = expect_code(host.send(&Request::ListFunctions), ErrorCode::WorkerUnavailable);
        if cfg!(target_family = "wasm") {
            assert!(error.message.contains("cannot start"), "{}", error.message);
        } else {
            assert!(error.message.contains("/nonexistent/monty-wire"), "{}", error.message);
        }
    }
    // Nothing runs, so there is nothing to cancel.
    assert_eq!(monty_wire_cancel(handle), MONTY_WIRE_OK);
}
