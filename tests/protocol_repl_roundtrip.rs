//! The REPL, dump and type-checking messages: every arm that goes out
//! comes back the same, and a module stub name monty refuses is refused on
//! the wire too.
//!
//! Types without `PartialEq` are compared through their `Debug` form, which
//! spells out every field and every arena node.

use std::time::Duration;

use monty::ReplContinuationMode;
use monty_types::{ModuleStub, MontyObject, ResourceLimits, TypeCheckingFormat};
use monty_wire::{
    DecodeError, DecodeLimits,
    codec::WireMessage,
    decode_request, decode_response, encode_request, encode_response,
    protocol::{
        Diagnostic, Feed, OpenRepl, Outcome, PrintDelivery, Request, Response, Severity, TypeCheck, TypeCheckOptions,
        TypeCheckReport, Usage,
    },
    schema::monty_wire_capnp as wire,
};

fn assert_request_round_trips(request: &Request) {
    let message = encode_request(request).expect("encode request");
    let back = decode_request(message.as_bytes(), &DecodeLimits::default()).expect("decode request");
    assert_eq!(format!("{back:?}"), format!("{request:?}"));
}

fn assert_outcome_round_trips(outcome: Outcome) {
    let response = Response {
        outcome,
        output: Vec::new(),
        usage: Usage::default(),
    };
    let message = encode_response(&response).expect("encode response");
    let back = decode_response(message.as_bytes(), &DecodeLimits::default()).expect("decode response");
    assert_eq!(format!("{:?}", back.outcome), format!("{:?}", response.outcome));
}

const FORMATS: [TypeCheckingFormat; 9] = [
    TypeCheckingFormat::Full,
    TypeCheckingFormat::Concise,
    TypeCheckingFormat::Azure,
    TypeCheckingFormat::Json,
    TypeCheckingFormat::JsonLines,
    TypeCheckingFormat::Rdjson,
    TypeCheckingFormat::Pylint,
    TypeCheckingFormat::Gitlab,
    TypeCheckingFormat::Github,
];

fn options(format: TypeCheckingFormat) -> TypeCheckOptions {
    TypeCheckOptions {
        stubs: "def fetch(url: str) -> bytes: ...".into(),
        module_stubs: vec![
            ModuleStub::new("host", "").expect("stub"),
            ModuleStub::new("host.tools", "def tool() -> int: ...").expect("stub"),
        ],
        format,
        color: format == TypeCheckingFormat::Full,
    }
}

#[test]
fn repl_requests_round_trip() {
    assert_request_round_trips(&Request::OpenRepl(Box::default()));
    for format in FORMATS {
        assert_request_round_trips(&Request::OpenRepl(Box::new(OpenRepl {
            script_name: "agent.py".into(),
            limits: ResourceLimits {
                max_feed_duration: Some(Duration::from_millis(250)),
                max_suspensions: 7,
                ..ResourceLimits::default()
            },
            cwd: "/work".into(),
            type_check: Some(options(format)),
            ..OpenRepl::default()
        })));
    }
    let shared = MontyObject::list([MontyObject::int(1), MontyObject::string("two")]);
    for feed in [
        Feed::new(""),
        Feed {
            code: "a + b".into(),
            inputs: vec![
                ("a".into(), shared.clone()),
                ("b".into(), MontyObject::tuple([shared.clone(), shared])),
                ("f".into(), MontyObject::function("f", Some("doc".into()))),
            ],
            skip_type_check: true,
            mounts: Vec::new(),
        },
    ] {
        assert_request_round_trips(&Request::FeedRun(feed.clone()));
        assert_request_round_trips(&Request::FeedStart(feed));
    }
    assert_request_round_trips(&Request::DetectContinuation("def f():\n".into()));
    assert_request_round_trips(&Request::ListFunctions);
    assert_request_round_trips(&Request::CallFunction {
        name: "double".into(),
        args: vec![MontyObject::int(21), MontyObject::none()],
    });
    assert_request_round_trips(&Request::DumpSession);
    assert_request_round_trips(&Request::LoadSession {
        dump: vec![1, 2, 3, 0, 255],
        limits: ResourceLimits::default(),
        access: Default::default(),
    });
    assert_request_round_trips(&Request::SetDumpKey(b"secret".to_vec()));
    assert_request_round_trips(&Request::SetDumpKey(Vec::new()));
    for delivery in [
        PrintDelivery::EveryFragment,
        PrintDelivery::Lines,
        PrintDelivery::Interval(Duration::from_millis(16)),
        PrintDelivery::Interval(Duration::from_nanos(u64::MAX)),
    ] {
        assert_request_round_trips(&Request::SetPrintDelivery(delivery));
    }
    for format in FORMATS {
        assert_request_round_trips(&Request::TypeCheck(Box::new(TypeCheck {
            code: "fetch(1)".into(),
            prefix_code: "import json".into(),
            script_name: "tool.py".into(),
            options: options(format),
        })));
    }
}

#[test]
fn defaults_read_as_the_schema_says() {
    let mut message = capnp::message::Builder::new_default();
    message.init_root::<wire::request::Builder<'_>>().init_open_repl();
    let bytes = WireMessage::from_builder(&message);
    let back = decode_request(bytes.as_bytes(), &DecodeLimits::default()).expect("decodes");
    assert_eq!(format!("{back:?}"), format!("{:?}", Request::OpenRepl(Box::default())));

    let mut message = capnp::message::Builder::new_default();
    message
        .init_root::<wire::request::Builder<'_>>()
        .init_type_check()
        .set_code("x");
    let bytes = WireMessage::from_builder(&message);
    let Request::TypeCheck(check) = decode_request(bytes.as_bytes(), &DecodeLimits::default()).expect("decodes") else {
        panic!("a typeCheck came back as another request")
    };
    assert_eq!(check.script_name, "main.py");
    assert_eq!(check.options.format, TypeCheckingFormat::Full);
}

#[test]
fn repl_outcomes_round_trip() {
    for mode in [
        ReplContinuationMode::Complete,
        ReplContinuationMode::IncompleteImplicit,
        ReplContinuationMode::IncompleteBlock,
    ] {
        assert_outcome_round_trips(Outcome::Continuation(mode));
    }
    assert_outcome_round_trips(Outcome::FunctionNames(vec![]));
    assert_outcome_round_trips(Outcome::FunctionNames(vec!["f".into(), "g".into()]));
    assert_outcome_round_trips(Outcome::TypeCheckReport(TypeCheckReport::default()));
    let diagnostics = [Severity::Info, Severity::Warning, Severity::Error, Severity::Fatal]
        .into_iter()
        .map(|severity| Diagnostic {
            code: "invalid-argument-type".into(),
            severity,
            message: "Expected `int`".into(),
            file: "<python-input-3>".into(),
            start_line: 1,
            start_column: 3,
            end_line: 2,
            end_column: 9,
        })
        .collect();
    assert_outcome_round_trips(Outcome::TypeCheckReport(TypeCheckReport {
        diagnostics,
        rendered: "error[invalid-argument-type]: ...\n".into(),
    }));
}

#[test]
fn a_module_stub_name_monty_refuses_is_refused() {
    for name in ["not a module", "os"] {
        let mut message = capnp::message::Builder::new_default();
        {
            let check = message.init_root::<wire::request::Builder<'_>>().init_type_check();
            let mut stub = check.init_options().init_module_stubs(1).get(0);
            stub.set_module(name);
            stub.set_source("");
        }
        let bytes = WireMessage::from_builder(&message);
        match decode_request(bytes.as_bytes(), &DecodeLimits::default()) {
            Err(DecodeError::InvalidModuleStub { module, .. }) => assert_eq!(module, name),
            other => panic!("{name:?}: expected InvalidModuleStub, got {other:?}"),
        }
    }
}
