//! Bad input gets a typed error, never a panic: one test per `DecodeError`
//! a host's bytes can cause, plus properties that random and mutated bytes
//! never panic the decoders.
//!
//! Messages that the typed builders refuse to write (unknown enum values,
//! unknown union arms, invalid UTF-8) are made by writing a valid message and
//! then changing the raw field: through Cap'n Proto's dynamic API for enums,
//! or by patching bytes located by a sentinel value in the same struct.

use capnp::{dynamic_value, introspect::TypeVariant, message::Builder};
use monty_types::MontyObject;
use monty_wire::{
    DecodeError, DecodeLimits,
    codec::{FramedAllocator, WireMessage, builder_with_capacity},
    decode_exception, decode_value, encode_exception, encode_value,
    schema::monty_wire_capnp as wire,
};
use proptest::prelude::*;

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

fn decode(bytes: &[u8]) -> Result<MontyObject, DecodeError> {
    decode_value(bytes, &DecodeLimits::default())
}

/// Serializes a message built by `build` into framed bytes.
fn message<F>(build: F) -> Vec<u8>
where
    F: FnOnce(&mut Builder<FramedAllocator>),
{
    let mut builder = builder_with_capacity(64);
    build(&mut builder);
    WireMessage::finish(builder).as_bytes().to_vec()
}

/// A `Value` message with `count` nodes, each written by `node(index, builder)`, and `root`.
fn value_message(count: u32, root: u32, node: impl Fn(u32, wire::node::Builder<'_>)) -> Vec<u8> {
    message(|m| {
        let mut value = m.init_root::<wire::value::Builder<'_>>();
        let mut nodes = value.reborrow().init_nodes(count);
        for i in 0..count {
            node(i, nodes.reborrow().get(i));
        }
        value.set_root(root);
    })
}

/// The error inside a node error for node 0, which the tests of a node's
/// content expect.
fn in_node_0(err: &DecodeError) -> &DecodeError {
    match err {
        DecodeError::InNode { node: 0, source } => source,
        other => panic!("expected an error in node 0, got {other:?}"),
    }
}

/// Overwrites the little-endian `u16` that lies `back` bytes before the only
/// occurrence of `sentinel` in `bytes`.
fn patch_u16_before(bytes: &mut [u8], sentinel: &[u8], back: usize, raw: u16) {
    let at = bytes
        .windows(sentinel.len())
        .position(|w| w == sentinel)
        .expect("sentinel present");
    assert!(
        bytes[at + 1..].windows(sentinel.len()).all(|w| w != sentinel),
        "sentinel is unique"
    );
    bytes[at - back..at - back + 2].copy_from_slice(&raw.to_le_bytes());
}

/// Sets an enum field to a raw ordinal the schema may not define.
fn set_raw_enum<'a>(builder: impl Into<dynamic_value::Builder<'a>>, field: &str, raw: u16) {
    let mut builder: capnp::dynamic_struct::Builder<'a> = builder.into().downcast();
    let field = builder.get_schema().get_field_by_name(field).unwrap();
    let TypeVariant::Enum(schema) = field.get_type().which() else {
        panic!("{field:?} is not an enum field")
    };
    builder
        .set(
            field,
            dynamic_value::Reader::Enum(dynamic_value::Enum::new(raw, schema.into())),
        )
        .unwrap();
}

/// A valid message of a 16-element list of small ints.
fn sample_message() -> Vec<u8> {
    encode_value(&MontyObject::list((0..16).map(MontyObject::int)))
        .unwrap()
        .as_bytes()
        .to_vec()
}

/// A `PythonException` message with one frame whose filename is `filename`.
fn exception_with_filename(filename: &str) -> Vec<u8> {
    message(|m| {
        let mut exc = m.init_root::<wire::python_exception::Builder<'_>>();
        exc.set_type(wire::ExcType::ValueError);
        exc.reborrow().init_message().set_none(());
        exc.reborrow().init_data().set_none(());
        let mut frame = exc.init_traceback(1).get(0);
        frame.set_filename(filename);
        frame.reborrow().init_frame_name().set_none(());
        frame.init_preview_line().set_none(());
    })
}

// ---------------------------------------------------------------------------
// Framing
// ---------------------------------------------------------------------------

#[test]
fn garbage_bytes_are_malformed() {
    let err = decode(b"not a capnp message at all").unwrap_err();
    assert!(matches!(err, DecodeError::Malformed(_)), "{err:?}");
}

#[test]
fn empty_input_is_malformed() {
    let err = decode(&[]).unwrap_err();
    assert!(matches!(err, DecodeError::Malformed(_)), "{err:?}");
}

#[test]
fn a_cut_message_is_truncated() {
    let bytes = sample_message();
    for len in [1, 4, 7, 8, bytes.len() / 2, bytes.len() - 8] {
        let err = decode(&bytes[..len]).unwrap_err();
        assert!(matches!(err, DecodeError::Truncated(_)), "cut at {len}: {err:?}");
        assert!(err.to_string().starts_with("truncated message"), "{err}");
    }
}

#[test]
fn trailing_bytes_are_rejected() {
    let mut bytes = sample_message();
    bytes.extend_from_slice(&[0; 8]);
    let err = decode(&bytes).unwrap_err();
    assert!(matches!(err, DecodeError::TrailingBytes { count: 8 }), "{err:?}");
}

#[test]
fn traversal_limit_stops_large_messages() {
    let bytes = encode_value(&MontyObject::bytes(vec![1; 1 << 20])).unwrap();
    let limits = DecodeLimits {
        traversal_limit_words: 1000,
        ..DecodeLimits::default()
    };
    let err = decode_value(bytes.as_bytes(), &limits).unwrap_err();
    assert!(matches!(err, DecodeError::TraversalLimit), "{err:?}");
}

/// The schema is flat (a value is a list of nodes, not a tree of structs),
/// so no message the schema describes nests deep enough to reach Cap'n
/// Proto's nesting limit of 64; this pins the mapping of the error instead.
#[test]
fn nesting_limit_maps_to_its_own_error() {
    let err = DecodeError::from(capnp::Error::from_kind(capnp::ErrorKind::NestingLimitExceeded));
    assert!(matches!(err, DecodeError::NestingLimit), "{err:?}");
}

// ---------------------------------------------------------------------------
// Arena structure
// ---------------------------------------------------------------------------

#[test]
fn value_without_nodes_has_no_root() {
    let err = decode(&value_message(0, 0, |_, _| {})).unwrap_err();
    assert!(matches!(err, DecodeError::MissingRoot), "{err:?}");
}

#[test]
fn root_past_the_arena_is_rejected() {
    let err = decode(&value_message(2, 5, |_, mut n| n.set_none(()))).unwrap_err();
    assert!(
        matches!(err, DecodeError::RootOutOfRange { root: 5, len: 2 }),
        "{err:?}"
    );
}

#[test]
fn child_index_past_the_arena_is_rejected() {
    let bytes = value_message(2, 1, |i, mut n| match i {
        0 => n.set_int_value(1),
        _ => {
            let mut items = n.init_list(2);
            items.set(0, 0);
            items.set(1, 7);
        }
    });
    let err = decode(&bytes).unwrap_err();
    assert!(
        matches!(
            err,
            DecodeError::NodeIndexOutOfRange {
                node: 1,
                child: 7,
                len: 2
            }
        ),
        "{err:?}"
    );
}

#[test]
fn self_and_forward_references_are_rejected() {
    // Node 0 holds itself: a cycle.
    let itself = value_message(1, 0, |_, n| n.init_tuple(1).set(0, 0));
    let err = decode(&itself).unwrap_err();
    assert!(
        matches!(err, DecodeError::ForwardReference { node: 0, child: 0 }),
        "{err:?}"
    );

    // Node 0 holds node 1, which comes after it.
    let forward = value_message(2, 0, |i, mut n| match i {
        0 => n.init_list(1).set(0, 1),
        _ => n.set_none(()),
    });
    let err = decode(&forward).unwrap_err();
    assert!(
        matches!(err, DecodeError::ForwardReference { node: 0, child: 1 }),
        "{err:?}"
    );

    // The same through a dict's value index.
    let dict = value_message(2, 1, |i, mut n| match i {
        0 => n.set_int_value(1),
        _ => {
            let mut pair = n.init_dict(1).get(0);
            pair.set_key(0);
            pair.set_value(1);
        }
    });
    let err = decode(&dict).unwrap_err();
    assert!(
        matches!(err, DecodeError::ForwardReference { node: 1, child: 1 }),
        "{err:?}"
    );
}

#[test]
fn class_instance_must_point_at_a_class_type() {
    let bytes = value_message(2, 1, |i, mut n| match i {
        0 => n.set_int_value(1),
        _ => {
            let mut instance = n.init_class_instance();
            instance.set_class_type(0);
            instance.set_instance_id(&[7; 16]);
            instance.init_attrs(0);
        }
    });
    let err = decode(&bytes).unwrap_err();
    assert!(matches!(err, DecodeError::ClassTypeNotAClass { node: 1 }), "{err:?}");
}

// ---------------------------------------------------------------------------
// Field contents
// ---------------------------------------------------------------------------

#[test]
fn invalid_utf8_names_the_field() {
    let mut bytes = value_message(1, 0, |_, mut n| n.set_str_value("utf8-sentinel!"));
    let at = bytes.windows(14).position(|w| w == b"utf8-sentinel!").unwrap();
    bytes[at + 13] = 0xff;
    let err = decode(&bytes).unwrap_err();
    assert!(
        matches!(err, DecodeError::InvalidUtf8 { field: "Node.strValue" }),
        "{err:?}"
    );

    let mut bytes = exception_with_filename("frame-sentinel!");
    let at = bytes.windows(15).position(|w| w == b"frame-sentinel!").unwrap();
    bytes[at + 4] = 0xc3; // a lone UTF-8 lead byte
    let err = decode_exception(&bytes, &DecodeLimits::default()).unwrap_err();
    assert!(
        matches!(
            err,
            DecodeError::InvalidUtf8 {
                field: "StackFrame.filename"
            }
        ),
        "{err:?}"
    );
}

#[test]
fn unknown_enum_values_are_reported() {
    // An exception value whose type is past the end of ExcType.
    let bytes = value_message(1, 0, |_, n| {
        let mut exc = n.init_exception();
        exc.reborrow().init_arg().set_none(());
        set_raw_enum(exc, "type", 999);
    });
    let err = decode(&bytes).unwrap_err();
    assert!(
        matches!(
            err,
            DecodeError::UnknownEnumValue {
                enum_name: "ExcType",
                value: 999
            }
        ),
        "{err:?}"
    );

    // A raised exception of an unknown type.
    let bytes = message(|m| {
        let mut exc = m.init_root::<wire::python_exception::Builder<'_>>();
        exc.reborrow().init_message().set_none(());
        exc.reborrow().init_data().set_none(());
        exc.reborrow().init_traceback(0);
        set_raw_enum(exc, "type", 55);
    });
    let err = decode_exception(&bytes, &DecodeLimits::default()).unwrap_err();
    assert!(
        matches!(
            err,
            DecodeError::UnknownEnumValue {
                enum_name: "ExcType",
                value: 55
            }
        ),
        "{err:?}"
    );

    // A file handle with an unknown mode.
    let bytes = value_message(1, 0, |_, n| {
        let mut handle = n.init_file_handle();
        handle.set_path("/f");
        set_raw_enum(handle, "mode", 6);
    });
    let err = decode(&bytes).unwrap_err();
    assert!(
        matches!(
            err,
            DecodeError::UnknownEnumValue {
                enum_name: "FileMode",
                value: 6
            }
        ),
        "{err:?}"
    );
}

#[test]
fn unknown_union_arms_are_reported() {
    // Node's discriminant is the first u16 of its data section; its `int`
    // payload is the second word, so it locates the node.
    const SENTINEL: i64 = 0x1122_3344_5566_7788;
    let mut bytes = value_message(1, 0, |_, mut n| n.set_int_value(SENTINEL));
    patch_u16_before(&mut bytes, &SENTINEL.to_le_bytes(), 8, 999);
    let err = decode(&bytes).unwrap_err();
    assert!(
        matches!(
            err,
            DecodeError::UnknownUnionArm {
                union_name: "Node",
                value: 999
            }
        ),
        "{err:?}"
    );

    // DateTime.dateTimeOffset's discriminant is the u16 just before `microsecond`.
    const MICROS: u32 = 0xa1b2_c3d4;
    let mut bytes = value_message(1, 0, |_, n| {
        let mut dt = n.init_date_time();
        dt.set_microsecond(MICROS);
        dt.reborrow().init_date_time_offset().set_naive(());
        dt.init_date_time_zone_name().set_none(());
    });
    patch_u16_before(&mut bytes, &MICROS.to_le_bytes(), 2, 7);
    let err = decode(&bytes).unwrap_err();
    assert!(
        matches!(
            err,
            DecodeError::UnknownUnionArm {
                union_name: "DateTime.dateTimeOffset",
                value: 7
            }
        ),
        "{err:?}"
    );
}

#[test]
fn a_datetime_fold_monty_cannot_hold_is_refused() {
    let folded = value_message(1, 0, |_, n| {
        let mut dt = n.init_date_time();
        dt.set_year(2021);
        dt.set_month(11);
        dt.set_day(7);
        dt.reborrow().init_date_time_offset().set_naive(());
        dt.reborrow().init_date_time_zone_name().set_none(());
        dt.set_fold(1);
    });
    let err = decode(&folded).unwrap_err();
    assert!(
        matches!(
            err,
            DecodeError::UnsupportedField {
                field: "DateTime.fold",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn bigints_must_be_canonical() {
    let negative_zero = value_message(1, 0, |_, n| {
        let mut big = n.init_big_int();
        big.set_negative(true);
        big.set_magnitude(&[]);
    });
    let err = decode(&negative_zero).unwrap_err();
    assert!(
        matches!(
            in_node_0(&err),
            DecodeError::InvalidBigInt {
                reason: "zero must not be negative"
            }
        ),
        "{err:?}"
    );

    let leading_zero = value_message(1, 0, |_, n| n.init_big_int().set_magnitude(&[0, 1, 2]));
    let err = decode(&leading_zero).unwrap_err();
    assert!(
        matches!(
            in_node_0(&err),
            DecodeError::InvalidBigInt {
                reason: "magnitude has a leading zero byte"
            }
        ),
        "{err:?}"
    );
}

#[test]
fn uuids_must_be_16_bytes() {
    let bytes = value_message(1, 0, |_, n| {
        let mut class = n.init_class_type();
        class.set_name("C");
        class.set_id(&[1; 15]);
        class.init_attrs(0);
    });
    let err = decode(&bytes).unwrap_err();
    assert!(
        matches!(
            in_node_0(&err),
            DecodeError::InvalidUuid {
                field: "ClassType.id",
                len: 15
            }
        ),
        "{err:?}"
    );
}

#[test]
fn unknown_type_and_builtin_names_are_reported() {
    let err = decode(&value_message(1, 0, |_, mut n| n.set_type("no_such_type"))).unwrap_err();
    assert!(
        matches!(in_node_0(&err), DecodeError::UnknownName { kind: "type", name } if name == "no_such_type"),
        "{err:?}"
    );
    let err = decode(&value_message(1, 0, |_, mut n| {
        n.set_builtin_function("no_such_builtin")
    }))
    .unwrap_err();
    assert!(
        matches!(in_node_0(&err), DecodeError::UnknownName { kind: "builtin function", name } if name == "no_such_builtin"),
        "{err:?}"
    );
}

/// `usize` is 32 bits on wasm32, where the suite also runs; a 64-bit count
/// that does not fit is an error there and a plain value on 64-bit hosts.
#[test]
fn counts_that_do_not_fit_usize() {
    let bytes = message(|m| {
        let mut exc = m.init_root::<wire::python_exception::Builder<'_>>();
        exc.set_type(wire::ExcType::JsonDecodeError);
        exc.reborrow().init_message().set_none(());
        exc.reborrow().init_traceback(0);
        let mut json = exc.init_data().init_json();
        json.set_msg("m");
        json.reborrow().init_doc().set_none(());
        json.set_pos(u64::from(u32::MAX) + 1);
    });
    let result = decode_exception(&bytes, &DecodeLimits::default());
    if cfg!(target_pointer_width = "64") {
        assert_eq!(result.unwrap().json_data().unwrap().pos as u64, u64::from(u32::MAX) + 1);
    } else {
        let err = result.unwrap_err();
        assert!(
            matches!(
                err,
                DecodeError::IntegerOutOfRange {
                    field: "JsonErrorData.pos",
                    value: 4_294_967_296
                }
            ),
            "{err:?}"
        );
    }
}

// ---------------------------------------------------------------------------
// Size limits
// ---------------------------------------------------------------------------

#[test]
fn too_many_nodes_are_rejected() {
    let bytes = encode_value(&MontyObject::list((0..9).map(MontyObject::int))).unwrap();
    let limits = DecodeLimits {
        max_nodes: 5,
        ..DecodeLimits::default()
    };
    let err = decode_value(bytes.as_bytes(), &limits).unwrap_err();
    assert!(
        matches!(err, DecodeError::TooManyNodes { count: 10, limit: 5 }),
        "{err:?}"
    );
}

#[test]
fn nesting_past_max_depth_is_rejected() {
    fn nested(depth: u32) -> Vec<u8> {
        value_message(depth, depth - 1, |i, mut n| {
            if i == 0 {
                n.set_none(());
            } else {
                n.init_list(1).set(0, i - 1);
            }
        })
    }
    let limits = DecodeLimits {
        max_depth: 10,
        ..DecodeLimits::default()
    };
    assert!(decode_value(&nested(10), &limits).is_ok(), "exactly at the limit");
    let err = decode_value(&nested(50), &limits).unwrap_err();
    assert!(matches!(err, DecodeError::TooDeep { node: 10, limit: 10 }), "{err:?}");
}

#[test]
fn decoded_size_is_bounded_by_the_budget() {
    let bytes = encode_value(&MontyObject::bytes(vec![1; 100_000])).unwrap();
    let limits = DecodeLimits {
        max_decoded_bytes: 1000,
        ..DecodeLimits::default()
    };
    let err = decode_value(bytes.as_bytes(), &limits).unwrap_err();
    assert!(matches!(err, DecodeError::DecodedSizeLimit { limit: 1000 }), "{err:?}");
}

/// Found by the fuzzer: a traceback claiming millions of empty frames in a
/// few dozen bytes. Cap'n Proto's traversal limit charges each one word; the
/// decoded-size budget stops it before anything is allocated.
#[test]
fn empty_struct_lists_cannot_amplify_memory() {
    // The decode target's inputs start with a byte that picks the root.
    for input in [
        &include_bytes!("../fuzz/regressions/decode/empty-frames-oom")[1..],
        &include_bytes!("../fuzz/regressions/decode/empty-frames-reencode")[1..],
    ] {
        let err = decode_exception(input, &DecodeLimits::default()).unwrap_err();
        assert!(matches!(err, DecodeError::DecodedSizeLimit { .. }), "{err:?}");
    }
}

// ---------------------------------------------------------------------------
// Messages and robustness
// ---------------------------------------------------------------------------

#[test]
fn error_messages_name_what_is_wrong() {
    let cases = [
        (
            DecodeError::NodeIndexOutOfRange {
                node: 3,
                child: 9,
                len: 4,
            },
            &["3", "9", "4"][..],
        ),
        (DecodeError::ForwardReference { node: 2, child: 5 }, &["2", "5"]),
        (DecodeError::InvalidUtf8 { field: "Node.strValue" }, &["Node.strValue"]),
        (
            DecodeError::UnknownEnumValue {
                enum_name: "ExcType",
                value: 99,
            },
            &["ExcType", "99"],
        ),
        (DecodeError::TooManyNodes { count: 10, limit: 5 }, &["10", "5"]),
        (DecodeError::TrailingBytes { count: 8 }, &["8"]),
    ];
    for (err, fragments) in cases {
        let text = err.to_string();
        for fragment in fragments {
            assert!(text.contains(fragment), "{text:?} should mention {fragment}");
        }
    }
}

#[test]
fn encoded_exceptions_survive_byte_flips_without_panicking() {
    let exc = monty::MontyRun::new("def f():\n    1/0\nf()".to_owned(), "t.py", vec![], Default::default())
        .unwrap()
        .run_no_limits(vec![])
        .unwrap_err();
    let bytes = encode_exception(&exc).unwrap().as_bytes().to_vec();
    for i in 0..bytes.len() {
        for flip in [0x01, 0x80, 0xff] {
            let mut mutated = bytes.clone();
            mutated[i] ^= flip;
            let _ = decode_exception(&mutated, &DecodeLimits::default());
        }
    }
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode_value(&bytes, &DecodeLimits::default());
        let _ = decode_exception(&bytes, &DecodeLimits::default());
    }

    /// Mutating a real message reaches far deeper into the decoder than
    /// random bytes, which rarely get past the segment table.
    #[test]
    fn mutated_messages_never_panic(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let mut bytes = sample_message();
        for (index, byte) in edits {
            let at = index.index(bytes.len());
            bytes[at] = byte;
        }
        let _ = decode(&bytes);
    }
}
