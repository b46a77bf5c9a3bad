//! Generates the Rust bindings for `schema/monty_wire.capnp`.
//!
//! The build replays `schema/monty_wire.cgr`, the CodeGeneratorRequest that
//! `capnp compile -o-` produced from the schema, so building this crate needs
//! no Cap'n Proto compiler. `schema/regenerate.sh` rewrites the request after
//! a schema change, and the `schema_is_current` test fails while the
//! committed request is stale.

use std::{env, fs::File, path::PathBuf};

fn main() {
    println!("cargo:rerun-if-changed=schema/monty_wire.cgr");
    // `worker_processes`: the target can start a worker process for an
    // isolated session. Not the web module, and not Apple's mobile systems,
    // whose apps may not start processes; there an isolated session
    // answers `workerUnavailable`.
    println!("cargo::rustc-check-cfg=cfg(worker_processes)");
    let family = env::var("CARGO_CFG_TARGET_FAMILY").unwrap_or_default();
    let os = env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let spawns =
        !family.split(',').any(|f| f == "wasm") && !matches!(os.as_str(), "ios" | "tvos" | "watchos" | "visionos");
    if spawns {
        println!("cargo::rustc-cfg=worker_processes");
    }
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let request = File::open("schema/monty_wire.cgr").expect("schema/monty_wire.cgr is committed with the crate");
    capnpc::codegen::CodeGenerationCommand::new()
        .output_directory(out_dir)
        // The generated code lives in `crate::schema`, not at the crate root.
        .default_parent_module(vec!["schema".into()])
        .run(request)
        .expect("generate Rust code from schema/monty_wire.cgr");
}
