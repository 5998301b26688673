#!/bin/sh
# Installs what building and testing rcron needs on a fresh Debian 12 machine (run as root):
# the Debian packages the tests use as real peers and hosts (faketime: per-node wall clocks
# in the exactly-once torture; mandoc, shellcheck and systemd-analyze: the man pages' and
# dist/'s checks), and the Rust targets.
set -eu
export DEBIAN_FRONTEND=noninteractive
need=""
for p in iproute2 util-linux nftables keepalived tshark busybox-static qemu-user-static \
         python3 musl-tools procps faketime etcd-server etcd-client mandoc shellcheck systemd \
         man-db; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || need="$need $p"
done
if [ -n "$need" ]; then
    apt-get update -qq
    # shellcheck disable=SC2086 # one word per package
    apt-get install -y -qq $need >/dev/null
fi
rustup target add x86_64-unknown-linux-musl aarch64-unknown-linux-musl >/dev/null 2>&1 || \
    rustup target add x86_64-unknown-linux-musl aarch64-unknown-linux-musl
echo "setup: ok"
