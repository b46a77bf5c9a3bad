"""The schema's names work with every mainstream Cap'n Proto generator.

Generators keep a member's name in lower camel case (Dart, JavaScript and
TypeScript) or snake case (Rust), and some put it where it can collide:

* capnpc_dart makes a member a getter of the generated class, so a member
  named `int` or `bool` shadows Dart's own type in that class;
* capnpc_dart names a group's classes after the group alone (`offsetReader`,
  `offsetBuilder`, `offsetSchema`, `offsetFactory`), so two groups of the same
  name, or a group named like a struct, define the same identifier twice.

Rules, checked on the compiled schema:

1. No field, group or enumerant is named exactly like a builtin type of Dart,
   JavaScript/TypeScript or Rust. Reserved words are not listed: each of those
   generators escapes or prefixes them (capnpc_dart appends `_`, capnp-rust
   emits `get_x`/`set_x` and UpperCamel variants, capnp-es emits accessors).
2. Group names are unique across the schema, and no group is named like a
   struct or enum, compared case-insensitively (generators change the case).
3. Replaying capnpc_dart's naming (0.2.0: `_dartClassName`, `_schemaConstName`
   and the factory names), every generated top-level identifier is unique.
"""

from collections import Counter

from test_schema_evolution import CURRENT, read_schema

BUILTIN_TYPES = {
    "Dart": {
        "int", "double", "num", "bool", "dynamic", "void", "Never", "Null", "Object", "String",
        "List", "Map", "Set", "Iterable", "Iterator", "Function", "Type", "Symbol", "Record",
        "Enum", "Future", "FutureOr", "Stream", "Duration", "DateTime", "BigInt", "Uri",
        "RegExp", "Pattern", "Comparable", "Error", "Exception", "StackTrace", "Sink",
        "Uint8List", "ByteData",
    },
    "JavaScript/TypeScript": {
        "Number", "String", "Boolean", "Object", "Array", "Map", "Set", "WeakMap", "WeakSet",
        "Date", "Error", "Symbol", "BigInt", "Function", "Promise", "RegExp", "ArrayBuffer",
        "DataView", "Uint8Array", "JSON", "Math", "Proxy", "Reflect",
    },
    "Rust": {
        "bool", "char", "str", "i8", "i16", "i32", "i64", "i128", "isize", "u8", "u16", "u32",
        "u64", "u128", "usize", "f32", "f64", "String", "Vec", "Option", "Result", "Box",
        "Some", "None", "Ok", "Err", "Self",
    },
}


def _short(display_name):
    return display_name.split(":")[-1].split(".")[-1]


def _lcfirst(name):
    return name[:1].lower() + name[1:]


def _names(nodes):
    """Plain data about every struct, group and enum: (kind, display name, members)."""
    out = []
    for node in nodes.values():
        kind = node.which()
        if kind == "struct":
            members = [field.name for field in node.struct.fields]
            out.append(("group" if node.struct.isGroup else "struct", node.displayName, members))
        elif kind == "enum":
            out.append(("enum", node.displayName, [e.name for e in node.enum.enumerants]))
    return out


NAMES = read_schema(CURRENT, _names)


def test_no_member_is_named_like_a_builtin_type():
    clashes = [
        f"{_short(display)}.{member} is a builtin type of {language}"
        for _, display, members in NAMES
        for member in members
        for language, types in BUILTIN_TYPES.items()
        if member in types
    ]
    assert clashes == []


def test_group_names_are_unique_and_unlike_any_type():
    groups = Counter(_short(display).lower() for kind, display, _ in NAMES if kind == "group")
    types = {_short(display).lower() for kind, display, _ in NAMES if kind != "group"}
    assert [name for name, count in groups.items() if count > 1] == []
    assert sorted(set(groups) & types) == []


def capnpc_dart_identifiers(names):
    """The top-level identifiers capnpc_dart 0.2.0 defines for these structs, groups and enums."""
    identifiers = Counter()
    for kind, display, _ in names:
        name = _short(display)
        if kind == "enum":
            identifiers.update([name, f"{_lcfirst(name)}Schema", f"{_lcfirst(name)}FromUint16"])
        else:
            identifiers.update(
                [f"{name}Reader", f"{name}Builder", f"_{name}Factory", f"{_lcfirst(name)}Schema", f"{_lcfirst(name)}Factory"]
            )
    return identifiers


def test_capnpc_dart_defines_every_identifier_once():
    assert [name for name, count in capnpc_dart_identifiers(NAMES).items() if count > 1] == []


def test_the_replay_sees_the_collisions_of_the_previous_names():
    """Protocol 2 as first released: 103 nodes, 100 class names, 21 identifiers defined twice."""
    from test_schema_evolution import RELEASED

    released = read_schema(RELEASED[0], _names)
    assert len(released) == 103
    assert len({_short(display) for _, display, _ in released}) == 100
    twice = sorted(name for name, count in capnpc_dart_identifiers(released).items() if count > 1)
    assert len(twice) == 21
    assert {"offsetReader", "zoneNameReader", "objectIdReader", "dateTimeSchema", "typeCheckFactory"} <= set(twice)
