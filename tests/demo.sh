#!/bin/sh
# The main job on this machine: two nodes, A and B (network namespaces joined by a veth pair,
# 192.0.2.1 and 192.0.2.2), each running rcrond on a minimal config and real busybox crond with
# one crontab line, `* * * * * rcron ... -- job.sh`. A leads; after its first minute its
# daemon is killed (kill -9 of both processes, a crash) and B takes over. Three minutes, then
# the account: which node ran which minute; exit 1 unless every minute ran exactly once.
# Needs root, busybox and a built rcron (tests/start.sh does all); removes everything it made.
set -eu
RCRON=${RCRON:-$(dirname "$0")/../target/release/rcron}
RCRON=$(cd "$(dirname "$RCRON")" && pwd)/$(basename "$RCRON")
BUSYBOX=$(command -v busybox) || { echo "demo: busybox is needed (tests/setup.sh)" >&2; exit 1; }
MINUTES=${DEMO_MINUTES:-3}
ID=$$
D=$(mktemp -d /tmp/rcron-demo.XXXXXX)
cleanup() {
    for n in A B; do
        for p in rcrond crond; do
            if [ -f "$D/$n/$p.pid" ]; then kill "$(cat "$D/$n/$p.pid")" 2>/dev/null || true; fi
        done
    done
    sleep 0.3
    ip netns del "dA$ID" 2>/dev/null || true
    ip netns del "dB$ID" 2>/dev/null || true
    rm -rf "$D"
}
trap cleanup EXIT INT TERM
ip netns add "dA$ID"; ip netns add "dB$ID"
ip link add "dva$ID" type veth peer name "dvb$ID"
ip link set "dva$ID" netns "dA$ID"; ip link set "dvb$ID" netns "dB$ID"
ip -n "dA$ID" link set "dva$ID" name eth0; ip -n "dB$ID" link set "dvb$ID" name eth0
ip -n "dA$ID" addr add 192.0.2.1/24 dev eth0; ip -n "dB$ID" addr add 192.0.2.2/24 dev eth0
for n in A B; do ip -n "d$n$ID" link set eth0 up; ip -n "d$n$ID" link set lo up; done

# The job: one line per run, "SLOT NODE" (RCRON_SLOT: the minute it was scheduled for).
cat > "$D/job.sh" <<EOT
#!/bin/sh
echo "\$RCRON_SLOT \$1" >> "$D/ran"
EOT
chmod +x "$D/job.sh"
: > "$D/ran"
for n in A:1:2:150 B:2:1:100; do
    IFS=: read -r name me peer prio <<EOT
$n
EOT
    mkdir -p "$D/$name/crontabs"
    cat > "$D/$name/rcron.conf" <<EOT
interface eth0
virtual_router_id 51
priority $prio
unicast_src_ip 192.0.2.$me
unicast_peer 192.0.2.$peer
state_file $D/$name/state
control_socket $D/$name/rcron.sock
pid_file $D/$name/rcrond.pid
lock_dir $D/$name
EOT
    # The same job on both nodes: --id names it the same in the run ledger (the argument
    # only says which node ran it).
    echo "* * * * * $RCRON --conf $D/$name/rcron.conf --id demo -- $D/job.sh $name" \
        > "$D/$name/crontabs/root"
    ip netns exec "d$name$ID" "$RCRON" --daemon --conf "$D/$name/rcron.conf"
    ip netns exec "d$name$ID" "$BUSYBOX" crond -f -c "$D/$name/crontabs" -L "$D/$name/crond.log" &
    echo $! > "$D/$name/crond.pid"
done
echo "rcron demo: nodes A (priority 150) and B (priority 100), rcrond and busybox crond on each"
echo "crontab on both: * * * * * rcron -- job.sh    ($MINUTES minutes, a crash of A's daemon after the first)"
sleep 6
for n in A B; do echo "  $(date +%T) node $n: $(head -n1 "$D/$n/state")"; done

# Waits until the minute after epoch second $1 has begun and its run is written.
next_minute() {
    while [ "$(date +%s)" -lt "$(( $1 / 60 * 60 + 60 + 5 ))" ]; do sleep 1; done
}
start=$(date +%s)
i=1
while [ "$i" -le "$MINUTES" ]; do
    next_minute "$(( start + (i - 1) * 60 ))"
    if [ "$i" = 1 ]; then
        sup=$(cat "$D/A/rcrond.pid")
        kill -STOP "$sup"; pkill -STOP -P "$sup"; pkill -KILL -P "$sup"; kill -KILL "$sup"
        rm -f "$D/A/rcrond.pid"
        echo "  $(date +%T) kill -9 of node A's rcrond (supervisor and worker): a crash"
        sleep 5
        for n in A B; do
            s=$("$RCRON" --is-active --conf "$D/$n/rcron.conf" && echo active || echo passive)
            echo "  $(date +%T) node $n: $s"
        done
    fi
    i=$((i + 1))
done

echo "account (minute: node that ran it):"
fail=0
first=$(( (start / 60 + 1) * 60 ))
i=0
while [ "$i" -lt "$MINUTES" ]; do
    slot=$((first + i * 60))
    nodes=$(awk -v s="$slot" '$1 == s { printf "%s%s", sep, $2; sep = "," }' "$D/ran")
    count=$(awk -v s="$slot" '$1 == s' "$D/ran" | wc -l)
    printf '  %s  %s\n' "$(date -d "@$slot" +%H:%M)" "${nodes:-nobody}"
    [ "$count" -eq 1 ] || fail=1
    i=$((i + 1))
done
if [ "$fail" = 0 ]; then
    echo "every minute ran exactly once"
else
    echo "FAILED: a minute ran twice or not at all; $D/ran:" >&2
    cat "$D/ran" >&2
    exit 1
fi
