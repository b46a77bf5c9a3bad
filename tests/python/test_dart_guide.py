"""The steps of the Dart host guide (docs/dart.md), taken through ctypes.

No Dart SDK runs here, so this module does what the guide's samples do, call
for call, through the same six C functions: `send` copies the request into
native memory, dispatches, hands the response reader to a `read` function
while the buffer is alive and frees it afterwards; the print callback copies
its text inside the call; sessions are closed explicitly or from another
thread, as a `NativeFinalizer` does. It also shows the hazard the guide warns
about: a response read after its buffer was freed reads the next response.
"""

import ctypes
import re
import threading

import pytest

from conftest import PRINT_CALLBACK, ROOT, open_session, read_arguments, read_value, schema

MONTY_WIRE_OK, MONTY_WIRE_UNKNOWN_SESSION, MONTY_WIRE_SESSION_BUSY = 0, -1, -2


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
        return ("refused", response.protocolError.message)
    return ("other", arm)


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
