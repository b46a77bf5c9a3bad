//! No caller thread is too small: each hazard that recurses on the native
//! stack, dispatched through the C entry points from threads with 128 KiB,
//! 512 KiB and 1 MiB of stack (a musl thread, a macOS secondary thread, a
//! Dart VM thread), answers its documented outcome. So it does from threads
//! with just over 2 MiB and with 8 MiB (a main thread), where `openRun`
//! compiles on the caller's stack instead of the session's.
//!
//! A stack overflow kills the process, so each hazard runs in a child
//! process: this test binary again, with `MONTY_WIRE_STACK_CASE` naming the
//! hazard and `MONTY_WIRE_STACK_BYTES` the thread's stack size; the parent
//! checks that the child exited normally. The child builds requests and
//! reads responses on a thread with a large stack (encoding and dropping
//! deeply nested values recurses on the host side too); only the session's
//! work runs on the small thread.

#![cfg(not(target_family = "wasm"))]

use std::process::Command;

use monty_types::{
    ExcType, MontyObject, ResourceLimits,
    unstable::{self, MontyGraph, MontyNode, NodeId},
};
use monty_wire::{
    DecodeLimits,
    codec::{decode_response, encode_request},
    ffi::{monty_wire_buffer_free, monty_wire_dispatch, monty_wire_session_close, monty_wire_session_open},
    protocol::{OpenRun, Outcome, Request},
};

const CASE_VAR: &str = "MONTY_WIRE_STACK_CASE";
const BYTES_VAR: &str = "MONTY_WIRE_STACK_BYTES";

/// The thread stacks a host may call from: a musl thread, a macOS secondary
/// thread, a Dart VM thread on 64-bit; then the smallest where `openRun`
/// compiles on the caller's stack (2 MiB left), and a main thread.
const THREAD_STACKS: [usize; 5] = [128 << 10, 512 << 10, 1 << 20, (2 << 20) + (256 << 10), 8 << 20];

/// The deepest expression nesting monty compiles (its `MAX_NESTING_DEPTH`,
/// lower in debug builds): ruff's parser recurses on it, growing a stack of
/// its own when it nears the end of the one it runs on.
const MAX_SOURCE_NESTING: usize = if cfg!(debug_assertions) { 30 } else { 200 };

/// A list nested `levels` deep around `None`, in Python.
fn nested_list(levels: usize) -> String {
    format!("y = None\nfor i in range({levels}):\n    y = [y]\n")
}

/// What a hazard's last response must be.
enum Expect {
    /// A result, checked by the function.
    Complete(fn(&MontyObject)),
    /// A Python error of this type.
    Error(ExcType),
}

/// One hazard: a program, its inputs, and what its run answers.
struct Hazard {
    code: String,
    input_names: Vec<&'static str>,
    inputs: Vec<MontyObject>,
    limits: ResourceLimits,
    expect: Expect,
    /// Start the run (it suspends on a host call) and close the session
    /// while it holds the value, instead of running it to the end.
    close_suspended: bool,
}

impl Hazard {
    fn run(code: String, expect: Expect) -> Self {
        Self {
            code,
            input_names: Vec::new(),
            inputs: Vec::new(),
            limits: ResourceLimits::default(),
            expect,
            close_suspended: false,
        }
    }
}

fn hazard(name: &str) -> Hazard {
    let deep = nested_list(1000);
    match name {
        // The export of a result recurses once per level, up to the
        // recursion limit.
        "deep_result" => Hazard::run(format!("{deep}y"), Expect::Complete(|v| assert!(depth(v) >= 900))),
        "deep_less_than" => Hazard::run(
            format!("{deep}y < y"),
            Expect::Complete(|v| assert_eq!(*v, MontyObject::bool(false))),
        ),
        "less_than_past_limit" => Hazard::run(
            format!("{}y < y", nested_list(2000)),
            Expect::Error(ExcType::RecursionError),
        ),
        "deep_equal" => Hazard::run(
            format!("{deep}y == y"),
            Expect::Complete(|v| assert_eq!(*v, MontyObject::bool(true))),
        ),
        "deep_hash" => Hazard::run(
            "t = ()\nfor i in range(1000):\n    t = (t,)\nhash(t)".to_owned(),
            Expect::Error(ExcType::RecursionError),
        ),
        "deep_repr" => Hazard::run(
            format!("{deep}len(repr(y))"),
            Expect::Complete(|v| assert!(v.as_ref().as_int().is_some())),
        ),
        "deep_json" => Hazard::run(
            format!("import json\n{deep}len(json.dumps(y))"),
            Expect::Complete(|v| assert_eq!(v.as_ref().as_int(), Some(2004))),
        ),
        "deep_deepcopy" => Hazard::run(
            format!("import copy\n{deep}copy.deepcopy(y)"),
            Expect::Complete(|v| assert!(depth(v) >= 900)),
        ),
        // Compiling the most deeply nested source monty accepts.
        "deep_source" => Hazard::run(
            format!("{}1{}", "(".repeat(MAX_SOURCE_NESTING), ")".repeat(MAX_SOURCE_NESTING)),
            Expect::Complete(|v| assert_eq!(*v, MontyObject::int(1))),
        ),
        // A host value nested past the recursion limit, echoed back: the
        // export stops at the limit.
        "deep_input" => Hazard {
            input_names: vec!["x"],
            inputs: vec![host_nested_list(DEEP_INPUT)],
            ..Hazard::run("x".to_owned(), Expect::Complete(|v| assert!(depth(v) >= 900)))
        },
        // Python frames past a recursion limit of 10,000; the traceback of
        // the RecursionError has one entry per frame.
        "deep_recursion" => Hazard {
            limits: ResourceLimits::default().max_recursion_depth(10_000),
            ..Hazard::run(
                "def f(n):\n    return f(n - 1) + 1 if n else 0\nf(20000)".to_owned(),
                Expect::Error(ExcType::RecursionError),
            )
        },
        "recursion_within_limit" => Hazard {
            limits: ResourceLimits::default().max_recursion_depth(10_000),
            ..Hazard::run(
                "def f(n):\n    return f(n - 1) + 1 if n else 0\nf(9990)".to_owned(),
                Expect::Complete(|v| assert_eq!(*v, MontyObject::int(9990))),
            )
        },
        // Closing a session whose suspended run holds deep values.
        "close_holding_deep_values" => Hazard {
            input_names: vec!["x", "f"],
            inputs: vec![host_nested_list(DEEP_INPUT), MontyObject::function("f", None)],
            close_suspended: true,
            ..Hazard::run(format!("{deep}f()\n0"), Expect::Complete(|_| {}))
        },
        other => panic!("no hazard named {other}"),
    }
}

/// How deep the host's values nest: the deepest a session accepts by default.
const DEEP_INPUT: usize = DecodeLimits::DEFAULT_MAX_DEPTH as usize - 1;

/// A list nested `levels` deep around `None`, built by the host.
fn host_nested_list(levels: usize) -> MontyObject {
    // Built as one arena: nesting `MontyObject::list` copies the inner value
    // at every level.
    let levels = u32::try_from(levels).expect("fits");
    let nodes = std::iter::once(MontyNode::None)
        .chain((0..levels).map(|inner| MontyNode::List(vec![NodeId(inner)])))
        .collect();
    let graph = MontyGraph::from_nodes(nodes).expect("a valid arena");
    unstable::object_from_graph(graph, NodeId(levels)).expect("a valid root")
}

/// How many lists deep `value` goes.
fn depth(value: &MontyObject) -> usize {
    let mut value = value.as_ref();
    let mut levels = 0;
    while let MontyNode::List(items) = unstable::node(value) {
        let Some(&first) = items.first() else { break };
        levels += 1;
        value = unstable::child(value, first);
    }
    levels
}

/// The child's side: runs the hazard from a thread with `stack_bytes` of
/// stack and checks its outcome.
fn run_hazard(name: &str, stack_bytes: usize) {
    let hazard = hazard(name);
    let mut open = OpenRun::new(hazard.code.clone());
    open.input_names = hazard.input_names.iter().map(|&n| n.to_owned()).collect();
    open.limits = hazard.limits.clone();
    let inputs = hazard.inputs.clone();
    let requests = [
        encode_request(&Request::OpenRun(Box::new(open))).expect("encodes"),
        encode_request(&if hazard.close_suspended {
            Request::Start(inputs)
        } else {
            Request::Run(inputs)
        })
        .expect("encodes"),
    ];
    let requests: Vec<Vec<u8>> = requests.iter().map(|m| m.as_bytes().to_vec()).collect();

    let responses = std::thread::Builder::new()
        .stack_size(stack_bytes)
        .spawn(move || {
            let session = monty_wire_session_open();
            let responses: Vec<Vec<u8>> = requests
                .iter()
                .map(|request| {
                    // SAFETY: `request` outlives the call; the buffer is
                    // copied before it is freed, once.
                    unsafe {
                        let buffer = monty_wire_dispatch(session, request.as_ptr(), request.len());
                        let bytes = std::slice::from_raw_parts((*buffer).data, (*buffer).len).to_vec();
                        monty_wire_buffer_free(buffer);
                        bytes
                    }
                })
                .collect();
            assert_eq!(monty_wire_session_close(session), 0);
            responses
        })
        .expect("spawn")
        .join()
        .expect("the small thread panicked");

    let outcomes: Vec<Outcome> = responses
        .iter()
        .map(|bytes| {
            decode_response(bytes, &DecodeLimits::default())
                .expect("decodes")
                .outcome
        })
        .collect();
    assert!(matches!(outcomes[0], Outcome::Ok), "open: {:?}", outcomes[0]);
    let last = &outcomes[1];
    if hazard.close_suspended {
        assert!(matches!(last, Outcome::FunctionCall(_)), "start: {last:?}");
        return;
    }
    match (&hazard.expect, last) {
        (Expect::Complete(check), Outcome::Complete(value)) => check(value),
        (Expect::Error(exc_type), Outcome::PythonError(exc)) => assert_eq!(exc.exc_type(), *exc_type, "{exc}"),
        (_, other) => panic!("unexpected outcome: {other:?}"),
    }
}

/// Runs `name` in a child process per thread stack size; each must exit
/// normally with the hazard's outcome checked.
fn check(name: &str) {
    let exe = std::env::current_exe().expect("test binary");
    for bytes in THREAD_STACKS {
        let output = Command::new(&exe)
            .args(["child", "--exact", "--nocapture", "--test-threads=1"])
            .env(CASE_VAR, name)
            .env(BYTES_VAR, bytes.to_string())
            .output()
            .expect("child runs");
        assert!(
            output.status.success(),
            "{name} from a thread with {} KiB of stack: {} (a signal is a native stack overflow)\n{}{}",
            bytes >> 10,
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
        );
    }
}

/// The child's entry point: does nothing unless the parent set the variables.
#[test]
fn child() {
    let (Ok(name), Ok(bytes)) = (std::env::var(CASE_VAR), std::env::var(BYTES_VAR)) else {
        return;
    };
    let bytes: usize = bytes.parse().expect("a byte count");
    // The host side builds and reads deep values on a stack large enough
    // for them; only the session's work runs on the small thread.
    std::thread::Builder::new()
        .stack_size(512 << 20)
        .spawn(move || run_hazard(&name, bytes))
        .expect("spawn")
        .join()
        .expect("hazard checked");
}

macro_rules! hazards {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                check(stringify!($name));
            }
        )*
    };
}

hazards!(
    deep_source,
    deep_result,
    deep_less_than,
    less_than_past_limit,
    deep_equal,
    deep_hash,
    deep_repr,
    deep_json,
    deep_deepcopy,
    deep_input,
    deep_recursion,
    recursion_within_limit,
    close_holding_deep_values,
);
