//! Each refusal gets the code the schema documents for it, and a message
//! that says the same thing as the code.

mod common;

use common::{Host, complete, dispatch_bytes, expect_code};
use monty_types::{MontyObject, ResourceLimits};
use monty_wire::{
    DecodeError, DecodeLimits, WireMessage,
    codec::{builder_with_capacity, decode_request, encode_request},
    protocol::{CallResult, ErrorCode, OpenRun, Outcome, Request},
    schema::monty_wire_capnp as wire,
};

#[test]
fn fewer_bytes_than_a_segment_table_are_a_truncated_message() {
    let host = Host::open("1 + 1", &[], ResourceLimits::default());
    let run = encode_request(&Request::Run(vec![])).expect("encodes");
    for len in 1..8 {
        let error = expect_code(
            dispatch_bytes(host.handle, &run.as_bytes()[..len]),
            ErrorCode::TruncatedMessage,
        );
        assert!(error.message.contains("truncated message"), "{len}: {}", error.message);
    }
    // A message cut after its segment table says so too.
    let cut = &run.as_bytes()[..run.len() - 8];
    let error = expect_code(dispatch_bytes(host.handle, cut), ErrorCode::TruncatedMessage);
    assert!(error.message.contains("truncated message"), "{}", error.message);
    assert!(!error.message.contains("malformed"), "{}", error.message);
    // No bytes at all are not a message.
    expect_code(dispatch_bytes(host.handle, &[]), ErrorCode::MalformedMessage);
    assert_eq!(complete(host.send(&Request::Run(vec![]))), MontyObject::int(2));
}

#[test]
fn an_unknown_arm_inside_a_known_request_is_an_invalid_value() {
    let host = Host::open("x", &["x"], ResourceLimits::default());
    let mut message = builder_with_capacity(64);
    {
        let mut inputs = message.init_root::<wire::request::Builder<'_>>().init_run();
        inputs.reborrow().init_nodes(1).get(0).set_int_value(5);
        inputs.init_roots(1).set(0, 0);
    }
    let bytes = WireMessage::from_builder(&message).as_bytes().to_vec();
    // Where the node's union discriminant (`int` is arm 4) lies depends on
    // the compiled layout: find the one [4, 0] whose change the decoder
    // reports as an unknown Node arm.
    let bytes = (0..bytes.len() - 1)
        .filter(|&i| bytes[i..i + 2] == [4, 0])
        .map(|i| {
            let mut changed = bytes.clone();
            changed[i] = 200;
            changed
        })
        .find(|changed| {
            matches!(
                decode_request(changed, &DecodeLimits::default()),
                Err(DecodeError::UnknownUnionArm { union_name: "Node", .. })
            )
        })
        .expect("the int node's discriminant is in its data section");
    let error = expect_code(dispatch_bytes(host.handle, &bytes), ErrorCode::InvalidValue);
    assert!(error.message.contains("Node has no arm 200"), "{}", error.message);
    assert_eq!(
        complete(host.send(&Request::Run(vec![MontyObject::int(7)]))),
        MontyObject::int(7)
    );
}

#[test]
fn a_time_zone_this_build_does_not_have_is_an_invalid_argument() {
    let host = Host::new();
    let mut message = builder_with_capacity(64);
    {
        let mut open = message.init_root::<wire::request::Builder<'_>>().init_open_run();
        open.set_code("1");
        open.set_script_name("main.py");
        open.init_os_policy().init_local_zone().set_named("Mars/Olympus_Mons");
    }
    let bytes = WireMessage::from_builder(&message);
    let error = expect_code(
        dispatch_bytes(host.handle, bytes.as_bytes()),
        ErrorCode::InvalidArgument,
    );
    assert!(error.message.contains("Mars/Olympus_Mons"), "{}", error.message);
    // The session is still empty and opens normally.
    let opened = host.send(&Request::OpenRun(Box::new(OpenRun::new("6 * 7"))));
    assert!(matches!(opened.outcome, Outcome::Ok), "{opened:?}");
    assert_eq!(complete(host.send(&Request::Run(vec![]))), MontyObject::int(42));
}

/// A run suspended at `f(1)`, which returns `f(1) * 2` once answered.
fn suspended_at_call() -> Host {
    let host = Host::open("f(1) * 2", &["f"], ResourceLimits::default());
    let call = common::function_call(host.start(vec![MontyObject::function("f", None)]));
    let args: Vec<MontyObject> = call.args.args().map(|a| a.to_owned()).collect();
    assert_eq!(args, [MontyObject::int(1)]);
    host
}

/// The run is still suspended at the same call: answering it finishes it.
fn still_at_the_call(host: &Host) {
    assert_eq!(
        complete(host.resume(CallResult::Value(MontyObject::int(21)))),
        MontyObject::int(42)
    );
}

/// A `run` request whose one input is a list nested `depth` deep.
fn deep_input(depth: u32) -> WireMessage {
    let mut message = builder_with_capacity(depth as usize * 4 + 64);
    {
        let mut inputs = message
            .init_root::<wire::request::Builder<'_>>()
            .init_resume_call()
            .init_value();
        let mut nodes = inputs.reborrow().init_nodes(depth);
        nodes.reborrow().get(0).set_none(());
        for i in 1..depth {
            nodes.reborrow().get(i).init_list(1).set(0, i - 1);
        }
        inputs.set_root(depth - 1);
    }
    WireMessage::from_builder(&message)
}

#[test]
fn every_refusal_leaves_a_suspended_run_where_it_was() {
    let refusals: Vec<(ErrorCode, Vec<u8>)> = vec![
        (ErrorCode::MalformedMessage, b"\xde\xad\xbe\xef not a message".to_vec()),
        (ErrorCode::TruncatedMessage, vec![0, 0, 0]),
        (
            ErrorCode::LimitExceeded,
            deep_input(DecodeLimits::default().max_depth + 1).into_bytes(),
        ),
        (
            ErrorCode::WrongState,
            encode_request(&Request::Run(vec![])).unwrap().into_bytes(),
        ),
        (
            ErrorCode::InvalidArgument,
            encode_request(&Request::ResumeCall(CallResult::EagerValue(MontyObject::int(1))))
                .unwrap()
                .into_bytes(),
        ),
    ];
    for (code, bytes) in refusals {
        let host = suspended_at_call();
        expect_code(dispatch_bytes(host.handle, &bytes), code);
        still_at_the_call(&host);
    }
    // A handle that is not open refuses without touching any session.
    let host = suspended_at_call();
    let closed = Host::new();
    let handle = closed.handle;
    drop(closed);
    let resume = encode_request(&Request::ResumeCall(CallResult::Value(MontyObject::int(0)))).unwrap();
    expect_code(dispatch_bytes(handle, resume.as_bytes()), ErrorCode::UnknownSession);
    still_at_the_call(&host);
}

#[test]
fn an_invalid_dump_leaves_an_empty_session_empty() {
    let host = Host::new();
    let load = Request::LoadSession {
        dump: b"not a dump".to_vec(),
        limits: ResourceLimits::default(),
        access: Default::default(),
    };
    expect_code(host.send(&load), ErrorCode::InvalidDump);
    let opened = host.send(&Request::OpenRun(Box::new(OpenRun::new("1 + 1"))));
    assert!(matches!(opened.outcome, Outcome::Ok), "{opened:?}");
}

#[test]
fn a_suspension_too_large_to_send_aborts_the_run() {
    let host = Host::open("f(b'x' * n)", &["f", "n"], ResourceLimits::default());
    let f = || MontyObject::function("f", None);
    let error = expect_code(
        host.start(vec![f(), MontyObject::int(1 << 29)]),
        ErrorCode::ResponseTooLarge,
    );
    assert!(error.message.contains("aborted"), "{}", error.message);
    // The call the host never saw cannot be answered blindly: the run is over.
    expect_code(
        host.resume(CallResult::Value(MontyObject::int(0))),
        ErrorCode::WrongState,
    );
    // The session is ready again.
    let call = common::function_call(host.start(vec![f(), MontyObject::int(2)]));
    let args: Vec<MontyObject> = call.args.args().map(|a| a.to_owned()).collect();
    assert_eq!(args, [MontyObject::bytes(b"xx".to_vec())]);
}

#[test]
fn a_result_too_large_to_send_leaves_the_session_ready() {
    let host = Host::open("x * (1 << 29) if big else 7", &["x", "big"], ResourceLimits::default());
    let error = expect_code(
        host.send(&Request::Run(vec![
            MontyObject::bytes(b"x".to_vec()),
            MontyObject::bool(true),
        ])),
        ErrorCode::ResponseTooLarge,
    );
    assert!(!error.message.contains("aborted"), "{}", error.message);
    assert_eq!(
        complete(host.send(&Request::Run(vec![
            MontyObject::bytes(Vec::new()),
            MontyObject::bool(false)
        ]))),
        MontyObject::int(7)
    );
}
