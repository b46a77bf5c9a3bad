//! The C header in `include/` is generated from the C entry points
//! (`src/abi/ffi.rs`) and the types and status codes they share with the
//! web build (`src/abi/registry.rs`); this test
//! regenerates it and fails while the committed copy has drifted. Refresh it
//! with `MONTY_WIRE_BLESS=1 cargo test --test header`.

use std::path::Path;

const HEADER: &str = "include/monty_wire.h";

fn generated_header() -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(root.join("cbindgen.toml")).expect("cbindgen.toml parses");
    let bindings = cbindgen::Builder::new()
        // The C ABI is exactly what these two files declare.
        .with_src(root.join("src/abi/registry.rs"))
        .with_src(root.join("src/abi/ffi.rs"))
        .with_config(config)
        .generate()
        .expect("cbindgen reads src/abi/");
    let mut out = Vec::new();
    bindings.write(&mut out);
    String::from_utf8(out).expect("cbindgen writes UTF-8")
}

#[test]
fn header_matches_the_code() {
    let generated = generated_header();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(HEADER);
    if std::env::var_os("MONTY_WIRE_BLESS").is_some() {
        std::fs::write(&path, &generated).expect("write the header");
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "{HEADER} is stale: run `MONTY_WIRE_BLESS=1 cargo test --test header` and commit it"
    );
}

#[test]
fn the_c_abi_has_at_most_eight_functions() {
    let header = generated_header();
    let functions: Vec<&str> = header
        .lines()
        // Comments (line comments, and the lines of the prologue's block
        // comment) name functions too; only declarations count.
        .filter(|line| !["//", "/*", "*"].iter().any(|c| line.trim_start().starts_with(c)))
        .filter_map(|line| {
            let name = line.split('(').next()?.split_whitespace().last()?;
            let name = name.trim_start_matches('*');
            (line.contains('(') && name.starts_with("monty_wire_")).then_some(name)
        })
        .collect();
    assert_eq!(
        functions,
        [
            "monty_wire_protocol_version",
            "monty_wire_session_open",
            "monty_wire_session_open_isolated",
            "monty_wire_cancel",
            "monty_wire_session_close",
            "monty_wire_dispatch",
            "monty_wire_buffer_free",
            "monty_wire_set_print_callback",
        ]
    );
    assert!(functions.len() <= 8, "the C ABI grew past eight functions");
}

/// The header states the contract a C or Dart host codes against: the
/// protocol it describes, and what the library cannot detect.
#[test]
fn the_header_states_its_contract() {
    let header = generated_header();
    let define = format!("#define MONTY_WIRE_PROTOCOL_VERSION {}", monty_wire::PROTOCOL_VERSION);
    assert!(header.contains(&define), "the header defines {define}");
    for rule in [
        "Ownership",
        "Threads",
        "Undefined behaviour",
        "Freeing a buffer twice",
        "Reading a response's bytes after freeing its buffer",
    ] {
        assert!(header.contains(rule), "the header states {rule:?}");
    }
    // It no longer promises that a second free is harmless.
    assert!(
        !header.contains("an already\n// freed buffer"),
        "a second free is not ignored"
    );
}
