#!/usr/bin/env bash
# Rewrites schema/monty_wire.cgr from schema/monty_wire.capnp.
#
# The build replays the committed CodeGeneratorRequest, so only a schema change
# needs the Cap'n Proto compiler (Debian: `apt-get install capnproto`). The
# `schema_is_current` test runs the same command and compares the bytes.
set -euo pipefail
cd "$(dirname "$0")"
capnp compile -o- --src-prefix=. monty_wire.capnp > monty_wire.cgr
echo "wrote schema/monty_wire.cgr ($(wc -c < monty_wire.cgr) bytes) with $(capnp --version)"
