//! What the benchmarks share: building inputs with monty, and a host that
//! drives the C ABI exactly as a Dart or C host would (request bytes in,
//! response bytes read in place, buffer freed), as `tests/common` does.

#![allow(dead_code)]

use std::time::Duration;

use criterion::{BenchmarkGroup, SamplingMode, measurement::WallTime};
use monty::MontyRun;
use monty_types::{CompileOptions, MontyObject, PrintWriter, ResourceLimits, ResourceTracker};
use monty_wire::{
    DecodeLimits,
    codec::{decode_response, encode_request, read_message},
    ffi::{
        MontyWireBuffer, MontyWireSession, monty_wire_buffer_free, monty_wire_dispatch, monty_wire_session_close,
        monty_wire_session_open,
    },
    protocol::{OpenRun, Outcome, Request, Response},
    schema::{node, response},
};

/// Runs `code` in monty (no host calls, output discarded) and returns its value.
pub fn python(code: &str) -> MontyObject {
    let mut run = MontyRun::new(code.to_owned(), "bench.py", vec![], CompileOptions::default())
        .unwrap_or_else(|e| panic!("compiles: {e}"));
    run.run(
        vec![],
        ResourceTracker::new(ResourceLimits::default()),
        PrintWriter::Disabled,
    )
    .unwrap_or_else(|e| panic!("runs: {e}"))
}

/// Settings for a group whose iterations take milliseconds or more: ten
/// samples of a fixed iteration count, so the slow cases stay short.
pub fn slow_group(group: &mut BenchmarkGroup<'_, WallTime>) {
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
}

/// Settings for a group of sub-millisecond iterations.
pub fn fast_group(group: &mut BenchmarkGroup<'_, WallTime>) {
    group
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
}

/// A response buffer owned by the library, freed on drop.
pub struct Reply(*mut MontyWireBuffer);

impl Reply {
    /// The response message, read in place.
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: `self.0` came from `monty_wire_dispatch`, which never
        // returns null, and stays live until `drop` frees it; `data` points to
        // `len` bytes the library does not touch until then.
        unsafe {
            let header = &*self.0;
            std::slice::from_raw_parts(header.data, header.len)
        }
    }

    /// Decodes the whole response into Rust values.
    pub fn decode(&self) -> Response {
        decode_response(self.bytes(), &DecodeLimits::default()).expect("every response decodes")
    }
}

impl Drop for Reply {
    fn drop(&mut self) {
        // SAFETY: the buffer came from `monty_wire_dispatch` and is freed
        // exactly once, here; `bytes()` borrows cannot outlive `self`.
        unsafe { monty_wire_buffer_free(self.0) };
    }
}

/// Sends request bytes to a session through the C entry point.
pub fn dispatch(session: MontyWireSession, request: &[u8]) -> Reply {
    // SAFETY: `request` is a live slice for the duration of the call.
    Reply(unsafe { monty_wire_dispatch(session, request.as_ptr(), request.len()) })
}

/// Encodes `request` and sends it; the host's whole side of one turn.
pub fn send(session: MontyWireSession, request: &Request) -> Response {
    let message = encode_request(request).expect("request encodes");
    dispatch(session, message.as_bytes()).decode()
}

/// The first positional argument of a `functionCall` response, read in
/// place; `None` for any other response.
pub fn call_arg_in_place(reply: &Reply, limits: &DecodeLimits) -> Option<i64> {
    let message = read_message(reply.bytes(), limits).expect("responses are messages");
    let response: response::Reader<'_> = message.get_root().ok()?;
    let response::Which::FunctionCall(Ok(call)) = response.which().ok()? else {
        return None;
    };
    let args = call.get_args().ok()?;
    let first = args.get_positional().ok()?.get(0);
    match args.get_nodes().ok()?.get(first).which().ok()? {
        node::Which::IntValue(n) => Some(n),
        _ => None,
    }
}

/// A cold start in `session`: compiles `code`, runs it, closes the session,
/// and returns the run's value.
pub fn open_run_close(session: MontyWireSession, code: &str) -> MontyObject {
    let opened = send(session, &Request::OpenRun(Box::new(OpenRun::new(code))));
    assert!(matches!(opened.outcome, Outcome::Ok), "open: {:?}", opened.outcome);
    let ran = send(session, &Request::Run(vec![]));
    monty_wire_session_close(session);
    match ran.outcome {
        Outcome::Complete(value) => value,
        other => unreachable!("{code} completes, got {other:?}"),
    }
}

/// An open C-ABI session, closed on drop.
pub struct Host {
    pub handle: MontyWireSession,
}

impl Host {
    /// A session with `open` compiled in it.
    pub fn open(open: OpenRun) -> Self {
        Self::open_in(monty_wire_session_open(), open)
    }

    /// `open` compiled in `handle`'s session.
    pub fn open_in(handle: MontyWireSession, open: OpenRun) -> Self {
        let host = Self { handle };
        let response = send(host.handle, &Request::OpenRun(Box::new(open)));
        assert!(matches!(response.outcome, Outcome::Ok), "open: {:?}", response.outcome);
        host
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        monty_wire_session_close(self.handle);
    }
}

/// Python code whose value is 16 MiB of `bytes`: every byte value, repeated.
pub fn bytes_16mib_code() -> String {
    let pattern: String = (0..=255u8).map(|b| format!("\\x{b:02x}")).collect();
    format!("b'{pattern}' * 65536")
}
