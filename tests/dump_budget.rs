//! A dump is read like any other message a host sends: within the session's
//! decode limits and one per-message budget. A few hundred bytes of envelope
//! can claim millions of empty `futureNames` entries (Cap'n Proto charges a
//! list of empty structs one traversal word per element), each of which
//! would decode into a call id and a `String`; such a dump must be refused
//! before that list is collected, and in a session with a dump key before
//! anything is copied out of the envelope at all.
//!
//! The test binary counts the largest single allocation each thread makes,
//! so "refused without a large allocation" is checked directly.

use std::{
    alloc::{GlobalAlloc, Layout, System},
    cell::Cell,
};

use monty_types::{MONTY_VERSION, ResourceLimits};
use monty_wire::{
    PROTOCOL_VERSION, Session,
    codec::{WireMessage, builder_with_capacity, decode_response, encode_request},
    protocol::{ErrorCode, Outcome, ProtocolError, Request},
    schema::monty_wire_capnp as wire,
};

/// The system allocator, recording the largest request per thread.
struct Largest;

thread_local! {
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded unchanged to `System`; the bookkeeping
// touches only a const-initialized thread-local `Cell`, which never allocates.
unsafe impl GlobalAlloc for Largest {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = LARGEST.try_with(|largest| largest.set(largest.get().max(layout.size())));
        // SAFETY: the caller's contract is `System`'s.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = LARGEST.try_with(|largest| largest.set(largest.get().max(new_size)));
        // SAFETY: the caller's contract is `System`'s.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Largest = Largest;

/// A million entries: 32 MiB as `(u32, String)` pairs, well inside the
/// default traversal limit of 32 Mi words.
const CLAIMED_NAMES: u32 = 1 << 20;

/// The largest allocation a refusal may make: the request, the response and
/// the decoder's own bookkeeping are all far smaller.
const SMALL: usize = 1 << 20;

/// A `Dump` envelope of `kind` from this build (so no version check refuses
/// it) whose `futureNames` claims `count` entries of no data and no pointers,
/// sealed (with a tag that cannot verify) or not.
fn forged_dump(kind: wire::DumpKind, count: u32, sealed: bool) -> Vec<u8> {
    const SENTINEL: u32 = 0x5EA1_ED00;
    let mut builder = builder_with_capacity(64);
    let mut root = builder.init_root::<wire::dump::Builder<'_>>();
    root.set_kind(kind);
    root.set_protocol_version(PROTOCOL_VERSION);
    root.set_monty_version(MONTY_VERSION);
    root.set_payload(b"");
    root.reborrow().init_future_names(1).get(0).set_call_id(SENTINEL);
    if sealed {
        root.init_seal().set_hmac_sha256(&[0; 32]);
    } else {
        root.init_seal().set_none(());
    }
    let mut bytes = WireMessage::finish(builder).into_bytes();

    // The one-element list is a tag word, then the element's data word
    // (holding the sentinel) and its pointer word. Rewrite the tag to claim
    // `count` elements of zero words each, and the list pointer to claim
    // zero words of content, so the message keeps its size.
    let word = |bytes: &[u8], i: usize| u64::from_le_bytes(bytes[i * 8..i * 8 + 8].try_into().expect("a word"));
    let words = bytes.len() / 8;
    let element = (0..words)
        .find(|&i| word(&bytes, i) == u64::from(SENTINEL))
        .expect("the sentinel element");
    let tag = element - 1;
    assert_eq!(
        word(&bytes, tag),
        0x0001_0001_0000_0004,
        "a tag of one element of 1+1 words"
    );
    let pointer = (0..tag)
        .find(|&i| {
            let w = word(&bytes, i);
            let offset = ((w as u32 as i32) >> 2) as i64;
            w & 3 == 1 && (w >> 32) & 7 == 7 && i as i64 + 1 + offset == tag as i64
        })
        .expect("the list pointer");
    let patch =
        |bytes: &mut Vec<u8>, i: usize, value: u64| bytes[i * 8..i * 8 + 8].copy_from_slice(&value.to_le_bytes());
    patch(&mut bytes, tag, u64::from(count) << 2);
    let list = word(&bytes, pointer) & 0x7_ffff_ffff;
    patch(&mut bytes, pointer, list);
    bytes
}

/// Sends `request` to `session` and returns the protocol error it answers
/// with, and the largest allocation made while handling it.
fn refusal(session: &mut Session, request: &Request) -> (ProtocolError, usize) {
    let bytes = encode_request(request).expect("encodes");
    LARGEST.with(|largest| largest.set(0));
    let response = session.handle_bytes(bytes.as_bytes());
    let largest = LARGEST.with(Cell::get);
    let response = decode_response(response.as_bytes(), &Default::default()).expect("decodes");
    match response.outcome {
        Outcome::ProtocolError(error) => (error, largest),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn load_session(dump: Vec<u8>) -> Request {
    Request::LoadSession {
        dump,
        limits: ResourceLimits::default(),
        access: Default::default(),
    }
}

fn load_program(dump: Vec<u8>) -> Request {
    Request::LoadProgram {
        dump,
        limits: ResourceLimits::default(),
    }
}

fn keyed_session() -> Session {
    let mut session = Session::new();
    let response = session.handle(Request::SetDumpKey(b"a key".to_vec()));
    assert!(matches!(response.outcome, Outcome::Ok), "{:?}", response.outcome);
    session
}

#[test]
fn the_forged_envelope_is_small_and_claims_millions_of_names() {
    let dump = forged_dump(wire::DumpKind::ReplSuspended, CLAIMED_NAMES, false);
    assert!(dump.len() <= 256, "{} bytes", dump.len());
    let message = monty_wire::codec::read_message(&dump, &Default::default()).expect("a valid message");
    let root = message.get_root::<wire::dump::Reader<'_>>().expect("a Dump");
    assert_eq!(root.get_future_names().expect("a list").len(), CLAIMED_NAMES);
}

#[test]
fn load_session_charges_future_names_to_the_budget() {
    let dump = forged_dump(wire::DumpKind::ReplSuspended, CLAIMED_NAMES, false);
    let (error, largest) = refusal(&mut Session::new(), &load_session(dump));
    assert_eq!(error.code, ErrorCode::InvalidDump, "{}", error.message);
    assert!(error.message.contains("budget"), "{}", error.message);
    assert!(largest < SMALL, "allocated {largest} bytes at once");
}

#[test]
fn load_program_charges_future_names_to_the_budget() {
    let dump = forged_dump(wire::DumpKind::Program, CLAIMED_NAMES, false);
    let (error, largest) = refusal(&mut Session::new(), &load_program(dump));
    assert_eq!(error.code, ErrorCode::InvalidDump, "{}", error.message);
    assert!(error.message.contains("budget"), "{}", error.message);
    assert!(largest < SMALL, "allocated {largest} bytes at once");
}

#[test]
fn a_keyed_session_checks_the_seal_before_collecting_anything() {
    for request in [
        load_session(forged_dump(wire::DumpKind::ReplSuspended, CLAIMED_NAMES, true)),
        load_program(forged_dump(wire::DumpKind::Program, CLAIMED_NAMES, true)),
    ] {
        let (error, largest) = refusal(&mut keyed_session(), &request);
        assert_eq!(error.code, ErrorCode::InvalidDump, "{}", error.message);
        assert!(error.message.contains("seal does not verify"), "{}", error.message);
        assert!(largest < SMALL, "allocated {largest} bytes at once");
    }
}

#[test]
fn a_keyed_session_refuses_an_unsealed_envelope_before_collecting_anything() {
    let dump = forged_dump(wire::DumpKind::ReplSuspended, CLAIMED_NAMES, false);
    let (error, largest) = refusal(&mut keyed_session(), &load_session(dump));
    assert_eq!(error.code, ErrorCode::InvalidDump, "{}", error.message);
    assert!(error.message.contains("not sealed"), "{}", error.message);
    assert!(largest < SMALL, "allocated {largest} bytes at once");
}
