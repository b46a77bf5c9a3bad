//! Boundary overhead: the cost of driving monty through the C ABI and the
//! wire, against calling monty's Rust API directly (the floor).
//!
//! - `turn_loop_10k`: a Python loop making 10,000 external calls, each
//!   answered by the host. The wire host encodes every request, dispatches it
//!   through `monty_wire_dispatch`, decodes every response and frees its
//!   buffer; the direct host resumes `monty::FunctionCall`s. Both compile the
//!   program once, outside the measurement, and start a fresh run per
//!   iteration (the session clones its compiled program for every `start`).
//! - `turn_loop_10k/wire_in_place`: the same through the C ABI, but the host
//!   reads each call's argument in place from the response buffer with the
//!   Cap'n Proto reader instead of decoding the whole response (what a Dart or
//!   JavaScript host reading the schema does).
//! - `turn_parts`: the four codec steps of one turn on their own (host
//!   encodes a `resumeCall`, the session decodes it, the session encodes a
//!   `functionCall` response, the host decodes it), for the breakdown.
//! - `cold_start`: open, run `1 + 1`, close. The wire host opens a session,
//!   sends `openRun` and `run`, and closes it; the direct host calls
//!   `MontyRun::new` and `run`.
//!
//! `cargo bench --bench boundary`

#[path = "support/mod.rs"]
mod support;

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use monty::{MontyRun, RunProgress};
use monty_types::{CompileOptions, ExtFunctionResult, MontyObject, PrintWriter, ResourceLimits, ResourceTracker};
use monty_wire::{
    DecodeLimits,
    codec::{decode_request, decode_response, encode_request, encode_response},
    ffi::monty_wire_session_open,
    protocol::{CallResult, OpenRun, Outcome, Request},
};
use support::{Host, call_arg_in_place, dispatch, fast_group, open_run_close, send, slow_group};

const CALLS: i64 = 10_000;

/// Sums `f(i)` over 10,000 host calls; the host answers `i + 1`.
const TURN_LOOP: &str = "total = 0\nfor i in range(10_000):\n    total += f(i)\ntotal";

/// What `TURN_LOOP` returns when every call returns its argument plus one.
const TURN_LOOP_RESULT: i64 = CALLS * (CALLS + 1) / 2;

/// Room for 10,000 round trips (the default allows 1,000).
fn run_limits() -> ResourceLimits {
    ResourceLimits {
        max_suspensions: 20_000,
        ..ResourceLimits::default()
    }
}

/// The host's answer to `f(i)`.
fn answer(arg: Option<i64>) -> MontyObject {
    MontyObject::int(arg.expect("f gets an int") + 1)
}

/// One run of the loop through monty's Rust API.
fn direct_turn_loop(program: &MontyRun) -> MontyObject {
    let tracker = ResourceTracker::new(run_limits());
    let mut progress = program
        .clone()
        .start(vec![MontyObject::function("f", None)], tracker, PrintWriter::Disabled);
    loop {
        match progress.expect("the loop runs") {
            RunProgress::FunctionCall(call) => {
                let result = answer(call.args.arg(0).and_then(|arg| arg.as_int()));
                progress = call.resume(ExtFunctionResult::Return(result), PrintWriter::Disabled);
            }
            RunProgress::Complete(value) => return value,
            _ => unreachable!("the loop only makes function calls"),
        }
    }
}

/// One run of the loop through the C ABI and the wire.
fn wire_turn_loop(host: &Host) -> MontyObject {
    let mut response = send(host.handle, &Request::Start(vec![MontyObject::function("f", None)]));
    loop {
        match response.outcome {
            Outcome::FunctionCall(call) => {
                let result = answer(call.args.arg(0).and_then(|arg| arg.as_int()));
                response = send(host.handle, &Request::ResumeCall(CallResult::Value(result)));
            }
            Outcome::Complete(value) => return value,
            other => unreachable!("the loop only makes function calls, got {other:?}"),
        }
    }
}

/// One run of the loop through the C ABI, reading responses in place.
fn wire_in_place_turn_loop(host: &Host, start: &[u8], limits: &DecodeLimits) -> MontyObject {
    let mut reply = dispatch(host.handle, start);
    while let Some(arg) = call_arg_in_place(&reply, limits) {
        let request = encode_request(&Request::ResumeCall(CallResult::Value(answer(Some(arg))))).unwrap();
        reply = dispatch(host.handle, request.as_bytes());
    }
    match reply.decode().outcome {
        Outcome::Complete(value) => value,
        other => unreachable!("the loop completes, got {other:?}"),
    }
}

fn turn_loop(c: &mut Criterion) {
    let program = MontyRun::new(
        TURN_LOOP.to_owned(),
        "main.py",
        vec!["f".to_owned()],
        CompileOptions::default(),
    )
    .expect("compiles");
    let mut open = OpenRun::new(TURN_LOOP);
    open.input_names = vec!["f".to_owned()];
    open.limits = run_limits();
    let host = Host::open(open);

    let limits = DecodeLimits::default();
    let start = encode_request(&Request::Start(vec![MontyObject::function("f", None)])).unwrap();

    let expected = MontyObject::int(TURN_LOOP_RESULT);
    assert_eq!(direct_turn_loop(&program), expected);
    assert_eq!(wire_turn_loop(&host), expected);
    assert_eq!(wire_in_place_turn_loop(&host, start.as_bytes(), &limits), expected);

    let mut group = c.benchmark_group("boundary/turn_loop_10k");
    slow_group(&mut group);
    group.bench_function("direct", |b| b.iter(|| direct_turn_loop(black_box(&program))));
    group.bench_function("wire", |b| b.iter(|| wire_turn_loop(black_box(&host))));
    group.bench_function("wire_in_place", |b| {
        b.iter(|| wire_in_place_turn_loop(black_box(&host), start.as_bytes(), &limits))
    });
    group.finish();
}

/// The codec steps of one turn of the loop, each on its own.
fn turn_parts(c: &mut Criterion) {
    let limits = DecodeLimits::default();
    let mut open = OpenRun::new(TURN_LOOP);
    open.input_names = vec!["f".to_owned()];
    open.limits = run_limits();
    let host = Host::open(open);
    // A real `functionCall` response, as the session sends it.
    let start = encode_request(&Request::Start(vec![MontyObject::function("f", None)])).unwrap();
    let call_bytes = dispatch(host.handle, start.as_bytes()).bytes().to_vec();
    let call = decode_response(&call_bytes, &limits).unwrap();
    assert!(matches!(call.outcome, Outcome::FunctionCall(_)));
    let resume = Request::ResumeCall(CallResult::Value(MontyObject::int(1)));
    let resume_bytes = encode_request(&resume).unwrap();
    eprintln!(
        "turn_parts: resumeCall request {} bytes, functionCall response {} bytes",
        resume_bytes.len(),
        call_bytes.len()
    );

    let mut group = c.benchmark_group("boundary/turn_parts");
    fast_group(&mut group);
    group.bench_function("host_encode_resume", |b| {
        b.iter(|| encode_request(black_box(&resume)).unwrap())
    });
    group.bench_function("session_decode_resume", |b| {
        b.iter(|| decode_request(black_box(resume_bytes.as_bytes()), &limits).unwrap())
    });
    group.bench_function("session_encode_call", |b| {
        b.iter(|| encode_response(black_box(&call)).unwrap())
    });
    group.bench_function("host_decode_call", |b| {
        b.iter(|| decode_response(black_box(&call_bytes), &limits).unwrap())
    });
    group.finish();
}

fn direct_cold_start(code: &str) -> MontyObject {
    let mut run = MontyRun::new(code.to_owned(), "main.py", vec![], CompileOptions::default()).expect("compiles");
    run.run(
        vec![],
        ResourceTracker::new(ResourceLimits::default()),
        PrintWriter::Disabled,
    )
    .expect("runs")
}

fn wire_cold_start(code: &str) -> MontyObject {
    open_run_close(monty_wire_session_open(), code)
}

fn cold_start(c: &mut Criterion) {
    let code = "1 + 1";
    assert_eq!(direct_cold_start(code), MontyObject::int(2));
    assert_eq!(wire_cold_start(code), MontyObject::int(2));

    let mut group = c.benchmark_group("boundary/cold_start");
    fast_group(&mut group);
    group.bench_function("direct", |b| b.iter(|| direct_cold_start(black_box(code))));
    group.bench_function("wire", |b| b.iter(|| wire_cold_start(black_box(code))));
    group.finish();
}

criterion_group!(benches, turn_loop, turn_parts, cold_start);
criterion_main!(benches);
