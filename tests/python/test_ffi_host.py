"""Host test: the C ABI driven exactly as a Dart (dart:ffi) host drives it.

This proves the wire against the C++ reference implementation of Cap'n Proto
(pycapnp) through the library's C entry points, with nothing from the Rust
side but the compiled cdylib (and, for isolated sessions, the `monty-wire`
worker binary):

* requests are built with pycapnp from `schema/monty_wire.capnp` alone and
  handed to `monty_wire_dispatch` as raw pointers (also at odd addresses);
* each response is read in place, zero copy, from the buffer the library
  returned (a memoryview over its memory, never a copy of the bytes), and the
  buffer is freed with `monty_wire_buffer_free` once read;
* the print callback is a ctypes function pointer called during dispatch;
* every test that takes a session runs against both kinds (`host` is
  parametrised in conftest.py): in process, and isolated in a worker process.

Values cross as node arenas (post-order: a node's children have lower
indices), encoded and decoded by small helpers written from the schema; those
and the host itself live in conftest.py, shared with the other modules.
"""

import ctypes
import math

import pytest

from conftest import PRINT_CALLBACK, ExternalFunction, expect, ready, request, schema, write_inputs

# ---------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------


def test_protocol_version_matches_the_schema(lib):
    assert schema.protocolVersion == 3
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
    # Heap bytes are counted where monty's allocator is the process's own:
    # in a worker process, not in the host's (the README, Usage).
    if host.isolated:
        assert usage["memory"] == "bytes"
        assert usage["memory_bytes"] > 0
    else:
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


def test_a_closed_handle_is_an_unknown_session(new_host):
    host = new_host()
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
    nodes[0].intValue = 1
    items = nodes[1].init("list", 1)
    items[0] = 5  # there is no node 5
    inputs.roots = [1]
    error = protocol_error(host.send(message))
    assert error["code"] == "invalidValue"

    message = request()
    inputs = message.init("start")
    inputs.init("nodes", 1)[0].intValue = 1
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
