#!/usr/bin/env python3
"""The etcd backend's figures: failover time against the lease TTL, and etcd requests per
second per node at rest. A 3-member etcd cluster (Debian's etcd-server) and 3 rcron nodes,
each in its own network namespace on one bridge.

  tests/bench/etcd.py [--ttls 2,4,10] [--rounds 3] [--rest 60] [--binary target/release/rcron]

For each TTL: the leader is killed with -9 (worker first, then supervisor) or frozen with
SIGSTOP, `--rounds` times each; the failover time is from the fault until another node's
state file says active. The lower bound is what etcd allows: the lease expires one TTL after
the last renewal reached it (a renewal every TTL/6), and then the watch tells the others.
At rest, `etcd_requests` of every node's --status is read twice `--rest` seconds apart.
Needs root. Uses 192.0.2.0/24 inside namespaces it creates, and removes them.
"""
import argparse, atexit, os, shutil, signal, statistics, subprocess, sys, tempfile, time
from lab import add_bridge, add_host, sh, start_etcd

p = argparse.ArgumentParser()
p.add_argument("--ttls", default="2,4,10")
p.add_argument("--rounds", type=int, default=3)
p.add_argument("--rest", type=float, default=60)
p.add_argument("--binary", default=os.path.join(os.path.dirname(__file__), "../../target/release/rcron"))
args = p.parse_args()
RCRON = os.path.abspath(args.binary)
TAG = str(os.getpid() % 100000)
BR = f"ebbr{TAG}"
ENS = [f"eb{TAG}e{m}" for m in range(3)]
NS = [f"eb{TAG}n{i}" for i in range(3)]
EIPS = [f"192.0.2.{21 + m}" for m in range(3)]
IPS = [f"192.0.2.{11 + i}" for i in range(3)]
EURLS = [f"http://{ip}:2379" for ip in EIPS]
BASE = tempfile.mkdtemp(prefix=f"rcron-etcdbench-{TAG}-")
procs = []


def cleanup():
    for pr in procs:
        try: os.killpg(pr.pid, signal.SIGKILL)
        except OSError: pass
    for ns in NS + ENS + [BR]:
        sh(f"ip netns del {ns}", check=False)
    shutil.rmtree(BASE, ignore_errors=True)


atexit.register(cleanup)


def spawn(ns, cmd, log):
    pr = subprocess.Popen(["ip", "netns", "exec", ns] + cmd, stdin=subprocess.DEVNULL,
                          stdout=open(log, "a"), stderr=subprocess.STDOUT, start_new_session=True)
    procs.append(pr)
    return pr


def node_dir(ttl, i):
    return os.path.join(BASE, f"ttl{ttl}", f"n{i}")


def start_node(ttl, i):
    d = node_dir(ttl, i)
    return spawn(NS[i], [RCRON, "--daemon", "--foreground", "--conf", f"{d}/rcron.conf"], f"{d}/rcron.log")


def state(ttl, i):
    try:
        return open(os.path.join(node_dir(ttl, i), "state")).readline().strip()
    except OSError:
        return ""


def status(ttl, i):
    out = subprocess.run([RCRON, "--status", "--conf", os.path.join(node_dir(ttl, i), "rcron.conf")],
                         capture_output=True, text=True).stdout
    return dict(l.split("=", 1) for l in out.splitlines() if "=" in l)


def one_active(ttl, limit, exclude=None):
    t0 = time.time()
    while time.time() - t0 < limit:
        a = [i for i in range(3) if i != exclude and state(ttl, i) == "active"]
        if len(a) == 1:
            return a[0]
        time.sleep(0.005)
    return None


def main():
    if os.geteuid() != 0:
        raise SystemExit("etcd.py needs root")
    add_bridge(BR)
    for m in range(3):
        add_host(BR, ENS[m], EIPS[m], f"ea{TAG}e{m}", f"eb{TAG}e{m}")
    for i in range(3):
        add_host(BR, NS[i], IPS[i], f"ea{TAG}{i}", f"eb{TAG}{i}")
    members, _ = start_etcd(ENS, EIPS, BASE, TAG)
    procs.extend(members)
    print(f"{'TTL s':>5} {'fault':>8} {'failover s (each round)':>34} {'median':>7}   requests/s at rest: leader, followers")
    for ttl in [int(x) for x in args.ttls.split(",")]:
        nodes = {}
        for i in range(3):
            d = node_dir(ttl, i)
            os.makedirs(d)
            urls = EURLS[i:] + EURLS[:i]
            with open(f"{d}/rcron.conf", "w") as f:
                f.write(f"cluster_name bench{ttl}\nelection etcd\netcd_endpoints {' '.join(urls)}\n"
                        f"etcd_lease_ttl {ttl}\nnode_name n{i}\nstate_file {d}/state\n"
                        f"control_socket {d}/rcron.sock\npid_file {d}/rcrond.pid\nlock_dir {d}\n"
                        f"syslog_facility LOG_LOCAL7\n")
            nodes[i] = start_node(ttl, i)
        leader = one_active(ttl, 30)
        if leader is None:
            raise SystemExit(f"TTL {ttl}: no leader")
        # At rest.
        time.sleep(2)
        before = [int(status(ttl, i).get("etcd_requests", 0)) for i in range(3)]
        time.sleep(args.rest)
        after = [int(status(ttl, i).get("etcd_requests", 0)) for i in range(3)]
        rates = [(a - b) / args.rest for a, b in zip(after, before)]
        rest = f"{rates[leader]:.2f}, " + ", ".join(f"{r:.2f}" for i, r in enumerate(rates) if i != leader)
        for fault in ("kill -9", "SIGSTOP"):
            took = []
            for _ in range(args.rounds):
                leader = one_active(ttl, 3 * ttl + 10)
                time.sleep(ttl / 2)  # a renewal or two since the takeover
                pr = nodes[leader]
                pids = [pr.pid] + [int(x) for x in sh(f"pgrep -P {pr.pid}", check=False).split()]
                sig = signal.SIGKILL if fault == "kill -9" else signal.SIGSTOP
                t0 = time.time()
                for pid in reversed(pids):  # the worker first
                    try: os.kill(pid, sig)
                    except OSError: pass
                new = one_active(ttl, 3 * ttl + 10, exclude=leader)
                took.append(time.time() - t0 if new is not None else float("nan"))
                if fault == "kill -9":
                    pr.wait()
                    nodes[leader] = start_node(ttl, leader)
                else:
                    for pid in pids:
                        os.kill(pid, signal.SIGCONT)
                time.sleep(1)
            each = " ".join(f"{x:.2f}" for x in took)
            print(f"{ttl:>5} {fault:>8} {each:>34} {statistics.median(took):>7.2f}   {rest}", flush=True)
        for pr in nodes.values():
            try: os.killpg(pr.pid, signal.SIGKILL)
            except OSError: pass


main()
