//! Every path an OS call hands the host is lexically normalised: a table of
//! what the sandbox wrote and what the host gets, through the C entry points,
//! for every path field of every OS call.

mod common;

use common::{Host, os_call};
use monty_types::{OsFunctionCall, dir_stat};
use monty_wire::protocol::{CallResult, OpenRun, Request};

/// The OS call `code` makes first, in a run whose cwd is `cwd`: its name and
/// every path it carries.
fn first_os_call(code: &str, cwd: &str) -> (&'static str, Vec<String>) {
    let mut open = OpenRun::new(format!("from pathlib import Path\nimport os\n{code}"));
    open.cwd = cwd.to_owned();
    let host = Host::open_with(open);
    let mut call = os_call(host.send(&Request::Start(vec![]))).call;
    let paths = call.fs_paths_mut().map(|path| path.as_str().to_owned()).collect();
    (call.name(), paths)
}

#[test]
fn paths_are_normalised_lexically() {
    // (code, cwd, the call, the paths the host gets)
    let table: &[(&str, &str, &str, &[&str])] = &[
        // `..` walks up lexically; a prefix check on the result is sound.
        (
            "Path('/data/sub/../x').read_text()",
            "/",
            "Path.read_text",
            &["/data/x"],
        ),
        ("open('/data/sub/../../etc/passwd')", "/", "open", &["/etc/passwd"]),
        // `..` at the root stays at the root.
        ("Path('/../../x').exists()", "/", "Path.exists", &["/x"]),
        ("Path('/data/..').is_dir()", "/", "Path.is_dir", &["/"]),
        // `.`, repeated and trailing separators go.
        ("os.stat('//data/./a///b/')", "/", "Path.stat", &["/data/a/b"]),
        // Relative paths are resolved against the cwd first.
        (
            "Path('sub/../../etc').read_bytes()",
            "/data",
            "Path.read_bytes",
            &["/etc"],
        ),
        ("open('./x')", "/data", "open", &["/data/x"]),
        ("Path('..').iterdir()", "/data/sub", "Path.iterdir", &["/data"]),
        // `os.chdir` asks whether its target is a directory.
        ("os.chdir('/data/x/..')", "/", "Path.stat", &["/data"]),
        // An empty path stays empty: the host answers it as CPython does.
        ("os.stat('')", "/data", "Path.stat", &[""]),
        // Every path field of every call.
        ("Path('/d/a/../f').is_symlink()", "/", "Path.is_symlink", &["/d/f"]),
        ("Path('/d/a/../f').resolve()", "/", "Path.resolve", &["/d/f"]),
        ("Path('/d/a/../f').absolute()", "/", "Path.absolute", &["/d/f"]),
        ("Path('/d/a/../f').unlink()", "/", "Path.unlink", &["/d/f"]),
        ("Path('/d/a/../f').rmdir()", "/", "Path.rmdir", &["/d/f"]),
        ("Path('/d/a/../f').write_text('t')", "/", "Path.write_text", &["/d/f"]),
        (
            "Path('/d/a/../f').write_bytes(b't')",
            "/",
            "Path.write_bytes",
            &["/d/f"],
        ),
        ("Path('/d/a/../f').mkdir()", "/", "Path.mkdir", &["/d/f"]),
        (
            "Path('/d/a/../f').rename('/d/./b/..//g/')",
            "/",
            "Path.rename",
            &["/d/f", "/d/g"],
        ),
        (
            "Path('x/../y').rename('../z')",
            "/d/e",
            "Path.rename",
            &["/d/e/y", "/d/z"],
        ),
        ("list(os.scandir('/d/a/..'))", "/", "Path.scan", &["/d"]),
        ("list(Path('/d/a/../b').glob('*.txt'))", "/", "Path.scan", &["/d/b"]),
    ];
    let mut wrong = Vec::new();
    for &(code, cwd, name, expected) in table {
        let (got_name, got) = first_os_call(code, cwd);
        if got_name != name || got != expected {
            wrong.push(format!(
                "{code:?} in {cwd}: got {got_name} {got:?}, expected {name} {expected:?}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn relative_paths_follow_the_cwd_os_chdir_set() {
    let host = Host::open_with(OpenRun::new("import os\nos.chdir('/data')\nopen('a/../b/./c')"));
    os_call(host.send(&Request::Start(vec![])));
    let call = os_call(host.resume_os(CallResult::Value(dir_stat(0o755, 0.0)))).call;
    assert!(
        matches!(&call, OsFunctionCall::Open(args) if args.path.as_str() == "/data/b/c"),
        "{call:?}"
    );
}
