"""Host test: REPL sessions, dumps (also finished in another process), dump
seals, type checking and limits, through the library's C entry points.

Requests are built with pycapnp from `schema/monty_wire.capnp` and every
response is decoded in place from the library's buffer (see conftest.py).
Every test that takes a session runs against both kinds, in process and
isolated (conftest.py). The last tests drive the `monty-wire` command line as
a terminal user would.
"""

import json
import subprocess
import sys
import textwrap

import pytest

from conftest import ROOT, ExternalFunction, Host, expect, library_path, schema

# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------


def open_repl(new_host, **options):
    host = new_host()
    expect(host.open_repl(**options), "ok")
    return host


@pytest.fixture
def repl(new_host):
    return open_repl(new_host)


@pytest.fixture
def empty(host):
    """A session with nothing opened in it yet."""
    return host


def protocol_error(response, code):
    error = expect(response, "protocolError")
    assert error["code"] == code, error
    return error["message"]


def still_empty(host):
    """A refused load left the session empty: REPL requests are refused."""
    assert protocol_error(host.feed_run("1"), "wrongState")


# ---------------------------------------------------------------------------
# 1. A REPL
# ---------------------------------------------------------------------------


def test_variables_persist_and_an_error_keeps_the_globals(repl):
    assert expect(repl.feed_run("x = 40"), "complete") is None
    assert expect(repl.feed_run("def add(n):\n    return x + n"), "complete") is None
    assert expect(repl.feed_run("add(2)"), "complete") == 42

    exc = expect(repl.feed_run("x = 1\ny = 'set before'\nraise ValueError('kept')"), "pythonError")
    assert exc["type"] == "valueError"
    assert exc["message"] == "kept"
    assert exc["traceback"][-1]["line"] == 3
    # The session lives on, with everything the failed snippet set before it raised.
    assert expect(repl.feed_run("add(1)"), "complete") == 2
    response = repl.feed_run("print('still here')\n(x, y)")
    assert expect(response, "complete") == (1, "set before")
    assert response["output"] == [("stdout", "still here\n")]


def test_list_and_call_functions(repl):
    expect(
        repl.feed_run("def double(n):\n    return n * 2\ndef pair(a, b):\n    return [b, a]\nnot_a_function = 3"),
        "complete",
    )
    assert sorted(expect(repl.list_functions(), "functionNames")) == ["double", "pair"]

    assert expect(repl.call_function("double", 21), "complete") == 42
    # Several positional arguments in one `Inputs` arena, containers included.
    assert expect(repl.call_function("pair", [1, (2, 3)], {"k": None}), "complete") == [{"k": None}, [1, (2, 3)]]
    # A function that raises, and one that does not exist.
    assert expect(repl.call_function("double"), "pythonError")["type"] == "typeError"
    assert expect(repl.call_function("nope"), "pythonError")["type"] == "nameError"
    # The session is still idle and usable.
    assert expect(repl.feed_run("double(not_a_function)"), "complete") == 6


# ---------------------------------------------------------------------------
# 2. Continuation detection
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "source, mode",
    [("x = 1", "complete"), ("foo(1,", "incompleteImplicit"), ("def f():", "incompleteBlock")],
)
def test_detect_continuation_on_an_empty_session(empty, source, mode):
    assert expect(empty.detect_continuation(source), "continuation") == mode
    # Asking changes nothing: the session is still empty.
    still_empty(empty)


# ---------------------------------------------------------------------------
# 3. An external function keeps its binding across feeds
# ---------------------------------------------------------------------------


def test_an_external_function_in_a_comprehension_keeps_its_binding(repl):
    code = "[f(i) for i in range(2)]"
    for feed in range(2):
        # Only the first feed passes `f`; the second relies on the binding.
        inputs = {"f": ExternalFunction("f")} if feed == 0 else None
        response = repl.feed_start(code, inputs)
        calls = []
        while response["kind"] == "functionCall":
            call = response["body"]
            assert call["name"] == "f", f"feed {feed}"
            calls.append(call["positional"])
            response = repl.resume_call(call["positional"][0] * 10 + feed)
        assert calls == [[0], [1]], f"feed {feed}: {response}"
        assert expect(response, "complete") == [feed, 10 + feed]


# ---------------------------------------------------------------------------
# 4. A dump with two pending futures, finished in another process
# ---------------------------------------------------------------------------

GATHER = (
    "import asyncio\n"
    "async def main():\n"
    "    a, b = await asyncio.gather(f(1), f(2))\n"
    "    return a * 10 + b\n"
    "await main()"
)

# The child: loads the library and pycapnp itself (through conftest.py, with
# no pytest fixture and no build), opens a session of the parent's kind, loads
# the dump and resolves the futures in the reverse order of the calls.
CHILD = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path

    sys.path.insert(0, sys.argv[1])
    from conftest import Host, load_library

    work = Path(sys.argv[3])
    lib = load_library(sys.argv[2])
    host = Host(lib, sys.argv[4]).open()
    steps = []
    steps.append(host.set_dump_key((work / "key.bin").read_bytes())["kind"])
    loaded = host.load_session((work / "dump.bin").read_bytes())
    steps.append(loaded["kind"])
    calls = json.loads((work / "calls.json").read_text())  # [[call id, argument], ...]
    pending = []
    response = None
    for call_id, argument in reversed(calls):
        response = host.resolve_futures([(call_id, argument + 2)])
        steps.append(response["kind"])
        if response["kind"] == "resolveFutures":
            pending.append(response["body"]["pending_call_ids"])
    print(json.dumps({"steps": steps, "pending": pending, "result": response["body"]}))
    host.close()
    """
)


def test_a_dump_awaiting_two_futures_finishes_in_another_process(repl, tmp_path):
    key = b"a key shared by both processes"
    expect(repl.set_dump_key(key), "ok")
    expect(repl.feed_run("unrelated = 'global'"), "complete")

    response = repl.feed_start(GATHER, {"f": ExternalFunction("f")})
    calls = []
    while response["kind"] == "functionCall":
        call = response["body"]
        assert call["name"] == "f"
        calls.append((call["call_id"], call["positional"][0]))
        response = repl.resume_call_future()
    assert sorted(argument for _, argument in calls) == [1, 2]
    pending = expect(response, "resolveFutures")["pending_call_ids"]
    assert sorted(pending) == sorted(call_id for call_id, _ in calls)

    dump = expect(repl.dump_session(), "dump")
    with schema.Dump.from_bytes(dump) as envelope:
        assert str(envelope.kind) == "replSuspended"
        assert envelope.seal.which() == "hmacSha256"
    (tmp_path / "dump.bin").write_bytes(dump)
    (tmp_path / "key.bin").write_bytes(key)
    (tmp_path / "calls.json").write_text(json.dumps(calls))

    child = subprocess.run(
        [
            sys.executable,
            "-c",
            CHILD,
            str(ROOT / "tests" / "python"),
            str(library_path()),
            str(tmp_path),
            repl.kind,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == 0, child.stderr
    report = json.loads(child.stdout.strip().splitlines()[-1])
    assert report["steps"] == ["ok", "ok", "resolveFutures", "complete"], report
    # After the later call is resolved, only the earlier one is pending.
    first_call_id = calls[0][0]
    assert report["pending"] == [[first_call_id]], report
    # f(1) -> 3, f(2) -> 4: a * 10 + b.
    assert report["result"] == 34

    # The parent's session is untouched by its dump: it can finish too.
    response = repl.resolve_futures([(call_id, argument + 5) for call_id, argument in calls])
    assert expect(response, "complete") == 67
    assert expect(repl.feed_run("unrelated"), "complete") == "global"


# ---------------------------------------------------------------------------
# 5. Sealed dumps
# ---------------------------------------------------------------------------


@pytest.fixture
def sealed(new_host):
    """A sealed dump of an idle REPL holding `secret = 42`, and its key."""
    host = open_repl(new_host)
    expect(host.feed_run("secret = 42"), "complete")
    expect(host.set_dump_key(b"k1"), "ok")
    dump = expect(host.dump_session(), "dump")
    host.close()
    return dump, b"k1"


def load_with_key(new_host, key, dump):
    host = new_host()
    expect(host.set_dump_key(key), "ok")
    return host, host.load_session(dump)


def test_a_sealed_dump_loads_under_its_key(new_host, sealed):
    dump, key = sealed
    host, response = load_with_key(new_host, key, dump)
    expect(response, "ok")
    assert expect(host.feed_run("secret"), "complete") == 42
    host.close()


def test_a_tampered_payload_is_refused_by_the_seal(new_host, sealed):
    dump, key = sealed
    with schema.Dump.from_bytes(dump) as envelope:
        assert envelope.seal.which() == "hmacSha256"
        payload = bytes(envelope.payload)
    start = dump.find(payload)
    assert start > 0 and len(payload) > 16
    tampered = bytearray(dump)
    tampered[start + len(payload) // 2] ^= 0x01
    with schema.Dump.from_bytes(bytes(tampered)) as envelope:
        # Still a well-formed envelope: only the payload changed.
        assert bytes(envelope.payload) != payload

    host, response = load_with_key(new_host, key, bytes(tampered))
    message = protocol_error(response, "invalidDump")
    assert "seal" in message, message
    still_empty(host)
    host.close()


def test_a_dump_under_another_key_is_refused(new_host, sealed):
    dump, _ = sealed
    host, response = load_with_key(new_host, b"k2", dump)
    message = protocol_error(response, "invalidDump")
    assert "seal" in message, message
    still_empty(host)
    host.close()


def test_an_unsealed_dump_into_a_keyed_session_is_refused(new_host, repl):
    expect(repl.feed_run("secret = 42"), "complete")
    unsealed = expect(repl.dump_session(), "dump")
    with schema.Dump.from_bytes(unsealed) as envelope:
        assert envelope.seal.which() == "none"
    host, response = load_with_key(new_host, b"k1", unsealed)
    message = protocol_error(response, "invalidDump")
    assert "not sealed" in message, message
    still_empty(host)
    host.close()


# ---------------------------------------------------------------------------
# 6. Type checking in every format
# ---------------------------------------------------------------------------

FORMATS = ["full", "concise", "azure", "json", "jsonLines", "rdjson", "pylint", "gitlab", "github"]
BAD_CALL = "def f(x: int) -> int:\n    return x\nf('a')\n"


@pytest.mark.parametrize("format", FORMATS)
def test_type_check_in_every_format(empty, format):
    report = expect(empty.type_check(BAD_CALL, format=format), "typeCheckReport")
    (diagnostic,) = report["diagnostics"]
    assert diagnostic["code"] == "invalid-argument-type"
    assert diagnostic["severity"] == "error"
    assert diagnostic["file"] == "main.py"
    assert diagnostic["start_line"] == 3
    assert diagnostic["message"]
    assert (diagnostic["start_column"], diagnostic["end_line"], diagnostic["end_column"]) == (3, 3, 6)
    assert_rendered(format, report["rendered"])
    # Checking runs nothing and leaves the session empty.
    still_empty(empty)


def assert_rendered(format, rendered):
    """`rendered` is `format`'s rendering of BAD_CALL's one diagnostic:
    rule invalid-argument-type, main.py line 3, columns 3 to 6."""
    rule = "invalid-argument-type"
    if format == "full":
        assert rendered.startswith(f"error[{rule}]: "), rendered
        assert "--> main.py:3:3" in rendered, rendered
    elif format == "concise":
        assert rendered.startswith(f"main.py:3:3: error[{rule}] "), rendered
    elif format == "azure":
        assert rendered.startswith("##vso[task.logissue type=error;"), rendered
        assert "main.py;linenumber=3;columnnumber=3;" in rendered, rendered
        assert f"code={rule};" in rendered, rendered
    elif format == "json":
        (diagnostic,) = json.loads(rendered)
        assert diagnostic["code"] == rule
        assert diagnostic["filename"].endswith("main.py")
        assert diagnostic["location"] == {"row": 3, "column": 3}
        assert diagnostic["end_location"] == {"row": 3, "column": 6}
    elif format == "jsonLines":
        (diagnostic,) = [json.loads(line) for line in rendered.splitlines() if line.strip()]
        assert diagnostic["code"] == rule
        assert diagnostic["location"] == {"row": 3, "column": 3}
    elif format == "rdjson":
        (diagnostic,) = json.loads(rendered)["diagnostics"]
        assert diagnostic["code"]["value"] == rule
        assert diagnostic["location"]["path"].endswith("main.py")
        assert diagnostic["location"]["range"] == {"start": {"line": 3, "column": 3}, "end": {"line": 3, "column": 6}}
    elif format == "pylint":
        assert rendered.startswith(f"main.py:3: [{rule}] "), rendered
    elif format == "gitlab":
        (issue,) = json.loads(rendered)
        assert issue["check_name"] == rule
        assert issue["location"]["path"] == "main.py"
        assert issue["location"]["positions"] == {"begin": {"line": 3, "column": 3}, "end": {"line": 3, "column": 6}}
        assert issue["fingerprint"]
    elif format == "github":
        # A workflow command: `::error <properties>::<message>`.
        assert rendered.startswith("::error "), rendered
        properties, message = rendered[len("::error ") :].split("::", 1)
        assert f"title=monty ({rule})" in properties, properties
        assert "main.py,line=3,col=3,endLine=3,endColumn=6" in properties, properties
        assert rule in message, message
    else:
        raise AssertionError(f"no check for {format}")


def test_clean_code_checks_clean(empty):
    report = expect(empty.type_check("def f(x: int) -> int:\n    return x\nf(1)\n"), "typeCheckReport")
    assert report == {"diagnostics": [], "rendered": ""}


# ---------------------------------------------------------------------------
# 7. A type-checking REPL
# ---------------------------------------------------------------------------


def test_a_type_checking_repl_refuses_a_bad_snippet_without_running_it(new_host):
    host = open_repl(new_host, type_check={"format": "concise"})
    expect(host.feed_run("y: int = 1"), "complete")

    response = host.feed_run("print('ran')\nx: int = 'a'")
    report = expect(response, "typeCheckReport")
    assert [d["code"] for d in report["diagnostics"]] == ["invalid-assignment"], report
    assert report["diagnostics"][0]["start_line"] == 2
    assert report["rendered"]
    assert response["output"] == [], "the snippet did not run"
    # x was never assigned (checked without the checker, which would refuse `x`).
    exc = expect(host.feed_run("x", skip_type_check=True), "pythonError")
    assert exc["type"] == "nameError"
    # The same refusal holds for feedStart, and good snippets still run.
    expect(host.feed_start("x: int = 'a'"), "typeCheckReport")
    assert expect(host.feed_run("y + 1"), "complete") == 2
    host.close()


# ---------------------------------------------------------------------------
# 8. Limits
# ---------------------------------------------------------------------------


def test_limits_stop_a_runaway_snippet_and_the_session_stays_usable(new_host):
    host = open_repl(new_host, limits={"maxFeedDuration": 200_000_000})
    expect(host.feed_run("kept = 'yes'"), "complete")
    for feed in (host.feed_run, host.feed_start):
        exc = expect(feed("while True: pass"), "pythonError")
        assert exc["type"] == "timeoutError"
    assert expect(host.feed_run("kept"), "complete") == "yes"
    assert expect(host.feed_run("sum(range(10))"), "complete") == 45
    host.close()


# ---------------------------------------------------------------------------
# 9. The command line
# ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def cli(lib):
    # The `lib` fixture builds the binary too: it is the isolated sessions' worker.
    suffix = ".exe" if sys.platform == "win32" else ""
    return ROOT / "target" / "debug" / f"monty-wire{suffix}"


def test_the_repl_command_as_a_terminal_program(cli):
    lines = ["x = 20", "def f(n):", "    return x + n", "", "f(1)", "1/0", "x"]
    result = subprocess.run(
        [str(cli), "repl"],
        input="\n".join(lines) + "\n",  # then end of input: Ctrl-D
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "21" in out, out
    assert "20" in out[out.index("21") + 2 :], out
    assert "ZeroDivisionError" in result.stderr, result.stderr


@pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pseudo-terminal")
def test_the_repl_command_in_a_real_terminal(cli):
    """Through a pseudo-terminal, as a person types: prompts, a block that
    ends at a blank line, an error that keeps the session, and Ctrl-D (which
    the terminal, not a closed pipe, turns into end of input) to leave."""
    import os
    import pty
    import select
    import time

    master, slave = pty.openpty()
    proc = subprocess.Popen([str(cli), "repl"], stdin=slave, stdout=slave, stderr=slave, close_fds=True)
    os.close(slave)
    seen = b""

    def expect(text, timeout=60):
        nonlocal seen
        deadline = time.monotonic() + timeout
        while text.encode() not in seen:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"{text!r} not shown; the terminal has {seen!r}"
            ready, _, _ = select.select([master], [], [], remaining)
            if ready:
                try:
                    seen += os.read(master, 4096)
                except OSError:  # EIO: the program closed the terminal
                    pytest.fail(f"the REPL ended before showing {text!r}; the terminal has {seen!r}")
        seen = seen[seen.index(text.encode()) + len(text) :]

    def type_line(line):
        os.write(master, line.encode() + b"\n")

    try:
        expect(">>> ")
        type_line("x = 20")
        expect(">>> ")
        type_line("def f(n):")
        expect("... ")
        type_line("    return x + n")
        expect("... ")
        type_line("")
        expect(">>> ")
        type_line("f(1)")
        expect("21")
        expect(">>> ")
        type_line("1/0")
        expect("ZeroDivisionError")
        expect(">>> ")
        type_line("x")
        expect("20")
        expect(">>> ")
        os.write(master, b"\x04")  # Ctrl-D
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)


def test_the_repl_command_reads_a_block_until_the_blank_line(cli):
    lines = ["def f(n):", "    y = n * 2", "    return y + 1", "", "f(20)"]
    result = subprocess.run(
        [str(cli), "repl"], input="\n".join(lines) + "\n", capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "SyntaxError" not in result.stderr, result.stderr
    assert "41" in result.stdout, result.stdout


def test_the_check_command(cli, tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text(BAD_CALL)
    result = subprocess.run([str(cli), "check", str(bad)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "invalid-argument-type" in result.stdout, result.stdout

    result = subprocess.run(
        [str(cli), "check", str(bad), "--format", "concise"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 1
    assert "invalid-argument-type" in result.stdout and ":3:" in result.stdout, result.stdout

    clean = tmp_path / "clean.py"
    clean.write_text("def f(x: int) -> int:\n    return x\nf(1)\n")
    result = subprocess.run([str(cli), "check", str(clean)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, (result.stdout, result.stderr)
    assert result.stdout == ""
