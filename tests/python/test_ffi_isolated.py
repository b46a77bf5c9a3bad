"""Host test: what only an isolated session does, through the C ABI.

An isolated session (`monty_wire_session_open_isolated`) runs its engine in a
`monty-wire worker` process. Every protocol test of test_ffi_host.py and
test_ffi_repl.py already runs against one (conftest.py parametrises them);
this module covers the outcomes a process boundary adds: a request cancelled
from another thread, a worker that goes past its memory ceiling or its
deadline, a worker binary that cannot start, and `monty_wire_cancel` on
sessions it does not apply to. After each, the same handle works again.
"""

import threading

import pytest

from conftest import (
    MONTY_WIRE_NOT_ISOLATED,
    MONTY_WIRE_OK,
    MONTY_WIRE_UNKNOWN_SESSION,
    PRINT_CALLBACK,
    Host,
    expect,
    ready,
    request,
)


@pytest.fixture
def isolated(lib):
    host = Host(lib, "isolated").open()
    yield host
    host.close()


def protocol_error(response, code):
    error = expect(response, "protocolError")
    assert error["code"] == code, error
    return error


def works_again(host):
    """After its worker ended the session is empty; opening again works."""
    protocol_error(host.run(), "wrongState")
    ready(host, "6 * 7")
    assert expect(host.run(), "complete") == 42


RUNAWAY = "print('looping')\nwhile True: pass"


def run_in_background(host):
    """Runs `host`'s program on another thread, as a Dart host runs dispatch
    on a helper isolate, and returns once it is in flight: its print arrived
    through the callback, which the library calls during the request."""
    started = threading.Event()
    # Kept with the host: the callback must live while the session may call it.
    host.on_print = PRINT_CALLBACK(lambda user_data, stream, text, length: started.set())
    assert host.lib.monty_wire_set_print_callback(host.handle, host.on_print, None) == MONTY_WIRE_OK
    responses = []
    # ctypes lets go of the GIL during the call, as dart:ffi lets other
    # isolates run: this thread goes on while the other waits in dispatch.
    thread = threading.Thread(target=lambda: responses.append(host.run()))
    thread.start()
    assert started.wait(60), "the program did not start"

    def answer():
        thread.join()
        (response,) = responses
        return response

    return answer


def test_cancel_from_another_thread_stops_a_runaway_loop(isolated):
    ready(isolated, RUNAWAY)
    # Idle: nothing to stop, and the session is untouched.
    assert isolated.cancel() == MONTY_WIRE_OK
    answer = run_in_background(isolated)
    assert isolated.cancel() == MONTY_WIRE_OK
    error = protocol_error(answer(), "cancelled")
    assert error["worker_exit"] is None
    works_again(isolated)


def test_closing_during_a_request_cancels_it(lib):
    host = Host(lib, "isolated").open()
    ready(host, RUNAWAY)
    answer = run_in_background(host)
    # Closing never waits on a worker: the request in flight is cancelled.
    assert host.close() == MONTY_WIRE_OK
    protocol_error(answer(), "cancelled")
    assert host.close() == MONTY_WIRE_UNKNOWN_SESSION


def test_a_memory_bomb_ends_the_worker_and_the_next_request_works(isolated):
    # Without maxMemory the worker's ceiling is 2 GiB: one 10 GB string ends it.
    ready(isolated, "'a' * 10**10")
    error = protocol_error(isolated.run(), "workerCrashed")
    exit = error["worker_exit"]
    assert exit["out_of_memory"], exit
    assert exit["exit_code"] == 65, exit
    assert exit["signal"] == 0, exit
    assert "memory" in exit["stderr_tail"], exit
    works_again(isolated)


def test_under_max_memory_the_same_bomb_is_a_memory_error_and_the_worker_lives(isolated):
    message = request()
    open_run = message.init("openRun")
    open_run.code = "'a' * 10**10"
    open_run.init("limits").maxMemory.bytes = 100 << 20
    expect(isolated.send(message), "ok")
    assert expect(isolated.run(), "pythonError")["type"] == "memoryError"
    # The run is still there: the worker did not end.
    assert expect(isolated.run(), "pythonError")["type"] == "memoryError"


def test_one_long_operation_ends_at_the_deadline(isolated):
    message = request()
    open_run = message.init("openRun")
    open_run.code = "x = 10**10**8"
    open_run.init("limits").maxFeedDuration.nanos = 300_000_000
    expect(isolated.send(message), "ok")
    response = isolated.run()
    # One operation reaches no time check: the library kills the worker one
    # second (the grace) past the limit. monty may still reach a check first.
    if response["kind"] == "pythonError":
        assert response["body"]["type"] == "timeoutError"
    else:
        protocol_error(response, "deadlineExceeded")
        works_again(isolated)


def test_cancel_is_refused_for_in_process_closed_and_unknown_sessions(lib, isolated):
    in_process = Host(lib, "in_process").open()
    assert in_process.cancel() == MONTY_WIRE_NOT_ISOLATED
    in_process.close()
    assert in_process.cancel() == MONTY_WIRE_UNKNOWN_SESSION
    assert lib.monty_wire_cancel(0) == MONTY_WIRE_UNKNOWN_SESSION
    isolated.close()
    assert isolated.cancel() == MONTY_WIRE_UNKNOWN_SESSION


def test_a_worker_that_cannot_start_answers_worker_unavailable(lib, monkeypatch):
    handle = lib.monty_wire_session_open_isolated(b"/nonexistent/monty-wire")
    host = Host(lib, "isolated")
    host.handle = handle
    for _ in range(2):  # every request tries again, and says why
        error = protocol_error(host.detect_continuation("x = ("), "workerUnavailable")
        assert "/nonexistent/monty-wire" in error["message"], error
    host.close()

    # No path: the library reads MONTY_WIRE_WORKER when the session opens.
    monkeypatch.delenv("MONTY_WIRE_WORKER", raising=False)
    host.handle = lib.monty_wire_session_open_isolated(None)
    error = protocol_error(host.detect_continuation("x = ("), "workerUnavailable")
    assert "MONTY_WIRE_WORKER" in error["message"], error
    host.close()


def test_without_a_path_the_worker_comes_from_the_environment(lib, monkeypatch):
    from conftest import worker_path

    monkeypatch.setenv("MONTY_WIRE_WORKER", str(worker_path()))
    host = Host(lib, "isolated")
    host.handle = lib.monty_wire_session_open_isolated(None)
    try:
        ready(host, "6 * 7")
        assert expect(host.run(), "complete") == 42
    finally:
        host.close()
