"""Shared host for the pytest modules: the library's eight C entry points
driven through ctypes, exactly as a Dart (dart:ffi) host drives them.

* requests are built with pycapnp from `schema/monty_wire.capnp` alone and
  handed to `monty_wire_dispatch` as raw pointers;
* each response is read in place, zero copy, from the buffer the library
  returned (a memoryview over its memory, never a copy of the bytes), turned
  into plain Python data, and the buffer is freed with
  `monty_wire_buffer_free` once read;
* every test that takes a session (the `host` fixture, or `new_host`) runs
  twice: against an in-process session (`monty_wire_session_open`) and an
  isolated one, whose engine is a `monty-wire worker` process
  (`monty_wire_session_open_isolated`). The requests and responses are the
  same bytes; where a worker legitimately answers differently (it measures
  heap bytes), the test says so with `host.isolated`.

Values cross as node arenas (post-order: a node's children have lower
indices), encoded and decoded here by small helpers written from the schema.

This module is also importable outside pytest (a child process loads the
library through it, see test_ffi_repl.py): `load_library()` does not build.
"""

import ctypes
import math
import os
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
    # Another build of the library, e.g. scripts/asan.sh's sanitized one.
    if os.environ.get("MONTY_WIRE_LIB"):
        return Path(os.environ["MONTY_WIRE_LIB"])
    names = {"darwin": "libmonty_wire.dylib", "win32": "monty_wire.dll"}
    return ROOT / "target" / "debug" / names.get(sys.platform, "libmonty_wire.so")


def worker_path():
    """The worker binary of isolated sessions: the `monty-wire` executable
    built with the library (MONTY_WIRE_WORKER names another)."""
    if os.environ.get("MONTY_WIRE_WORKER"):
        return Path(os.environ["MONTY_WIRE_WORKER"])
    suffix = ".exe" if sys.platform == "win32" else ""
    return ROOT / "target" / "debug" / f"monty-wire{suffix}"


# `monty_wire_cancel` and `monty_wire_session_close` return these.
MONTY_WIRE_OK = 0
MONTY_WIRE_UNKNOWN_SESSION = -1
MONTY_WIRE_SESSION_BUSY = -2
MONTY_WIRE_INTERNAL_ERROR = -3
MONTY_WIRE_NOT_ISOLATED = -4


def load_library(path=None):
    """Loads the cdylib (already built) and declares the eight entry points."""
    lib = ctypes.CDLL(str(path or library_path()))
    lib.monty_wire_protocol_version.restype = ctypes.c_uint32
    lib.monty_wire_protocol_version.argtypes = []
    lib.monty_wire_session_open.restype = ctypes.c_uint64
    lib.monty_wire_session_open.argtypes = []
    lib.monty_wire_session_open_isolated.restype = ctypes.c_uint64
    lib.monty_wire_session_open_isolated.argtypes = [ctypes.c_char_p]
    lib.monty_wire_cancel.restype = ctypes.c_int32
    lib.monty_wire_cancel.argtypes = [ctypes.c_uint64]
    lib.monty_wire_session_close.restype = ctypes.c_int32
    lib.monty_wire_session_close.argtypes = [ctypes.c_uint64]
    lib.monty_wire_dispatch.restype = ctypes.POINTER(MontyWireBuffer)
    lib.monty_wire_dispatch.argtypes = [ctypes.c_uint64, ctypes.c_void_p, ctypes.c_size_t]
    lib.monty_wire_buffer_free.restype = None
    lib.monty_wire_buffer_free.argtypes = [ctypes.POINTER(MontyWireBuffer)]
    lib.monty_wire_set_print_callback.restype = ctypes.c_int32
    lib.monty_wire_set_print_callback.argtypes = [ctypes.c_uint64, PRINT_CALLBACK, ctypes.c_void_p]
    return lib


@pytest.fixture(scope="session")
def lib():
    # The library, and the worker binary its isolated sessions run.
    subprocess.run(["cargo", "build", "--locked", "--lib", "--bin", "monty-wire"], cwd=ROOT, check=True)
    return load_library()


SESSION_KINDS = ("in_process", "isolated")


@pytest.fixture(params=SESSION_KINDS)
def session_kind(request):
    """Which kind of session a test's hosts open: every test that takes a
    session runs once for each."""
    return request.param


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
            spec = ("boolValue", obj)
        elif isinstance(obj, int):
            spec = ("intValue", obj) if INT64_MIN <= obj <= INT64_MAX else ("bigInt", obj)
        elif isinstance(obj, float):
            spec = ("float", obj)
        elif isinstance(obj, str):
            spec = ("strValue", obj)
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


def write_named_values(target, named):
    """Fills a `NamedValues` builder with `{name: object}`, in one arena."""
    specs, roots = _node_specs(list(named.values()))
    _write_nodes(target, specs)
    entries = target.init("entries", len(roots))
    for entry, name, root in zip(entries, named, roots):
        entry.name = name
        entry.node = root


def _read_nodes(nodes):
    """Builds every node of an arena in one forward pass (children come first)."""
    built = []
    for node in nodes:
        kind = node.which()
        if kind == "none":
            obj = None
        elif kind in ("boolValue", "intValue", "float", "strValue", "path", "decimal", "repr", "cycle", "type"):
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
            "object_id": bytes(call.methodOf.some) if call.methodOf.which() == "some" else None,
            "allow_eager_await": call.allowEagerAwait,
            "position": _position(call.position),
        }
    elif kind == "osCall":
        body = _os_call(r.osCall)
    elif kind == "nameLookup":
        lookup = r.nameLookup
        body = {
            "name": lookup.name,
            "object_id": bytes(lookup.attributeOf.some) if lookup.attributeOf.which() == "some" else None,
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
        error = r.protocolError
        body = {"code": str(error.code), "message": error.message, "worker_exit": None}
        if error._has("workerExit"):
            exit = error.workerExit
            body["worker_exit"] = {
                "exit_code": exit.exitCode,
                "signal": exit.signal,
                "out_of_memory": exit.outOfMemory,
                "stderr_tail": exit.stderrTail,
            }
    elif kind == "dump":
        body = bytes(r.dump)
    elif kind == "continuation":
        body = str(r.continuation)
    elif kind == "functionNames":
        body = list(r.functionNames)
    elif kind == "typeCheckReport":
        body = {
            "diagnostics": [
                {
                    "code": d.code,
                    "severity": str(d.severity),
                    "message": d.message,
                    "file": d.file,
                    "start_line": d.startLine,
                    "start_column": d.startColumn,
                    "end_line": d.endLine,
                    "end_column": d.endColumn,
                }
                for d in r.typeCheckReport.diagnostics
            ],
            "rendered": r.typeCheckReport.rendered,
        }
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
            "memory_bytes": usage.memory.bytes if usage.memory.which() == "bytes" else None,
        },
    }


# ---------------------------------------------------------------------------
# The host
# ---------------------------------------------------------------------------


def request():
    return schema.Request.new_message()


def open_session(lib, kind="in_process"):
    """A new session handle of this kind (see `SESSION_KINDS`)."""
    if kind == "isolated":
        handle = lib.monty_wire_session_open_isolated(os.fsencode(worker_path()))
    else:
        assert kind == "in_process", kind
        handle = lib.monty_wire_session_open()
    assert handle != 0
    return handle


class Host:
    """One session, spoken to the way a dart:ffi host speaks to it."""

    def __init__(self, lib, kind="in_process"):
        self.lib = lib
        self.kind = kind
        self.handle = None

    @property
    def isolated(self):
        return self.kind == "isolated"

    def open(self):
        self.handle = open_session(self.lib, self.kind)
        return self

    def cancel(self):
        return self.lib.monty_wire_cancel(self.handle)

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

    # REPL sessions, dumps and type checking.

    def open_repl(self, limits=None, type_check=None, script_name=None):
        """`limits`: {field: nanos or count}, e.g. {"maxFeedDuration": 200_000_000};
        `type_check`: None (off) or a dict of `TypeCheckOptions` fields."""
        message = request()
        open_repl = message.init("openRepl")
        if script_name is not None:
            open_repl.scriptName = script_name
        if limits:
            write_limits(open_repl.init("limits"), limits)
        if type_check is None:
            open_repl.typeChecking.off = None
        else:
            write_type_check_options(open_repl.typeChecking.init("on"), type_check)
        return self.send(message)

    def _feed(self, arm, code, inputs=None, skip_type_check=False):
        message = request()
        feed = message.init(arm)
        feed.code = code
        if inputs:
            write_named_values(feed.init("inputs"), inputs)
        feed.skipTypeCheck = skip_type_check
        return self.send(message)

    def feed_run(self, code, inputs=None, skip_type_check=False):
        return self._feed("feedRun", code, inputs, skip_type_check)

    def feed_start(self, code, inputs=None, skip_type_check=False):
        return self._feed("feedStart", code, inputs, skip_type_check)

    def detect_continuation(self, source):
        message = request()
        message.detectContinuation = source
        return self.send(message)

    def list_functions(self):
        message = request()
        message.listFunctions = None
        return self.send(message)

    def call_function(self, name, *args):
        message = request()
        call = message.init("callFunction")
        call.name = name
        write_inputs(call.init("args"), args)
        return self.send(message)

    def set_dump_key(self, key):
        message = request()
        message.setDumpKey = bytes(key)
        return self.send(message)

    def dump_session(self):
        message = request()
        message.dumpSession = None
        return self.send(message)

    def load_session(self, dump, limits=None):
        message = request()
        load = message.init("loadSession")
        load.dump = bytes(dump)
        if limits:
            write_limits(load.init("limits"), limits)
        return self.send(message)

    def type_check(self, code, format="full", prefix_code="", script_name="main.py", **options):
        message = request()
        check = message.init("typeCheck")
        check.code = code
        check.prefixCode = prefix_code
        check.scriptName = script_name
        write_type_check_options(check.init("options"), dict(options, format=format))
        return self.send(message)


_DURATION_LIMITS = ("maxFeedDuration", "maxTurnDuration", "maxTotalSleep")


def write_limits(target, limits):
    """Fills a `ResourceLimits` builder: durations in nanoseconds, the rest as counts."""
    for name, amount in limits.items():
        if name in _DURATION_LIMITS:
            setattr(getattr(target, name), "nanos", amount)
        elif name == "maxMemory":
            target.maxMemory.bytes = amount
        elif name == "gcInterval":
            target.gcInterval.allocations = amount
        else:
            setattr(target, name, amount)


def write_type_check_options(target, options):
    """Fills a `TypeCheckOptions` builder from {stubs, module_stubs, format, color}."""
    target.stubs = options.get("stubs", "")
    module_stubs = options.get("module_stubs", {})
    stubs = target.init("moduleStubs", len(module_stubs))
    for stub, (module, source) in zip(stubs, module_stubs.items()):
        stub.module = module
        stub.source = source
    target.format = options.get("format", "full")
    target.color = options.get("color", False)


@pytest.fixture
def new_host(lib, session_kind):
    """Opens hosts of the test's session kind, and closes them after it."""
    opened = []

    def new():
        host = Host(lib, session_kind).open()
        opened.append(host)
        return host

    yield new
    for host in opened:
        host.close()


@pytest.fixture
def host(new_host):
    return new_host()


def expect(response, kind):
    assert response["kind"] == kind, f"expected {kind}, got {response['kind']}: {response['body']}"
    return response["body"]


def ready(host, code, input_names=()):
    expect(host.open_run(code, input_names), "ok")
    return host


