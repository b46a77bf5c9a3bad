"""Cross-language test: pycapnp (the C++ reference implementation) reads what
the Rust codec writes, knowing nothing but schema/monty_wire.capnp.

The messages come from `examples/wire_fixtures.rs`, which runs real Python
programs through monty and encodes their results.
"""

import math
import os
import shutil
import struct
import subprocess

import pytest

# The arena reader is the host's (conftest.py): children come first, so one
# forward pass builds every node, and a shared child is one object.
from conftest import ROOT, SCHEMA_PATH, schema
from conftest import read_value as to_python


@pytest.fixture(scope="session")
def fixtures(tmp_path_factory):
    out = tmp_path_factory.mktemp("wire_fixtures")
    subprocess.run(
        ["cargo", "run", "--quiet", "--locked", "--example", "wire_fixtures", "--", str(out)],
        cwd=ROOT,
        check=True,
    )
    return out


def read_value(fixtures, name):
    """Decodes `<name>.bin` and returns the Value reader (kept alive by the caller's scope)."""
    data = (fixtures / f"{name}.bin").read_bytes()
    return schema.Value.from_bytes(data)


def kinds(value):
    return [node.which() for node in value.nodes]


def test_tuple_and_list_stay_distinct(fixtures):
    with read_value(fixtures, "tuple_vs_list") as value:
        root = value.nodes[value.root]
        assert root.which() == "tuple"
        first, second = (value.nodes[i] for i in root.tuple)
        assert first.which() == "list"
        assert second.which() == "tuple"
        assert to_python(value) == ([1, 2], (1, 2))


def test_set_and_frozenset_stay_distinct(fixtures):
    with read_value(fixtures, "set_vs_frozenset") as value:
        root = value.nodes[value.root]
        first, second = (value.nodes[i] for i in root.tuple)
        assert (first.which(), second.which()) == ("set", "frozenSet")
        assert to_python(value) == ({1}, frozenset({2}))


def test_bytes_are_exact(fixtures):
    with read_value(fixtures, "bytes") as value:
        assert kinds(value) == ["bytes"]
        assert to_python(value) == b"\x00\xffhi"


def test_bigints_past_64_bits_are_exact(fixtures):
    with read_value(fixtures, "bigint") as value:
        big, negative = (value.nodes[i].bigInt for i in value.nodes[value.root].list)
        assert big.negative is False
        assert bytes(big.magnitude) == (2**70 + 5).to_bytes(9, "big")
        assert negative.negative
        assert to_python(value) == [2**70 + 5, -(2**70)]


def test_float_specials_keep_their_bits(fixtures):
    with read_value(fixtures, "float_specials") as value:
        nan, negative_zero, inf, negative_inf = to_python(value)
        assert math.isnan(nan)
        assert struct.pack("<d", negative_zero) == struct.pack("<d", -0.0)
        assert (inf, negative_inf) == (math.inf, -math.inf)


def test_dict_keys_can_be_tuples(fixtures):
    with read_value(fixtures, "dict_tuple_keys") as value:
        root = value.nodes[value.root]
        assert root.which() == "dict"
        assert [value.nodes[pair.key].which() for pair in root.dict] == ["tuple", "tuple"]
        assert to_python(value) == {(1, 2): "a", (3,): "b"}


def test_shared_child_is_one_node(fixtures):
    with read_value(fixtures, "shared_child") as value:
        first, second = value.nodes[value.root].list
        assert first == second, "both items refer to the same node"
        assert value.nodes[first].which() == "list"
        outer = to_python(value)
        assert outer == [[1], [1]]
        assert outer[0] is outer[1]


def test_cycle_is_a_marker_leaf(fixtures):
    with read_value(fixtures, "cycle") as value:
        assert kinds(value) == ["intValue", "cycle", "list"]
        assert value.nodes[1].cycle == "[...]"


def test_exception_with_three_frame_traceback(fixtures):
    data = (fixtures / "exception_traceback.bin").read_bytes()
    with schema.PythonException.from_bytes(data) as exc:
        assert str(exc.type) == "valueError"
        assert exc.message.which() == "some"
        assert exc.message.some == "boom"
        assert exc.data.which() == "none"
        frames = list(exc.traceback)
        assert len(frames) == 3
        assert [f.filename for f in frames] == ["exception_traceback.py"] * 3
        assert [f.frameName.some for f in frames] == ["<module>", "outer", "inner"]
        assert [(f.startLine, f.startColumn, f.endLine, f.endColumn) for f in frames] == [
            (8, 1, 8, 8),
            (6, 5, 6, 12),
            (3, 11, 3, 29),
        ]
        assert [f.previewLine.some for f in frames] == ["outer()", "    inner()", '    raise ValueError("boom")']
        assert [f.hideCaret for f in frames] == [False, False, True]


def test_protocol_version_constant():
    assert schema.protocolVersion == 3


def test_capnp_tool_decodes(fixtures):
    """The official `capnp` tool prints our messages from the schema alone."""
    if shutil.which("capnp") is None:
        if os.environ.get("CI"):
            pytest.fail("CI must install capnproto (the `capnp` tool)")
        pytest.skip("the `capnp` tool is not installed")

    def decode(name, root):
        with open(fixtures / f"{name}.bin", "rb") as stdin:
            result = subprocess.run(
                ["capnp", "decode", str(SCHEMA_PATH), root],
                stdin=stdin,
                capture_output=True,
                text=True,
                check=True,
            )
        return " ".join(result.stdout.split())

    assert "(list = [0, 1]), (intValue = 1), (intValue = 2), (tuple = [3, 4]), (tuple = [2, 5])" in decode(
        "tuple_vs_list", "Value"
    )
    assert "bigInt = ( negative = true" in decode("bigint", "Value")
    assert "(float = nan)" in decode("float_specials", "Value")
    text = decode("exception_traceback", "PythonException")
    assert "type = valueError" in text
    assert 'message = (some = "boom")' in text
    assert text.count("frameName = (some =") == 3
