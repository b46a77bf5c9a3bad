//! A host written against the C entry points only, as a Dart or C host
//! would be: request bytes in, response bytes read in place, buffer freed.

#![allow(dead_code)]

use monty_types::{MontyException, MontyObject, ResourceLimits};
use monty_wire::{
    DecodeLimits,
    codec::{decode_response, encode_request},
    ffi::{
        MontyWireSession, monty_wire_buffer_free, monty_wire_dispatch, monty_wire_session_close,
        monty_wire_session_open, monty_wire_session_open_isolated,
    },
    protocol::{
        CallResult, ErrorCode, FunctionCallEvent, OpenRun, OsCallEvent, Outcome, ProtocolError, Request, Response,
    },
};

/// Sends raw request bytes to a session handle and decodes the response
/// from the library's buffer before freeing it.
pub fn dispatch_bytes(session: MontyWireSession, bytes: &[u8]) -> Response {
    // SAFETY: `bytes` outlives the call.
    let buffer = unsafe { monty_wire_dispatch(session, bytes.as_ptr(), bytes.len()) };
    assert!(!buffer.is_null(), "dispatch never returns null");
    // SAFETY: the buffer is live until freed below.
    let response = unsafe {
        let header = &*buffer;
        assert_eq!(header.data as usize % 8, 0, "responses are 8-byte aligned");
        decode_response(
            std::slice::from_raw_parts(header.data, header.len),
            &DecodeLimits::default(),
        )
    };
    // SAFETY: freed once.
    unsafe { monty_wire_buffer_free(buffer) };
    response.expect("every response decodes")
}

/// An open session.
pub struct Host {
    pub handle: MontyWireSession,
}

/// Whether this run drives isolated sessions: with
/// `MONTY_WIRE_TEST_ISOLATED=1` every test written against [`Host`] runs
/// the same requests against sessions whose engine is in a worker process.
pub fn isolated() -> bool {
    std::env::var_os("MONTY_WIRE_TEST_ISOLATED").is_some_and(|v| v == "1")
}

/// The worker binary of isolated sessions: this crate's `monty-wire`.
pub fn worker_binary() -> &'static str {
    match option_env!("CARGO_BIN_EXE_monty-wire") {
        Some(path) => path,
        None => panic!("isolated sessions need the monty-wire binary (the cli feature)"),
    }
}

/// Opens an isolated session served by this crate's worker binary.
pub fn open_isolated() -> MontyWireSession {
    let path = std::ffi::CString::new(worker_binary()).expect("no NUL in a path cargo gives");
    // SAFETY: a NUL-terminated string that outlives the call.
    unsafe { monty_wire_session_open_isolated(path.as_ptr()) }
}

/// Opens a session of the kind this run tests (see [`isolated`]).
pub fn open_session() -> MontyWireSession {
    if isolated() {
        open_isolated()
    } else {
        monty_wire_session_open()
    }
}

impl Host {
    pub fn new() -> Self {
        Self { handle: open_session() }
    }

    /// A session in a worker process, whatever the run tests.
    pub fn isolated() -> Self {
        Self {
            handle: open_isolated(),
        }
    }

    /// A session with `code` compiled, with these input names and limits.
    pub fn open(code: &str, input_names: &[&str], limits: ResourceLimits) -> Self {
        let mut open = OpenRun::new(code);
        open.input_names = input_names.iter().map(|s| (*s).to_owned()).collect();
        open.limits = limits;
        Self::open_with(open)
    }

    pub fn open_with(open: OpenRun) -> Self {
        let host = Self::new();
        let response = host.send(&Request::OpenRun(Box::new(open)));
        assert!(
            matches!(response.outcome, Outcome::Ok),
            "open failed: {:?}",
            response.outcome
        );
        host
    }

    pub fn send(&self, request: &Request) -> Response {
        let message = encode_request(request).expect("request encodes");
        dispatch_bytes(self.handle, message.as_bytes())
    }

    pub fn start(&self, inputs: Vec<MontyObject>) -> Response {
        self.send(&Request::Start(inputs))
    }

    pub fn resume(&self, answer: CallResult) -> Response {
        self.send(&Request::ResumeCall(answer))
    }

    pub fn resume_os(&self, answer: CallResult) -> Response {
        self.send(&Request::ResumeOsCall(answer))
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        monty_wire_session_close(self.handle);
    }
}

pub fn complete(response: Response) -> MontyObject {
    match response.outcome {
        Outcome::Complete(value) => value,
        other => panic!("expected complete, got {other:?}"),
    }
}

pub fn python_error(response: Response) -> MontyException {
    match response.outcome {
        Outcome::PythonError(exc) => exc,
        other => panic!("expected a Python error, got {other:?}"),
    }
}

pub fn protocol_error(response: Response) -> ProtocolError {
    match response.outcome {
        Outcome::ProtocolError(error) => error,
        other => panic!("expected a protocol error, got {other:?}"),
    }
}

pub fn expect_code(response: Response, code: ErrorCode) -> ProtocolError {
    let error = protocol_error(response);
    assert_eq!(error.code, code, "{}", error.message);
    error
}

pub fn function_call(response: Response) -> FunctionCallEvent {
    match response.outcome {
        Outcome::FunctionCall(call) => call,
        other => panic!("expected a function call, got {other:?}"),
    }
}

pub fn os_call(response: Response) -> OsCallEvent {
    match response.outcome {
        Outcome::OsCall(call) => call,
        other => panic!("expected an OS call, got {other:?}"),
    }
}

/// Runs `f` on a thread with room for monty's recursion in debug builds.
pub fn with_big_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(f)
        .expect("spawn")
        .join()
        .expect("test thread")
}
