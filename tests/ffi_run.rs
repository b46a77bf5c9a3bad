//! One-shot runs through the C entry points: every request and every
//! suspension kind, driven as a foreign host drives them.

mod common;

use std::time::Duration;

use common::{Host, complete, expect_code, function_call, os_call, python_error, with_big_stack};
use monty_types::{
    DateTimeSource, ExcType, MontyDateTime, MontyException, MontyObject, MontyUuid, OsFunctionCall, OsPolicy,
    PrintStream, ResourceLimits,
};
use monty_wire::protocol::{CallResult, ErrorCode, NameLookupResult, OpenRun, Outcome, PrintSegment, Request};

fn int(i: i64) -> MontyObject {
    MontyObject::int(i)
}

fn args_of(call: &monty_wire::protocol::FunctionCallEvent) -> (Vec<MontyObject>, Vec<(MontyObject, MontyObject)>) {
    (
        call.args.args().map(|a| a.to_owned()).collect(),
        call.args.kwargs().map(|(k, v)| (k.to_owned(), v.to_owned())).collect(),
    )
}

#[test]
fn run_to_completion_returns_value_output_and_usage() {
    let host = Host::open(
        "print('hello', 'world')\nimport sys\nprint('oops', file=sys.stderr)\n(x, x * 2)",
        &["x"],
        ResourceLimits::default(),
    );
    let response = host.send(&Request::Run(vec![int(21)]));
    assert_eq!(
        response.output,
        vec![
            PrintSegment {
                stream: PrintStream::Stdout,
                text: "hello world\n".into()
            },
            PrintSegment {
                stream: PrintStream::Stderr,
                text: "oops\n".into()
            },
        ]
    );
    let usage = response.usage;
    assert!(usage.turn_elapsed > Duration::ZERO);
    assert!(usage.wall >= usage.turn_elapsed);
    assert_eq!(usage.feed_elapsed, usage.turn_elapsed);
    // The session's total also counts compiling the program in openRun.
    assert!(usage.elapsed > usage.turn_elapsed);
    assert_eq!(usage.suspensions, 0);
    assert_eq!(complete(response), MontyObject::tuple([int(21), int(42)]));

    // Compile once, run many: the same program runs again with new inputs.
    assert_eq!(
        complete(host.send(&Request::Run(vec![int(1)]))),
        MontyObject::tuple([int(1), int(2)])
    );
}

#[test]
fn a_syntax_error_is_a_python_error_and_the_session_stays_empty() {
    let host = Host::new();
    let exc = python_error(host.send(&Request::OpenRun(Box::new(OpenRun::new("def (")))));
    assert_eq!(exc.exc_type(), ExcType::SyntaxError);
    expect_code(host.send(&Request::Run(vec![])), ErrorCode::WrongState);
    let reopened = host.send(&Request::OpenRun(Box::new(OpenRun::new("1 + 1"))));
    assert!(matches!(reopened.outcome, Outcome::Ok), "{:?}", reopened.outcome);
}

#[test]
fn function_call_carries_args_kwargs_in_order_and_call_id() {
    let host = Host::open(
        "r = fetch(1, 'two', z=(3, 4), a=None, m={'k': b'v'})\nr + 1",
        &["fetch"],
        ResourceLimits::default(),
    );
    let response = host.start(vec![MontyObject::function("fetch", None)]);
    let call = function_call(response);
    assert_eq!(call.name, "fetch");
    assert_eq!(call.object_id, None);
    assert_eq!(call.position.filename, "main.py");
    let (args, kwargs) = args_of(&call);
    assert_eq!(args, vec![int(1), MontyObject::string("two")]);
    assert_eq!(
        kwargs,
        vec![
            (MontyObject::string("z"), MontyObject::tuple([int(3), int(4)])),
            (MontyObject::string("a"), MontyObject::none()),
            (
                MontyObject::string("m"),
                MontyObject::dict([(MontyObject::string("k"), MontyObject::bytes(b"v".to_vec()))])
            ),
        ]
    );
    let response = host.resume(CallResult::Value(int(41)));
    assert_eq!(response.usage.suspensions, 1);
    assert_eq!(complete(response), int(42));
}

#[test]
fn a_host_exception_of_a_given_type_is_catchable() {
    let host = Host::open(
        "try:\n    f()\nexcept KeyError as e:\n    r = 'caught ' + str(e)\nr",
        &["f"],
        ResourceLimits::default(),
    );
    function_call(host.start(vec![MontyObject::function("f", None)]));
    let response = host.resume(CallResult::Exception(MontyException::new(
        ExcType::KeyError,
        Some("missing".into()),
    )));
    assert_eq!(complete(response), MontyObject::string("caught 'missing'"));
}

#[test]
fn not_found_raises_name_error_with_a_traceback() {
    let host = Host::open("def g():\n    return f()\ng()", &["f"], ResourceLimits::default());
    function_call(host.start(vec![MontyObject::function("f", None)]));
    let exc = python_error(host.resume(CallResult::NotFound));
    assert_eq!(exc.exc_type(), ExcType::NameError);
    assert_eq!(exc.traceback().len(), 2, "{exc}");
    // The run is over; the program can start again.
    function_call(host.start(vec![MontyObject::function("f", None)]));
}

#[test]
fn a_method_call_on_a_host_object_carries_its_id() {
    let id = MontyUuid::from_u128(0x1234_5678_9abc_def0_1234_5678_9abc_def0);
    let class = MontyObject::class_type("Store", MontyUuid::from_u128(7), true, false, []);
    let store = MontyObject::class_instance(class, id, []);
    let host = Host::open("store.get('key')", &["store"], ResourceLimits::default());
    let call = function_call(host.start(vec![store]));
    assert_eq!(call.name, "get");
    assert_eq!(call.object_id, Some(id));
    assert_eq!(args_of(&call).0, vec![MontyObject::string("key")]);
    assert_eq!(complete(host.resume(CallResult::Value(int(5)))), int(5));
}

#[test]
fn gather_over_three_futures_resolved_one_at_a_time_out_of_order() {
    let code =
        "import asyncio\nasync def main():\n    return await asyncio.gather(f(1), f(2), f(3))\nasyncio.run(main())";
    let host = Host::open(code, &["f"], ResourceLimits::default());
    let mut response = host.start(vec![MontyObject::function("f", None)]);
    let mut ids = Vec::new();
    while let Outcome::FunctionCall(call) = &response.outcome {
        let arg = args_of(call).0[0].clone();
        ids.push((call.call_id, arg));
        response = host.resume(CallResult::Future);
    }
    assert_eq!(ids.len(), 3);
    for (position, index) in [2usize, 0, 1].into_iter().enumerate() {
        let Outcome::ResolveFutures(pending) = &response.outcome else {
            panic!("expected resolveFutures, got {:?}", response.outcome);
        };
        assert_eq!(pending.pending_call_ids.len(), 3 - position);
        let (call_id, arg) = ids[index].clone();
        assert!(pending.pending_call_ids.contains(&call_id));
        let value = match TryInto::<i64>::try_into(&arg) {
            Ok(i) => int(i * 10),
            Err(_) => panic!("argument {arg:?}"),
        };
        response = host.send(&Request::ResolveFutures(vec![(call_id, CallResult::Value(value))]));
    }
    assert_eq!(complete(response), MontyObject::list([int(10), int(20), int(30)]));
}

#[test]
fn an_exception_from_a_host_future_is_caught_by_try_except() {
    let code = "import asyncio\nasync def main():\n    try:\n        return await f()\n    except ValueError as e:\n        return 'handled: ' + str(e)\nasyncio.run(main())";
    let host = Host::open(code, &["f"], ResourceLimits::default());
    let call = function_call(host.start(vec![MontyObject::function("f", None)]));
    let response = host.resume(CallResult::Future);
    assert!(
        matches!(response.outcome, Outcome::ResolveFutures(_)),
        "{:?}",
        response.outcome
    );
    let response = host.send(&Request::ResolveFutures(vec![(
        call.call_id,
        CallResult::Exception(MontyException::new(ExcType::ValueError, Some("bad".into()))),
    )]));
    assert_eq!(complete(response), MontyObject::string("handled: bad"));
}

#[test]
fn resolving_an_unknown_call_id_is_refused_and_the_run_survives() {
    let code = "import asyncio\nasync def main():\n    return await f()\nasyncio.run(main())";
    let host = Host::open(code, &["f"], ResourceLimits::default());
    let call = function_call(host.start(vec![MontyObject::function("f", None)]));
    host.resume(CallResult::Future);
    expect_code(
        host.send(&Request::ResolveFutures(vec![(
            call.call_id + 100,
            CallResult::Value(int(1)),
        )])),
        ErrorCode::InvalidArgument,
    );
    let response = host.send(&Request::ResolveFutures(vec![(
        call.call_id,
        CallResult::Value(int(9)),
    )]));
    assert_eq!(complete(response), int(9));
}

#[test]
fn os_calls_answered_by_the_host() {
    let code = "import os\nfrom pathlib import Path\nfrom datetime import datetime\n(os.getenv('HOME', 'none'), Path('notes.txt').read_text(), datetime.now())";
    let mut open = OpenRun::new(code);
    open.cwd = "/work".into();
    open.os_policy = OsPolicy {
        datetime: DateTimeSource::CallHost,
        ..OsPolicy::default()
    };
    let host = Host::open_with(open);
    let call = os_call(host.start(vec![]));
    let OsFunctionCall::Getenv(args) = &call.call else {
        panic!("expected getenv, got {:?}", call.call)
    };
    assert_eq!(args.key, "HOME");
    assert_eq!(args.default, MontyObject::string("none"));
    let call = os_call(host.resume_os(CallResult::Value(MontyObject::string("/home/dart"))));
    let OsFunctionCall::ReadText(path) = &call.call else {
        panic!("expected read_text, got {:?}", call.call)
    };
    assert_eq!(path.as_str(), "/work/notes.txt");
    let call = os_call(host.resume_os(CallResult::Value(MontyObject::string("contents"))));
    assert!(
        matches!(call.call, OsFunctionCall::DateTimeNow(None)),
        "{:?}",
        call.call
    );
    let now = MontyObject::datetime(MontyDateTime {
        year: 2026,
        month: 11,
        day: 24,
        hour: 12,
        minute: 0,
        second: 0,
        microsecond: 0,
        offset_seconds: None,
        timezone_name: None,
    });
    let value = complete(host.resume_os(CallResult::Value(now.clone())));
    assert_eq!(
        value,
        MontyObject::tuple([MontyObject::string("/home/dart"), MontyObject::string("contents"), now])
    );
}

#[test]
fn os_calls_answered_not_handled_get_montys_default() {
    let host = Host::open(
        "from pathlib import Path\ntry:\n    Path('/etc/passwd').read_text()\nexcept PermissionError as e:\n    r = str(e)\nr",
        &[],
        ResourceLimits::default(),
    );
    os_call(host.start(vec![]));
    let value = complete(host.resume_os(CallResult::NotHandled));
    assert_eq!(value, MontyObject::string("Permission denied: '/etc/passwd'"));
}

#[test]
fn getenv_and_datetime_now_answered_not_handled_raise_runtime_error() {
    let mut open = OpenRun::new(
        "import os\nfrom datetime import datetime\nout = []\nfor f in (lambda: os.getenv('HOME'), lambda: datetime.now()):\n    try:\n        f()\n    except RuntimeError as e:\n        out.append(str(e))\nout",
    );
    open.os_policy = OsPolicy {
        datetime: DateTimeSource::CallHost,
        ..OsPolicy::default()
    };
    let host = Host::open_with(open);
    let call = os_call(host.start(vec![]));
    assert!(matches!(call.call, OsFunctionCall::Getenv(_)), "{:?}", call.call);
    let call = os_call(host.resume_os(CallResult::NotHandled));
    assert!(
        matches!(call.call, OsFunctionCall::DateTimeNow(None)),
        "{:?}",
        call.call
    );
    let value = complete(host.resume_os(CallResult::NotHandled));
    assert_eq!(
        value,
        MontyObject::list([
            MontyObject::string("'os.getenv' is not supported in this environment"),
            MontyObject::string("'datetime.now' is not supported in this environment"),
        ])
    );
}

#[test]
fn an_os_call_answered_with_an_exception_raises_it_in_the_sandbox() {
    let host = Host::open(
        "from pathlib import Path\ntry:\n    Path('data.bin').read_bytes()\nexcept FileNotFoundError as e:\n    r = ('caught', str(e))\nr",
        &[],
        ResourceLimits::default(),
    );
    let call = os_call(host.start(vec![]));
    assert!(matches!(call.call, OsFunctionCall::ReadBytes(_)), "{:?}", call.call);
    let value = complete(host.resume_os(CallResult::Exception(MontyException::new(
        ExcType::FileNotFoundError,
        Some("no such file: data.bin".into()),
    ))));
    assert_eq!(
        value,
        MontyObject::tuple([
            MontyObject::string("caught"),
            MontyObject::string("no such file: data.bin")
        ])
    );
}

#[test]
fn a_name_lookup_answered_with_an_exception_raises_it_with_a_traceback() {
    let host = Host::open("x = 1\nsecret_value * 2", &[], ResourceLimits::default());
    let response = host.start(vec![]);
    assert!(
        matches!(response.outcome, Outcome::NameLookup(_)),
        "{:?}",
        response.outcome
    );
    let exc = python_error(host.send(&Request::ResumeNameLookup(NameLookupResult::Exception(
        MontyException::new(
            ExcType::PermissionError,
            Some("secret_value is not for this script".into()),
        ),
    ))));
    assert_eq!(exc.exc_type(), ExcType::PermissionError);
    assert_eq!(exc.message(), Some("secret_value is not for this script"));
    let frame = exc.traceback().last().expect("the lookup's frame");
    assert_eq!(frame.start.line, 2, "{frame:?}");
}

#[test]
fn a_name_lookup_is_answered_with_a_value_or_undefined() {
    let host = Host::open("answer + 1", &[], ResourceLimits::default());
    let response = host.start(vec![]);
    let Outcome::NameLookup(lookup) = &response.outcome else {
        panic!("expected a name lookup, got {:?}", response.outcome)
    };
    assert_eq!(lookup.name, "answer");
    assert_eq!(lookup.object_id, None);
    let response = host.send(&Request::ResumeNameLookup(NameLookupResult::Value(int(41))));
    assert_eq!(complete(response), int(42));

    assert!(matches!(host.start(vec![]).outcome, Outcome::NameLookup(_)));
    let exc = python_error(host.send(&Request::ResumeNameLookup(NameLookupResult::Undefined)));
    assert_eq!(exc.exc_type(), ExcType::NameError);
}

#[test]
fn the_time_limit_stops_an_endless_loop() {
    let limits = ResourceLimits {
        max_feed_duration: Some(Duration::from_millis(200)),
        ..ResourceLimits::default()
    };
    let host = Host::open("while True:\n    pass", &[], limits);
    let response = host.send(&Request::Run(vec![]));
    assert!(response.usage.turn_elapsed >= Duration::from_millis(200));
    assert_eq!(python_error(response).exc_type(), ExcType::TimeoutError);
    // The session is still usable.
    assert_eq!(python_error(host.start(vec![])).exc_type(), ExcType::TimeoutError);
}

#[test]
fn the_recursion_limit_raises_recursion_error() {
    with_big_stack(|| {
        let limits = ResourceLimits {
            max_recursion_depth: 50,
            ..ResourceLimits::default()
        };
        let host = Host::open("def f(n):\n    return f(n + 1)\nf(0)", &[], limits);
        assert_eq!(python_error(host.start(vec![])).exc_type(), ExcType::RecursionError);
    });
}

#[test]
fn the_suspension_limit_aborts_the_run() {
    let limits = ResourceLimits {
        max_suspensions: 3,
        ..ResourceLimits::default()
    };
    let host = Host::open("for i in range(10):\n    f(i)", &["f"], limits);
    let mut response = host.start(vec![MontyObject::function("f", None)]);
    let mut calls = 0;
    while let Outcome::FunctionCall(_) = response.outcome {
        calls += 1;
        response = host.resume(CallResult::Value(MontyObject::none()));
    }
    assert_eq!(calls, 3);
    let exc = python_error(response);
    assert_eq!(exc.exc_type(), ExcType::RuntimeError);
    assert!(exc.message().unwrap_or_default().contains("suspension limit"), "{exc}");
}

#[test]
fn usage_accumulates_over_a_run_and_the_session() {
    let host = Host::open(
        "s = 0\nfor i in range(20000):\n    s += i\nf(s)\nfor i in range(20000):\n    s -= i\ns",
        &["f"],
        ResourceLimits::default(),
    );
    let first = host.start(vec![MontyObject::function("f", None)]);
    let first_usage = first.usage;
    function_call(first);
    let second = host.resume(CallResult::Value(MontyObject::none()));
    let usage = second.usage;
    assert_eq!(complete(second), int(0));
    assert!(first_usage.turn_elapsed > Duration::ZERO && usage.turn_elapsed > Duration::ZERO);
    assert_eq!(usage.feed_elapsed, first_usage.turn_elapsed + usage.turn_elapsed);
    assert!(usage.elapsed >= usage.feed_elapsed);
    assert!(usage.feed_elapsed < Duration::from_secs(60), "sane: {usage:?}");
    assert_eq!(usage.suspensions, 1);
    // Heap bytes are counted where monty's allocator is the process's own:
    // in a worker process, not in the host's.
    assert_eq!(usage.memory_bytes.is_some(), common::isolated(), "{usage:?}");
}

#[test]
fn abort_raises_uncatchably_at_the_suspension() {
    let host = Host::open(
        "try:\n    f()\nexcept Exception:\n    'swallowed'",
        &["f"],
        ResourceLimits::default(),
    );
    function_call(host.start(vec![MontyObject::function("f", None)]));
    let exc = python_error(host.send(&Request::Abort(MontyException::new(
        ExcType::TimeoutError,
        Some("host deadline".into()),
    ))));
    assert_eq!(exc.exc_type(), ExcType::TimeoutError);
    assert_eq!(exc.message(), Some("host deadline"));
}

#[test]
fn set_limits_between_phases() {
    let host = Host::open("f()\nwhile True:\n    pass", &["f"], ResourceLimits::default());
    function_call(host.start(vec![MontyObject::function("f", None)]));
    let limits = ResourceLimits {
        max_feed_duration: Some(Duration::from_millis(100)),
        ..ResourceLimits::default()
    };
    assert!(matches!(host.send(&Request::SetLimits(limits)).outcome, Outcome::Ok));
    let exc = python_error(host.resume(CallResult::Value(MontyObject::none())));
    assert_eq!(exc.exc_type(), ExcType::TimeoutError);
}

#[test]
fn eager_answers_need_an_eagerly_awaited_call() {
    let host = Host::open("f()", &["f"], ResourceLimits::default());
    let call = function_call(host.start(vec![MontyObject::function("f", None)]));
    assert!(!call.allow_eager_await);
    expect_code(host.resume(CallResult::EagerValue(int(1))), ErrorCode::InvalidArgument);
    expect_code(host.resume(CallResult::NotHandled), ErrorCode::InvalidArgument);
    assert_eq!(complete(host.resume(CallResult::Value(int(1)))), int(1));

    let host = Host::open(
        "import asyncio\nasync def main():\n    return await f()\nasyncio.run(main())",
        &["f"],
        ResourceLimits::default(),
    );
    let call = function_call(host.start(vec![MontyObject::function("f", None)]));
    assert!(call.allow_eager_await);
    assert_eq!(complete(host.resume(CallResult::EagerValue(int(7)))), int(7));
}

#[test]
fn dump_and_load_the_compiled_program() {
    let host = Host::open("x * 2", &["x"], ResourceLimits::default());
    let Outcome::Dump(dump) = host.send(&Request::DumpProgram).outcome else {
        panic!("expected a dump")
    };
    let other = Host::new();
    let response = other.send(&Request::LoadProgram {
        dump: dump.clone(),
        limits: ResourceLimits::default(),
    });
    assert!(matches!(response.outcome, Outcome::Ok), "{:?}", response.outcome);
    assert_eq!(complete(other.send(&Request::Run(vec![int(21)]))), int(42));

    let mut tampered = dump;
    let last = tampered.len() - 9;
    tampered[last] ^= 0xff;
    let fresh = Host::new();
    let response = fresh.send(&Request::LoadProgram {
        dump: tampered,
        limits: ResourceLimits::default(),
    });
    assert!(
        matches!(&response.outcome, Outcome::ProtocolError(e) if matches!(e.code, ErrorCode::InvalidDump | ErrorCode::InternalError)),
        "{:?}",
        response.outcome
    );
    expect_code(
        fresh.send(&Request::LoadProgram {
            dump: b"not a dump".to_vec(),
            limits: ResourceLimits::default(),
        }),
        ErrorCode::InvalidDump,
    );
}

#[test]
fn print_output_is_kept_per_request() {
    let host = Host::open("print('a')\nf()\nprint('b')", &["f"], ResourceLimits::default());
    let first = host.start(vec![MontyObject::function("f", None)]);
    assert_eq!(first.output.len(), 1);
    assert_eq!(first.output[0].text, "a\n");
    let second = host.resume(CallResult::Value(MontyObject::none()));
    assert_eq!(second.output[0].text, "b\n");
}

#[test]
fn requests_in_the_wrong_state_leave_the_session_intact() {
    let host = Host::open("f()", &["f"], ResourceLimits::default());
    expect_code(host.resume(CallResult::Value(int(1))), ErrorCode::WrongState);
    function_call(host.start(vec![MontyObject::function("f", None)]));
    for request in [
        Request::Run(vec![]),
        Request::Start(vec![]),
        Request::ResumeOsCall(CallResult::NotHandled),
        Request::ResumeNameLookup(NameLookupResult::Undefined),
        Request::ResolveFutures(vec![]),
        Request::OpenRun(Box::new(OpenRun::new("1"))),
    ] {
        expect_code(host.send(&request), ErrorCode::WrongState);
    }
    assert_eq!(complete(host.resume(CallResult::Value(int(3)))), int(3));
}

#[test]
fn sessions_are_send() {
    fn assert_send<T: Send>() {}
    assert_send::<monty_wire::Session>();
}
