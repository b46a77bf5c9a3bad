//! Requests and responses: every arm that goes out comes back the same, and
//! the checks specific to them (input roots, zone names) refuse bad bytes.
//!
//! Types without `PartialEq` (`OsFunctionCall`, `OsPolicy` with a NaN seed,
//! `ResourceLimits`, `CompileOptions`, and the `Request` / `Outcome` enums
//! holding them) are compared through their `Debug` form, which spells out
//! every field and every arena node.

use std::{collections::HashSet, time::Duration};

use monty_types::{
    AssertMessageAnnotations, CallArgs, CompileOptions, DateTimeSource, ExcType, FileMode, GetenvArgs, MkdirCallArgs,
    ModuleStub, MontyException, MontyObject, MontyPath, MontyTimeZone, MontyUuid, OpenCallArgs, OsFunctionCall,
    OsPolicy, PathBytesDataArgs, PathStringDataArgs, PrintStream, ProcessTime, RandomSeed, RandomStart, RenameCallArgs,
    ResourceLimits, SandboxTimeZone, ScanArgs, SleepMode, SourceRange, StackFrame, TimeCaller, UrandomArgs,
    unstable::{self, MontyGraph, MontyNode, NodeId},
};
use monty_wire::{
    DecodeError, DecodeLimits, codec, decode_request, decode_response, encode_request, encode_response,
    protocol::{
        CallResult, Environment, ErrorCode, Feed, FunctionCallEvent, HostAccess, Mount, MountMode, NameLookupEvent,
        NameLookupResult, OpenRepl, OpenRun, OsCallEvent, Outcome, PrintSegment, ProtocolError, Request,
        ResolveFuturesEvent, Response, TypeCheckOptions, Usage, WorkerExit,
    },
    schema::monty_wire_capnp as wire,
};
use num_bigint::BigInt;
use proptest::{collection::vec, prelude::*};

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

fn round_trip_request(request: &Request) -> Request {
    let message = encode_request(request).expect("encode request");
    decode_request(message.as_bytes(), &DecodeLimits::default()).expect("decode request")
}

fn round_trip_response(response: &Response) -> Response {
    let message = encode_response(response).expect("encode response");
    decode_response(message.as_bytes(), &DecodeLimits::default()).expect("decode response")
}

/// Round-trips `request` and checks every field came back, returning the copy.
fn assert_request_round_trips(request: &Request) -> Request {
    let back = round_trip_request(request);
    assert_eq!(format!("{back:?}"), format!("{request:?}"));
    back
}

fn response(outcome: Outcome) -> Response {
    Response {
        outcome,
        output: Vec::new(),
        usage: Usage::default(),
    }
}

/// Round-trips `response` and checks every field came back, returning the copy.
fn assert_response_round_trips(response: &Response) -> Response {
    let back = round_trip_response(response);
    assert_eq!(format!("{back:?}"), format!("{response:?}"));
    assert_eq!(back.output, response.output);
    assert_eq!(back.usage, response.usage);
    back
}

/// Builds a message whose root is a `Request`, for bytes no encoder writes.
fn raw_request(fill: impl FnOnce(wire::request::Builder<'_>)) -> Vec<u8> {
    let mut message = capnp::message::Builder::new_default();
    fill(message.init_root());
    codec::WireMessage::from_builder(&message).as_bytes().to_vec()
}

fn decode_raw_request(fill: impl FnOnce(wire::request::Builder<'_>)) -> Result<Request, DecodeError> {
    decode_request(&raw_request(fill), &DecodeLimits::default())
}

fn position() -> SourceRange {
    SourceRange::new("main.py", 10, 24)
}

fn exception() -> MontyException {
    MontyException::with_traceback(
        ExcType::ValueError,
        Some("bad value".to_owned()),
        vec![StackFrame {
            filename: "main.py".to_owned(),
            start: monty_types::CodeLoc::new(3, 5),
            end: monty_types::CodeLoc::new(3, 12),
            frame_name: Some("f".to_owned()),
            preview_line: Some("    f(x)".into()),
            hide_caret: false,
            hide_frame_name: false,
        }],
    )
}

fn nested_value() -> MontyObject {
    MontyObject::dict([
        (
            MontyObject::string("items"),
            MontyObject::list([MontyObject::int(1), MontyObject::float(f64::NAN), MontyObject::none()]),
        ),
        (
            MontyObject::int(7),
            MontyObject::tuple([
                MontyObject::bytes(vec![0, 255]),
                MontyObject::bigint(BigInt::from(-1) << 100),
            ]),
        ),
    ])
}

fn custom_limits() -> ResourceLimits {
    ResourceLimits {
        max_feed_duration: Some(Duration::from_millis(1500)),
        max_turn_duration: None,
        max_memory: Some(64 << 20),
        gc_interval: Some(10),
        max_recursion_depth: 50,
        max_suspensions: 7,
        max_total_sleep: Some(Duration::from_secs(3)),
    }
}

/// One policy per arm of every `OsPolicy` union and enum.
fn policies() -> Vec<OsPolicy> {
    let base = OsPolicy::default;
    vec![
        base(),
        OsPolicy {
            datetime: DateTimeSource::CallHost,
            timezone: SandboxTimeZone::Fixed {
                offset_seconds: -5 * 3600,
                name: Some("EST".to_owned()),
            },
            sleep: SleepMode::CallHost,
            process_time: ProcessTime::Elapsed,
            random_start: RandomStart::CallHost,
        },
        OsPolicy {
            datetime: DateTimeSource::Fixed {
                unix_seconds: -1_234_567_890,
                microsecond: 999_999,
            },
            timezone: SandboxTimeZone::named("Europe/Paris").expect("the bundled database has Europe/Paris"),
            sleep: SleepMode::Zero,
            random_start: RandomStart::Seed(RandomSeed::Int(BigInt::from(-12_345_678_901_234_567_890_123_i128))),
            ..base()
        },
        OsPolicy {
            timezone: SandboxTimeZone::Fixed {
                offset_seconds: 19_800,
                name: None,
            },
            sleep: SleepMode::System(Duration::from_millis(1500)),
            random_start: RandomStart::Seed(RandomSeed::Int(BigInt::from(0))),
            ..base()
        },
        OsPolicy {
            // Offset zero without the name "UTC" is not the `utc` arm.
            timezone: SandboxTimeZone::Fixed {
                offset_seconds: 0,
                name: None,
            },
            random_start: RandomStart::Seed(RandomSeed::Float(-0.0)),
            ..base()
        },
        OsPolicy {
            random_start: RandomStart::Seed(RandomSeed::Float(f64::NAN)),
            ..base()
        },
        OsPolicy {
            random_start: RandomStart::Seed(RandomSeed::Str("seed \u{1F600}".to_owned())),
            ..base()
        },
        OsPolicy {
            random_start: RandomStart::Seed(RandomSeed::Bytes(vec![0, 1, 255])),
            ..base()
        },
    ]
}

fn path(p: &str) -> MontyPath {
    MontyPath::from(p)
}

/// One call of every `OsFunctionCall` variant, in declaration order.
fn every_os_call() -> Vec<OsFunctionCall> {
    vec![
        OsFunctionCall::Exists(path("/a")),
        OsFunctionCall::IsFile(path("/a/file.txt")),
        OsFunctionCall::IsDir(path("/a/dir")),
        OsFunctionCall::IsSymlink(path("/a/link")),
        OsFunctionCall::ReadText(path("/r.txt")),
        OsFunctionCall::ReadBytes(path("/r.bin")),
        OsFunctionCall::Stat(path("/s")),
        OsFunctionCall::Iterdir(path("/")),
        OsFunctionCall::Scan(ScanArgs::listing(path("/tree"), Some(1), true)),
        OsFunctionCall::Resolve(path("/x/../y")),
        OsFunctionCall::Absolute(path("rel")),
        OsFunctionCall::WriteText(PathStringDataArgs {
            path: path("/w.txt"),
            data: "text\0with nul".to_owned(),
        }),
        OsFunctionCall::AppendText(PathStringDataArgs {
            path: path("/w.txt"),
            data: String::new(),
        }),
        OsFunctionCall::WriteBytes(PathBytesDataArgs {
            path: path("/w.bin"),
            data: vec![0, 1, 255],
        }),
        OsFunctionCall::AppendBytes(PathBytesDataArgs {
            path: path("/w.bin"),
            data: Vec::new(),
        }),
        OsFunctionCall::Open(OpenCallArgs {
            path: path("/o"),
            mode: FileMode::AppendUpdate(true),
        }),
        OsFunctionCall::Mkdir(MkdirCallArgs {
            path: path("/m/n"),
            parents: true,
            exist_ok: false,
        }),
        OsFunctionCall::Unlink(path("/u")),
        OsFunctionCall::Rmdir(path("/d")),
        OsFunctionCall::Rename(RenameCallArgs {
            src: path("/src"),
            dst: path("/dst"),
        }),
        OsFunctionCall::Getenv(GetenvArgs {
            key: "HOME".to_owned(),
            default: MontyObject::none(),
        }),
        OsFunctionCall::GetEnviron,
        OsFunctionCall::DateToday,
        OsFunctionCall::DateTimeNow(None),
        OsFunctionCall::Urandom(UrandomArgs { size: u64::MAX }),
        OsFunctionCall::Time(TimeCaller::PerfCounterNs),
        OsFunctionCall::Sleep(Duration::from_secs_f64(1.5)),
        OsFunctionCall::SystemSleep(Duration::from_nanos(1)),
        OsFunctionCall::AsyncSleep(Duration::ZERO),
        OsFunctionCall::AsyncSystemSleep(Duration::from_secs(3)),
        OsFunctionCall::Import("pkg".to_owned()),
        OsFunctionCall::ImportStubs(vec!["a".to_owned(), "b.c".to_owned()]),
    ]
}

/// Further payloads of the calls with more than one shape.
fn more_os_calls() -> Vec<OsFunctionCall> {
    let mut calls = vec![
        OsFunctionCall::Scan(ScanArgs::glob(
            path("/g"),
            vec!["**".to_owned(), "*.py".to_owned(), String::new()],
            Some(false),
            true,
        )),
        OsFunctionCall::Scan(ScanArgs {
            path: path("/g"),
            max_depth: None,
            follow_symlinks: false,
            pattern: Some(Vec::new()),
            case_sensitive: Some(true),
            recurse_symlinks: false,
        }),
        OsFunctionCall::DateTimeNow(Some(MontyTimeZone {
            offset_seconds: 3600,
            name: Some("CET".to_owned()),
        })),
        OsFunctionCall::DateTimeNow(Some(MontyTimeZone {
            offset_seconds: -86_399,
            name: None,
        })),
        OsFunctionCall::Getenv(GetenvArgs {
            key: String::new(),
            default: nested_value(),
        }),
        OsFunctionCall::ImportStubs(Vec::new()),
    ];
    calls.extend(
        [
            TimeCaller::Time,
            TimeCaller::TimeNs,
            TimeCaller::Monotonic,
            TimeCaller::MonotonicNs,
            TimeCaller::PerfCounter,
            TimeCaller::PerfCounterNs,
            TimeCaller::Gmtime,
            TimeCaller::Localtime,
            TimeCaller::Asctime,
            TimeCaller::Ctime,
            TimeCaller::Strftime,
        ]
        .map(OsFunctionCall::Time),
    );
    for binary in [false, true] {
        calls.extend(
            [
                FileMode::Read(binary),
                FileMode::ReadUpdate(binary),
                FileMode::Write(binary),
                FileMode::WriteUpdate(binary),
                FileMode::Append(binary),
                FileMode::AppendUpdate(binary),
            ]
            .map(|mode| OsFunctionCall::Open(OpenCallArgs { path: path("/f"), mode })),
        );
    }
    calls
}

fn os_call_response(call: OsFunctionCall) -> Response {
    response(Outcome::OsCall(OsCallEvent {
        call,
        call_id: 42,
        allow_eager_await: true,
        position: position(),
    }))
}

// ---------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------

#[test]
fn open_run_round_trips_every_field() {
    let open = OpenRun {
        code: "x = a + b\nprint(x)\n".to_owned(),
        script_name: "prog/tool.py".to_owned(),
        input_names: vec!["a".to_owned(), "b".to_owned(), String::new()],
        compile_options: CompileOptions {
            assert_message_annotations: AssertMessageAnnotations::Off,
            source_scan_threshold: 0,
        },
        limits: custom_limits(),
        os_policy: policies().swap_remove(2),
        cwd: "/home/sandbox".to_owned(),
        access: host_access(),
    };
    assert_request_round_trips(&Request::OpenRun(Box::new(open)));
    assert_request_round_trips(&Request::OpenRun(Box::new(OpenRun::new(""))));
}

/// Every mount mode, both memory budgets, and an environment map.
fn host_access() -> HostAccess {
    HostAccess {
        mounts: mounts(),
        environment: Environment::Map(vec![
            ("HOME".into(), "/home/sandbox".into()),
            (String::new(), "é".into()),
        ]),
    }
}

fn mounts() -> Vec<Mount> {
    [MountMode::ReadOnly, MountMode::ReadWrite, MountMode::Overlay]
        .into_iter()
        .zip([None, Some(0), Some(u64::MAX)])
        .map(|(mode, memory_limit)| Mount {
            virtual_path: "/data".into(),
            host_path: "./dir with spaces/é".into(),
            mode,
            memory_limit,
        })
        .collect()
}

#[test]
fn load_session_round_trips_the_hosts_mounts_and_environment() {
    for access in [HostAccess::default(), host_access()] {
        assert_request_round_trips(&Request::LoadSession {
            dump: vec![1, 2, 3],
            limits: custom_limits(),
            access,
        });
    }
}

#[test]
fn compile_options_round_trip() {
    for compile_options in [
        CompileOptions::default(),
        CompileOptions {
            assert_message_annotations: AssertMessageAnnotations::from_max_bytes(1),
            source_scan_threshold: usize::MAX,
        },
        CompileOptions {
            assert_message_annotations: AssertMessageAnnotations::from_max_bytes(u32::MAX),
            source_scan_threshold: 1,
        },
    ] {
        assert_request_round_trips(&Request::OpenRun(Box::new(OpenRun {
            compile_options,
            ..OpenRun::new("pass")
        })));
    }
}

#[test]
fn every_os_policy_arm_round_trips() {
    for os_policy in policies() {
        let back = assert_request_round_trips(&Request::OpenRun(Box::new(OpenRun {
            os_policy: os_policy.clone(),
            ..OpenRun::new("pass")
        })));
        let Request::OpenRun(back) = back else {
            panic!("an openRun came back as another request")
        };
        if !matches!(os_policy.random_start, RandomStart::Seed(RandomSeed::Float(f)) if f.is_nan()) {
            assert_eq!(back.os_policy, os_policy);
        }
    }
}

#[test]
fn named_time_zone_is_resolved_again_on_decode() {
    let paris = SandboxTimeZone::named("Europe/Paris").unwrap();
    let request = Request::OpenRun(Box::new(OpenRun {
        os_policy: OsPolicy {
            timezone: paris.clone(),
            ..OsPolicy::default()
        },
        ..OpenRun::new("pass")
    }));
    let Request::OpenRun(back) = round_trip_request(&request) else {
        panic!("an openRun came back as another request")
    };
    assert_eq!(back.os_policy.timezone, paris);
    assert_eq!(back.os_policy.timezone.iana_name(), Some("Europe/Paris"));
}

#[test]
fn over_long_durations_saturate() {
    let request = Request::OpenRun(Box::new(OpenRun {
        os_policy: OsPolicy {
            sleep: SleepMode::System(Duration::MAX),
            ..OsPolicy::default()
        },
        ..OpenRun::new("pass")
    }));
    let Request::OpenRun(back) = round_trip_request(&request) else {
        panic!("an openRun came back as another request")
    };
    assert_eq!(back.os_policy.sleep, SleepMode::System(Duration::from_nanos(u64::MAX)));
}

#[test]
fn an_open_run_with_only_code_takes_the_schema_defaults() {
    let decoded = decode_raw_request(|b| b.init_open_run().set_code("print(1)")).expect("decode");
    assert_eq!(
        format!("{decoded:?}"),
        format!("{:?}", Request::OpenRun(Box::new(OpenRun::new("print(1)"))))
    );
}

#[test]
fn run_and_start_round_trip_their_inputs() {
    let inputs = vec![
        MontyObject::int(1),
        nested_value(),
        MontyObject::string(""),
        nested_value(),
    ];
    for request in [Request::Run(inputs.clone()), Request::Start(inputs.clone())] {
        match assert_request_round_trips(&request) {
            Request::Run(back) | Request::Start(back) => assert_eq!(back, inputs),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_request_round_trips(&Request::Run(Vec::new()));
    assert_request_round_trips(&Request::Start(Vec::new()));
}

#[test]
fn every_call_result_round_trips() {
    let results = [
        CallResult::Value(nested_value()),
        CallResult::Exception(exception()),
        CallResult::Future,
        CallResult::NotFound,
        CallResult::NotHandled,
        CallResult::EagerValue(MontyObject::string("done")),
        CallResult::EagerException(MontyException::new(ExcType::TimeoutError, None)),
    ];
    for result in results {
        for request in [
            Request::ResumeCall(result.clone()),
            Request::ResumeOsCall(result.clone()),
        ] {
            match assert_request_round_trips(&request) {
                Request::ResumeCall(back) | Request::ResumeOsCall(back) => assert_eq!(back, result),
                other => panic!("unexpected {other:?}"),
            }
        }
    }
}

#[test]
fn every_name_lookup_result_round_trips() {
    for result in [
        NameLookupResult::Value(nested_value()),
        NameLookupResult::Undefined,
        NameLookupResult::Exception(exception()),
    ] {
        match assert_request_round_trips(&Request::ResumeNameLookup(result.clone())) {
            Request::ResumeNameLookup(back) => assert_eq!(back, result),
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[test]
fn resolve_futures_round_trips() {
    let results = vec![
        (0, CallResult::Value(MontyObject::int(5))),
        (u32::MAX, CallResult::Exception(exception())),
        (7, CallResult::NotFound),
        (8, CallResult::Future),
    ];
    match assert_request_round_trips(&Request::ResolveFutures(results.clone())) {
        Request::ResolveFutures(back) => assert_eq!(back, results),
        other => panic!("unexpected {other:?}"),
    }
    assert_request_round_trips(&Request::ResolveFutures(Vec::new()));
}

#[test]
fn the_remaining_requests_round_trip() {
    match assert_request_round_trips(&Request::Abort(exception())) {
        Request::Abort(back) => assert_eq!(back, exception()),
        other => panic!("unexpected {other:?}"),
    }
    assert_request_round_trips(&Request::SetLimits(custom_limits()));
    assert_request_round_trips(&Request::SetLimits(ResourceLimits::default()));
    assert_request_round_trips(&Request::DumpProgram);
    assert_request_round_trips(&Request::LoadProgram {
        dump: vec![0, 1, 2, 255],
        limits: custom_limits(),
    });
    assert_request_round_trips(&Request::LoadProgram {
        dump: Vec::new(),
        limits: ResourceLimits::default(),
    });
}

// ---------------------------------------------------------------------------
// Inputs arenas a host may write
// ---------------------------------------------------------------------------

/// A `run` request whose `Inputs` holds exactly `nodes` and `roots`.
fn raw_inputs(graph: &MontyGraph, roots: &[u32]) -> Vec<u8> {
    raw_request(|b| {
        let mut inputs = b.init_run();
        codec::value::write_graph(graph, inputs.reborrow().init_nodes(u32::try_from(graph.len()).unwrap())).unwrap();
        let mut out = inputs.init_roots(u32::try_from(roots.len()).unwrap());
        for (i, root) in (0..).zip(roots) {
            out.set(i, *root);
        }
    })
}

fn decode_inputs(graph: &MontyGraph, roots: &[u32]) -> Result<Vec<MontyObject>, DecodeError> {
    match decode_request(&raw_inputs(graph, roots), &DecodeLimits::default())? {
        Request::Run(values) => Ok(values),
        other => panic!("unexpected {other:?}"),
    }
}

/// `[0] int, [1] str, [2] list[0, 1], [3] tuple[2], [4] int, [5] list[4, 2]`:
/// node 5 shares the list at 2 with the tuple at 3.
fn shared_arena() -> MontyGraph {
    let mut graph = MontyGraph::new();
    let int = graph.push(MontyNode::Int(1));
    let text = graph.push(MontyNode::String("s".to_owned()));
    let list = graph.push(MontyNode::List(vec![int, text]));
    graph.push(MontyNode::Tuple(vec![list]));
    let other = graph.push(MontyNode::Int(2));
    graph.push(MontyNode::List(vec![other, list]));
    graph
}

#[test]
fn inputs_sharing_an_object_each_get_a_copy() {
    let graph = shared_arena();
    let values = decode_inputs(&graph, &[3, 5, 2]).expect("decode");
    let expected: Vec<MontyObject> = [3, 5, 2].map(|root| graph.value(NodeId(root)).to_owned()).into();
    assert_eq!(values, expected);
}

#[test]
fn inputs_out_of_order_or_repeated_decode() {
    let graph = shared_arena();
    for roots in [&[4, 0][..], &[1, 1], &[5, 5, 0]] {
        let values = decode_inputs(&graph, roots).expect("decode");
        let expected: Vec<MontyObject> = roots.iter().map(|&r| graph.value(NodeId(r)).to_owned()).collect();
        assert_eq!(values, expected, "roots {roots:?}");
    }
}

#[test]
fn unused_nodes_around_inputs_are_harmless() {
    // `[0] int, [1] int, [2] list[0] (unused), [3] list[1], [4] str, [5] list[4],
    // [6] int (after the last root)`.
    let mut graph = MontyGraph::new();
    let a = graph.push(MontyNode::Int(10));
    let b = graph.push(MontyNode::Int(20));
    graph.push(MontyNode::List(vec![a]));
    graph.push(MontyNode::List(vec![b]));
    let s = graph.push(MontyNode::String("x".to_owned()));
    graph.push(MontyNode::List(vec![s]));
    graph.push(MontyNode::Int(30));
    let expected = vec![
        MontyObject::list([MontyObject::int(20)]),
        MontyObject::list([MontyObject::string("x")]),
    ];
    assert_eq!(decode_inputs(&graph, &[3, 5]).expect("decode"), expected);
    // Here the unused node 2 reaches back into the first input's nodes, so
    // the inputs are copied out rather than cut apart, reachable nodes only.
    let values = decode_inputs(&graph, &[0, 3]).expect("decode");
    assert_eq!(
        values,
        vec![MontyObject::int(10), MontyObject::list([MontyObject::int(20)])]
    );
    assert_eq!(unstable::graph_parts(&values[1]).0.len(), 2);
    // Inputs without roots are no inputs, whatever the arena holds.
    assert_eq!(decode_inputs(&graph, &[]).expect("decode"), Vec::<MontyObject>::new());
}

#[test]
fn many_small_inputs_fit_the_decoding_budget() {
    for inputs in [
        (0..5000).map(MontyObject::int).collect::<Vec<_>>(),
        (0..2000)
            .map(|i| MontyObject::list([MontyObject::none(), MontyObject::string(i.to_string())]))
            .collect(),
    ] {
        assert_request_round_trips(&Request::Run(inputs));
    }
}

#[test]
fn an_inputs_root_out_of_range_is_refused() {
    let graph = shared_arena();
    match decode_inputs(&graph, &[0, 6]) {
        Err(DecodeError::RootOutOfRange { root: 6, len: 6 }) => {}
        other => panic!("expected RootOutOfRange, got {other:?}"),
    }
    match decode_inputs(&MontyGraph::new(), &[0]) {
        Err(DecodeError::RootOutOfRange { root: 0, len: 0 }) => {}
        other => panic!("expected RootOutOfRange, got {other:?}"),
    }
}

#[test]
fn copies_of_a_shared_input_are_charged() {
    // One list of 2000 items, named by 2000 roots: small on the wire, but
    // four million nodes once every root has its own copy.
    let mut graph = MontyGraph::new();
    let items: Vec<NodeId> = (0..2000).map(|i| graph.push(MontyNode::Int(i))).collect();
    let list = graph.push(MontyNode::List(items));
    let roots = vec![list.0; 2000];
    match decode_inputs(&graph, &roots) {
        Err(DecodeError::DecodedSizeLimit { .. }) => {}
        other => panic!("expected DecodedSizeLimit, got {:?}", other.map(|values| values.len())),
    }
}

// ---------------------------------------------------------------------------
// REPL requests: every field, and named values a host may write
// ---------------------------------------------------------------------------

#[test]
fn open_repl_round_trips_every_field() {
    let type_check = TypeCheckOptions {
        stubs: "def fetch(url: str) -> bytes: ...".to_owned(),
        module_stubs: vec![ModuleStub::new("host.tools", "def tool() -> int: ...").unwrap()],
        format: monty_types::TypeCheckingFormat::Concise,
        color: true,
    };
    for (os_policy, type_check) in policies().into_iter().zip([None, Some(type_check)].into_iter().cycle()) {
        let open = OpenRepl {
            script_name: "agent/repl.py".to_owned(),
            compile_options: CompileOptions {
                assert_message_annotations: AssertMessageAnnotations::Off,
                source_scan_threshold: 0,
            },
            limits: custom_limits(),
            os_policy,
            cwd: "/home/sandbox".to_owned(),
            type_check,
            access: host_access(),
        };
        assert_request_round_trips(&Request::OpenRepl(Box::new(open)));
    }
}

#[test]
fn feed_inputs_come_back_by_name_and_value() {
    let feed = Feed {
        code: "total = sum(xs) + n".to_owned(),
        inputs: vec![
            ("xs".to_owned(), nested_value()),
            ("n".to_owned(), MontyObject::int(3)),
            (String::new(), MontyObject::string("")),
            ("xs".to_owned(), MontyObject::none()),
        ],
        skip_type_check: false,
        mounts: mounts(),
    };
    for request in [Request::FeedRun(feed.clone()), Request::FeedStart(feed.clone())] {
        match assert_request_round_trips(&request) {
            Request::FeedRun(back) | Request::FeedStart(back) => {
                assert_eq!(back.code, feed.code);
                assert_eq!(back.inputs, feed.inputs);
                assert_eq!(back.mounts, feed.mounts);
                assert!(!back.skip_type_check);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// A `feedRun` request whose `NamedValues` holds exactly `graph` and `entries`.
fn raw_named_values(graph: &MontyGraph, entries: &[(&str, u32)]) -> Vec<u8> {
    raw_request(|b| {
        let mut feed = b.init_feed_run();
        feed.set_code("pass");
        let mut named = feed.init_inputs();
        codec::value::write_graph(graph, named.reborrow().init_nodes(u32::try_from(graph.len()).unwrap())).unwrap();
        let mut out = named.init_entries(u32::try_from(entries.len()).unwrap());
        for (i, (name, node)) in (0..).zip(entries) {
            let mut entry = out.reborrow().get(i);
            entry.set_name(name);
            entry.set_node(*node);
        }
    })
}

fn decode_named_values(graph: &MontyGraph, entries: &[(&str, u32)]) -> Result<Vec<(String, MontyObject)>, DecodeError> {
    match decode_request(&raw_named_values(graph, entries), &DecodeLimits::default())? {
        Request::FeedRun(feed) => Ok(feed.inputs),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn named_values_sharing_nodes_each_get_their_value() {
    let graph = shared_arena();
    for entries in [
        // Separate runs (nodes after the last root unused), cut apart in place.
        &[("i", 0), ("s", 1)][..],
        &[("t", 3)],
        // Shared nodes: 3 and 5 both hold the list at 2.
        &[("t", 3), ("l", 5), ("shared", 2)],
        // Out of order and repeated, names repeated too.
        &[("x", 5), ("x", 0), ("y", 5)],
        &[],
    ] {
        let values = decode_named_values(&graph, entries).expect("decode");
        let expected: Vec<(String, MontyObject)> = entries
            .iter()
            .map(|&(name, root)| (name.to_owned(), graph.value(NodeId(root)).to_owned()))
            .collect();
        assert_eq!(values, expected, "entries {entries:?}");
    }
}

#[test]
fn a_named_value_out_of_range_is_refused() {
    match decode_named_values(&shared_arena(), &[("a", 0), ("b", 6)]) {
        Err(DecodeError::RootOutOfRange { root: 6, len: 6 }) => {}
        other => panic!("expected RootOutOfRange, got {other:?}"),
    }
}

#[test]
fn copies_of_a_shared_named_value_are_charged() {
    let mut graph = MontyGraph::new();
    let items: Vec<NodeId> = (0..2000).map(|i| graph.push(MontyNode::Int(i))).collect();
    let list = graph.push(MontyNode::List(items));
    let entries = vec![("v", list.0); 2000];
    match decode_named_values(&graph, &entries) {
        Err(DecodeError::DecodedSizeLimit { .. }) => {}
        other => panic!("expected DecodedSizeLimit, got {:?}", other.map(|values| values.len())),
    }
}

#[test]
fn call_function_arguments_from_a_shared_arena_decode() {
    let graph = shared_arena();
    let decoded = decode_raw_request(|b| {
        let mut call = b.init_call_function();
        call.set_name("combine");
        let mut args = call.init_args();
        codec::value::write_graph(&graph, args.reborrow().init_nodes(6)).unwrap();
        let mut roots = args.init_roots(3);
        for (i, root) in [(0, 5), (1, 3), (2, 5)] {
            roots.set(i, root);
        }
    })
    .expect("decode");
    let Request::CallFunction { name, args } = decoded else {
        panic!("a callFunction came back as another request")
    };
    assert_eq!(name, "combine");
    let expected: Vec<MontyObject> = [5, 3, 5].map(|root| graph.value(NodeId(root)).to_owned()).into();
    assert_eq!(args, expected);
    match assert_request_round_trips(&Request::CallFunction {
        name: String::new(),
        args: expected.clone(),
    }) {
        Request::CallFunction { args, .. } => assert_eq!(args, expected),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn an_unknown_time_zone_is_refused() {
    let result = decode_raw_request(|b| {
        let mut open = b.init_open_run();
        open.set_code("pass");
        open.init_os_policy().init_local_zone().set_named("Mars/Olympus_Mons");
    });
    match result {
        Err(DecodeError::UnknownTimeZone { name }) => assert_eq!(name, "Mars/Olympus_Mons"),
        other => panic!("expected UnknownTimeZone, got {other:?}"),
    }
    // Path-shaped names never reach the database.
    let result = decode_raw_request(|b| {
        b.init_open_run()
            .init_os_policy()
            .init_local_zone()
            .set_named("../etc/passwd");
    });
    assert!(matches!(result, Err(DecodeError::UnknownTimeZone { .. })));
}

#[test]
fn a_function_call_argument_out_of_range_is_refused() {
    let mut message = capnp::message::Builder::new_default();
    {
        let response = message.init_root::<wire::response::Builder<'_>>();
        let mut call = response.init_function_call();
        call.set_name("f");
        let mut args = call.init_args();
        args.reborrow().init_nodes(1).get(0).set_int_value(1);
        args.init_keyword(1).get(0).set_value(3);
    }
    let bytes = codec::WireMessage::from_builder(&message);
    match decode_response(bytes.as_bytes(), &DecodeLimits::default()) {
        Err(DecodeError::RootOutOfRange { root: 3, len: 1 }) => {}
        other => panic!("expected RootOutOfRange, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------

#[test]
fn ok_complete_and_dump_round_trip() {
    assert_response_round_trips(&response(Outcome::Ok));
    let back = assert_response_round_trips(&response(Outcome::Complete(nested_value())));
    let Outcome::Complete(value) = back.outcome else {
        panic!("a complete came back as another outcome")
    };
    assert_eq!(value, nested_value());
    assert_response_round_trips(&response(Outcome::Dump(vec![9, 8, 7])));
    assert_response_round_trips(&response(Outcome::Dump(Vec::new())));
}

#[test]
fn function_calls_round_trip_with_shared_arguments() {
    let mut args = CallArgs::new();
    args.push_arg(MontyObject::int(1));
    args.push_kwarg("flag", MontyObject::bool(true));
    {
        // One object passed twice, positionally and by keyword.
        let (graph, positional, keyword) = unstable::call_args_parts_mut(&mut args);
        let shared = graph.push(MontyNode::String("shared".to_owned()));
        let list = graph.push(MontyNode::List(vec![shared, shared]));
        positional.push(list);
        positional.push(shared);
        let key = graph.push(MontyNode::String("again".to_owned()));
        keyword.push((key, list));
    }
    for (object_id, allow_eager_await) in [(None, false), (Some(MontyUuid::from_u128(0xfeed_beef)), true)] {
        let event = FunctionCallEvent {
            name: "fetch".to_owned(),
            args: args.clone(),
            call_id: 3,
            object_id,
            allow_eager_await,
            position: position(),
        };
        let back = assert_response_round_trips(&response(Outcome::FunctionCall(event.clone())));
        let Outcome::FunctionCall(back) = back.outcome else {
            panic!("a function call came back as another outcome")
        };
        // Node for node: the arena, roots and sharing are exactly the same.
        assert_eq!(back, event);
    }
    let empty = FunctionCallEvent {
        name: String::new(),
        args: CallArgs::new(),
        call_id: 0,
        object_id: None,
        allow_eager_await: false,
        position: SourceRange::new("", 0, 0),
    };
    assert_response_round_trips(&response(Outcome::FunctionCall(empty)));
}

#[test]
fn every_os_call_round_trips() {
    let calls = every_os_call();
    let names: HashSet<&str> = calls.iter().map(OsFunctionCall::name).collect();
    assert_eq!(names.len(), 32, "one call per OsFunctionCall variant");
    for call in calls.into_iter().chain(more_os_calls()) {
        assert_response_round_trips(&os_call_response(call));
    }
}

#[test]
fn os_calls_carry_monty_s_name() {
    for call in every_os_call() {
        let message = encode_response(&os_call_response(call.clone())).unwrap();
        let reader =
            capnp::serialize::read_message_from_flat_slice(&mut message.as_bytes(), Default::default()).unwrap();
        let root = reader.get_root::<wire::response::Reader<'_>>().unwrap();
        let wire::response::Which::OsCall(os_call) = root.which().unwrap() else {
            panic!("not an osCall")
        };
        assert_eq!(os_call.unwrap().get_name().unwrap().to_str().unwrap(), call.name());
    }
}

#[test]
fn name_lookups_and_futures_round_trip() {
    for object_id in [None, Some(MontyUuid::from_bytes([7; 16]))] {
        let event = NameLookupEvent {
            name: "lazy_attr".to_owned(),
            object_id,
            position: position(),
        };
        let back = assert_response_round_trips(&response(Outcome::NameLookup(event.clone())));
        let Outcome::NameLookup(back) = back.outcome else {
            panic!("a name lookup came back as another outcome")
        };
        assert_eq!(back, event);
    }
    for pending_call_ids in [vec![], vec![0, 5, u32::MAX]] {
        let event = ResolveFuturesEvent {
            pending_call_ids,
            position: position(),
        };
        let back = assert_response_round_trips(&response(Outcome::ResolveFutures(event.clone())));
        let Outcome::ResolveFutures(back) = back.outcome else {
            panic!("a resolveFutures came back as another outcome")
        };
        assert_eq!(back, event);
    }
}

#[test]
fn python_and_protocol_errors_round_trip() {
    let back = assert_response_round_trips(&response(Outcome::PythonError(exception())));
    let Outcome::PythonError(back) = back.outcome else {
        panic!("a python error came back as another outcome")
    };
    assert_eq!(back, exception());

    for code in [
        ErrorCode::MalformedMessage,
        ErrorCode::TruncatedMessage,
        ErrorCode::LimitExceeded,
        ErrorCode::InvalidValue,
        ErrorCode::UnknownRequest,
        ErrorCode::WrongState,
        ErrorCode::UnknownSession,
        ErrorCode::SessionBusy,
        ErrorCode::InvalidArgument,
        ErrorCode::InternalError,
        ErrorCode::ResponseTooLarge,
        ErrorCode::InvalidDump,
        ErrorCode::WorkerUnavailable,
        ErrorCode::WorkerCrashed,
        ErrorCode::DeadlineExceeded,
        ErrorCode::Cancelled,
    ] {
        let error = ProtocolError::new(code, format!("{code:?} happened"));
        let back = assert_response_round_trips(&response(Outcome::ProtocolError(error.clone())));
        let Outcome::ProtocolError(back) = back.outcome else {
            panic!("a protocol error came back as another outcome")
        };
        assert_eq!(back, error);
    }
    let mut crashed = ProtocolError::new(ErrorCode::WorkerCrashed, "the worker died");
    crashed.worker_exit = Some(WorkerExit {
        exit_code: -1,
        signal: 11,
        out_of_memory: false,
        stderr_tail: "thread 'main' has overflowed its stack\n".to_owned(),
    });
    let back = assert_response_round_trips(&response(Outcome::ProtocolError(crashed.clone())));
    assert!(matches!(back.outcome, Outcome::ProtocolError(back) if back == crashed));
}

#[test]
fn output_and_usage_round_trip() {
    let output = vec![
        PrintSegment {
            stream: PrintStream::Stdout,
            text: "hello\n".to_owned(),
        },
        PrintSegment {
            stream: PrintStream::Stderr,
            text: "warning: \u{1F600}\n".to_owned(),
        },
        PrintSegment {
            stream: PrintStream::Stdout,
            text: String::new(),
        },
    ];
    for memory_bytes in [None, Some(0), Some(123_456_789)] {
        let usage = Usage {
            elapsed: Duration::from_nanos(5_000_000_123),
            feed_elapsed: Duration::from_micros(700),
            turn_elapsed: Duration::from_nanos(1),
            wall: Duration::from_secs(2),
            suspensions: 17,
            memory_bytes,
        };
        assert_response_round_trips(&Response {
            outcome: Outcome::Complete(MontyObject::none()),
            output: output.clone(),
            usage,
        });
    }
}

// ---------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------

/// A node whose child seeds become indices of earlier nodes on assembly.
#[derive(Debug, Clone)]
enum Template {
    Leaf(MontyNode),
    List(Vec<u32>),
    Tuple(Vec<u32>),
    Dict(Vec<(u32, u32)>),
}

fn leaf() -> impl Strategy<Value = MontyNode> {
    prop_oneof![
        Just(MontyNode::None),
        any::<bool>().prop_map(MontyNode::Bool),
        any::<i64>().prop_map(MontyNode::Int),
        any::<u64>().prop_map(|bits| MontyNode::Float(f64::from_bits(bits))),
        ".{0,8}".prop_map(MontyNode::String),
        vec(any::<u8>(), 0..8).prop_map(MontyNode::Bytes),
        (any::<bool>(), vec(1..=u8::MAX, 9..12)).prop_map(|(negative, magnitude)| {
            let sign = if negative {
                num_bigint::Sign::Minus
            } else {
                num_bigint::Sign::Plus
            };
            MontyNode::BigInt(BigInt::from_bytes_be(sign, &magnitude))
        }),
    ]
}

fn template() -> impl Strategy<Value = Template> {
    prop_oneof![
        4 => leaf().prop_map(Template::Leaf),
        2 => vec(any::<u32>(), 0..5).prop_map(Template::List),
        1 => vec(any::<u32>(), 0..5).prop_map(Template::Tuple),
        1 => vec((any::<u32>(), any::<u32>()), 0..3).prop_map(Template::Dict),
    ]
}

/// A valid post-order arena; colliding seeds share a child.
fn arena() -> impl Strategy<Value = MontyGraph> {
    vec(template(), 1..24).prop_map(|templates| {
        let mut graph = MontyGraph::new();
        for template in templates {
            let below = u32::try_from(graph.len()).unwrap();
            let id = |seed: u32| NodeId(seed % below);
            let node = match template {
                Template::Leaf(node) => node,
                _ if below == 0 => MontyNode::None,
                Template::List(seeds) => MontyNode::List(seeds.into_iter().map(id).collect()),
                Template::Tuple(seeds) => MontyNode::Tuple(seeds.into_iter().map(id).collect()),
                Template::Dict(seeds) => MontyNode::Dict(seeds.into_iter().map(|(k, v)| (id(k), id(v))).collect()),
            };
            graph.push(node);
        }
        graph
    })
}

fn value() -> impl Strategy<Value = MontyObject> {
    (arena(), any::<u32>()).prop_map(|(graph, seed)| {
        let root = NodeId(seed % u32::try_from(graph.len()).unwrap());
        unstable::object_from_graph(graph, root).unwrap()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Each input comes back node for node as its own reachable part.
    #[test]
    fn inputs_round_trip_node_for_node(inputs in vec(value(), 0..5)) {
        let Request::Start(back) = round_trip_request(&Request::Start(inputs.clone())) else {
            panic!("a start came back as another request");
        };
        prop_assert_eq!(back.len(), inputs.len());
        for (back, input) in back.iter().zip(&inputs) {
            let expected = input.as_ref().to_owned();
            prop_assert_eq!(unstable::graph_parts(back), unstable::graph_parts(&expected));
        }
    }

    /// Whatever roots a host names (shared, repeated, out of order), each
    /// decodes to the value at that root.
    #[test]
    fn any_roots_of_an_arena_decode(graph in arena(), seeds in vec(any::<u32>(), 0..6)) {
        let len = u32::try_from(graph.len()).unwrap();
        let roots: Vec<u32> = seeds.iter().map(|seed| seed % len).collect();
        // Inputs that share nodes are copied apart, and every copy is
        // charged to the message's decoded-size budget: a small message
        // naming one big value many times is refused rather than amplified.
        let values = match decode_inputs(&graph, &roots) {
            Ok(values) => values,
            Err(DecodeError::DecodedSizeLimit { .. }) => return Ok(()),
            Err(other) => return Err(TestCaseError::fail(format!("decode: {other}"))),
        };
        prop_assert_eq!(values.len(), roots.len());
        for (value, root) in values.iter().zip(&roots) {
            prop_assert_eq!(value, &graph.value(NodeId(*root)).to_owned());
        }
    }
}
