#!/bin/sh
# tests/man.sh: the hand-written man pages are clean and complete.
#
# Fails (exit 1, naming what is wrong) unless
#   (a) `mandoc -T lint -W warning` prints nothing for man/rcron.8 and man/rcron.conf.5;
#   (b) every long option that `rcron --help` prints appears in man/rcron.8;
#   (c) every key of the KEYS table in src/config.rs has a key entry in man/rcron.conf.5
#       (a `.TP` line followed by `.B key`, `.BI "key ...` or `.BR "key ...`).
#
# Needs: mandoc (Debian package `mandoc`) and a built binary (`cargo build --release`;
# RCRON_MAN_BINARY=PATH tests another one). Run from anywhere: sh tests/man.sh

set -u
cd "$(dirname "$0")/.." || exit 1

bin=${RCRON_MAN_BINARY:-target/release/rcron}
page8=man/rcron.8
page5=man/rcron.conf.5
failed=0

fail() {
    echo "FAIL: $*" >&2
    failed=1
}

for f in "$page8" "$page5" src/config.rs; do
    [ -f "$f" ] || { echo "FAIL: $f is missing" >&2; exit 1; }
done
command -v mandoc >/dev/null 2>&1 || {
    echo "FAIL: mandoc is not installed (Debian: apt-get install mandoc)" >&2
    exit 1
}
[ -x "$bin" ] || { echo "FAIL: $bin is missing: run cargo build --release" >&2; exit 1; }

# (a) lint: any output at all is a failure.
for page in "$page8" "$page5"; do
    out=$(mandoc -T lint -W warning "$page" 2>&1)
    if [ -n "$out" ]; then
        fail "mandoc -T lint -W warning $page:"
        printf '%s\n' "$out" >&2
    fi
done

# The page's text without roff comment lines, `\-` as `-`.
text_of() {
    grep -v '^\.\\"' "$1" | sed 's/\\-/-/g'
}

# (b) long options of --help, in man/rcron.8.
help=$("$bin" --help 2>&1) || fail "$bin --help exited with $?"
options=$(printf '%s\n' "$help" | tr -cs 'a-z0-9-' '\n' | grep '^--[a-z]' | sed 's/-*$//' | sort -u)
[ -n "$options" ] || fail "no --option found in the output of $bin --help"
text8=$(text_of "$page8")
for opt in $options; do
    if ! printf '%s\n' "$text8" | grep -Eq -- "(^|[^a-z0-9-])$opt([^a-z0-9-]|\$)"; then
        fail "$page8 does not document $opt (printed by rcron --help)"
    fi
done

# (c) keys of KEYS, as key entries of man/rcron.conf.5.
keys=$(awk '/const KEYS/ { inside = 1; next } inside && /\];/ { exit } inside' src/config.rs |
    sed -n 's/^[[:space:]]*("\([a-z0-9_]*\)".*/\1/p')
[ -n "$keys" ] || fail "no key found between 'const KEYS' and '];' in src/config.rs"
entries=$(awk '
    prev ~ /^\.TP/ && /^\.B[IR]? / {
        s = $0
        sub(/^\.B[IR]? +"?/, "", s)
        sub(/[ "].*/, "", s)
        print s
    }
    { prev = $0 }' "$page5" | sed 's/\\-/-/g')
for key in $keys; do
    if ! printf '%s\n' "$entries" | grep -qx -- "$key"; then
        fail "$page5 has no key entry for $key (KEYS in src/config.rs)"
    fi
done

if [ "$failed" -ne 0 ]; then
    exit 1
fi
nopt=$(printf '%s\n' "$options" | wc -l)
nkey=$(printf '%s\n' "$keys" | wc -l)
echo "ok: man pages lint-clean; $((nopt)) long options of --help in $page8;" \
    "$((nkey)) config keys in $page5"
