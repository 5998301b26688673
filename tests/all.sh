#!/bin/sh
# The whole test suite, as root on Debian 12: installs what it needs, then
#   1. cross/build: static binaries for x86_64, aarch64 and armv7 (tests/field.rs runs the
#      x86_64 one beside the glibc build);
#   2. cargo test --release: unit tests and the integration tests (wrapper, daemon elections,
#      keepalived interop, tshark decoding, exactly-once torture, hostile input, packet attack,
#      field reports, the etcd backend on a real 3-member etcd cluster, virtual addresses), then the TLS build
#      against an etcd that requires client certificates (tests/etcd_tls.rs, --features tls),
#      then tests/cross.sh: the static binaries checked under qemu-user, tests/man.sh (the
#      man pages lint-clean and complete) and tests/dist.sh (systemd unit, Buildroot and
#      OpenWrt packages);
#   3. tests/appliance.sh: two busybox appliances (one aarch64 under emulation) running
#      crond and the init script;
#   4. tests/fuzz.sh: every fuzz target for FUZZ_SECONDS (default 60) seconds.
set -eu
cd "$(dirname "$0")/.."
sh tests/setup.sh
# shellcheck source=/dev/null # rustup writes it
if [ -f "$HOME/.cargo/env" ]; then . "$HOME/.cargo/env"; fi
bash cross/build
cargo test --release
cargo test --release --features tls --target-dir target/tls --test etcd_tls
bash tests/cross.sh
sh tests/man.sh
sh tests/dist.sh
bash tests/appliance.sh
bash tests/fuzz.sh
