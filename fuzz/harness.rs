//! What the fuzz targets do with one input. The targets in `fuzz_targets/`
//! call these functions, and `tests/regressions.rs` includes this file too,
//! to replay every input the fuzzer ever kept and to write the seed corpora.
//!
//! - [`dispatch`]: the first byte picks a [`Start`] state (every state a
//!   session can be in, the empty one included); the rest is a sequence of
//!   request messages, each prefixed by its little-endian `u16` length, sent
//!   through the C entry points as a host sends them. Every response must
//!   decode, and no request may reach a panic.
//! - [`decode`]: the first byte picks a message root ([`Root`]); the rest is
//!   read as that root. Whatever decodes re-encodes to a fixed point, and a
//!   `Dump` is opened as `loadSession` and `loadProgram` open it.

#![allow(dead_code)]

use monty_types::{MontyException, MontyObject, ResourceLimits};
use monty_wire::{
    DecodeLimits,
    codec::{
        decode_exception, decode_request, decode_response, decode_value, encode_exception, encode_request,
        encode_response, encode_value,
    },
    dump::{DumpKey, load_program, load_session},
    ffi::{
        MONTY_WIRE_OK, MontyWireSession, monty_wire_buffer_free, monty_wire_dispatch, monty_wire_session_close,
        monty_wire_session_open,
    },
    protocol::{CallResult, ErrorCode, Feed, NameLookupResult, OpenRepl, OpenRun, Outcome, Request, Response},
};
use std::time::Duration;

/// The dump key of the [`Start::Keyed`] state; seeds hold dumps sealed with it.
pub const KEY: &[u8] = b"monty-wire fuzz key";

/// A program that suspends at every kind of host call in turn.
const PROGRAM: &str = "import asyncio, os\n\
async def main():\n    return await asyncio.gather(f(1), f(2))\n\
x = f(0, k=(1, 2))\ny = os.getenv('HOME')\nz = undefined_name\n\
(x, y, z, asyncio.run(main()))";

/// A REPL snippet that defines a function and data.
const SNIPPET: &str = "def g(a, b=2):\n    return [a] * b\nv = {'k': (1, 2.5, None)}";

/// Where a [`dispatch`] input starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// A fresh session: openRun, openRepl, loadProgram and loadSession.
    Empty,
    /// A compiled program, not started.
    Ready,
    /// The program suspended at an external function call.
    FunctionCall,
    /// ... at an OS call.
    OsCall,
    /// ... at a name lookup.
    NameLookup,
    /// ... waiting for the host to resolve futures.
    Futures,
    /// A REPL between snippets (one snippet fed).
    ReplIdle,
    /// A REPL suspended at an external function call mid-snippet.
    ReplSuspended,
    /// An empty session with a dump key: only dumps sealed with [`KEY`] load.
    Keyed,
}

impl Start {
    /// Every state, in the order the first input byte picks them.
    pub const ALL: [Self; 9] = [
        Self::Empty,
        Self::Ready,
        Self::FunctionCall,
        Self::OsCall,
        Self::NameLookup,
        Self::Futures,
        Self::ReplIdle,
        Self::ReplSuspended,
        Self::Keyed,
    ];

    /// The state a first byte picks.
    #[must_use]
    pub fn from_byte(byte: u8) -> Self {
        Self::ALL[usize::from(byte) % Self::ALL.len()]
    }

    /// The first byte that picks this state.
    #[must_use]
    pub fn byte(self) -> u8 {
        Self::ALL.iter().position(|&s| s == self).expect("listed") as u8
    }

    /// Brings a fresh session into this state, checking every response.
    fn reach(self, host: &mut Host) {
        let call = |response: &Response| matches!(response.outcome, Outcome::FunctionCall(_));
        match self {
            Self::Empty => {}
            Self::Keyed => host.expect(&Request::SetDumpKey(KEY.to_vec()), |r| matches!(r.outcome, Outcome::Ok)),
            Self::Ready | Self::FunctionCall | Self::OsCall | Self::NameLookup | Self::Futures => {
                let mut open = OpenRun::new(PROGRAM);
                open.input_names = vec!["f".into()];
                open.limits = limits();
                host.expect(&Request::OpenRun(Box::new(open)), |r| matches!(r.outcome, Outcome::Ok));
                let steps: [(Request, Check); 6] = [
                    (Request::Start(vec![MontyObject::function("f", None)]), call),
                    (Request::ResumeCall(CallResult::Value(MontyObject::int(1))), |r| {
                        matches!(r.outcome, Outcome::OsCall(_))
                    }),
                    (Request::ResumeOsCall(CallResult::Value(MontyObject::none())), |r| {
                        matches!(r.outcome, Outcome::NameLookup(_))
                    }),
                    (
                        Request::ResumeNameLookup(NameLookupResult::Value(MontyObject::int(3))),
                        call,
                    ),
                    (Request::ResumeCall(CallResult::Future), call),
                    (Request::ResumeCall(CallResult::Future), |r| {
                        matches!(r.outcome, Outcome::ResolveFutures(_))
                    }),
                ];
                let count = match self {
                    Self::Ready => 0,
                    Self::FunctionCall => 1,
                    Self::OsCall => 2,
                    Self::NameLookup => 3,
                    _ => steps.len(),
                };
                for (request, check) in steps.iter().take(count) {
                    host.expect(request, *check);
                }
            }
            Self::ReplIdle | Self::ReplSuspended => {
                let open = OpenRepl {
                    limits: limits(),
                    ..OpenRepl::default()
                };
                host.expect(&Request::OpenRepl(Box::new(open)), |r| matches!(r.outcome, Outcome::Ok));
                host.expect(&Request::FeedRun(Feed::new(SNIPPET)), |r| {
                    matches!(r.outcome, Outcome::Complete(_))
                });
                if self == Self::ReplSuspended {
                    let mut feed = Feed::new("w = ext(g(1), key=v)\nw");
                    feed.inputs = vec![("ext".into(), MontyObject::function("ext", None))];
                    host.expect(&Request::FeedStart(feed), call);
                }
            }
        }
    }
}

/// What a setup step's response must be.
type Check = fn(&Response) -> bool;

/// The limits of the runs and REPLs the states open: a fuzz input can
/// write an endless loop, which should end as a `TimeoutError`.
fn limits() -> ResourceLimits {
    ResourceLimits {
        max_feed_duration: Some(Duration::from_millis(200)),
        max_memory: Some(64 << 20),
        ..ResourceLimits::default()
    }
}

/// A session opened through the C entry points, as a host opens one.
pub struct Host {
    handle: MontyWireSession,
    /// Every request and response, when writing seeds.
    pub record: Option<Vec<(Vec<u8>, Vec<u8>)>>,
}

impl Host {
    #[must_use]
    pub fn open() -> Self {
        let handle = monty_wire_session_open();
        assert_ne!(handle, 0, "a session opens");
        Self { handle, record: None }
    }

    /// Sends request bytes and decodes the response from the library's
    /// buffer; a response that does not decode, or that reports a panic
    /// (`internalError`), fails the input.
    pub fn send_bytes(&mut self, request: &[u8]) -> Response {
        // SAFETY: `request` is a live slice for the duration of the call.
        let buffer = unsafe { monty_wire_dispatch(self.handle, request.as_ptr(), request.len()) };
        assert!(!buffer.is_null(), "dispatch never returns null");
        // SAFETY: the buffer's `len` bytes at `data` are valid until freed below.
        let bytes = unsafe { std::slice::from_raw_parts((*buffer).data, (*buffer).len) };
        let response = decode_response(bytes, &DecodeLimits::default());
        if let Some(record) = &mut self.record {
            record.push((request.to_vec(), bytes.to_vec()));
        }
        // SAFETY: returned by dispatch, freed once, not read afterwards.
        unsafe { monty_wire_buffer_free(buffer) };
        let response = response.expect("every response decodes");
        if let Outcome::ProtocolError(error) = &response.outcome {
            assert_ne!(error.code, ErrorCode::InternalError, "{}", error.message);
        }
        response
    }

    /// Sends a request.
    pub fn send(&mut self, request: &Request) -> Response {
        let bytes = encode_request(request).expect("the request encodes");
        self.send_bytes(bytes.as_bytes())
    }

    /// Sends a request whose response must pass `check`.
    pub fn expect(&mut self, request: &Request, check: impl Fn(&Response) -> bool) {
        let response = self.send(request);
        assert!(check(&response), "{request:?} answered {:?}", response.outcome);
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let closed = monty_wire_session_close(self.handle);
        if !std::thread::panicking() {
            assert_eq!(closed, MONTY_WIRE_OK, "the session closes");
        }
    }
}

/// Splits the requests of a [`dispatch`] input: each is prefixed by its
/// little-endian `u16` length (cut short at the end of the input).
fn frames(mut rest: &[u8]) -> impl Iterator<Item = &[u8]> {
    std::iter::from_fn(move || {
        if rest.len() < 2 {
            return None;
        }
        let len = usize::from(u16::from_le_bytes([rest[0], rest[1]])).min(rest.len() - 2);
        let (frame, tail) = rest[2..].split_at(len);
        rest = tail;
        Some(frame)
    })
}

/// Joins request messages into a [`dispatch`] input starting at `start`.
#[must_use]
pub fn dispatch_input<'a>(start: Start, requests: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut input = vec![start.byte()];
    for request in requests {
        let len = u16::try_from(request.len()).expect("a seed request under 64 KiB");
        input.extend_from_slice(&len.to_le_bytes());
        input.extend_from_slice(request);
    }
    input
}

/// One `dispatch` input: see the module documentation.
pub fn dispatch(data: &[u8]) {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let mut host = Host::open();
    Start::from_byte(first).reach(&mut host);
    for request in frames(rest) {
        host.send_bytes(request);
    }
}

/// The message root a [`decode`] input is read as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Root {
    Value,
    PythonException,
    Request,
    Response,
    Dump,
}

impl Root {
    /// Every root, in the order the first input byte picks them.
    pub const ALL: [Self; 5] = [
        Self::Value,
        Self::PythonException,
        Self::Request,
        Self::Response,
        Self::Dump,
    ];

    /// The first byte that picks this root.
    #[must_use]
    pub fn byte(self) -> u8 {
        Self::ALL.iter().position(|&r| r == self).expect("listed") as u8
    }
}

/// Checks that `decode(encode(x))` re-encodes to the same bytes: what
/// decodes survives a second round trip unchanged.
fn fixed_point<T>(value: T, encode: impl Fn(&T) -> Vec<u8>, decode: impl Fn(&[u8]) -> T) {
    let once = encode(&value);
    let twice = encode(&decode(&once));
    assert!(once == twice, "a re-encoded message changed on a second round trip");
}

/// One `decode` input: see the module documentation.
pub fn decode(data: &[u8]) {
    let Some((&first, bytes)) = data.split_first() else {
        return;
    };
    let limits = DecodeLimits::default();
    match Root::ALL[usize::from(first) % Root::ALL.len()] {
        Root::Value => {
            if let Ok(value) = decode_value(bytes, &limits) {
                fixed_point(
                    value,
                    |v: &MontyObject| encode_value(v).expect("a decoded value re-encodes").into_bytes(),
                    |b| decode_value(b, &limits).expect("a re-encoded value decodes"),
                );
            }
        }
        Root::PythonException => {
            if let Ok(exc) = decode_exception(bytes, &limits) {
                fixed_point(
                    exc,
                    |e: &MontyException| {
                        encode_exception(e)
                            .expect("a decoded exception re-encodes")
                            .into_bytes()
                    },
                    |b| decode_exception(b, &limits).expect("a re-encoded exception decodes"),
                );
            }
        }
        Root::Request => {
            if let Ok(request) = decode_request(bytes, &limits) {
                fixed_point(
                    request,
                    |r: &Request| encode_request(r).expect("a decoded request re-encodes").into_bytes(),
                    |b| decode_request(b, &limits).expect("a re-encoded request decodes"),
                );
            }
        }
        Root::Response => {
            if let Ok(response) = decode_response(bytes, &limits) {
                fixed_point(
                    response,
                    |r: &Response| encode_response(r).expect("a decoded response re-encodes").into_bytes(),
                    |b| decode_response(b, &limits).expect("a re-encoded response decodes"),
                );
            }
        }
        Root::Dump => {
            for key in [DumpKey::default(), DumpKey::new(KEY.to_vec())] {
                let _ = load_session(bytes, &key, &limits);
                let _ = load_program(bytes, &key, &limits);
            }
        }
    }
}

/// Seed inputs for both targets, made from real sessions: every request a
/// scripted host sends (as `dispatch` inputs from the state it starts in,
/// and as `Request` inputs of `decode`), every response, every value and
/// exception in them, and real dumps of every kind, sealed and not.
#[must_use]
pub fn seeds() -> Vec<(&'static str, String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut dumps: Vec<(String, Vec<u8>)> = Vec::new();
    let mut run_script = |name: &str, start: Start, requests: &[Request], out: &mut Vec<_>| {
        let mut host = Host::open();
        start.reach(&mut host);
        host.record = Some(Vec::new());
        for request in requests {
            let response = host.send(request);
            if let Outcome::Dump(dump) = response.outcome {
                dumps.push((format!("{name}-{}", dumps.len()), dump));
            }
        }
        let record = host.record.take().expect("recording");
        let messages: Vec<&[u8]> = record.iter().map(|(request, _)| request.as_slice()).collect();
        out.push(("dispatch", name.to_owned(), dispatch_input(start, messages)));
        for (i, (request, response)) in record.iter().enumerate() {
            out.push(("decode", format!("{name}-{i}-request"), tagged(Root::Request, request)));
            out.push((
                "decode",
                format!("{name}-{i}-response"),
                tagged(Root::Response, response),
            ));
        }
    };
    let value = |v: MontyObject| CallResult::Value(v);
    let mut open_run = OpenRun::new("def h(n):\n    return sum(range(n))\nh(x) + len(f(x))");
    open_run.input_names = vec!["x".into(), "f".into()];
    open_run.limits = limits();
    let scripts: Vec<(&str, Start, Vec<Request>)> = vec![
        (
            "empty-run",
            Start::Empty,
            vec![
                Request::OpenRun(Box::new(open_run)),
                Request::DumpProgram,
                Request::Start(vec![MontyObject::int(4), MontyObject::function("f", None)]),
                Request::ResumeCall(value(MontyObject::list([MontyObject::string("a")]))),
            ],
        ),
        (
            "empty-repl",
            Start::Empty,
            vec![
                Request::OpenRepl(Box::default()),
                Request::FeedRun(Feed::new(SNIPPET)),
                Request::ListFunctions,
                Request::CallFunction {
                    name: "g".into(),
                    args: vec![MontyObject::bytes(b"xy".to_vec())],
                },
                Request::DumpSession,
            ],
        ),
        (
            "empty-continuation",
            Start::Empty,
            vec![Request::DetectContinuation("if x:\n".into()), Request::DumpSession],
        ),
        (
            "ready",
            Start::Ready,
            vec![Request::DumpProgram, Request::SetLimits(limits())],
        ),
        (
            "function-call",
            Start::FunctionCall,
            vec![Request::DumpSession, Request::ResumeCall(CallResult::NotFound)],
        ),
        (
            "function-call-abort",
            Start::FunctionCall,
            vec![Request::Abort(MontyException::new(
                monty_types::ExcType::ValueError,
                Some("stop".into()),
            ))],
        ),
        (
            "os-call",
            Start::OsCall,
            vec![
                Request::DumpSession,
                Request::ResumeOsCall(value(MontyObject::string("/home"))),
            ],
        ),
        (
            "name-lookup",
            Start::NameLookup,
            vec![
                Request::DumpSession,
                Request::ResumeNameLookup(NameLookupResult::Undefined),
            ],
        ),
        (
            "futures",
            Start::Futures,
            vec![
                Request::DumpSession,
                Request::ResolveFutures(vec![(1, value(MontyObject::int(5)))]),
            ],
        ),
        (
            "repl-idle",
            Start::ReplIdle,
            vec![
                Request::FeedRun(Feed::new("g(v)")),
                Request::FeedStart(Feed::new("print(missing)")),
                Request::DumpSession,
            ],
        ),
        (
            "repl-suspended",
            Start::ReplSuspended,
            vec![Request::DumpSession, Request::ResumeCall(value(MontyObject::int(7)))],
        ),
        (
            "keyed-repl",
            Start::Keyed,
            vec![
                Request::OpenRepl(Box::default()),
                Request::FeedRun(Feed::new(SNIPPET)),
                Request::DumpSession,
            ],
        ),
        (
            "keyed-run",
            Start::Keyed,
            vec![Request::OpenRun(Box::new(OpenRun::new("1 + 1"))), Request::DumpProgram],
        ),
    ];
    for (name, start, requests) in &scripts {
        run_script(name, *start, requests, &mut out);
    }
    // Every dump, loaded into an empty and a keyed session, as both kinds
    // of load (one of which refuses it), and as a `Dump` root of `decode`.
    for (name, dump) in &dumps {
        let load_session = Request::LoadSession {
            dump: dump.clone(),
            limits: limits(),
            access: Default::default(),
        };
        let load_program = Request::LoadProgram {
            dump: dump.clone(),
            limits: limits(),
        };
        let start = if name.starts_with("keyed") {
            Start::Keyed
        } else {
            Start::Empty
        };
        let session = encode_request(&load_session).expect("encodes");
        let program = encode_request(&load_program).expect("encodes");
        let dump_again = encode_request(&Request::DumpSession).expect("encodes");
        out.push((
            "dispatch",
            format!("load-{name}"),
            dispatch_input(start, [session.as_bytes(), dump_again.as_bytes()]),
        ));
        out.push((
            "dispatch",
            format!("load-program-{name}"),
            dispatch_input(start, [program.as_bytes()]),
        ));
        out.push(("decode", format!("dump-{name}"), tagged(Root::Dump, dump)));
    }
    for (i, value) in [
        MontyObject::tuple([MontyObject::int(1), MontyObject::float(2.5), MontyObject::none()]),
        MontyObject::dict([(MontyObject::string("k"), MontyObject::list([MontyObject::bool(true)]))]),
    ]
    .iter()
    .enumerate()
    {
        let message = encode_value(value).expect("encodes");
        out.push(("decode", format!("value-{i}"), tagged(Root::Value, message.as_bytes())));
    }
    let exc = MontyException::new(monty_types::ExcType::KeyError, Some("k".into()));
    let message = encode_exception(&exc).expect("encodes");
    out.push((
        "decode",
        "exception".into(),
        tagged(Root::PythonException, message.as_bytes()),
    ));
    out
}

/// A `decode` input: the root's byte, then the message.
fn tagged(root: Root, message: &[u8]) -> Vec<u8> {
    let mut input = vec![root.byte()];
    input.extend_from_slice(message);
    input
}
