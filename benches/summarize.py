#!/usr/bin/env python3
"""Prints the comparison tables of the README's Benchmarks section from the results
of the last `cargo bench` (target/criterion, or $CARGO_TARGET_DIR/criterion).

    cargo bench && python3 benches/summarize.py

Each ratio divides two means measured in the same run.
"""

import json
import os
import sys
from pathlib import Path

TARGET = Path(os.environ.get("CARGO_TARGET_DIR", Path(__file__).resolve().parent.parent / "target"))
CRITERION = TARGET / "criterion"

CODEC_CASES = [
    "int",
    "str",
    "list_100k_int",
    "dict_10k_str_tuple",
    "records_1k",
    "bytes_16mib",
    "deep_tree_500",
]


def mean_ns(group: str, bench: str) -> float:
    """The mean of one benchmark, in nanoseconds."""
    path = CRITERION / group.replace("/", "_") / bench / "new" / "estimates.json"
    with open(path) as f:
        return json.load(f)["mean"]["point_estimate"]


def fmt(ns: float) -> str:
    if ns < 1e3:
        return f"{ns:.0f} ns"
    if ns < 1e6:
        return f"{ns / 1e3:.1f} µs"
    if ns < 1e9:
        return f"{ns / 1e6:.2f} ms"
    return f"{ns / 1e9:.2f} s"


def codec() -> None:
    print("### Value codec: round trip (encode + decode), wire against JSON and postcard\n")
    print("| value | wire enc | wire dec | wire round trip | JSON round trip | postcard round trip "
          "| clone (floor) | JSON / wire | postcard / wire |")
    print("|---|---|---|---|---|---|---|---|---|")
    for case in CODEC_CASES:
        group = f"codec/{case}"
        w_enc, w_dec = mean_ns(group, "wire_encode"), mean_ns(group, "wire_decode")
        j = mean_ns(group, "json_encode") + mean_ns(group, "json_decode")
        p = mean_ns(group, "postcard_encode") + mean_ns(group, "postcard_decode")
        clone = mean_ns(group, "floor_clone")
        w = w_enc + w_dec
        print(f"| {case} | {fmt(w_enc)} | {fmt(w_dec)} | {fmt(w)} | {fmt(j)} | {fmt(p)} | {fmt(clone)} "
              f"| **{j / w:.2f}x** | {p / w:.2f}x |")
    print()
    print("| value | JSON enc | JSON dec | postcard enc | postcard dec |")
    print("|---|---|---|---|---|")
    for case in CODEC_CASES:
        group = f"codec/{case}"
        print(f"| {case} | {fmt(mean_ns(group, 'json_encode'))} | {fmt(mean_ns(group, 'json_decode'))} "
              f"| {fmt(mean_ns(group, 'postcard_encode'))} | {fmt(mean_ns(group, 'postcard_decode'))} |")
    print()
    group = "read_in_place/list_100k_int"
    full = mean_ns(group, "full_decode")
    print("### Reading one field of a large value (100k-int list) in place\n")
    print("| read | time | full decode / this |")
    print("|---|---|---|")
    for bench in ["root_kind", "one_element", "full_decode"]:
        t = mean_ns(group, bench)
        print(f"| {bench} | {fmt(t)} | {full / t:,.0f}x |")
    print()


def boundary() -> None:
    print("### Boundary overhead\n")
    print("| comparison | direct (monty Rust API) | through the C ABI and the wire | wire / direct |")
    print("|---|---|---|---|")
    group = "boundary/turn_loop_10k"
    direct = mean_ns(group, "direct")
    for bench, label in [("wire", "10,000-call turn loop, host decodes whole responses"),
                         ("wire_in_place", "10,000-call turn loop, host reads responses in place")]:
        wire = mean_ns(group, bench)
        print(f"| {label} | {fmt(direct)} | {fmt(wire)} | **{wire / direct:.2f}x** |")
    group = "boundary/cold_start"
    direct, wire = mean_ns(group, "direct"), mean_ns(group, "wire")
    print(f"| cold start: open, run `1 + 1`, close | {fmt(direct)} | {fmt(wire)} | **{wire / direct:.2f}x** |")
    print()
    group = "boundary/turn_loop_10k"
    direct, wire = mean_ns(group, "direct") / 1e4, mean_ns(group, "wire") / 1e4
    print(f"Per turn: direct {fmt(direct)}, wire {fmt(wire)}, overhead {fmt(wire - direct)}. "
          "The codec steps of one turn on their own:\n")
    print("| step | time |")
    print("|---|---|")
    total = 0.0
    for bench in ["host_encode_resume", "session_decode_resume", "session_encode_call", "host_decode_call"]:
        t = mean_ns("boundary/turn_parts", bench)
        total += t
        print(f"| {bench} | {fmt(t)} |")
    print(f"| sum | {fmt(total)} |")
    print()


def bulk() -> None:
    print("### Bulk bytes: the host reading a 16 MiB bytes result\n")
    group = "bulk/read_16mib"
    memcpy = mean_ns(group, "memcpy")
    print("| read | time | this / memcpy |")
    print("|---|---|---|")
    for bench in ["memcpy", "read_in_place", "read_in_place_copy", "full_decode"]:
        t = mean_ns(group, bench)
        print(f"| {bench} | {fmt(t)} | {t / memcpy:.4g}x |")
    print()
    group = "bulk/produce_16mib"
    direct, wire = mean_ns(group, "direct"), mean_ns(group, "wire")
    print(f"Producing it (information, no target): direct `MontyRun::run` {fmt(direct)}, "
          f"`run` through the C ABI {fmt(wire)} ({wire / direct:.2f}x).\n")


def main() -> int:
    if not CRITERION.is_dir():
        print(f"no results in {CRITERION}: run `cargo bench` first", file=sys.stderr)
        return 1
    codec()
    boundary()
    bulk()
    return 0


if __name__ == "__main__":
    sys.exit(main())
