//! Bulk bytes: a host reading a 16 MiB `bytes` result.
//!
//! The response comes from a real `run` through the C ABI, prepared once;
//! the measured step is only the host's read of that buffer, separate from
//! the interpreter producing the value:
//!
//! - `read_in_place`: frame the message and borrow the bytes field (no copy);
//! - `read_in_place_copy`: the same, then copy the bytes into a host-owned
//!   buffer (what a host that keeps them, e.g. as a Dart `Uint8List`, does);
//! - `memcpy`: a plain 16 MiB copy into the same kind of buffer, the floor;
//! - `full_decode`: `decode_response` into a `MontyObject` (copies too).
//!
//! `produce/*` times the whole request for information: monty building the
//! 16 MiB value, then the response being encoded and handed over, against
//! `MontyRun::run` returning the same value directly.
//!
//! `cargo bench --bench bulk`

#[path = "support/mod.rs"]
mod support;

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use monty::MontyRun;
use monty_types::{CompileOptions, MontyObject, PrintWriter, ResourceLimits, ResourceTracker};
use monty_wire::{
    DecodeLimits,
    codec::read_message,
    protocol::{OpenRun, Outcome, Request},
    schema::{node, response, value},
};
use support::{Host, Reply, bytes_16mib_code, dispatch, slow_group};

const LEN: usize = 16 << 20;

/// Borrows the bytes of a `complete` response whose value is `bytes`,
/// reading the message in place.
fn bytes_in_place<'a>(
    message: &'a capnp::message::Reader<capnp::serialize::BufferSegments<&'a [u8]>>,
) -> Option<&'a [u8]> {
    let response: response::Reader<'a> = message.get_root().ok()?;
    let response::Which::Complete(Ok(value)) = response.which().ok()? else {
        return None;
    };
    let value: value::Reader<'a> = value;
    match value.get_nodes().ok()?.get(value.get_root()).which().ok()? {
        node::Which::Bytes(Ok(data)) => Some(data),
        _ => None,
    }
}

fn run_request() -> Vec<u8> {
    monty_wire::encode_request(&Request::Run(vec![]))
        .unwrap()
        .as_bytes()
        .to_vec()
}

fn read(c: &mut Criterion) {
    let limits = DecodeLimits::default();
    let host = Host::open(OpenRun::new(bytes_16mib_code()));
    let reply: Reply = dispatch(host.handle, &run_request());
    let bytes = reply.bytes();
    eprintln!("bulk: response message of {} bytes", bytes.len());

    let expected: Vec<u8> = (0..=255u8).cycle().take(LEN).collect();
    {
        let message = read_message(bytes, &limits).unwrap();
        assert_eq!(bytes_in_place(&message), Some(expected.as_slice()));
    }
    let mut dest = vec![0u8; LEN];
    {
        let message = read_message(bytes, &limits).unwrap();
        dest.copy_from_slice(bytes_in_place(&message).unwrap());
        assert_eq!(dest, expected);
    }

    let mut group = c.benchmark_group("bulk/read_16mib");
    slow_group(&mut group);
    group.throughput(Throughput::Bytes(LEN as u64));
    group.bench_function("read_in_place", |b| {
        b.iter(|| {
            let message = read_message(black_box(bytes), &limits).unwrap();
            let data = bytes_in_place(&message).unwrap();
            (data.as_ptr(), data.len())
        })
    });
    group.bench_function("read_in_place_copy", |b| {
        b.iter(|| {
            let message = read_message(black_box(bytes), &limits).unwrap();
            dest.copy_from_slice(bytes_in_place(&message).unwrap());
            black_box(&mut dest);
        })
    });
    group.bench_function("memcpy", |b| {
        b.iter(|| {
            dest.copy_from_slice(black_box(&expected));
            black_box(&mut dest);
        })
    });
    group.bench_function("full_decode", |b| b.iter(|| reply.decode()));
    group.finish();
}

fn produce(c: &mut Criterion) {
    let host = Host::open(OpenRun::new(bytes_16mib_code()));
    let request = run_request();
    let mut program = MontyRun::new(bytes_16mib_code(), "main.py", vec![], CompileOptions::default()).unwrap();
    assert!(matches!(
        dispatch(host.handle, &request).decode().outcome,
        Outcome::Complete(_)
    ));

    let mut group = c.benchmark_group("bulk/produce_16mib");
    slow_group(&mut group);
    group.bench_function("direct", |b| {
        b.iter(|| -> MontyObject {
            program
                .run(
                    vec![],
                    ResourceTracker::new(ResourceLimits::default()),
                    PrintWriter::Disabled,
                )
                .unwrap()
        })
    });
    group.bench_function("wire", |b| b.iter(|| dispatch(host.handle, black_box(&request))));
    group.finish();
}

criterion_group!(benches, read, produce);
criterion_main!(benches);
