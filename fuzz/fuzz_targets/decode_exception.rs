//! Any bytes a host sends as an exception: a typed error or an exception
//! that survives a second round trip unchanged, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use monty_wire::{DecodeLimits, decode_exception, encode_exception};

fuzz_target!(|data: &[u8]| {
    let limits = DecodeLimits::default();
    if let Ok(exc) = decode_exception(data, &limits) {
        let message = encode_exception(&exc).expect("a decoded exception re-encodes");
        let again = decode_exception(message.as_bytes(), &limits).expect("a re-encoded exception decodes");
        assert_eq!(again, exc, "re-encoding changed the exception");
    }
});
