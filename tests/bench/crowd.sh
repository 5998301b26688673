#!/bin/sh
# A crowd of wrappers on a pair, with the adverts watched: what the README's "A crowd of
# wrappers" measures against the binary before issue 10's crowd fixes.
#
# usage: sh tests/bench/crowd.sh [N] [DAEMON_NICE]   (as root; BIN=path picks the binary)
#   N            wrappers started back to back on each node (default 2000); job n is the same
#                job on both nodes (--id), in hour slots (--slot 1h: a minute's turn in the
#                middle of the crowd would split it into two slots)
#   DAEMON_NICE  the daemon_nice line of both configs; `none` leaves the key out (a binary
#                older than the key)
# Two namespaces (rcron-crowd-a, rcron-crowd-b), v3 at 0.1 s, unicast, 203.0.113.1/.2; A
# priority 150. Prints one line: how long the crowd took, the longest gap between A's adverts
# seen at B (Master_Down_Interval is 341 ms: a longer gap is a failover), gaps over 150 ms,
# transitions after the start, jobs run on each node (each job once, on A, is right), and the
# backup's skip reasons.
set -eu
N=${1:-2000}
NICE=${2:--10}
BIN=${BIN:-$(cd "$(dirname "$0")/../.." && pwd)/target/release/rcron}
[ "$(id -u)" = 0 ] || { echo "needs root (namespaces)" >&2; exit 2; }
[ -x "$BIN" ] || { echo "no binary at $BIN (cargo build --release, or BIN=...)" >&2; exit 2; }
command -v dumpcap >/dev/null && command -v tshark >/dev/null ||
	{ echo "needs dumpcap and tshark (sh tests/setup.sh)" >&2; exit 2; }
D=$(mktemp -d /tmp/rcron-crowd.XXXXXX)
A=rcron-crowd-a B=rcron-crowd-b
cleanup() {
	for n in $A $B; do
		ip netns pids $n 2>/dev/null | xargs -r kill -9
		ip netns del $n 2>/dev/null || true
	done
	rm -rf "$D"
}
trap cleanup EXIT INT TERM
for n in $A $B; do ip netns del $n 2>/dev/null || true; ip netns add $n; done
ip link add vr0 netns $A type veth peer name vr0 netns $B
ip -n $A addr add 203.0.113.1/24 dev vr0
ip -n $B addr add 203.0.113.2/24 dev vr0
for n in $A $B; do ip -n $n link set vr0 up; ip -n $n link set lo up; done
conf() { # name priority src peer
	{
		printf 'interface vr0\nvirtual_router_id 54\nvrrp_version 3\nadvert_int 0.1\n'
		printf 'priority %s\nunicast_src_ip %s\nunicast_peer %s\n' "$2" "$3" "$4"
		printf 'state_file %s\ncontrol_socket %s\npid_file %s\nlock_dir %s\n' \
			"$D/$1.state" "$D/$1.sock" "$D/$1.pid" "$D"
		[ "$NICE" = none ] || printf 'daemon_nice %s\n' "$NICE"
	} > "$D/$1.conf"
}
conf a 150 203.0.113.1 203.0.113.2
conf b 100 203.0.113.2 203.0.113.1
ip netns exec $A "$BIN" --daemon --foreground --conf "$D/a.conf" 2>"$D/a.log" &
ip netns exec $B "$BIN" --daemon --foreground --conf "$D/b.conf" 2>"$D/b.log" &
sleep 3
ip netns exec $B dumpcap -q -i vr0 -f 'ip proto 112 and src 203.0.113.1' -w "$D/cap.pcap" \
	2>/dev/null &
CAP=$!
sleep 1
crowd() { # node ns
	ip netns exec "$2" sh -c "for n in \$(seq 1 $N); do '$BIN' -v --conf '$D/$1.conf' \
		--id job\$n --slot 1h -- sh -c 'echo \$0 >> $D/$1.ran' \$n 2>>'$D/$1.err' & done; wait"
}
t0=$(date +%s.%N)
crowd a $A & PA=$!
crowd b $B & PB=$!
wait $PA $PB
t1=$(date +%s.%N)
sleep 1
kill $CAP
wait $CAP 2>/dev/null || true
tshark -r "$D/cap.pcap" -T fields -e frame.time_epoch > "$D/cap.txt" 2>/dev/null
python3 - "$D" "$t0" "$t1" "$NICE" "$N" <<'PY'
import collections, os, re, sys
d, t0, t1, nice, n = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4], sys.argv[5]
ts = [float(l) for l in open(f"{d}/cap.txt") if l.strip()]
gaps = [b - a for a, b in zip(ts, ts[1:]) if t0 <= b <= t1 + 1]
def count(f):
    return len(open(f).read().split()) if os.path.exists(f) else 0
def moves(f):
    return sum(1 for l in open(f) if "state=" in l and "reason=startup" not in l)
reasons = collections.Counter(re.findall(r"reason=([a-z_]+)", open(f"{d}/b.err").read())
                              if os.path.exists(f"{d}/b.err") else "")
print(f"N={n} daemon_nice={nice} took={t1 - t0:.1f}s "
      f"longest_gap_ms={max(gaps) * 1000 if gaps else float('nan'):.1f} "
      f"gaps_over_150ms={sum(1 for g in gaps if g > 0.15)} "
      f"transitions a={moves(f'{d}/a.log')} b={moves(f'{d}/b.log')} "
      f"ran a={count(f'{d}/a.ran')} b={count(f'{d}/b.ran')} "
      f"backup_skips {' '.join(f'{k}={v}' for k, v in sorted(reasons.items()))}")
PY
