//! One-shot runs: a state machine over `MontyRun` and `RunProgress`.
//!
//! A run session keeps its compiled program for its whole life and starts a
//! copy of it for every run, so one compile serves many runs. Every request
//! is checked against the current phase before anything is taken out of it,
//! so a refused request leaves the session exactly as it was.

use monty::{MontyRun, RunProgress, SessionRef};
use monty_types::{MontyException, ResourceLimits, ResourceTracker, validate_cwd};

use super::{
    Turn, input,
    suspension::{
        Answer, Flight, Suspension, describe_lending, host_limits_after_load, rearm_time_budgets, take_back_call_fields,
    },
};
use crate::{
    codec::DecodeLimits,
    dump::{self, DumpKey, FlightRecord},
    protocol::{ErrorCode, FunctionCallEvent, OpenRun, Outcome, ProtocolError, Request},
};

/// A compiled program and, between `start` and its end, the run in flight.
pub(crate) struct RunSession {
    /// `None` for a session loaded from the dump of a run in flight: it can
    /// finish that run but has no program to start again.
    program: Option<MontyRun>,
    /// Recorded in session dumps.
    script_name: String,
    limits: ResourceLimits,
    /// A load request's limits that monty's tracker has not taken yet: monty
    /// lets a run's tracker change only at a function call, so a run loaded
    /// at another suspension takes them at its first function call.
    pending_limits: Option<ResourceLimits>,
    /// The run in flight; never `RunProgress::Complete`.
    in_flight: Option<Box<RunProgress>>,
    pub(crate) flight: Flight,
}

impl RunSession {
    /// The host's limits for the run's requests.
    pub(crate) fn limits(&self) -> &ResourceLimits {
        &self.limits
    }

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
            Self::new(Some(program), script_name, limits, None)
        }))
    }

    /// A session around a program from [`dump::load_program`].
    pub(crate) fn load(
        dump: &[u8],
        key: &DumpKey,
        decode_limits: &DecodeLimits,
        limits: ResourceLimits,
    ) -> Result<Self, ProtocolError> {
        let program = dump::load_program(dump, key, decode_limits)?;
        Ok(Self::new(Some(program), String::new(), limits, None))
    }

    /// A session around a run in flight, restored from a session dump.
    pub(crate) fn resume_loaded(
        progress: Box<RunProgress>,
        script_name: String,
        flight: FlightRecord,
        limits: ResourceLimits,
    ) -> Self {
        // The limits the host enforces itself apply from the next request;
        // the ones monty enforces wait until its tracker can take them.
        let host_limits = host_limits_after_load(limits.clone(), progress.tracker());
        let mut session = Self::new(None, script_name, host_limits, Some(progress));
        session.flight = Flight::restore(flight, &session.limits);
        session.pending_limits = Some(limits);
        if let Some(progress) = session.in_flight.as_deref_mut() {
            take_pending_limits(&mut session.pending_limits, progress);
        }
        session
    }

    fn new(
        program: Option<MontyRun>,
        script_name: String,
        limits: ResourceLimits,
        in_flight: Option<Box<RunProgress>>,
    ) -> Self {
        Self {
            program,
            script_name,
            limits,
            pending_limits: None,
            in_flight,
            flight: Flight::default(),
        }
    }

    /// Handles every request a run session accepts.
    pub(crate) fn handle(
        &mut self,
        request: Request,
        key: &DumpKey,
        turn: &mut Turn<'_>,
    ) -> Result<Outcome, ProtocolError> {
        match request {
            Request::Run(inputs) => {
                self.check_ready("run")?;
                input::check_values(&inputs, "input")?;
                self.flight.begin();
                let tracker = ResourceTracker::new(self.limits.clone());
                let program = self.program.as_mut().expect("check_ready found the program");
                let result = turn.run(|print| program.run(inputs, tracker, print));
                Ok(match result {
                    Ok(value) => Outcome::Complete(value),
                    Err(exc) => Outcome::PythonError(exc),
                })
            }
            Request::Start(inputs) => {
                self.check_ready("start")?;
                input::check_values(&inputs, "input")?;
                self.flight.begin();
                let tracker = ResourceTracker::new(self.limits.clone());
                let program = self.program.clone().expect("check_ready found the program");
                let progress = turn.run(|print| program.start(inputs, tracker, print));
                Ok(self.settle(progress, turn))
            }
            Request::SetLimits(limits) => {
                if let Some(progress) = self.in_flight.as_deref_mut() {
                    let Some(tracker) = progress.tracker_mut() else {
                        return Err(Flight::wrong_state(
                            Some(progress.view()),
                            "setLimits",
                            "a ready session or a run suspended at a function call (monty re-arms time budgets only there)",
                        ));
                    };
                    rearm_time_budgets(tracker, &limits);
                    self.flight.limits_changed(&limits);
                }
                self.limits = limits;
                Ok(Outcome::Ok)
            }
            Request::DumpProgram => {
                let program = self.program.as_ref().ok_or_else(no_program)?;
                dump::dump_program(program, key)
                    .map(|message| Outcome::Dump(message.into_bytes()))
                    .map_err(Into::into)
            }
            Request::DumpSession => {
                let Some(progress) = self.in_flight.as_deref() else {
                    return Err(ProtocolError::new(
                        ErrorCode::WrongState,
                        "dumpSession needs a run in flight; a ready run session is saved with dumpProgram",
                    ));
                };
                dump::dump_session(
                    SessionRef::Running(progress),
                    &self.script_name,
                    None,
                    &[],
                    &self.flight.record(),
                    key,
                )
                .map(|message| Outcome::Dump(message.into_bytes()))
                .map_err(Into::into)
            }
            resume @ (Request::ResumeCall(_)
            | Request::ResumeOsCall(_)
            | Request::ResumeNameLookup(_)
            | Request::ResolveFutures(_)
            | Request::Abort(_)) => {
                let Some(progress) = self.in_flight.as_deref() else {
                    return Err(Flight::wrong_state(None, "this request", "a suspended run"));
                };
                let answer = self.flight.prepare(progress.view(), resume)?;
                let progress = self.in_flight.take().expect("checked above");
                let result = turn.run(|print| progress.answer(answer, print));
                Ok(self.settle(result, turn))
            }
            _ => Err(ProtocolError::new(
                ErrorCode::WrongState,
                "a run session takes run requests; open another session for a REPL or another program",
            )),
        }
    }

    /// Takes back what a response describing the run's function call was
    /// lent (see [`describe_lending`]).
    pub(crate) fn take_back_call_fields(&mut self, event: FunctionCallEvent) {
        if let Some(progress) = self.in_flight.as_deref_mut() {
            take_back_call_fields(progress, event);
        }
    }

    /// The run's suspension, if one is in flight.
    #[cfg(test)]
    pub(crate) fn suspension_view(&self) -> Option<super::suspension::View<'_>> {
        self.in_flight.as_deref().map(Suspension::view)
    }

    /// Whether a run can begin: a program, and no run in flight.
    fn check_ready(&self, request: &str) -> Result<(), ProtocolError> {
        if let Some(progress) = self.in_flight.as_deref() {
            return Err(Flight::wrong_state(
                Some(progress.view()),
                request,
                "a run that is not in flight",
            ));
        }
        self.program.as_ref().map(|_| ()).ok_or_else(no_program)
    }

    /// Turns what monty returned into the response, enforcing the limits
    /// monty leaves to the host.
    fn settle(&mut self, mut result: Result<RunProgress, MontyException>, turn: &mut Turn<'_>) -> Outcome {
        loop {
            let mut progress = match result {
                Err(exc) => return Outcome::PythonError(exc),
                Ok(RunProgress::Complete(value)) => return Outcome::Complete(value),
                Ok(progress) => progress,
            };
            take_pending_limits(&mut self.pending_limits, &mut progress);
            if let Some(exc) = self.flight.exceeds_host_limits(progress.view(), &self.limits) {
                // `abort` raises uncatchably, so the sandbox cannot swallow
                // the limit; it always ends the run.
                result = turn.run(|print| progress.answer(Answer::Abort(exc), print));
                continue;
            }
            let outcome = describe_lending(&mut progress);
            self.in_flight = Some(Box::new(progress));
            return outcome;
        }
    }
}

/// Tightens the run's tracker to a load request's limits once monty lets it
/// change (see `RunSession::pending_limits`).
fn take_pending_limits(pending: &mut Option<ResourceLimits>, progress: &mut RunProgress) {
    if let Some(limits) = pending.as_ref()
        && let Some(tracker) = progress.tracker_mut()
    {
        tracker.tighten_limits(limits);
        *pending = None;
    }
}

fn no_program() -> ProtocolError {
    ProtocolError::new(
        ErrorCode::WrongState,
        "this session was loaded from the dump of a run in flight and has no program to start again",
    )
}
