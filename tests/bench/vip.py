#!/usr/bin/env python3
"""Virtual address failover, rcron and keepalived side by side in one run.

Hosts A (priority 150) and B (100) on one bridge hold 192.0.2.100/24 by VRRP v3 at
`--advert` seconds (unicast); a client C on the same bridge connects to the address every
10 ms (TCP, port 7000, where each node's small server answers its own name) and pings it
every 10 ms. Each fault hits A while it is master: SIGTERM, kill -9 and SIGSTOP of the whole
daemon, and its link set down. Printed per implementation and fault (medians over the
rounds): the time from the fault until the client's connects reach B, the connects that got
no answer, the pings lost. The target: the RFC's Master_Down_Interval plus 10 ms.

usage: python3 tests/bench/vip.py [--rounds N] [--advert SECONDS] [--rcron PATH]
"""
import argparse, os, signal, socket, statistics, subprocess, sys, tempfile, threading, time

sys.path.insert(0, os.path.dirname(__file__))
from lab import sh, add_bridge, add_host  # noqa: E402

VIP = "192.0.2.100"
PORT = 7000
FAULTS = ["sigterm", "kill9", "sigstop", "linkdown"]

SERVER = """
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", %d)); s.listen(64)
while True:
    c, _ = s.accept(); c.sendall(sys.argv[1].encode()); c.close()
""" % PORT

PROBE = """
import socket, sys, time
end = time.time() + float(sys.argv[1])
while time.time() < end:
    t = time.time()
    try:
        c = socket.create_connection((%r, %d), timeout=0.05)
        who = c.recv(16).decode() or "-"
        c.close()
    except OSError:
        who = "-"
    print("%%.4f %%s" %% (t, who), flush=True)
    time.sleep(max(0, 0.01 - (time.time() - t)))
""" % (VIP, PORT)


def ns_exec(ns, argv, **kw):
    return subprocess.Popen(["ip", "netns", "exec", ns] + argv, start_new_session=True, **kw)


class Lab:
    def __init__(self, tag, base):
        self.br, self.base = f"vb{tag}", base
        self.ns = {n: f"v{tag}{n}" for n in "ABC"}
        self.ip = {"A": "192.0.2.11", "B": "192.0.2.12", "C": "192.0.2.13"}
        add_bridge(self.br)
        for i, n in enumerate("ABC"):
            add_host(self.br, self.ns[n], self.ip[n], f"va{tag}{i}", f"vx{tag}{i}")
        self.servers = [ns_exec(self.ns[n], [sys.executable, "-c", SERVER, n],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for n in "AB"]

    def close(self):
        for p in self.servers:
            os.killpg(p.pid, signal.SIGKILL)
        for n in "ABC":
            sh(f"ip netns del {self.ns[n]}", check=False)
        sh(f"ip netns del {self.br}", check=False)

    def holds(self, n):
        return f" {VIP}/" in sh(f"ip -n {self.ns[n]} -o -4 addr show dev vr0", check=False)


def node_dir(lab, n):
    """Node n's directory (made) and its peer's address."""
    d = os.path.join(lab.base, n)
    os.makedirs(d, exist_ok=True)
    return d, lab.ip["B" if n == "A" else "A"]


def rcron_conf(lab, n, prio, advert):
    d, peer = node_dir(lab, n)
    path = os.path.join(d, "rcron.conf")
    with open(path, "w") as f:
        f.write(f"cluster_name bench\ninterface vr0\nunicast_src_ip {lab.ip[n]}\nunicast_peer {peer}\n"
                f"virtual_router_id 71\nvrrp_version 3\nadvert_int {advert}\npriority {prio}\n"
                f"virtual_ipaddress {VIP}/24\nrun_ledger no\nstate_file {d}/state\n"
                f"control_socket {d}/rcron.sock\npid_file {d}/rcrond.pid\nlock_dir {d}\n")
    return path


def ka_conf(lab, n, prio, advert):
    d, peer = node_dir(lab, n)
    path = os.path.join(d, "keepalived.conf")
    with open(path, "w") as f:
        f.write(f"global_defs {{\n router_id bench_{n}\n}}\nvrrp_instance VI {{\n state BACKUP\n"
                f" interface vr0\n version 3\n virtual_router_id 71\n priority {prio}\n"
                f" advert_int {advert}\n unicast_src_ip {lab.ip[n]}\n unicast_peer {{\n  {peer}\n }}\n"
                f" virtual_ipaddress {{\n  {VIP}/24\n }}\n}}\n")
    return path


def start(impl, lab, n, prio, args):
    d = os.path.join(lab.base, n)
    if impl == "rcron":
        argv = [args.rcron, "--daemon", "--foreground", "--conf", rcron_conf(lab, n, prio, args.advert)]
    else:
        argv = ["keepalived", "-n", "-P", "-l", "-D", "-f", ka_conf(lab, n, prio, args.advert),
                "-p", f"{d}/ka.pid", "-r", f"{d}/ka-vrrp.pid"]
    return ns_exec(lab.ns[n], argv, stdout=open(f"{d}/{impl}.log", "a"), stderr=subprocess.STDOUT)


def group(p):
    """The daemon's processes: the one started and its children."""
    kids = sh(f"pgrep -P {p.pid}", check=False).split()
    return [p.pid] + [int(k) for k in kids]


def until(cond, limit):
    t = time.time()
    while time.time() - t < limit:
        if cond():
            return True
        time.sleep(0.02)
    return cond()


def one_round(impl, fault, lab, args):
    a = start(impl, lab, "A", 150, args)
    time.sleep(0.3)
    b = start(impl, lab, "B", 100, args)
    if not until(lambda: lab.holds("A") and not lab.holds("B"), 10):
        raise SystemExit(f"{impl}: A never held {VIP} alone")
    time.sleep(1.5)  # past the first GARP batch; the client's neighbour entry points at A
    dur = 4.0
    probe = ns_exec(lab.ns["C"], [sys.executable, "-c", PROBE, str(dur)], stdout=subprocess.PIPE, text=True)
    ping = ns_exec(lab.ns["C"], ["ping", "-q", "-i", "0.01", "-W", "0.1", "-w", str(int(dur)), VIP],
                   stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    time.sleep(1.0)
    t0 = time.time()
    procs = group(a)
    if fault == "sigterm":
        os.kill(a.pid, signal.SIGTERM)
    elif fault == "kill9":
        for p in procs:
            os.kill(p, signal.SIGSTOP)
        for p in procs:
            os.kill(p, signal.SIGKILL)
    elif fault == "sigstop":
        for p in procs:
            os.kill(p, signal.SIGSTOP)
    else:
        sh(f"ip -n {lab.ns['A']} link set vr0 down")
    out, _ = probe.communicate()
    ping_out, _ = ping.communicate()
    rows = [(float(t), w) for t, w in (l.split() for l in out.splitlines() if l.strip())]
    after = [(t, w) for t, w in rows if t >= t0]
    # Reached B: the first answer from B after which no answer comes from A.
    reach = None
    for i, (t, w) in enumerate(after):
        if w == "B" and all(x != "A" for _, x in after[i:]):
            reach = t - t0
            break
    lost = sum(1 for _, w in after if w == "-")
    sent = recv = None
    for line in ping_out.splitlines():
        if "packets transmitted" in line:
            parts = line.split(",")
            sent, recv = int(parts[0].split()[0]), int(parts[1].split()[0])
    # Clean up: every process of both daemons, the link, the address.
    for p in group(a) + group(b):
        try:
            os.kill(p, signal.SIGCONT)
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for p in (a, b):
        p.wait()
    sh(f"ip -n {lab.ns['A']} link set vr0 up")
    for n in "AB":
        sh(f"ip -n {lab.ns[n]} addr del {VIP}/24 dev vr0", check=False)
        for f in ("rcrond.pid", "rcron.sock"):
            try:
                os.remove(os.path.join(lab.base, n, f))
            except FileNotFoundError:
                pass
    time.sleep(0.5)
    if sent is None:
        raise SystemExit(f"ping printed no statistics: {ping_out!r}")
    return reach, lost, sent - recv


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--advert", default="0.1")
    ap.add_argument("--rcron", default=os.path.join(os.path.dirname(__file__), "../../target/release/rcron"))
    args = ap.parse_args()
    args.rcron = os.path.abspath(args.rcron)
    adv = float(args.advert)
    down_ms = 3 * adv * 1000 + (256 - 100) / 256 * adv * 1000
    base = tempfile.mkdtemp(prefix="rcron-vip-bench-")
    lab = Lab(f"{os.getpid() % 10000}", base)
    results = {}
    try:
        for r in range(args.rounds):
            for fault in FAULTS:
                for impl in ("rcron", "keepalived"):
                    results.setdefault((impl, fault), []).append(one_round(impl, fault, lab, args))
    finally:
        lab.close()
    print(f"advert_int {args.advert} s (v3): B's Master_Down_Interval {down_ms:.0f} ms; "
          f"target: {down_ms + 10:.0f} ms; {args.rounds} rounds, medians")
    print("| fault | rcron: client reaches B, ms | connects lost | pings lost "
          "| keepalived: client reaches B, ms | connects lost | pings lost |")
    print("|---|---|---|---|---|---|---|")
    for fault in FAULTS:
        cells = []
        for impl in ("rcron", "keepalived"):
            rs = results[(impl, fault)]
            reach = [x[0] * 1000 for x in rs if x[0] is not None]
            never = sum(1 for x in rs if x[0] is None)
            med = f"{statistics.median(reach):.0f}" if reach else "never"
            if never and reach:
                med += f" ({never} never)"
            cells += [med, f"{statistics.median([x[1] for x in rs]):.0f}",
                      f"{statistics.median([x[2] for x in rs]):.0f}"]
        print(f"| {fault} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
