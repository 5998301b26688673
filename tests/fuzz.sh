#!/usr/bin/env bash
# CI fuzz run (issue 6): builds every cargo-fuzz target in fuzz/ and runs each one for
# FUZZ_SECONDS (default 60) on a temporary copy of its committed corpus, so CI never grows
# the repository. Fails (non-zero) if any target crashes, panics, leaks, times out on one
# input or runs out of memory; prints each target's executions and a last line
# `N passed, M failed`. A failing input is kept under fuzz/artifacts/TARGET/ (git-ignored)
# and printed in hex, so it can be turned into a unit test.
#
# Toolchain: nightly when rustup has one; otherwise the stable toolchain with
# RUSTC_BOOTSTRAP=1 (cargo fuzz passes -Zsanitizer=address, a nightly-only flag), since a
# CI machine has one toolchain and cannot fetch another.
set -uo pipefail
cd "$(dirname "$0")/.."

secs=${FUZZ_SECONDS:-60}

if ! command -v cargo-fuzz >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz"
    cargo install cargo-fuzz --locked || {
        echo "fuzz: cargo install cargo-fuzz failed"
        exit 1
    }
fi

if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    fuzz=(cargo +nightly fuzz)
else
    echo "fuzz: no nightly toolchain; using stable with RUSTC_BOOTSTRAP=1"
    export RUSTC_BOOTSTRAP=1
    fuzz=(cargo fuzz)
fi

echo "fuzz: building"
if ! "${fuzz[@]}" build 2>&1 | tail -n 3; then
    echo "fuzz: build failed"
    echo "0 passed, 1 failed"
    exit 1
fi
# Each target's binary; a target missing from it counts as failed below.
triple=$(rustc -vV | sed -n 's/^host: //p')
bindir=fuzz/target/$triple/release

mapfile -t targets < <("${fuzz[@]}" list)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

passed=0
failed=0
for t in "${targets[@]}"; do
    if [ ! -x "$bindir/$t" ]; then
        echo "fuzz: $t: not built"
        failed=$((failed + 1))
        continue
    fi
    mkdir -p "$work/corpus/$t" "$work/artifacts/$t"
    if [ -d "fuzz/corpus/$t" ]; then
        cp -r "fuzz/corpus/$t/." "$work/corpus/$t/"
    fi
    seeds=$(find "$work/corpus/$t" -type f | wc -l)
    log=$work/$t.log
    start=$(date +%s)
    "$bindir/$t" "$work/corpus/$t" \
        -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$work/artifacts/$t/" >"$log" 2>&1
    rc=$?
    took=$(($(date +%s) - start))
    # The final stats line; a run cut short by a crash has only its last status line.
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    if [ -z "$execs" ]; then
        execs=$(sed -n 's/^#\([0-9][0-9]*\).*/\1/p' "$log" | tail -n 1)
    fi
    execs=${execs:-0}
    grown=$(find "$work/corpus/$t" -type f | wc -l)
    rate=$((execs / (took > 0 ? took : 1)))
    if [ "$rc" -eq 0 ]; then
        echo "fuzz: $t: ok, $execs executions in ${took}s ($rate/s), corpus $seeds -> $grown inputs"
        passed=$((passed + 1))
    else
        echo "fuzz: $t: FAILED (exit $rc) after $execs executions in ${took}s"
        grep -E 'ERROR: libFuzzer|ERROR: AddressSanitizer|SUMMARY' "$log" | head -n 5
        sed -n '/panicked at/,+2p' "$log" | head -n 6
        mkdir -p "fuzz/artifacts/$t"
        for a in "$work/artifacts/$t"/*; do
            [ -f "$a" ] || continue
            cp "$a" "fuzz/artifacts/$t/"
            echo "fuzz: $t: input fuzz/artifacts/$t/$(basename "$a") ($(wc -c <"$a") bytes):"
            od -An -tx1 -v "$a" | head -n 16
        done
        failed=$((failed + 1))
    fi
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
