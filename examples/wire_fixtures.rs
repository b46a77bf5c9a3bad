//! Writes one monty-wire message per fixture into a directory, for readers in
//! other languages to check against (`tests/python/test_cross_decode.py`):
//!
//! ```text
//! cargo run --example wire_fixtures -- OUT_DIR
//! ```
//!
//! Every fixture is the result of real Python run by monty, so the messages
//! hold exactly what monty produces. `<name>.bin` holds a `Value` message,
//! except `exception_traceback.bin`, which holds a `PythonException`.

use std::{fs, path::Path, process::ExitCode};

use monty::MontyRun;
use monty_types::{CompileOptions, MontyException, MontyObject};
use monty_wire::{encode_exception, encode_value};

/// (file name, Python source whose last expression is the fixture value).
const VALUES: &[(&str, &str)] = &[
    ("tuple_vs_list", "([1, 2], (1, 2))"),
    ("set_vs_frozenset", "({1}, frozenset({2}))"),
    ("bytes", r#"b"\x00\xffhi""#),
    ("bigint", "[2**70 + 5, -(2**70)]"),
    ("float_specials", "[float('nan'), -0.0, float('inf'), float('-inf')]"),
    ("dict_tuple_keys", "{(1, 2): 'a', (3,): 'b'}"),
    ("shared_child", "a = [1]\n[a, a]"),
    ("cycle", "r = [1]\nr.append(r)\nr"),
];

const EXCEPTION: &str = r#"
def inner():
    raise ValueError("boom")

def outer():
    inner()

outer()
"#;

fn run(name: &str, code: &str) -> Result<MontyObject, MontyException> {
    MontyRun::new(
        code.to_owned(),
        &format!("{name}.py"),
        vec![],
        CompileOptions::default(),
    )?
    .run_no_limits(vec![])
}

fn main() -> ExitCode {
    let Some(out_dir) = std::env::args().nth(1) else {
        eprintln!("usage: wire_fixtures OUT_DIR");
        return ExitCode::from(2);
    };
    let out_dir = Path::new(&out_dir);
    fs::create_dir_all(out_dir).expect("create the output directory");

    for (name, code) in VALUES {
        let value = run(name, code).unwrap_or_else(|exc| panic!("fixture {name} raised:\n{exc}"));
        let message = encode_value(&value).expect("fixtures fit in a message");
        fs::write(out_dir.join(format!("{name}.bin")), message.as_bytes()).expect("write fixture");
    }

    let exc = run("exception_traceback", EXCEPTION).expect_err("the exception fixture raises");
    let message = encode_exception(&exc).expect("fixtures fit in a message");
    fs::write(out_dir.join("exception_traceback.bin"), message.as_bytes()).expect("write fixture");

    println!("wrote {} fixtures to {}", VALUES.len() + 1, out_dir.display());
    ExitCode::SUCCESS
}
