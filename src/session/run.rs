//! One-shot runs: a state machine over `MontyRun` and `RunProgress`.
//!
//! A run session keeps its compiled program for its whole life and starts a
//! copy of it for every run, so one compile serves many runs. Every request
//! is checked against the current phase before anything is taken out of it,
//! so a refused request leaves the session exactly as it was.

use std::{collections::HashMap, time::Duration};

use monty::{MontyRun, RunProgress};
use monty_types::{
    ExcType, ExtFunctionResult, MontyException, NameLookupResult as MontyNameLookupResult, OsFunctionCall,
    ResourceLimits, ResourceTracker, validate_cwd,
};

use super::Turn;
use crate::{
    dump,
    protocol::{
        CallResult, ErrorCode, FunctionCallEvent, NameLookupEvent, NameLookupResult, OpenRun, OsCallEvent, Outcome,
        ProtocolError, Request, ResolveFuturesEvent,
    },
};

/// A compiled program and, between `start` and its end, the run in flight.
pub(crate) struct RunSession {
    program: MontyRun,
    limits: ResourceLimits,
    phase: Phase,
    /// Interpreter time of the current run, over all its requests.
    pub(crate) feed_elapsed: Duration,
    /// Host round trips of the current run (the host-enforced `max_suspensions`).
    pub(crate) suspensions: u64,
    /// `system.sleep` time of the current run (the host-enforced `max_total_sleep`).
    total_sleep: Duration,
    /// Names of function calls the host turned into futures, so that a
    /// future resolved as "not found" raises a `NameError` naming the function.
    future_names: HashMap<u32, String>,
}

enum Phase {
    Ready,
    /// Never holds `RunProgress::Complete`: a completed run is `Ready` again.
    Suspended(Box<RunProgress>),
}

impl RunSession {
    /// Compiles `open.code`. A syntax error is the host's Python error, not a
    /// protocol error: it comes back as `pythonError`.
    pub(crate) fn open(open: OpenRun, turn: &mut Turn<'_>) -> Result<Result<Self, MontyException>, ProtocolError> {
        let cwd = validate_cwd(&open.cwd).map_err(|e| ProtocolError::new(ErrorCode::InvalidArgument, e))?;
        let OpenRun {
            code,
            script_name,
            input_names,
            compile_options,
            limits,
            os_policy,
            ..
        } = open;
        let compiled = turn.time(|| MontyRun::new(code, &script_name, input_names, compile_options));
        Ok(compiled.map(|program| {
            let mut program = program.with_os_policy(os_policy);
            program.set_cwd(&cwd);
            Self::new(program, limits)
        }))
    }

    /// A session around a program from [`dump::load_program`].
    pub(crate) fn load(dump: &[u8], limits: ResourceLimits) -> Result<Self, ProtocolError> {
        let program =
            dump::load_program(dump).map_err(|e| ProtocolError::new(ErrorCode::InvalidDump, e.to_string()))?;
        Ok(Self::new(program, limits))
    }

    fn new(program: MontyRun, limits: ResourceLimits) -> Self {
        Self {
            program,
            limits,
            phase: Phase::Ready,
            feed_elapsed: Duration::ZERO,
            suspensions: 0,
            total_sleep: Duration::ZERO,
            future_names: HashMap::new(),
        }
    }

    /// Handles every request a run session accepts.
    pub(crate) fn handle(&mut self, request: Request, turn: &mut Turn<'_>) -> Result<Outcome, ProtocolError> {
        match request {
            Request::OpenRun(_) | Request::LoadProgram { .. } => Err(ProtocolError::new(
                ErrorCode::WrongState,
                "the session already holds a program; open another session for another program",
            )),
            Request::Run(inputs) => {
                self.expect_ready("run")?;
                self.begin_run();
                let tracker = ResourceTracker::new(self.limits.clone());
                let program = &mut self.program;
                Ok(match turn.run(|print| program.run(inputs, tracker, print)) {
                    Ok(value) => Outcome::Complete(value),
                    Err(exc) => Outcome::PythonError(exc),
                })
            }
            Request::Start(inputs) => {
                self.expect_ready("start")?;
                self.begin_run();
                let tracker = ResourceTracker::new(self.limits.clone());
                let program = self.program.clone();
                let progress = turn.run(|print| program.start(inputs, tracker, print));
                Ok(self.settle(progress, turn))
            }
            Request::ResumeCall(answer) => self.resume_call(answer, turn),
            Request::ResumeOsCall(answer) => self.resume_os_call(answer, turn),
            Request::ResumeNameLookup(answer) => self.resume_name_lookup(answer, turn),
            Request::ResolveFutures(results) => self.resolve_futures(results, turn),
            Request::Abort(exc) => {
                if !matches!(self.phase, Phase::Suspended(_)) {
                    return Err(self.wrong_state("abort", "a suspended run"));
                }
                let progress = self.take_progress();
                let result = turn.run(|print| abort(progress, exc, print));
                Ok(self.settle(result, turn))
            }
            Request::SetLimits(limits) => self.set_limits(limits),
            Request::DumpProgram => dump::dump_program(&self.program)
                .map(|message| Outcome::Dump(message.as_bytes().to_vec()))
                .map_err(|e| ProtocolError::new(ErrorCode::ResponseTooLarge, e.to_string())),
        }
    }

    fn expect_ready(&self, request: &str) -> Result<(), ProtocolError> {
        match self.phase {
            Phase::Ready => Ok(()),
            Phase::Suspended(_) => Err(self.wrong_state(request, "a run that is not in flight")),
        }
    }

    /// The run in flight, if any.
    fn in_flight(&self) -> Option<&RunProgress> {
        match &self.phase {
            Phase::Ready => None,
            Phase::Suspended(progress) => Some(progress),
        }
    }

    fn wrong_state(&self, request: &str, needs: &str) -> ProtocolError {
        let now = match self.in_flight() {
            None => "ready (no run in flight)",
            Some(RunProgress::FunctionCall(_)) => "suspended at a function call",
            Some(RunProgress::OsCall(_)) => "suspended at an OS call",
            Some(RunProgress::NameLookup(_)) => "suspended at a name lookup",
            Some(RunProgress::ResolveFutures(_)) => "suspended on futures",
            Some(RunProgress::Complete(_)) => "complete",
        };
        ProtocolError::new(
            ErrorCode::WrongState,
            format!("{request} needs {needs}, but the session is {now}"),
        )
    }

    fn begin_run(&mut self) {
        self.feed_elapsed = Duration::ZERO;
        self.suspensions = 0;
        self.total_sleep = Duration::ZERO;
        self.future_names.clear();
    }

    /// Takes the suspended progress out, leaving the session ready. Callers
    /// have already checked the phase.
    fn take_progress(&mut self) -> RunProgress {
        match std::mem::replace(&mut self.phase, Phase::Ready) {
            Phase::Suspended(progress) => *progress,
            Phase::Ready => unreachable!("callers check that a run is suspended"),
        }
    }

    /// Turns what monty returned into the response, enforcing the limits
    /// monty leaves to the host (suspensions, total sleep).
    fn settle(&mut self, mut result: Result<RunProgress, MontyException>, turn: &mut Turn<'_>) -> Outcome {
        loop {
            let progress = match result {
                Err(exc) => return Outcome::PythonError(exc),
                Ok(RunProgress::Complete(value)) => return Outcome::Complete(value),
                Ok(progress) => progress,
            };
            self.suspensions += 1;
            if let Some(exc) = self.host_limit_exceeded(&progress) {
                // `abort` raises uncatchably, so the sandbox cannot swallow
                // the limit; it always ends the run.
                result = turn.run(|print| abort(progress, exc, print));
                continue;
            }
            let outcome = describe(&progress);
            self.phase = Phase::Suspended(Box::new(progress));
            return outcome;
        }
    }

    fn host_limit_exceeded(&mut self, progress: &RunProgress) -> Option<MontyException> {
        let max = self.limits.max_suspensions as u64;
        if self.suspensions > max {
            return Some(MontyException::new(
                ExcType::RuntimeError,
                Some(format!("suspension limit exceeded: more than {max} host round trips")),
            ));
        }
        if let RunProgress::OsCall(call) = progress
            && let OsFunctionCall::SystemSleep(duration) = call.function_call
        {
            self.total_sleep = self.total_sleep.saturating_add(duration);
            if let Some(max) = self.limits.max_total_sleep
                && self.total_sleep > max
            {
                return Some(MontyException::new(
                    ExcType::TimeoutError,
                    Some(format!("total sleep limit exceeded: {:?} > {max:?}", self.total_sleep)),
                ));
            }
        }
        None
    }

    fn resume_call(&mut self, answer: CallResult, turn: &mut Turn<'_>) -> Result<Outcome, ProtocolError> {
        let Some(RunProgress::FunctionCall(call)) = self.in_flight() else {
            return Err(self.wrong_state("resumeCall", "a run suspended at a function call"));
        };
        if matches!(answer, CallResult::NotHandled) {
            return Err(invalid_argument(
                "notHandled answers OS calls; answer a function call the host lacks with notFound",
            ));
        }
        check_eager(&answer, call.allow_eager_await)?;
        let RunProgress::FunctionCall(call) = self.take_progress() else {
            unreachable!("checked above")
        };
        let result = match answer {
            CallResult::Value(value) => turn.run(|print| call.resume(ExtFunctionResult::Return(value), print)),
            CallResult::Exception(exc) => turn.run(|print| call.resume(ExtFunctionResult::Error(exc), print)),
            CallResult::Future => {
                self.future_names.insert(call.call_id, call.function_name.clone());
                turn.run(|print| call.resume_pending(print))
            }
            CallResult::NotFound => {
                let name = call.function_name.clone();
                turn.run(|print| call.resume(ExtFunctionResult::NotFound(name), print))
            }
            CallResult::EagerValue(value) => turn.run(|print| call.resume_eager(Ok(value), print)),
            CallResult::EagerException(exc) => turn.run(|print| call.resume_eager(Err(exc), print)),
            CallResult::NotHandled => unreachable!("refused above"),
        };
        Ok(self.settle(result, turn))
    }

    fn resume_os_call(&mut self, answer: CallResult, turn: &mut Turn<'_>) -> Result<Outcome, ProtocolError> {
        let Some(RunProgress::OsCall(call)) = self.in_flight() else {
            return Err(self.wrong_state("resumeOsCall", "a run suspended at an OS call"));
        };
        check_eager(&answer, call.allow_eager_await)?;
        let RunProgress::OsCall(call) = self.take_progress() else {
            unreachable!("checked above")
        };
        let result = match answer {
            CallResult::Value(value) => turn.run(|print| call.resume(ExtFunctionResult::Return(value), print)),
            CallResult::Exception(exc) => turn.run(|print| call.resume(ExtFunctionResult::Error(exc), print)),
            // monty itself refuses futures for calls that cannot take one,
            // with a RuntimeError the sandbox sees.
            CallResult::Future => {
                let call_id = call.call_id;
                turn.run(|print| call.resume(ExtFunctionResult::Future(call_id), print))
            }
            CallResult::NotFound => {
                let name = match &call.function_call {
                    OsFunctionCall::Import(module) => module.clone(),
                    other => other.name().to_owned(),
                };
                turn.run(|print| call.resume(ExtFunctionResult::NotFound(name), print))
            }
            CallResult::NotHandled => {
                let exc = call.function_call.on_no_handler();
                turn.run(|print| call.resume(ExtFunctionResult::Error(exc), print))
            }
            CallResult::EagerValue(value) => turn.run(|print| call.resume_eager(Ok(value), print)),
            CallResult::EagerException(exc) => turn.run(|print| call.resume_eager(Err(exc), print)),
        };
        Ok(self.settle(result, turn))
    }

    fn resume_name_lookup(&mut self, answer: NameLookupResult, turn: &mut Turn<'_>) -> Result<Outcome, ProtocolError> {
        if !matches!(self.in_flight(), Some(RunProgress::NameLookup(_))) {
            return Err(self.wrong_state("resumeNameLookup", "a run suspended at a name lookup"));
        }
        let RunProgress::NameLookup(lookup) = self.take_progress() else {
            unreachable!("checked above")
        };
        let answer = match answer {
            NameLookupResult::Value(value) => MontyNameLookupResult::Value(value),
            NameLookupResult::Undefined => MontyNameLookupResult::Undefined,
            NameLookupResult::Exception(exc) => MontyNameLookupResult::Error(exc),
        };
        let result = turn.run(|print| lookup.resume(answer, print));
        Ok(self.settle(result, turn))
    }

    fn resolve_futures(
        &mut self,
        results: Vec<(u32, CallResult)>,
        turn: &mut Turn<'_>,
    ) -> Result<Outcome, ProtocolError> {
        let Some(RunProgress::ResolveFutures(pending)) = self.in_flight() else {
            return Err(self.wrong_state("resolveFutures", "a run suspended on futures"));
        };
        // monty ends the run on an unknown call id; a host's mistake should
        // not cost it the run, so ids are checked here first.
        let pending_ids = pending.pending_call_ids();
        let mut seen = Vec::with_capacity(results.len());
        for (call_id, result) in &results {
            if !pending_ids.contains(call_id) {
                return Err(invalid_argument(format!(
                    "call id {call_id} is not pending; pending ids are {pending_ids:?}"
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
        }
        let RunProgress::ResolveFutures(pending) = self.take_progress() else {
            unreachable!("checked above")
        };
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
        let result = turn.run(|print| pending.resume(results, print));
        Ok(self.settle(result, turn))
    }

    /// Ready: the limits of the next run. At a function call: the feed and
    /// turn budgets restart from now with the new durations, and the
    /// host-enforced limits apply at once.
    fn set_limits(&mut self, limits: ResourceLimits) -> Result<Outcome, ProtocolError> {
        let at_other_suspension = matches!(
            self.in_flight(),
            Some(RunProgress::OsCall(_) | RunProgress::NameLookup(_) | RunProgress::ResolveFutures(_))
        );
        if at_other_suspension {
            return Err(self.wrong_state(
                "setLimits",
                "a ready session or a run suspended at a function call (monty re-arms time budgets only there)",
            ));
        }
        match &mut self.phase {
            Phase::Ready => {}
            Phase::Suspended(progress) => {
                if let RunProgress::FunctionCall(call) = progress.as_mut() {
                    let tracker = call.tracker_mut();
                    if let Some(feed) = limits.max_feed_duration {
                        tracker.set_max_feed_duration(feed);
                    }
                    if let Some(turn) = limits.max_turn_duration {
                        tracker.set_max_turn_duration(turn);
                    }
                }
            }
        }
        self.limits = limits;
        Ok(Outcome::Ok)
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

fn abort(
    progress: RunProgress,
    exc: MontyException,
    print: monty_types::PrintWriter<'_>,
) -> Result<RunProgress, MontyException> {
    match progress {
        RunProgress::FunctionCall(call) => call.abort(exc, print),
        RunProgress::OsCall(call) => call.abort(exc, print),
        RunProgress::NameLookup(lookup) => lookup.abort(exc, print),
        RunProgress::ResolveFutures(pending) => pending.abort(exc, print),
        RunProgress::Complete(_) => Err(exc),
    }
}

/// The response for a suspension; the progress itself stays in the session.
fn describe(progress: &RunProgress) -> Outcome {
    match progress {
        RunProgress::FunctionCall(call) => Outcome::FunctionCall(FunctionCallEvent {
            name: call.function_name.clone(),
            args: call.args.clone(),
            call_id: call.call_id,
            object_id: call.object_id,
            allow_eager_await: call.allow_eager_await,
            position: call.position.clone(),
        }),
        RunProgress::OsCall(call) => Outcome::OsCall(OsCallEvent {
            call: call.function_call.clone(),
            call_id: call.call_id,
            allow_eager_await: call.allow_eager_await,
            position: call.position.clone(),
        }),
        RunProgress::NameLookup(lookup) => Outcome::NameLookup(NameLookupEvent {
            name: lookup.name.clone(),
            object_id: lookup.object_id(),
            position: lookup.position.clone(),
        }),
        RunProgress::ResolveFutures(pending) => Outcome::ResolveFutures(ResolveFuturesEvent {
            pending_call_ids: pending.pending_call_ids().to_vec(),
            position: pending.position().clone(),
        }),
        RunProgress::Complete(value) => Outcome::Complete(value.clone()),
    }
}
