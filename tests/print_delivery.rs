//! Live print output through the C ABI's print callback under each
//! `PrintDelivery`: the calls the callback gets and their texts, the order
//! across stdout and stderr, and everything delivered before the response.
//!
//! Written against tests/common's `Host`, so `MONTY_WIRE_TEST_ISOLATED=1`
//! runs the same tests against isolated sessions, where the batching happens
//! in the worker's session and reaches the callback one delivery a frame.

mod common;

use std::{ffi::c_void, time::Duration};

use common::{Host, complete, expect_code, function_call, python_error};
use monty_types::{ExcType, MontyObject, PrintStream, ResourceLimits};
use monty_wire::{
    DecodeLimits, decode_request, encode_request,
    ffi::{MONTY_WIRE_OK, monty_wire_set_print_callback},
    protocol::{CallResult, ErrorCode, Feed, OpenRepl, Outcome, PrintDelivery, PrintSegment, Request, Response},
};

/// An interval no test lasts: such a session delivers only at a switch of
/// stream and at the end of each request.
const AN_HOUR: PrintDelivery = PrintDelivery::Interval(Duration::from_secs(3600));

/// The calls a callback got, as `(stream, text)`.
#[derive(Default)]
struct Calls(Vec<(u32, String)>);

/// Appends each call to the `Calls` at `user_data`.
unsafe extern "C" fn record(user_data: *mut c_void, stream: u32, text: *const u8, len: usize) {
    // SAFETY: `user_data` is the `Calls` a `Watched` owns and keeps alive
    // while the callback is registered, used by no one else during
    // dispatch; `text` is `len` bytes valid during the call.
    unsafe {
        let calls = &mut *user_data.cast::<Calls>();
        let text = std::str::from_utf8(std::slice::from_raw_parts(text, len)).expect("UTF-8");
        calls.0.push((stream, text.to_owned()));
    }
}

/// A session whose print callback records every call.
struct Watched {
    // Dropped first: closing the session ends the callback's use of `calls`.
    host: Host,
    // Boxed: the callback holds its address, which must not move with `Watched`.
    calls: Box<Calls>,
}

impl Watched {
    fn new(delivery: Option<PrintDelivery>) -> Self {
        let mut watched = Self {
            host: Host::new(),
            calls: Box::default(),
        };
        let user_data = (&raw mut *watched.calls).cast::<c_void>();
        // SAFETY: the callback matches the signature, and `calls` outlives
        // the session (see the field order).
        let status = unsafe { monty_wire_set_print_callback(watched.host.handle, Some(record), user_data) };
        assert_eq!(status, MONTY_WIRE_OK);
        if let Some(delivery) = delivery {
            watched.set(delivery);
        }
        watched
    }

    fn set(&self, delivery: PrintDelivery) {
        let response = self.host.send(&Request::SetPrintDelivery(delivery));
        assert!(matches!(response.outcome, Outcome::Ok), "{:?}", response.outcome);
        assert!(response.output.is_empty());
    }

    /// Opens `code` as a run with `input_names`.
    fn open(&self, code: &str, input_names: &[&str]) {
        let open = monty_wire::protocol::OpenRun {
            input_names: input_names.iter().map(|&name| name.to_owned()).collect(),
            ..monty_wire::protocol::OpenRun::new(code)
        };
        let response = self.host.send(&Request::OpenRun(Box::new(open)));
        assert!(matches!(response.outcome, Outcome::Ok), "{:?}", response.outcome);
    }

    /// Opens `code` as a run and runs it to completion.
    fn run(&self, code: &str) -> Response {
        self.open(code, &[]);
        self.host.send(&Request::Run(vec![]))
    }

    /// The calls so far, emptied.
    fn take(&mut self) -> Vec<(u32, String)> {
        std::mem::take(&mut self.calls.0)
    }
}

fn calls(list: &[(u32, &str)]) -> Vec<(u32, String)> {
    list.iter()
        .map(|(stream, text)| (*stream, (*text).to_owned()))
        .collect()
}

fn segments(list: &[(PrintStream, &str)]) -> Vec<PrintSegment> {
    list.iter()
        .map(|(stream, text)| PrintSegment {
            stream: *stream,
            text: (*text).to_owned(),
        })
        .collect()
}

/// The calls, with consecutive calls of one stream joined: what a
/// response's `output` holds when everything was delivered.
fn joined(calls: &[(u32, String)]) -> Vec<PrintSegment> {
    let mut out: Vec<PrintSegment> = Vec::new();
    for (stream, text) in calls {
        let stream = if *stream == 0 {
            PrintStream::Stdout
        } else {
            PrintStream::Stderr
        };
        match out.last_mut() {
            Some(last) if last.stream == stream => last.text.push_str(text),
            _ => out.push(PrintSegment {
                stream,
                text: text.clone(),
            }),
        }
    }
    out
}

const LINES_AND_PARTS: &str = "\
for i in range(3):
    print(i, 'x')
print('a\\nb', end='')
print('c')
print('tail', end='')
";

#[test]
fn every_fragment_is_the_default_and_an_interval_of_zero() {
    for delivery in [
        None,
        Some(PrintDelivery::EveryFragment),
        Some(PrintDelivery::Interval(Duration::ZERO)),
    ] {
        let mut watched = Watched::new(delivery);
        let response = watched.run("print(1, 'x')\nprint('', end='')");
        complete(response.clone());
        assert_eq!(
            watched.take(),
            calls(&[(0, "1"), (0, " "), (0, "x"), (0, "\n"), (0, ""), (0, "")]),
            "{delivery:?}"
        );
        assert_eq!(response.output, segments(&[(PrintStream::Stdout, "1 x\n")]));
    }
}

#[test]
fn lines_are_delivered_one_call_a_line() {
    let mut watched = Watched::new(Some(PrintDelivery::Lines));
    let response = watched.run(LINES_AND_PARTS);
    complete(response.clone());
    // A write holding newlines delivers up to its last one; the partial
    // line left at the end of the request is delivered then.
    assert_eq!(
        watched.take(),
        calls(&[
            (0, "0 x\n"),
            (0, "1 x\n"),
            (0, "2 x\n"),
            (0, "a\n"),
            (0, "bc\n"),
            (0, "tail")
        ])
    );
    assert_eq!(
        response.output,
        segments(&[(PrintStream::Stdout, "0 x\n1 x\n2 x\na\nbc\ntail")])
    );
}

#[test]
fn an_interval_gathers_until_it_has_passed_or_the_request_ends() {
    let mut watched = Watched::new(Some(AN_HOUR));
    let response = watched.run("for i in range(100):\n    print(i)");
    complete(response.clone());
    let expected: String = (0..100).map(|i| format!("{i}\n")).collect();
    assert_eq!(watched.take(), vec![(0, expected.clone())]);
    assert_eq!(response.output, segments(&[(PrintStream::Stdout, &expected)]));
}

#[test]
fn a_switch_of_stream_delivers_the_other_streams_text_first() {
    let code = "\
import sys
print('out', end='')
print('err', end='', file=sys.stderr)
print('!', file=sys.stderr)
print('more')
print('last', end='', file=sys.stderr)
";
    for delivery in [PrintDelivery::Lines, AN_HOUR] {
        let mut watched = Watched::new(Some(delivery));
        let response = watched.run(code);
        complete(response.clone());
        let seen = watched.take();
        assert_eq!(
            seen,
            calls(&[(0, "out"), (1, "err!\n"), (0, "more\n"), (1, "last")]),
            "{delivery:?}"
        );
        assert_eq!(response.output, joined(&seen), "{delivery:?}");
        assert_eq!(
            response.output,
            segments(&[
                (PrintStream::Stdout, "out"),
                (PrintStream::Stderr, "err!\n"),
                (PrintStream::Stdout, "more\n"),
                (PrintStream::Stderr, "last"),
            ])
        );
    }
}

/// Whatever the outcome, what a request printed has reached the callback
/// by the time its response is returned: at a suspension, after a Python
/// error, at the end of a run.
#[test]
fn everything_gathered_is_delivered_before_the_response() {
    for delivery in [PrintDelivery::EveryFragment, PrintDelivery::Lines, AN_HOUR] {
        let mut watched = Watched::new(Some(delivery));
        watched.open(
            "print('before', end='')\nn = f()\nprint('after', n, end='')\n1 / n",
            &["f"],
        );
        let host = &watched.host;
        let response = host.start(vec![MontyObject::function("f", None)]);
        assert_eq!(function_call(response.clone()).name, "f");
        assert_eq!(joined(&watched.take()), segments(&[(PrintStream::Stdout, "before")]));
        assert_eq!(response.output, segments(&[(PrintStream::Stdout, "before")]));

        let response = watched.host.resume(CallResult::Value(MontyObject::int(0)));
        assert_eq!(python_error(response.clone()).exc_type(), ExcType::ZeroDivisionError);
        assert_eq!(joined(&watched.take()), segments(&[(PrintStream::Stdout, "after 0")]));
        assert_eq!(response.output, segments(&[(PrintStream::Stdout, "after 0")]));

        // A REPL, and output cut short by a time limit.
        let watched_repl = Watched::new(Some(delivery));
        let repl = OpenRepl {
            limits: ResourceLimits {
                max_feed_duration: Some(Duration::from_millis(200)),
                ..ResourceLimits::default()
            },
            ..OpenRepl::default()
        };
        assert!(matches!(
            watched_repl.host.send(&Request::OpenRepl(Box::new(repl))).outcome,
            Outcome::Ok
        ));
        let mut watched_repl = watched_repl;
        let response = watched_repl.host.send(&Request::FeedRun(Feed::new(
            "print('start', end='')\nwhile True:\n    pass",
        )));
        assert_eq!(python_error(response.clone()).exc_type(), ExcType::TimeoutError);
        assert_eq!(
            joined(&watched_repl.take()),
            segments(&[(PrintStream::Stdout, "start")])
        );
        assert_eq!(response.output, segments(&[(PrintStream::Stdout, "start")]));
    }
}

#[test]
fn the_setting_is_taken_in_any_state_and_kept() {
    // Empty: kept through opening.
    let mut watched = Watched::new(Some(PrintDelivery::Lines));
    watched.open("print(1, 2)\nf()\nprint(3, 4)\n'done'", &["f"]);
    let host = &watched.host;
    function_call(host.start(vec![MontyObject::function("f", None)]));
    assert_eq!(watched.take(), calls(&[(0, "1 2\n")]));
    // Suspended: the session stays suspended, and the next request
    // delivers as it says.
    watched.set(PrintDelivery::EveryFragment);
    let response = watched.host.resume(CallResult::Value(MontyObject::none()));
    assert_eq!(complete(response), MontyObject::string("done"));
    assert_eq!(watched.take(), calls(&[(0, "3"), (0, " "), (0, "4"), (0, "\n")]));
    // Ready again, and in a REPL.
    watched.set(AN_HOUR);
    let repl = Watched::new(Some(PrintDelivery::Lines));
    assert!(matches!(
        repl.host.send(&Request::OpenRepl(Box::default())).outcome,
        Outcome::Ok
    ));
    let mut repl = repl;
    complete(
        repl.host
            .send(&Request::FeedRun(Feed::new("print(1, 2)\nprint(3, end='')"))),
    );
    assert_eq!(repl.take(), calls(&[(0, "1 2\n"), (0, "3")]));
}

#[test]
fn a_session_without_a_callback_takes_the_setting_and_prints_into_its_response() {
    let host = Host::new();
    let response = host.send(&Request::SetPrintDelivery(PrintDelivery::Lines));
    assert!(matches!(response.outcome, Outcome::Ok));
    let open = host.send(&Request::OpenRun(Box::new(monty_wire::protocol::OpenRun::new(
        "print('a', 'b')",
    ))));
    assert!(matches!(open.outcome, Outcome::Ok));
    let response = host.send(&Request::Run(vec![]));
    assert_eq!(response.output, segments(&[(PrintStream::Stdout, "a b\n")]));
}

#[test]
fn a_delivery_this_build_does_not_know_is_refused() {
    // PrintDelivery's tag is the u16 eight bytes before `interval`.
    const SENTINEL: u64 = 0x1122_3344_5566_7788;
    let message = encode_request(&Request::SetPrintDelivery(PrintDelivery::Interval(
        Duration::from_nanos(SENTINEL),
    )))
    .expect("encodes");
    let mut bytes = message.as_bytes().to_vec();
    let at = bytes
        .windows(8)
        .position(|w| w == SENTINEL.to_le_bytes())
        .expect("the sentinel is in the message");
    bytes[at - 8..at - 6].copy_from_slice(&9u16.to_le_bytes());
    assert!(decode_request(&bytes, &DecodeLimits::default()).is_err());
    let host = Host::new();
    let error = expect_code(common::dispatch_bytes(host.handle, &bytes), ErrorCode::InvalidValue);
    assert!(error.message.contains("PrintDelivery"), "{}", error.message);
}
