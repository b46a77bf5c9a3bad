#!/usr/bin/env python3
"""monty-wire's isolated sessions from a Python host, against pydantic-monty.

pydantic-monty (upstream monty's own Python binding, PyPI `pydantic-monty`)
also runs code in worker processes: a pool of `monty subprocess` workers
spoken to in framed protobuf over pipes, driven by a compiled extension. This
script measures both from the same Python process, in one run, interleaved
sample by sample:

* cold start: open a session and get the result of a trivial program
  (`1 + 2`), then close it. Both pools are already started: monty-wire's by a
  first isolated session (its pool then keeps workers ready), pydantic-monty's
  by `with Monty()`. The figure is what a host pays per new session once its
  pool is running, not the first process start.
* turn loop: a Python loop making 10,000 calls to a host function, each
  answered by the host (`total += f(i)`, the host returns `i + 1`), timed from
  compiling the program to its result; the session is opened before and
  closed after the timing.

Each sample runs every contender once, starting with a different one each
time; Python's garbage collector does not run during a timing.

monty-wire in process is measured too, for reference. The monty-wire host is
the one the tests use (tests/python/conftest.py), trimmed to what these
programs need: requests built with pycapnp, handed to monty_wire_dispatch,
each response read in place from the library's buffer, then freed. It runs
the release build of the library and of its worker.

    cargo build --release --lib --bin monty-wire
    .venv/bin/pip install -r tests/python/requirements.txt -r benches/python/requirements.txt
    .venv/bin/python benches/python/isolated_sessions.py [--cold-samples N] [--loop-samples N]

It prints a markdown table: medians, and each ratio divided within this run.
"""

import argparse
import ctypes
import gc
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import capnp

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "python"))
from conftest import load_library  # noqa: E402  (the path above first)
capnp.remove_import_hook()
schema = capnp.load(str(ROOT / "schema" / "monty_wire.capnp"))

CALLS = 10_000
TURN_LOOP = "total = 0\nfor i in range(10_000):\n    total += f(i)\ntotal"
EXPECTED = CALLS * (CALLS + 1) // 2
TRIVIAL = "1 + 2"


# ---------------------------------------------------------------------------
# monty-wire, through its C ABI
# ---------------------------------------------------------------------------


class MontyWire:
    def __init__(self, profile):
        names = {"darwin": "libmonty_wire.dylib", "win32": "monty_wire.dll"}
        target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
        self.library = target / profile / names.get(sys.platform, "libmonty_wire.so")
        self.worker = target / profile / ("monty-wire.exe" if sys.platform == "win32" else "monty-wire")
        # The test suite's declarations of the C entry points; the request is
        # read in place from the bytes object, during the call only.
        self.lib = load_library(self.library)
        self.worker_path = os.fsencode(self.worker)

    def open(self, isolated):
        if isolated:
            return self.lib.monty_wire_session_open_isolated(self.worker_path)
        return self.lib.monty_wire_session_open()

    def close(self, session):
        self.lib.monty_wire_session_close(session)

    def send(self, session, data, read):
        """Returns what `read` makes of the response, read in place, then frees it."""
        buffer = self.lib.monty_wire_dispatch(session, data, len(data))
        try:
            header = buffer.contents
            view = memoryview((ctypes.c_uint8 * header.len).from_address(header.data))
            with schema.Response.from_bytes(view) as response:
                return read(response)
        finally:
            self.lib.monty_wire_buffer_free(buffer)


def open_run_request(code, input_names=(), max_suspensions=None):
    message = schema.Request.new_message()
    open_run = message.init("openRun")
    open_run.code = code
    open_run.inputNames = list(input_names)
    if max_suspensions is not None:
        open_run.init("limits").maxSuspensions = max_suspensions
    return message.to_bytes()


def start_request(function_name):
    message = schema.Request.new_message()
    inputs = message.init("start")
    function = inputs.init("nodes", 1)[0].init("function")
    function.name = function_name
    function.docstring.none = None
    inputs.roots = [0]
    return message.to_bytes()


RUN_REQUEST = schema.Request.new_message(run={}).to_bytes()


def resume_request(value):
    message = schema.Request.new_message()
    result = message.init("resumeCall").init("value")
    result.init("nodes", 1)[0].intValue = value
    result.root = 0
    return message.to_bytes()


def read_turn(response):
    """("call", first int argument), ("done", int result), or a failure."""
    arm = response.which()
    if arm == "functionCall":
        args = response.functionCall.args
        return "call", args.nodes[args.positional[0]].intValue
    if arm == "complete":
        value = response.complete
        return "done", value.nodes[value.root].intValue
    if arm == "ok":
        return "ok", None
    raise RuntimeError(f"unexpected response {arm}: {response}")


def wire_cold(wire, isolated):
    session = wire.open(isolated)
    try:
        wire.send(session, open_run_request(TRIVIAL), read_turn)
        kind, value = wire.send(session, RUN_REQUEST, read_turn)
    finally:
        wire.close(session)
    assert (kind, value) == ("done", 3), (kind, value)


def wire_turn_loop(wire, isolated):
    """Times compile-to-result of the turn loop in a session opened before."""
    session = wire.open(isolated)
    try:
        started = time.perf_counter()
        assert wire.send(session, open_run_request(TURN_LOOP, ["f"], 2 * CALLS), read_turn)[0] == "ok"
        kind, value = wire.send(session, start_request("f"), read_turn)
        while kind == "call":
            kind, value = wire.send(session, resume_request(value + 1), read_turn)
        elapsed = time.perf_counter() - started
    finally:
        wire.close(session)
    assert (kind, value) == ("done", EXPECTED), (kind, value)
    return elapsed


RAW_LOOP = "for i in range(10_000):\n    f(i)\n'done'"
RAW_ANSWER = resume_request(1)


def wire_turn_loop_library_only(wire, isolated):
    """The same 10,000 turns with the Python codec taken out: one answer built
    before the loop, each response freed unread. What is left is the library
    (and, isolated, the worker and the channel to it) and the interpreter."""
    session = wire.open(isolated)
    lib = wire.lib
    try:
        wire.send(session, open_run_request(RAW_LOOP, ["f"], 2 * CALLS), read_turn)
        started = time.perf_counter()
        lib.monty_wire_buffer_free(lib.monty_wire_dispatch(session, START_F, len(START_F)))
        for _ in range(CALLS - 1):
            lib.monty_wire_buffer_free(lib.monty_wire_dispatch(session, RAW_ANSWER, len(RAW_ANSWER)))
        kind = wire.send(session, RAW_ANSWER, lambda r: r.which())
        elapsed = time.perf_counter() - started
    finally:
        wire.close(session)
    assert kind == "complete", kind
    return elapsed


START_F = start_request("f")


# ---------------------------------------------------------------------------
# pydantic-monty
# ---------------------------------------------------------------------------


def pm_cold(pool):
    with pool.checkout() as session:
        value = session.feed_run(TRIVIAL)
    assert value == 3, value


def pm_turn_loop_resume(pool):
    """The host answers each call itself: feed_start, then resume per call."""
    from pydantic_monty import FunctionSnapshot, MontyComplete

    with pool.checkout(limits={"max_suspensions": 2 * CALLS}) as session:
        started = time.perf_counter()
        snapshot = session.feed_start(TURN_LOOP)
        while isinstance(snapshot, FunctionSnapshot):
            snapshot = snapshot.resume({"return_value": snapshot.args[0] + 1})
        elapsed = time.perf_counter() - started
    assert isinstance(snapshot, MontyComplete) and snapshot.output == EXPECTED, snapshot
    return elapsed


def pm_turn_loop_lookup(pool):
    """The binding answers each call from `external_lookup` (feed_run)."""
    with pool.checkout(limits={"max_suspensions": 2 * CALLS}) as session:
        started = time.perf_counter()
        value = session.feed_run(TURN_LOOP, external_lookup={"f": lambda i: i + 1})
        elapsed = time.perf_counter() - started
    assert value == EXPECTED, value
    return elapsed


# ---------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------


def timed(fn, *args):
    started = time.perf_counter()
    fn(*args)
    return time.perf_counter() - started


def fmt(seconds):
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.0f} µs"


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cold-samples", type=int, default=300)
    parser.add_argument("--loop-samples", type=int, default=15)
    parser.add_argument("--profile", default="release", help="the cargo profile directory of the library")
    args = parser.parse_args(argv)

    import pydantic_monty
    from pydantic_monty._binary import find_monty_binary

    wire = MontyWire(args.profile)
    for path in (wire.library, wire.worker):
        if not path.exists():
            sys.exit(f"{path} is missing: cargo build --release --lib --bin monty-wire")

    with pydantic_monty.Monty() as pool:
        # Warm-up, and each result checked once: the first isolated session
        # starts monty-wire's pool; then both pools settle.
        for _ in range(3):
            wire_cold(wire, True)
            wire_cold(wire, False)
            pm_cold(pool)
        wire_turn_loop(wire, True)
        wire_turn_loop(wire, False)
        wire_turn_loop_library_only(wire, True)
        wire_turn_loop_library_only(wire, False)
        pm_turn_loop_resume(pool)
        pm_turn_loop_lookup(pool)
        time.sleep(1.0)

        # Each sample runs the three in turn, starting with a different one
        # each time, so no one always runs first (or right after another).
        # The collector runs between samples, not during them.
        contenders = [
            ("wire_isolated", lambda: wire_cold(wire, True)),
            ("pm", lambda: pm_cold(pool)),
            ("wire_in_process", lambda: wire_cold(wire, False)),
        ]
        cold = {name: [] for name, _ in contenders}
        gc.disable()
        for sample in range(args.cold_samples):
            if sample % 50 == 0:
                gc.collect()
            for k in range(len(contenders)):
                name, run = contenders[(sample + k) % len(contenders)]
                cold[name].append(timed(run))
        gc.enable()

        loops = [
            ("wire_isolated", lambda: wire_turn_loop(wire, True)),
            ("pm_resume", lambda: pm_turn_loop_resume(pool)),
            ("pm_lookup", lambda: pm_turn_loop_lookup(pool)),
            ("wire_in_process", lambda: wire_turn_loop(wire, False)),
            ("lib_isolated", lambda: wire_turn_loop_library_only(wire, True)),
            ("lib_in_process", lambda: wire_turn_loop_library_only(wire, False)),
        ]
        loop = {name: [] for name, _ in loops}
        for sample in range(args.loop_samples):
            for k in range(len(loops)):
                name, run = loops[(sample + k) % len(loops)]
                gc.collect()
                gc.disable()
                loop[name].append(run())
                gc.enable()

    c = {name: statistics.median(samples) for name, samples in cold.items()}
    t = {name: statistics.median(samples) for name, samples in loop.items()}

    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    print(f"monty-wire {commit} ({args.profile}), pydantic-monty {pydantic_monty.__version__}"
          f" (worker {find_monty_binary()}), Python {platform.python_version()}, {platform.machine()},"
          f" {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    print(f"{args.cold_samples} cold-start samples, {args.loop_samples} turn-loop samples; medians\n")
    print("| measurement | monty-wire isolated | pydantic-monty | pydantic-monty / monty-wire isolated | monty-wire in process (reference) |")
    print("|---|---|---|---|---|")
    print(f"| cold start: open, `1 + 2`, close (pools started) | {fmt(c['wire_isolated'])} | {fmt(c['pm'])} "
          f"| **{c['pm'] / c['wire_isolated']:.2f}x** | {fmt(c['wire_in_process'])} |")
    print(f"| 10,000-call turn loop, host answers each call (pydantic-monty: `feed_start` + `resume`) "
          f"| {fmt(t['wire_isolated'])} | {fmt(t['pm_resume'])} | **{t['pm_resume'] / t['wire_isolated']:.2f}x** "
          f"| {fmt(t['wire_in_process'])} |")
    print(f"| the same loop, pydantic-monty answering from `external_lookup` (`feed_run`) "
          f"| {fmt(t['wire_isolated'])} | {fmt(t['pm_lookup'])} | **{t['pm_lookup'] / t['wire_isolated']:.2f}x** "
          f"| {fmt(t['wire_in_process'])} |")
    print()
    print(f"per call in the turn loop: monty-wire isolated {fmt(t['wire_isolated'] / CALLS)}, "
          f"pydantic-monty {fmt(t['pm_resume'] / CALLS)} (resume) / {fmt(t['pm_lookup'] / CALLS)} (external_lookup), "
          f"monty-wire in process {fmt(t['wire_in_process'] / CALLS)}")
    print(f"isolated / in process (monty-wire): cold start {c['wire_isolated'] / c['wire_in_process']:.2f}x, "
          f"turn loop {t['wire_isolated'] / t['wire_in_process']:.2f}x")
    print(f"the turn loop without the Python codec (one answer built before the loop, responses freed unread): "
          f"monty-wire isolated {fmt(t['lib_isolated'] / CALLS)} per call, in process {fmt(t['lib_in_process'] / CALLS)}; "
          f"so the host's pycapnp encoding and reading take about {fmt((t['wire_isolated'] - t['lib_isolated']) / CALLS)} of "
          f"the isolated {fmt(t['wire_isolated'] / CALLS)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
