#!/bin/sh
# The first command on a fresh Debian 12 machine, as root: installs what is needed (Debian
# packages, and Rust through rustup when there is no cargo), builds rcron, and runs the demo
# (tests/demo.sh: two nodes with rcrond and busybox crond, a crash, who ran each minute).
set -eu
cd "$(dirname "$0")/.."
sh tests/setup.sh
# rustup's cargo first (setup.sh installs it; Debian's own cargo is too old for edition 2024).
# shellcheck source=/dev/null # rustup writes it
if [ -f "$HOME/.cargo/env" ]; then . "$HOME/.cargo/env"; fi
cargo build --release
sh tests/demo.sh
