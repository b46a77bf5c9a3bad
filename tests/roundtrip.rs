//! Property tests: every value, exception and limit that goes out comes back
//! equal, node for node.
//!
//! Values are generated as raw monty arenas rather than through constructors,
//! so every node kind appears with arbitrary payloads (including ones monty's
//! constructors would normalise), children are shared whenever two parents
//! draw the same index, and cycle markers appear where monty puts them.

use std::{sync::Arc, time::Duration};

use monty_types::{
    BuiltinsFunctions, CodeLoc, ExcData, ExcType, FileMode, JsonErrorData, MontyComplex, MontyDate, MontyDateTime,
    MontyException, MontyFileHandle, MontyObject, MontyTime, MontyTimeDelta, MontyTimeZone, MontyType, MontyUuid,
    ResourceLimits, StackFrame, UnicodeErrorData, UnicodeErrorObject,
    unstable::{self, ClassTypeNode, MontyGraph, MontyNode, NodeId},
};
use monty_wire::{
    DecodeLimits, codec, decode_exception, decode_value, encode_exception, encode_value,
    schema::monty_wire_capnp as wire,
};
use num_bigint::{BigInt, Sign};
use proptest::{collection::vec, option, prelude::*, sample::select};
use strum::VariantNames;

// ---------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------

/// Any text, including NUL, control characters and astral-plane characters.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => vec(any::<char>(), 0..12).prop_map(String::from_iter),
        1 => Just(String::new()),
        1 => Just("nul\0inside".to_owned()),
    ]
}

fn float() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>(),
        // Arbitrary bit patterns: NaNs with payloads, signalling NaNs, subnormals.
        any::<u64>().prop_map(f64::from_bits),
        Just(f64::NAN),
        Just(-0.0),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
    ]
}

fn big_int() -> impl Strategy<Value = BigInt> {
    (any::<bool>(), vec(any::<u8>(), 0..40)).prop_map(|(negative, magnitude)| {
        BigInt::from_bytes_be(if negative { Sign::Minus } else { Sign::Plus }, &magnitude)
    })
}

fn uuid() -> impl Strategy<Value = MontyUuid> {
    any::<[u8; 16]>().prop_map(MontyUuid::from_bytes)
}

fn exc_type() -> impl Strategy<Value = ExcType> {
    select(ExcType::VARIANTS).prop_map(|name| name.parse().expect("a listed variant parses"))
}

fn monty_type() -> impl Strategy<Value = MontyType> {
    let named: Vec<MontyType> = MontyType::VARIANTS
        .iter()
        .filter_map(|name| MontyType::from_type_name(name))
        .collect();
    prop_oneof![select(named), exc_type().prop_map(MontyType::Exception)]
}

fn builtin_function() -> impl Strategy<Value = BuiltinsFunctions> {
    let all: Vec<BuiltinsFunctions> = (0..=u8::MAX).filter_map(BuiltinsFunctions::from_repr).collect();
    select(all)
}

fn file_mode() -> impl Strategy<Value = FileMode> {
    (0..6u8, any::<bool>()).prop_map(|(kind, binary)| match kind {
        0 => FileMode::Read(binary),
        1 => FileMode::ReadUpdate(binary),
        2 => FileMode::Write(binary),
        3 => FileMode::WriteUpdate(binary),
        4 => FileMode::Append(binary),
        _ => FileMode::AppendUpdate(binary),
    })
}

/// A node whose children are not yet known: `Seeds` are turned into indices
/// of earlier nodes when the arena is assembled.
#[derive(Debug, Clone)]
enum Template {
    Leaf(MontyNode),
    List(Vec<u32>),
    Tuple(Vec<u32>),
    Set(Vec<u32>),
    FrozenSet(Vec<u32>),
    NamedTuple(String, Vec<String>, Vec<u32>),
    Dict(Vec<(u32, u32)>),
    ClassType(String, MontyUuid, bool, bool, Vec<(u32, u32)>),
    ClassInstance(u32, MontyUuid, Vec<(u32, u32)>),
    Module(String, MontyUuid, Vec<(u32, u32)>),
}

fn leaf() -> impl Strategy<Value = MontyNode> {
    let scalars = prop_oneof![
        Just(MontyNode::Ellipsis),
        Just(MontyNode::NotImplemented),
        Just(MontyNode::None),
        any::<bool>().prop_map(MontyNode::Bool),
        any::<i64>().prop_map(MontyNode::Int),
        big_int().prop_map(MontyNode::BigInt),
        float().prop_map(MontyNode::Float),
        (float(), float()).prop_map(|(real, imag)| MontyNode::Complex(MontyComplex { real, imag })),
        text().prop_map(MontyNode::String),
        vec(any::<u8>(), 0..64).prop_map(MontyNode::Bytes),
        text().prop_map(MontyNode::Decimal),
        text().prop_map(MontyNode::Path),
        text().prop_map(MontyNode::Repr),
        text().prop_map(MontyNode::Cycle),
    ];
    let datetimes = prop_oneof![
        (any::<i32>(), any::<u8>(), any::<u8>()).prop_map(|(year, month, day)| MontyNode::Date(MontyDate {
            year,
            month,
            day
        })),
        (
            (
                any::<i32>(),
                any::<u8>(),
                any::<u8>(),
                any::<u8>(),
                any::<u8>(),
                any::<u8>()
            ),
            (any::<u32>(), option::of(any::<i32>()), option::of(text())),
        )
            .prop_map(
                |((year, month, day, hour, minute, second), (microsecond, offset_seconds, timezone_name))| {
                    MontyNode::DateTime(MontyDateTime {
                        year,
                        month,
                        day,
                        hour,
                        minute,
                        second,
                        microsecond,
                        offset_seconds,
                        timezone_name,
                    })
                }
            ),
        (
            (any::<u8>(), any::<u8>(), any::<u8>(), any::<u32>()),
            (option::of(any::<i32>()), option::of(text()), any::<u8>()),
        )
            .prop_map(
                |((hour, minute, second, microsecond), (offset_seconds, timezone_name, fold))| {
                    MontyNode::Time(MontyTime {
                        hour,
                        minute,
                        second,
                        microsecond,
                        offset_seconds,
                        timezone_name,
                        fold,
                    })
                }
            ),
        (any::<i32>(), any::<i32>(), any::<i32>()).prop_map(|(days, seconds, microseconds)| {
            MontyNode::TimeDelta(MontyTimeDelta {
                days,
                seconds,
                microseconds,
            })
        }),
        (any::<i32>(), option::of(text()))
            .prop_map(|(offset_seconds, name)| MontyNode::TimeZone(MontyTimeZone { offset_seconds, name })),
    ];
    let objects =
        prop_oneof![
            (exc_type(), option::of(text())).prop_map(|(exc_type, arg)| MontyNode::Exception { exc_type, arg }),
            monty_type().prop_map(MontyNode::Type),
            builtin_function().prop_map(MontyNode::BuiltinFunction),
            (text(), file_mode(), any::<u64>())
                .prop_map(|(path, mode, position)| MontyNode::FileHandle(MontyFileHandle { path, mode, position })),
            (text(), option::of(text())).prop_map(|(name, docstring)| MontyNode::Function { name, docstring }),
        ];
    prop_oneof![4 => scalars, 2 => datetimes, 1 => objects]
}

fn template() -> impl Strategy<Value = Template> {
    let ids = || vec(any::<u32>(), 0..6);
    let pairs = || vec((any::<u32>(), any::<u32>()), 0..4);
    prop_oneof![
        6 => leaf().prop_map(Template::Leaf),
        2 => ids().prop_map(Template::List),
        1 => ids().prop_map(Template::Tuple),
        1 => ids().prop_map(Template::Set),
        1 => ids().prop_map(Template::FrozenSet),
        1 => (text(), vec(text(), 0..4), ids()).prop_map(|(n, f, v)| Template::NamedTuple(n, f, v)),
        2 => pairs().prop_map(Template::Dict),
        1 => (text(), uuid(), any::<bool>(), any::<bool>(), pairs())
            .prop_map(|(n, id, host, dc, attrs)| Template::ClassType(n, id, host, dc, attrs)),
        1 => (any::<u32>(), uuid(), pairs()).prop_map(|(class, id, attrs)| Template::ClassInstance(class, id, attrs)),
        1 => (text(), uuid(), pairs()).prop_map(|(n, id, attrs)| Template::Module(n, id, attrs)),
    ]
}

/// Turns templates into a valid post-order arena: every child seed becomes
/// the index of an earlier node, so colliding seeds share a child.
fn assemble(templates: Vec<Template>) -> MontyGraph {
    let mut nodes: Vec<MontyNode> = Vec::with_capacity(templates.len());
    let mut classes: Vec<NodeId> = Vec::new();
    for template in templates {
        let below = u32::try_from(nodes.len()).unwrap();
        let id = |seed: u32| NodeId(seed % below.max(1));
        let ids = |seeds: Vec<u32>| -> Vec<NodeId> {
            if below == 0 {
                Vec::new()
            } else {
                seeds.into_iter().map(id).collect()
            }
        };
        let pairs = |seeds: Vec<(u32, u32)>| -> Vec<(NodeId, NodeId)> {
            if below == 0 {
                Vec::new()
            } else {
                seeds.into_iter().map(|(k, v)| (id(k), id(v))).collect()
            }
        };
        let node = match template {
            Template::Leaf(node) => node,
            Template::List(s) => MontyNode::List(ids(s)),
            Template::Tuple(s) => MontyNode::Tuple(ids(s)),
            Template::Set(s) => MontyNode::Set(ids(s)),
            Template::FrozenSet(s) => MontyNode::FrozenSet(ids(s)),
            Template::NamedTuple(type_name, field_names, s) => MontyNode::NamedTuple {
                type_name,
                field_names,
                values: ids(s),
            },
            Template::Dict(s) => MontyNode::Dict(pairs(s)),
            Template::ClassType(name, id, host_defined, is_dataclass, s) => {
                classes.push(NodeId(below));
                MontyNode::ClassType(Box::new(ClassTypeNode {
                    name,
                    id,
                    host_defined,
                    is_dataclass,
                    attrs: pairs(s),
                }))
            }
            // An instance needs an earlier class node; without one it is a
            // class node itself, so the arena stays valid.
            Template::ClassInstance(seed, instance_id, s) if !classes.is_empty() => MontyNode::ClassInstance {
                class_type: classes[seed as usize % classes.len()],
                instance_id,
                attrs: pairs(s),
            },
            Template::ClassInstance(_, id, s) => {
                classes.push(NodeId(below));
                MontyNode::ClassType(Box::new(ClassTypeNode {
                    name: "C".to_owned(),
                    id,
                    host_defined: true,
                    is_dataclass: false,
                    attrs: pairs(s),
                }))
            }
            Template::Module(name, id, s) => MontyNode::Module {
                name,
                id,
                attrs: pairs(s),
            },
        };
        nodes.push(node);
    }
    MontyGraph::from_nodes(nodes).expect("assembled arenas are valid")
}

fn value() -> impl Strategy<Value = MontyObject> {
    (vec(template(), 1..40), any::<u32>()).prop_map(|(templates, root_seed)| {
        let graph = assemble(templates);
        let root = NodeId(root_seed % u32::try_from(graph.len()).unwrap());
        unstable::object_from_graph(graph, root).expect("root is in range")
    })
}

fn stack_frame() -> impl Strategy<Value = StackFrame> {
    (
        (text(), any::<u32>(), any::<u32>(), any::<u32>(), any::<u32>()),
        (option::of(text()), option::of(text()), any::<bool>(), any::<bool>()),
    )
        .prop_map(
            |((filename, l0, c0, l1, c1), (frame_name, preview, hide_caret, hide_frame_name))| StackFrame {
                filename,
                start: CodeLoc { line: l0, column: c0 },
                end: CodeLoc { line: l1, column: c1 },
                frame_name,
                preview_line: preview.map(Arc::from),
                hide_caret,
                hide_frame_name,
            },
        )
}

fn exc_data() -> impl Strategy<Value = ExcData> {
    let unicode_object = prop_oneof![
        vec(any::<u8>(), 0..16).prop_map(UnicodeErrorObject::Bytes),
        text().prop_map(UnicodeErrorObject::Str),
    ];
    prop_oneof![
        Just(ExcData::None),
        (text(), unicode_object, any::<usize>(), any::<usize>(), text()).prop_map(
            |(encoding, object, start, end, reason)| ExcData::Unicode(Box::new(UnicodeErrorData {
                encoding,
                object,
                start,
                end,
                reason,
            }))
        ),
        (
            text(),
            option::of(text()),
            any::<usize>(),
            any::<usize>(),
            any::<usize>()
        )
            .prop_map(|(msg, doc, pos, lineno, colno)| ExcData::Json(Box::new(JsonErrorData {
                msg,
                doc,
                pos,
                lineno,
                colno,
            }))),
    ]
}

fn exception() -> impl Strategy<Value = MontyException> {
    (exc_type(), option::of(text()), vec(stack_frame(), 0..6), exc_data()).prop_map(
        |(exc_type, message, traceback, data)| {
            MontyException::with_traceback(exc_type, message, traceback).with_data(data)
        },
    )
}

fn duration() -> impl Strategy<Value = Duration> {
    any::<u64>().prop_map(Duration::from_nanos)
}

prop_compose! {
    fn limits()(
        max_feed_duration in option::of(duration()),
        max_turn_duration in option::of(duration()),
        max_memory in option::of(any::<usize>()),
        gc_interval in option::of(any::<usize>()),
        max_recursion_depth in any::<usize>(),
        max_suspensions in any::<usize>(),
        max_total_sleep in option::of(duration()),
    ) -> ResourceLimits {
        ResourceLimits {
            max_feed_duration,
            max_turn_duration,
            max_memory,
            gc_interval,
            max_recursion_depth,
            max_suspensions,
            max_total_sleep,
        }
    }
}

// ---------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------

/// Node-for-node equality: the same arena (floats compared by bits) and the
/// same root. Stricter than `MontyObject`'s structural equality, which would
/// accept a different sharing layout.
fn assert_same_arena(a: &MontyObject, b: &MontyObject) {
    let (graph_a, root_a) = unstable::graph_parts(a);
    let (graph_b, root_b) = unstable::graph_parts(b);
    assert_eq!(root_a, root_b, "roots differ");
    assert_eq!(graph_a, graph_b, "arenas differ");
}

fn round_trip(value: &MontyObject) -> MontyObject {
    let message = encode_value(value).expect("encode");
    decode_value(message.as_bytes(), &DecodeLimits::default()).expect("decode")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn values_round_trip_node_for_node(value in value()) {
        assert_same_arena(&round_trip(&value), &value);
    }

    #[test]
    fn exceptions_round_trip(exc in exception()) {
        let message = encode_exception(&exc).expect("encode");
        let back = decode_exception(message.as_bytes(), &DecodeLimits::default()).expect("decode");
        // `MontyException`'s equality compares floats nowhere, so plain `==`
        // is exact here; the Debug form also pins the structured data.
        prop_assert_eq!(&back, &exc);
        prop_assert_eq!(format!("{back:?}"), format!("{exc:?}"));
    }

    #[test]
    fn limits_round_trip(limits in limits()) {
        let mut message = capnp::message::Builder::new_default();
        codec::limits::write_limits(&limits, message.init_root());
        let bytes = codec::WireMessage::from_builder(&message);
        let reader = codec::read_message(bytes.as_bytes(), &DecodeLimits::default()).unwrap();
        let back = codec::limits::read_limits(reader.get_root::<wire::resource_limits::Reader<'_>>().unwrap()).unwrap();
        prop_assert_eq!(format!("{back:?}"), format!("{limits:?}"));
    }

    /// Messages are read in place whatever their alignment in host memory.
    #[test]
    fn values_decode_from_unaligned_bytes(value in value(), shift in 1usize..8) {
        let message = encode_value(&value).unwrap();
        let mut shifted = vec![0u8; shift];
        shifted.extend_from_slice(message.as_bytes());
        let back = decode_value(&shifted[shift..], &DecodeLimits::default()).unwrap();
        assert_same_arena(&back, &value);
    }
}

/// The generator reaches every node kind monty has (33 in monty 1.4), so
/// the round-trip property covers them all.
#[test]
fn generator_covers_every_node_kind() {
    use proptest::strategy::ValueTree;
    use std::{collections::HashSet, mem::discriminant};

    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = value();
    let mut kinds = HashSet::new();
    for _ in 0..2_000 {
        let value = strategy.new_tree(&mut runner).unwrap().current();
        let (graph, _) = unstable::graph_parts(&value);
        kinds.extend(graph.nodes().iter().map(discriminant));
    }
    assert_eq!(kinds.len(), 33, "node kinds generated");
}

// ---------------------------------------------------------------------------
// Named cases the generators might only reach by luck
// ---------------------------------------------------------------------------

#[test]
fn bigints_beyond_64_bits_round_trip() {
    for text in [
        "18446744073709551616",
        "-18446744073709551617",
        "0",
        "-1",
        "340282366920938463463374607431768211457",
    ] {
        let value = MontyObject::bigint(text.parse().unwrap());
        assert_same_arena(&round_trip(&value), &value);
    }
}

#[test]
fn float_specials_keep_their_bits() {
    let signalling_nan = f64::from_bits(0x7ff0_0000_0000_0001);
    let payload_nan = f64::from_bits(0xfff8_dead_beef_0001);
    for f in [
        f64::NAN,
        -f64::NAN,
        payload_nan,
        signalling_nan,
        -0.0,
        0.0,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::MIN_POSITIVE / 2.0,
    ] {
        let back = round_trip(&MontyObject::float(f));
        let MontyNode::Float(g) = unstable::root_node(&back) else {
            panic!("not a float: {back:?}")
        };
        assert_eq!(g.to_bits(), f.to_bits());
    }
}

#[test]
fn empty_and_large_containers_round_trip() {
    let empties = MontyObject::tuple([
        MontyObject::list([]),
        MontyObject::tuple([]),
        MontyObject::set([]),
        MontyObject::frozenset([]),
        MontyObject::dict([]),
        MontyObject::string(""),
        MontyObject::bytes(Vec::new()),
    ]);
    assert_same_arena(&round_trip(&empties), &empties);

    let large = MontyObject::list((0..100_000).map(MontyObject::int));
    assert_same_arena(&round_trip(&large), &large);
    let big_bytes = MontyObject::bytes(vec![0xa5; 16 << 20]);
    assert_same_arena(&round_trip(&big_bytes), &big_bytes);
}

#[test]
fn messages_convert_to_bytes_without_copying() {
    let message = encode_value(&MontyObject::bytes(vec![7; 4096])).unwrap();
    let address = message.as_bytes().as_ptr();
    let shared = bytes::Bytes::from(message);
    assert_eq!(shared.as_ptr(), address, "same buffer, no copy");
    let back = decode_value(&shared, &DecodeLimits::default()).unwrap();
    assert_eq!(back, MontyObject::bytes(vec![7; 4096]));
}

#[test]
fn non_string_dict_keys_round_trip() {
    let value = MontyObject::dict([
        (
            MontyObject::tuple([MontyObject::int(1), MontyObject::int(2)]),
            MontyObject::string("a"),
        ),
        (MontyObject::int(3), MontyObject::none()),
        (MontyObject::float(f64::NAN), MontyObject::bool(true)),
        (MontyObject::frozenset([MontyObject::int(1)]), MontyObject::ellipsis()),
    ]);
    assert_same_arena(&round_trip(&value), &value);
}

#[test]
fn shared_children_stay_shared() {
    let mut graph = MontyGraph::new();
    let one = graph.push(MontyNode::Int(1));
    let inner = graph.push(MontyNode::List(vec![one]));
    let outer = graph.push(MontyNode::List(vec![inner, inner]));
    let value = unstable::object_from_graph(graph, outer).unwrap();
    let back = round_trip(&value);
    let MontyNode::List(items) = unstable::root_node(&back) else {
        panic!("not a list")
    };
    assert_eq!(items[0], items[1], "both items are one shared node");
    assert_same_arena(&back, &value);
}

#[test]
fn deep_nesting_round_trips_up_to_the_limit() {
    let depth = DecodeLimits::DEFAULT_MAX_DEPTH;
    let mut graph = MontyGraph::new();
    let mut id = graph.push(MontyNode::None);
    for _ in 1..depth {
        id = graph.push(MontyNode::List(vec![id]));
    }
    let value = unstable::object_from_graph(graph, id).unwrap();
    assert_same_arena(&round_trip(&value), &value);
}

/// A result nested 10,000 levels deep comes back whole. monty exports a
/// result only as deep as the recursion limit, and does so recursively, so
/// the program runs with a raised limit on a thread with a large stack
/// (wasm32-wasip1 has no threads).
#[cfg(not(target_family = "wasm"))]
#[test]
fn deep_results_of_real_programs_round_trip() {
    let program = std::thread::Builder::new()
        .stack_size(512 << 20)
        .spawn(|| {
            let code = "x = None\nfor i in range(9_999):\n    x = [x]\nx".to_owned();
            let mut run = monty::MontyRun::new(code, "deep.py", vec![], Default::default()).unwrap();
            let limits = ResourceLimits {
                max_recursion_depth: 20_000,
                ..ResourceLimits::default()
            };
            run.run(
                vec![],
                monty_types::ResourceTracker::new(limits),
                monty_types::PrintWriter::Disabled,
            )
            .unwrap()
        })
        .unwrap();
    let value = program.join().unwrap();
    assert_eq!(
        unstable::graph_parts(&value).0.len(),
        10_000,
        "no `<deeply nested>` cut"
    );
    assert_same_arena(&round_trip(&value), &value);
}

#[test]
fn values_from_real_programs_round_trip() {
    let code = r#"
import datetime
from pathlib import Path
a = [1, 2.5, None]
b = {'x': a, (1, 2): {3, 4}, 'deep': [[[[]]]]}
c = frozenset({'s'})
d = (datetime.date(2024, 2, 29), datetime.timedelta(days=-1, seconds=5), Path('/tmp/x'))
e = ValueError('bad')
r = [a, a, b, c, d, e, 2 ** 100, -2 ** 100, b'\x00\xff', 1e308 * 10, ..., len, int]
r.append(r)
r
"#;
    let mut run = monty::MontyRun::new(code.to_owned(), "fixture.py", vec![], Default::default()).unwrap();
    let value = run.run_no_limits(vec![]).unwrap();
    assert_same_arena(&round_trip(&value), &value);
}
