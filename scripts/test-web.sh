#!/usr/bin/env bash
# The web front end's tests, from a fresh machine: installs the npm packages
# (js/package-lock.json), Debian's chromium if it is missing, builds
# js/dist/monty_wire.wasm and the capnp-es schema code (js/gen/), then runs
#   - the glue in Node, with Node's built-in test runner, and
#   - the same scenarios plus the Web Worker wrapper in headless Chromium.
# Needs Node.js 20+ and npm; apt-get for chromium.
#   bash scripts/test-web.sh [--opt]     (--opt: test the wasm-opt -Oz build)
set -euo pipefail
cd "$(dirname "$0")/.."

build_args=()
[ "${1:-}" = "--opt" ] && build_args+=(--opt)

echo "== npm ci (js/)"
(cd js && npm ci --no-audit --no-fund --loglevel=error)

if ! [ -x "${CHROMIUM_PATH:-/usr/bin/chromium}" ]; then
  echo "== apt-get install chromium"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
fi

echo "== build js/dist/monty_wire.wasm"
bash scripts/build-wasm.sh "${build_args[@]}"

echo "== generate js/gen/ from schema/monty_wire.cgr"
node js/scripts/gen-schema.mjs

echo "== type declarations"
(cd js && npx --no-install tsc -p test)

echo "== tests: Node and headless Chromium"
MONTY_WIRE_REQUIRE_CHROMIUM=1 node --test js/test/*.test.mjs
