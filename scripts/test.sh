#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what it needs, then
# runs formatting and lint checks, the Rust tests, the wasm32-wasip1 build,
# the cross-language tests (pycapnp, the C++ reference implementation) and
# the web front end's tests (Node and headless Chromium).
set -euo pipefail
cd "$(dirname "$0")/.."
# CI builds a clean checkout once: incremental state would only be written,
# never reused.
if [ -n "${CI:-}" ]; then export CARGO_INCREMENTAL=0; fi

bash scripts/setup.sh

# The Cap'n Proto compiler: the schema drift test and `capnp decode` use it.
# Building the crate does not (build.rs replays schema/monty_wire.cgr).
if ! command -v capnp >/dev/null; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq capnproto >/dev/null
fi

# pycapnp and pytest, in a virtualenv of their own.
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
# pycapnp and pytest; the Dart grammar for the docs' sample check.
.venv/bin/pip install --quiet --disable-pip-version-check -r tests/python/requirements.txt \
  -r docs/check/requirements.txt

# Each step says how long it took, so CI's budget (30 minutes on 2 cores) is
# watched, not guessed.
step_started=$SECONDS
step() {
  echo "   (took $(( SECONDS - step_started ))s)"
  step_started=$SECONDS
  echo "== $*"
}

echo "== format"
cargo fmt --check

# Lints every target of the crate: the library, binary, tests, examples and
# benchmarks, which compiles the benchmarks without an optimised build
# (they are measured by hand: see the README).
step "lint: clippy --all-targets"
cargo clippy --locked --all-targets -- -D warnings

# The core and the web build's own code (src/abi/wasm.rs, the wasm-reactor
# feature) compile for wasm32-wasip1 and lint clean, as the web module is
# built (scripts/build-wasm.sh: no CLI, no type checker). The web tests below
# build and link the module itself.
step "wasm32-wasip1: check and lint, with the wasm-reactor feature"
cargo clippy --locked --target wasm32-wasip1 --lib --no-default-features --features wasm-reactor -- -D warnings

step "Rust tests"
cargo test --locked

# The suites written against the C entry points (tests/common's Host) again,
# with every session isolated in a worker process: the same requests must
# give the same responses (tests/isolation.rs, in the run above, covers what
# only isolation guarantees).
step "Rust tests of the C ABI, every session isolated"
MONTY_WIRE_TEST_ISOLATED=1 cargo test --locked --test ffi_run --test ffi_repl --test error_codes \
  --test ffi_safety --test invalid_values --test mounts --test os_paths --test memory_limit \
  --test skip_type_check --test print_delivery

# The stack tests again in an optimised build, whose frames differ from a
# debug build's; without the default features, so no optimised type checker
# is built for them.
step "stack tests, optimised"
cargo test --locked --release --no-default-features --test stack

step "codec tests on wasm32-wasip1 (32-bit, under Node's WASI)"
if ! build_log=$(cargo test --locked --target wasm32-wasip1 --no-default-features --test roundtrip --test malformed --test isolation_refused --no-run 2>&1); then
  echo "$build_log"
  exit 1
fi
wasm_tests=$(echo "$build_log" | sed -n 's/.*Executable .* (\(.*\.wasm\))$/\1/p')
[ -n "$wasm_tests" ] || { echo "no wasm32-wasip1 test modules were built"; exit 1; }
for module in $wasm_tests; do
  node --no-warnings scripts/wasi-run.mjs "$module"
done

# The fuzz crate is a workspace of its own (libFuzzer needs nightly flags);
# checked into the main target directory, it reuses the lint step's
# dependencies.
step "fuzz targets compile"
cargo check --locked --manifest-path fuzz/Cargo.toml --target-dir target

step "cross-language tests (pycapnp, and the C ABI through ctypes)"
.venv/bin/python -m pytest tests/python -q

# No Dart SDK runs here: the guide's samples are parsed with tree-sitter's
# Dart grammar, and tests/python/test_dart_guide.py replays their protocol
# steps through ctypes.
step "Dart samples in the docs parse (tree-sitter Dart grammar)"
.venv/bin/python scripts/check-dart-samples.py

step "web front end: the wasm build in Node and headless Chromium (capnp-es)"
bash scripts/test-web.sh
step "done"
