//! REPL sessions: a state machine over `MontyRepl` and `ReplProgress`.
//!
//! Globals persist from one snippet to the next. A snippet that raises
//! leaves the session alive with its state (monty hands the REPL back with
//! the error); limits apply to every feed and call, and a snippet suspends
//! for the host exactly as a run does.

use monty::{MontyRepl, ReplProgress, ReplStartError, SessionRef};
use monty_types::{ResourceLimits, ResourceTracker, validate_cwd};

#[cfg(feature = "type-check")]
use super::typecheck::ReplTypeCheck;
use super::{
    Turn, input,
    suspension::{
        Answer, Flight, Suspension, describe_lending, host_limits_after_load, rearm_time_budgets, take_back_call_fields,
    },
};
use crate::{
    dump::{self, DumpKey, FlightRecord},
    protocol::{ErrorCode, Feed, FunctionCallEvent, OpenRepl, Outcome, ProtocolError, Request},
};

/// Checks a feed's named inputs before anything else looks at the feed.
fn check_feed_inputs(feed: &Feed) -> Result<(), ProtocolError> {
    for (name, value) in &feed.inputs {
        input::check_value(value, &format!("input {name:?}"))?;
    }
    Ok(())
}

enum Phase {
    Idle(Box<MontyRepl>),
    Suspended(Box<ReplProgress>),
}

/// A REPL and, mid-snippet, its suspension.
pub(crate) struct ReplSession {
    script_name: String,
    /// Always `Some` between requests; taken while monty holds the REPL.
    phase: Option<Phase>,
    limits: ResourceLimits,
    pub(crate) flight: Flight,
    #[cfg(feature = "type-check")]
    type_check: Option<ReplTypeCheck>,
}

impl ReplSession {
    /// Takes back what a response describing the snippet's function call
    /// was lent (see [`describe_lending`]).
    pub(crate) fn take_back_call_fields(&mut self, event: FunctionCallEvent) {
        if let Some(Phase::Suspended(progress)) = self.phase.as_mut() {
            take_back_call_fields(progress.as_mut(), event);
        }
    }

    /// Whether each snippet is type-checked before it runs.
    #[cfg(not(target_family = "wasm"))]
    pub(crate) fn type_checks(&self) -> bool {
        #[cfg(feature = "type-check")]
        return self.type_check.is_some();
        #[cfg(not(feature = "type-check"))]
        false
    }

    /// The host's limits for the REPL's feeds and calls.
    pub(crate) fn limits(&self) -> &ResourceLimits {
        &self.limits
    }

    pub(crate) fn open(open: OpenRepl) -> Result<Self, ProtocolError> {
        let cwd = validate_cwd(&open.cwd).map_err(|e| ProtocolError::new(ErrorCode::InvalidArgument, e))?;
        #[cfg(not(feature = "type-check"))]
        if open.type_check.is_some() {
            return Err(ProtocolError::new(
                ErrorCode::InvalidArgument,
                "this build of monty-wire has no type checker (the type-check feature is off)",
            ));
        }
        let tracker = ResourceTracker::new(open.limits.clone());
        let mut repl = MontyRepl::new(&open.script_name, tracker, open.compile_options).with_os_policy(open.os_policy);
        repl.set_cwd(&cwd);
        Ok(Self {
            script_name: open.script_name,
            phase: Some(Phase::Idle(Box::new(repl))),
            limits: open.limits,
            flight: Flight::default(),
            #[cfg(feature = "type-check")]
            type_check: open.type_check.map(ReplTypeCheck::new),
        })
    }

    /// A session restored from a dump of an idle or suspended REPL.
    pub(crate) fn restore(
        dump: monty::Dump,
        flight: FlightRecord,
        limits: ResourceLimits,
    ) -> Result<Self, ProtocolError> {
        let mut phase = match dump.state {
            monty::Session::Idle(repl) => Phase::Idle(repl),
            monty::Session::Suspended(progress) => Phase::Suspended(progress),
            monty::Session::Running(_) => unreachable!("run dumps restore into run sessions"),
        };
        // A dump keeps the limits its writer had; the host's may only tighten
        // them. A REPL's tracker can always change, so they apply at once.
        let tracker = match &mut phase {
            Phase::Idle(repl) => repl.tracker_mut(),
            Phase::Suspended(progress) => ReplProgress::tracker_mut(progress),
        };
        tracker.tighten_limits(&limits);
        let limits = host_limits_after_load(limits, Some(tracker));
        let flight = Flight::restore(flight, &limits);
        #[cfg(feature = "type-check")]
        let type_check = dump.type_check.map(|state| ReplTypeCheck {
            state,
            module_stubs: dump.module_stubs,
        });
        #[cfg(not(feature = "type-check"))]
        if dump.type_check.is_some() {
            return Err(ProtocolError::new(
                ErrorCode::InvalidDump,
                "the dump's REPL type-checks, and this build has no type checker",
            ));
        }
        Ok(Self {
            script_name: dump.script_name,
            phase: Some(phase),
            limits,
            flight,
            #[cfg(feature = "type-check")]
            type_check,
        })
    }

    fn phase(&self) -> &Phase {
        self.phase.as_ref().expect("the phase is back after every request")
    }

    fn wrong_state(&self, request: &str, needs: &str) -> ProtocolError {
        match self.phase() {
            Phase::Idle(_) => ProtocolError::new(
                ErrorCode::WrongState,
                format!("{request} needs {needs}, but the REPL is idle"),
            ),
            Phase::Suspended(progress) => Flight::wrong_state(Some(progress.view()), request, needs),
        }
    }

    /// Refuses `request` unless the REPL is idle.
    fn ensure_idle(&self, request: &str) -> Result<(), ProtocolError> {
        match self.phase() {
            Phase::Idle(_) => Ok(()),
            Phase::Suspended(_) => Err(self.wrong_state(request, "an idle REPL")),
        }
    }

    /// The idle REPL, taken out for a request that needs it.
    fn take_idle(&mut self, request: &str) -> Result<Box<MontyRepl>, ProtocolError> {
        self.ensure_idle(request)?;
        match self.phase.take() {
            Some(Phase::Idle(repl)) => Ok(repl),
            _ => unreachable!("checked above"),
        }
    }

    pub(crate) fn handle(
        &mut self,
        request: Request,
        key: &DumpKey,
        turn: &mut Turn<'_>,
        #[cfg(feature = "type-check")] checker: &mut Option<Box<monty_type_checking::TypeChecker>>,
    ) -> Result<Outcome, ProtocolError> {
        match request {
            Request::FeedRun(feed) => {
                self.ensure_idle("feedRun")?;
                check_feed_inputs(&feed)?;
                #[cfg(feature = "type-check")]
                if let Some(report) = self.type_check_feed(&feed, checker)? {
                    return Ok(report);
                }
                let mut repl = self.take_idle("feedRun")?;
                self.flight.begin();
                let result = turn.run(|print| repl.feed_run(&feed.code, feed.inputs, print));
                self.phase = Some(Phase::Idle(repl));
                Ok(match result {
                    Ok(value) => {
                        self.finish_snippet(true);
                        Outcome::Complete(value)
                    }
                    Err(exc) => {
                        self.finish_snippet(false);
                        Outcome::PythonError(exc)
                    }
                })
            }
            Request::FeedStart(feed) => {
                self.ensure_idle("feedStart")?;
                check_feed_inputs(&feed)?;
                #[cfg(feature = "type-check")]
                if let Some(report) = self.type_check_feed(&feed, checker)? {
                    return Ok(report);
                }
                let repl = self.take_idle("feedStart")?;
                self.flight.begin();
                let result = turn.run(|print| repl.feed_start(&feed.code, feed.inputs, print));
                Ok(self.settle(result, turn))
            }
            Request::ListFunctions => match self.phase() {
                Phase::Idle(repl) => Ok(Outcome::FunctionNames(
                    repl.function_names().into_iter().map(str::to_owned).collect(),
                )),
                Phase::Suspended(_) => Err(self.wrong_state("listFunctions", "an idle REPL")),
            },
            Request::CallFunction { name, args } => {
                self.ensure_idle("callFunction")?;
                input::check_values(&args, "argument")?;
                let mut repl = self.take_idle("callFunction")?;
                self.flight.begin();
                let result = turn.run(|print| repl.call_function(&name, args, print));
                self.phase = Some(Phase::Idle(repl));
                Ok(match result {
                    Ok(value) => Outcome::Complete(value),
                    Err(exc) => Outcome::PythonError(exc),
                })
            }
            Request::SetLimits(limits) => {
                match self.phase.as_mut().expect("the phase is back after every request") {
                    Phase::Idle(repl) => *repl.tracker_mut() = ResourceTracker::new(limits.clone()),
                    Phase::Suspended(progress) => {
                        rearm_time_budgets(ReplProgress::tracker_mut(progress), &limits);
                        self.flight.limits_changed(&limits);
                    }
                }
                self.limits = limits;
                Ok(Outcome::Ok)
            }
            Request::DumpSession => {
                let state = match self.phase() {
                    Phase::Idle(repl) => SessionRef::Idle(repl),
                    Phase::Suspended(progress) => SessionRef::Suspended(progress),
                };
                #[cfg(feature = "type-check")]
                let (type_check, module_stubs) = match &self.type_check {
                    Some(check) => (Some(&check.state), check.module_stubs.as_slice()),
                    None => (None, &[][..]),
                };
                #[cfg(not(feature = "type-check"))]
                let (type_check, module_stubs) = (None, &[][..]);
                let flight = self.flight.record();
                dump::dump_session(state, &self.script_name, type_check, module_stubs, &flight, key)
                    .map(|message| Outcome::Dump(message.into_bytes()))
                    .map_err(Into::into)
            }
            resume @ (Request::ResumeCall(_)
            | Request::ResumeOsCall(_)
            | Request::ResumeNameLookup(_)
            | Request::ResolveFutures(_)
            | Request::Abort(_)) => {
                let Some(Phase::Suspended(progress)) = self.phase.as_ref() else {
                    return Err(self.wrong_state("this request", "a suspended snippet"));
                };
                let answer = self.flight.prepare(progress.view(), resume)?;
                let Some(Phase::Suspended(progress)) = self.phase.take() else {
                    unreachable!("checked above")
                };
                let result = turn.run(|print| progress.answer(answer, print));
                Ok(self.settle(result, turn))
            }
            _ => Err(ProtocolError::new(
                ErrorCode::WrongState,
                "a REPL session takes REPL requests; open another session for a one-shot run",
            )),
        }
    }

    /// Type-checks a snippet in a session that checks; a report with
    /// diagnostics is the response, and the snippet does not run. A snippet
    /// fed with `skipTypeCheck` is not checked, but what it declares still
    /// counts for later checks once it has run. The checker is made on the
    /// session's first check.
    #[cfg(feature = "type-check")]
    fn type_check_feed(
        &mut self,
        feed: &Feed,
        checker: &mut Option<Box<monty_type_checking::TypeChecker>>,
    ) -> Result<Option<Outcome>, ProtocolError> {
        let Some(check) = self.type_check.as_mut() else {
            return Ok(None);
        };
        let Phase::Idle(repl) = self.phase.as_ref().expect("the phase is back after every request") else {
            return Ok(None);
        };
        if feed.skip_type_check {
            check.hold(&feed.code);
            return Ok(None);
        }
        let checker = super::typecheck::checker_in(checker);
        let report = check.check_snippet(checker, &feed.code, &repl.next_script_name())?;
        Ok((!report.diagnostics.is_empty()).then_some(Outcome::TypeCheckReport(report)))
    }

    /// A snippet ended: what it declared counts for later checks only if it
    /// succeeded.
    fn finish_snippet(&mut self, succeeded: bool) {
        #[cfg(feature = "type-check")]
        if let Some(check) = self.type_check.as_mut() {
            if succeeded {
                check.commit();
            } else {
                check.discard();
            }
        }
        #[cfg(not(feature = "type-check"))]
        let _ = succeeded;
    }

    fn settle(&mut self, mut result: Result<ReplProgress, Box<ReplStartError>>, turn: &mut Turn<'_>) -> Outcome {
        loop {
            let mut progress = match result {
                Err(failed) => {
                    let ReplStartError { repl, error } = *failed;
                    self.phase = Some(Phase::Idle(Box::new(repl)));
                    self.finish_snippet(false);
                    return Outcome::PythonError(error);
                }
                Ok(ReplProgress::Complete { repl, value }) => {
                    self.phase = Some(Phase::Idle(Box::new(repl)));
                    self.finish_snippet(true);
                    return Outcome::Complete(value);
                }
                Ok(progress) => progress,
            };
            if let Some(exc) = self.flight.exceeds_host_limits(progress.view(), &self.limits) {
                result = turn.run(|print| progress.answer(Answer::Abort(exc), print));
                continue;
            }
            let outcome = describe_lending(&mut progress);
            self.phase = Some(Phase::Suspended(Box::new(progress)));
            return outcome;
        }
    }
}

#[cfg(all(test, feature = "type-check"))]
mod tests {
    use crate::{
        protocol::{Feed, OpenRepl, Outcome, Request, TypeCheckOptions},
        session::Session,
    };

    fn session_with(type_check: Option<TypeCheckOptions>) -> Session {
        let mut session = Session::new();
        let open = OpenRepl {
            type_check,
            ..OpenRepl::default()
        };
        let response = session.handle(Request::OpenRepl(Box::new(open)));
        assert!(matches!(response.outcome, Outcome::Ok), "{:?}", response.outcome);
        session
    }

    fn feed(session: &mut Session, code: &str) -> Outcome {
        session.handle(Request::FeedRun(Feed::new(code))).outcome
    }

    #[test]
    fn a_repl_without_type_checking_never_builds_a_checker() {
        let mut session = session_with(None);
        assert!(matches!(feed(&mut session, "x = 1"), Outcome::Complete(_)));
        assert!(matches!(feed(&mut session, "x + 1"), Outcome::Complete(_)));
        assert!(session.checker.is_none());
    }

    #[test]
    fn a_type_checking_repl_builds_its_checker_on_the_first_check() {
        let mut session = session_with(Some(TypeCheckOptions::default()));
        assert!(session.checker.is_none());
        assert!(matches!(feed(&mut session, "x = 1"), Outcome::Complete(_)));
        assert!(session.checker.is_some());
        assert!(matches!(feed(&mut session, "x.nope"), Outcome::TypeCheckReport(_)));
    }
}
