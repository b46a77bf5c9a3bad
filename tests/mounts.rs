//! Mounts and the environment map through the C entry points: OS calls on
//! mounted paths are answered inside the library and never reach the host.

mod common;

use std::{fs, path::Path};

use common::{Host, complete, expect_code, os_call, python_error, with_big_stack};
use monty_types::{ExcType, MontyObject, OsFunctionCall, ResourceLimits};
use monty_wire::protocol::{
    CallResult, Environment, ErrorCode, Feed, HostAccess, Mount, MountMode, NameLookupResult, OpenRepl, OpenRun,
    Outcome, Request, Response,
};
use tempfile::TempDir;

/// The tree monty's own test runner mounts for its `mount-fs` files.
fn fixture_tree() -> TempDir {
    let dir = TempDir::new().unwrap();
    let p = dir.path();
    fs::write(p.join("hello.txt"), "hello world\n").unwrap();
    fs::write(p.join("empty.txt"), "").unwrap();
    fs::write(p.join("data.bin"), b"\x00\x01\x02\x03").unwrap();
    fs::create_dir_all(p.join("subdir/deep")).unwrap();
    fs::write(p.join("subdir/nested.txt"), "nested content").unwrap();
    fs::write(p.join("subdir/deep/file.txt"), "deep file").unwrap();
    fs::write(p.join("readonly.txt"), "readonly content").unwrap();
    dir
}

fn mount(virtual_path: &str, host: &Path, mode: MountMode) -> Mount {
    Mount {
        virtual_path: virtual_path.to_owned(),
        host_path: host.to_str().unwrap().to_owned(),
        mode,
        memory_limit: None,
    }
}

fn access(mounts: Vec<Mount>) -> HostAccess {
    HostAccess {
        mounts,
        environment: Environment::CallHost,
    }
}

/// Opens `code` with `access`, without asserting that it opened.
fn try_open(code: &str, access: HostAccess) -> (Host, Response) {
    let host = Host::new();
    let mut open = OpenRun::new(code);
    open.access = access;
    open.limits = ResourceLimits::default().max_suspensions(100_000);
    let response = host.send(&Request::OpenRun(Box::new(open)));
    (host, response)
}

/// Runs `code` with `mounts`; `root` is `Path('/mnt')`, and any OS call that
/// reaches the host fails the test.
fn run_mounted(code: &str, mounts: Vec<Mount>) -> Response {
    let (host, response) = try_open(code, access(mounts));
    assert!(matches!(response.outcome, Outcome::Ok), "{:?}", response.outcome);
    drive(&host, Request::Start(Vec::new()))
}

/// Sends `request` and answers what a host without file-system code can:
/// the name `root`, nothing else.
fn drive(host: &Host, mut request: Request) -> Response {
    loop {
        let response = host.send(&request);
        request = match &response.outcome {
            Outcome::NameLookup(lookup) if lookup.name == "root" => {
                Request::ResumeNameLookup(NameLookupResult::Value(MontyObject::path("/mnt")))
            }
            Outcome::NameLookup(_) => Request::ResumeNameLookup(NameLookupResult::Undefined),
            Outcome::OsCall(call) => panic!("an OS call reached the host: {:?}", call.call),
            _ => return response,
        };
    }
}

fn ok(code: &str, mounts: Vec<Mount>) -> MontyObject {
    complete(run_mounted(code, mounts))
}

fn s(text: &str) -> MontyObject {
    MontyObject::string(text.to_owned())
}

#[test]
fn read_only_mounts_read_and_refuse_writes() {
    let dir = fixture_tree();
    let m = || vec![mount("/mnt", dir.path(), MountMode::ReadOnly)];
    assert_eq!(ok("root.joinpath('hello.txt').read_text()", m()), s("hello world\n"));
    assert_eq!(
        ok("sorted(p.name for p in root.iterdir())", m()),
        MontyObject::list(["data.bin", "empty.txt", "hello.txt", "readonly.txt", "subdir"].map(s))
    );
    assert_eq!(
        ok("root.joinpath('readonly.txt').stat().st_size", m()),
        MontyObject::int(16)
    );
    for write in [
        "(root / 'new.txt').write_text('x')",
        "(root / 'hello.txt').write_text('x')",
        "(root / 'hello.txt').unlink()",
        "(root / 'hello.txt').rename(root / 'moved.txt')",
        "(root / 'newdir').mkdir()",
        "open(root / 'hello.txt', 'a')",
    ] {
        let exc = python_error(run_mounted(write, m()));
        assert_eq!(exc.exc_type(), ExcType::PermissionError, "{write}: {exc:?}");
    }
    assert_eq!(
        fs::read_to_string(dir.path().join("hello.txt")).unwrap(),
        "hello world\n"
    );
    assert!(!dir.path().join("new.txt").exists() && !dir.path().join("newdir").exists());
}

#[test]
fn read_write_mounts_change_the_host_directory() {
    let dir = fixture_tree();
    let code = "
(root / 'new.txt').write_text('made')
(root / 'hello.txt').rename(root / 'renamed.txt')
(root / 'empty.txt').unlink()
(root / 'made' / 'deeper').mkdir(parents=True)
(root / 'new.txt').read_text()
";
    assert_eq!(
        ok(code, vec![mount("/mnt", dir.path(), MountMode::ReadWrite)]),
        s("made")
    );
    let p = dir.path();
    assert_eq!(fs::read_to_string(p.join("new.txt")).unwrap(), "made");
    assert_eq!(fs::read_to_string(p.join("renamed.txt")).unwrap(), "hello world\n");
    assert!(!p.join("hello.txt").exists() && !p.join("empty.txt").exists());
    assert!(p.join("made/deeper").is_dir());
}

#[test]
fn overlay_writes_are_seen_by_later_reads_and_never_reach_the_disk() {
    let dir = fixture_tree();
    let code = "
import os
(root / 'new.txt').write_text('in memory')
(root / 'hello.txt').write_text('changed')
(root / 'readonly.txt').rename(root / 'subdir' / 'moved.txt')
(root / 'empty.txt').unlink()
(root / 'newdir').mkdir()
(root / 'newdir' / 'x.py').write_bytes(b'1')
walked = sorted((d, sorted(files)) for d, _, files in os.walk('/mnt'))
(
    (root / 'new.txt').read_text(),
    (root / 'hello.txt').read_text(),
    (root / 'subdir' / 'moved.txt').read_text(),
    (root / 'empty.txt').exists(),
    sorted(p.name for p in root.iterdir()),
    sorted(str(p) for p in root.glob('**/*.txt')),
    (root / 'new.txt').stat().st_size,
    walked,
)
";
    let value = ok(code, vec![mount("/mnt", dir.path(), MountMode::Overlay)]);
    let expected = ok(
        "
(
    'in memory',
    'changed',
    'readonly content',
    False,
    ['data.bin', 'hello.txt', 'new.txt', 'newdir', 'subdir'],
    ['/mnt/hello.txt', '/mnt/new.txt', '/mnt/subdir/deep/file.txt', '/mnt/subdir/moved.txt', '/mnt/subdir/nested.txt'],
    9,
    [('/mnt', ['data.bin', 'hello.txt', 'new.txt']), ('/mnt/newdir', ['x.py']),
     ('/mnt/subdir', ['moved.txt', 'nested.txt']), ('/mnt/subdir/deep', ['file.txt'])],
)
",
        Vec::new(),
    );
    assert_eq!(value, expected);
    // The host directory is as it was.
    let p = dir.path();
    assert_eq!(fs::read_to_string(p.join("hello.txt")).unwrap(), "hello world\n");
    assert_eq!(fs::read_to_string(p.join("readonly.txt")).unwrap(), "readonly content");
    assert!(p.join("empty.txt").exists());
    assert!(!p.join("new.txt").exists() && !p.join("newdir").exists() && !p.join("subdir/moved.txt").exists());
}

#[test]
fn unmounted_paths_still_suspend_for_the_host_and_mounted_ones_count_as_round_trips() {
    let dir = fixture_tree();
    let (host, response) = try_open(
        "(root / 'hello.txt').read_text() + open('/elsewhere/x.txt').read()",
        access(vec![mount("/mnt", dir.path(), MountMode::ReadOnly)]),
    );
    assert!(matches!(response.outcome, Outcome::Ok));
    let lookup = host.send(&Request::Start(Vec::new()));
    assert!(matches!(lookup.outcome, Outcome::NameLookup(_)));
    let response = host.send(&Request::ResumeNameLookup(NameLookupResult::Value(MontyObject::path(
        "/mnt",
    ))));
    // The mounted read was answered inside that turn; `open` of another path
    // is the host's. Every suspension counts: the name lookup, the mounted
    // read and the open.
    assert_eq!(response.usage.suspensions, 3);
    let call = os_call(response);
    assert!(
        matches!(&call.call, OsFunctionCall::Open(args) if args.path.as_str() == "/elsewhere/x.txt"),
        "{:?}",
        call.call
    );
}

#[test]
fn the_environment_map_answers_getenv_and_environ() {
    let (host, response) = try_open(
        "import os\n(os.getenv('HOME'), os.getenv('NOPE', 'dflt'), os.environ['LANG'], sorted(os.environ))",
        HostAccess {
            mounts: Vec::new(),
            environment: Environment::Map(vec![
                ("HOME".into(), "/home/sandbox".into()),
                ("LANG".into(), "C".into()),
            ]),
        },
    );
    assert!(matches!(response.outcome, Outcome::Ok));
    assert_eq!(
        complete(drive(&host, Request::Start(Vec::new()))),
        MontyObject::tuple([
            s("/home/sandbox"),
            s("dflt"),
            s("C"),
            MontyObject::list([s("HOME"), s("LANG")])
        ])
    );
}

#[test]
fn bad_mount_lists_are_protocol_errors_that_leave_the_session_empty() {
    let dir = fixture_tree();
    let sub = dir.path().join("subdir");
    let other = fixture_tree();
    let cases: Vec<(Vec<Mount>, &str)> = vec![
        (
            vec![
                mount("/a", dir.path(), MountMode::ReadOnly),
                mount("/b", dir.path(), MountMode::ReadWrite),
            ],
            "overlaps",
        ),
        (
            vec![
                mount("/a", dir.path(), MountMode::ReadOnly),
                mount("/b", &sub, MountMode::ReadWrite),
            ],
            "overlaps",
        ),
        (
            vec![
                mount("/a", dir.path(), MountMode::ReadOnly),
                mount("/a", other.path(), MountMode::ReadOnly),
            ],
            "overlaps",
        ),
        (vec![mount("relative", dir.path(), MountMode::ReadOnly)], "absolute"),
        (
            vec![mount("/a", &dir.path().join("hello.txt"), MountMode::ReadOnly)],
            "cannot open",
        ),
        (
            vec![mount("/a", &dir.path().join("missing"), MountMode::ReadOnly)],
            "cannot open",
        ),
    ];
    for (mounts, says) in cases {
        let (host, response) = try_open("1", access(mounts));
        let error = expect_code(response, ErrorCode::InvalidArgument);
        assert!(error.message.contains(says), "{}", error.message);
        // Nothing was opened: the session takes an open request again.
        let reopened = host.send(&Request::OpenRun(Box::new(OpenRun::new("1"))));
        assert!(matches!(reopened.outcome, Outcome::Ok), "{:?}", reopened.outcome);
    }
}

/// A host tree with a secret beside the mounted directory, and links inside
/// the mount that point at it.
struct Escape {
    outer: TempDir,
}

const SECRET: &str = "SECRET-HOST-CONTENT";

impl Escape {
    fn new() -> Self {
        let outer = TempDir::new().unwrap();
        let mounted = outer.path().join("mounted");
        fs::create_dir(&mounted).unwrap();
        fs::write(mounted.join("hello.txt"), "hello").unwrap();
        fs::write(outer.path().join("secret.txt"), SECRET).unwrap();
        fs::create_dir(outer.path().join("secret_dir")).unwrap();
        fs::write(outer.path().join("secret_dir/inner.txt"), SECRET).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::symlink;
            symlink(outer.path().join("secret.txt"), mounted.join("abs_link.txt")).unwrap();
            symlink("../secret.txt", mounted.join("rel_link.txt")).unwrap();
            symlink(outer.path().join("secret_dir"), mounted.join("dir_link")).unwrap();
        }
        Self { outer }
    }

    fn mounts(&self, mode: MountMode) -> Vec<Mount> {
        vec![mount("/mnt", &self.outer.path().join("mounted"), mode)]
    }
}

fn all_modes() -> [MountMode; 3] {
    [MountMode::ReadOnly, MountMode::ReadWrite, MountMode::Overlay]
}

/// Runs `code` and returns the exception it raised, failing if the secret
/// came back or if the call reached the host.
fn refused(code: &str, mounts: Vec<Mount>) -> monty_types::MontyException {
    let response = run_mounted(code, mounts);
    let exc = python_error(response);
    assert!(!format!("{exc:?}").contains(SECRET), "{code}: {exc:?}");
    exc
}

#[test]
fn escape_dotdot_past_the_mount_root_is_not_served_from_the_host() {
    let escape = Escape::new();
    for mode in all_modes() {
        // `..` is resolved on the virtual path: `/mnt/../secret.txt` is
        // `/secret.txt`, which no mount covers, so it goes to the host as an
        // ordinary OS call, never to the directory beside the mount.
        let (host, response) = try_open(
            "from pathlib import Path\nPath('/mnt/../secret.txt').read_text()",
            access(escape.mounts(mode)),
        );
        assert!(matches!(response.outcome, Outcome::Ok));
        let call = os_call(host.send(&Request::Start(Vec::new())));
        assert_eq!(
            call.call
                .fs_primary_path()
                .map(monty_types::normalize_virtual_path)
                .as_deref(),
            Some("/secret.txt")
        );
        let exc = python_error(host.send(&Request::ResumeOsCall(CallResult::NotHandled)));
        assert_eq!(exc.exc_type(), ExcType::PermissionError);
        // Deeper `..` inside the mount stays inside it.
        assert_eq!(
            ok("(root / 'sub' / '..' / 'hello.txt').read_text()", escape.mounts(mode)),
            s("hello")
        );
    }
}

#[cfg(unix)]
#[test]
fn escape_symlinks_pointing_outside_the_mount_are_refused() {
    let escape = Escape::new();
    for mode in all_modes() {
        for code in [
            "(root / 'abs_link.txt').read_text()",
            "(root / 'rel_link.txt').read_text()",
            "(root / 'rel_link.txt').read_bytes()",
            "(root / 'dir_link' / 'inner.txt').read_text()",
            "list((root / 'dir_link').iterdir())",
            "(root / 'abs_link.txt').stat()",
        ] {
            let exc = refused(code, escape.mounts(mode));
            assert!(
                matches!(
                    exc.exc_type(),
                    ExcType::PermissionError | ExcType::OSError | ExcType::FileNotFoundError
                ),
                "{code}: {exc:?}"
            );
        }
        // Writing through a link must not reach the file it points at.
        let code = "(root / 'abs_link.txt').write_text('overwritten')";
        let response = run_mounted(code, escape.mounts(mode));
        assert!(!format!("{:?}", response.outcome).contains(SECRET));
        assert_eq!(
            fs::read_to_string(escape.outer.path().join("secret.txt")).unwrap(),
            SECRET
        );
        // A glob of the mount does not descend through the directory link.
        let listed = ok("sorted(str(p) for p in root.glob('**/*.txt'))", escape.mounts(mode));
        assert!(!format!("{listed:?}").contains("inner.txt"), "{listed:?}");
    }
}

#[cfg(unix)]
#[test]
fn escape_a_hard_linked_file_cannot_write_outside_and_the_sandbox_cannot_make_one() {
    // A hard link is the same file under another name: placed in the mount by
    // the host, it is the host's choice to share it (monty-fs documents this).
    // What the sandbox must not get is a write to it through a read-only or
    // overlay mount, or a way to make one.
    let escape = Escape::new();
    let mounted = escape.outer.path().join("mounted");
    fs::hard_link(escape.outer.path().join("secret.txt"), mounted.join("hard.txt")).unwrap();
    for mode in [MountMode::ReadOnly, MountMode::Overlay] {
        let _ = run_mounted("(root / 'hard.txt').write_text('overwritten')", escape.mounts(mode));
        let _ = run_mounted("(root / 'hard.txt').unlink()", escape.mounts(mode));
        assert_eq!(
            fs::read_to_string(escape.outer.path().join("secret.txt")).unwrap(),
            SECRET
        );
        assert!(mounted.join("hard.txt").exists());
    }
    let exc = python_error(run_mounted(
        "import os\nos.link('/mnt/hello.txt', '/mnt/x.txt')",
        escape.mounts(MountMode::ReadWrite),
    ));
    assert_eq!(exc.exc_type(), ExcType::AttributeError, "{exc:?}");
}

#[test]
fn escape_a_path_with_nul_is_a_value_error() {
    let escape = Escape::new();
    for mode in all_modes() {
        let exc = refused("(root / 'hello.txt\\x00/../x').read_text()", escape.mounts(mode));
        assert_eq!(exc.exc_type(), ExcType::ValueError, "{exc:?}");
        assert_eq!(
            ok("(root / 'a\\x00b').exists()", escape.mounts(mode)),
            MontyObject::bool(false)
        );
    }
}

#[test]
fn escape_a_very_long_path_is_refused() {
    let escape = Escape::new();
    for mode in all_modes() {
        let exc = refused("(root / ('a/' * 5000 + 'hello.txt')).read_text()", escape.mounts(mode));
        assert_eq!(exc.exc_type(), ExcType::OSError, "{exc:?}");
        assert!(format!("{exc:?}").contains("File name too long"), "{exc:?}");
        // Every OS-call path is normalised before a mount or the host sees
        // it, so a long path that collapses into the mount is the short one.
        assert_eq!(
            ok(
                "(root / ('a/' * 5000 + '../' * 5000 + 'hello.txt')).read_text()",
                escape.mounts(mode)
            ),
            s("hello")
        );
        let exc = refused("(root / ('x' * 300)).read_text()", escape.mounts(mode));
        assert!(
            matches!(exc.exc_type(), ExcType::OSError | ExcType::FileNotFoundError),
            "{exc:?}"
        );
    }
}

#[test]
fn escape_a_file_where_a_directory_is_expected_is_not_a_directory() {
    let escape = Escape::new();
    for mode in all_modes() {
        // `..` after a file collapses virtually (as in pathlib), so the
        // last case reads the mounted file again; the others raise.
        for (code, reads_the_file) in [
            ("(root / 'hello.txt' / 'x').read_text()", false),
            ("list((root / 'hello.txt').iterdir())", false),
            ("(root / 'hello.txt' / '..' / 'hello.txt').read_text()", true),
        ] {
            let response = run_mounted(code, escape.mounts(mode));
            match response.outcome {
                Outcome::Complete(value) if reads_the_file => assert_eq!(value, s("hello"), "{code}"),
                Outcome::PythonError(exc) if !reads_the_file => {
                    assert!(
                        matches!(exc.exc_type(), ExcType::NotADirectoryError | ExcType::FileNotFoundError),
                        "{code}: {exc:?}"
                    );
                }
                other => panic!("{code}: {other:?}"),
            }
        }
    }
}

fn repl(access: HostAccess) -> Host {
    let host = Host::new();
    let response = host.send(&Request::OpenRepl(Box::new(OpenRepl {
        access,
        ..OpenRepl::default()
    })));
    assert!(matches!(response.outcome, Outcome::Ok), "{:?}", response.outcome);
    host
}

fn feed(host: &Host, code: &str) -> Response {
    drive(host, Request::FeedStart(Feed::new(code)))
}

#[test]
fn a_dump_with_an_overlay_mount_keeps_its_writes_when_loaded_with_the_same_mount() {
    let dir = fixture_tree();
    let mounts = || vec![mount("/mnt", dir.path(), MountMode::Overlay)];
    let first = repl(access(mounts()));
    complete(feed(
        &first,
        "from pathlib import Path\nroot = Path('/mnt')\n(root / 'new.txt').write_text('kept')\n(root / 'hello.txt').unlink()\n\
         with open(root / 'handle.txt', 'w') as f:\n    f.write('through a handle')\n(root / 'd').mkdir()\n\
         (root / 'subdir' / 'nested.txt').rename(root / 'd' / 'moved.txt')",
    ));
    let Outcome::Dump(dump) = first.send(&Request::DumpSession).outcome else {
        panic!("no dump")
    };
    assert!(!dir.path().join("new.txt").exists());

    // Loaded with the same mount request: the overlay's writes are there.
    let second = Host::new();
    let response = second.send(&Request::LoadSession {
        dump: dump.clone(),
        limits: ResourceLimits::default(),
        access: access(mounts()),
    });
    assert!(matches!(response.outcome, Outcome::Ok), "{:?}", response.outcome);
    assert_eq!(
        complete(feed(
            &second,
            "((root / 'new.txt').read_text(), (root / 'hello.txt').exists(), (root / 'handle.txt').read_text(), \
             (root / 'd' / 'moved.txt').read_text(), (root / 'subdir' / 'nested.txt').exists())"
        )),
        MontyObject::tuple([
            s("kept"),
            MontyObject::bool(false),
            s("through a handle"),
            s("nested content"),
            MontyObject::bool(false)
        ])
    );
    // And a dump of the loaded session carries them on.
    let Outcome::Dump(again) = second.send(&Request::DumpSession).outcome else {
        panic!("no dump")
    };
    let third = Host::new();
    assert!(matches!(
        third
            .send(&Request::LoadSession {
                dump: again,
                limits: ResourceLimits::default(),
                access: access(mounts()),
            })
            .outcome,
        Outcome::Ok
    ));
    assert_eq!(complete(feed(&third, "(root / 'new.txt').read_text()")), s("kept"));

    // A dump grants no access: loaded without the mount, it is refused.
    for access in [
        access(Vec::new()),
        access(vec![mount("/mnt", dir.path(), MountMode::ReadOnly)]),
    ] {
        let fourth = Host::new();
        let error = expect_code(
            fourth.send(&Request::LoadSession {
                dump: dump.clone(),
                limits: ResourceLimits::default(),
                access,
            }),
            ErrorCode::InvalidArgument,
        );
        assert!(error.message.contains("no access by itself"), "{}", error.message);
        // The session is still empty.
        assert!(matches!(
            fourth.send(&Request::OpenRepl(Box::default())).outcome,
            Outcome::Ok
        ));
    }
}

#[test]
fn a_snippets_own_mounts_last_until_it_ends() {
    let dir = fixture_tree();
    let host = repl(access(Vec::new()));
    let with_mount = Feed {
        mounts: vec![mount("/mnt", dir.path(), MountMode::ReadOnly)],
        ..Feed::new("from pathlib import Path\nroot = Path('/mnt')\n(root / 'hello.txt').read_text()")
    };
    assert_eq!(
        complete(drive(&host, Request::FeedStart(with_mount))),
        s("hello world\n")
    );
    // The next snippet has no mount: its read is the host's.
    let call = os_call(host.send(&Request::FeedStart(Feed::new("(root / 'hello.txt').read_text()"))));
    assert!(matches!(call.call, OsFunctionCall::ReadText(_)), "{:?}", call.call);
    host.send(&Request::Abort(monty_types::MontyException::new(
        ExcType::RuntimeError,
        None,
    )));

    // While a snippet with mounts waits on the host, a feed bringing mounts
    // is refused and the waiting snippet keeps its own.
    let mut waiting = Feed {
        mounts: vec![mount("/mnt", dir.path(), MountMode::ReadOnly)],
        ..Feed::new("fetch()\n(root / 'hello.txt').read_text()")
    };
    waiting.inputs = vec![("fetch".into(), MontyObject::function("fetch", None))];
    common::function_call(host.send(&Request::FeedStart(waiting.clone())));
    expect_code(host.send(&Request::FeedStart(waiting)), ErrorCode::WrongState);
    assert_eq!(
        complete(host.resume(CallResult::Value(MontyObject::none()))),
        s("hello world\n")
    );
}

/// monty's own `mount-fs` conformance files (tests/fixtures/monty_mount_fs/),
/// as monty's test runner runs them: the fixture tree mounted at `/mnt` as an
/// overlay, `root` answered as `Path('/mnt')`, and no host file-system code:
/// every OS call must be served by a library mount.
#[test]
fn montys_mount_fs_conformance_files_pass_through_the_wire() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/monty_mount_fs");
    let mut files: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "py"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 11, "monty 1.4.0 has 11 mount-fs files");
    let failures = with_big_stack(move || {
        let mut failures = Vec::new();
        for file in files {
            let code = fs::read_to_string(&file).unwrap();
            let tree = fixture_tree();
            // `os.chdir('/')` stats the virtual root, which monty's runner
            // answers from its own file system: here an empty read-only
            // mount serves it, so still no call reaches the host.
            let empty = TempDir::new().unwrap();
            let mounts = vec![
                mount("/mnt", tree.path(), MountMode::Overlay),
                mount("/", empty.path(), MountMode::ReadOnly),
            ];
            let (host, response) = try_open(&code, access(mounts));
            assert!(matches!(response.outcome, Outcome::Ok), "{:?}", response.outcome);
            let mut request = Request::Start(Vec::new());
            let outcome = loop {
                let response = host.send(&request);
                request = match response.outcome {
                    Outcome::NameLookup(lookup) if lookup.name == "root" => {
                        Request::ResumeNameLookup(NameLookupResult::Value(MontyObject::path("/mnt")))
                    }
                    Outcome::OsCall(call) => {
                        failures.push(format!("{}: reached the host: {:?}", file.display(), call.call));
                        Request::ResumeOsCall(CallResult::NotHandled)
                    }
                    other => break other,
                };
            };
            if !matches!(outcome, Outcome::Complete(_)) {
                failures.push(format!("{}: {outcome:?}", file.display()));
            }
        }
        failures
    });
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
