#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what it needs, then
# runs formatting and lint checks, the Rust tests, the wasm32-wasip1 build,
# the cross-language tests (pycapnp, the C++ reference implementation) and
# the web front end's tests (Node and headless Chromium).
set -euo pipefail
cd "$(dirname "$0")/.."

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
.venv/bin/pip install --quiet --disable-pip-version-check -r tests/python/requirements.txt

echo "== format and lint"
cargo fmt --check
cargo clippy --locked --all-targets -- -D warnings

# Every default feature (type checking too) and the web build's own code
# (src/wasm.rs, the wasm-reactor feature) compile for wasm32-wasip1, lint
# clean; the web tests below build and link the module itself.
echo "== wasm32-wasip1: check and lint, with type checking and the wasm-reactor feature"
cargo clippy --locked --target wasm32-wasip1 --lib --features wasm-reactor -- -D warnings

echo "== Rust tests"
cargo test --locked

echo "== codec tests on wasm32-wasip1 (32-bit, under Node's WASI)"
if ! build_log=$(cargo test --locked --target wasm32-wasip1 --test roundtrip --test malformed --no-run 2>&1); then
  echo "$build_log"
  exit 1
fi
wasm_tests=$(echo "$build_log" | sed -n 's/.*Executable .* (\(.*\.wasm\))$/\1/p')
[ -n "$wasm_tests" ] || { echo "no wasm32-wasip1 test modules were built"; exit 1; }
for module in $wasm_tests; do
  node --no-warnings scripts/wasi-run.mjs "$module"
done

echo "== benchmarks compile (they are measured by hand: see the README)"
cargo bench --locked --no-run

echo "== fuzz targets compile"
cargo check --locked --manifest-path fuzz/Cargo.toml

echo "== cross-language tests (pycapnp, and the C ABI through ctypes)"
.venv/bin/python -m pytest tests/python -q

echo "== web front end: the wasm build in Node and headless Chromium (capnp-es)"
bash scripts/test-web.sh
