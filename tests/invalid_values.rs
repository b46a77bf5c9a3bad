//! A value the schema can carry but Python cannot hold is refused with
//! `invalidValue`, naming the node and the reason, wherever a host hands a
//! value to Python; the session is left as it was and takes a correct value
//! next. An OS call answered with a value of the wrong type is refused the
//! same way. Through the C entry points.

mod common;

use capnp::message::Builder;
use common::{Host, complete, dispatch_bytes, expect_code, function_call, os_call};
use monty_types::{
    DateTimeSource, MontyDate, MontyDateTime, MontyObject, MontyTime, MontyTimeDelta, MontyTimeZone, OsPolicy,
    ResourceLimits, file_stat,
};
use monty_wire::{
    codec::{FramedAllocator, WireMessage, builder_with_capacity},
    protocol::{CallResult, ErrorCode, Feed, NameLookupResult, OpenRun, Outcome, Request, Response},
    schema::monty_wire_capnp as wire,
};

fn int(i: i64) -> MontyObject {
    MontyObject::int(i)
}

fn date(year: i32, month: u8, day: u8) -> MontyObject {
    MontyObject::date(MontyDate { year, month, day })
}

/// Values Python cannot hold, with what the refusal must say: the node and
/// the reason.
fn bad_values() -> Vec<(&'static str, MontyObject, &'static [&'static str])> {
    vec![
        (
            "Feb 30",
            date(2024, 2, 30),
            &["node 0", "2024-02-30", "day is out of range"],
        ),
        ("month 13", date(2024, 13, 1), &["node 0", "month must be in 1..12"]),
        ("year 0", date(0, 1, 1), &["node 0", "year must be in 1..9999"]),
        (
            "a datetime at 24 o'clock",
            MontyObject::datetime(MontyDateTime {
                year: 2024,
                month: 1,
                day: 1,
                hour: 24,
                minute: 0,
                second: 0,
                microsecond: 0,
                offset_seconds: None,
                timezone_name: None,
            }),
            &["node 0", "hour must be in 0..23"],
        ),
        (
            "a time with fold 2",
            MontyObject::time(MontyTime {
                hour: 1,
                minute: 0,
                second: 0,
                microsecond: 0,
                offset_seconds: None,
                timezone_name: None,
                fold: 2,
            }),
            &["node 0", "fold must be 0 or 1"],
        ),
        (
            "a non-normalised timedelta",
            MontyObject::timedelta(MontyTimeDelta {
                days: 0,
                seconds: -1,
                microseconds: 0,
            }),
            &["node 0", "not normalised"],
        ),
        (
            "a timezone of a day",
            MontyObject::timezone(MontyTimeZone {
                offset_seconds: 86_400,
                name: None,
            }),
            &["node 0", "strictly between -24 and 24 hours"],
        ),
        (
            "a bad decimal",
            MontyObject::decimal("1.2.3"),
            &["node 0", "\"1.2.3\" is not a number"],
        ),
        (
            "a decimal exponent out of range",
            MontyObject::decimal("1e1000000000000000000"),
            &["node 0", "exponent out of range"],
        ),
        (
            "a cycle node",
            MontyObject::cycle("[...]"),
            &["node 0", "cycle node is output only"],
        ),
        (
            "a repr node",
            MontyObject::repr("<object>"),
            &["node 0", "repr node is output only"],
        ),
        (
            "an unhashable dict key",
            MontyObject::dict([(MontyObject::list([int(1)]), int(2))]),
            &["dict key node 1 is unhashable (list)"],
        ),
        (
            "a set element hiding a list in a tuple",
            MontyObject::set([MontyObject::tuple([MontyObject::list([])])]),
            &["set element node 1 is unhashable (tuple)"],
        ),
        (
            "a bad date deep in a list",
            MontyObject::list([int(1), MontyObject::tuple([date(2023, 2, 29)])]),
            &["node 1", "2023-02-29"],
        ),
    ]
}

fn assert_refused(response: Response, case: &str, context: &str, fragments: &[&str]) {
    let error = expect_code(response, ErrorCode::InvalidValue);
    for fragment in [context].iter().chain(fragments) {
        assert!(
            error.message.contains(fragment),
            "{case}: {:?} lacks {fragment:?}",
            error.message
        );
    }
}

/// A run suspended at `f()`, which returns what the host answers.
fn at_function_call() -> Host {
    let host = Host::open("f()", &["f"], ResourceLimits::default());
    function_call(host.start(vec![MontyObject::function("f", None)]));
    host
}

#[test]
fn resume_values_python_cannot_hold_are_refused_and_the_run_goes_on() {
    for (case, value, fragments) in bad_values() {
        let host = at_function_call();
        assert_refused(
            host.resume(CallResult::Value(value)),
            case,
            "resumeCall value",
            fragments,
        );
        assert_eq!(complete(host.resume(CallResult::Value(int(7)))), int(7), "{case}");
    }
}

#[test]
fn values_every_request_hands_to_python_are_checked() {
    let bad = || date(2024, 2, 30);

    // Inputs of `run` and `start`.
    let host = Host::open("x", &["x"], ResourceLimits::default());
    assert_refused(host.send(&Request::Run(vec![bad()])), "run", "input 0", &["node 0"]);
    assert_refused(host.start(vec![bad()]), "start", "input 0", &["node 0"]);
    assert_eq!(complete(host.send(&Request::Run(vec![int(1)]))), int(1));

    // The answer to an OS call, a name lookup and a future.
    let host = Host::open(
        "from pathlib import Path\nPath('/f').stat()",
        &[],
        ResourceLimits::default(),
    );
    os_call(host.start(vec![]));
    assert_refused(
        host.resume_os(CallResult::Value(bad())),
        "osCall",
        "resumeOsCall value",
        &["node 0"],
    );
    let stat = file_stat(0o644, 1, 0.0);
    assert_eq!(complete(host.resume_os(CallResult::Value(stat.clone()))), stat);

    let host = Host::open("missing", &[], ResourceLimits::default());
    assert!(matches!(host.start(vec![]).outcome, Outcome::NameLookup(_)));
    assert_refused(
        host.send(&Request::ResumeNameLookup(NameLookupResult::Value(bad()))),
        "name lookup",
        "resumeNameLookup value",
        &["node 0"],
    );
    assert_eq!(
        complete(host.send(&Request::ResumeNameLookup(NameLookupResult::Value(int(3))))),
        int(3)
    );

    let host = Host::open(
        "async def main():\n    return await f()\nawait main()",
        &["f"],
        ResourceLimits::default(),
    );
    let call = function_call(host.start(vec![MontyObject::function("f", None)]));
    assert!(matches!(
        host.resume(CallResult::Future).outcome,
        Outcome::ResolveFutures(_)
    ));
    assert_refused(
        host.send(&Request::ResolveFutures(vec![(call.call_id, CallResult::Value(bad()))])),
        "future",
        &format!("result of call id {}", call.call_id),
        &["node 0"],
    );
    assert_eq!(
        complete(host.send(&Request::ResolveFutures(vec![(
            call.call_id,
            CallResult::Value(int(4))
        )]))),
        int(4)
    );

    // An eager answer to an eagerly awaited call.
    let host = Host::open(
        "import asyncio\nasync def main():\n    return await f()\nasyncio.run(main())",
        &["f"],
        ResourceLimits::default(),
    );
    assert!(function_call(host.start(vec![MontyObject::function("f", None)])).allow_eager_await);
    assert_refused(
        host.resume(CallResult::EagerValue(bad())),
        "eagerValue",
        "resumeCall value",
        &["node 0"],
    );
    assert_eq!(complete(host.resume(CallResult::EagerValue(int(6)))), int(6));

    // A REPL's feed inputs and function arguments.
    let repl = Host::new();
    assert!(matches!(
        repl.send(&Request::OpenRepl(Box::default())).outcome,
        Outcome::Ok
    ));
    let mut feed = Feed::new("y = x\ny");
    feed.inputs = vec![("x".into(), bad())];
    assert_refused(
        repl.send(&Request::FeedRun(feed.clone())),
        "feedRun",
        "input \"x\"",
        &["node 0"],
    );
    assert_refused(
        repl.send(&Request::FeedStart(feed)),
        "feedStart",
        "input \"x\"",
        &["node 0"],
    );
    complete(repl.send(&Request::FeedRun(Feed::new("def g(v):\n    return v"))));
    assert_refused(
        repl.send(&Request::CallFunction {
            name: "g".into(),
            args: vec![int(1), bad()],
        }),
        "callFunction",
        "argument 1",
        &["node 0"],
    );
    assert_eq!(
        complete(repl.send(&Request::CallFunction {
            name: "g".into(),
            args: vec![int(5)],
        })),
        int(5)
    );
}

/// A `resumeCall` request whose value is one node written by `node`: for
/// what the typed builders cannot write.
fn raw_resume(node: impl FnOnce(wire::node::Builder<'_>)) -> Vec<u8> {
    let mut builder: Builder<FramedAllocator> = builder_with_capacity(64);
    {
        let request = builder.init_root::<wire::request::Builder<'_>>();
        let mut value = request.init_resume_call().init_value();
        node(value.reborrow().init_nodes(1).get(0));
        value.set_root(0);
    }
    WireMessage::finish(builder).as_bytes().to_vec()
}

#[test]
fn nodes_no_value_can_be_are_refused_naming_the_node() {
    let cases: Vec<(&str, Vec<u8>, &[&str])> = vec![
        (
            "a bigint with a leading zero",
            raw_resume(|n| n.init_big_int().set_magnitude(&[0, 1])),
            &["node 0", "leading zero"],
        ),
        (
            "an unknown type name",
            raw_resume(|mut n| n.set_type("no_such_type")),
            &["node 0", "unknown type name \"no_such_type\""],
        ),
        (
            "a 5-byte UUID",
            raw_resume(|n| {
                let mut module = n.init_module();
                module.set_name("m");
                module.set_id(&[1; 5]);
                module.init_attrs(0);
            }),
            &["node 0", "16-byte UUID, got 5 bytes"],
        ),
    ];
    for (case, bytes, fragments) in cases {
        let host = at_function_call();
        assert_refused(dispatch_bytes(host.handle, &bytes), case, "request rejected", fragments);
        assert_eq!(complete(host.resume(CallResult::Value(int(7)))), int(7), "{case}");
    }
}

/// What a run of `code` asks the host first, under `policy`.
fn at_os_call(code: &str, policy: OsPolicy) -> Host {
    let mut open = OpenRun::new(format!("from pathlib import Path\nimport os\n{code}"));
    open.os_policy = policy;
    let host = Host::open_with(open);
    os_call(host.start(vec![]));
    host
}

#[test]
fn an_os_call_answered_with_the_wrong_type_is_refused() {
    let path = |p: &str| MontyObject::path(p);
    let s = MontyObject::string;
    // (code, a wrong answer, what the refusal names, a right answer)
    let cases: Vec<(&str, MontyObject, &str, MontyObject)> = vec![
        (
            "Path('/f').read_text()",
            int(1),
            "Path.read_text returns str, not int",
            s("text"),
        ),
        (
            "Path('/f').read_bytes()",
            s("x"),
            "Path.read_bytes returns bytes, not str",
            MontyObject::bytes(b"x".to_vec()),
        ),
        (
            "Path('/f').exists()",
            s("yes"),
            "Path.exists returns bool, not str",
            MontyObject::bool(true),
        ),
        (
            "Path('/f').is_file()",
            int(1),
            "Path.is_file returns bool, not int",
            MontyObject::bool(false),
        ),
        (
            "Path('/f').is_dir()",
            MontyObject::none(),
            "Path.is_dir returns bool, not NoneType",
            MontyObject::bool(true),
        ),
        (
            "Path('/f').stat()",
            int(0),
            "Path.stat returns an os.stat_result named tuple, not int",
            file_stat(0o644, 3, 0.0),
        ),
        (
            "list(Path('/d').iterdir())",
            MontyObject::list([path("/d/a"), int(2)]),
            "node 1: Path.iterdir returns a list of paths (Path or str), not int",
            MontyObject::list([path("/d/a")]),
        ),
        (
            "Path('/f').write_text('x')",
            s("1"),
            "Path.write_text returns int, not str",
            int(1),
        ),
        (
            "Path('/d').mkdir()",
            int(0),
            "Path.mkdir returns None, not int",
            MontyObject::none(),
        ),
        (
            "Path('/f').resolve()",
            int(0),
            "Path.resolve returns a path (Path or str), not int",
            path("/f"),
        ),
        (
            "os.getenv('HOME')",
            int(0),
            "os.getenv returns str or the call's default, not int",
            s("/home"),
        ),
        (
            "os.getenv('HOME', 5)",
            MontyObject::bool(true),
            "os.getenv returns str or the call's default",
            int(5),
        ),
        (
            "dict(os.environ)",
            MontyObject::dict([(s("A"), int(1))]),
            "os.environ returns a dict of str to str, not int",
            MontyObject::dict([(s("A"), s("1"))]),
        ),
        (
            "os.urandom(4)",
            MontyObject::bytes(vec![0; 3]),
            "os.urandom returns bytes of the length asked for",
            MontyObject::bytes(vec![0; 4]),
        ),
    ];
    for (code, wrong, message, right) in cases {
        let host = at_os_call(code, OsPolicy::default());
        assert_refused(
            host.resume_os(CallResult::Value(wrong)),
            code,
            "resumeOsCall value",
            &[message],
        );
        let response = host.resume_os(CallResult::Value(right));
        assert!(
            matches!(response.outcome, Outcome::Complete(_)),
            "{code}: {:?}",
            response.outcome
        );
    }

    // The clock, when the host answers it.
    let policy = OsPolicy {
        datetime: DateTimeSource::CallHost,
        ..OsPolicy::default()
    };
    let host = at_os_call("import time\ntime.time()", policy.clone());
    assert_refused(
        host.resume_os(CallResult::Value(s("now"))),
        "time.time",
        "resumeOsCall value",
        &["time.time returns float (seconds since the epoch), not str"],
    );
    assert_eq!(
        complete(host.resume_os(CallResult::Value(MontyObject::float(1.5)))),
        MontyObject::float(1.5)
    );
    let host = at_os_call("import datetime\ndatetime.date.today()", policy);
    assert_refused(
        host.resume_os(CallResult::Value(int(0))),
        "date.today",
        "resumeOsCall value",
        &["date.today returns a date, not int"],
    );
    complete(host.resume_os(CallResult::Value(date(2024, 2, 29))));
}
