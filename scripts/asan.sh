#!/usr/bin/env bash
# The Rust and Python test suites once under AddressSanitizer: out-of-bounds
# reads and writes, use-after-free and double frees in the crate's unsafe
# code (the C entry points, the framed buffers handed to hosts) and in
# everything it links, as a C, Dart or Python host would drive it.
#
#   bash scripts/asan.sh          # Rust tests, then the Python suite
#   bash scripts/asan.sh rust     # only the Rust tests
#   bash scripts/asan.sh python   # only the Python suite (after a Rust run)
#
# Builds go to target/asan. The standard library is not rebuilt with the
# sanitizer (no -Zbuild-std): its allocations still go through the
# instrumented malloc, which is what the crate's buffers use. Leak checking
# is off: the Rust test harness and CPython both keep memory until exit on
# purpose.
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET=x86_64-unknown-linux-gnu
TARGET_DIR=target/asan
what="${1:-all}"

export RUSTFLAGS="-Zsanitizer=address"
export RUSTDOCFLAGS="-Zsanitizer=address"
# Line tables only: reports keep file and line, and the test binaries (each
# links monty and ty) stay a fraction of their full-debuginfo size.
export CARGO_PROFILE_DEV_DEBUG=line-tables-only
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:${ASAN_OPTIONS:-}"
# The WASI tests are for wasm32 and the benchmarks are run by hand.
cargo_asan() { cargo +nightly "$@" --locked --target "$TARGET" --target-dir "$TARGET_DIR"; }

if [ "$what" = all ] || [ "$what" = rust ]; then
  echo "== cargo test under AddressSanitizer"
  cargo_asan test --lib --bins --tests
fi

if [ "$what" = all ] || [ "$what" = python ]; then
  echo "== pytest tests/python against the AddressSanitizer build of the library"
  cargo_asan build --lib
  if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
  fi
  .venv/bin/pip install --quiet --disable-pip-version-check -r tests/python/requirements.txt
  # Python is not instrumented, so the sanitizer runtime must be loaded
  # before anything else: the library's instrumented code calls into it.
  # rustc links the runtime into executables only, not into a cdylib, so
  # the shared runtime of the system's compiler is preloaded (same ABI
  # version, v8, as the instrumentation rustc emits).
  # The suite's fixtures build the crate's ordinary debug library, examples
  # and CLI with the pinned stable toolchain: built here first, without the
  # sanitizer's flags (stable rejects -Z) and before the runtime is preloaded.
  (unset RUSTFLAGS RUSTDOCFLAGS CARGO_PROFILE_DEV_DEBUG; cargo build --locked --lib --bins --examples)
  runtime="$(gcc -print-file-name=libasan.so)"
  [ -f "$runtime" ] || { echo "no shared AddressSanitizer runtime (install gcc's libasan)" >&2; exit 1; }
  # The suite runs cargo itself (for the CLI and fixtures); rustc uses
  # jemalloc, which crashes under the preloaded sanitizer, so a cargo first
  # on PATH drops the preload before it runs the real one.
  shim="$(mktemp -d)"
  trap 'rm -rf "$shim"' EXIT
  printf '#!/bin/sh\nunset LD_PRELOAD\nexec %q "$@"\n' "$(command -v cargo)" > "$shim/cargo"
  chmod +x "$shim/cargo"
  env -u RUSTFLAGS -u RUSTDOCFLAGS -u CARGO_PROFILE_DEV_DEBUG PATH="$shim:$PATH" \
    MONTY_WIRE_LIB="$PWD/$TARGET_DIR/$TARGET/debug/libmonty_wire.so" LD_PRELOAD="$runtime" \
    .venv/bin/python -m pytest -q tests/python
fi
