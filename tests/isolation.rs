//! What sandboxed code does to an isolated session ends in its worker
//! process: memory bombs, one long operation, a native stack overflow,
//! runaway loops the host cancels. Each ends with a clear outcome, the test
//! process (the host) lives on, and the next session works.
//!
//! The tests here take turns (they measure processes and memory), and run
//! whether or not `MONTY_WIRE_TEST_ISOLATED` is set. They need the worker
//! binary (the `cli` feature) and a platform that starts processes.

#![cfg(all(feature = "cli", not(target_family = "wasm")))]

mod common;

use std::{
    ffi::c_void,
    sync::{Mutex, MutexGuard},
    time::Duration,
};

use common::{Host, complete, expect_code, protocol_error};
use monty_types::{ExcType, MontyObject, ResourceLimits};
#[cfg(target_os = "linux")]
use monty_wire::worker::pool;
use monty_wire::{
    ffi::{
        MONTY_WIRE_NOT_ISOLATED, MONTY_WIRE_OK, MONTY_WIRE_UNKNOWN_SESSION, monty_wire_cancel,
        monty_wire_set_print_callback,
    },
    protocol::{ErrorCode, OpenRun, Outcome, Request, Response},
    session::STACK_OVERFLOW_SCRIPT_NAME,
};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

const MIB: usize = 1 << 20;

fn open(host: &Host, code: &str, limits: ResourceLimits) {
    let mut open = OpenRun::new(code);
    open.limits = limits;
    let response = host.send(&Request::OpenRun(Box::new(open)));
    assert!(matches!(response.outcome, Outcome::Ok), "{:?}", response.outcome);
}

/// Opens `code` in the session and runs it.
fn run(host: &Host, code: &str, limits: ResourceLimits) -> Response {
    open(host, code, limits);
    host.send(&Request::Run(vec![]))
}

/// The session answers again, and so does a new one. After its worker
/// ended the session is empty, and a new run in the same handle works; a
/// session whose worker lived on (the script's own `MemoryError`) still
/// holds its run, and still answers.
fn works_again(host: &Host) {
    match host.send(&Request::OpenRun(Box::new(OpenRun::new("6 * 7")))).outcome {
        Outcome::Ok => assert_eq!(complete(host.send(&Request::Run(vec![]))), MontyObject::int(42)),
        Outcome::ProtocolError(error) if error.code == ErrorCode::WrongState => {
            let answer = host.send(&Request::DetectContinuation("x = (".to_owned()));
            assert!(matches!(answer.outcome, Outcome::Continuation(_)), "{answer:?}");
        }
        other => panic!("the session does not answer: {other:?}"),
    }
    assert_eq!(
        complete(run(&Host::isolated(), "6 * 7", ResourceLimits::default())),
        MontyObject::int(42)
    );
}

/// A Python `MemoryError`, or the worker ended past its memory ceiling.
fn assert_out_of_memory(response: Response, what: &str) {
    match response.outcome {
        Outcome::PythonError(exc) => assert_eq!(exc.exc_type(), ExcType::MemoryError, "{what}: {exc:?}"),
        Outcome::ProtocolError(error) => {
            assert_eq!(error.code, ErrorCode::WorkerCrashed, "{what}: {}", error.message);
            let exit = error.worker_exit.expect("a crash says how the worker ended");
            assert!(exit.out_of_memory, "{what}: {exit:?}");
            assert_eq!(exit.exit_code, 65, "{what}: {exit:?}");
            assert!(exit.stderr_tail.contains("memory"), "{what}: {exit:?}");
        }
        other => panic!("{what}: expected running out of memory, got {other:?}"),
    }
}

/// One of the Python errors `python` the script may end with itself, or
/// its worker killed at the deadline.
fn assert_stopped_in_time(response: Response, python: &[ExcType]) {
    match response.outcome {
        Outcome::PythonError(exc) => assert!(python.contains(&exc.exc_type()), "{exc:?}"),
        Outcome::ProtocolError(error) => assert_eq!(error.code, ErrorCode::DeadlineExceeded, "{}", error.message),
        other => panic!("expected one of {python:?} or the deadline, got {other:?}"),
    }
}

const BOMBS: [&str; 6] = [
    "'a' * 10**10",
    "[0] * 10**9",
    "bytes(10**10)",
    "1 << (1 << 40)",
    "x = 'a'\nwhile True:\n    x = x + x",
    "list(range(10**9))",
];

#[test]
fn memory_bombs_end_in_memory_error_or_a_reported_crash() {
    let _serial = serial();
    for bomb in BOMBS {
        for max_memory in [None, Some(100 * MIB)] {
            let host = Host::isolated();
            let limits = ResourceLimits {
                max_memory,
                ..ResourceLimits::default()
            };
            let response = run(&host, bomb, limits);
            let outcome = format!("{:?}", response.outcome);
            assert_out_of_memory(response, &format!("{bomb:?} with maxMemory {max_memory:?}"));
            // Under a maxMemory, monty raises MemoryError itself and the
            // worker (with the session) lives on.
            if max_memory.is_some() {
                assert!(outcome.starts_with("PythonError"), "{bomb:?}: {outcome}");
            }
            works_again(&host);
        }
    }
}

/// The child processes of this process, from `/proc`.
#[cfg(target_os = "linux")]
fn children() -> Vec<u32> {
    let mut pids = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").expect("/proc") {
        let path = task.expect("a task").path().join("children");
        if let Ok(list) = std::fs::read_to_string(path) {
            pids.extend(list.split_whitespace().filter_map(|pid| pid.parse::<u32>().ok()));
        }
    }
    pids
}

/// A field of `/proc/<pid>/status`, in its unit (kB for memory).
#[cfg(target_os = "linux")]
fn status_field(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The margin over `maxMemory` a worker's peak resident memory stays
/// within: the process itself (code, the interpreter's baseline) and the
/// headroom its ceiling leaves (see README, Reliability).
#[cfg(target_os = "linux")]
const RSS_MARGIN: u64 = 96 << 20;

#[cfg(target_os = "linux")]
#[test]
fn a_workers_peak_memory_stays_within_max_memory_and_the_margin() {
    let _serial = serial();
    let host = Host::isolated();
    let limit = 100 * MIB;
    let limits = ResourceLimits::default().max_memory(limit);
    // Many small allocations: the total, not one size, must be counted.
    let response = run(&host, "x = []\nwhile True:\n    x.append((len(x), 'item'))", limits);
    assert_out_of_memory(response, "appending tuples");
    let peak_kib = children()
        .into_iter()
        .filter_map(|pid| status_field(pid, "VmHWM:"))
        .max()
        .expect("the session's worker is a child of this process");
    let peak = peak_kib * 1024;
    assert!(
        peak <= limit as u64 + RSS_MARGIN,
        "peak RSS {peak} bytes, over {limit} + {RSS_MARGIN}"
    );
    works_again(&host);
}

#[test]
fn one_long_operation_is_stopped_past_its_deadline() {
    let _serial = serial();
    let host = Host::isolated();
    let limits = ResourceLimits::default().max_feed_duration(Duration::from_secs(2));
    let response = run(&host, "x = 10**10**8", limits);
    // monty may reach a time check itself within the grace.
    assert_stopped_in_time(response, &[ExcType::TimeoutError]);
    works_again(&host);
}

#[test]
fn cancel_from_another_thread_stops_a_runaway_loop() {
    let _serial = serial();
    let host = Host::isolated();
    let handle = host.handle;
    // Idle: nothing to stop, and the session is untouched.
    assert_eq!(monty_wire_cancel(handle), MONTY_WIRE_OK);
    open(&host, "while True:\n    pass", ResourceLimits::default());
    let canceller = std::thread::spawn(move || {
        // Cancel only once the request is in flight: until then a cancel
        // finds nothing to stop.
        loop {
            std::thread::sleep(Duration::from_millis(50));
            assert_eq!(monty_wire_cancel(handle), MONTY_WIRE_OK);
            if CANCELLED.load(std::sync::atomic::Ordering::Acquire) {
                break;
            }
        }
    });
    let response = host.send(&Request::Run(vec![]));
    CANCELLED.store(true, std::sync::atomic::Ordering::Release);
    canceller.join().expect("the cancelling thread");
    expect_code(response, ErrorCode::Cancelled);
    works_again(&host);
}

static CANCELLED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

#[test]
fn cancel_is_refused_for_in_process_and_unknown_sessions() {
    let host = Host {
        handle: monty_wire::ffi::monty_wire_session_open(),
    };
    assert_eq!(monty_wire_cancel(host.handle), MONTY_WIRE_NOT_ISOLATED);
    assert_eq!(monty_wire_cancel(0), MONTY_WIRE_UNKNOWN_SESSION);
}

#[test]
fn closing_an_isolated_session_during_a_request_cancels_it() {
    let _serial = serial();
    let host = Host::isolated();
    let handle = host.handle;
    open(&host, "while True:\n    pass", ResourceLimits::default());
    let running = std::thread::spawn(move || common::dispatch_bytes(handle, &run_bytes()));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(monty_wire::ffi::monty_wire_session_close(handle), MONTY_WIRE_OK);
    let response = running.join().expect("the dispatching thread");
    expect_code(response, ErrorCode::Cancelled);
    std::mem::forget(host);
}

fn run_bytes() -> Vec<u8> {
    monty_wire::encode_request(&Request::Run(vec![])).unwrap().into_bytes()
}

#[test]
fn a_native_stack_overflow_ends_only_the_worker() {
    let _serial = serial();
    let host = Host::isolated();
    let mut overflow = OpenRun::new("1");
    overflow.script_name = STACK_OVERFLOW_SCRIPT_NAME.to_owned();
    let error = expect_code(
        host.send(&Request::OpenRun(Box::new(overflow))),
        ErrorCode::WorkerCrashed,
    );
    let exit = error.worker_exit.expect("how the worker ended");
    assert!(!exit.out_of_memory, "{exit:?}");
    #[cfg(unix)]
    assert!(
        [libc_signal::SIGSEGV, libc_signal::SIGBUS].contains(&exit.signal),
        "a fault at the guard page: {exit:?}"
    );
    works_again(&host);
}

#[cfg(unix)]
mod libc_signal {
    pub const SIGSEGV: i32 = 11;
    #[cfg(target_os = "linux")]
    pub const SIGBUS: i32 = 7;
    #[cfg(not(target_os = "linux"))]
    pub const SIGBUS: i32 = 10;
}

/// With the recursion limit at 10^6, `f(0)` below runs for tens of
/// minutes (unwinding 10^5 frames already takes seconds, and that work
/// reaches no time check), so an in-process session under a time limit
/// stalls its host thread; an isolated one ends at its deadline.
#[test]
fn deep_python_recursion_under_a_raised_limit_ends_at_the_deadline() {
    let _serial = serial();
    let host = Host::isolated();
    let limits = ResourceLimits {
        max_recursion_depth: 1_000_000,
        max_feed_duration: Some(Duration::from_secs(2)),
        ..ResourceLimits::default()
    };
    let response = run(&host, "def f(n):\n    return f(n + 1)\nf(0)", limits);
    assert_stopped_in_time(response, &[ExcType::RecursionError, ExcType::TimeoutError]);
    works_again(&host);
}

#[test]
fn a_crash_loses_the_session_but_not_a_dump_taken_before_it() {
    let _serial = serial();
    let host = Host::isolated();
    let key = b"a host's secret key".to_vec();
    assert!(matches!(host.send(&Request::SetDumpKey(key)).outcome, Outcome::Ok));
    let repl = monty_wire::protocol::OpenRepl::default();
    assert!(matches!(
        host.send(&Request::OpenRepl(Box::new(repl))).outcome,
        Outcome::Ok
    ));
    let feed = |code: &str| host.send(&Request::FeedRun(monty_wire::protocol::Feed::new(code)));
    complete(feed("counter = 41"));
    let Outcome::Dump(dump) = host.send(&Request::DumpSession).outcome else {
        panic!("a dump")
    };
    // A bomb ends the worker: the REPL and its globals are gone.
    assert_out_of_memory(feed("'a' * 10**10"), "a bomb in a REPL");
    expect_code(feed("counter"), ErrorCode::WrongState);
    // The dump, sealed under the key the fresh worker was given again,
    // brings the session back.
    let load = Request::LoadSession {
        dump,
        limits: ResourceLimits::default(),
        access: monty_wire::protocol::HostAccess::default(),
    };
    assert!(matches!(host.send(&load).outcome, Outcome::Ok), "loads");
    assert_eq!(complete(feed("counter + 1")), MontyObject::int(42));
}

/// Appends each fragment to the `String` at `user_data`, as `stream:text`.
unsafe extern "C" fn collect_print(user_data: *mut c_void, stream: u32, text: *const u8, len: usize) {
    // SAFETY: `user_data` is the `String` the test registered and keeps
    // alive, used by no one else during dispatch; `text` is `len` bytes
    // valid during the call.
    unsafe {
        let seen = &mut *user_data.cast::<String>();
        let text = std::str::from_utf8(std::slice::from_raw_parts(text, len)).expect("UTF-8");
        seen.push_str(&format!("{stream}:{text}"));
    }
}

/// Registers [`collect_print`] on `host`'s session, collecting into the
/// returned string; the caller keeps it until [`stop_collecting`].
// Boxed: the callback holds the string's address, which must not move.
#[allow(clippy::box_collection)]
fn collect_prints(host: &Host) -> Box<String> {
    let mut seen = Box::new(String::new());
    let user_data = (&raw mut *seen).cast::<c_void>();
    // SAFETY: the callback matches the signature, and the boxed string stays
    // at its address until the caller removes the callback (`stop_collecting`).
    let status = unsafe { monty_wire_set_print_callback(host.handle, Some(collect_print), user_data) };
    assert_eq!(status, MONTY_WIRE_OK);
    seen
}

/// Removes the callback [`collect_prints`] registered.
fn stop_collecting(host: &Host) {
    // SAFETY: a null callback.
    let status = unsafe { monty_wire_set_print_callback(host.handle, None, std::ptr::null_mut()) };
    assert_eq!(status, MONTY_WIRE_OK);
}

#[test]
fn print_output_streams_through_the_callback_in_order() {
    let _serial = serial();
    let host = Host::isolated();
    let seen = collect_prints(&host);
    let response = run(
        &host,
        "print('a', 1)\nimport sys\nprint('b', file=sys.stderr)\n'done'",
        ResourceLimits::default(),
    );
    assert_eq!(complete(response), MontyObject::string("done"));
    stop_collecting(&host);
    assert_eq!(*seen, "0:a0: 0:10:\n1:b1:\n");
}

/// A fresh worker gets the session's print delivery again: after a crash,
/// a line is still one call.
#[test]
fn a_fresh_worker_keeps_the_print_delivery() {
    let _serial = serial();
    let host = Host::isolated();
    let seen = collect_prints(&host);
    let lines = Request::SetPrintDelivery(monty_wire::protocol::PrintDelivery::Lines);
    assert!(matches!(host.send(&lines).outcome, Outcome::Ok));
    let mut overflow = OpenRun::new("1");
    overflow.script_name = STACK_OVERFLOW_SCRIPT_NAME.to_owned();
    expect_code(
        host.send(&Request::OpenRun(Box::new(overflow))),
        ErrorCode::WorkerCrashed,
    );
    let response = run(&host, "print('a', 1)\nprint('b', 2)", ResourceLimits::default());
    complete(response);
    stop_collecting(&host);
    assert_eq!(*seen, "0:a 1\n0:b 2\n");
}

#[test]
fn a_worker_that_cannot_start_is_reported_and_retried() {
    let path = std::ffi::CString::new("/nonexistent/monty-wire").unwrap();
    // SAFETY: a NUL-terminated string that outlives the call.
    let handle = unsafe { monty_wire::ffi::monty_wire_session_open_isolated(path.as_ptr()) };
    let host = Host { handle };
    let error = expect_code(host.send(&Request::ListFunctions), ErrorCode::WorkerUnavailable);
    assert!(error.message.contains("/nonexistent/monty-wire"), "{}", error.message);
    // Again: every request tries, and says why.
    expect_code(host.send(&Request::ListFunctions), ErrorCode::WorkerUnavailable);
    // A binary that is no worker never greets: one that ends is refused at
    // once, and one that keeps running (`yes` writes to its standard output
    // forever) is killed at the greeting's deadline, not waited on.
    for not_a_worker in ["/bin/true", "yes"] {
        let path = std::ffi::CString::new(not_a_worker).unwrap();
        // SAFETY: as above.
        let handle = unsafe { monty_wire::ffi::monty_wire_session_open_isolated(path.as_ptr()) };
        let host = Host { handle };
        let error = protocol_error(host.send(&Request::ListFunctions));
        assert_eq!(
            error.code,
            ErrorCode::WorkerUnavailable,
            "{not_a_worker}: {}",
            error.message
        );
    }
}

/// Ends the pool's idle workers once those still starting have joined it
/// (or, for a binary that never greets, been killed at the greeting's
/// deadline, up to 10 s), and gives the threads reading their standard
/// error time to see it close.
#[cfg(target_os = "linux")]
fn settle() {
    let patience = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        std::thread::sleep(Duration::from_millis(200));
        pool::drain();
        if children().is_empty() || std::time::Instant::now() > patience {
            break;
        }
    }
    std::thread::sleep(Duration::from_millis(200));
}

/// Open descriptors of this process.
#[cfg(target_os = "linux")]
fn open_descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd").expect("/proc").count()
}

#[cfg(target_os = "linux")]
fn zombies() -> Vec<u32> {
    children()
        .into_iter()
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|stat| stat.rsplit_once(") ").map(|(_, rest)| rest.starts_with('Z')))
                .unwrap_or(false)
        })
        .collect()
}

#[cfg(target_os = "linux")]
#[test]
fn many_threads_and_sessions_with_crashes_leave_nothing_behind() {
    let _serial = serial();
    settle();
    assert_eq!(children(), Vec::<u32>::new(), "no worker is left from earlier tests");
    let descriptors = open_descriptors();
    let threads: Vec<_> = (0..4)
        .map(|thread| {
            std::thread::spawn(move || {
                for i in 0..50 {
                    let host = Host::isolated();
                    if (thread + i) % 5 == 0 {
                        // Past the default ceiling in one allocation: the
                        // worker ends at once.
                        assert_out_of_memory(run(&host, "'a' * 10**10", ResourceLimits::default()), "a crash");
                    }
                    assert_eq!(
                        complete(run(&host, &format!("{i} + {thread}"), ResourceLimits::default())),
                        MontyObject::int(i + thread)
                    );
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("a stress thread");
    }
    settle();
    assert_eq!(zombies(), Vec::<u32>::new(), "every ended worker is reaped");
    assert_eq!(children(), Vec::<u32>::new(), "no worker outlives the pool");
    assert_eq!(open_descriptors(), descriptors, "every worker's descriptors are closed");
}

#[test]
fn a_time_limit_of_centuries_is_no_deadline_and_no_failure() {
    let _serial = serial();
    let host = Host::isolated();
    let limits = ResourceLimits::default().max_feed_duration(Duration::from_nanos(u64::MAX));
    assert_eq!(complete(run(&host, "6 * 7", limits)), MontyObject::int(42));
}
