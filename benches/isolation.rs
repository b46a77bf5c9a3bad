//! Isolated sessions against in-process ones: what the process boundary
//! costs a host.
//!
//! - `cold_start`: open a session, run `1 + 1`, close it. Isolated sessions
//!   take a prewarmed worker from the pool (the first run warms it), and
//!   closing hands it back for reuse; so this is the steady state of a host
//!   that opens sessions one after another.
//! - `turn_loop_1k`: a Python loop making 1,000 external calls, each
//!   answered by the host through the C ABI (per turn: divide by 1,000).
//! - `result_1mib`: running code whose value is 1 MiB of `bytes`, and
//!   decoding the response.
//!
//! `cargo bench --bench isolation`

#[path = "support/mod.rs"]
mod support;

use std::{ffi::CString, hint::black_box};

use criterion::{Criterion, criterion_group, criterion_main};
use monty_types::{MontyObject, ResourceLimits};
use monty_wire::{
    ffi::{MontyWireSession, monty_wire_session_open, monty_wire_session_open_isolated},
    protocol::{CallResult, OpenRun, Outcome, Request},
};
use support::{Host, fast_group, open_run_close, send, slow_group};

const CALLS: i64 = 1_000;
const TURN_LOOP: &str = "total = 0\nfor i in range(1_000):\n    total += f(i)\ntotal";

fn worker() -> CString {
    CString::new(env!("CARGO_BIN_EXE_monty-wire")).expect("no NUL in a cargo path")
}

/// Opens a session of either kind.
fn open(isolated: bool, worker: &CString) -> MontyWireSession {
    if isolated {
        // SAFETY: a NUL-terminated string that outlives the call.
        unsafe { monty_wire_session_open_isolated(worker.as_ptr()) }
    } else {
        monty_wire_session_open()
    }
}

fn cold_start_once(isolated: bool, worker: &CString) -> MontyObject {
    open_run_close(open(isolated, worker), "1 + 1")
}

fn cold_start(c: &mut Criterion) {
    let worker = worker();
    for isolated in [false, true] {
        assert_eq!(cold_start_once(isolated, &worker), MontyObject::int(2));
    }
    let mut group = c.benchmark_group("isolation/cold_start");
    fast_group(&mut group);
    group.bench_function("in_process", |b| b.iter(|| cold_start_once(false, black_box(&worker))));
    group.bench_function("isolated", |b| b.iter(|| cold_start_once(true, black_box(&worker))));
    group.finish();
}

fn turn_loop_once(host: &Host) -> MontyObject {
    let mut response = send(host.handle, &Request::Start(vec![MontyObject::function("f", None)]));
    loop {
        match response.outcome {
            Outcome::FunctionCall(call) => {
                let arg = call.args.arg(0).and_then(|arg| arg.as_int()).expect("f gets an int");
                response = send(
                    host.handle,
                    &Request::ResumeCall(CallResult::Value(MontyObject::int(arg + 1))),
                );
            }
            Outcome::Complete(value) => return value,
            other => unreachable!("the loop only makes function calls, got {other:?}"),
        }
    }
}

fn turn_loop(c: &mut Criterion) {
    let worker = worker();
    let hosts = [false, true].map(|isolated| {
        let mut program = OpenRun::new(TURN_LOOP);
        program.input_names = vec!["f".to_owned()];
        program.limits = ResourceLimits {
            max_suspensions: 2 * CALLS as usize,
            ..ResourceLimits::default()
        };
        Host::open_in(open(isolated, &worker), program)
    });
    for host in &hosts {
        assert_eq!(turn_loop_once(host), MontyObject::int(CALLS * (CALLS + 1) / 2));
    }
    let mut group = c.benchmark_group("isolation/turn_loop_1k");
    slow_group(&mut group);
    group.bench_function("in_process", |b| b.iter(|| turn_loop_once(black_box(&hosts[0]))));
    group.bench_function("isolated", |b| b.iter(|| turn_loop_once(black_box(&hosts[1]))));
    group.finish();
}

fn result_1mib(c: &mut Criterion) {
    let worker = worker();
    let hosts = [false, true].map(|isolated| Host::open_in(open(isolated, &worker), OpenRun::new("b'x' * (1 << 20)")));
    let run = |host: &Host| match send(host.handle, &Request::Run(vec![])).outcome {
        Outcome::Complete(value) => value,
        other => unreachable!("the run completes, got {other:?}"),
    };
    for host in &hosts {
        assert_eq!(run(host), MontyObject::bytes(vec![b'x'; 1 << 20]));
    }
    let mut group = c.benchmark_group("isolation/result_1mib");
    fast_group(&mut group);
    group.bench_function("in_process", |b| b.iter(|| run(black_box(&hosts[0]))));
    group.bench_function("isolated", |b| b.iter(|| run(black_box(&hosts[1]))));
    group.finish();
}

criterion_group!(benches, cold_start, turn_loop, result_1mib);
criterion_main!(benches);
