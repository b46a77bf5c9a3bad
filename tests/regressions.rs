//! Every input the fuzzer kept (`fuzz/regressions/<target>/`) replayed
//! through the same code the fuzz targets run (`fuzz/harness.rs`), so a
//! crash once found stays fixed. Also writes the fuzzers' seed corpora
//! (`fuzz/seeds/<target>/`) from real sessions, on request:
//! `cargo test --test regressions -- --ignored write_seed_corpora`.

#[path = "../fuzz/harness.rs"]
mod harness;

use std::path::{Path, PathBuf};

fn fuzz_dir(sub: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz").join(sub)
}

/// Replays every file of `fuzz/<dir>/<target>/` through `run`, naming the
/// file that fails.
fn replay(dir: &str, target: &str, run: fn(&[u8])) -> usize {
    let dir = fuzz_dir(dir).join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .collect();
    files.sort();
    for file in &files {
        let bytes = std::fs::read(file).expect("readable");
        if std::panic::catch_unwind(|| run(&bytes)).is_err() {
            panic!("{} fails", file.display());
        }
    }
    files.len()
}

#[test]
fn dispatch_regressions_pass() {
    replay("regressions", "dispatch", harness::dispatch);
}

#[test]
fn decode_regressions_pass() {
    assert!(replay("regressions", "decode", harness::decode) > 0);
}

/// The seeds are real sessions' messages, so they must pass too.
#[test]
fn seed_corpora_pass() {
    assert!(replay("seeds", "dispatch", harness::dispatch) > 0);
    assert!(replay("seeds", "decode", harness::decode) > 0);
}

/// Every state the dispatch target starts from is reachable: its setup
/// checks each response on the way.
#[test]
fn every_start_state_is_reached() {
    for start in harness::Start::ALL {
        harness::dispatch(&[start.byte()]);
    }
}

#[test]
#[ignore = "writes fuzz/seeds/; run by hand when the protocol changes"]
fn write_seed_corpora() {
    for target in ["dispatch", "decode"] {
        let dir = fuzz_dir("seeds").join(target);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("creates the seed directory");
    }
    for (target, name, bytes) in harness::seeds() {
        std::fs::write(fuzz_dir("seeds").join(target).join(name), bytes).expect("writes a seed");
    }
}
