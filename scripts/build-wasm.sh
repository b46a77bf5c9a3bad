#!/usr/bin/env bash
# Builds the web front end's module, js/dist/monty_wire.wasm: monty-wire for
# wasm32-wasip1 as a WASI reactor (it exports `_initialize`, no `_start`),
# with the C entry points plus the wasm exports of src/abi/wasm.rs (the
# `wasm-reactor` feature). It is built without the other default features
# (no CLI, no type checking) in the `wasm` profile of Cargo.toml:
# opt-level "s", fat LTO in one codegen unit, stripped.
#
#   bash scripts/build-wasm.sh [--type-check] [--test-hooks] [--speed] [--opt] [--out FILE]
#     --type-check  include static type checking (about twice the size)
#     --test-hooks  include the crate's test hooks (an induced panic, for the
#                   trap tests; never ship this build)
#     --speed       build in the `wasm-speed` profile (opt-level 3): faster,
#                   and larger (default out js/dist/monty_wire_speed.wasm)
#     --opt         shrink the result with `wasm-opt -Oz` (binaryen from npm,
#                   installed by `npm ci` in js/; adds a few minutes)
#     --out FILE    where to put the module (default js/dist/monty_wire.wasm)
#
# Builds with other features reuse the compiled dependencies: only this
# crate and the link step are built again.
set -euo pipefail
cd "$(dirname "$0")/.."

features=(--no-default-features --features wasm-reactor)
opt=0
profile=wasm
out=
while [ $# -gt 0 ]; do
  case "$1" in
    --type-check) features+=(--features type-check) ;;
    --test-hooks) features+=(--features test-hooks) ;;
    --speed) profile=wasm-speed ;;
    --opt) opt=1 ;;
    --out) out=$2; shift ;;
    *) echo "usage: $0 [--type-check] [--test-hooks] [--speed] [--opt] [--out FILE]" >&2; exit 2 ;;
  esac
  shift
done

if [ -z "$out" ]; then
  out=js/dist/monty_wire.wasm
  [ "$profile" = wasm-speed ] && out=js/dist/monty_wire_speed.wasm
fi

bash scripts/setup.sh >/dev/null

started=$(date +%s)
cargo build --locked --profile "$profile" --target wasm32-wasip1 --lib "${features[@]}"
built="${CARGO_TARGET_DIR:-target}/wasm32-wasip1/$profile/monty_wire.wasm"
mkdir -p "$(dirname "$out")"
cp "$built" "$out"
echo "build-wasm: cargo build took $(( $(date +%s) - started ))s; $out is $(stat -c %s "$out") bytes"

if [ "$opt" = 1 ]; then
  [ -x js/node_modules/.bin/wasm-opt ] || (cd js && npm ci --no-audit --no-fund)
  started=$(date +%s)
  # The features rustc 1.96 enables for wasm32 by default; wasm-opt must
  # know them to read the module, and uses no others.
  js/node_modules/.bin/wasm-opt -Oz \
    --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
    --enable-mutable-globals --enable-reference-types --enable-multivalue \
    "$out" -o "$out.opt"
  mv "$out.opt" "$out"
  echo "build-wasm: wasm-opt -Oz took $(( $(date +%s) - started ))s; $out is $(stat -c %s "$out") bytes"
fi
