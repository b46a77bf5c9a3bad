#!/usr/bin/env bash
# The web front end's tests, from a fresh machine. Installs Debian's chromium
# if it is missing, then:
#   - runs the quick start of js/README.md exactly as written (it builds
#     js/dist/monty_wire.wasm, installs the npm packages of js/package-lock.json,
#     generates the capnp-es schema code in js/gen/ and runs the example),
#   - builds js/dist/monty_wire_test_hooks.wasm, the same module with the
#     crate's test hooks (an induced panic), for the trap tests,
#   - type-checks js/test/types.ts against the declarations, and
#   - runs the glue in Node (Node's test runner) and the same scenarios plus
#     the Web Worker wrapper in headless Chromium.
# Needs Node.js 20+ and npm; apt-get for chromium.
#   bash scripts/test-web.sh [--opt]     (--opt: test the wasm-opt -Oz build)
set -euo pipefail
cd "$(dirname "$0")/.."

opt=0
[ "${1:-}" = "--opt" ] && opt=1

if ! [ -x "${CHROMIUM_PATH:-/usr/bin/chromium}" ]; then
  echo "== apt-get install chromium"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
fi

echo "== the quick start of js/README.md, as written"
# Its first sh block, between "## Quick start" and the next heading.
quickstart=$(awk '/^## /{on = ($0 == "## Quick start")} on && /^```sh$/{block = 1; next} block && /^```$/{exit} block' js/README.md)
[ -n "$quickstart" ] || { echo "no sh block under '## Quick start' in js/README.md"; exit 1; }
printf '%s\n' "$quickstart" | sed 's/^/  $ /'
bash -euo pipefail -c "$quickstart"

if [ "$opt" = 1 ]; then
  echo "== js/dist/monty_wire.wasm through wasm-opt -Oz"
  bash scripts/build-wasm.sh --opt
fi

echo "== build js/dist/monty_wire_test_hooks.wasm (with the test hooks)"
hooks_args=(--test-hooks --out js/dist/monty_wire_test_hooks.wasm)
[ "$opt" = 1 ] && hooks_args+=(--opt)
bash scripts/build-wasm.sh "${hooks_args[@]}"

echo "== type declarations (the glue's, and the generated codec's)"
(cd js && npx --no-install tsc -p test && npx --no-install tsc -p codec)

echo "== tests: Node and headless Chromium"
MONTY_WIRE_REQUIRE_CHROMIUM=1 node --test js/test/*.test.mjs
