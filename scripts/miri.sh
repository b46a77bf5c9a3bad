#!/usr/bin/env bash
# The codec and framing tests under Miri, which checks the crate's unsafe
# code (the framed output allocator, reading messages in place at any
# alignment, the C entry points' buffers) for undefined behaviour: aliasing
# (Stacked Borrows), alignment, out-of-bounds and use-after-free.
#
# What runs, and why only this: Miri interprets every instruction, about a
# thousand times slower than native code, so monty's interpreter (every
# test that runs Python) would take hours. The codec is where this crate's
# own unsafe code and all its byte handling live, and none of it runs
# Python:
#   - the library's unit tests of `codec::` (the framed allocator, framing)
#     and `dump::` (sealing and opening envelopes);
#   - tests/roundtrip.rs: every node kind and alignment, by hand-written
#     cases. Its proptest blocks fix their own case counts (512), which
#     PROPTEST_CASES cannot lower, so they are skipped here, and so are the
#     100,000-level nesting case (minutes in Miri; the same code runs at
#     shallow depths in the others), the generator's self-check (thousands
#     of samples) and the cases that run Python programs;
#   - tests/malformed.rs: one test per decode error, and its byte-mutating
#     properties at PROPTEST_CASES cases each;
#   - tests/protocol_roundtrip.rs: every request and response arm, by hand
#     (its proptest block fixes 256 cases and is skipped).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! cargo +nightly miri --version >/dev/null 2>&1; then
  rustup toolchain install nightly --profile minimal
  rustup component add --toolchain nightly miri rust-src
fi

export PROPTEST_CASES="${PROPTEST_CASES:-8}"
# Isolation off: proptest reads its regression files from disk.
export MIRIFLAGS="${MIRIFLAGS:--Zmiri-disable-isolation}"
miri() { cargo +nightly miri test --locked "$@"; }

echo "== lib: codec and dump unit tests"
miri --lib -- codec:: dump::
echo "== tests/roundtrip.rs (hand-written cases)"
miri --test roundtrip -- \
  --skip values_round_trip_node_for_node --skip exceptions_round_trip \
  --skip limits_round_trip --skip values_decode_from_unaligned_bytes \
  --skip deep_nesting_round_trips_up_to_the_limit --skip generator_covers_every_node_kind \
  --skip deep_results_of_real_programs_round_trip --skip values_from_real_programs_round_trip
echo "== tests/malformed.rs (PROPTEST_CASES=$PROPTEST_CASES)"
miri --test malformed
echo "== tests/protocol_roundtrip.rs (hand-written cases)"
miri --test protocol_roundtrip -- \
  --skip inputs_round_trip_node_for_node --skip any_roots_of_an_arena_decode
echo "miri: all passed"
