#!/usr/bin/env bash
# End-to-end test of the firmware overlay: two busybox appliances, each a chroot built from
# Debian's busybox-static, rootfs/ (installed with rootfs/install.sh) and a static rcron,
# each in its own network namespace, joined by a veth pair (192.0.2.1 and 192.0.2.2, both
# links named eth0 as on a real appliance, so the overlay's rcron.conf is used as shipped
# on alpha and with its three "per node" lines changed on beta).
#
#   alpha: the x86_64 musl binary, priority 150;
#   beta:  the aarch64 musl binary, run under qemu-user through binfmt_misc, priority 100.
#
# Each appliance runs busybox syslogd, rcrond started by /etc/init.d/rcron, and busybox
# crond with the crontab line `* * * * * rcron -- /usr/local/bin/job`. The scenario:
#   1. over two minute boundaries the job runs on alpha (active) only;
#   2. alpha's daemon (supervisor and worker) is killed with SIGKILL; beta takes over;
#      at the next minute boundary the job runs on beta only;
#   3. the init script: status (running / dead with a pid file / stopped), stop (leaves
#      `passive`, removes the pid file, idempotent), start (idempotent), restart, reload
#      (and reload of an invalid config, which keeps the daemon running), bad usage;
#      alpha, restarted, takes the active role back.
# Real time: busybox crond runs jobs at minute boundaries, so this takes about 3 minutes.
#
# usage: tests/appliance.sh            (as root; build first with cross/build)
#   RCRON_BIN_A / RCRON_BIN_B override alpha's and beta's binary;
#   RCRON_APPLIANCE_LOGS=DIR keeps both appliances' /var/log (syslog, crond, job runs).
# Prints PASS/FAIL lines and `N passed, M failed`; exits 1 on any failure. Leaves nothing
# behind: processes, /proc mounts, namespaces and files are removed on every exit path.
set -uo pipefail

cd "$(dirname "$0")/.."
TOP=$PWD
BIN_A=${RCRON_BIN_A:-$TOP/target/x86_64-unknown-linux-musl/release/rcron}
BIN_B=${RCRON_BIN_B:-$TOP/target/aarch64-unknown-linux-musl/release/rcron}
BUSYBOX=/bin/busybox

T0=$(date +%s)
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "PASS $*"; }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }
check() { # check DESCRIPTION COMMAND...: PASS when COMMAND succeeds
    local what=$1
    shift
    if "$@"; then ok "$what"; else bad "$what"; fi
}
note() { printf '     [%3ds] %s\n' $(($(date +%s) - T0)) "$*"; }
die() {
    echo "FAIL $*"
    fail=$((fail + 1))
    finish
}

# ---- names and cleanup -----------------------------------------------------------------

ID=$$
NS_A=rcapA$ID
NS_B=rcapB$ID
VETH_A=rcvA$ID
VETH_B=rcvB$ID
WORK=$(mktemp -d /tmp/rcron-appliance.XXXXXX)
DIR_A=$WORK/alpha
DIR_B=$WORK/beta
MOUNTS=()

# Every process whose root directory is one of our chroots: all of them are ours.
chroot_pids() {
    local p root
    for p in /proc/[0-9]*; do
        root=$(readlink "$p/root" 2>/dev/null) || continue
        case $root in "$DIR_A" | "$DIR_B") echo "${p#/proc/}" ;; esac
    done
}

cleanup() {
    local i pids m
    trap - EXIT INT TERM
    if [ -n "${RCRON_APPLIANCE_LOGS:-}" ]; then # keep the appliances' logs for a post-mortem
        mkdir -p "$RCRON_APPLIANCE_LOGS/alpha" "$RCRON_APPLIANCE_LOGS/beta"
        cp -r "$DIR_A/var/log/." "$RCRON_APPLIANCE_LOGS/alpha/" 2>/dev/null
        cp -r "$DIR_B/var/log/." "$RCRON_APPLIANCE_LOGS/beta/" 2>/dev/null
    fi
    for i in 1 2 3 4 5; do
        pids=$(chroot_pids)
        [ -n "$pids" ] || break
        # shellcheck disable=SC2086
        kill -9 $pids 2>/dev/null
        sleep 0.2
    done
    for m in "${MOUNTS[@]}"; do
        umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || echo "cleanup: cannot unmount $m" >&2
    done
    ip netns del "$NS_A" 2>/dev/null
    ip netns del "$NS_B" 2>/dev/null
    ip link del "$VETH_A" 2>/dev/null
    if [ -z "$(chroot_pids)" ] && ! grep -q " $WORK/" /proc/mounts; then
        rm -rf "$WORK"
    else
        echo "cleanup: left $WORK (busy)" >&2
    fi
}
trap cleanup EXIT
trap 'echo "interrupted"; exit 130' INT TERM

# Prints the logs of both appliances (on failure).
dump_logs() {
    local d f
    for d in "$DIR_A" "$DIR_B"; do
        for f in var/log/job.log var/log/crond.log var/log/messages; do
            [ -f "$d/$f" ] || continue
            echo "----- ${d##*/}: /$f (last 40 lines)"
            tail -n 40 "$d/$f"
        done
    done
}

finish() {
    [ "$fail" -eq 0 ] || dump_logs
    echo
    echo "$pass passed, $fail failed ($(($(date +%s) - T0)) s)"
    [ "$fail" -eq 0 ] && exit 0
    exit 1
}

# ---- prerequisites -----------------------------------------------------------------------

[ "$(id -u)" -eq 0 ] || die "must run as root (namespaces, chroot, mounts)"
for b in "$BIN_A" "$BIN_B"; do
    [ -x "$b" ] || die "$b missing: run cross/build first"
done
[ -x "$BUSYBOX" ] && file -b "$BUSYBOX" | grep -q 'statically linked' ||
    die "$BUSYBOX is not a static busybox (apt-get install busybox-static)"
command -v ip >/dev/null || die "ip (iproute2) missing"

# binfmt_misc makes the aarch64 binary run transparently, inside the chroot too: the F
# (fix binary) flag opens the emulator at registration, so it need not exist in the chroot.
# Registering it is a system-wide setting (like systemd-binfmt at boot); it is left in place.
ensure_binfmt() {
    local arch=$1 conf=/usr/lib/binfmt.d/qemu-$1.conf bf=/proc/sys/fs/binfmt_misc
    [ -e "$bf/register" ] || mount -t binfmt_misc binfmt_misc "$bf" || return 1
    if [ ! -e "$bf/qemu-$arch" ]; then
        [ -r "$conf" ] || { echo "$conf missing (qemu-user-static)"; return 1; }
        cat "$conf" >"$bf/register" 2>/dev/null || [ -e "$bf/qemu-$arch" ] || return 1
    fi
    grep -q '^enabled' "$bf/qemu-$arch" && grep -q '^flags:.*F' "$bf/qemu-$arch"
}
case $(file -b "$BIN_B") in
    *aarch64*) ensure_binfmt aarch64 || die "cannot register qemu-aarch64 with binfmt_misc (flag F needed)" ;;
    *ARM*) ensure_binfmt arm || die "cannot register qemu-arm with binfmt_misc (flag F needed)" ;;
esac

# ---- the appliances ----------------------------------------------------------------------

# build_appliance DIR BINARY NAME: a busybox root filesystem with the overlay installed.
build_appliance() {
    local d=$1 bin=$2 name=$3 p
    mkdir -p "$d"/{bin,sbin,usr/bin,usr/sbin,usr/local/bin,etc,proc,dev,tmp,root,var/run,var/log}
    chmod 1777 "$d/tmp"
    cp "$BUSYBOX" "$d/bin/busybox"
    "$BUSYBOX" --list-full | while read -r p; do
        [ "$p" = bin/busybox ] || [ -e "$d/$p" ] || ln -s /bin/busybox "$d/$p"
    done
    printf 'root:x:0:0:root:/root:/bin/sh\n' >"$d/etc/passwd"
    printf 'root:x:0:\n' >"$d/etc/group"
    echo "$name" >"$d/etc/hostname"
    mknod -m 666 "$d/dev/null" c 1 3
    if ! : >"$d/dev/null" 2>/dev/null; then # a nodev file system: bind the host's
        rm -f "$d/dev/null"
        : >"$d/dev/null"
        mount --bind /dev/null "$d/dev/null" && MOUNTS+=("$d/dev/null")
    fi
    sh "$TOP/rootfs/install.sh" --binary "$bin" "$d" >/dev/null || return 1
    # The job: one line per run, with the time, so runs can be counted per minute.
    cat >"$d/usr/local/bin/job" <<EOF
#!/bin/sh
echo "\$(date +%s) $name" >>/var/log/job.log
EOF
    chmod 755 "$d/usr/local/bin/job"
    printf '* * * * * rcron -- /usr/local/bin/job\n' >"$d/etc/crontabs/root"
    chmod 600 "$d/etc/crontabs/root"
    mount -t proc proc "$d/proc" && MOUNTS=("$d/proc" "${MOUNTS[@]}")
}

build_appliance "$DIR_A" "$BIN_A" alpha || die "building alpha"
build_appliance "$DIR_B" "$BIN_B" beta || die "building beta"
# beta: the three "per node" lines of the shipped config.
sed -i -e 's/^priority = 150 /priority = 100 /' \
    -e 's/^unicast_src_ip = 192.0.2.1 /unicast_src_ip = 192.0.2.2 /' \
    -e 's/^unicast_peer = 192.0.2.2 /unicast_peer = 192.0.2.1 /' "$DIR_B/etc/rcron/rcron.conf"
grep -q '^priority = 100 ' "$DIR_B/etc/rcron/rcron.conf" &&
    grep -q '^unicast_src_ip = 192.0.2.2 ' "$DIR_B/etc/rcron/rcron.conf" &&
    grep -q '^unicast_peer = 192.0.2.1 ' "$DIR_B/etc/rcron/rcron.conf" ||
    die "rootfs/etc/rcron/rcron.conf no longer has the per-node lines this test edits"
note "alpha: $(file -b "$BIN_A" | cut -d, -f1-2); beta: $(file -b "$BIN_B" | cut -d, -f1-2)"

# The network: one veth pair, each end named eth0 in its namespace.
ip netns add "$NS_A" && ip netns add "$NS_B" || die "ip netns add"
ip link add "$VETH_A" type veth peer name "$VETH_B" || die "ip link add veth"
ip link set "$VETH_A" netns "$NS_A" && ip link set "$VETH_B" netns "$NS_B" || die "veth into namespaces"
ip -n "$NS_A" link set "$VETH_A" name eth0 && ip -n "$NS_B" link set "$VETH_B" name eth0 || die "rename"
ip -n "$NS_A" addr add 192.0.2.1/24 dev eth0 && ip -n "$NS_B" addr add 192.0.2.2/24 dev eth0 || die "addresses"
for ns in "$NS_A" "$NS_B"; do
    ip -n "$ns" link set lo up && ip -n "$ns" link set eth0 up || die "links up in $ns"
done

# in_app A|B COMMAND...: runs COMMAND inside the appliance (namespace + chroot), with the
# clean environment a busybox init would give it.
in_app() {
    local ns dir
    case $1 in A) ns=$NS_A dir=$DIR_A ;; B) ns=$NS_B dir=$DIR_B ;; esac
    shift
    ip netns exec "$ns" chroot "$dir" /usr/bin/env -i PATH=/sbin:/usr/sbin:/bin:/usr/bin \
        HOME=/root TERM=dumb "$@"
}
initd() { in_app "$1" /etc/init.d/rcron "$2"; }
app_dir() { case $1 in A) echo "$DIR_A" ;; B) echo "$DIR_B" ;; esac; }
pidfile_pid() { cat "$(app_dir "$1")/var/run/rcron/rcrond.pid" 2>/dev/null; }
alive() { [ -n "$1" ] && [ -d "/proc/$1" ] && ! grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null; }
state_of() { # the daemon's state as --status reports it (passive when unreachable)
    in_app "$1" rcron --status 2>/dev/null | sed -n 's/^state=//p'
}
# wait_state A|B STATE SECONDS
wait_state() {
    local end=$(($(date +%s) + $3))
    while [ "$(date +%s)" -le $end ]; do
        [ "$(state_of "$1")" = "$2" ] && return 0
        sleep 0.2
    done
    return 1
}
# runs_in LOG MINUTE: how many job runs LOG records in the minute starting at MINUTE (epoch s)
runs_in() {
    [ -f "$1" ] || { echo 0; return; }
    awk -v m="$2" '$1 >= m && $1 < m + 60 { n++ } END { print n + 0 }' "$1"
}
count_runs() { [ -f "$1" ] && wc -l <"$1" | tr -d ' ' || echo 0; }

# ---- start: syslogd, rcrond (init script), crond -----------------------------------------

for a in A B; do
    in_app $a /sbin/syslogd -O /var/log/messages || die "syslogd on $a"
done

out=$(initd A start) && ok "alpha: init start (exit 0): $out" || die "alpha: init start failed: $out"
wait_state A active 15 && ok "alpha: active" || die "alpha did not become active"
out=$(initd B start) && ok "beta: init start (exit 0): $out" || die "beta: init start failed: $out"
sleep 3 # more than two adverts
check "beta: passive while alpha is active" test "$(state_of B)" = passive
check "alpha: still active" test "$(state_of A)" = active
out=$(initd A status)
check "alpha: init status exit 0 and state=active ($out)" grep -q 'state=active' <<<"$out"
out=$(initd B status)
check "beta: init status exit 0 and state=passive ($out)" grep -q 'state=passive' <<<"$out"

# Start crond away from a minute boundary, so "the next two boundaries" is unambiguous.
while [ $(($(date +%s) % 60)) -ge 55 ]; do sleep 1; done
for a in A B; do
    in_app $a /usr/sbin/crond -c /etc/crontabs -L /var/log/crond.log || die "crond on $a"
done
now=$(date +%s)
B1=$(((now / 60 + 1) * 60))
B2=$((B1 + 60))
note "crond started on both; jobs due at minute boundaries $(date -u -d @$B1 +%T) and $(date -u -d @$B2 +%T) UTC"

# wait_until EPOCH
wait_until() { while [ "$(date +%s)" -lt "$1" ]; do sleep 1; done; }

# ---- 1. two minutes: alpha only ----------------------------------------------------------

wait_until $((B2 + 10))
LOG_A=$DIR_A/var/log/job.log
LOG_B=$DIR_B/var/log/job.log
check "minute 1: the job ran once on alpha" test "$(runs_in "$LOG_A" $B1)" -eq 1
check "minute 2: the job ran once on alpha" test "$(runs_in "$LOG_A" $B2)" -eq 1
check "minutes 1-2: the job never ran on beta (runs: $(count_runs "$LOG_B"))" test "$(count_runs "$LOG_B")" -eq 0
check "beta: the wrapper logged its skips (status=ignore) to syslog" \
    test "$(grep -c 'status=ignore.*cmd=/usr/local/bin/job' "$DIR_B/var/log/messages" 2>/dev/null)" -ge 2
check "alpha: the wrapper logged the runs (status=ok) to syslog" \
    test "$(grep -c 'status=ok.*cmd=/usr/local/bin/job' "$DIR_A/var/log/messages" 2>/dev/null)" -ge 2

# ---- 2. kill -9 of alpha's daemon: beta takes over ---------------------------------------

SUP_A=$(pidfile_pid A)
WORKER_A=$(pgrep -P "$SUP_A" 2>/dev/null | tr '\n' ' ')
note "killing alpha's rcrond with SIGKILL: supervisor $SUP_A, worker ${WORKER_A:-none}"
t_kill=$(date +%s%N)
# shellcheck disable=SC2086
kill -9 "$SUP_A" $WORKER_A
if wait_state B active 15; then
    ok "beta: active after alpha's daemon was killed ($((($(date +%s%N) - t_kill) / 1000000)) ms)"
else
    bad "beta: not active 15 s after alpha's daemon was killed"
fi
check "alpha: its wrapper sees no live daemon: passive" test "$(state_of A)" = passive
now=$(date +%s)
B3=$(((now / 60 + 1) * 60))
note "next minute boundary: $(date -u -d @$B3 +%T) UTC"
wait_until $((B3 + 10))
check "minute 3: the job ran once on beta" test "$(runs_in "$LOG_B" $B3)" -eq 1
check "minute 3: the job did not run on alpha" test "$(runs_in "$LOG_A" $B3)" -eq 0
check "alpha ran the job exactly twice in all ($(count_runs "$LOG_A"))" test "$(count_runs "$LOG_A")" -eq 2
check "beta ran the job exactly once in all ($(count_runs "$LOG_B"))" test "$(count_runs "$LOG_B")" -eq 1

# ---- 3. the init script -------------------------------------------------------------------

# expect A|B ACTION WANT_EXIT: runs the init script, checks its exit code; output in $out.
expect() {
    out=$(initd "$1" "$2" 2>&1)
    local rc=$? who
    who=$([ "$1" = A ] && echo alpha || echo beta)
    if [ $rc -eq "$3" ]; then ok "$who: init $2: exit $rc ($(tr '\n' ' ' <<<"$out" | sed 's/ *$//'))"; else
        bad "$who: init $2: exit $rc, want $3 ($(tr '\n' ' ' <<<"$out"))"
    fi
}

expect A status 1 # killed: dead, but the pid file is still there
expect A stop 0   # nothing to stop; clears the stale pid file
check "alpha: stale pid file removed" test ! -e "$DIR_A/var/run/rcron/rcrond.pid"
expect A status 3

expect B status 0
check "beta: status shows state=active" grep -q 'state=active' <<<"$out"
SUP_B=$(pidfile_pid B)
expect B stop 0
check "beta: daemon gone after stop (pid $SUP_B)" bash -c "! { [ -d /proc/$SUP_B ] && ! grep -q '^State:.*Z' /proc/$SUP_B/status; }"
check "beta: no rcron process left in beta after stop" \
    test -z "$(for p in $(chroot_pids); do [ "$(readlink /proc/$p/root)" = "$DIR_B" ] && tr '\0' ' ' </proc/$p/cmdline | grep rcron; done)"
check "beta: stop leaves state_file 'passive'" test "$(head -n 1 "$DIR_B/var/run/rcron/state")" = passive
check "beta: stop removes the pid file" test ! -e "$DIR_B/var/run/rcron/rcrond.pid"
check "beta: stop removes the control socket" test ! -e "$DIR_B/var/run/rcron/rcron.sock"
check "beta: rcron --is-active says no (exit 1)" bash -c "! ip netns exec $NS_B chroot $DIR_B /usr/sbin/rcron --is-active"
expect B status 3
expect B stop 0 # already stopped

expect B start 0
SUP_B=$(pidfile_pid B)
check "beta: running after start (pid $SUP_B)" alive "$SUP_B"
expect B start 0 # already running
check "beta: a second start kept the same daemon" test "$(pidfile_pid B)" = "$SUP_B"
expect B status 0
expect B restart 0
NEW_B=$(pidfile_pid B)
check "beta: restart replaced the daemon ($SUP_B -> $NEW_B)" test -n "$NEW_B" -a "$NEW_B" != "$SUP_B"
check "beta: the old daemon is gone after restart" bash -c "! { [ -d /proc/$SUP_B ] && ! grep -q '^State:.*Z' /proc/$SUP_B/status; }"
check "beta: the new daemon runs" alive "$NEW_B"
expect B reload 0
sleep 1
check "beta: still the same daemon after reload" test "$(pidfile_pid B)" = "$NEW_B"
check "beta: alive after reload" alive "$NEW_B"

cp "$DIR_B/etc/rcron/rcron.conf" "$WORK/beta.conf.good"
echo "no_such_key = 1" >>"$DIR_B/etc/rcron/rcron.conf"
expect B reload 6
check "beta: an invalid config on reload keeps the daemon running" alive "$NEW_B"
cp "$WORK/beta.conf.good" "$DIR_B/etc/rcron/rcron.conf"
expect B bogus 2

expect A restart 0
wait_state A active 15 && ok "alpha: active again after restart (preempt, priority 150)" ||
    bad "alpha: not active 15 s after restart"
wait_state B passive 10 && ok "beta: passive again" || bad "beta: still $(state_of B)"

expect A stop 0
expect B stop 0
check "alpha: state_file 'passive' after stop" test "$(head -n 1 "$DIR_A/var/run/rcron/state")" = passive
check "beta: state_file 'passive' after stop" test "$(head -n 1 "$DIR_B/var/run/rcron/state")" = passive
left=$(for p in $(chroot_pids); do tr '\0' ' ' <"/proc/$p/cmdline" | grep rcron; done)
check "no rcron process left in either appliance${left:+: $left}" test -z "$left"

finish
