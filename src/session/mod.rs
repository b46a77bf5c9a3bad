//! The session engine: one request message in, one response message out.
//!
//! A [`Session`] is a state machine over monty's `MontyRun` / `RunProgress`
//! (a one-shot run) or `MontyRepl` / `ReplProgress` (a REPL).
//! It never fails as a whole: a request it cannot accept becomes a
//! `protocolError` response and leaves the session as it was, a Python error
//! becomes a `pythonError` response, and a panic inside the library is caught,
//! reported as `internalError`, and resets the session to empty.

#[cfg(target_arch = "wasm32")]
mod address_space;
mod input;
mod mounts;
mod output;
mod repl;
mod run;
mod stack;
mod suspension;
#[cfg(feature = "type-check")]
mod typecheck;

use std::{
    panic::{self, AssertUnwindSafe},
    time::{Duration, Instant},
};

use monty_types::{ExcType, MontyException, PrintWriter, ResourceLimits};
use mounts::LocalOs;
pub use output::PrintSink;
use output::TurnOutput;
use repl::ReplSession;
use run::RunSession;
use stack::{SessionStack, StackNeed};

use crate::{
    codec::{DecodeLimits, WireMessage, decode_request, encode_response},
    dump::{self, DumpKey},
    error::EncodeError,
    protocol::{CallResult, ErrorCode, OsCallEvent, Outcome, PrintDelivery, ProtocolError, Request, Response, Usage},
};

/// Opening a run with this script name panics inside the engine, so tests
/// can prove that no panic escapes (only with the `test-hooks` feature).
#[cfg(feature = "test-hooks")]
pub const PANIC_SCRIPT_NAME: &str = "<monty-wire: induce a panic>";

/// Opening a run with this script name recurses natively until the
/// session's stack overflows, which ends the process at its guard page:
/// tests use it to prove that this ends only an isolated session's worker
/// (only with the `test-hooks` feature).
#[cfg(feature = "test-hooks")]
pub const STACK_OVERFLOW_SCRIPT_NAME: &str = "<monty-wire: overflow the native stack>";

/// Whether `request` compiles a program and runs no Python.
fn compiles_only(request: &Request) -> bool {
    match request {
        // The hooks stand for faults on the session's own stack.
        #[cfg(feature = "test-hooks")]
        Request::OpenRun(open) if [PANIC_SCRIPT_NAME, STACK_OVERFLOW_SCRIPT_NAME].contains(&&*open.script_name) => {
            false
        }
        Request::OpenRun(_) => true,
        _ => false,
    }
}

/// Recurses with a frame of 512 bytes a level until the stack runs out.
#[cfg(feature = "test-hooks")]
fn overflow_the_stack(depth: u64) -> u64 {
    let frame = std::hint::black_box([depth; 64]);
    if depth == u64::MAX {
        return frame[0];
    }
    overflow_the_stack(depth + 1).wrapping_add(frame[63])
}

/// One embedded interpreter session.
///
/// Sessions are `Send`: a host may move one between threads, but uses it
/// from one thread at a time (`&mut self`).
///
/// A session runs monty and the codec on a stack of its own, sized for its
/// recursion limit, so any calling thread will do, however small its stack
/// (see the `stack` module); on wasm32 it uses the module's stack.
pub struct Session {
    state: State,
    print_sink: Option<PrintSink>,
    /// How print output reaches `print_sink` (`setPrintDelivery`).
    print_delivery: PrintDelivery,
    /// Interpreter time over the session's life.
    elapsed: Duration,
    decode_limits: DecodeLimits,
    /// Seals dumps this session writes and checks those it loads.
    dump_key: DumpKey,
    /// Mounts and the environment map of the run or REPL.
    local: LocalOs,
    /// Made on the session's first type check and kept: ty caches its
    /// analysis of the standard library stubs between checks. A session
    /// that never checks (a run, a REPL without type checking) never makes
    /// one: it costs hundreds of KiB and milliseconds to build.
    #[cfg(feature = "type-check")]
    checker: Option<Box<monty_type_checking::TypeChecker>>,
    stack: SessionStack,
    stack_need: StackNeed,
}

enum State {
    Empty,
    Run(Box<RunSession>),
    Repl(Box<ReplSession>),
}

/// What dispatch needs from the session besides its state.
struct Context<'a> {
    dump_key: &'a mut DumpKey,
    print_delivery: &'a mut PrintDelivery,
    /// Dumps are read within the same limits as the requests that carry them.
    decode_limits: &'a DecodeLimits,
    local: &'a mut LocalOs,
    #[cfg(feature = "type-check")]
    checker: &'a mut Option<Box<monty_type_checking::TypeChecker>>,
}

/// The work of one request: its print output and the interpreter time it used.
pub(crate) struct Turn<'s> {
    output: TurnOutput<'s>,
    exec: Duration,
    /// When the request's last interpreter call ended: its wall time ends
    /// there too, so the clock is read twice per call and once more per
    /// request, not again at the end.
    last_call_ended: Option<Instant>,
}

impl Turn<'_> {
    /// Runs monty code that prints into this turn, timing it.
    pub(crate) fn run<T>(&mut self, f: impl FnOnce(PrintWriter<'_>) -> T) -> T {
        let started = Instant::now();
        let result = f(PrintWriter::Callback(&mut self.output));
        self.timed_since(started);
        result
    }

    /// Times monty work that prints nothing (compiling).
    pub(crate) fn time<T>(&mut self, f: impl FnOnce() -> T) -> T {
        let started = Instant::now();
        let result = f();
        self.timed_since(started);
        result
    }

    fn timed_since(&mut self, started: Instant) {
        let ended = Instant::now();
        self.exec += ended.saturating_duration_since(started);
        self.last_call_ended = Some(ended);
    }
}

impl Default for Session {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // monty's destructors run on the session's stack, as its requests do:
        // the caller's may be small.
        let state = std::mem::replace(&mut self.state, State::Empty);
        if !matches!(state, State::Empty) {
            self.on_own_stack(move |_| drop(state));
        }
    }
}

impl Session {
    /// An empty session: its first request opens or loads a run or a REPL.
    #[must_use]
    pub fn new() -> Self {
        Self::with_decode_limits(DecodeLimits::default())
    }

    /// An empty session that reads requests within `limits`.
    #[must_use]
    pub fn with_decode_limits(limits: DecodeLimits) -> Self {
        Self {
            state: State::Empty,
            print_sink: None,
            print_delivery: PrintDelivery::default(),
            elapsed: Duration::ZERO,
            decode_limits: limits,
            dump_key: DumpKey::default(),
            local: LocalOs::default(),
            #[cfg(feature = "type-check")]
            checker: None,
            stack: SessionStack::default(),
            stack_need: StackNeed::default(),
        }
    }

    /// Sends print output to `sink` as it is written, as well as into each
    /// response; `None` stops that. How often `sink` is called is the
    /// session's [`PrintDelivery`] (`setPrintDelivery`).
    pub fn set_print_sink(&mut self, sink: Option<PrintSink>) {
        self.print_sink = sink;
    }

    /// The host's limits for the run or REPL this session holds; `None`
    /// while it is empty. A worker process sizes its memory ceiling and its
    /// parent's deadline from them.
    #[must_use]
    pub fn limits(&self) -> Option<&ResourceLimits> {
        match &self.state {
            State::Empty => None,
            State::Run(run) => Some(run.limits()),
            State::Repl(repl) => Some(repl.limits()),
        }
    }

    /// Whether the session is a REPL that type-checks each snippet before
    /// running it.
    #[cfg(not(target_family = "wasm"))]
    pub(crate) fn type_checks_snippets(&self) -> bool {
        matches!(&self.state, State::Repl(repl) if repl.type_checks())
    }

    /// Handles one request message and returns the response message.
    ///
    /// `request` is read in place, at any alignment. This never fails: every
    /// problem is reported inside the response.
    pub fn handle_bytes(&mut self, request: &[u8]) -> WireMessage {
        // Wall time counts decoding the request, and ends with its last
        // interpreter call (or its handling, if it makes none), before the
        // response is encoded (the response carries it); this one clock read
        // starts it, whether the request decodes or not.
        let started = Instant::now();
        // Decoding does not recurse, so it runs here; the request may raise
        // the recursion limit, and the session's stack with it.
        match decode_request(request, &self.decode_limits) {
            Ok(request) => {
                self.stack_need.note(&request);
                let compiles_only = compiles_only(&request);
                self.on_stack_for(compiles_only, |s| {
                    let response = s.handle_since(request, started);
                    let message = s.encode(&response, started);
                    s.take_back_call_fields(response.outcome);
                    message
                })
            }
            Err(err) => {
                let response = Response {
                    outcome: Outcome::ProtocolError(ProtocolError::from(&err)),
                    output: Vec::new(),
                    usage: Usage {
                        wall: started.elapsed(),
                        ..self.usage(Duration::ZERO)
                    },
                };
                self.encode(&response, started)
            }
        }
    }

    /// Encodes a response to a request that started at `started`.
    fn encode(&mut self, response: &Response, started: Instant) -> WireMessage {
        match encode_response(response) {
            Ok(message) => message,
            Err(err) => self.too_large_to_send(response, &err, started),
        }
    }

    /// The answer to a request whose response does not fit in a message.
    ///
    /// The request has been carried out, and the host cannot be told where
    /// it left the session, so a run or snippet it left suspended is aborted
    /// (as an `abort` request would) rather than left waiting on an answer to
    /// a call the host never saw: the session is ready (a run) or idle (a
    /// REPL) again, and what the request did before that stays done.
    fn too_large_to_send(&mut self, response: &Response, err: &EncodeError, started: Instant) -> WireMessage {
        let suspended = matches!(
            response.outcome,
            Outcome::FunctionCall(_) | Outcome::OsCall(_) | Outcome::NameLookup(_) | Outcome::ResolveFutures(_)
        );
        let mut message = format!("the response cannot be encoded: {err}");
        // The abort below looks at the suspension as it is.
        self.take_back_copy(&response.outcome);
        if suspended {
            let abort = MontyException::new(
                ExcType::RuntimeError,
                Some("the run's request to the host was too large to send".to_owned()),
            );
            // Its outcome (the run ending with that exception) fits, but the
            // host is told why in the error instead.
            self.handle_since(Request::Abort(abort), started);
            message.push_str("; the run in flight was aborted, and the session is ready again");
        }
        error_response(ProtocolError::new(ErrorCode::ResponseTooLarge, message))
    }

    /// Handles one decoded request.
    ///
    /// The response's values are the caller's: a deeply nested one drops
    /// recursively on the stack it is dropped on.
    pub fn handle(&mut self, request: Request) -> Response {
        self.stack_need.note(&request);
        let compiles_only = compiles_only(&request);
        self.on_stack_for(compiles_only, |s| {
            let response = s.handle_since(request, Instant::now());
            s.take_back_copy(&response.outcome);
            response
        })
    }

    /// Gives a suspended function call back the fields its response was
    /// lent when the suspension was described, so that the response is
    /// encoded without copying them.
    fn take_back_call_fields(&mut self, outcome: Outcome) {
        let Outcome::FunctionCall(event) = outcome else {
            return;
        };
        match &mut self.state {
            State::Empty => {}
            State::Run(run) => run.take_back_call_fields(event),
            State::Repl(repl) => repl.take_back_call_fields(event),
        }
    }

    /// [`Self::take_back_call_fields`] with a copy, where the response
    /// itself goes on (to a Rust host, or to be replaced by an error).
    fn take_back_copy(&mut self, outcome: &Outcome) {
        if let Outcome::FunctionCall(event) = outcome {
            self.take_back_call_fields(Outcome::FunctionCall(event.clone()));
        }
    }

    /// Runs `f`, which handles a request, on the stack it needs: the
    /// caller's for one that only compiles a program, when that has room
    /// (see [`stack::compiles_on_callers_stack`]), the session's own otherwise.
    fn on_stack_for<R>(&mut self, compiles_only: bool, f: impl FnOnce(&mut Self) -> R) -> R {
        if compiles_only && stack::compiles_on_callers_stack() {
            f(self)
        } else {
            self.on_own_stack(f)
        }
    }

    /// Runs `f` on the session's own stack.
    fn on_own_stack<R>(&mut self, f: impl FnOnce(&mut Self) -> R) -> R {
        // Taken out for the call, so `f` may borrow the rest of the session.
        let mut stack = std::mem::take(&mut self.stack);
        let result = stack.run(self.stack_need, || f(self));
        self.stack = stack;
        result
    }

    /// Handles a request whose wall time started at `started`.
    fn handle_since(&mut self, request: Request, started: Instant) -> Response {
        let mut turn = Turn {
            output: TurnOutput::new(self.print_sink.as_mut(), self.print_delivery),
            exec: Duration::ZERO,
            last_call_ended: None,
        };
        let state = &mut self.state;
        let mut context = Context {
            dump_key: &mut self.dump_key,
            print_delivery: &mut self.print_delivery,
            decode_limits: &self.decode_limits,
            local: &mut self.local,
            #[cfg(feature = "type-check")]
            checker: &mut self.checker,
        };
        let result = panic::catch_unwind(AssertUnwindSafe(|| {
            dispatch_serving(state, request, &mut context, &mut turn)
        }));
        let outcome = match result {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(error)) => Outcome::ProtocolError(error),
            Err(payload) => {
                // Whatever was in flight may be half-moved; only an empty
                // session is known to be consistent.
                self.state = State::Empty;
                self.local = LocalOs::default();
                Outcome::ProtocolError(ProtocolError::new(
                    ErrorCode::InternalError,
                    format!(
                        "monty-wire panicked ({}); the session was reset to empty",
                        panic_message(payload.as_ref())
                    ),
                ))
            }
        };
        let Turn {
            output,
            exec,
            last_call_ended,
        } = turn;
        // Whatever is still gathered reaches the sink before the response
        // is made.
        let output = output.finish();
        self.elapsed += exec;
        if let Some(flight) = self.flight_mut() {
            flight.elapsed += exec;
        }
        let mut usage = self.usage(exec);
        usage.wall = last_call_ended
            .unwrap_or_else(Instant::now)
            .saturating_duration_since(started);
        Response { outcome, output, usage }
    }

    fn flight_mut(&mut self) -> Option<&mut suspension::Flight> {
        match &mut self.state {
            State::Empty => None,
            State::Run(run) => Some(&mut run.flight),
            State::Repl(repl) => Some(&mut repl.flight),
        }
    }

    fn usage(&self, turn_elapsed: Duration) -> Usage {
        let (feed_elapsed, suspensions) = match &self.state {
            State::Empty => (Duration::ZERO, 0),
            State::Run(run) => (run.flight.elapsed, run.flight.suspensions),
            State::Repl(repl) => (repl.flight.elapsed, repl.flight.suspensions),
        };
        Usage {
            elapsed: self.elapsed,
            feed_elapsed,
            turn_elapsed,
            wall: Duration::ZERO,
            suspensions,
            memory_bytes: measured_memory(),
        }
    }
}

/// The heap bytes monty's memory limit sees, where the process counts them.
///
/// monty counts memory only through its own allocator (`monty-alloc`),
/// installed as the global allocator of a program that chooses it, as the
/// command line and the web module do; a native library must not impose it
/// on its host. Without it
/// the count stays 0 and memory is reported as unmeasured.
fn measured_memory() -> Option<u64> {
    use std::sync::atomic::Ordering::Relaxed;
    let live = monty_types::LIVE_MEMORY.load(Relaxed);
    let baseline = monty_types::BASELINE_MEMORY.load(Relaxed);
    // The baseline is `usize::MAX` until the counting allocator is armed.
    (live != 0 && baseline != usize::MAX).then(|| live.saturating_sub(baseline) as u64)
}

/// Dispatches `request`, then answers every OS call a mount or the
/// environment map covers, in the same turn, until the run needs the host or
/// ends.
///
/// Each of those internal answers is a round trip like a host's: it counts
/// toward `maxSuspensions` (the interpreter's clock is paused while a call is
/// served, so that limit is what bounds a sandbox looping on file calls) and
/// its print output and interpreter time join this turn's.
fn dispatch_serving(
    state: &mut State,
    request: Request,
    context: &mut Context<'_>,
    turn: &mut Turn<'_>,
) -> Result<Outcome, ProtocolError> {
    // A snippet's own mounts come into force before it runs; a feed the
    // session refuses leaves the snippet in flight (and its mounts) alone.
    let feed_mounts = match (&*state, &request) {
        (State::Repl(_), Request::FeedRun(feed) | Request::FeedStart(feed)) if !feed.mounts.is_empty() => {
            context.local.begin_feed(&feed.mounts)?;
            true
        }
        _ => false,
    };
    let mount_state = match (&*state, &request) {
        (State::Run(_) | State::Repl(_), Request::DumpSession) => Some(context.local.dump_state()?),
        _ => None,
    };
    let mut outcome = match dispatch(state, request, context, turn) {
        Ok(outcome) => outcome,
        Err(error) => {
            if feed_mounts {
                context.local.end_feed();
            }
            return Err(error);
        }
    };
    while let Outcome::OsCall(event) = outcome {
        let OsCallEvent {
            call,
            call_id,
            allow_eager_await,
            position,
        } = event;
        let result = match context.local.answer(call) {
            Ok(result) => result,
            Err(call) => {
                return Ok(Outcome::OsCall(OsCallEvent {
                    call,
                    call_id,
                    allow_eager_await,
                    position,
                }));
            }
        };
        let result = match result {
            CallResult::Value(value) if allow_eager_await => CallResult::EagerValue(value),
            CallResult::Exception(exc) if allow_eager_await => CallResult::EagerException(exc),
            result => result,
        };
        outcome = dispatch(state, Request::ResumeOsCall(result), context, turn)?;
    }
    match outcome {
        // The snippet ended: its own mounts go with it.
        Outcome::Complete(_) | Outcome::PythonError(_) | Outcome::TypeCheckReport(_) => context.local.end_feed(),
        Outcome::Dump(dump) if mount_state.as_ref().is_some_and(|state| !state.is_empty()) => {
            let state = mount_state.expect("checked above");
            return dump::with_mount_state(&dump, state, context.dump_key)
                .map(|message| Outcome::Dump(message.into_bytes()))
                .map_err(Into::into);
        }
        _ => {}
    }
    Ok(outcome)
}

fn dispatch(
    state: &mut State,
    request: Request,
    context: &mut Context<'_>,
    turn: &mut Turn<'_>,
) -> Result<Outcome, ProtocolError> {
    #[cfg(target_arch = "wasm32")]
    let request = address_space::cap_limits(request);
    // Requests any session takes, whatever it holds, and that leave it as it is.
    match request {
        Request::DetectContinuation(source) => {
            return Ok(Outcome::Continuation(monty::detect_repl_continuation_mode(&source)));
        }
        Request::SetDumpKey(key) => {
            *context.dump_key = DumpKey::new(key);
            return Ok(Outcome::Ok);
        }
        Request::SetPrintDelivery(delivery) => {
            *context.print_delivery = delivery;
            return Ok(Outcome::Ok);
        }
        #[cfg(feature = "type-check")]
        Request::TypeCheck(check) => {
            return typecheck::check_request(
                typecheck::checker_in(context.checker),
                &check.code,
                &check.prefix_code,
                &check.script_name,
                &check.options,
            )
            .map(Outcome::TypeCheckReport);
        }
        #[cfg(not(feature = "type-check"))]
        Request::TypeCheck(_) => {
            return Err(ProtocolError::new(
                ErrorCode::InvalidArgument,
                "this build of monty-wire has no type checker (the type-check feature is off)",
            ));
        }
        _ => {}
    }
    match state {
        State::Run(run) => run.handle(request, context.dump_key, turn),
        State::Repl(repl) => repl.handle(
            request,
            context.dump_key,
            turn,
            #[cfg(feature = "type-check")]
            context.checker,
        ),
        State::Empty => match request {
            Request::OpenRun(open) => {
                #[cfg(feature = "test-hooks")]
                if open.script_name == PANIC_SCRIPT_NAME {
                    panic!("induced by the test hook");
                }
                #[cfg(feature = "test-hooks")]
                if open.script_name == STACK_OVERFLOW_SCRIPT_NAME {
                    std::hint::black_box(overflow_the_stack(0));
                }
                let local = LocalOs::open(&open.access)?;
                match RunSession::open(*open, turn)? {
                    Ok(run) => {
                        *state = State::Run(Box::new(run));
                        *context.local = local;
                        Ok(Outcome::Ok)
                    }
                    Err(exc) => Ok(Outcome::PythonError(exc)),
                }
            }
            Request::LoadProgram { dump, limits } => {
                *state = State::Run(Box::new(RunSession::load(
                    &dump,
                    context.dump_key,
                    context.decode_limits,
                    limits,
                )?));
                Ok(Outcome::Ok)
            }
            Request::OpenRepl(open) => {
                let local = LocalOs::open(&open.access)?;
                *state = State::Repl(Box::new(ReplSession::open(*open)?));
                *context.local = local;
                Ok(Outcome::Ok)
            }
            Request::LoadSession { dump, limits, access } => {
                let dump::LoadedSession { session, mut flight } =
                    dump::load_session(&dump, context.dump_key, context.decode_limits)?;
                // The load request's mounts, never the dump's: the dump only
                // says which to expect, and what the overlays held.
                let mut local = LocalOs::open(&access)?;
                local.restore(&std::mem::take(&mut flight.mount_state))?;
                *state = match session.state {
                    monty::Session::Running(progress) => State::Run(Box::new(RunSession::resume_loaded(
                        progress,
                        session.script_name,
                        flight,
                        limits,
                    ))),
                    _ => State::Repl(Box::new(ReplSession::restore(session, flight, limits)?)),
                };
                *context.local = local;
                Ok(Outcome::Ok)
            }
            _ => Err(ProtocolError::new(
                ErrorCode::WrongState,
                "the session is empty: open a run or a REPL (openRun, loadProgram, openRepl, loadSession) first",
            )),
        },
    }
}

/// A response that carries only a protocol error.
#[must_use]
pub fn error_response(error: ProtocolError) -> WireMessage {
    let response = Response {
        outcome: Outcome::ProtocolError(error),
        output: Vec::new(),
        usage: Usage::default(),
    };
    encode_response(&response).expect("an error response holds only a short message")
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("no message")
}

#[cfg(test)]
mod tests {
    use monty_types::MontyObject;

    use super::{Session, State, suspension::View};
    use crate::{
        DecodeLimits,
        codec::{decode_response, encode_request},
        protocol::{OpenRun, Outcome, Request},
    };

    /// What a run suspended at a function call holds: the call's name,
    /// arguments and position.
    fn held_call(session: &Session) -> (String, monty_types::CallArgs, monty_types::SourceRange) {
        let State::Run(run) = &session.state else {
            panic!("a run session");
        };
        match run.suspension_view() {
            Some(View::FunctionCall {
                name, args, position, ..
            }) => (name.to_owned(), args.clone(), position.clone()),
            _ => panic!("suspended at a function call"),
        }
    }

    /// A function call's fields are lent to the response that describes it,
    /// not copied; the suspension has them back once the response is
    /// encoded (bytes in and out) or handed over (`handle`).
    #[test]
    fn a_described_call_keeps_its_fields() {
        let mut open = OpenRun::new("f(1, 'two', k=[3])");
        open.input_names = vec!["f".to_owned()];
        let start = Request::Start(vec![MontyObject::function("f", None)]);

        let mut bytes_session = Session::new();
        let open_bytes = encode_request(&Request::OpenRun(Box::new(open.clone()))).unwrap();
        bytes_session.handle_bytes(open_bytes.as_bytes());
        let reply = bytes_session.handle_bytes(encode_request(&start).unwrap().as_bytes());
        let Outcome::FunctionCall(sent) = decode_response(reply.as_bytes(), &DecodeLimits::default())
            .unwrap()
            .outcome
        else {
            panic!("a function call");
        };
        assert_eq!(
            held_call(&bytes_session),
            (sent.name.clone(), sent.args.clone(), sent.position.clone())
        );
        assert_eq!(sent.name, "f");
        assert_eq!(sent.args.args().count(), 2);

        let mut session = Session::new();
        session.handle(Request::OpenRun(Box::new(open)));
        let Outcome::FunctionCall(handed) = session.handle(start).outcome else {
            panic!("a function call");
        };
        assert_eq!(
            held_call(&session),
            (handed.name.clone(), handed.args.clone(), handed.position.clone())
        );
        assert_eq!(handed, sent);
    }
}
