//! Every byte a host can send to a session: the input is a sequence of
//! request messages (each prefixed by a little-endian u16 length) sent to a
//! session whose program suspends at each kind of host call. Every response
//! must decode, and no request may reach a panic (the engine would report
//! one as `internalError`, which the fuzzer treats as a failure).
#![no_main]

use libfuzzer_sys::fuzz_target;
use monty_types::{MontyObject, ResourceLimits};
use monty_wire::{
    DecodeLimits, Session, decode_response, encode_request,
    protocol::{ErrorCode, OpenRun, Outcome, Request},
};
use std::time::Duration;

const PROGRAM: &str = "import asyncio, os\n\
async def main():\n    return await asyncio.gather(f(1), f(2))\n\
x = f(0, k=(1, 2))\ny = os.getenv('HOME')\nz = undefined_name\n\
(x, y, z, asyncio.run(main()))";

fuzz_target!(|data: &[u8]| {
    let mut session = Session::new();
    let mut open = OpenRun::new(PROGRAM);
    open.input_names = vec!["f".into()];
    open.limits = ResourceLimits {
        max_feed_duration: Some(Duration::from_millis(200)),
        ..ResourceLimits::default()
    };
    session.handle(Request::OpenRun(Box::new(open)));
    let start = encode_request(&Request::Start(vec![MontyObject::function("f", None)])).expect("encodes");
    session.handle_bytes(start.as_bytes());

    let mut rest = data;
    while rest.len() >= 2 {
        let len = usize::from(u16::from_le_bytes([rest[0], rest[1]])).min(rest.len() - 2);
        let (request, tail) = rest[2..].split_at(len);
        rest = tail;
        let response = session.handle_bytes(request);
        let response = decode_response(response.as_bytes(), &DecodeLimits::default()).expect("responses decode");
        if let Outcome::ProtocolError(error) = &response.outcome {
            assert_ne!(error.code, ErrorCode::InternalError, "{}", error.message);
        }
    }
});
