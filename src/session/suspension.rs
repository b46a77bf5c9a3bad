//! What one-shot runs and REPL feeds share while suspended: checking the
//! host's answer against what is pending, the limits monty leaves to the
//! host, and describing a suspension in a response.
//!
//! monty has two families of suspension types (`RunProgress` and
//! `ReplProgress`) with the same shape; [`Suspension`] gives both one face,
//! so the protocol rules are written once.

use std::{borrow::Cow, collections::HashMap, time::Duration};

use monty::{ReplProgress, ReplStartError, RunProgress};
use monty_types::{
    CallArgs, ExcType, ExtFunctionResult, MontyException, MontyObject, MontyPath, MontyUuid,
    NameLookupResult as MontyNameLookupResult, OsFunctionCall, PrintWriter, ResourceLimits, ResourceTracker,
    SourceRange, normalize_virtual_path,
};

use super::input;
use crate::{
    dump::FlightRecord,
    protocol::{
        CallResult, ErrorCode, FunctionCallEvent, NameLookupEvent, NameLookupResult, OsCallEvent, Outcome,
        ProtocolError, Request, ResolveFuturesEvent,
    },
};

/// A borrowed look at what a suspension waits for.
pub(crate) enum View<'a> {
    FunctionCall {
        name: &'a str,
        args: &'a CallArgs,
        call_id: u32,
        object_id: Option<MontyUuid>,
        allow_eager_await: bool,
        position: &'a SourceRange,
    },
    OsCall {
        call: &'a OsFunctionCall,
        call_id: u32,
        allow_eager_await: bool,
        position: &'a SourceRange,
    },
    NameLookup {
        name: &'a str,
        object_id: Option<MontyUuid>,
        position: &'a SourceRange,
    },
    ResolveFutures {
        pending: &'a [u32],
        position: &'a SourceRange,
    },
    /// Never stored by a session; a completed run or feed is not suspended.
    Complete,
}

impl View<'_> {
    fn state(&self) -> &'static str {
        match self {
            View::FunctionCall { .. } => "suspended at a function call",
            View::OsCall { .. } => "suspended at an OS call",
            View::NameLookup { .. } => "suspended at a name lookup",
            View::ResolveFutures { .. } => "suspended on futures",
            View::Complete => "complete",
        }
    }

    /// The response for this suspension.
    pub(crate) fn describe(&self) -> Outcome {
        match *self {
            View::FunctionCall {
                name,
                args,
                call_id,
                object_id,
                allow_eager_await,
                position,
            } => Outcome::FunctionCall(FunctionCallEvent {
                name: name.to_owned(),
                args: args.clone(),
                call_id,
                object_id,
                allow_eager_await,
                position: position.clone(),
            }),
            View::OsCall {
                call,
                call_id,
                allow_eager_await,
                position,
            } => Outcome::OsCall(OsCallEvent {
                call: with_normalised_paths(call),
                call_id,
                allow_eager_await,
                position: position.clone(),
            }),
            View::NameLookup {
                name,
                object_id,
                position,
            } => Outcome::NameLookup(NameLookupEvent {
                name: name.to_owned(),
                object_id,
                position: position.clone(),
            }),
            View::ResolveFutures { pending, position } => Outcome::ResolveFutures(ResolveFuturesEvent {
                pending_call_ids: pending.to_vec(),
                position: position.clone(),
            }),
            View::Complete => Outcome::Ok,
        }
    }
}

/// The OS call as the host gets it: every path in it (both of a rename's)
/// lexically normalised by monty's own `normalize_virtual_path`, as monty's
/// bindings hand paths to their hosts. Empty and `.` segments are dropped,
/// `..` drops the segment before it and stays at `/`, a trailing slash goes;
/// nothing is read, so symlinks are not resolved. monty has already resolved
/// relative paths against the sandbox's cwd (the session's, or the one
/// `os.chdir` set) and refused NUL bytes, so every path but an empty one is
/// absolute; an empty path (`os.stat('')`) stays empty, as in monty's
/// bindings, so the host answers it as CPython does (`FileNotFoundError`).
/// Without this a host that checks a path prefix could be walked out of its
/// directory by `..`.
fn with_normalised_paths(call: &OsFunctionCall) -> OsFunctionCall {
    let mut call = call.clone();
    for path in call.fs_paths_mut() {
        if !path.is_empty()
            && let Cow::Owned(normalised) = normalize_virtual_path(path)
        {
            *path = MontyPath::new(normalised);
        }
    }
    call
}

/// A host's answer, checked and in monty's terms.
pub(crate) enum Answer {
    Call(ExtFunctionResult),
    CallPending,
    CallEager(Result<MontyObject, MontyException>),
    Os(ExtFunctionResult),
    OsEager(Result<MontyObject, MontyException>),
    Name(MontyNameLookupResult),
    Futures(Vec<(u32, ExtFunctionResult)>),
    Abort(MontyException),
}

/// The fields of a function call suspension that its response carries and
/// that own heap memory.
pub(crate) struct CallFields<'a> {
    name: &'a mut String,
    args: &'a mut CallArgs,
    position: &'a mut SourceRange,
}

impl CallFields<'_> {
    /// Takes the fields out, leaving empty ones that own no memory.
    fn take(&mut self) -> (String, CallArgs, SourceRange) {
        let empty_position = SourceRange {
            filename: String::new(),
            start: 0,
            end: 0,
        };
        (
            std::mem::take(self.name),
            std::mem::take(self.args),
            std::mem::replace(self.position, empty_position),
        )
    }
}

/// The response that describes `progress`, which the session is about to
/// hold. A function call's name, arguments and position are lent to it
/// rather than copied: [`take_back_call_fields`] returns them once the
/// response is encoded, before any other request can look at the suspension.
pub(crate) fn describe_lending<S: Suspension>(progress: &mut S) -> Outcome {
    let lent = progress.call_fields_mut().map(|mut fields| fields.take());
    let mut outcome = progress.view().describe();
    if let (Outcome::FunctionCall(event), Some((name, args, position))) = (&mut outcome, lent) {
        event.name = name;
        event.args = args;
        event.position = position;
    }
    outcome
}

/// Returns what [`describe_lending`] lent to `event` to `progress`, if it is
/// still suspended at that call.
pub(crate) fn take_back_call_fields<S: Suspension>(progress: &mut S, event: FunctionCallEvent) {
    if matches!(progress.view(), View::FunctionCall { call_id, .. } if call_id == event.call_id)
        && let Some(fields) = progress.call_fields_mut()
    {
        *fields.name = event.name;
        *fields.args = event.args;
        *fields.position = event.position;
    }
}

/// monty's suspension types, one face for both families.
pub(crate) trait Suspension: Sized {
    /// What resuming returns.
    type Next;
    fn view(&self) -> View<'_>;
    /// A function call's fields its response carries; `None` at any other
    /// suspension.
    fn call_fields_mut(&mut self) -> Option<CallFields<'_>>;
    /// Resumes with an answer [`Flight::prepare`] made for this suspension.
    fn answer(self, answer: Answer, print: PrintWriter<'_>) -> Self::Next;
    /// The tracker whose time budgets can be re-armed, where monty allows it.
    fn tracker_mut(&mut self) -> Option<&mut ResourceTracker>;
    /// The tracker, to read its limits; `None` only once complete.
    fn tracker(&self) -> Option<&ResourceTracker>;
}

/// Calls the method of one answer on whichever suspension struct it fits.
/// `Flight::prepare` only makes answers that fit the suspension.
macro_rules! answer_suspension {
    ($progress:ident, $self:expr, $answer:expr, $print:expr) => {
        match ($self, $answer) {
            ($progress::FunctionCall(call), Answer::Call(result)) => call.resume(result, $print),
            ($progress::FunctionCall(call), Answer::CallPending) => call.resume_pending($print),
            ($progress::FunctionCall(call), Answer::CallEager(result)) => call.resume_eager(result, $print),
            ($progress::OsCall(call), Answer::Os(result)) => call.resume(result, $print),
            ($progress::OsCall(call), Answer::OsEager(result)) => call.resume_eager(result, $print),
            ($progress::NameLookup(lookup), Answer::Name(result)) => lookup.resume(result, $print),
            ($progress::ResolveFutures(pending), Answer::Futures(results)) => pending.resume(results, $print),
            ($progress::FunctionCall(call), Answer::Abort(exc)) => call.abort(exc, $print),
            ($progress::OsCall(call), Answer::Abort(exc)) => call.abort(exc, $print),
            ($progress::NameLookup(lookup), Answer::Abort(exc)) => lookup.abort(exc, $print),
            ($progress::ResolveFutures(pending), Answer::Abort(exc)) => pending.abort(exc, $print),
            _ => unreachable!("Flight::prepare makes only answers that fit the suspension"),
        }
    };
}

macro_rules! view_suspension {
    ($progress:ident, $self:expr) => {
        match $self {
            $progress::FunctionCall(call) => View::FunctionCall {
                name: &call.function_name,
                args: &call.args,
                call_id: call.call_id,
                object_id: call.object_id,
                allow_eager_await: call.allow_eager_await,
                position: &call.position,
            },
            $progress::OsCall(call) => View::OsCall {
                call: &call.function_call,
                call_id: call.call_id,
                allow_eager_await: call.allow_eager_await,
                position: &call.position,
            },
            $progress::NameLookup(lookup) => View::NameLookup {
                name: &lookup.name,
                object_id: lookup.object_id(),
                position: &lookup.position,
            },
            $progress::ResolveFutures(pending) => View::ResolveFutures {
                pending: pending.pending_call_ids(),
                position: pending.position(),
            },
            $progress::Complete { .. } => View::Complete,
        }
    };
}

macro_rules! call_fields {
    ($progress:ident, $self:expr) => {
        match $self {
            $progress::FunctionCall(call) => Some(CallFields {
                name: &mut call.function_name,
                args: &mut call.args,
                position: &mut call.position,
            }),
            _ => None,
        }
    };
}

impl Suspension for RunProgress {
    type Next = Result<RunProgress, MontyException>;

    fn view(&self) -> View<'_> {
        view_suspension!(RunProgress, self)
    }

    fn call_fields_mut(&mut self) -> Option<CallFields<'_>> {
        call_fields!(RunProgress, self)
    }

    fn answer(self, answer: Answer, print: PrintWriter<'_>) -> Self::Next {
        answer_suspension!(RunProgress, self, answer, print)
    }

    fn tracker_mut(&mut self) -> Option<&mut ResourceTracker> {
        match self {
            RunProgress::FunctionCall(call) => Some(call.tracker_mut()),
            _ => None,
        }
    }

    fn tracker(&self) -> Option<&ResourceTracker> {
        match self {
            RunProgress::FunctionCall(call) => Some(call.tracker()),
            RunProgress::OsCall(call) => Some(call.tracker()),
            RunProgress::NameLookup(lookup) => Some(lookup.tracker()),
            RunProgress::ResolveFutures(pending) => Some(pending.tracker()),
            RunProgress::Complete(_) => None,
        }
    }
}

impl Suspension for ReplProgress {
    type Next = Result<ReplProgress, Box<ReplStartError>>;

    fn view(&self) -> View<'_> {
        view_suspension!(ReplProgress, self)
    }

    fn call_fields_mut(&mut self) -> Option<CallFields<'_>> {
        call_fields!(ReplProgress, self)
    }

    fn answer(self, answer: Answer, print: PrintWriter<'_>) -> Self::Next {
        answer_suspension!(ReplProgress, self, answer, print)
    }

    fn tracker_mut(&mut self) -> Option<&mut ResourceTracker> {
        Some(ReplProgress::tracker_mut(self))
    }

    fn tracker(&self) -> Option<&ResourceTracker> {
        Some(ReplProgress::tracker(self))
    }
}

/// The bookkeeping of one run or feed in flight.
#[derive(Debug, Default)]
pub(crate) struct Flight {
    /// Interpreter time of the current run or feed, over all its requests.
    pub(crate) elapsed: Duration,
    /// Host round trips so far (the host-enforced `max_suspensions`).
    pub(crate) suspensions: u64,
    /// `system.sleep` time so far (the host-enforced `max_total_sleep`).
    total_sleep: Duration,
    /// Names of function calls the host turned into futures, so that a
    /// future resolved as "not found" raises a `NameError` naming the function.
    future_names: HashMap<u32, String>,
    /// Set when a session is loaded from a dump whose run or feed already
    /// exceeds the load request's host limits: the next resume stops it
    /// with this instead of continuing.
    overdue: Option<MontyException>,
}

impl Flight {
    /// Starts the bookkeeping of a new run or feed.
    pub(crate) fn begin(&mut self) {
        *self = Self::default();
    }

    /// The bookkeeping a dump carries.
    pub(crate) fn record(&self) -> FlightRecord {
        let mut future_names: Vec<(u32, String)> = self
            .future_names
            .iter()
            .map(|(call_id, name)| (*call_id, name.clone()))
            .collect();
        // Sorted, so the same state always dumps to the same bytes.
        future_names.sort_unstable();
        FlightRecord {
            suspensions: self.suspensions,
            total_sleep: self.total_sleep,
            elapsed: self.elapsed,
            future_names,
            mount_state: Vec::new(),
        }
    }

    /// The bookkeeping of a loaded dump, checked against the host limits
    /// the loaded session enforces: the run or feed continues counting
    /// where the writer stopped.
    pub(crate) fn restore(record: FlightRecord, limits: &ResourceLimits) -> Self {
        let mut flight = Self {
            elapsed: record.elapsed,
            suspensions: record.suspensions,
            total_sleep: record.total_sleep,
            future_names: record.future_names.into_iter().collect(),
            overdue: None,
        };
        flight.overdue = flight.over_host_limits(limits);
        flight
    }

    /// New host limits (`setLimits`): a loaded run or feed stopped for
    /// exceeding the load request's limits is checked against these instead.
    /// Any other is checked at its next suspension, as always.
    pub(crate) fn limits_changed(&mut self, limits: &ResourceLimits) {
        if self.overdue.is_some() {
            self.overdue = self.over_host_limits(limits);
        }
    }

    fn over_host_limits(&self, limits: &ResourceLimits) -> Option<MontyException> {
        self.suspension_limit(limits).or_else(|| self.sleep_limit(limits))
    }

    /// A `wrongState` error for `request`, which needs `needs`.
    pub(crate) fn wrong_state(view: Option<View<'_>>, request: &str, needs: &str) -> ProtocolError {
        let now = view.map_or("not running anything", |view| view.state());
        ProtocolError::new(
            ErrorCode::WrongState,
            format!("{request} needs {needs}, but the session is {now}"),
        )
    }

    /// Checks a resume request against the suspension and turns it into
    /// monty's answer; a request that does not fit is refused before
    /// anything is taken out of the session.
    pub(crate) fn prepare(&mut self, view: View<'_>, request: Request) -> Result<Answer, ProtocolError> {
        // A host's own abort still wins: it ends the run either way.
        if !matches!(request, Request::Abort(_))
            && let Some(exc) = self.overdue.take()
        {
            return Ok(Answer::Abort(exc));
        }
        match (view, request) {
            (
                View::FunctionCall {
                    name,
                    call_id,
                    allow_eager_await,
                    ..
                },
                Request::ResumeCall(answer),
            ) => {
                check_eager(&answer, allow_eager_await)?;
                if let CallResult::Value(value) | CallResult::EagerValue(value) = &answer {
                    input::check_value(value, "resumeCall value")?;
                }
                Ok(match answer {
                    CallResult::Value(value) => Answer::Call(ExtFunctionResult::Return(value)),
                    CallResult::Exception(exc) => Answer::Call(ExtFunctionResult::Error(exc)),
                    CallResult::Future => {
                        self.future_names.insert(call_id, name.to_owned());
                        Answer::CallPending
                    }
                    CallResult::NotFound => Answer::Call(ExtFunctionResult::NotFound(name.to_owned())),
                    CallResult::NotHandled => {
                        return Err(invalid_argument(
                            "notHandled answers OS calls; answer a function call the host lacks with notFound",
                        ));
                    }
                    CallResult::EagerValue(value) => Answer::CallEager(Ok(value)),
                    CallResult::EagerException(exc) => Answer::CallEager(Err(exc)),
                })
            }
            (
                View::OsCall {
                    call,
                    call_id,
                    allow_eager_await,
                    ..
                },
                Request::ResumeOsCall(answer),
            ) => {
                check_eager(&answer, allow_eager_await)?;
                if let CallResult::Value(value) | CallResult::EagerValue(value) = &answer {
                    input::check_os_answer(call, value, "resumeOsCall value")?;
                }
                Ok(match answer {
                    CallResult::Value(value) => Answer::Os(ExtFunctionResult::Return(value)),
                    CallResult::Exception(exc) => Answer::Os(ExtFunctionResult::Error(exc)),
                    // monty refuses futures for calls that cannot take one,
                    // with a RuntimeError the sandbox sees.
                    CallResult::Future => Answer::Os(ExtFunctionResult::Future(call_id)),
                    CallResult::NotFound => Answer::Os(ExtFunctionResult::NotFound(match call {
                        OsFunctionCall::Import(module) => module.clone(),
                        other => other.name().to_owned(),
                    })),
                    CallResult::NotHandled => Answer::Os(ExtFunctionResult::Error(call.on_no_handler())),
                    CallResult::EagerValue(value) => Answer::OsEager(Ok(value)),
                    CallResult::EagerException(exc) => Answer::OsEager(Err(exc)),
                })
            }
            (View::NameLookup { .. }, Request::ResumeNameLookup(answer)) => Ok(Answer::Name(match answer {
                NameLookupResult::Value(value) => {
                    input::check_value(&value, "resumeNameLookup value")?;
                    MontyNameLookupResult::Value(value)
                }
                NameLookupResult::Undefined => MontyNameLookupResult::Undefined,
                NameLookupResult::Exception(exc) => MontyNameLookupResult::Error(exc),
            })),
            (View::ResolveFutures { pending, .. }, Request::ResolveFutures(results)) => {
                self.prepare_futures(pending, results)
            }
            (view, Request::Abort(exc)) if !matches!(view, View::Complete) => Ok(Answer::Abort(exc)),
            (view, request) => {
                let (name, needs) = match request {
                    Request::ResumeCall(_) => ("resumeCall", "a suspension at a function call"),
                    Request::ResumeOsCall(_) => ("resumeOsCall", "a suspension at an OS call"),
                    Request::ResumeNameLookup(_) => ("resumeNameLookup", "a suspension at a name lookup"),
                    Request::ResolveFutures(_) => ("resolveFutures", "a suspension on futures"),
                    Request::Abort(_) => ("abort", "a suspension"),
                    _ => ("this request", "a session that is not suspended"),
                };
                Err(Self::wrong_state(Some(view), name, needs))
            }
        }
    }

    fn prepare_futures(&mut self, pending: &[u32], results: Vec<(u32, CallResult)>) -> Result<Answer, ProtocolError> {
        // monty ends the run on an unknown call id; a host's mistake should
        // not cost it the run, so ids are checked here first.
        let mut seen = Vec::with_capacity(results.len());
        for (call_id, result) in &results {
            if !pending.contains(call_id) {
                return Err(invalid_argument(format!(
                    "call id {call_id} is not pending; pending ids are {pending:?}"
                )));
            }
            if seen.contains(call_id) {
                return Err(invalid_argument(format!("call id {call_id} is resolved twice")));
            }
            seen.push(*call_id);
            if matches!(
                result,
                CallResult::NotHandled | CallResult::EagerValue(_) | CallResult::EagerException(_)
            ) {
                return Err(invalid_argument(format!(
                    "call id {call_id}: a future resolves to a value, an exception, notFound or future"
                )));
            }
            if let CallResult::Value(value) = result {
                input::check_value(value, &format!("result of call id {call_id}"))?;
            }
        }
        let results = results
            .into_iter()
            .map(|(call_id, result)| {
                let result = match result {
                    CallResult::Value(value) => ExtFunctionResult::Return(value),
                    CallResult::Exception(exc) => ExtFunctionResult::Error(exc),
                    CallResult::Future => return (call_id, ExtFunctionResult::Future(call_id)),
                    CallResult::NotFound => ExtFunctionResult::NotFound(
                        self.future_names
                            .get(&call_id)
                            .cloned()
                            .unwrap_or_else(|| format!("<future {call_id}>")),
                    ),
                    CallResult::NotHandled | CallResult::EagerValue(_) | CallResult::EagerException(_) => {
                        unreachable!("refused above")
                    }
                };
                self.future_names.remove(&call_id);
                (call_id, result)
            })
            .collect();
        Ok(Answer::Futures(results))
    }

    /// Counts a new suspension and checks the limits monty leaves to the
    /// host; an exception means the run must be aborted with it.
    pub(crate) fn exceeds_host_limits(&mut self, view: View<'_>, limits: &ResourceLimits) -> Option<MontyException> {
        self.suspensions += 1;
        if let Some(exc) = self.suspension_limit(limits) {
            return Some(exc);
        }
        if let View::OsCall {
            call: OsFunctionCall::SystemSleep(duration),
            ..
        } = view
        {
            self.total_sleep = self.total_sleep.saturating_add(*duration);
            return self.sleep_limit(limits);
        }
        None
    }

    fn suspension_limit(&self, limits: &ResourceLimits) -> Option<MontyException> {
        let max = limits.max_suspensions as u64;
        (self.suspensions > max).then(|| {
            MontyException::new(
                ExcType::RuntimeError,
                Some(format!("suspension limit exceeded: more than {max} host round trips")),
            )
        })
    }

    fn sleep_limit(&self, limits: &ResourceLimits) -> Option<MontyException> {
        let max = limits.max_total_sleep?;
        (self.total_sleep > max).then(|| {
            MontyException::new(
                ExcType::TimeoutError,
                Some(format!("total sleep limit exceeded: {:?} > {max:?}", self.total_sleep)),
            )
        })
    }
}

/// The host-enforced limits of a session loaded from a dump: the load
/// request's, tightened by those the dump's tracker kept (a dump keeps its
/// writer's limits, and a load may only tighten them).
pub(crate) fn host_limits_after_load(requested: ResourceLimits, dumped: Option<&ResourceTracker>) -> ResourceLimits {
    let Some(dumped) = dumped else {
        return requested;
    };
    let max_total_sleep = match (requested.max_total_sleep, dumped.max_total_sleep()) {
        (Some(requested), Some(dumped)) => Some(requested.min(dumped)),
        (requested, dumped) => requested.or(dumped),
    };
    ResourceLimits {
        max_suspensions: requested.max_suspensions.min(dumped.max_suspensions()),
        max_total_sleep,
        ..requested
    }
}

/// Re-arms the feed and turn budgets of a suspension (`setLimits`).
pub(crate) fn rearm_time_budgets(tracker: &mut ResourceTracker, limits: &ResourceLimits) {
    if let Some(feed) = limits.max_feed_duration {
        tracker.set_max_feed_duration(feed);
    }
    if let Some(turn) = limits.max_turn_duration {
        tracker.set_max_turn_duration(turn);
    }
}

fn invalid_argument(message: impl Into<String>) -> ProtocolError {
    ProtocolError::new(ErrorCode::InvalidArgument, message)
}

fn check_eager(answer: &CallResult, allowed: bool) -> Result<(), ProtocolError> {
    if !allowed && matches!(answer, CallResult::EagerValue(_) | CallResult::EagerException(_)) {
        return Err(invalid_argument(
            "eagerValue / eagerException need a call with allowEagerAwait",
        ));
    }
    Ok(())
}
