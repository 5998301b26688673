#!/bin/sh
# A two-node rcron demo on this machine: two network namespaces joined by a veth pair
# (192.0.2.1 and 192.0.2.2), rcrond on each with a minimal config (every other key at its
# default), a job run through the wrapper on both nodes, a crash of the master, and the job
# again. Needs root; removes everything it made.
set -eu
RCRON=${RCRON:-$(dirname "$0")/../target/release/rcron}
RCRON=$(cd "$(dirname "$RCRON")" && pwd)/$(basename "$RCRON")
ID=$$
D=$(mktemp -d /tmp/rcron-demo.XXXXXX)
cleanup() {
    for n in A B; do
        if [ -f "$D/$n/rcrond.pid" ]; then kill "$(cat "$D/$n/rcrond.pid")" 2>/dev/null || true; fi
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
for n in A:1:2:150 B:2:1:100; do
    IFS=: read -r name me peer prio <<EOT
$n
EOT
    mkdir -p "$D/$name"
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
    ip netns exec "d$name$ID" "$RCRON" --daemon --conf "$D/$name/rcron.conf"
done
echo "rcrond started on A (priority 150) and B (priority 100); electing (v2, 1 s adverts)..."
sleep 5
for n in A B; do echo "node $n: $(head -n1 "$D/$n/state")"; done
for n in A B; do
    # One job on both nodes at once, as their crons start it (the same --id, a slot every
    # 5 s): the passive node skips as soon as the active one has recorded the slot.
    # shellcheck disable=SC2016 # $NODE expands in the job's shell
    NODE=$n "$RCRON" --conf "$D/$n/rcron.conf" --id demo --slot 5s -- sh -c 'echo "  job ran on node $NODE"' &
done
wait
echo "kill -9 of node A's daemon (a crash)..."
kill -STOP "$(cat "$D/A/rcrond.pid")"; pkill -STOP -P "$(cat "$D/A/rcrond.pid")"
pkill -KILL -P "$(cat "$D/A/rcrond.pid")"; kill -KILL "$(cat "$D/A/rcrond.pid")"
sleep 5
for n in A B; do echo "node $n: $("$RCRON" --is-active --conf "$D/$n/rcron.conf" && echo active || echo passive)"; done
for n in A B; do
    # One job on both nodes at once, as their crons start it (the same --id, a slot every
    # 5 s): the passive node skips as soon as the active one has recorded the slot.
    # shellcheck disable=SC2016 # $NODE expands in the job's shell
    NODE=$n "$RCRON" --conf "$D/$n/rcron.conf" --id demo --slot 5s -- sh -c 'echo "  job ran on node $NODE"' &
done
wait
"$RCRON" --status --conf "$D/B/rcron.conf" | head -n 12
