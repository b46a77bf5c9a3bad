//! The value codec against the alternatives a host could use instead: JSON
//! (serde_json of the same `MontyObject`, what a JSON contract costs) and
//! postcard (a compact binary serde format). Each case measures encode and
//! decode separately; a round trip is their sum. Every codec gets the same
//! input and must give it back equal, checked once before measuring.
//!
//! The last group reads one field of a large value in place with the Cap'n
//! Proto reader, against decoding the whole value.
//!
//! `floor_clone` is no codec: it clones the `MontyObject`, which allocates
//! and fills the same node arena a decoder has to build, so it bounds how fast
//! any decode into a `MontyObject` can be.
//!
//! `cargo bench --bench codec`

#[path = "support/mod.rs"]
mod support;

use std::hint::black_box;

use capnp::message::Reader;
use criterion::{Criterion, criterion_group, criterion_main};
use monty_types::{
    MontyObject,
    unstable::{self, MontyNode},
};
use monty_wire::{
    DecodeLimits,
    codec::read_message,
    decode_value, encode_value,
    schema::{node, value},
};
use support::{bytes_16mib_code, fast_group, python, slow_group};

/// One input of the representative set.
struct Case {
    name: &'static str,
    value: MontyObject,
    /// Iterations take milliseconds or more.
    slow: bool,
}

fn cases() -> Vec<Case> {
    let case = |name, code: &str, slow| Case {
        name,
        value: python(code),
        slow,
    };
    vec![
        case("int", "42", false),
        case("str", "'a short string of 32 characters'", false),
        case("list_100k_int", "list(range(100_000))", true),
        case(
            "dict_10k_str_tuple",
            "{f'key{i}': (i, f'v{i}', i * 0.5) for i in range(10_000)}",
            true,
        ),
        // 1,000 records shaped like a typical API payload.
        case(
            "records_1k",
            "[{'id': i, 'name': f'user{i}', 'email': f'user{i}@example.com', 'tags': ['admin', 'beta', str(i % 7)], \
             'score': i * 0.25, 'active': i % 2 == 0, 'manager': None, \
             'address': {'city': 'Paris', 'zip': str(75000 + i % 20), 'geo': (48.85, 2.35)}} for i in range(1_000)]",
            true,
        ),
        case("bytes_16mib", &bytes_16mib_code(), true),
        // Depth 500 under the default recursion limit of 1,000.
        case(
            "deep_tree_500",
            "t = None\nfor i in range(500):\n    t = [i, {'depth': i}, t]\nt",
            false,
        ),
    ]
}

/// Encode and decode with each codec, after checking each gives the value back.
fn codec(c: &mut Criterion) {
    let limits = DecodeLimits::default();
    for Case { name, value, slow } in cases() {
        let wire = encode_value(&value).expect("wire encodes");
        let json = serde_json::to_vec(&value).expect("json encodes");
        let postcard = postcard::to_allocvec(&value).expect("postcard encodes");
        assert_eq!(decode_value(wire.as_bytes(), &limits).expect("wire decodes"), value);
        assert_eq!(
            serde_json::from_slice::<MontyObject>(&json).expect("json decodes"),
            value
        );
        assert_eq!(
            postcard::from_bytes::<MontyObject>(&postcard).expect("postcard decodes"),
            value
        );
        eprintln!(
            "{name}: wire {} bytes, json {} bytes, postcard {} bytes",
            wire.len(),
            json.len(),
            postcard.len()
        );

        let mut group = c.benchmark_group(format!("codec/{name}"));
        if slow {
            slow_group(&mut group);
        } else {
            fast_group(&mut group);
        }
        group.bench_function("wire_encode", |b| b.iter(|| encode_value(black_box(&value)).unwrap()));
        group.bench_function("wire_decode", |b| {
            b.iter(|| decode_value(black_box(wire.as_bytes()), &limits).unwrap())
        });
        group.bench_function("json_encode", |b| {
            b.iter(|| serde_json::to_vec(black_box(&value)).unwrap())
        });
        group.bench_function("json_decode", |b| {
            b.iter(|| serde_json::from_slice::<MontyObject>(black_box(&json)).unwrap())
        });
        group.bench_function("postcard_encode", |b| {
            b.iter(|| postcard::to_allocvec(black_box(&value)).unwrap())
        });
        group.bench_function("postcard_decode", |b| {
            b.iter(|| postcard::from_bytes::<MontyObject>(black_box(&postcard)).unwrap())
        });
        // Not a codec: copying the value, the allocations any decoder that
        // produces a `MontyObject` must make at least.
        group.bench_function("floor_clone", |b| b.iter(|| black_box(&value).clone()));
        group.finish();
    }
}

/// The root node of a `Value` message.
fn root_node<'a, S: capnp::message::ReaderSegments>(message: &'a Reader<S>) -> node::Reader<'a> {
    let value: value::Reader<'_> = message.get_root().unwrap();
    value.get_nodes().unwrap().get(value.get_root())
}

/// One field of a large value read in place, against decoding all of it.
fn read_in_place(c: &mut Criterion) {
    let limits = DecodeLimits::default();
    let list = python("list(range(100_000))");
    let wire = encode_value(&list).unwrap();
    let bytes = wire.as_bytes();

    // The in-place reads find what a full decode finds.
    let message = read_message(bytes, &limits).unwrap();
    assert!(matches!(root_node(&message).which(), Ok(node::Which::List(_))));
    let decoded = decode_value(bytes, &limits).unwrap();
    assert_eq!(decoded.as_ref().items().unwrap()[54_321].as_int(), Some(54_321));

    let mut group = c.benchmark_group("read_in_place/list_100k_int");
    fast_group(&mut group);
    // The root's kind: frame the message, follow two pointers, read a tag.
    group.bench_function("root_kind", |b| {
        b.iter(|| {
            let message = read_message(black_box(bytes), &limits).unwrap();
            matches!(root_node(&message).which(), Ok(node::Which::List(_)))
        })
    });
    // One element: the root list's 54,321st index, then that node's int.
    group.bench_function("one_element", |b| {
        b.iter(|| {
            let message = read_message(black_box(bytes), &limits).unwrap();
            let value: value::Reader<'_> = message.get_root().unwrap();
            let nodes = value.get_nodes().unwrap();
            let Ok(node::Which::List(items)) = nodes.get(value.get_root()).which() else {
                unreachable!("the root is a list")
            };
            match nodes.get(items.unwrap().get(54_321)).which() {
                Ok(node::Which::IntValue(n)) => n,
                _ => unreachable!("the element is an int"),
            }
        })
    });
    // The same element after decoding everything into a `MontyObject`.
    group.bench_function("full_decode", |b| {
        b.iter(|| {
            let value = decode_value(black_box(bytes), &limits).unwrap();
            let MontyNode::List(items) = unstable::root_node(&value) else {
                unreachable!("the root is a list")
            };
            unstable::child(value.as_ref(), items[54_321]).as_int()
        })
    });
    group.finish();
}

criterion_group!(benches, codec, read_in_place);
criterion_main!(benches);
