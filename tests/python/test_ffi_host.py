"""Host test: the C ABI driven exactly as a Dart (dart:ffi) host drives it.

This proves the wire against the C++ reference implementation of Cap'n Proto
(pycapnp) through the library's six C entry points, with nothing from the
Rust side but the compiled cdylib:

* requests are built with pycapnp from `schema/monty_wire.capnp` alone and
  handed to `monty_wire_dispatch` as raw pointers (also at odd addresses);
* each response is read in place, zero copy, from the buffer the library
  returned (a memoryview over its memory, never a copy of the bytes), and the
  buffer is freed with `monty_wire_buffer_free` once read;
* the print callback is a ctypes function pointer called during dispatch.

Values cross as node arenas (post-order: a node's children have lower
indices), encoded and decoded here by small helpers written from the schema.
"""

import ctypes
import math
import subprocess
import sys
from pathlib import Path

import capnp
import pytest

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_PATH = ROOT / "schema" / "monty_wire.capnp"

capnp.remove_import_hook()
schema = capnp.load(str(SCHEMA_PATH))

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


# ---------------------------------------------------------------------------
# The C ABI
# ---------------------------------------------------------------------------


class MontyWireBuffer(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("len", ctypes.c_size_t)]


PRINT_CALLBACK = ctypes.CFUNCTYPE(
    None, ctypes.c_void_p, ctypes.c_uint32, ctypes.POINTER(ctypes.c_uint8), ctypes.c_size_t
)


def library_path():
    names = {"darwin": "libmonty_wire.dylib", "win32": "monty_wire.dll"}
    return ROOT / "target" / "debug" / names.get(sys.platform, "libmonty_wire.so")


@pytest.fixture(scope="session")
def lib():
    subprocess.run(["cargo", "build", "--locked", "--lib"], cwd=ROOT, check=True)
    lib = ctypes.CDLL(str(library_path()))
    lib.monty_wire_protocol_version.restype = ctypes.c_uint32
    lib.monty_wire_protocol_version.argtypes = []
    lib.monty_wire_session_open.restype = ctypes.c_uint64
    lib.monty_wire_session_open.argtypes = []
    lib.monty_wire_session_close.restype = ctypes.c_int32
    lib.monty_wire_session_close.argtypes = [ctypes.c_uint64]
    lib.monty_wire_dispatch.restype = ctypes.POINTER(MontyWireBuffer)
    lib.monty_wire_dispatch.argtypes = [ctypes.c_uint64, ctypes.c_void_p, ctypes.c_size_t]
    lib.monty_wire_buffer_free.restype = None
    lib.monty_wire_buffer_free.argtypes = [ctypes.POINTER(MontyWireBuffer)]
    lib.monty_wire_set_print_callback.restype = ctypes.c_int32
    lib.monty_wire_set_print_callback.argtypes = [ctypes.c_uint64, PRINT_CALLBACK, ctypes.c_void_p]
    return lib


# ---------------------------------------------------------------------------
# Values: Python objects <-> node arenas
# ---------------------------------------------------------------------------


class ExternalFunction:
    """A host function handed to the sandbox (a `function` node)."""

    def __init__(self, name):
        self.name = name


def _node_specs(objects):
    """Post-order node specs for `objects`, and the index of each one."""
    specs = []

    def add(obj):
        if obj is None:
            spec = ("none", None)
        elif isinstance(obj, bool):
            spec = ("bool", obj)
        elif isinstance(obj, int):
            spec = ("int", obj) if INT64_MIN <= obj <= INT64_MAX else ("bigInt", obj)
        elif isinstance(obj, float):
            spec = ("float", obj)
        elif isinstance(obj, str):
            spec = ("str", obj)
        elif isinstance(obj, (bytes, bytearray)):
            spec = ("bytes", bytes(obj))
        elif isinstance(obj, ExternalFunction):
            spec = ("function", obj.name)
        elif isinstance(obj, list):
            spec = ("list", [add(item) for item in obj])
        elif isinstance(obj, tuple):
            spec = ("tuple", [add(item) for item in obj])
        elif isinstance(obj, dict):
            spec = ("dict", [(add(k), add(v)) for k, v in obj.items()])
        else:
            raise TypeError(f"no node kind for {obj!r}")
        specs.append(spec)
        return len(specs) - 1

    roots = [add(obj) for obj in objects]
    return specs, roots


def _write_nodes(target, specs):
    nodes = target.init("nodes", len(specs))
    for node, (kind, payload) in zip(nodes, specs):
        if kind == "none":
            node.none = None
        elif kind == "bigInt":
            big = node.init("bigInt")
            big.negative = payload < 0
            magnitude = abs(payload)
            big.magnitude = magnitude.to_bytes((magnitude.bit_length() + 7) // 8, "big")
        elif kind == "function":
            function = node.init("function")
            function.name = payload
            function.docstring.none = None
        elif kind in ("list", "tuple"):
            items = node.init(kind, len(payload))
            for i, index in enumerate(payload):
                items[i] = index
        elif kind == "dict":
            pairs = node.init("dict", len(payload))
            for pair, (key, value) in zip(pairs, payload):
                pair.key = key
                pair.value = value
        else:
            setattr(node, kind, payload)


def write_value(target, obj):
    """Fills a `Value` builder with `obj`."""
    specs, (root,) = _node_specs([obj])
    _write_nodes(target, specs)
    target.root = root


def write_inputs(target, objects):
    """Fills an `Inputs` builder with one root per object, in one arena."""
    specs, roots = _node_specs(objects)
    _write_nodes(target, specs)
    target.roots = roots


def _read_nodes(nodes):
    """Builds every node of an arena in one forward pass (children come first)."""
    built = []
    for node in nodes:
        kind = node.which()
        if kind == "none":
            obj = None
        elif kind in ("bool", "int", "float", "str", "path", "decimal", "repr", "cycle", "type"):
            obj = getattr(node, kind)
        elif kind == "bytes":
            obj = bytes(node.bytes)
        elif kind == "bigInt":
            magnitude = int.from_bytes(bytes(node.bigInt.magnitude), "big")
            obj = -magnitude if node.bigInt.negative else magnitude
        elif kind == "list":
            obj = [built[i] for i in node.list]
        elif kind == "tuple":
            obj = tuple(built[i] for i in node.tuple)
        elif kind == "set":
            obj = {built[i] for i in node.set}
        elif kind == "frozenSet":
            obj = frozenset(built[i] for i in node.frozenSet)
        elif kind == "dict":
            obj = {built[pair.key]: built[pair.value] for pair in node.dict}
        elif kind == "function":
            obj = ExternalFunction(node.function.name)
        else:
            raise AssertionError(f"unexpected node kind {kind}")
        built.append(obj)
    return built


def read_value(value):
    return _read_nodes(value.nodes)[value.root]


def read_arguments(args):
    built = _read_nodes(args.nodes)
    return (
        [built[i] for i in args.positional],
        [(built[pair.key], built[pair.value]) for pair in args.keyword],
    )


# ---------------------------------------------------------------------------
# Responses, read in place into plain Python data
# ---------------------------------------------------------------------------


def _optional(union, arm="some"):
    return getattr(union, arm) if union.which() == arm else None


def _position(position):
    return {"filename": position.filename, "start": position.start, "end": position.end}


def _exception(exc):
    return {
        "type": str(exc.type),
        "message": exc.message.some if exc.message.which() == "some" else None,
        "message_arm": exc.message.which(),
        "traceback": [
            {
                "filename": frame.filename,
                "line": frame.startLine,
                "column": frame.startColumn,
                "frame_name": _optional(frame.frameName),
                "preview": _optional(frame.previewLine),
            }
            for frame in exc.traceback
        ],
        "data": exc.data.which(),
    }


def _os_call(call):
    kind = call.which()
    detail = getattr(call, kind)
    if kind == "getenv":
        detail = {"key": detail.key, "default": read_value(detail.default)}
    elif isinstance(detail, (str, int)) or detail is None:
        pass
    else:
        detail = str(detail)
    return {
        "kind": kind,
        "detail": detail,
        "name": call.name,
        "call_id": call.callId,
        "allow_eager_await": call.allowEagerAwait,
        "position": _position(call.position),
    }


def decode_response(r):
    """Turns a `Response` reader into plain Python data while its bytes are alive."""
    kind = r.which()
    if kind == "ok":
        body = None
    elif kind == "complete":
        body = read_value(r.complete)
    elif kind == "functionCall":
        call = r.functionCall
        positional, keyword = read_arguments(call.args)
        body = {
            "name": call.name,
            "positional": positional,
            "keyword": keyword,
            "call_id": call.callId,
            "object_id": bytes(call.objectId.some) if call.objectId.which() == "some" else None,
            "allow_eager_await": call.allowEagerAwait,
            "position": _position(call.position),
        }
    elif kind == "osCall":
        body = _os_call(r.osCall)
    elif kind == "nameLookup":
        lookup = r.nameLookup
        body = {
            "name": lookup.name,
            "object_id": bytes(lookup.objectId.some) if lookup.objectId.which() == "some" else None,
            "position": _position(lookup.position),
        }
    elif kind == "resolveFutures":
        body = {
            "pending_call_ids": list(r.resolveFutures.pendingCallIds),
            "position": _position(r.resolveFutures.position),
        }
    elif kind == "pythonError":
        body = _exception(r.pythonError)
    elif kind == "protocolError":
        body = {"code": str(r.protocolError.code), "message": r.protocolError.message}
    elif kind == "dump":
        body = bytes(r.dump)
    else:
        raise AssertionError(f"unknown response arm {kind}")
    usage = r.usage
    return {
        "kind": kind,
        "body": body,
        "output": [(str(segment.stream), segment.text) for segment in r.output],
        "usage": {
            "elapsed": usage.elapsedNanos,
            "feed_elapsed": usage.feedElapsedNanos,
            "turn_elapsed": usage.turnElapsedNanos,
            "wall": usage.wallNanos,
            "suspensions": usage.suspensions,
            "memory": usage.memory.which(),
        },
    }


# ---------------------------------------------------------------------------
# The host
# ---------------------------------------------------------------------------


def request():
    return schema.Request.new_message()


class Host:
    """One session, spoken to the way a dart:ffi host speaks to it."""

    def __init__(self, lib):
        self.lib = lib
        self.handle = None

    def open(self):
        self.handle = self.lib.monty_wire_session_open()
        assert self.handle != 0
        return self

    def close(self):
        return self.lib.monty_wire_session_close(self.handle)

    def dispatch_bytes(self, data, misalign=False):
        """Sends raw request bytes (from a pointer, as dart:ffi does) and
        decodes the response in place."""
        if misalign:
            # The bytes start at an address that is not 8-byte aligned.
            backing = (ctypes.c_uint8 * (len(data) + 16))()
            base = ctypes.addressof(backing)
            offset = 1 if (base + 1) % 8 else 2
            ctypes.memmove(base + offset, data, len(data))
            address = base + offset
            assert address % 8 != 0
            keep_alive = backing
        else:
            keep_alive = (ctypes.c_uint8 * max(len(data), 1)).from_buffer_copy(data or b"\0")
            address = ctypes.addressof(keep_alive)
        buffer = self.lib.monty_wire_dispatch(self.handle, address, len(data))
        del keep_alive  # the library reads the request only during the call
        assert buffer, "dispatch never returns NULL"
        try:
            data_address, length = buffer.contents.data, buffer.contents.len
            assert data_address % 8 == 0, "response data is 8-byte aligned"
            assert length > 0 and length % 8 == 0
            view = memoryview((ctypes.c_uint8 * length).from_address(data_address))
            with schema.Response.from_bytes(view) as response:
                return decode_response(response)
        finally:
            self.lib.monty_wire_buffer_free(buffer)

    def send(self, message, misalign=False):
        return self.dispatch_bytes(message.to_bytes(), misalign=misalign)

    # Requests a host sends most.

    def open_run(self, code, input_names=(), script_name=None):
        message = request()
        open_run = message.init("openRun")
        open_run.code = code
        open_run.inputNames = list(input_names)
        if script_name is not None:
            open_run.scriptName = script_name
        return self.send(message)

    def run(self, *inputs):
        message = request()
        write_inputs(message.init("run"), inputs)
        return self.send(message)

    def start(self, *inputs):
        message = request()
        write_inputs(message.init("start"), inputs)
        return self.send(message)

    def resume_call(self, value):
        message = request()
        write_value(message.init("resumeCall").init("value"), value)
        return self.send(message)

    def resume_call_future(self):
        message = request()
        message.init("resumeCall").future = None
        return self.send(message)

    def resume_os_call(self, value):
        message = request()
        write_value(message.init("resumeOsCall").init("value"), value)
        return self.send(message)

    def resume_name_lookup(self, value):
        message = request()
        write_value(message.init("resumeNameLookup").init("value"), value)
        return self.send(message)

    def resolve_futures(self, results):
        message = request()
        entries = message.init("resolveFutures", len(results))
        for entry, (call_id, value) in zip(entries, results):
            entry.callId = call_id
            write_value(entry.result.init("value"), value)
        return self.send(message)


@pytest.fixture
def host(lib):
    host = Host(lib).open()
    yield host
    host.close()


def expect(response, kind):
    assert response["kind"] == kind, f"expected {kind}, got {response['kind']}: {response['body']}"
    return response["body"]


def ready(host, code, input_names=()):
    expect(host.open_run(code, input_names), "ok")
    return host


# ---------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------


def test_protocol_version_matches_the_schema(lib):
    assert schema.protocolVersion == 2
    assert lib.monty_wire_protocol_version() == schema.protocolVersion


def test_open_and_run_returns_value_output_and_usage(host):
    response = host.open_run("print('hello', x)\n(x, [x, x * 2])", ["x"])
    assert expect(response, "ok") is None

    response = host.run(21)
    assert expect(response, "complete") == (21, [21, 42])
    assert response["output"] == [("stdout", "hello 21\n")]
    usage = response["usage"]
    assert usage["turn_elapsed"] > 0
    assert usage["wall"] >= usage["turn_elapsed"]
    assert usage["suspensions"] == 0
    assert usage["memory"] == "unmeasured"

    # Compile once, run many.
    assert expect(host.run(1), "complete") == (1, [1, 2])


def test_the_full_suspension_loop(host):
    code = (
        "import os\n"
        "pages = []\n"
        "for url in ['https://a.example', 'https://b.example']:\n"
        "    pages.append(fetch(url, retries=3))\n"
        "home = os.getenv('HOME')\n"
        "print('home is', home)\n"
        "(pages, home, greeting)\n"
    )
    ready(host, code, ["fetch"])
    response = host.start(ExternalFunction("fetch"))

    calls, os_calls, lookups, output = [], [], [], []
    while True:
        # Output is per request: the print lands in the turn that ran it.
        output.extend(response["output"])
        if response["kind"] == "complete":
            break
        body = response["body"]
        if response["kind"] == "functionCall":
            calls.append(body)
            positional, keyword = body["positional"], body["keyword"]
            response = host.resume_call(f"page of {positional[0]} ({dict(keyword)['retries']} retries)")
        elif response["kind"] == "osCall":
            os_calls.append(body)
            assert body["kind"] == "getenv"
            response = host.resume_os_call("/home/dart")
        elif response["kind"] == "nameLookup":
            lookups.append(body)
            response = host.resume_name_lookup("hello")
        else:
            pytest.fail(f"unexpected response {response}")

    assert [call["name"] for call in calls] == ["fetch", "fetch"]
    assert [call["positional"] for call in calls] == [["https://a.example"], ["https://b.example"]]
    assert [call["keyword"] for call in calls] == [[("retries", 3)], [("retries", 3)]]
    assert calls[0]["call_id"] != calls[1]["call_id"]
    assert all(call["object_id"] is None for call in calls)
    assert calls[0]["position"]["filename"] == "main.py"

    (getenv,) = os_calls
    assert getenv["detail"] == {"key": "HOME", "default": None}
    assert getenv["name"] == "os.getenv"

    (lookup,) = lookups
    assert lookup["name"] == "greeting"
    assert lookup["object_id"] is None

    assert response["body"] == (
        ["page of https://a.example (3 retries)", "page of https://b.example (3 retries)"],
        "/home/dart",
        "hello",
    )
    assert output == [("stdout", "home is /home/dart\n")]
    assert response["usage"]["suspensions"] == 4


def test_gather_over_two_host_futures_resolved_in_reverse(host):
    code = (
        "import asyncio\n"
        "async def main():\n"
        "    return await asyncio.gather(fetch('a'), fetch('b'))\n"
        "asyncio.run(main())\n"
    )
    ready(host, code, ["fetch"])
    response = host.start(ExternalFunction("fetch"))
    arg_of = {}
    while response["kind"] == "functionCall":
        call = response["body"]
        arg_of[call["call_id"]] = call["positional"][0]
        response = host.resume_call_future()
    assert sorted(arg_of.values()) == ["a", "b"]

    pending = expect(response, "resolveFutures")["pending_call_ids"]
    assert sorted(pending) == sorted(arg_of)
    first, second = sorted(pending, key=lambda call_id: arg_of[call_id], reverse=True)

    response = host.resolve_futures([(first, arg_of[first].upper())])
    assert expect(response, "resolveFutures")["pending_call_ids"] == [second]
    response = host.resolve_futures([(second, arg_of[second].upper())])
    assert expect(response, "complete") == ["A", "B"]


def test_a_python_exception_has_type_message_and_traceback(host):
    ready(host, "x = 1\n1/0\n")
    exc = expect(host.run(), "pythonError")
    assert exc["type"] == "zeroDivisionError"
    assert exc["message_arm"] == "some"
    assert exc["message"] and "zero" in exc["message"]
    assert exc["traceback"], "the traceback is not empty"
    assert exc["traceback"][-1]["filename"] == "main.py"
    assert exc["traceback"][-1]["line"] == 2
    assert exc["data"] == "none"
    # The session is ready again.
    expect(host.run(), "pythonError")


def test_live_print_callback(host):
    received = []

    @PRINT_CALLBACK
    def on_print(user, stream, text, length):
        received.append((user, stream, ctypes.string_at(text, length).decode("utf-8")))

    assert host.lib.monty_wire_set_print_callback(host.handle, on_print, ctypes.c_void_p(0xD1)) == 0
    ready(host, "print('live', 'é')\nimport sys\nprint('err', file=sys.stderr)\n42")
    response = host.run()
    assert expect(response, "complete") == 42

    assert all(user == 0xD1 for user, _, _ in received)
    stdout = "".join(text for _, stream, text in received if stream == 0)
    stderr = "".join(text for _, stream, text in received if stream == 1)
    assert stdout == "live é\n"
    assert stderr == "err\n"
    streams = ["stdout" if stream == 0 else "stderr" for _, stream, _ in received]
    assert streams.index("stderr") > max(i for i, s in enumerate(streams) if s == "stdout")
    # The same text is in the response, in order.
    assert response["output"] == [("stdout", "live é\n"), ("stderr", "err\n")]

    # A null callback removes it; output still comes in the response.
    assert host.lib.monty_wire_set_print_callback(host.handle, PRINT_CALLBACK(), None) == 0
    received.clear()
    assert host.run()["output"][0] == ("stdout", "live é\n")
    assert received == []


def test_set_print_callback_on_an_unknown_session(lib):
    assert lib.monty_wire_set_print_callback(0, PRINT_CALLBACK(), None) == -1


def protocol_error(response):
    return expect(response, "protocolError")


def test_garbage_bytes_are_a_malformed_message(host):
    error = protocol_error(host.dispatch_bytes(b"this is not a capnp message!...."))
    assert error["code"] == "malformedMessage"
    assert error["message"]
    assert protocol_error(host.dispatch_bytes(b""))["code"] == "malformedMessage"


def test_a_truncated_request_is_a_truncated_message(host):
    message = request()
    message.init("openRun").code = "print('a fairly long program to cut short')"
    data = message.to_bytes()
    error = protocol_error(host.dispatch_bytes(data[: len(data) - 16]))
    assert error["code"] == "truncatedMessage"
    # The session is untouched: the whole request still works.
    expect(host.dispatch_bytes(data), "ok")


def test_a_request_for_another_state_is_wrong_state(host):
    message = request()
    message.init("run")
    assert protocol_error(host.send(message))["code"] == "wrongState", "run on an empty session"

    ready(host, "f()", ["f"])
    assert protocol_error(host.resume_call(1))["code"] == "wrongState", "resumeCall on a ready session"
    # Refused requests leave the session as it was.
    expect(host.start(ExternalFunction("f")), "functionCall")
    assert protocol_error(host.resume_os_call(1))["code"] == "wrongState"
    assert expect(host.resume_call(7), "complete") == 7


def test_a_closed_handle_is_an_unknown_session(lib):
    host = Host(lib).open()
    assert host.close() == 0
    assert host.close() == -1, "closing twice is harmless"
    message = request()
    message.init("openRun").code = "1"
    data = message.to_bytes()
    assert protocol_error(host.dispatch_bytes(data))["code"] == "unknownSession"
    host.handle = 0
    assert protocol_error(host.dispatch_bytes(data))["code"] == "unknownSession"


def test_an_out_of_range_node_index_is_an_invalid_value(host):
    ready(host, "x", ["x"])
    message = request()
    inputs = message.init("start")
    nodes = inputs.init("nodes", 2)
    nodes[0].int = 1
    items = nodes[1].init("list", 1)
    items[0] = 5  # there is no node 5
    inputs.roots = [1]
    error = protocol_error(host.send(message))
    assert error["code"] == "invalidValue"

    message = request()
    inputs = message.init("start")
    inputs.init("nodes", 1)[0].int = 1
    inputs.roots = [3]  # a root past the arena
    assert protocol_error(host.send(message))["code"] == "invalidValue"
    # Still ready.
    assert expect(host.start(9), "complete") == 9


def test_misaligned_request_bytes_work(host):
    message = request()
    open_run = message.init("openRun")
    open_run.code = "(x, [1.5, -0.0, None, True, b'\\x00'], {'k': 2**70})"
    open_run.inputNames = ["x"]
    expect(host.send(message, misalign=True), "ok")

    message = request()
    write_inputs(message.init("run"), ["ünïcode"])
    value = expect(host.send(message, misalign=True), "complete")
    assert value[0] == "ünïcode"
    assert value[1][:3] == [1.5, -0.0, None] and math.copysign(1, value[1][1]) == -1
    assert value[1][3:] == [True, b"\x00"]
    assert value[2] == {"k": 2**70}


def test_values_round_trip_through_the_sandbox(host):
    ready(host, "x", ["x"])
    value = (1, -(2**80), 2**63, "s", b"b", None, False, 0.25, [[], ()], {"a": [1], (1, 2): {}})
    assert expect(host.run(value), "complete") == value


def test_freeing_a_buffer_twice_is_ignored(host):
    buffer = host.lib.monty_wire_dispatch(host.handle, None, 0)
    assert buffer
    host.lib.monty_wire_buffer_free(buffer)
    host.lib.monty_wire_buffer_free(buffer)
    host.lib.monty_wire_buffer_free(None)
