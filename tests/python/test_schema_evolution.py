"""The schema's wire layout only ever grows.

`schema/released/` holds the compiled schema (a CodeGeneratorRequest) of every
published protocol version. The current `schema/monty_wire.cgr` must lay out
every field of each of them exactly as before: same ordinal, offset, type,
default, union and discriminant. A change that only appends (a new field,
union arm, enumerant, struct or enum) passes; anything else fails. Names are
not part of the wire: a renamed field or group passes (it changes the text
format, see CHANGELOG.md).

The compiled schema is read with pycapnp and the `schema.capnp` it ships, so
this needs no Cap'n Proto compiler.
"""

import os
from pathlib import Path

import capnp
import pytest

ROOT = Path(__file__).resolve().parents[2]
CURRENT = ROOT / "schema" / "monty_wire.cgr"
RELEASED = sorted((ROOT / "schema" / "released").glob("*.cgr"))

capnp.remove_import_hook()
_CAPNP_DIR = os.path.dirname(capnp.__file__)
meta = capnp.load(os.path.join(_CAPNP_DIR, "schema.capnp"), imports=[os.path.dirname(_CAPNP_DIR)])

NO_DISCRIMINANT = 0xFFFF


def read_schema(path, read):
    """What `read` makes of a compiled schema's nodes (by id), while its bytes are alive."""
    with meta.CodeGeneratorRequest.from_bytes(path.read_bytes(), traversal_limit_in_words=2**30) as request:
        return read({node.id: node for node in request.nodes})


def _type_key(t):
    kind = t.which()
    if kind == "struct":
        return ("struct", t.struct.typeId)
    if kind == "enum":
        return ("enum", t.enum.typeId)
    if kind == "list":
        return ("list", _type_key(t.list.elementType))
    return (kind,)


def _default_key(slot):
    value = slot.defaultValue
    kind = value.which()
    if kind in ("struct", "list", "anyPointer", "interface"):
        return (kind, slot.hadExplicitDefault)
    return (kind, getattr(value, kind) if kind != "void" else None)


def _min_ordinal(nodes, node):
    """A group's identity: the lowest ordinal of its fields, which renames and appends keep."""
    ordinals = []
    for field in node.struct.fields:
        if field.which() == "slot":
            ordinals.append(field.ordinal.explicit)
        else:
            ordinals.append(_min_ordinal(nodes, nodes[field.group.typeId]))
    return min(ordinals)


def struct_layout(nodes, node):
    """What of a struct reaches the wire, its groups flattened in: plain Python data."""
    layout = {
        "dataWords": node.struct.dataWordCount,
        "pointers": node.struct.pointerCount,
        "slots": {},
        "groups": {},
        "unions": {},
    }

    def scope(scope_node, scope_key):
        struct = scope_node.struct
        if struct.discriminantCount:
            layout["unions"][scope_key] = (struct.discriminantOffset, struct.discriminantCount)
        for field in struct.fields:
            discriminant = None
            if field.discriminantValue != NO_DISCRIMINANT:
                discriminant = (scope_key, field.discriminantValue)
            if field.which() == "slot":
                layout["slots"][field.ordinal.explicit] = {
                    "offset": field.slot.offset,
                    "type": _type_key(field.slot.type),
                    "default": _default_key(field.slot),
                    "discriminant": discriminant,
                    "name": field.name,
                }
            else:
                group = nodes[field.group.typeId]
                key = _min_ordinal(nodes, group)
                layout["groups"][key] = {"discriminant": discriminant, "name": field.name}
                scope(group, key)

    scope(node, "struct")
    return layout


def schema_layout(nodes):
    """Layouts of every struct and enum that is not a group, by id, and the constants."""
    layout = {}
    for node in nodes.values():
        kind = node.which()
        if kind == "struct" and not node.struct.isGroup:
            layout[node.id] = ("struct", node.displayName, struct_layout(nodes, node))
        elif kind == "enum":
            layout[node.id] = ("enum", node.displayName, len(node.enum.enumerants))
        elif kind == "const":
            value = node.const.value
            layout[node.id] = ("const", node.displayName, getattr(value, value.which()))
    return layout


def layout_problems(old, new):
    """Every way `new` does not keep `old`'s wire layout; empty if it only appends."""
    problems = []
    for node_id, (kind, name, old_layout) in old.items():
        if node_id not in new:
            problems.append(f"{name}: removed, or renamed (a new id)")
            continue
        new_kind, _, new_layout = new[node_id]
        if new_kind != kind:
            problems.append(f"{name}: was a {kind}, is a {new_kind}")
        elif kind == "enum":
            if new_layout < old_layout:
                problems.append(f"{name}: {old_layout - new_layout} enumerants removed")
        elif kind == "const":
            # protocolVersion goes up with every release; other constants never change.
            if name.endswith(":protocolVersion") and new_layout >= old_layout:
                continue
            if new_layout != old_layout:
                problems.append(f"{name}: value {old_layout!r} became {new_layout!r}")
        else:
            problems.extend(_struct_problems(name, old_layout, new_layout))
    return problems


def _struct_problems(name, old, new):
    problems = []
    for section in ("dataWords", "pointers"):
        if new[section] < old[section]:
            problems.append(f"{name}: {section} shrank from {old[section]} to {new[section]}")
    for scope_key, (offset, count) in old["unions"].items():
        if scope_key not in new["unions"]:
            problems.append(f"{name}: the union of {scope_key} is gone")
            continue
        new_offset, new_count = new["unions"][scope_key]
        if new_offset != offset or new_count < count:
            problems.append(f"{name}: the union of {scope_key} moved or lost arms")
    for ordinal, slot in old["slots"].items():
        new_slot = new["slots"].get(ordinal)
        if new_slot is None:
            problems.append(f"{name}.{slot['name']} @{ordinal}: removed")
            continue
        for aspect in ("offset", "type", "default", "discriminant"):
            if new_slot[aspect] != slot[aspect]:
                problems.append(
                    f"{name}.{slot['name']} @{ordinal}: {aspect} {slot[aspect]!r} became {new_slot[aspect]!r}"
                )
    for key, group in old["groups"].items():
        new_group = new["groups"].get(key)
        if new_group is None or new_group["discriminant"] != group["discriminant"]:
            problems.append(f"{name}.{group['name']} (group from @{key}): removed or moved")
    return problems


@pytest.fixture(scope="module")
def current():
    return read_schema(CURRENT, schema_layout)


def test_every_released_schema_is_kept(current):
    assert RELEASED, "schema/released/ holds the compiled schema of each published version"
    for path in RELEASED:
        assert layout_problems(read_schema(path, schema_layout), current) == [], path.name


def test_the_check_sees_what_is_not_an_append():
    old = read_schema(RELEASED[-1], schema_layout)
    assert layout_problems(old, old) == []

    def changed(edit):
        new = read_schema(RELEASED[-1], schema_layout)
        edit(new)
        return layout_problems(old, new)

    def struct(layout, display_name):
        (entry,) = [v for v in layout.values() if v[1] == display_name]
        return entry[2]

    def move(layout):
        struct(layout, "monty_wire.capnp:Usage")["slots"][3]["offset"] += 1

    def retype(layout):
        struct(layout, "monty_wire.capnp:Node")["slots"][4]["type"] = ("uint64",)

    def remove(layout):
        del struct(layout, "monty_wire.capnp:FunctionCall")["slots"][5]

    def new_default(layout):
        struct(layout, "monty_wire.capnp:ResourceLimits")["slots"][8]["default"] = ("uint64", 100)

    def rearm(layout):
        struct(layout, "monty_wire.capnp:DateTime")["slots"][8]["discriminant"] = (7, 0)

    def append(layout):
        usage = struct(layout, "monty_wire.capnp:Usage")
        usage["slots"][7] = {"offset": 7, "type": ("uint64",), "default": ("uint64", 0), "discriminant": None, "name": "new"}
        usage["dataWords"] += 1

    assert changed(move) and changed(retype) and changed(remove)
    assert changed(new_default) and changed(rearm)
    assert changed(append) == []
