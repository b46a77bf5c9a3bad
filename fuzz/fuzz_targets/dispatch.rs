//! Every byte a host can send a session, from every state it can be in:
//! see `dispatch` in `harness.rs`.
#![no_main]

#[path = "../harness.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::dispatch(data));
