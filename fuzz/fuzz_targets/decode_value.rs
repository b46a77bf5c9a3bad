//! Any bytes a host sends as a value: decoding returns a value or a typed
//! error, never panics, and whatever decodes re-encodes and decodes equal.
#![no_main]

use libfuzzer_sys::fuzz_target;
use monty_types::unstable::graph_parts;
use monty_wire::{DecodeLimits, decode_value, encode_value};

fuzz_target!(|data: &[u8]| {
    let limits = DecodeLimits::default();
    if let Ok(value) = decode_value(data, &limits) {
        let message = encode_value(&value).expect("a decoded value re-encodes");
        let again = decode_value(message.as_bytes(), &limits).expect("a re-encoded value decodes");
        assert!(
            graph_parts(&value) == graph_parts(&again),
            "re-encoding changed the value"
        );
    }
});
