#!/usr/bin/env bash
# Installs what building monty-wire needs: the Rust toolchain pinned in
# rust-toolchain.toml, with clippy, rustfmt and the wasm32-wasip1 target.
# (rustup does not install it on demand here: RUSTUP_AUTO_INSTALL=0.)
set -euo pipefail
cd "$(dirname "$0")/.."

toolchain=$(sed -n 's/^channel *= *"\(.*\)"/\1/p' rust-toolchain.toml)
rustup toolchain install "$toolchain" --profile minimal \
  --component clippy --component rustfmt --target wasm32-wasip1
