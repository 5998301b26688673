#!/bin/sh
# Static binary sizes with and without the etcd backend, and with TLS to etcd (the `tls`
# feature: rustls and ring, x86_64 only here: ring's C and assembly need a cross C compiler
# for aarch64 and armv7, which cross/build does not set up). Budget: 512 KiB.
#
#   sh tests/bench/sizes.sh        (as root, after tests/setup.sh)
set -eu
cd "$(dirname "$0")/../.."
row() { printf '%-14s %s\n' "$1" "$(sed -n 's/^\([a-z0-9_-]*\) *\([0-9]*\) bytes.*/\1 \2/p' | tr '\n' ' ')"; }
bash cross/build --no-install 2>/dev/null | row "default (etcd)" || true
bash cross/build --no-install --no-default-features 2>/dev/null | row "vrrp only" || true
bash cross/build --no-install --features tls x86_64-unknown-linux-musl 2>/dev/null | row "etcd + tls" || true
