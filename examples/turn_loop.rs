//! The native side of `benches/wasm_turn_loop.mjs`: the turn loop of
//! `benches/boundary.rs` (`turn_loop_10k/wire_in_place`) as a small program,
//! so that the WebAssembly build and the native library run the identical
//! Python program and host loop side by side, in one invocation.
//!
//! ```text
//! cargo build --release --no-default-features --example turn_loop
//! node benches/wasm_turn_loop.mjs      # starts target/release/examples/turn_loop
//! ```
//!
//! The program is `total = 0; for i in range(10_000): total += f(i)`. The host
//! answers every `functionCall` through the C ABI: it reads the call's
//! argument in place from the response buffer with the Cap'n Proto reader,
//! encodes a `resumeCall` with `i + 1` and dispatches it.
//!
//! It checks the loop's result once, prints `ready <calls>`, then reads
//! commands on stdin, one per line: `run` runs the loop once and prints
//! `<wall ns> <cpu ns>`, the loop's wall-clock time and the CPU time this
//! thread spent in it (from `/proc/thread-self/schedstat` on Linux; 0
//! elsewhere). End of input ends it.

use std::io::{BufRead, Write};
use std::time::Instant;

// The benchmarks' C-ABI host: the same reply buffer, dispatch and
// in-place argument read as `turn_loop_10k/wire_in_place`.
#[path = "../benches/support/mod.rs"]
mod support;

use monty_types::{MontyObject, ResourceLimits};
use monty_wire::{
    DecodeLimits,
    codec::encode_request,
    ffi::{MontyWireSession, monty_wire_session_close, monty_wire_session_open},
    protocol::{CallResult, OpenRun, Outcome, Request},
};
use support::{call_arg_in_place, dispatch, send};

const CALLS: i64 = 10_000;
/// The same program as `benches/boundary.rs` and `benches/wasm_turn_loop.mjs`.
const TURN_LOOP: &str = "total = 0\nfor i in range(10_000):\n    total += f(i)\ntotal";

/// One run of the loop; returns its result.
fn turn_loop(session: MontyWireSession, start: &[u8], limits: &DecodeLimits) -> MontyObject {
    let mut reply = dispatch(session, start);
    while let Some(arg) = call_arg_in_place(&reply, limits) {
        let request = encode_request(&Request::ResumeCall(CallResult::Value(MontyObject::int(arg + 1)))).unwrap();
        reply = dispatch(session, request.as_bytes());
    }
    match reply.decode().outcome {
        Outcome::Complete(value) => value,
        other => panic!("the loop completes, got {other:?}"),
    }
}

/// CPU time this thread has run, in ns (Linux's schedstat), or 0 where
/// there is no such file.
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|text| text.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn main() {
    let session = monty_wire_session_open();
    let mut open = OpenRun::new(TURN_LOOP);
    open.input_names = vec!["f".to_owned()];
    // Room for 10,000 round trips (the default allows 1,000).
    open.limits = ResourceLimits {
        max_suspensions: 20_000,
        ..ResourceLimits::default()
    };
    let limits = DecodeLimits::default();
    let opened = send(session, &Request::OpenRun(Box::new(open)));
    assert!(matches!(opened.outcome, Outcome::Ok), "open: {:?}", opened.outcome);
    let start = encode_request(&Request::Start(vec![MontyObject::function("f", None)])).unwrap();
    assert_eq!(
        turn_loop(session, start.as_bytes(), &limits),
        MontyObject::int(CALLS * (CALLS + 1) / 2)
    );

    let mut out = std::io::stdout().lock();
    writeln!(out, "ready {CALLS}").unwrap();
    out.flush().unwrap();
    for line in std::io::stdin().lock().lines() {
        let line = line.expect("stdin reads");
        match line.trim() {
            "run" => {
                let cpu = thread_cpu_ns();
                let started = Instant::now();
                std::hint::black_box(turn_loop(session, start.as_bytes(), &limits));
                let wall = started.elapsed().as_nanos();
                let cpu = thread_cpu_ns().saturating_sub(cpu);
                writeln!(out, "{wall} {cpu}").unwrap();
                out.flush().unwrap();
            }
            "" => {}
            other => panic!("unknown command {other:?} (expected `run`)"),
        }
    }
    monty_wire_session_close(session);
}
