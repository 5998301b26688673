#!/usr/bin/env bash
# Checks the cross-built binaries (made by cross/build) for each appliance target:
#   - static: no INTERP program header and no NEEDED entry (readelf), `file` agrees;
#   - stripped and at most 512 KiB;
#   - runs (natively, or under qemu-user for ARM) and `--version` names its target triple;
#   - the wrapper's basic cases: active runs the job and returns its exit code and output,
#     passive skips with 0, a missing command gives 127, a usage error 64, a bad config 78.
# Prints PASS/FAIL lines, a size table, and `N passed, M failed`; exits 1 on any failure.
#
# usage: tests/cross.sh [TRIPLE...]     (default: the three targets of cross/build)
# Needs: qemu-user-static (ARM targets are run through qemu-<arch>-static explicitly, so
# binfmt_misc is not required here), file, binutils.
set -uo pipefail

cd "$(dirname "$0")/.."
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] ||
    TARGETS=(x86_64-unknown-linux-musl aarch64-unknown-linux-musl armv7-unknown-linux-musleabihf)
BUDGET=$((512 * 1024))

pass=0
fail=0
ok() { pass=$((pass + 1)); echo "PASS $*"; }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }

WORK=$(mktemp -d /tmp/rcron-cross.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

# The emulator for a target, empty when it runs natively here.
emulator() {
    local arch=${1%%-*}
    case $arch in
        "$(uname -m)") echo "" ;;
        aarch64) echo qemu-aarch64-static ;;
        armv7 | arm) echo qemu-arm-static ;;
        *) echo "qemu-$arch-static" ;;
    esac
}

# Runs BIN under EMU with a time limit; stdout+stderr to $WORK/out, exit code in $rc.
run() {
    local out=$WORK/out
    if [ -n "$EMU" ]; then
        timeout 30 "$EMU" "$BIN" "$@" >"$out" 2>&1
    else
        timeout 30 "$BIN" "$@" >"$out" 2>&1
    fi
    rc=$?
}

# expect_rc NAME WANT: checks $rc.
expect_rc() {
    if [ "$rc" -eq "$2" ]; then ok "$T: $1 (exit $rc)"; else
        bad "$T: $1: exit $rc, want $2; output: $(head -c 300 "$WORK/out" | tr '\n' ' ')"
    fi
}

table=()
for T in "${TARGETS[@]}"; do
    BIN=target/$T/release/rcron
    if [ ! -x "$BIN" ]; then
        bad "$T: $BIN missing (run cross/build first)"
        table+=("$(printf '%-32s %10s' "$T" missing)")
        continue
    fi
    EMU=$(emulator "$T")
    if [ -n "$EMU" ] && ! command -v "$EMU" >/dev/null; then
        bad "$T: $EMU not installed (apt-get install qemu-user-static)"
        continue
    fi

    # -- static and stripped --
    info=$(file -b "$BIN")
    if readelf -lW "$BIN" | grep -q INTERP; then
        bad "$T: has a program interpreter (dynamically linked): $info"
    elif readelf -dW "$BIN" | grep -q '(NEEDED)'; then
        bad "$T: needs shared libraries: $(readelf -dW "$BIN" | grep NEEDED | tr -s ' ')"
    elif ! grep -Eq 'statically linked|static-pie linked' <<<"$info"; then
        bad "$T: file(1) does not call it static: $info"
    else
        ok "$T: static ($(grep -Eo 'statically linked|static-pie linked' <<<"$info"))"
    fi
    if grep -q ', stripped' <<<"$info" && ! readelf -SW "$BIN" | grep -q '\.symtab'; then
        ok "$T: stripped"
    else
        bad "$T: not stripped: $info"
    fi

    # -- size --
    size=$(stat -c %s "$BIN")
    if [ "$size" -le "$BUDGET" ]; then
        ok "$T: size $size bytes <= $BUDGET"
        verdict=ok
    else
        bad "$T: size $size bytes > $BUDGET"
        verdict="OVER BUDGET"
    fi
    table+=("$(awk -v t="$T" -v s="$size" -v v="$verdict" -v e="${EMU:-native}" 'BEGIN {
        printf "%-32s %8d bytes %7.1f KiB  %-11s %s", t, s, s / 1024, v, e }')")

    # -- --version --
    run --version
    if [ "$rc" -eq 0 ] && grep -q "target $T)" "$WORK/out"; then
        ok "$T: --version: $(head -1 "$WORK/out")"
    else
        bad "$T: --version: exit $rc, output: $(head -c 200 "$WORK/out")"
    fi

    # -- the wrapper, state-file mode (no election configured) --
    D=$WORK/$T
    mkdir -p "$D"
    cat >"$D/rcron.conf" <<EOF
cluster_name = cross-$T
state_file = $D/state
lock_dir = $D
EOF
    echo active >"$D/state"
    run --conf "$D/rcron.conf" -- sh -c 'echo job-output; exit 3'
    expect_rc "active: the job's exit code comes back" 3
    if grep -qx job-output "$WORK/out"; then ok "$T: active: the job's output passes through"; else
        bad "$T: active: job output missing: $(head -c 300 "$WORK/out")"
    fi
    run --conf "$D/rcron.conf" true
    expect_rc "active: rcron --conf FILE COMMAND (original form)" 0

    echo passive >"$D/state"
    rm -f "$D/ran"
    run --conf "$D/rcron.conf" -- touch "$D/ran"
    expect_rc "passive: skipped with 0" 0
    if [ -e "$D/ran" ]; then bad "$T: passive: the job ran"; else ok "$T: passive: the job did not run"; fi

    echo active >"$D/state"
    run --conf "$D/rcron.conf" -- /nonexistent/command
    expect_rc "missing command" 127
    run --conf "$D/rcron.conf" --no-such-option true
    expect_rc "usage error (unknown option)" 64
    run
    expect_rc "usage error (no command)" 64
    printf 'no_such_key = 1\n' >"$D/bad.conf"
    run --conf "$D/bad.conf" true
    expect_rc "config error" 78
done

echo
echo "target                              size (stripped; budget 512 KiB)     runs with"
for l in "${table[@]}"; do echo "$l"; done
echo
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
