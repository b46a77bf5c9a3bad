"""The steps of the Dart host guide (docs/dart.md), taken through ctypes.

No Dart SDK runs here, so this module does what the guide's samples do, call
for call, through the same eight C functions: `send` copies the request into
native memory, dispatches, hands the response reader to a `read` function
while the buffer is alive and frees it afterwards; the print callback copies
its text inside the call; sessions are closed explicitly or from another
thread, as a `NativeFinalizer` does; an isolated session's request is
cancelled from another thread while one waits in dispatch, as the guide's
main isolate cancels its helper's. Each runs in an in-process and in an
isolated session. It also shows the hazard the guide warns about: a response
read after its buffer was freed reads the next response. And it checks that
every C signature and constant the docs bind with dart:ffi is the header's.
"""

import ctypes
import queue
import re
import threading

import pytest

from conftest import (
    MONTY_WIRE_NOT_ISOLATED,
    MONTY_WIRE_OK,
    MONTY_WIRE_SESSION_BUSY,
    MONTY_WIRE_UNKNOWN_SESSION,
    PRINT_CALLBACK,
    ROOT,
    open_session,
    read_arguments,
    read_value,
    schema,
    worker_path,
)


# ---------------------------------------------------------------------------
# The guide's functions, in Python
# ---------------------------------------------------------------------------


def send(lib, session, data, read):
    """docs/dart.md's `send`: returns what `read` makes of the response, then frees it."""
    native_request = (ctypes.c_uint8 * max(len(data), 1)).from_buffer_copy(data or b"\0")  # malloc
    buffer = lib.monty_wire_dispatch(session, ctypes.addressof(native_request), len(data))
    del native_request  # malloc.free: the library read the request during the call
    try:
        view = memoryview((ctypes.c_uint8 * buffer.contents.len).from_address(buffer.contents.data))
        with schema.Response.from_bytes(view) as response:
            return read(response)
    finally:
        lib.monty_wire_buffer_free(buffer)


def read_turn(response):
    """docs/dart.md's `readTurn`: plain values, nothing that points into the buffer."""
    arm = response.which()
    if arm == "complete":
        return ("complete", read_value(response.complete))
    if arm == "functionCall":
        positional, _ = read_arguments(response.functionCall.args)
        return ("hostCall", response.functionCall.name, positional)
    if arm == "protocolError":
        return ("refused", response.protocolError.message, str(response.protocolError.code))
    return ("other", arm)


WORKER_ENDINGS = {"workerCrashed", "deadlineExceeded", "cancelled"}


def read_isolated_turn(response):
    """docs/dart.md's `readIsolatedTurn`: `readTurn`, plus the outcomes an isolated session adds."""
    if response.which() == "protocolError":
        error = response.protocolError
        code = str(error.code)
        if code in WORKER_ENDINGS:
            exit = None
            if error._has("workerExit"):  # present with workerCrashed only
                w = error.workerExit
                exit = {
                    "exit_code": w.exitCode,
                    "signal": w.signal,
                    "out_of_memory": w.outOfMemory,
                    "stderr_tail": w.stderrTail,
                }
            return ("workerEnded", code, error.message, exit)
    return read_turn(response)


def open_run_request(code, input_names):
    message = schema.Request.new_message()
    open_run = message.init("openRun")
    open_run.code = code
    names = open_run.init("inputNames", len(input_names))
    for i, name in enumerate(input_names):
        names[i] = name
    return message.to_bytes()


def start_request(function_names):
    message = schema.Request.new_message()
    inputs = message.init("start")
    nodes = inputs.init("nodes", len(function_names))
    roots = inputs.init("roots", len(function_names))
    for i, name in enumerate(function_names):
        function = nodes[i].init("function")
        function.name = name
        function.docstring.none = None
        roots[i] = i
    return message.to_bytes()


def resume_with_string(text):
    message = schema.Request.new_message()
    value = message.init("resumeCall").init("value")
    value.init("nodes", 1)[0].strValue = text
    value.root = 0
    return message.to_bytes()


def run_request(*strings):
    """A `run` whose inputs are these strings."""
    message = schema.Request.new_message()
    inputs = message.init("run")
    nodes = inputs.init("nodes", len(strings))
    roots = inputs.init("roots", len(strings))
    for i, text in enumerate(strings):
        nodes[i].strValue = text
        roots[i] = i
    return message.to_bytes()


class PrintForwarder:
    """docs/dart.md's `PrintForwarder`: copies the text inside the call."""

    def __init__(self, lib, session):
        self.lib, self.session, self.received = lib, session, []
        self.callback = PRINT_CALLBACK(self._on_print)  # NativeCallable.isolateLocal

    def _on_print(self, user_data, stream, text, length):
        self.received.append((stream, ctypes.string_at(text, length).decode("utf-8", "replace")))

    def install(self):
        return self.lib.monty_wire_set_print_callback(self.session, self.callback, None)

    def uninstall(self):
        return self.lib.monty_wire_set_print_callback(self.session, PRINT_CALLBACK(), None)


@pytest.fixture
def session(lib, session_kind):
    handle = open_session(lib, session_kind)
    yield handle
    lib.monty_wire_session_close(handle)


# ---------------------------------------------------------------------------
# The guide's sequence
# ---------------------------------------------------------------------------


def test_one_run_start_to_finish(lib, session_kind):
    """`runWithLookup`: open, openRun, start, a host call answered, complete, close."""
    session = open_session(lib, session_kind)
    printer = PrintForwarder(lib, session)
    assert printer.install() == MONTY_WIRE_OK

    code = "user = lookup(7)\nf'hello {user}'"
    assert send(lib, session, open_run_request(code, ["lookup"]), read_turn) == ("other", "ok")
    turn = send(lib, session, start_request(["lookup"]), read_turn)
    calls = []
    while turn[0] == "hostCall":
        calls.append(turn[1:])
        turn = send(lib, session, resume_with_string(f"user {turn[2][0]}"), read_turn)
    assert calls == [("lookup", [7])]
    assert turn == ("complete", "hello user 7")

    assert lib.monty_wire_session_close(session) == MONTY_WIRE_OK
    assert lib.monty_wire_session_close(session) == MONTY_WIRE_UNKNOWN_SESSION, "closing twice is harmless"


def test_the_background_worker_run(session, lib):
    """`runInBackground`: openRun with no inputs, `startRequest(const [])`, print output."""
    printer = PrintForwarder(lib, session)
    assert printer.install() == MONTY_WIRE_OK
    assert send(lib, session, open_run_request("print('working')\n6 * 7", []), read_turn) == ("other", "ok")
    assert send(lib, session, start_request([]), read_turn) == ("complete", 42)
    assert "".join(text for _, text in printer.received) == "working\n"
    assert {stream for stream, _ in printer.received} == {0}


def test_the_print_callback_gets_what_the_response_carries(session, lib):
    printer = PrintForwarder(lib, session)
    assert printer.install() == MONTY_WIRE_OK
    code = "import sys\nprint('out', 1)\nprint('err', file=sys.stderr)\nprint('é')"
    send(lib, session, open_run_request(code, []), read_turn)

    def output(response):
        return [(0 if str(segment.stream) == "stdout" else 1, segment.text) for segment in response.output]

    segments = send(lib, session, start_request([]), output)
    assert "".join(text for stream, text in printer.received if stream == 0) == "out 1\né\n"
    assert "".join(text for stream, text in printer.received if stream == 1) == "err\n"
    assert "".join(text for _, text in segments) == "".join(text for _, text in printer.received)


def test_replacing_the_callback_from_inside_it_is_refused_as_busy(session, lib):
    """The guide: never call set_print_callback inside the callback; the old one stays."""
    statuses = []
    replacement = PrintForwarder(lib, session)
    first = PrintForwarder(lib, session)

    def replace_from_inside(user_data, stream, text, length):
        first._on_print(user_data, stream, text, length)
        statuses.append(replacement.install())

    first.callback = PRINT_CALLBACK(replace_from_inside)
    assert first.install() == MONTY_WIRE_OK
    send(lib, session, open_run_request("print('a')\nprint('b')", []), read_turn)
    send(lib, session, start_request([]), read_turn)
    assert statuses and set(statuses) == {MONTY_WIRE_SESSION_BUSY}
    assert replacement.received == []

    # The first callback is still the registered one: it must stay alive until replaced.
    send(lib, session, start_request([]), read_turn)
    assert "".join(text for _, text in first.received) == "a\nb\n" * 2

    # Replaced from outside a dispatch, it succeeds; only now may the old one be closed.
    assert replacement.install() == MONTY_WIRE_OK
    del first
    send(lib, session, start_request([]), read_turn)
    assert "".join(text for _, text in replacement.received) == "a\nb\n"
    assert replacement.uninstall() == MONTY_WIRE_OK


def test_a_session_closed_from_another_thread_as_a_finalizer_does(lib, session_kind):
    handle = open_session(lib, session_kind)
    statuses = []
    finalizer = threading.Thread(target=lambda: statuses.append(lib.monty_wire_session_close(handle)))
    finalizer.start()
    finalizer.join()
    assert statuses == [MONTY_WIRE_OK]
    assert send(lib, handle, open_run_request("1", []), read_turn)[0] == "refused"


# ---------------------------------------------------------------------------
# Isolated sessions
# ---------------------------------------------------------------------------


def open_isolated(lib, path):
    """docs/dart.md's `openIsolated`: the path as NUL-terminated UTF-8, or null."""
    return lib.monty_wire_session_open_isolated(None if path is None else str(path).encode("utf-8"))


def test_run_then_stop_cancels_the_helpers_request_from_another_thread(lib):
    """`runThenStop`: the helper isolate (a thread here) waits in dispatch; the main
    one cancels, again and again, until the helper's answer arrives."""
    session = open_isolated(lib, worker_path())
    replies = queue.Queue()

    def helper(request):
        replies.put(send(lib, session, request, read_isolated_turn))

    helper(open_run_request("while True:\n    pass", []))
    assert replies.get() == ("other", "ok")
    dispatching = threading.Thread(target=helper, args=(start_request([]),))
    dispatching.start()
    statuses = []
    while True:  # Timer.periodic(..., (_) => wire.cancel(session))
        try:
            stopped = replies.get(timeout=0.02)
            break
        except queue.Empty:
            statuses.append(lib.monty_wire_cancel(session))
    dispatching.join()
    assert set(statuses) == {MONTY_WIRE_OK}
    assert stopped[:2] == ("workerEnded", "cancelled") and stopped[3] is None, stopped

    # The session is empty again, and opening again works in a fresh worker.
    assert send(lib, session, start_request([]), read_isolated_turn)[2] == "wrongState"
    assert send(lib, session, open_run_request("6 * 7", []), read_isolated_turn) == ("other", "ok")
    assert send(lib, session, start_request([]), read_isolated_turn) == ("complete", 42)
    assert lib.monty_wire_session_close(session) == MONTY_WIRE_OK


def test_read_isolated_turn_says_how_the_worker_ended(lib):
    session = open_isolated(lib, worker_path())
    send(lib, session, open_run_request("'a' * 10**10", []), read_isolated_turn)
    kind, code, message, exit = send(lib, session, start_request([]), read_isolated_turn)
    assert (kind, code) == ("workerEnded", "workerCrashed"), message
    assert exit["out_of_memory"] and exit["exit_code"] == 65, exit
    lib.monty_wire_session_close(session)


def test_where_no_worker_starts_requests_are_refused_as_worker_unavailable(lib, monkeypatch):
    """Null path and no MONTY_WIRE_WORKER, as on a platform where the host ships no worker."""
    monkeypatch.delenv("MONTY_WIRE_WORKER", raising=False)
    session = open_isolated(lib, None)
    turn = send(lib, session, open_run_request("1", []), read_isolated_turn)
    assert turn[0] == "refused" and turn[2] == "workerUnavailable", turn
    lib.monty_wire_session_close(session)


def test_cancel_on_an_in_process_session_is_not_isolated(lib):
    session = lib.monty_wire_session_open()
    assert lib.monty_wire_cancel(session) == MONTY_WIRE_NOT_ISOLATED
    lib.monty_wire_session_close(session)


# ---------------------------------------------------------------------------
# The hazard the guide warns about
# ---------------------------------------------------------------------------


def test_a_response_read_after_its_free_is_the_next_response(session, lib):
    """What the README's old Dart snippet did: free the buffer, then read through a view of it.

    The freed bytes go back to the allocator, and the next dispatch of a
    response of the same size gets the same address (glibc hands back the chunk
    freed last), so the stale view reads the next response: another session's
    result would read just the same. Nothing crashes and nothing reports an
    error; only reading before freeing, as `send` does, is right.
    """
    send(lib, session, open_run_request("x", ["x"]), read_turn)
    for first, second in [("first", "other"), ("alpha", "omega"), ("ours!", "yours")]:
        requests = [run_request(first), run_request(second)]  # built before anything is freed
        natives = [(ctypes.c_uint8 * len(r)).from_buffer_copy(r) for r in requests]

        buffer = lib.monty_wire_dispatch(session, ctypes.addressof(natives[0]), len(requests[0]))
        address, length = buffer.contents.data, buffer.contents.len
        stale_view = (ctypes.c_uint8 * length).from_address(address)  # asTypedList: a view
        with schema.Response.from_bytes(memoryview(stale_view)) as response:
            assert read_turn(response) == ("complete", first), "read before the free: right"
        lib.monty_wire_buffer_free(buffer)

        next_buffer = lib.monty_wire_dispatch(session, ctypes.addressof(natives[1]), len(requests[1]))
        try:
            assert next_buffer.contents.data == address, "the next response reuses the freed address"
            with schema.Response.from_bytes(memoryview(stale_view)) as response:
                assert read_turn(response) == ("complete", second), "read after the free: the next result"
        finally:
            lib.monty_wire_buffer_free(next_buffer)


def test_values_read_inside_send_outlive_the_buffer(session, lib):
    send(lib, session, open_run_request("x", ["x"]), read_turn)
    first = send(lib, session, run_request("first"), read_turn)
    second = send(lib, session, run_request("other"), read_turn)
    assert (first, second) == (("complete", "first"), ("complete", "other"))


# ---------------------------------------------------------------------------
# The guide's table of 64-bit fields
# ---------------------------------------------------------------------------


def _sixty_four_bit_fields(nodes):
    """(path, type, byte offset) of every Int64 and UInt64 field, groups flattened in."""
    found = set()

    def walk(node, path):
        for field in node.struct.fields:
            if field.which() == "group":
                walk(nodes[field.group.typeId], f"{path}.{field.name}")
            elif field.slot.type.which() in ("int64", "uint64"):
                kind = "Int64" if field.slot.type.which() == "int64" else "UInt64"
                found.add((f"{path}.{field.name}", kind, field.slot.offset * 8))

    for node in nodes.values():
        if node.which() == "struct" and not node.struct.isGroup:
            walk(node, node.displayName.split(":")[-1])
    return found


def test_the_guides_table_of_64_bit_fields_is_the_schemas():
    """docs/dart.md lists every field dart2js cannot read, with its byte offset."""
    from test_schema_evolution import CURRENT, read_schema

    guide = (ROOT / "docs" / "dart.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `([\w.]+)` \| (U?Int64)[^|]* \| (\d+) \|$", guide, re.MULTILINE)
    table = {(path, kind, int(offset)) for path, kind, offset in rows}
    assert len(rows) == len(table)
    assert table == read_schema(CURRENT, _sixty_four_bit_fields)


# ---------------------------------------------------------------------------
# The docs' dart:ffi bindings against the header
# ---------------------------------------------------------------------------

HEADER = ROOT / "include" / "monty_wire.h"
# The files whose Dart samples bind C functions; docs/dart.md binds all of them.
DART_DOCS = ["docs/dart.md", "README.md"]

# The header's C types as dart:ffi declares them: (native type, Dart type).
C_TO_DART = {
    "void": ("Void", "void"),
    "uint32_t": ("Uint32", "int"),
    "int32_t": ("Int32", "int"),
    "uint64_t": ("Uint64", "int"),
    "MontyWireSession": ("Uint64", "int"),  # typedef uint64_t
    "size_t": ("Size", "int"),
    "void *": ("Pointer<Void>", "Pointer<Void>"),
    "const uint8_t *": ("Pointer<Uint8>", "Pointer<Uint8>"),
    "const char *": ("Pointer<Char>", "Pointer<Char>"),
    "struct MontyWireBuffer *": ("Pointer<MontyWireBuffer>", "Pointer<MontyWireBuffer>"),
    "MontyWirePrintCallback": (
        "Pointer<NativeFunction<MontyWirePrintNative>>",
        "Pointer<NativeFunction<MontyWirePrintNative>>",
    ),
}


def _header_code():
    text = HEADER.read_text(encoding="utf-8")
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.DOTALL)
    return re.sub(r"//[^\n]*", "", text)


def _c_type(text):
    """One spelling per C type: `const uint8_t  *` -> `const uint8_t *`."""
    return re.sub(r"\s*\*", " *", " ".join(text.split())).strip()


def _c_params(params):
    """The C types of a parameter list, names dropped."""
    params = " ".join(params.split())
    if params in ("", "void"):
        return []
    return [_c_type(param[: re.search(r"\w+$", param).start()]) for param in params.split(",")]


def header_functions():
    """{name: (return C type, [parameter C types])} of every function the header declares."""
    return {
        match.group(2): (_c_type(match.group(1)), _c_params(match.group(3)))
        for match in re.finditer(r"([A-Za-z_][\w ]*?\s*\*?)\s*\b(monty_wire_\w+)\(([^)]*)\);", _header_code())
    }


def header_callback():
    match = re.search(r"typedef void \(\*MontyWirePrintCallback\)\(([^)]*)\);", _header_code())
    return _c_params(match.group(1))


def header_constants():
    return {
        name: int(value)
        for name, value in re.findall(r"^#define (MONTY_WIRE_\w+) (-?\d+)$", _header_code(), re.MULTILINE)
    }


def _split_top_level(text, separator=","):
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        if char in "<(":
            depth += 1
        elif char in ">)":
            depth -= 1
        elif char == separator and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [" ".join(part.split()) for part in parts if part.strip()]


def _generic_argument(text, open_at):
    """The text between the `<` at `open_at` and its matching `>`, and the index after it."""
    depth = 0
    for i in range(open_at, len(text)):
        if text[i] == "<":
            depth += 1
        elif text[i] == ">":
            depth -= 1
            if depth == 0:
                return text[open_at + 1 : i], i + 1
    raise AssertionError(f"unbalanced <> at {open_at}")


def _function_type(text):
    """`R Function(A, B)` -> (R, [A, B]), parameter names dropped."""
    match = re.fullmatch(r"(.+?) Function\((.*)\)", " ".join(text.split()))
    assert match, text
    params = []
    for param in _split_top_level(match.group(2)):
        # `Pointer<Void> userData` -> `Pointer<Void>`; a bare type stays.
        named = re.fullmatch(r"(.*[>\w])\s+[a-z]\w*", param)
        params.append(named.group(1) if named and not param.endswith(">") else param)
    return match.group(1), params


def dart_bindings(text):
    """[(C name, native function type, Dart function type or None)] of every
    `lookupFunction<N, D>('name')` and `lookup<NativeFunction<N>>('name')`."""
    found = []
    for match in re.finditer(r"lookupFunction<|lookup<NativeFunction<", text):
        inner, after = _generic_argument(text, match.end() - 1)
        name = re.match(r">?\(\s*'(\w+)'\s*\)", text[after:])
        assert name, text[match.start() : after + 40]
        if match.group(0) == "lookupFunction<":
            native, dart = _split_top_level(inner)
            found.append((name.group(1), _function_type(native), _function_type(dart)))
        else:
            found.append((name.group(1), _function_type(inner), None))
    return found


def dart_blocks(text):
    return "\n".join(re.findall(r"^```dart[ \t]*\n(.*?)^```", text, re.MULTILINE | re.DOTALL))


@pytest.mark.parametrize("doc", DART_DOCS)
def test_every_dart_ffi_binding_is_the_headers_signature(doc):
    functions = header_functions()
    assert len(functions) == 8, sorted(functions)
    bindings = dart_bindings(dart_blocks((ROOT / doc).read_text(encoding="utf-8")))
    assert bindings, f"{doc} binds no C function"
    for name, (native_ret, native_params), dart in bindings:
        assert name in functions, f"{doc} binds {name}, which the header does not declare"
        c_ret, c_params = functions[name]
        assert native_ret == C_TO_DART[c_ret][0], (name, native_ret, c_ret)
        assert native_params == [C_TO_DART[t][0] for t in c_params], (name, native_params, c_params)
        if dart is not None:
            dart_ret, dart_params = dart
            assert dart_ret == C_TO_DART[c_ret][1], (name, dart_ret, c_ret)
            assert dart_params == [C_TO_DART[t][1] for t in c_params], (name, dart_params, c_params)
    if doc == "docs/dart.md":
        bound = {name for name, _, dart in bindings if dart is not None}
        assert bound == set(functions), f"the guide's MontyWireBindings lacks {set(functions) - bound}"


def test_the_guides_print_callback_buffer_and_status_codes_are_the_headers():
    guide = dart_blocks((ROOT / "docs" / "dart.md").read_text(encoding="utf-8"))
    native = re.search(r"typedef MontyWirePrintNative = (Void Function\([^)]*\));", guide)
    assert native, "the guide declares MontyWirePrintNative"
    ret, params = _function_type(native.group(1))
    assert ret == "Void"
    assert params == [C_TO_DART[t][0] for t in header_callback()], params

    buffer = re.search(r"final class MontyWireBuffer extends Struct \{(.*?)\n\}", guide, re.DOTALL).group(1)
    assert [" ".join(field.split()) for field in buffer.strip().split(";") if field.strip()] == [
        "external Pointer<Uint8> data",  # const uint8_t *data
        "@Size() external int len",  # size_t len
    ]

    constants = header_constants()
    statuses = {
        "montyWire" + "".join(word.capitalize() for word in name[len("MONTY_WIRE_") :].split("_")): value
        for name, value in constants.items()
        if name != "MONTY_WIRE_PROTOCOL_VERSION"
    }
    declared = {name: int(value) for name, value in re.findall(r"^const (montyWire\w+) = (-?\d+);$", guide, re.M)}
    assert declared == statuses
