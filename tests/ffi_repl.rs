//! REPL sessions, dumps (idle, mid-feed and mid-run; sealed and not) and
//! type checking, through the C entry points.

mod common;

use std::time::Duration;

use common::{Host, complete, expect_code, function_call, os_call, python_error, with_big_stack};
use monty::{DUMP_VERSION, MIN_SUPPORTED_DUMP_VERSION, ReplContinuationMode};
use monty_types::{
    ExcType, MONTY_VERSION, ModuleStub, MontyException, MontyObject, MontyUuid, OsFunctionCall, ResourceLimits,
    TypeCheckingFormat,
};
use monty_wire::protocol::{
    CallResult, ErrorCode, Feed, NameLookupResult, OpenRepl, OpenRun, Outcome, Request, Response, Severity, TypeCheck,
    TypeCheckOptions, TypeCheckReport,
};

fn int(i: i64) -> MontyObject {
    MontyObject::int(i)
}

fn repl_with(open: OpenRepl) -> Host {
    let host = Host::new();
    let response = host.send(&Request::OpenRepl(Box::new(open)));
    assert!(matches!(response.outcome, Outcome::Ok), "{:?}", response.outcome);
    host
}

fn repl() -> Host {
    repl_with(OpenRepl::default())
}

fn feed_run(host: &Host, code: &str) -> Response {
    host.send(&Request::FeedRun(Feed::new(code)))
}

fn feed_start(host: &Host, code: &str) -> Response {
    host.send(&Request::FeedStart(Feed::new(code)))
}

fn dump_of(response: Response) -> Vec<u8> {
    match response.outcome {
        Outcome::Dump(bytes) => bytes,
        other => panic!("expected a dump, got {other:?}"),
    }
}

fn load(dump: Vec<u8>) -> Host {
    load_with(dump, ResourceLimits::default()).0
}

/// Loads `dump` into a new session under `limits`; also returns the load's
/// response, whose usage shows the restored bookkeeping.
fn load_with(dump: Vec<u8>, limits: ResourceLimits) -> (Host, Response) {
    let host = Host::new();
    let response = host.send(&Request::LoadSession {
        dump,
        limits,
        access: Default::default(),
    });
    assert!(matches!(response.outcome, Outcome::Ok), "{:?}", response.outcome);
    (host, response)
}

fn message_of(exc: &MontyException) -> &str {
    exc.message().unwrap_or_default()
}

fn report(response: Response) -> TypeCheckReport {
    match response.outcome {
        Outcome::TypeCheckReport(report) => report,
        other => panic!("expected a type-check report, got {other:?}"),
    }
}

#[test]
fn variables_persist_across_feeds_and_errors_keep_the_session() {
    let host = repl();
    assert_eq!(complete(feed_run(&host, "x = 40")), MontyObject::none());
    assert_eq!(
        complete(feed_run(&host, "def add(n):\n    return x + n")),
        MontyObject::none()
    );
    let exc = python_error(feed_run(&host, "x = 1\nraise ValueError('kept')"));
    assert_eq!(exc.exc_type(), ExcType::ValueError);
    // The assignment before the error stays, as in CPython's REPL.
    assert_eq!(complete(feed_run(&host, "add(1)")), int(2));
    let response = feed_run(&host, "print('out')\nx");
    assert_eq!(response.output[0].text, "out\n");
    assert_eq!(complete(response), int(1));
}

#[test]
fn feeds_take_named_inputs() {
    let host = repl();
    let mut feed = Feed::new("a + b");
    feed.inputs = vec![("a".into(), int(2)), ("b".into(), int(3))];
    assert_eq!(complete(host.send(&Request::FeedRun(feed))), int(5));
    assert_eq!(complete(feed_run(&host, "a * b")), int(6));
}

#[test]
fn an_external_function_in_comprehensions_keeps_its_binding_across_feeds() {
    let host = repl();
    let mut feed = Feed::new("[f(i) for i in range(2)]");
    feed.inputs = vec![("f".into(), MontyObject::function("f", None))];
    for round in 0..2 {
        let mut response = if round == 0 {
            host.send(&Request::FeedStart(feed.clone()))
        } else {
            feed_start(&host, "[f(i) for i in range(2)]")
        };
        let mut calls = 0;
        while let Outcome::FunctionCall(call) = &response.outcome {
            assert_eq!(call.name, "f", "round {round}");
            calls += 1;
            response = host.resume(CallResult::Value(int(calls * 10)));
        }
        assert_eq!(calls, 2, "round {round}");
        assert_eq!(complete(response), MontyObject::list([int(10), int(20)]));
    }
}

#[test]
fn every_suspension_kind_in_a_repl() {
    let host = repl();
    let mut feed = Feed::new("import os\n(f(1), os.getenv('K'), missing)");
    feed.inputs = vec![("f".into(), MontyObject::function("f", None))];
    function_call(host.send(&Request::FeedStart(feed)));
    os_call(host.resume(CallResult::Value(int(1))));
    let response = host.resume_os(CallResult::Value(MontyObject::string("v")));
    assert!(
        matches!(response.outcome, Outcome::NameLookup(_)),
        "{:?}",
        response.outcome
    );
    let response = host.send(&Request::ResumeNameLookup(NameLookupResult::Value(int(3))));
    assert_eq!(
        complete(response),
        MontyObject::tuple([int(1), MontyObject::string("v"), int(3)])
    );
    // The name the host supplied is now a global of the session.
    assert_eq!(complete(feed_run(&host, "missing")), int(3));
}

#[test]
fn continuation_detection_needs_no_program() {
    let host = Host::new();
    for (source, mode) in [
        ("x = 1", ReplContinuationMode::Complete),
        ("foo(1,", ReplContinuationMode::IncompleteImplicit),
        ("def f():", ReplContinuationMode::IncompleteBlock),
        ("def (", ReplContinuationMode::Complete),
    ] {
        let response = host.send(&Request::DetectContinuation(source.into()));
        assert!(
            matches!(response.outcome, Outcome::Continuation(found) if found == mode),
            "{source:?}: {:?}",
            response.outcome
        );
    }
    // The session is still empty.
    expect_code(feed_run(&host, "1"), ErrorCode::WrongState);
}

#[test]
fn list_and_call_functions() {
    let host = repl();
    complete(feed_run(
        &host,
        "def double(n):\n    return n * 2\ndef hello():\n    return 'hi'",
    ));
    let Outcome::FunctionNames(mut names) = host.send(&Request::ListFunctions).outcome else {
        panic!("expected function names")
    };
    names.sort();
    assert_eq!(names, ["double", "hello"]);
    let response = host.send(&Request::CallFunction {
        name: "double".into(),
        args: vec![int(21)],
    });
    assert_eq!(complete(response), int(42));
    let exc = python_error(host.send(&Request::CallFunction {
        name: "nope".into(),
        args: vec![],
    }));
    assert_eq!(exc.exc_type(), ExcType::NameError);
}

#[test]
fn limits_stop_a_runaway_snippet_and_the_session_stays_usable() {
    let host = repl_with(OpenRepl {
        limits: ResourceLimits {
            max_feed_duration: Some(Duration::from_millis(150)),
            ..ResourceLimits::default()
        },
        ..OpenRepl::default()
    });
    complete(feed_run(&host, "kept = 'yes'"));
    assert_eq!(
        python_error(feed_run(&host, "while True:\n    pass")).exc_type(),
        ExcType::TimeoutError
    );
    assert_eq!(
        python_error(feed_start(&host, "while True:\n    pass")).exc_type(),
        ExcType::TimeoutError
    );
    assert_eq!(complete(feed_run(&host, "kept")), MontyObject::string("yes"));
}

#[test]
fn feeds_report_their_usage() {
    let host = repl();
    let busy = feed_run(&host, "total = 0\nfor i in range(20000):\n    total += i\ntotal");
    let busy_usage = busy.usage;
    assert_eq!(complete(busy), int(199_990_000));
    assert!(busy_usage.turn_elapsed > Duration::ZERO, "{busy_usage:?}");
    // One request: the snippet's time is this request's time.
    assert_eq!(busy_usage.feed_elapsed, busy_usage.turn_elapsed);
    assert!(busy_usage.elapsed >= busy_usage.feed_elapsed, "{busy_usage:?}");
    assert!(busy_usage.wall >= busy_usage.turn_elapsed, "{busy_usage:?}");
    assert!(busy_usage.wall < Duration::from_secs(60), "{busy_usage:?}");
    assert_eq!(busy_usage.suspensions, 0);

    // A feed that suspends: its time and round trips add up over its requests.
    let mut feed = Feed::new("a = f(1)\nb = f(2)\nfor i in range(20000):\n    pass\na + b");
    feed.inputs = vec![("f".into(), MontyObject::function("f", None))];
    let first = host.send(&Request::FeedStart(feed));
    let first_usage = first.usage;
    function_call(first);
    assert_eq!(first_usage.suspensions, 1);
    // feedElapsed is this snippet's, not the last one's.
    assert_eq!(first_usage.feed_elapsed, first_usage.turn_elapsed);
    assert_eq!(first_usage.elapsed, busy_usage.elapsed + first_usage.turn_elapsed);
    let second = host.resume(CallResult::Value(int(1)));
    let second_usage = second.usage;
    function_call(second);
    assert_eq!(second_usage.suspensions, 2);
    assert_eq!(
        second_usage.feed_elapsed,
        first_usage.feed_elapsed + second_usage.turn_elapsed
    );
    let last = host.resume(CallResult::Value(int(2)));
    let last_usage = last.usage;
    assert_eq!(complete(last), int(3));
    assert_eq!(last_usage.suspensions, 2);
    assert_eq!(
        last_usage.feed_elapsed,
        second_usage.feed_elapsed + last_usage.turn_elapsed
    );
    assert!(last_usage.turn_elapsed > Duration::ZERO, "{last_usage:?}");

    // The next snippet starts its own count.
    let next = feed_run(&host, "1");
    assert_eq!(next.usage.suspensions, 0);
    assert_eq!(next.usage.feed_elapsed, next.usage.turn_elapsed);
    assert_eq!(next.usage.elapsed, last_usage.elapsed + next.usage.turn_elapsed);
}

#[test]
fn a_time_limit_stops_a_runaway_function_call() {
    let host = repl();
    complete(feed_run(
        &host,
        "def spin():\n    while True: pass\ndef two():\n    return 2",
    ));
    let response = host.send(&Request::SetLimits(ResourceLimits {
        max_feed_duration: Some(Duration::from_millis(150)),
        ..ResourceLimits::default()
    }));
    assert!(matches!(response.outcome, Outcome::Ok), "{:?}", response.outcome);
    let exc = python_error(host.send(&Request::CallFunction {
        name: "spin".into(),
        args: vec![],
    }));
    assert_eq!(exc.exc_type(), ExcType::TimeoutError);
    assert!(message_of(&exc).ends_with("> 150ms"), "{exc}");
    // Each call has its own budget, and the session is still usable.
    let response = host.send(&Request::CallFunction {
        name: "two".into(),
        args: vec![],
    });
    assert_eq!(complete(response), int(2));
    assert_eq!(complete(feed_run(&host, "two() + 1")), int(3));
}

#[test]
fn the_recursion_limit_raises_recursion_error_and_the_repl_lives_on() {
    with_big_stack(|| {
        let host = repl_with(OpenRepl {
            limits: ResourceLimits {
                max_recursion_depth: 50,
                ..ResourceLimits::default()
            },
            ..OpenRepl::default()
        });
        complete(feed_run(
            &host,
            "def down(n):\n    return 0 if n == 0 else 1 + down(n - 1)\nkept = 'yes'",
        ));
        let exc = python_error(feed_run(&host, "down(10000)"));
        assert_eq!(exc.exc_type(), ExcType::RecursionError);
        let exc = python_error(host.send(&Request::CallFunction {
            name: "down".into(),
            args: vec![int(10_000)],
        }));
        assert_eq!(exc.exc_type(), ExcType::RecursionError);
        // Shallow recursion and the globals are still there.
        assert_eq!(complete(feed_run(&host, "down(20)")), int(20));
        assert_eq!(complete(feed_run(&host, "kept")), MontyObject::string("yes"));
    });
}

#[test]
fn a_type_checking_repl_checks_imports_of_host_modules() {
    let host = repl_with(OpenRepl {
        type_check: Some(TypeCheckOptions {
            module_stubs: vec![ModuleStub::new("tools", "def fetch(url: str) -> bytes: ...").expect("stub")],
            ..TypeCheckOptions::default()
        }),
        ..OpenRepl::default()
    });
    // The import checks clean and runs: the host supplies the module.
    let import = os_call(feed_start(&host, "import tools\nsize = len(tools.fetch('u'))\nsize"));
    assert!(
        matches!(&import.call, OsFunctionCall::Import(name) if name == "tools"),
        "{:?}",
        import.call
    );
    let module = MontyObject::module(
        "tools",
        MontyUuid::from_u128(1),
        [(MontyObject::string("fetch"), MontyObject::function("fetch", None))],
    );
    let call = function_call(host.resume_os(CallResult::Value(module)));
    assert_eq!(call.name, "fetch");
    assert_eq!(
        complete(host.resume(CallResult::Value(MontyObject::bytes(b"abc".to_vec())))),
        int(3)
    );
    // A wrong call into the module is flagged, and not run.
    let refused = report(feed_run(&host, "tools.fetch(1)"));
    let codes: Vec<&str> = refused.diagnostics.iter().map(|d| d.code.as_str()).collect();
    assert_eq!(codes, ["invalid-argument-type"], "{refused:?}");
    assert!(refused.rendered.contains("fetch"), "{}", refused.rendered);
    // Unknown names in the module are flagged too.
    let refused = report(feed_run(&host, "tools.store(b'x')"));
    assert_eq!(refused.diagnostics[0].code, "unresolved-attribute", "{refused:?}");
}

#[test]
fn the_suspension_limit_applies_per_feed() {
    let host = repl_with(OpenRepl {
        limits: ResourceLimits {
            max_suspensions: 2,
            ..ResourceLimits::default()
        },
        ..OpenRepl::default()
    });
    let mut feed = Feed::new("for i in range(5):\n    f(i)");
    feed.inputs = vec![("f".into(), MontyObject::function("f", None))];
    let mut response = host.send(&Request::FeedStart(feed));
    while let Outcome::FunctionCall(_) = response.outcome {
        response = host.resume(CallResult::Value(MontyObject::none()));
    }
    assert_eq!(python_error(response).exc_type(), ExcType::RuntimeError);
    assert_eq!(complete(feed_run(&host, "1 + 1")), int(2));
}

#[test]
fn wrong_state_requests_leave_the_repl_alone() {
    let host = repl();
    expect_code(host.resume(CallResult::Value(int(1))), ErrorCode::WrongState);
    expect_code(host.send(&Request::Run(vec![])), ErrorCode::WrongState);
    let mut feed = Feed::new("f()");
    feed.inputs = vec![("f".into(), MontyObject::function("f", None))];
    function_call(host.send(&Request::FeedStart(feed)));
    expect_code(feed_run(&host, "1"), ErrorCode::WrongState);
    expect_code(host.send(&Request::ListFunctions), ErrorCode::WrongState);
    expect_code(host.send(&Request::OpenRepl(Box::default())), ErrorCode::WrongState);
    assert_eq!(complete(host.resume(CallResult::Value(int(5)))), int(5));
}

#[test]
fn dump_and_load_an_idle_repl() {
    let host = repl();
    complete(feed_run(
        &host,
        "total = 10\ndef bump(n):\n    global total\n    total += n\n    return total",
    ));
    let dump = dump_of(host.send(&Request::DumpSession));
    let restored = load(dump);
    assert_eq!(complete(feed_run(&restored, "bump(5)")), int(15));
    // The original is untouched by its dump.
    assert_eq!(complete(feed_run(&host, "bump(1)")), int(11));
}

#[test]
fn dump_a_repl_mid_feed_and_finish_it_elsewhere() {
    let host = repl();
    complete(feed_run(&host, "base = 100"));
    let mut feed = Feed::new("base + f()");
    feed.inputs = vec![("f".into(), MontyObject::function("f", None))];
    function_call(host.send(&Request::FeedStart(feed)));
    let restored = load(dump_of(host.send(&Request::DumpSession)));
    assert_eq!(complete(restored.resume(CallResult::Value(int(1)))), int(101));
    assert_eq!(complete(feed_run(&restored, "base")), int(100));
}

/// Runs `code` with input `f` to its first suspension, dumps, restores in a
/// new session and returns it.
fn run_dump_restore(code: &str) -> (Host, Response) {
    let host = Host::open(code, &["f"], ResourceLimits::default());
    let first = host.start(vec![MontyObject::function("f", None)]);
    let restored = load(dump_of(host.send(&Request::DumpSession)));
    (restored, first)
}

#[test]
fn dump_a_run_at_every_suspension_kind() {
    let (host, first) = run_dump_restore("f(1) + 1");
    function_call(first);
    assert_eq!(complete(host.resume(CallResult::Value(int(41)))), int(42));

    let (host, first) = run_dump_restore("import os\nos.getenv('HOME')");
    os_call(first);
    assert_eq!(
        complete(host.resume_os(CallResult::Value(MontyObject::string("/h")))),
        MontyObject::string("/h")
    );

    let (host, first) = run_dump_restore("unknown + 1");
    assert!(matches!(first.outcome, Outcome::NameLookup(_)));
    let response = host.send(&Request::ResumeNameLookup(NameLookupResult::Value(int(1))));
    assert_eq!(complete(response), int(2));

    let code = "import asyncio\nasync def main():\n    return await asyncio.gather(f(1), f(2))\nasyncio.run(main())";
    let host = Host::open(code, &["f"], ResourceLimits::default());
    let a = function_call(host.start(vec![MontyObject::function("f", None)]));
    let b = function_call(host.resume(CallResult::Future));
    assert!(matches!(
        host.resume(CallResult::Future).outcome,
        Outcome::ResolveFutures(_)
    ));
    let restored = load(dump_of(host.send(&Request::DumpSession)));
    restored.send(&Request::ResolveFutures(vec![(b.call_id, CallResult::Value(int(2)))]));
    let response = restored.send(&Request::ResolveFutures(vec![(a.call_id, CallResult::Value(int(1)))]));
    assert_eq!(complete(response), MontyObject::list([int(1), int(2)]));
    // A session loaded mid-run has no program to start again.
    expect_code(restored.start(vec![]), ErrorCode::WrongState);
}

/// Which kind of session a dump test drives: a one-shot run or a REPL feed.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Run,
    Repl,
}

impl Kind {
    /// A session of this kind started on `code`, with `f` (and `fetch`)
    /// bound to external functions, under `limits`; returns the first
    /// response.
    fn start(self, code: &str, limits: ResourceLimits) -> (Host, Response) {
        let functions = [
            ("f", MontyObject::function("f", None)),
            ("fetch", MontyObject::function("fetch", None)),
        ];
        match self {
            Kind::Run => {
                let host = Host::open(code, &["f", "fetch"], limits);
                let first = host.start(functions.into_iter().map(|(_, f)| f).collect());
                (host, first)
            }
            Kind::Repl => {
                let host = repl_with(OpenRepl {
                    limits,
                    ..OpenRepl::default()
                });
                let mut feed = Feed::new(code);
                feed.inputs = functions.into_iter().map(|(name, f)| (name.into(), f)).collect();
                let first = host.send(&Request::FeedStart(feed));
                (host, first)
            }
        }
    }
}

#[test]
fn a_loaded_run_or_feed_counts_suspensions_from_where_it_stopped() {
    for kind in [Kind::Run, Kind::Repl] {
        let (host, first) = kind.start("for i in range(10):\n    f(i)", ResourceLimits::default());
        function_call(first);
        function_call(host.resume(CallResult::Value(MontyObject::none())));
        function_call(host.resume(CallResult::Value(MontyObject::none())));
        let dumped = host.send(&Request::DumpSession);
        assert_eq!(dumped.usage.suspensions, 3, "{kind:?}");
        let feed_elapsed = dumped.usage.feed_elapsed;
        // Three round trips so far: a limit of four leaves exactly one more.
        let (loaded, response) = load_with(
            dump_of(dumped),
            ResourceLimits {
                max_suspensions: 4,
                ..ResourceLimits::default()
            },
        );
        assert_eq!(response.usage.suspensions, 3, "{kind:?}");
        assert!(response.usage.feed_elapsed >= feed_elapsed, "{kind:?}");
        let call = function_call(loaded.resume(CallResult::Value(MontyObject::none())));
        assert_eq!(call.args.args().next().map(|a| a.to_owned()), Some(int(3)), "{kind:?}");
        let exc = python_error(loaded.resume(CallResult::Value(MontyObject::none())));
        assert_eq!(exc.exc_type(), ExcType::RuntimeError, "{kind:?}");
        assert_eq!(
            message_of(&exc),
            "suspension limit exceeded: more than 4 host round trips",
            "{kind:?}"
        );
    }
}

#[test]
fn a_dump_already_over_the_load_limits_stops_at_its_next_resume() {
    for kind in [Kind::Run, Kind::Repl] {
        let (host, first) = kind.start("for i in range(10):\n    f(i)", ResourceLimits::default());
        function_call(first);
        function_call(host.resume(CallResult::Value(MontyObject::none())));
        function_call(host.resume(CallResult::Value(MontyObject::none())));
        let (loaded, _) = load_with(
            dump_of(host.send(&Request::DumpSession)),
            ResourceLimits {
                max_suspensions: 2,
                ..ResourceLimits::default()
            },
        );
        // The host's answer is not delivered: the run ends at once.
        let exc = python_error(loaded.resume(CallResult::Value(MontyObject::none())));
        assert_eq!(exc.exc_type(), ExcType::RuntimeError, "{kind:?}");
        assert_eq!(
            message_of(&exc),
            "suspension limit exceeded: more than 2 host round trips",
            "{kind:?}"
        );
        match kind {
            Kind::Run => expect_code(loaded.resume(CallResult::Value(int(1))), ErrorCode::WrongState),
            Kind::Repl => {
                assert_eq!(complete(feed_run(&loaded, "i")), int(2));
                continue;
            }
        };
    }
    // Looser limits sent after the load lift the stop.
    let (host, first) = Kind::Run.start("for i in range(10):\n    f(i)", ResourceLimits::default());
    function_call(first);
    function_call(host.resume(CallResult::Value(MontyObject::none())));
    let tight = ResourceLimits {
        max_suspensions: 1,
        ..ResourceLimits::default()
    };
    let (loaded, _) = load_with(dump_of(host.send(&Request::DumpSession)), tight);
    let response = loaded.send(&Request::SetLimits(ResourceLimits::default()));
    assert!(matches!(response.outcome, Outcome::Ok), "{:?}", response.outcome);
    function_call(loaded.resume(CallResult::Value(MontyObject::none())));
}

#[test]
fn sleep_so_far_travels_in_the_dump() {
    let code = "import time\nfor _ in range(5):\n    time.sleep(2)";
    for kind in [Kind::Run, Kind::Repl] {
        let (host, first) = kind.start(code, ResourceLimits::default());
        os_call(first);
        os_call(host.resume_os(CallResult::Value(MontyObject::none())));
        // Four seconds slept so far.
        let dump = dump_of(host.send(&Request::DumpSession));
        let limits = |secs| ResourceLimits {
            max_total_sleep: Some(Duration::from_secs(secs)),
            ..ResourceLimits::default()
        };
        let (loaded, _) = load_with(dump.clone(), limits(5));
        let exc = python_error(loaded.resume_os(CallResult::Value(MontyObject::none())));
        assert_eq!(exc.exc_type(), ExcType::TimeoutError, "{kind:?}");
        assert_eq!(message_of(&exc), "total sleep limit exceeded: 6s > 5s", "{kind:?}");
        // Already over the limit: stopped at the next resume.
        let (loaded, _) = load_with(dump, limits(3));
        let exc = python_error(loaded.resume_os(CallResult::Value(MontyObject::none())));
        assert_eq!(message_of(&exc), "total sleep limit exceeded: 4s > 3s", "{kind:?}");
    }
}

#[test]
fn a_future_resolved_not_found_after_a_load_names_its_function() {
    let code = "import asyncio\nasync def main():\n    return await asyncio.gather(fetch(1), f(2))\nawait main()";
    for kind in [Kind::Run, Kind::Repl] {
        let (host, first) = kind.start(code, ResourceLimits::default());
        let fetch = function_call(first);
        assert_eq!(fetch.name, "fetch");
        function_call(host.resume(CallResult::Future));
        assert!(matches!(
            host.resume(CallResult::Future).outcome,
            Outcome::ResolveFutures(_)
        ));
        let loaded = load(dump_of(host.send(&Request::DumpSession)));
        let exc = python_error(loaded.send(&Request::ResolveFutures(vec![(fetch.call_id, CallResult::NotFound)])));
        assert_eq!(exc.exc_type(), ExcType::NameError, "{kind:?}");
        assert!(message_of(&exc).contains("'fetch'"), "{kind:?}: {exc}");
    }
}

#[test]
fn a_run_loaded_at_an_os_call_takes_the_load_limits() {
    // The host-enforced limits apply from the first resume.
    let (host, first) = Kind::Run.start("import os\nos.getenv('A')\nf()", ResourceLimits::default());
    os_call(first);
    let (loaded, _) = load_with(
        dump_of(host.send(&Request::DumpSession)),
        ResourceLimits {
            max_suspensions: 1,
            ..ResourceLimits::default()
        },
    );
    let exc = python_error(loaded.resume_os(CallResult::Value(MontyObject::none())));
    assert_eq!(
        message_of(&exc),
        "suspension limit exceeded: more than 1 host round trips"
    );

    // monty lets a run's time budget change only at a function call, so a
    // run loaded at an OS call takes it there; the writer's 30 s budget
    // would end the spin too, but later and naming 30 s.
    let spin = "import os\nos.getenv('A')\nf()\nwhile True:\n    pass";
    let writer = ResourceLimits {
        max_feed_duration: Some(Duration::from_secs(30)),
        ..ResourceLimits::default()
    };
    let loader = ResourceLimits {
        max_feed_duration: Some(Duration::from_millis(100)),
        ..ResourceLimits::default()
    };
    let (host, first) = Kind::Run.start(spin, writer.clone());
    os_call(first);
    let (loaded, _) = load_with(dump_of(host.send(&Request::DumpSession)), loader.clone());
    function_call(loaded.resume_os(CallResult::Value(MontyObject::none())));
    let exc = python_error(loaded.resume(CallResult::Value(MontyObject::none())));
    assert_eq!(exc.exc_type(), ExcType::TimeoutError);
    assert!(message_of(&exc).ends_with("> 100ms"), "{exc}");

    // A REPL's tracker can always change: the budget applies at once.
    let (host, first) = Kind::Repl.start("import os\nos.getenv('A')\nwhile True:\n    pass", writer);
    os_call(first);
    let (loaded, _) = load_with(dump_of(host.send(&Request::DumpSession)), loader);
    let exc = python_error(loaded.resume_os(CallResult::Value(MontyObject::none())));
    assert_eq!(exc.exc_type(), ExcType::TimeoutError);
    assert!(message_of(&exc).ends_with("> 100ms"), "{exc}");
}

#[test]
fn a_dump_keeps_its_writers_host_limits() {
    let writer = ResourceLimits {
        max_suspensions: 2,
        ..ResourceLimits::default()
    };
    for kind in [Kind::Run, Kind::Repl] {
        let (host, first) = kind.start("import os\nos.getenv('A')\nf()\nf()", writer.clone());
        os_call(first);
        // The load asks for the default 1000; the dump's 2 still holds.
        let loaded = load(dump_of(host.send(&Request::DumpSession)));
        function_call(loaded.resume_os(CallResult::Value(MontyObject::none())));
        let exc = python_error(loaded.resume(CallResult::Value(MontyObject::none())));
        assert_eq!(
            message_of(&exc),
            "suspension limit exceeded: more than 2 host round trips",
            "{kind:?}"
        );
    }
}

/// The child half of `a_dump_resumes_in_another_process`: loads the dump
/// the parent wrote, resolves both futures, checks the result and writes it
/// to the marker file the parent reads, so the parent knows this ran.
#[test]
#[ignore = "run by a_dump_resumes_in_another_process in a child process"]
fn resume_dump_in_child_process() {
    let Some(path) = std::env::var_os("MONTY_WIRE_CHILD_DUMP") else {
        return;
    };
    let bytes = std::fs::read(path).expect("the parent wrote the dump");
    let host = Host::new();
    host.send(&Request::SetDumpKey(b"process key".to_vec()));
    let response = host.send(&Request::LoadSession {
        dump: bytes,
        limits: ResourceLimits::default(),
        access: Default::default(),
    });
    assert!(matches!(response.outcome, Outcome::Ok), "{:?}", response.outcome);
    let ids: Vec<u32> = std::env::var("MONTY_WIRE_CHILD_IDS")
        .expect("ids")
        .split(',')
        .map(|id| id.parse().expect("an id"))
        .collect();
    host.send(&Request::ResolveFutures(vec![(ids[1], CallResult::Value(int(20)))]));
    let response = host.send(&Request::ResolveFutures(vec![(ids[0], CallResult::Value(int(10)))]));
    let result = complete(response);
    assert_eq!(result, int(30));
    let marker = std::env::var_os("MONTY_WIRE_CHILD_MARKER").expect("the parent names a marker file");
    std::fs::write(marker, format!("{result:?}")).expect("write the marker");
}

#[test]
fn a_dump_resumes_in_another_process() {
    let code = "import asyncio\nasync def main():\n    a, b = await asyncio.gather(f(), f())\n    return a + b\nasyncio.run(main())";
    let host = Host::open(code, &["f"], ResourceLimits::default());
    host.send(&Request::SetDumpKey(b"process key".to_vec()));
    let a = function_call(host.start(vec![MontyObject::function("f", None)]));
    let b = function_call(host.resume(CallResult::Future));
    assert!(matches!(
        host.resume(CallResult::Future).outcome,
        Outcome::ResolveFutures(_)
    ));
    let dump = dump_of(host.send(&Request::DumpSession));
    let path = std::env::temp_dir().join(format!("monty-wire-dump-{}.bin", std::process::id()));
    let marker = path.with_extension("done");
    let _ = std::fs::remove_file(&marker);
    std::fs::write(&path, dump).expect("write the dump");
    let child = std::process::Command::new(std::env::current_exe().expect("this test binary"))
        .args(["--exact", "resume_dump_in_child_process", "--ignored"])
        .env("MONTY_WIRE_CHILD_DUMP", &path)
        .env("MONTY_WIRE_CHILD_IDS", format!("{},{}", a.call_id, b.call_id))
        .env("MONTY_WIRE_CHILD_MARKER", &marker)
        .output()
        .expect("run the child");
    let _ = std::fs::remove_file(&path);
    let stdout = String::from_utf8_lossy(&child.stdout);
    assert!(
        child.status.success(),
        "the child process failed to finish the run:\n{stdout}\n{}",
        String::from_utf8_lossy(&child.stderr)
    );
    // libtest exits 0 when its filter matches nothing, so success alone
    // does not prove the child ran: it must report one test passed and
    // leave the result it computed in the marker file.
    assert!(stdout.contains("test result: ok. 1 passed"), "{stdout}");
    let written = std::fs::read_to_string(&marker).expect("the child wrote its marker");
    let _ = std::fs::remove_file(&marker);
    assert_eq!(written, format!("{:?}", int(30)));
}

#[test]
fn sealed_dumps_are_checked_before_they_are_read() {
    let host = repl();
    complete(feed_run(&host, "secret = 42"));
    host.send(&Request::SetDumpKey(b"k1".to_vec()));
    let sealed = dump_of(host.send(&Request::DumpSession));

    // The right key loads it.
    let good = Host::new();
    good.send(&Request::SetDumpKey(b"k1".to_vec()));
    let response = good.send(&Request::LoadSession {
        dump: sealed.clone(),
        limits: ResourceLimits::default(),
        access: Default::default(),
    });
    assert!(matches!(response.outcome, Outcome::Ok), "{:?}", response.outcome);
    assert_eq!(complete(feed_run(&good, "secret")), int(42));

    let try_load = |key: &[u8], dump: Vec<u8>| {
        let host = Host::new();
        host.send(&Request::SetDumpKey(key.to_vec()));
        let error = expect_code(
            host.send(&Request::LoadSession {
                dump,
                limits: ResourceLimits::default(),
                access: Default::default(),
            }),
            ErrorCode::InvalidDump,
        );
        // Nothing was loaded.
        expect_code(feed_run(&host, "1"), ErrorCode::WrongState);
        error.message
    };
    // Every byte of the payload is covered: flip one in the middle.
    let mut tampered = sealed.clone();
    let middle = tampered.len() / 2;
    tampered[middle] ^= 1;
    let message = try_load(b"k1", tampered);
    assert!(
        message.contains("seal does not verify") || message.contains("not a monty-wire dump"),
        "{message}"
    );
    assert!(try_load(b"k2", sealed.clone()).contains("seal does not verify"));
    assert!(try_load(b"", sealed.clone()).contains("no key"));
    assert!(try_load(b"k1", sealed[..sealed.len() / 2].to_vec()).contains("not a monty-wire dump"));
    let unsealed = dump_of(repl().send(&Request::DumpSession));
    assert!(try_load(b"k1", unsealed).contains("not sealed"));
    // A program dump is not a session dump.
    let program = Host::open("1", &[], ResourceLimits::default());
    program.send(&Request::SetDumpKey(b"k1".to_vec()));
    let program_dump = dump_of(program.send(&Request::DumpProgram));
    assert!(try_load(b"k1", program_dump).contains("does not load"));
    assert!(try_load(b"k1", b"MONTY\0garbage".to_vec()).contains("not a monty-wire dump"));
}

/// An unsealed envelope with these labels around `payload`, as another
/// writer might make it.
fn envelope(protocol: u32, monty_version: &str, dump_version: u16, payload: &[u8]) -> Vec<u8> {
    use monty_wire::{codec::builder_with_capacity, schema::monty_wire_capnp as wire};
    let mut message = builder_with_capacity(payload.len() / 8 + 64);
    {
        let mut root = message.init_root::<wire::dump::Builder<'_>>();
        root.set_kind(wire::DumpKind::ReplIdle);
        root.set_protocol_version(protocol);
        root.set_monty_version(monty_version);
        root.set_monty_dump_version(dump_version);
        root.set_payload(payload);
        root.init_seal().set_none(());
    }
    monty_wire::WireMessage::from_builder(&message).as_bytes().to_vec()
}

/// monty's payload inside a dump this build wrote.
fn payload_of(dump: &[u8]) -> Vec<u8> {
    use monty_wire::{DecodeLimits, codec::read_message, schema::monty_wire_capnp as wire};
    let message = read_message(dump, &DecodeLimits::default()).expect("a dump");
    let root = message.get_root::<wire::dump::Reader<'_>>().expect("a Dump");
    root.get_payload().expect("a payload").to_vec()
}

/// Loads `dump` into a new session, expects `invalidDump`, checks nothing
/// was loaded and returns the message.
fn refused_load(dump: Vec<u8>) -> String {
    let host = Host::new();
    let error = expect_code(
        host.send(&Request::LoadSession {
            dump,
            limits: ResourceLimits::default(),
            access: Default::default(),
        }),
        ErrorCode::InvalidDump,
    );
    expect_code(feed_run(&host, "1"), ErrorCode::WrongState);
    error.message
}

#[test]
fn a_dump_from_another_monty_is_refused_with_its_versions() {
    let bytes = envelope(monty_wire::PROTOCOL_VERSION, "0.0.1", DUMP_VERSION, b"MONTY\0\x01\x00");
    let message = refused_load(bytes);
    assert!(message.contains("monty 0.0.1"), "{message}");
    assert!(message.contains(&format!("embeds monty {MONTY_VERSION}")), "{message}");
}

#[test]
fn a_dump_format_monty_cannot_read_is_refused_before_monty_reads_it() {
    let host = repl();
    complete(feed_run(&host, "kept = 7"));
    let payload = payload_of(&dump_of(host.send(&Request::DumpSession)));
    // The envelope helper makes loadable dumps: only the label differs below.
    let restored = load(envelope(
        monty_wire::PROTOCOL_VERSION,
        MONTY_VERSION,
        DUMP_VERSION,
        &payload,
    ));
    assert_eq!(complete(feed_run(&restored, "kept")), int(7));
    for version in [0, MIN_SUPPORTED_DUMP_VERSION - 1, DUMP_VERSION + 1] {
        let message = refused_load(envelope(monty_wire::PROTOCOL_VERSION, MONTY_VERSION, version, &payload));
        assert_eq!(
            message,
            format!(
                "the dump's payload is in monty dump format version {version}; this build (monty {MONTY_VERSION}) reads versions {MIN_SUPPORTED_DUMP_VERSION} to {DUMP_VERSION}"
            )
        );
    }
}

#[test]
fn a_dump_from_a_newer_protocol_is_refused() {
    let payload = payload_of(&dump_of(repl().send(&Request::DumpSession)));
    let newer = monty_wire::PROTOCOL_VERSION + 1;
    let message = refused_load(envelope(newer, MONTY_VERSION, DUMP_VERSION, &payload));
    assert_eq!(
        message,
        format!(
            "the dump was written by protocol version {newer}; this build speaks version {}",
            monty_wire::PROTOCOL_VERSION
        )
    );
}

fn type_check(code: &str, format: TypeCheckingFormat) -> TypeCheckReport {
    let host = Host::new();
    report(host.send(&Request::TypeCheck(Box::new(TypeCheck {
        code: code.into(),
        prefix_code: "def f(x: int) -> int:\n    return x".into(),
        script_name: "main.py".into(),
        options: TypeCheckOptions {
            format,
            ..TypeCheckOptions::default()
        },
    }))))
}

/// Checks that `rendered` is `format`'s rendering of the one diagnostic of
/// `f('a')` (rule invalid-argument-type, main.py line 1, columns 3 to 6).
fn assert_rendered(format: TypeCheckingFormat, rendered: &str) {
    use serde_json::Value;
    const RULE: &str = "invalid-argument-type";
    let json = || serde_json::from_str::<Value>(rendered).unwrap_or_else(|e| panic!("{format:?}: {e}: {rendered}"));
    let text = |value: &Value| {
        value
            .as_str()
            .unwrap_or_else(|| panic!("{format:?}: {value}"))
            .to_owned()
    };
    match format {
        TypeCheckingFormat::Full => {
            assert!(rendered.starts_with(&format!("error[{RULE}]: ")), "{rendered}");
            assert!(rendered.contains("--> main.py:1:3"), "{rendered}");
        }
        TypeCheckingFormat::Concise => {
            assert!(
                rendered.starts_with(&format!("main.py:1:3: error[{RULE}] ")),
                "{rendered}"
            );
        }
        TypeCheckingFormat::Azure => {
            assert!(rendered.starts_with("##vso[task.logissue type=error;"), "{rendered}");
            assert!(rendered.contains("main.py;linenumber=1;columnnumber=3;"), "{rendered}");
            assert!(rendered.contains(&format!("code={RULE};")), "{rendered}");
        }
        TypeCheckingFormat::Json => {
            let diagnostics = json();
            let [diagnostic] = diagnostics.as_array().expect("a JSON array").as_slice() else {
                panic!("one diagnostic: {rendered}")
            };
            assert_eq!(diagnostic["code"], RULE);
            assert!(text(&diagnostic["filename"]).ends_with("main.py"), "{rendered}");
            assert_eq!(
                (&diagnostic["location"]["row"], &diagnostic["location"]["column"]),
                (&1.into(), &3.into())
            );
        }
        TypeCheckingFormat::JsonLines => {
            let lines: Vec<Value> = rendered
                .lines()
                .filter(|line| !line.trim().is_empty())
                .map(|line| serde_json::from_str(line).expect("a JSON line"))
                .collect();
            assert_eq!(lines.len(), 1, "{rendered}");
            assert_eq!(lines[0]["code"], RULE);
            assert_eq!(lines[0]["location"]["row"], 1);
        }
        TypeCheckingFormat::Rdjson => {
            let report = json();
            let [diagnostic] = report["diagnostics"].as_array().expect("diagnostics").as_slice() else {
                panic!("one diagnostic: {rendered}")
            };
            assert_eq!(diagnostic["code"]["value"], RULE);
            let location = &diagnostic["location"];
            assert!(text(&location["path"]).ends_with("main.py"), "{rendered}");
            assert_eq!(location["range"]["start"]["line"], 1);
            assert_eq!(location["range"]["start"]["column"], 3);
            assert_eq!(location["range"]["end"]["column"], 6);
        }
        TypeCheckingFormat::Pylint => {
            assert!(rendered.starts_with(&format!("main.py:1: [{RULE}] ")), "{rendered}");
        }
        TypeCheckingFormat::Gitlab => {
            let issues = json();
            let [issue] = issues.as_array().expect("a JSON array").as_slice() else {
                panic!("one issue: {rendered}")
            };
            assert_eq!(issue["check_name"], RULE);
            assert_eq!(issue["location"]["path"], "main.py");
            assert_eq!(issue["location"]["positions"]["begin"]["line"], 1);
            assert_eq!(issue["location"]["positions"]["begin"]["column"], 3);
            assert!(text(&issue["fingerprint"]).len() >= 8, "{rendered}");
        }
        TypeCheckingFormat::Github => {
            // A workflow command: `::error <properties>::<message>`.
            let annotation = rendered
                .strip_prefix("::error ")
                .unwrap_or_else(|| panic!("{rendered}"));
            let (properties, message) = annotation.split_once("::").expect("properties::message");
            assert!(properties.contains(&format!("title=monty ({RULE})")), "{properties}");
            assert!(
                properties.contains("main.py,line=1,col=3,endLine=1,endColumn=6"),
                "{properties}"
            );
            assert!(message.contains(RULE), "{message}");
        }
    }
}

#[test]
fn type_check_reports_structured_diagnostics_in_every_format() {
    for format in [
        TypeCheckingFormat::Full,
        TypeCheckingFormat::Concise,
        TypeCheckingFormat::Azure,
        TypeCheckingFormat::Json,
        TypeCheckingFormat::JsonLines,
        TypeCheckingFormat::Rdjson,
        TypeCheckingFormat::Pylint,
        TypeCheckingFormat::Gitlab,
        TypeCheckingFormat::Github,
    ] {
        let report = type_check("f('a')\n", format);
        assert_eq!(report.diagnostics.len(), 1, "{format:?}: {report:?}");
        let diagnostic = &report.diagnostics[0];
        assert_eq!(diagnostic.code, "invalid-argument-type");
        assert_eq!(diagnostic.severity, Severity::Error);
        assert_eq!(diagnostic.file, "main.py");
        assert_eq!((diagnostic.start_line, diagnostic.start_column), (1, 3));
        assert_eq!((diagnostic.end_line, diagnostic.end_column), (1, 6));
        assert_rendered(format, &report.rendered);
    }
    let clean = type_check("f(1)\n", TypeCheckingFormat::Full);
    assert!(clean.diagnostics.is_empty() && clean.rendered.is_empty(), "{clean:?}");
}

#[test]
fn module_stubs_declare_host_modules() {
    let host = Host::new();
    let options = TypeCheckOptions {
        module_stubs: vec![ModuleStub::new("host.tools", "def fetch(url: str) -> bytes: ...").expect("stub")],
        ..TypeCheckOptions::default()
    };
    let check = |code: &str| {
        report(host.send(&Request::TypeCheck(Box::new(TypeCheck {
            code: code.into(),
            prefix_code: String::new(),
            script_name: "main.py".into(),
            options: options.clone(),
        }))))
    };
    assert!(
        check("from host.tools import fetch\nfetch('x').decode()")
            .diagnostics
            .is_empty()
    );
    assert_eq!(check("from host.tools import fetch\nfetch(1)").diagnostics.len(), 1);
}

#[test]
fn a_type_checking_repl_reports_before_running() {
    let host = repl_with(OpenRepl {
        type_check: Some(TypeCheckOptions {
            stubs: "def fetch(url: str) -> int: ...".into(),
            ..TypeCheckOptions::default()
        }),
        ..OpenRepl::default()
    });
    complete(feed_run(&host, "count = 1"));
    // Later snippets see what earlier ones defined.
    complete(feed_run(&host, "count + 1"));
    let response = feed_run(&host, "count = 'oops'\ncount.no_such_method()");
    assert!(response.output.is_empty());
    let refused = report(response);
    let codes: Vec<&str> = refused.diagnostics.iter().map(|d| d.code.as_str()).collect();
    assert_eq!(codes, ["invalid-assignment", "unresolved-attribute"], "{refused:?}");
    assert_eq!(refused.diagnostics[1].file, "<python-input-2>");
    // The snippet did not run: count is still 1.
    assert_eq!(complete(feed_run(&host, "count")), int(1));
    // The host's stubs declare its functions.
    let refused = report(feed_run(&host, "fetch(1)"));
    assert_eq!(refused.diagnostics[0].code, "invalid-argument-type");
    // A snippet may opt out.
    let mut unchecked = Feed::new("count.no_such_method()");
    unchecked.skip_type_check = true;
    assert_eq!(
        python_error(host.send(&Request::FeedRun(unchecked))).exc_type(),
        ExcType::AttributeError
    );
    // Type checking survives a dump.
    let restored = load(dump_of(host.send(&Request::DumpSession)));
    assert!(matches!(
        feed_run(&restored, "count.nope").outcome,
        Outcome::TypeCheckReport(_)
    ));
}

#[test]
fn a_run_session_refuses_repl_requests_and_the_reverse() {
    let run = Host::open_with(OpenRun::new("1"));
    expect_code(feed_run(&run, "1"), ErrorCode::WrongState);
    expect_code(run.send(&Request::ListFunctions), ErrorCode::WrongState);
    let repl = repl();
    expect_code(repl.send(&Request::Start(vec![])), ErrorCode::WrongState);
    expect_code(repl.send(&Request::DumpProgram), ErrorCode::WrongState);
}
