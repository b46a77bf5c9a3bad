//! Everything a host can get wrong at the C boundary gets a clear error,
//! never a crash, and never costs another session (or the same one) its
//! state.

mod common;

use std::{
    ffi::c_void,
    sync::mpsc::{Sender, channel},
    time::Duration,
};

use common::{Host, complete, dispatch_bytes, expect_code, function_call, open_session};
use monty_types::{MontyObject, ResourceLimits};
use monty_wire::{
    WireMessage,
    codec::{builder_with_capacity, encode_request},
    ffi::{
        MONTY_WIRE_OK, MONTY_WIRE_SESSION_BUSY, MONTY_WIRE_UNKNOWN_SESSION, MontyWireBuffer, monty_wire_buffer_free,
        monty_wire_dispatch, monty_wire_protocol_version, monty_wire_session_close, monty_wire_set_print_callback,
    },
    protocol::{CallResult, ErrorCode, OpenRun, Outcome, Request},
    schema::monty_wire_capnp as wire,
    session::PANIC_SCRIPT_NAME,
};

fn run_request() -> WireMessage {
    encode_request(&Request::Run(vec![])).expect("encodes")
}

#[test]
fn the_version_is_the_schemas() {
    assert_eq!(monty_wire_protocol_version(), monty_wire::PROTOCOL_VERSION);
    assert_eq!(monty_wire::PROTOCOL_VERSION, 3);
}

#[test]
fn garbage_bytes_are_a_malformed_message() {
    let host = Host::new();
    let error = expect_code(
        dispatch_bytes(host.handle, b"\xde\xad\xbe\xef definitely not capnp"),
        ErrorCode::MalformedMessage,
    );
    assert!(error.message.contains("request rejected"), "{}", error.message);
    expect_code(dispatch_bytes(host.handle, &[]), ErrorCode::MalformedMessage);
}

#[test]
fn a_truncated_message_is_reported_as_truncated() {
    let host = Host::open("1 + 1", &[], ResourceLimits::default());
    let message = run_request();
    let bytes = message.as_bytes();
    expect_code(
        dispatch_bytes(host.handle, &bytes[..bytes.len() - 8]),
        ErrorCode::TruncatedMessage,
    );
    // Trailing bytes are an error too: a host that passes the wrong length learns at once.
    let mut long = bytes.to_vec();
    long.extend_from_slice(&[0; 8]);
    expect_code(dispatch_bytes(host.handle, &long), ErrorCode::MalformedMessage);
    // None of that touched the session.
    assert_eq!(complete(dispatch_bytes(host.handle, bytes)), MontyObject::int(2));
}

#[test]
fn an_out_of_range_node_index_is_an_invalid_value() {
    let host = Host::open("x", &["x"], ResourceLimits::default());
    let mut message = builder_with_capacity(64);
    {
        let request = message.init_root::<wire::request::Builder<'_>>();
        let mut inputs = request.init_start();
        let mut nodes = inputs.reborrow().init_nodes(1);
        nodes.reborrow().get(0).init_list(1).set(0, 5);
        inputs.init_roots(1).set(0, 0);
    }
    let bytes = WireMessage::from_builder(&message);
    let error = expect_code(dispatch_bytes(host.handle, bytes.as_bytes()), ErrorCode::InvalidValue);
    assert!(error.message.contains("refers to node 5"), "{}", error.message);

    let mut message = builder_with_capacity(64);
    {
        let request = message.init_root::<wire::request::Builder<'_>>();
        let mut inputs = request.init_start();
        inputs.reborrow().init_nodes(1).get(0).set_int_value(1);
        inputs.init_roots(1).set(0, 3);
    }
    let bytes = WireMessage::from_builder(&message);
    expect_code(dispatch_bytes(host.handle, bytes.as_bytes()), ErrorCode::InvalidValue);
    assert_eq!(
        complete(host.send(&Request::Run(vec![MontyObject::int(4)]))),
        MontyObject::int(4)
    );
}

#[test]
fn an_unknown_request_arm_is_reported_as_unknown() {
    let host = Host::new();
    // A Request whose union discriminant is past every arm this build knows.
    let mut message = builder_with_capacity(16);
    message.init_root::<wire::request::Builder<'_>>().set_dump_program(());
    let mut bytes = WireMessage::from_builder(&message).as_bytes().to_vec();
    let discriminant = bytes
        .windows(2)
        .rposition(|w| w == [9, 0])
        .expect("the dumpProgram discriminant is in the data section");
    bytes[discriminant] = 200;
    expect_code(dispatch_bytes(host.handle, &bytes), ErrorCode::UnknownRequest);
}

#[test]
fn misaligned_request_bytes_are_read_in_place() {
    let host = Host::open("21 * 2", &[], ResourceLimits::default());
    let message = run_request();
    let mut shifted = vec![0u8; message.len() + 1];
    shifted[1..].copy_from_slice(message.as_bytes());
    assert_eq!(
        complete(dispatch_bytes(host.handle, &shifted[1..])),
        MontyObject::int(42)
    );
}

#[test]
fn null_closed_and_made_up_handles_get_unknown_session() {
    let message = run_request();
    expect_code(dispatch_bytes(0, message.as_bytes()), ErrorCode::UnknownSession);
    expect_code(dispatch_bytes(u64::MAX, message.as_bytes()), ErrorCode::UnknownSession);
    let handle = open_session();
    assert_eq!(monty_wire_session_close(handle), MONTY_WIRE_OK);
    expect_code(dispatch_bytes(handle, message.as_bytes()), ErrorCode::UnknownSession);
    assert_eq!(monty_wire_session_close(handle), MONTY_WIRE_UNKNOWN_SESSION);
    assert_eq!(monty_wire_session_close(0), MONTY_WIRE_UNKNOWN_SESSION);
    // SAFETY: a null callback with null user data.
    let status = unsafe { monty_wire_set_print_callback(handle, None, std::ptr::null_mut()) };
    assert_eq!(status, MONTY_WIRE_UNKNOWN_SESSION);
}

#[test]
fn a_null_request_pointer_is_an_empty_malformed_message() {
    let host = Host::new();
    // SAFETY: null with length 0 is allowed; the buffer is freed once.
    unsafe {
        let buffer = monty_wire_dispatch(host.handle, std::ptr::null(), 0);
        let header = &*buffer;
        let response = monty_wire::codec::decode_response(
            std::slice::from_raw_parts(header.data, header.len),
            &monty_wire::DecodeLimits::default(),
        )
        .expect("decodes");
        assert!(matches!(response.outcome, Outcome::ProtocolError(ref e) if e.code == ErrorCode::MalformedMessage));
        monty_wire_buffer_free(buffer);
    }
}

#[test]
fn freeing_twice_null_or_foreign_buffers_is_ignored() {
    let host = Host::new();
    let message = run_request();
    // SAFETY: the pointers passed to free are either ours, null, or a
    // stack value the library must not touch.
    unsafe {
        let buffer = monty_wire_dispatch(host.handle, message.as_bytes().as_ptr(), message.len());
        monty_wire_buffer_free(buffer);
        monty_wire_buffer_free(buffer);
        monty_wire_buffer_free(std::ptr::null_mut());
        let mut foreign = MontyWireBuffer {
            data: std::ptr::null(),
            len: 0,
        };
        monty_wire_buffer_free(&raw mut foreign);
    }
}

#[test]
fn an_induced_panic_becomes_an_internal_error_and_resets_the_session() {
    let host = Host::new();
    let mut open = OpenRun::new("1");
    open.script_name = PANIC_SCRIPT_NAME.into();
    let error = expect_code(host.send(&Request::OpenRun(Box::new(open))), ErrorCode::InternalError);
    assert!(error.message.contains("induced by the test hook"), "{}", error.message);
    // The same session works again, from empty.
    let response = host.send(&Request::OpenRun(Box::new(OpenRun::new("6 * 7"))));
    assert!(matches!(response.outcome, Outcome::Ok));
    assert_eq!(complete(host.send(&Request::Run(vec![]))), MontyObject::int(42));
}

#[test]
fn a_panic_leaves_other_sessions_alone() {
    let bystander = Host::open("f()", &["f"], ResourceLimits::default());
    function_call(bystander.start(vec![MontyObject::function("f", None)]));
    let victim = Host::new();
    let mut open = OpenRun::new("1");
    open.script_name = PANIC_SCRIPT_NAME.into();
    expect_code(victim.send(&Request::OpenRun(Box::new(open))), ErrorCode::InternalError);
    assert_eq!(
        complete(bystander.resume(CallResult::Value(MontyObject::int(1)))),
        MontyObject::int(1)
    );
}

unsafe extern "C" fn signal_print(user_data: *mut c_void, stream: u32, text: *const u8, len: usize) {
    // SAFETY: `user_data` is the `Sender` the test registered and keeps alive;
    // `text` is `len` bytes valid during the call.
    unsafe {
        let sender = &*user_data.cast::<Sender<(u32, String)>>();
        let text = String::from_utf8_lossy(std::slice::from_raw_parts(text, len)).into_owned();
        let _ = sender.send((stream, text));
    }
}

#[test]
fn a_second_thread_gets_busy_and_the_print_callback_is_live() {
    let limits = ResourceLimits {
        max_feed_duration: Some(Duration::from_secs(3)),
        ..ResourceLimits::default()
    };
    let host = Host::open("print('started')\nwhile True:\n    pass", &[], limits);
    let (sender, receiver) = channel::<(u32, String)>();
    let sender = Box::new(sender);
    let user_data = (&raw const *sender).cast_mut().cast::<c_void>();
    // SAFETY: `sender` outlives every dispatch to this session in this test.
    let status = unsafe { monty_wire_set_print_callback(host.handle, Some(signal_print), user_data) };
    assert_eq!(status, MONTY_WIRE_OK);
    let handle = host.handle;
    let worker = std::thread::spawn(move || {
        let message = encode_request(&Request::Run(vec![])).expect("encodes");
        dispatch_bytes(handle, message.as_bytes())
    });
    // The script printed, so the worker is inside the session now.
    let first = receiver
        .recv_timeout(Duration::from_secs(30))
        .expect("live print output");
    assert_eq!(first, (0, "started".into()));
    expect_code(dispatch_bytes(handle, run_request().as_bytes()), ErrorCode::SessionBusy);
    // SAFETY: a null callback.
    let status = unsafe { monty_wire_set_print_callback(handle, None, std::ptr::null_mut()) };
    assert_eq!(status, MONTY_WIRE_SESSION_BUSY);
    let response = worker.join().expect("worker");
    // The live output is also in the response.
    assert_eq!(response.output[0].text, "started\n");
    assert!(matches!(response.outcome, Outcome::PythonError(_)));
    // SAFETY: removes the callback before `sender` is dropped.
    let status = unsafe { monty_wire_set_print_callback(handle, None, std::ptr::null_mut()) };
    assert_eq!(status, MONTY_WIRE_OK);
}

#[test]
fn a_session_moves_between_threads() {
    let host = Host::open("f() + f()", &["f"], ResourceLimits::default());
    let handle = host.handle;
    let first = std::thread::spawn(move || {
        let message = encode_request(&Request::Start(vec![MontyObject::function("f", None)])).expect("encodes");
        function_call(dispatch_bytes(handle, message.as_bytes()));
    });
    first.join().expect("thread one");
    let second = std::thread::spawn(move || {
        let message = encode_request(&Request::ResumeCall(CallResult::Value(MontyObject::int(1)))).expect("encodes");
        function_call(dispatch_bytes(handle, message.as_bytes()));
    });
    second.join().expect("thread two");
    assert_eq!(
        complete(host.resume(CallResult::Value(MontyObject::int(2)))),
        MontyObject::int(3)
    );
}
