#!/bin/sh
# Installs what building and testing rcron needs on a fresh Debian 12 machine (run as root;
# Rust through rustup when there is none; a caller that goes on to build sources
# ~/.cargo/env, as tests/start.sh and tests/all.sh do):
# the Debian packages the tests use as real peers and hosts (faketime: per-node wall clocks
# in the exactly-once torture; mandoc, shellcheck and systemd-analyze: the man pages' and
# dist/'s checks; prometheus for promtool, which lints --status --prometheus), and the Rust
# targets.
set -eu
export DEBIAN_FRONTEND=noninteractive
need=""
for p in iproute2 util-linux nftables keepalived tshark busybox-static qemu-user-static \
         python3 musl-tools procps faketime etcd-server etcd-client mandoc shellcheck systemd \
         man-db iputils-ping; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || need="$need $p"
done
if [ -n "$need" ]; then
    apt-get update -qq
    # shellcheck disable=SC2086 # one word per package
    apt-get install -y -qq $need >/dev/null
fi
# promtool only: without its recommends (node_exporter and friends).
if ! command -v promtool >/dev/null; then
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi
# Rust (edition 2024 needs a newer one than Debian's): rustup's stable, when rustup is not
# here (a Debian cargo alone does not count).
# shellcheck source=/dev/null # rustup writes it
if [ -f "$HOME/.cargo/env" ]; then . "$HOME/.cargo/env"; fi
if ! command -v rustup >/dev/null; then
    apt-get install -y -qq curl ca-certificates build-essential >/dev/null
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
    # shellcheck source=/dev/null # rustup writes it
    . "$HOME/.cargo/env"
fi
rustup target add x86_64-unknown-linux-musl aarch64-unknown-linux-musl >/dev/null 2>&1 || \
    rustup target add x86_64-unknown-linux-musl aarch64-unknown-linux-musl
echo "setup: ok"
