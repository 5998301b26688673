#!/usr/bin/env python3
"""Wrapper overhead benchmark: median wall time of `rcron` on the passive path and on the
active path (`rcron -- true`) against `/bin/true`, N runs each, interleaved; then (as root)
the active path on a namespace pair whose daemons keep the run ledger, against the same
pair deciding by advert timing.

usage: tests/bench/wrapper.py [RCRON_BINARY] [RUNS]   (default target/release/rcron, 500)
Not a test: it prints figures and never fails on speed.
"""
import os, statistics, subprocess, sys, tempfile, time

rcron = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "target/release/rcron")
runs = int(sys.argv[2]) if len(sys.argv) > 2 else 500
d = tempfile.mkdtemp(prefix="rcron-bench-")
state = os.path.join(d, "state")
conf = os.path.join(d, "rcron.conf")
with open(conf, "w") as f:
    f.write(f"state_file {state}\nlock_dir {d}\n")

def write_state(s):
    with open(state, "w") as f:
        f.write(s + "\n")

def once(argv):
    t = time.perf_counter_ns()
    subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, check=False)
    return (time.perf_counter_ns() - t) / 1e6

cases = {
    "/bin/true": (None, ["/bin/true"]),
    "rcron passive (job skipped)": ("passive", [rcron, "--conf", conf, "true"]),
    "rcron active  (rcron -- true)": ("active", [rcron, "--conf", conf, "--", "true"]),
}
times = {k: [] for k in cases}
for _ in range(20):  # warm-up
    for k, (st, argv) in cases.items():
        if st: write_state(st)
        once(argv)
for _ in range(runs):
    for k, (st, argv) in cases.items():
        if st: write_state(st)
        times[k].append(once(argv))
base = statistics.median(times["/bin/true"])
print(f"runs per case: {runs} (interleaved), binary: {rcron}")
print(f"{'case':32} {'median ms':>10} {'p90 ms':>8} {'vs /bin/true':>13}")
for k, v in times.items():
    med = statistics.median(v)
    p90 = sorted(v)[int(len(v) * 0.9)]
    print(f"{k:32} {med:10.3f} {p90:8.3f} {med - base:+12.3f}ms")


# ---------------------------------------------------------------- on a namespace pair
# The daemon path (`virtual_router_id` set): the wrapper asks its daemon, which, with the run
# ledger, claims the slot from its peer (one UDP round trip over a veth) before it answers.
# Two daemon pairs share two namespaces: VRID 81 with the ledger, VRID 82 with
# `run_ledger no` (the advert-timing rule, the active path before the ledger). Each run uses a
# new `--id`, so every run is a new slot and really claims it.
if os.geteuid() != 0:
    print("(not root: the namespace-pair figures need root; skipped)")
    sys.exit(0)
pid = os.getpid()
ns = [f"wbA{pid}", f"wbB{pid}"]
ips = ["192.0.2.1", "192.0.2.2"]
procs = []


def sh(cmd):
    subprocess.run(cmd, shell=True, check=True, stdout=subprocess.DEVNULL)


def teardown():
    for p in procs:
        p.kill()
        p.wait()
    for n in ns:
        subprocess.run(["ip", "netns", "del", n], stderr=subprocess.DEVNULL)


try:
    for n in ns:
        sh(f"ip netns add {n} && ip -n {n} link set lo up")
    sh(f"ip link add wba{pid} type veth peer name wbb{pid}")
    for i, n in enumerate(ns):
        dev = f"wb{'ab'[i]}{pid}"
        sh(f"ip link set {dev} netns {n} && ip -n {n} link set {dev} name eth0")
        sh(f"ip -n {n} addr add {ips[i]}/24 dev eth0 && ip -n {n} link set eth0 up")
    confs = {}
    for vrid, ledger in ((81, "yes"), (82, "no")):
        for i, n in enumerate(ns):
            dd = os.path.join(d, f"{vrid}-{i}")
            os.makedirs(dd)
            c = os.path.join(dd, "rcron.conf")
            with open(c, "w") as f:
                f.write(f"interface eth0\nvirtual_router_id {vrid}\npriority {150 - 50 * i}\n"
                        f"vrrp_version 3\nadvert_int 0.1\nunicast_src_ip {ips[i]}\n"
                        f"unicast_peer {ips[1 - i]}\nrun_ledger {ledger}\n"
                        f"state_file {dd}/state\ncontrol_socket {dd}/rcron.sock\n"
                        f"pid_file {dd}/rcrond.pid\nlock_dir {dd}\nsyslog_facility LOG_LOCAL7\n")
            procs.append(subprocess.Popen(["ip", "netns", "exec", n, rcron, "--daemon",
                                           "--foreground", "--conf", c],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            confs[(vrid, i)] = c
            time.sleep(0.5)
    time.sleep(2)
    pair = {
        "active, run ledger (claim + ack)": 81,
        "active, advert timing (before)": 82,
    }
    ptimes = {k: [] for k in pair}
    n_id = 0
    for r in range(20 + runs):
        for k, vrid in pair.items():
            n_id += 1
            argv = ["ip", "netns", "exec", ns[0], rcron, "--conf", confs[(vrid, 0)],
                    "--id", f"bench{n_id}", "--", "true"]
            t = once(argv)
            if r >= 20:
                ptimes[k].append(t)
    print()
    print(f"namespace pair (v3 at 0.1 s, unicast; `ip netns exec` included in every figure):")
    print(f"{'case':36} {'median ms':>10} {'p90 ms':>8}")
    for k, v in ptimes.items():
        print(f"{k:36} {statistics.median(v):10.3f} {sorted(v)[int(len(v) * 0.9)]:8.3f}")
    a, b = (statistics.median(v) for v in ptimes.values())
    print(f"the ledger's cost on the active path: {a - b:+.3f} ms")
finally:
    teardown()
    subprocess.run(["rm", "-rf", d])
