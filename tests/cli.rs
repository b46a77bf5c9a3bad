//! The `monty-wire` command line, run as a user runs it: `run` (the README's
//! first command), its options, tracebacks and exit codes, and `decode` of
//! the messages `--trace` saves.

#![cfg(feature = "cli")]

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

fn monty_wire(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_monty-wire"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the monty-wire binary runs")
}

/// Runs `monty-wire` and checks that it printed a Python error of type
/// `exc_type` and exited 1.
fn raises(args: &[&str], exc_type: &str) {
    let output = monty_wire(args);
    assert_eq!(output.status.code(), Some(1), "stdout: {}", stdout(&output));
    assert!(stderr(&output).contains(exc_type), "{}", stderr(&output));
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("stdout is UTF-8")
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).expect("stderr is UTF-8")
}

/// A script in a fresh temporary directory, removed when dropped.
struct Script {
    dir: PathBuf,
    path: PathBuf,
}

impl Script {
    fn new(name: &str, code: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("monty-wire-cli-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join(format!("{name}.py"));
        std::fs::write(&path, code).expect("write script");
        Self { dir, path }
    }

    fn path(&self) -> &str {
        self.path.to_str().expect("UTF-8 temp path")
    }
}

impl Drop for Script {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn run_hello_prints_output_then_the_result() {
    let output = monty_wire(&["run", "examples/hello.py"]);
    assert!(output.status.success(), "stderr: {}", stderr(&output));
    assert_eq!(
        stdout(&output),
        "hello from monty\n{'tuple': (1, 'two'), 'list': [1, 2], 'same list': [1, 2], \
         'big': 1267650600228229401496703205376, 'nan': nan, 'bytes': b'\\x00\\xff', \
         (1, 2): frozenset({3})}\n"
    );
}

#[test]
fn inputs_arrive_as_python_values() {
    let script = Script::new("inputs", "(n + 1, name.upper(), flags, items[1], conf['k'], nothing)");
    let output = monty_wire(&[
        "run",
        script.path(),
        "--input",
        "n=41",
        "--input",
        "name=\"ada\"",
        "--input",
        "flags=[true, false]",
        "--input",
        "items=[1.5, 18446744073709551615]",
        "--input",
        "conf={\"k\": {\"nested\": null}}",
        "--input",
        "nothing=null",
    ]);
    assert!(output.status.success(), "stderr: {}", stderr(&output));
    assert_eq!(
        stdout(&output),
        "(42, 'ADA', [True, False], 18446744073709551615, {'nested': None}, None)\n"
    );
}

#[test]
fn an_input_that_is_not_json_is_refused() {
    let script = Script::new("bad_input", "x");
    let output = monty_wire(&["run", script.path(), "--input", "x={oops"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("--input x: invalid JSON"),
        "{}",
        stderr(&output)
    );
    let output = monty_wire(&["run", script.path(), "--input", "no-equals-sign"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("is not NAME=JSON"), "{}", stderr(&output));
}

#[test]
fn a_python_error_prints_its_traceback_and_exits_1() {
    let script = Script::new(
        "raises",
        "def check(x):\n    if x > 1:\n        raise ValueError(f'too big: {x}')\n\nprint('before')\ncheck(2)\n",
    );
    let output = monty_wire(&["run", script.path()]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(stdout(&output), "before\n");
    let err = stderr(&output);
    let expected_frames = [
        "Traceback (most recent call last):".to_owned(),
        format!("  File \"{}\", line 6, in <module>", script.path()),
        format!("  File \"{}\", line 3, in check", script.path()),
        "ValueError: too big: 2".to_owned(),
    ];
    let mut rest = err.as_str();
    for line in &expected_frames {
        let at = rest
            .find(line.as_str())
            .unwrap_or_else(|| panic!("{line:?} missing, in order, from:\n{err}"));
        rest = &rest[at + line.len()..];
    }
}

#[test]
fn a_syntax_error_is_reported_like_any_python_error() {
    let script = Script::new("syntax", "def f(:\n    pass\n");
    raises(&["run", script.path()], "SyntaxError");
}

#[test]
fn the_time_limit_stops_an_endless_loop() {
    let script = Script::new("spin", "while True:\n    pass\n");
    raises(&["run", script.path(), "--time-limit", "0.2"], "TimeoutError");
    let output = monty_wire(&["run", script.path(), "--time-limit", "-1"]);
    assert_eq!(output.status.code(), Some(2), "a negative limit is refused");
}

#[test]
fn the_recursion_limit_raises_recursion_error() {
    let script = Script::new("recurse", "def f(n):\n    return f(n + 1)\n\nf(0)\n");
    raises(&["run", script.path(), "--recursion-limit", "40"], "RecursionError");
}

#[test]
fn the_memory_limit_raises_memory_error() {
    let script = Script::new("hog", "xs = []\nwhile True:\n    xs.append('x' * 10_000)\n");
    raises(&["run", script.path(), "--memory-limit", "20000000"], "MemoryError");
    // The same program with room to spare fits a smaller job.
    let script = Script::new("fits", "len(['x' * 10_000 for _ in range(100)])");
    let output = monty_wire(&["run", script.path(), "--memory-limit", "20000000"]);
    assert!(output.status.success(), "stderr: {}", stderr(&output));
    assert_eq!(stdout(&output), "100\n");
}

#[test]
fn host_calls_the_command_line_cannot_serve_raise_in_the_script() {
    let script = Script::new(
        "no_host",
        "try:\n    open('/etc/passwd').read()\nexcept PermissionError as e:\n    r = str(e)\nr\n",
    );
    let output = monty_wire(&["run", script.path()]);
    assert!(output.status.success(), "stderr: {}", stderr(&output));
    assert_eq!(stdout(&output), "\"Permission denied: '/etc/passwd'\"\n");
}

#[test]
fn trace_saves_every_message_and_decode_prints_them() {
    let trace = Script::new("trace", "");
    let dir = trace.dir.join("turns");
    let dir_arg = dir.to_str().expect("UTF-8 temp path");
    let output = monty_wire(&["run", "examples/hello.py", "--trace", dir_arg]);
    assert!(output.status.success(), "stderr: {}", stderr(&output));
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .expect("trace dir")
        .map(|entry| entry.expect("entry").file_name().into_string().expect("UTF-8"))
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "000-request.bin",
            "000-response.bin",
            "001-request.bin",
            "001-response.bin"
        ]
    );

    let decode = |file: &str, root: &str| monty_wire(&["decode", "--as", root, &path_in(&dir, file)]);
    let output = decode("000-request.bin", "request");
    assert!(output.status.success(), "stderr: {}", stderr(&output));
    assert!(
        stdout(&output).starts_with("(openRun = (code = "),
        "{}",
        stdout(&output)
    );
    let output = decode("001-response.bin", "response");
    assert!(output.status.success(), "stderr: {}", stderr(&output));
    let text = stdout(&output);
    assert!(text.starts_with("(complete = (nodes = ["), "{text}");
    assert!(text.contains("(strValue = \"tuple\")"), "{text}");
    assert!(
        text.contains("output = [(stream = stdout, text = \"hello from monty\\n\")]"),
        "{text}"
    );

    // A message read as the wrong root, or bytes that are not a message.
    let output = decode("001-request.bin", "value");
    assert_eq!(output.status.code(), Some(2), "{}", stdout(&output));
    std::fs::write(dir.join("garbage.bin"), b"not a capnp message").expect("write");
    let output = decode("garbage.bin", "response");
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).starts_with("monty-wire: "), "{}", stderr(&output));
}

#[test]
fn a_missing_script_is_a_clear_error() {
    let output = monty_wire(&["run", "examples/no-such-script.py"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("cannot read examples/no-such-script.py"),
        "{}",
        stderr(&output)
    );
}

fn path_in(dir: &Path, file: &str) -> String {
    dir.join(file).to_str().expect("UTF-8 temp path").to_owned()
}

#[test]
fn mount_shows_a_host_directory_in_each_mode() {
    let data = tempfile::TempDir::new().expect("temp dir");
    std::fs::write(data.path().join("in.txt"), "from the host").expect("write");
    let dir = data.path().to_str().expect("UTF-8 temp path");
    let script = Script::new(
        "mount",
        "from pathlib import Path\nd = Path('/data')\ntry:\n    (d / 'out.txt').write_text('written')\n    w = (d / 'out.txt').read_text()\nexcept PermissionError:\n    w = 'refused'\n[(d / 'in.txt').read_text(), w]\n",
    );
    for (mode, written, on_disk) in [
        ("ro", "refused", false),
        ("rw", "written", true),
        ("overlay", "written", false),
    ] {
        let mount = format!("/data={dir}:{mode}");
        let output = monty_wire(&["run", "--mount", &mount, script.path()]);
        assert!(output.status.success(), "{mode}: {}", stderr(&output));
        assert_eq!(stdout(&output), format!("['from the host', '{written}']\n"), "{mode}");
        assert_eq!(data.path().join("out.txt").exists(), on_disk, "{mode}");
        let _ = std::fs::remove_file(data.path().join("out.txt"));
    }
    // Overlapping mounts are refused before the script runs.
    let output = monty_wire(&[
        "run",
        "--mount",
        &format!("/a={dir}"),
        "--mount",
        &format!("/b={dir}:rw"),
        script.path(),
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("overlaps"), "{}", stderr(&output));
}

#[test]
fn env_sets_what_os_environ_reads() {
    let script = Script::new(
        "env",
        "import os\n(os.getenv('GREETING'), os.getenv('UNSET'), dict(os.environ))\n",
    );
    let output = monty_wire(&["run", "--env", "GREETING=hi there", "--env", "EMPTY=", script.path()]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        stdout(&output),
        "('hi there', None, {'GREETING': 'hi there', 'EMPTY': ''})\n"
    );
}

#[test]
fn a_script_runs_isolated_so_what_it_does_ends_only_its_worker() {
    // Past the worker's default memory ceiling in one allocation, and one
    // long operation past its time limit: each ends the worker, and `run`
    // says so and exits 2.
    let bomb = Script::new("bomb", "print('before')\nx = 'a' * 10**10\n");
    let output = monty_wire(&["run", bomb.path()]);
    assert_eq!(output.status.code(), Some(2), "stderr: {}", stderr(&output));
    assert_eq!(stdout(&output), "before\n", "output printed before the crash arrives");
    assert!(stderr(&output).contains("WorkerCrashed"), "stderr: {}", stderr(&output));
    assert!(
        stderr(&output).contains("memory ceiling"),
        "stderr: {}",
        stderr(&output)
    );
    let long = Script::new("long", "x = 10**10**8\n");
    let output = monty_wire(&["run", long.path(), "--time-limit", "1"]);
    assert_eq!(output.status.code(), Some(2), "stderr: {}", stderr(&output));
    assert!(
        stderr(&output).contains("DeadlineExceeded"),
        "stderr: {}",
        stderr(&output)
    );
    // In the tool's own process the same script runs as before.
    let fine = Script::new("fine", "6 * 7\n");
    let output = monty_wire(&["run", fine.path(), "--in-process"]);
    assert!(output.status.success(), "stderr: {}", stderr(&output));
    assert_eq!(stdout(&output), "42\n");
}

#[test]
fn repl_isolated_starts_a_new_session_when_a_snippet_ends_its_worker() {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_monty-wire"))
        .args(["repl", "--isolated"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start the repl");
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(b"x = 1\n'a' * 10**10\nx = 2\nx * 21\n")
        .expect("write snippets");
    let output = child.wait_with_output().expect("the repl ends at the end of its input");
    assert!(output.status.success(), "stderr: {}", stderr(&output));
    assert!(
        stderr(&output).contains("a new session has started"),
        "stderr: {}",
        stderr(&output)
    );
    assert!(stdout(&output).contains("42"), "stdout: {}", stdout(&output));
}
