//! Runs a Python script in monty and sends its result through the wire.
//!
//! ```text
//! cargo run --example run_python -- examples/hello.py
//! ```
//!
//! The result (or the exception the script raised) is encoded into a
//! monty-wire message, printed in Cap'n Proto text form as any reader of
//! `schema/monty_wire.capnp` sees it, then decoded again and printed as
//! Python would show it.

use std::process::ExitCode;

use monty::MontyRun;
use monty_types::CompileOptions;
use monty_wire::{
    DecodeLimits, decode_exception, decode_value, encode_exception, encode_value, schema::monty_wire_capnp as wire,
};

fn main() -> ExitCode {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "examples/hello.py".to_owned());
    let code = match std::fs::read_to_string(&path) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("cannot read {path}: {err}");
            return ExitCode::from(2);
        }
    };
    let limits = DecodeLimits::default();
    let outcome =
        MontyRun::new(code, &path, vec![], CompileOptions::default()).and_then(|mut run| run.run_no_limits(vec![]));
    match outcome {
        Ok(value) => {
            let message = encode_value(&value).expect("a program's result fits in a message");
            let reader = monty_wire::codec::read_message(message.as_bytes(), &limits).expect("own message reads back");
            let root = reader.get_root::<wire::value::Reader<'_>>().expect("root is a Value");
            println!("wire message: {} bytes", message.len());
            println!("{root:?}");
            let decoded = decode_value(message.as_bytes(), &limits).expect("own message decodes");
            println!("decoded: {}", decoded.py_repr());
            ExitCode::SUCCESS
        }
        Err(exc) => {
            let message = encode_exception(&exc).expect("an exception fits in a message");
            let reader = monty_wire::codec::read_message(message.as_bytes(), &limits).expect("own message reads back");
            let root = reader
                .get_root::<wire::python_exception::Reader<'_>>()
                .expect("root is a PythonException");
            println!("wire message: {} bytes", message.len());
            println!("{root:?}");
            let decoded = decode_exception(message.as_bytes(), &limits).expect("own message decodes");
            eprintln!("{decoded}");
            ExitCode::FAILURE
        }
    }
}
