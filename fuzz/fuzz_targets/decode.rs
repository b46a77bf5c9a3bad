//! Every message root the crate reads (Value, PythonException, Request,
//! Response, Dump): see `decode` in `harness.rs`.
#![no_main]

#[path = "../harness.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::decode(data));
