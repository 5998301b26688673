#!/usr/bin/env python3
"""Failover benchmark: rcron's VRRP daemon against keepalived, measured in the same run on
the same two hosts (network namespaces joined by a veth pair).

usage (as root, from the repository):
    cargo build --release
    python3 tests/bench/failover.py [--binary target/release/rcron] [--keepalived PATH]
                                    [--runs N | --quick] [--cpu-seconds S] [--keep]

What it measures, for rcron and for keepalived side by side:
  * crash failover: SIGSTOP then SIGKILL of every process of the master (node A, priority
    150; rcron: supervisor + worker, keepalived: parent + VRRP child), until the backup's
    (node B, priority 100) state file first reads `active`;
  * graceful handover: SIGTERM to the master's main process, same end point;
    both at VRRP v2 / advert 1 s, v3 / 0.1 s and v3 / 0.01 s, N runs each (default 5,
    --quick 2), median / min / max in ms next to the protocol's master-down and skew times.
    Each run starts both daemons afresh (A first, then B once A is active, so no startup
    race), lets at least 3 adverts from A reach B, and sends the signal just after the
    next one: both implementations lose their master at the same point of the advert
    cycle. A raw socket in B's namespace timestamps A's adverts, which gives a second,
    phase-free figure (`wire`: from A's last or priority-0 advert reaching B);
  * RSS: VmRSS summed over node A's processes with the pair running steady at v3 / 0.01 s;
  * CPU: utime + stime of node A's (master, 100 adverts/s) and node B's (backup) processes
    at v3 / 0.01 s and at v2 / 1 s, as % of one core. Both implementations run at once on
    two host pairs (the second pair's namespaces are bfC<pid> / bfD<pid>), for --cpu-seconds
    (default 60), then again with the pairs swapped: a quieter or busier minute of the
    machine hits both alike (at 1 s a figure is a few us/s, and the minute decided it).
The end of the output says whether each target of the issue is met, for information only.

Hosts: namespaces bfA<pid> / bfB<pid>, interfaces vA (192.0.2.1/24) and vB (192.0.2.2/24),
unicast between them, one virtual address 192.0.2.100 for both implementations. keepalived
writes its state file through notify_master / notify_backup / notify_fault scripts (temp
file + mv); rcron writes its own. Everything is torn down on exit, also on SIGINT/SIGTERM
(processes killed, namespaces deleted; --keep leaves the temp dir with configs and logs).
A full run takes about 6 minutes. Not a test: it never fails on speed (exit 0).
"""
import argparse
import atexit
import datetime
import json
import os
import shlex
import shutil
import signal
import select
import statistics
import subprocess
import sys
import tempfile
import time

PID = os.getpid()
# namespaces of host pair 0 (failovers, steady state at 100/s) and pair 1 (the second pair of
# the same-window measurement at 1/s); the same addresses in each pair
NS = [{"A": f"bfA{PID}", "B": f"bfB{PID}"}, {"A": f"bfC{PID}", "B": f"bfD{PID}"}]
IFN = {"A": "vA", "B": "vB"}
IP = {"A": "192.0.2.1", "B": "192.0.2.2"}
PRIO = {"A": 150, "B": 100}
PEER = {"A": "B", "B": "A"}
VIP = "192.0.2.100"
VRID = 51
SETTINGS = [  # label, VRRP version, advert interval in seconds
    ("v2 / 1 s", 2, 1.0),
    ("v3 / 0.1 s", 3, 0.1),
    ("v3 / 0.01 s", 3, 0.01),
]
IMPLS = ["rcron", "keepalived"]

_procs = []        # every Popen we started, for cleanup
_namespaces = []   # namespaces we created
_tmp = None
KEEP = False       # --keep: leave configs and daemon logs in the temp dir


# ---------------------------------------------------------------- hosts and cleanup

def sh(cmd, check=True):
    r = subprocess.run(cmd, shell=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True)
    if check and r.returncode != 0:
        raise RuntimeError(f"command failed: {cmd}: {r.stderr.strip()}")
    return r.stdout


def setup_hosts(pair=0):
    ns = NS[pair]
    for n in ("A", "B"):
        sh(f"ip netns add {ns[n]}")
        _namespaces.append(ns[n])
    a, b = f"bfa{pair}_{PID}", f"bfb{pair}_{PID}"
    sh(f"ip link add {a} type veth peer name {b}")
    for n, dev in (("A", a), ("B", b)):
        sh(f"ip link set {dev} netns {ns[n]}")
        sh(f"ip -n {ns[n]} link set {dev} name {IFN[n]}")
        sh(f"ip -n {ns[n]} addr add {IP[n]}/24 dev {IFN[n]}")
        sh(f"ip -n {ns[n]} link set {IFN[n]} up")
        sh(f"ip -n {ns[n]} link set lo up")


def cleanup():
    for p in _procs:
        for pid in [p.pid] + children(p.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        try:
            p.wait(timeout=2)
        except Exception:
            pass
    _procs.clear()
    for ns in _namespaces:
        # anything still running inside (e.g. a notify script) goes first
        for pid in sh(f"ip netns pids {ns}", check=False).split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (OSError, ValueError):
                pass
        sh(f"ip netns del {ns}", check=False)
    _namespaces.clear()
    if _tmp and not KEEP:
        shutil.rmtree(_tmp, ignore_errors=True)


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def alive(pid):
    """True while pid exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def read_first_line(path):
    try:
        with open(path) as f:
            return f.readline().strip()
    except OSError:
        return ""


def read_pid(path):
    try:
        with open(path) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


# ---------------------------------------------------------------- the two implementations

class Node:
    """One daemon (rcron or keepalived) on host A or B of host pair `pair`."""

    def __init__(self, impl, host, version, advert, binaries, pair=0):
        self.impl, self.host, self.pair = impl, host, pair
        self.dir = os.path.join(_tmp, f"{impl}-{host}{pair or ''}")
        os.makedirs(self.dir, exist_ok=True)
        self.state = os.path.join(self.dir, "state")
        self.log = os.path.join(self.dir, "log")
        self.version, self.advert, self.bin = version, advert, binaries[impl]
        self.proc = None

    # -- configs
    def _rcron_conf(self):
        h, d = self.host, self.dir
        text = (f"cluster_name bench\ninterface {IFN[h]}\nvirtual_router_id {VRID}\n"
                f"priority {PRIO[h]}\nvrrp_version {self.version}\n"
                f"advert_int {self.advert:g}\nunicast_src_ip {IP[h]}\n"
                f"unicast_peer {IP[PEER[h]]}\nvirtual_ipaddress {VIP}\n"
                f"state_file {d}/state\ncontrol_socket {d}/rcron.sock\n"
                f"pid_file {d}/rcrond.pid\nlock_dir {d}\n")
        path = os.path.join(d, "rcron.conf")
        with open(path, "w") as f:
            f.write(text)
        return path

    def _keepalived_conf(self):
        h, d = self.host, self.dir
        notify = os.path.join(d, "notify.sh")
        with open(notify, "w") as f:
            f.write("#!/bin/sh\n"
                    f"printf '%s\\n' \"$1\" > {d}/state.tmp.$$ && mv -f {d}/state.tmp.$$ "
                    f"{d}/state\n")
        os.chmod(notify, 0o755)
        text = f"""global_defs {{
    script_user root
    enable_script_security
}}
vrrp_instance VI_1 {{
    state BACKUP
    interface {IFN[h]}
    virtual_router_id {VRID}
    priority {PRIO[h]}
    advert_int {self.advert:g}
    version {self.version}
    unicast_src_ip {IP[h]}
    unicast_peer {{
        {IP[PEER[h]]}
    }}
    virtual_ipaddress {{
        {VIP}/24
    }}
    notify_master "{notify} active"
    notify_backup "{notify} passive"
    notify_fault "{notify} fault"
}}
"""
        path = os.path.join(d, "keepalived.conf")
        with open(path, "w") as f:
            f.write(text)
        return path

    # -- life cycle
    def start(self):
        for name in os.listdir(self.dir):
            if name.startswith("state") or name.endswith(".pid") or name.endswith(".sock"):
                os.unlink(os.path.join(self.dir, name))
        if self.impl == "rcron":
            argv = [self.bin, "--daemon", "--foreground", "--conf", self._rcron_conf()]
        else:
            argv = [self.bin, "-n", "-P", "-l", "-D", "-G", "-f", self._keepalived_conf(),
                    "-p", os.path.join(self.dir, "keepalived.pid"),
                    "-r", os.path.join(self.dir, "vrrp.pid")]
        log = open(self.log, "a")
        log.write(f"--- {time.monotonic():.3f} start: {shlex.join(argv)}\n")
        log.flush()
        # `ip netns exec` execs, so the pid is the daemon's main process
        self.proc = subprocess.Popen(["ip", "netns", "exec", NS[self.pair][self.host]] + argv,
                                     stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                     start_new_session=True)
        log.close()
        _procs.append(self.proc)

    def main_pid(self):
        return self.proc.pid if self.proc else None

    def worker_pid(self):
        """rcron's worker or keepalived's VRRP child (the only long-lived child)."""
        if self.impl == "keepalived":
            pid = read_pid(os.path.join(self.dir, "vrrp.pid"))
            if pid and alive(pid):
                return pid
        kids = [k for k in children(self.proc.pid) if alive(k)]
        return kids[0] if kids else None

    def pids(self):
        if not self.proc or not alive(self.proc.pid):
            return []
        w = self.worker_pid()
        return [self.proc.pid] + ([w] if w else [])

    def read_state(self):
        return read_first_line(self.state)

    def crash(self):
        """Both processes die without a chance to resign: stop both, then kill both."""
        ps = self.pids()
        for sig in (signal.SIGSTOP, signal.SIGKILL):
            for pid in reversed(ps):  # worker / VRRP child first
                try:
                    os.kill(pid, sig)
                except OSError:
                    pass

    def terminate(self):
        os.kill(self.proc.pid, signal.SIGTERM)

    def stop(self, grace=3.0, kill=True):
        """Ends the daemon and reaps it: SIGKILL at once (the next run starts from scratch
        and flushes the virtual address), or SIGTERM first when `kill` is False."""
        if not self.proc:
            return
        ps = self.pids()
        if not kill and self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGTERM)
            except OSError:
                pass
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                pass
        for pid in ps + [self.proc.pid]:
            if alive(pid):
                try:
                    os.kill(pid, signal.SIGCONT)
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        self.proc.wait()
        deadline = time.monotonic() + 2
        while any(alive(p) for p in ps) and time.monotonic() < deadline:
            time.sleep(0.005)
        _procs.remove(self.proc)
        self.proc = None


def flush_vips(pair=0):
    for h in ("A", "B"):
        sh(f"ip -n {NS[pair][h]} addr del {VIP}/24 dev {IFN[h]}", check=False)
        sh(f"ip -n {NS[pair][h]} addr del {VIP}/32 dev {IFN[h]}", check=False)


# ---------------------------------------------------------------- protocol figures

def master_down(version, advert, prio=100):
    if version == 2:
        return 3 * advert + (256 - prio) / 256
    return 3 * advert + (256 - prio) * advert / 256


def skew(version, advert, prio=100):
    return (256 - prio) / 256 if version == 2 else (256 - prio) * advert / 256


# ---------------------------------------------------------------- measurements

SNIFFER = r"""
import socket, struct, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, 112)
# The kernel's arrival stamp (SO_TIMESTAMPNS, CLOCK_REALTIME), moved to CLOCK_MONOTONIC: when
# the advert reached B, not when this process was next scheduled.
TS = getattr(socket, "SO_TIMESTAMPNS", 35)  # asm-generic and x86 value, absent in Python
s.setsockopt(socket.SOL_SOCKET, TS, 1)
out = sys.stdout
while True:
    d, anc, _, a = s.recvmsg(4096, 64)
    t = time.monotonic()
    for level, kind, data in anc:
        if level == socket.SOL_SOCKET and kind == TS and len(data) >= struct.calcsize("@ll"):
            sec, nsec = struct.unpack("@ll", data[:struct.calcsize("@ll")])
            t = sec + nsec / 1e9 - (time.time() - time.monotonic())
    v = d[(d[0] & 15) * 4:]
    if len(v) >= 3:
        out.write("%.6f %s %d\n" % (t, a[0], v[2]))
        out.flush()
"""


class Sniffer:
    """Timestamps (CLOCK_MONOTONIC, shared by all namespaces) of every VRRP packet that
    reaches host B of host pair `pair`, from a raw socket in B's namespace."""

    def __init__(self, pair=0):
        self.proc = subprocess.Popen(["ip", "netns", "exec", NS[pair]["B"], sys.executable, "-u",
                                      "-c", SNIFFER], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, start_new_session=True)
        _procs.append(self.proc)
        os.set_blocking(self.proc.stdout.fileno(), False)
        self.buf = b""
        self.events = []  # (t, src, priority)

    def drain(self, wait=0.0):
        fd = self.proc.stdout.fileno()
        if wait > 0:
            select.select([fd], [], [], wait)
        while True:
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                break
            if not chunk:
                break
            self.buf += chunk
        *lines, self.buf = self.buf.split(b"\n")
        for line in lines:
            t, src, prio = line.decode().split()
            self.events.append((float(t), src, int(prio)))

    def clear(self):
        self.drain()
        self.events.clear()

    def from_a(self):
        return [(t, p) for t, src, p in self.events if src == IP["A"]]

    def stop(self):
        try:
            os.kill(self.proc.pid, signal.SIGKILL)
        except OSError:
            pass
        self.proc.wait()
        _procs.remove(self.proc)


def wait_until(cond, limit_s, step=0.002):
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(step)
    return cond()


def start_pair(impl, version, advert, binaries, sniffer, pair=0):
    """Starts A, waits until it is active, starts B, waits until it is passive, then lets
    at least 3 adverts from A reach B (the settle time) and returns right after the last
    one, so that every kill hits the same point of the advert cycle.
    Returns (A, B, error or None)."""
    flush_vips(pair)
    a = Node(impl, "A", version, advert, binaries, pair)
    b = Node(impl, "B", version, advert, binaries, pair)
    limit = 10 * master_down(version, advert) + 10
    a.start()
    if not wait_until(lambda: a.read_state() == "active" and len(a.pids()) == 2, limit):
        return a, b, f"A did not become active: A={a.read_state()!r}"
    b.start()
    if not wait_until(lambda: b.read_state() == "passive" and len(b.pids()) == 2, limit):
        return a, b, f"B did not become passive: B={b.read_state()!r}"
    sniffer.clear()
    t_settle = time.monotonic() + max(3 * advert, 0.1)
    deadline = time.monotonic() + 10 * advert + 2
    while True:
        sniffer.drain(wait=min(advert, 0.05))
        got = [t for t, p in sniffer.from_a() if p > 0]
        if len(got) >= 3 and time.monotonic() >= t_settle:
            # wait for the next advert and return as soon as it has arrived
            n = len(got)
            while len(got) == n and time.monotonic() < deadline:
                sniffer.drain(wait=advert * 2)
                got = [t for t, p in sniffer.from_a() if p > 0]
            break
        if time.monotonic() > deadline:
            return a, b, f"only {len(got)} adverts from A reached B while settling"
    if a.read_state() != "active" or b.read_state() != "passive":
        return a, b, f"unstable after settle: A={a.read_state()!r} B={b.read_state()!r}"
    return a, b, None


def one_failover(impl, kind, version, advert, binaries, sniffer):
    """Returns {"signal": ms from the signal to B's state file reading `active`,
    "wire": ms from A's last advert (crash) or A's priority-0 advert (graceful) reaching B
    to the same point}, or an error string."""
    a, b, err = start_pair(impl, version, advert, binaries, sniffer)
    try:
        if err:
            return err
        limit_s = 10 * master_down(version, advert) + 5
        t0 = time.monotonic()
        if kind == "crash":
            a.crash()
        else:
            a.terminate()
        deadline = t0 + limit_s
        while True:
            if read_first_line(b.state) == "active":
                t1 = time.monotonic()
                break
            if time.monotonic() > deadline:
                return f"timeout: B still {b.read_state()!r} after {limit_s:.1f} s"
            time.sleep(0.001)
        sniffer.drain()
        ev = [(t, p) for t, p in sniffer.from_a() if t <= t1]
        if kind == "crash":
            ref = [t for t, p in ev if p > 0]
            ref = ref[-1] if ref else None
        else:
            ref = [t for t, p in ev if p == 0 and t >= t0 - 0.001]
            ref = ref[0] if ref else None
        return {"signal": (t1 - t0) * 1000.0,
                "wire": (t1 - ref) * 1000.0 if ref is not None else None}
    finally:
        a.stop()
        b.stop()


def proc_kib(pids, name, key):
    """The sum of the `key` lines (KiB) of /proc/PID/`name` over `pids` (gone ones: 0)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/{name}") as f:
                for line in f:
                    if line.startswith(key):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def rss_kib(pids):
    return proc_kib(pids, "status", "VmRSS:")


def pss_kib(pids):
    """Proportional set size: a page mapped by n processes counts 1/n in each (the binary's
    pages, mapped by both of rcron's processes, count once in the sum)."""
    return proc_kib(pids, "smaps_rollup", "Pss:")


# The machine's own timer latency in the same window: a process at the lowest real-time
# priority (no ordinary task delays it) wakes on a grid of `interval` seconds and records how
# late each wake-up is. A daemon's advert can be no more punctual than this.
PROBE = r"""
import json, os, sys, time
interval, seconds, over = float(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
late, worst, n = 0, 0.0, 0
due = time.monotonic() + interval
end = due + seconds
while due < end:
    left = due - time.monotonic()
    if left > 0:
        time.sleep(left)
    lag = (time.monotonic() - due) * 1000.0
    worst, n = max(worst, lag), n + 1
    late += lag > over
    due += interval
print(json.dumps({"worst_ms": worst, "late": late, "wakeups": n}))
"""


def exec_runtime_ms(pids):
    """se.sum_exec_runtime (ms, ns resolution) summed over every thread of `pids`."""
    total = 0.0
    for pid in pids:
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                with open(f"/proc/{pid}/task/{tid}/sched") as f:
                    for line in f:
                        if line.startswith("se.sum_exec_runtime"):
                            total += float(line.split(":")[1])
            except (OSError, ValueError):
                pass
    return total


def threads(pids):
    n = 0
    for pid in pids:
        try:
            n += len(os.listdir(f"/proc/{pid}/task"))
        except OSError:
            pass
    return n


def cpu_ticks(pids):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
        except (OSError, ValueError, IndexError):
            pass
    return total


def steady_together(binaries, seconds, sniffers, version=2, advert=1.0):
    """CPU of both implementations in the same windows: rcron on one host pair and keepalived
    on the other at once, for `seconds`, then the pairs swapped for another `seconds`, so that
    whatever else the machine does in a window hits both alike. Returns {impl: figures}, the
    CPU figures averaged over the two windows (weighted by their length)."""
    parts = {impl: [] for impl in IMPLS}
    for order in (IMPLS, IMPLS[::-1]):
        nodes = []
        try:
            for pair, impl in enumerate(order):
                a, b, err = start_pair(impl, version, advert, binaries, sniffers[pair], pair)
                nodes.append((a, b, sniffers[pair]))
                if err:
                    return {i: {"error": f"{impl} on pair {pair}: {err}"} for i in IMPLS}
            for impl, fig in zip(order, measure(nodes, seconds, advert)):
                parts[impl].append(fig)
        finally:
            for a, b, _ in nodes:
                a.stop()
                b.stop()
    out = {}
    for impl, figs in parts.items():
        wall = sum(f["wall"] for f in figs)
        merged = dict(figs[-1])
        for key in ("cpu_a", "cpu_b", "run_a", "run_b"):
            merged[key] = sum(f[key] * f["wall"] for f in figs) / wall
        merged["late_adverts"] = sum(f["late_adverts"] for f in figs)
        merged["max_gap_ms"] = max(f["max_gap_ms"] for f in figs)
        merged["probe_late"] = sum(f["probe_late"] for f in figs)
        merged["probe_worst_ms"] = max(f["probe_worst_ms"] for f in figs)
        merged["wall"] = wall
        merged["windows"] = [(f["run_a"], f["run_b"]) for f in figs]
        notes = [f["note"] for f in figs if "note" in f]
        if notes:
            merged["note"] = "; ".join(notes)
        out[impl] = merged
    return out


def measure(nodes, seconds, advert):
    """RSS of each node A and CPU of each pair's A and B over the same `seconds`;
    `nodes` is a list of running (A, B, sniffer at B). Returns one dict per pair."""
    hz = os.sysconf("SC_CLK_TCK")
    pids = [(a.pids(), b.pids()) for a, b, _ in nodes]
    rss_start = [rss_kib(pa) for pa, _ in pids]
    run0 = [(exec_runtime_ms(pa), exec_runtime_ms(pb)) for pa, pb in pids]
    tick0 = [(cpu_ticks(pa), cpu_ticks(pb)) for pa, pb in pids]
    t0 = time.monotonic()
    for _, _, sn in nodes:
        sn.clear()
    probe = subprocess.Popen([sys.executable, "-c", PROBE, str(advert), str(seconds), "5"],
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True)
    while time.monotonic() < t0 + seconds:
        time.sleep(min(1.0, max(0.0, t0 + seconds - time.monotonic())))
        for _, _, sn in nodes:
            sn.drain()  # keeps the pipe from filling; counts A's adverts
    tick1 = [(cpu_ticks(pa), cpu_ticks(pb)) for pa, pb in pids]
    t1 = time.monotonic()
    run1 = [(exec_runtime_ms(pa), exec_runtime_ms(pb)) for pa, pb in pids]
    try:
        lag = json.loads(probe.communicate(timeout=advert * 3 + 5)[0])
    except (subprocess.TimeoutExpired, ValueError):
        probe.kill()
        probe.wait()
        lag = {"worst_ms": float("nan"), "late": -1, "wakeups": 0}
    out = []
    for i, (a, b, sn) in enumerate(nodes):
        (pa, pb), (ca, cb), (ca2, cb2) = pids[i], tick0[i], tick1[i]
        (ra, rb), (ra2, rb2) = run0[i], run1[i]
        ts = [t for t, p in sn.from_a() if t0 <= t <= t1]
        gaps = [y - x for x, y in zip(ts, ts[1:])]
        fig = {
            "rss_kib": rss_kib(pa),
            "rss_start_kib": rss_start[i],
            "rss_each": [rss_kib([p]) for p in pa],
            "pss_kib": pss_kib(pa),
            "probe_worst_ms": lag["worst_ms"],
            "probe_late": lag["late"],
            "rss_b_kib": rss_kib(pb),
            "cpu_a": 100.0 * (ca2 - ca) / hz / (t1 - t0),
            "cpu_b": 100.0 * (cb2 - cb) / hz / (t1 - t0),
            "run_a": 100.0 * (ra2 - ra) / 1000.0 / (t1 - t0),
            "run_b": 100.0 * (rb2 - rb) / 1000.0 / (t1 - t0),
            "threads_a": threads(pa),
            "adverts_per_s": len(ts) / (t1 - t0),
            "max_gap_ms": max(gaps) * 1000.0 if gaps else float("nan"),
            "late_adverts": sum(1 for g in gaps if g > advert + 0.005),
            "wall": t1 - t0,
        }
        if (a.read_state(), b.read_state()) != ("active", "passive"):
            fig["note"] = (f"states changed during the window: A={a.read_state()} "
                           f"B={b.read_state()}")
        if pa != a.pids() or pb != b.pids():
            fig["note"] = "a process was replaced during the window"
        out.append(fig)
    return out


# ---------------------------------------------------------------- report

def summary(values):
    ok = [x for x in values if x is not None]
    if not ok:
        return None
    return statistics.median(ok), min(ok), max(ok), len(ok)


def fmt_stat(s, runs):
    if s is None:
        return "no data"
    med, lo, hi, n = s
    cell = f"{med:.1f} ({lo:.1f}-{hi:.1f})"
    if n < runs:
        cell += f" n={n}"
    return cell


def main():
    global _tmp, KEEP
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default=os.path.normpath(os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "..", "target", "release", "rcron")),
        help="rcron binary (default: target/release/rcron of this repository)")
    ap.add_argument("--keepalived", default="/usr/sbin/keepalived", help="keepalived binary")
    ap.add_argument("--runs", type=int, default=5, help="runs per case (default 5)")
    ap.add_argument("--quick", action="store_true", help="2 runs per case")
    ap.add_argument("--cpu-seconds", type=float, default=60.0,
                    help="CPU measurement window at v3 / 0.01 s (default 60)")
    ap.add_argument("--settings", default="v2-1,v3-0.1,v3-0.01",
                    help="comma-separated subset of v2-1, v3-0.1, v3-0.01 (default: all)")
    ap.add_argument("--keep", action="store_true",
                    help="keep the temp dir with configs and daemon logs")
    ap.add_argument("--state-on", choices=["tmpfs", "disk"], default="tmpfs",
                    help="where the state files live: a tmpfs, as /run is on Debian, Buildroot "
                         "and OpenWrt, where the default state_file /var/run/rcron/state "
                         "lives (default); or the temp dir's disk filesystem")
    args = ap.parse_args()
    KEEP = args.keep
    runs = 2 if args.quick else max(1, args.runs)
    names = {"v2-1": 0, "v3-0.1": 1, "v3-0.01": 2}
    try:
        chosen = [SETTINGS[names[x.strip()]] for x in args.settings.split(",") if x.strip()]
    except KeyError as e:
        sys.exit(f"unknown setting {e}; choose from {', '.join(names)}")
    binaries = {"rcron": os.path.abspath(args.binary),
                "keepalived": os.path.abspath(args.keepalived)}
    for impl, path in binaries.items():
        if not os.access(path, os.X_OK):
            sys.exit(f"{impl} binary not found or not executable: {path}")
    if os.geteuid() != 0:
        sys.exit("needs root (network namespaces, raw sockets)")

    started = time.monotonic()
    print("command: " + shlex.join([sys.executable] + sys.argv))
    print("date:    " + datetime.datetime.now().astimezone().isoformat(timespec="seconds"))
    kv = subprocess.run([binaries["keepalived"], "--version"], stdout=subprocess.PIPE,
                        stderr=subprocess.STDOUT, text=True).stdout.splitlines()
    rv = subprocess.run([binaries["rcron"], "--version"], stdout=subprocess.PIPE,
                        stderr=subprocess.STDOUT, text=True).stdout.strip()
    print(f"rcron:      {binaries['rcron']} ({rv or '?'}; run from a copy)")
    print(f"keepalived: {binaries['keepalived']} ({kv[0] if kv else '?'})")
    print(f"host:       {os.uname().nodename}, {os.cpu_count()} CPUs, kernel "
          f"{os.uname().release}, load {os.getloadavg()[0]:.2f}")
    print(f"runs per case: {runs}, CPU window: {args.cpu_seconds:g} s")
    print(flush=True)

    _tmp = tempfile.mkdtemp(prefix="rcron-failover-")
    if args.state_on == "tmpfs":
        sh(f"mount -t tmpfs -o size=64m rcron-bench {_tmp}")
        if not KEEP:
            # runs after `cleanup` (atexit is last in, first out): the daemons are gone
            atexit.register(lambda: sh(f"umount {_tmp} && rmdir {_tmp}", check=False))
    atexit.register(cleanup)
    fs = sh(f"stat -f -c %T {_tmp}").strip()
    print(f"state files on: {fs} ({_tmp}); rcron refreshes its file, keepalived's notify "
          "scripts write theirs at transitions only")
    # a private copy, so a concurrent `cargo build` cannot swap the binary mid-run
    shutil.copy2(binaries["rcron"], os.path.join(_tmp, "rcron"))
    binaries["rcron"] = os.path.join(_tmp, "rcron")
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda s, f: sys.exit(128 + s))
    odd = []
    try:
        setup_hosts(0)
        sniffer = Sniffer(0)
        results = {}  # (setting label, kind, impl) -> [{"signal": ms, "wire": ms}]
        for label, ver, adv in chosen:
            for i in range(runs):
                for kind in ("crash", "graceful"):
                    for impl in IMPLS:  # interleaved, so drift on the machine hits both
                        for attempt in range(3):
                            r = one_failover(impl, kind, ver, adv, binaries, sniffer)
                            if isinstance(r, dict):
                                results.setdefault((label, kind, impl), []).append(r)
                                shown = (f"{r['signal']:.1f} ms (wire "
                                         + (f"{r['wire']:.1f}" if r["wire"] is not None
                                            else "?") + " ms)")
                            else:
                                odd.append(f"{label} {kind} {impl} run {i + 1}: {r}")
                                shown = r + (", retrying" if attempt < 2 else ", giving up")
                            print(f"  [{time.monotonic() - started:6.1f} s] {label:12} "
                                  f"{kind:8} {impl:10} run {i + 1}: {shown}",
                                  file=sys.stderr, flush=True)
                            if isinstance(r, dict):
                                break
        steady, idle = {}, {}
        if args.cpu_seconds > 0:
            setup_hosts(1)
            sniffers = [sniffer, Sniffer(1)]
            print(f"  [{time.monotonic() - started:6.1f} s] both: steady state at v3 / 0.01 s, "
                  f"2 x {args.cpu_seconds:g} s on two host pairs at once", file=sys.stderr,
                  flush=True)
            steady = steady_together(binaries, args.cpu_seconds, sniffers, 3, 0.01)
        if args.cpu_seconds > 0:
            print(f"  [{time.monotonic() - started:6.1f} s] both: steady state at v2 / 1 s, "
                  f"2 x {args.cpu_seconds:g} s on two host pairs at once", file=sys.stderr,
                  flush=True)
            idle = steady_together(binaries, args.cpu_seconds, sniffers)
    finally:
        cleanup()

    report(results, steady, idle, runs, odd, chosen, time.monotonic() - started)
    return 0


def report(results, steady, idle, runs, odd, settings, elapsed):
    W = 24
    print("Failover, ms: median (min-max) over the runs; protocol figures are node B's "
          "(priority 100).")
    print("  signal: from the kill / SIGTERM of A to B's state file first reading `active`")
    print("  wire:   from A's last advert (crash) or A's priority-0 advert (graceful)")
    print("          arriving at B, to the same point")
    print("Each kill is sent just after an advert from A has reached B, so both implementations")
    print("lose their master at the same point of the advert cycle (the worst case).")
    print("Both figures include the time until B's state file shows the change (keepalived:")
    print("its notify script; rcron: its own write).")
    print()
    print(f"{'case':30} {'rcron':>{W}} {'keepalived':>{W}}   {'protocol':>18}")
    print("-" * (30 + 2 * (W + 1) + 21))
    med = {}
    for label, ver, adv in settings:
        md, sk = master_down(ver, adv) * 1000, skew(ver, adv) * 1000
        for kind in ("crash", "graceful"):
            for fig in ("signal", "wire"):
                cells = []
                for impl in IMPLS:
                    vals = [r[fig] for r in results.get((label, kind, impl), [])]
                    s = summary(vals)
                    med[(label, kind, impl, fig)] = s[0] if s else None
                    cells.append(fmt_stat(s, runs))
                if fig == "signal":
                    what = "crash (kill -9)" if kind == "crash" else "graceful (TERM)"
                    name = f"{label} {what}"
                    proto = f"master-down {md:.1f}" if kind == "crash" else f"skew {sk:.1f}"
                else:
                    name, proto = "  wire", ""
                print(f"{name:30} {cells[0]:>{W}} {cells[1]:>{W}}   {proto:>18}")
    print()

    print("Steady state at v3 / 0.01 s (node A master, node B backup); both implementations at")
    print("once on two host pairs, twice --cpu-seconds, the pairs swapped half-way")
    print(f"{'figure':30} {'rcron':>{W}} {'keepalived':>{W}}")
    print("-" * (30 + 2 * (W + 1)))

    def row(name, fn, source=steady):
        cells = []
        for impl in IMPLS:
            st = source.get(impl, {})
            cells.append("skipped" if not st else "error" if "error" in st else fn(st))
        print(f"{name:30} {cells[0]:>{W}} {cells[1]:>{W}}")

    row("RSS node A, KiB", lambda s: f"{s['rss_kib']}")
    row("  main + child process", lambda s: " + ".join(str(x) for x in s["rss_each"]))
    row("  at start of the window", lambda s: f"{s['rss_start_kib']}")
    row("PSS node A, KiB", lambda s: f"{s['pss_kib']}")
    row("RSS node B, KiB", lambda s: f"{s['rss_b_kib']}")
    row("CPU node A (master), % core", lambda s: f"{s['cpu_a']:.2f}")
    row("CPU node B (backup), % core", lambda s: f"{s['cpu_b']:.2f}")
    row("  A / B from sum_exec_runtime", lambda s: f"{s['run_a']:.3f} / {s['run_b']:.3f}")
    for w in range(2):
        row(f"    window {w + 1}", lambda s: "{:.3f} / {:.3f}".format(*s["windows"][w]))
    row("adverts/s from A seen at B", lambda s: f"{s['adverts_per_s']:.1f}")
    row("  longest gap between them, ms", lambda s: f"{s['max_gap_ms']:.1f}")
    row("  gaps over 15 ms", lambda s: f"{s['late_adverts']}")
    row("real-time timer, same windows:", lambda s: "")
    row("  wake-ups over 5 ms late", lambda s: f"{s['probe_late']}")
    row("  latest wake-up, ms", lambda s: f"{s['probe_worst_ms']:.1f}")
    for impl in IMPLS:
        st = idle.get(impl, {})
        if "error" in st:
            odd.append(f"steady v2/1s {impl}: {st['error']}")
        if "note" in st:
            odd.append(f"steady v2/1s {impl}: {st['note']}")

    row("at v2 / 1 s (same windows):", lambda s: "", idle)
    row("  CPU A / B, % core", lambda s: f"{s['cpu_a']:.3f} / {s['cpu_b']:.3f}", idle)
    row("  A / B from sum_exec_runtime", lambda s: f"{s['run_a']:.4f} / {s['run_b']:.4f}", idle)
    for w in range(2):
        row(f"    window {w + 1}", lambda s: "{:.4f} / {:.4f}".format(*s["windows"][w]), idle)
    row("  gaps over 1.005 s", lambda s: f"{s['late_adverts']}", idle)
    row("threads node A", lambda s: f"{s['threads_a']}")
    row("window, s", lambda s: f"{s['wall']:.1f}")
    for impl in IMPLS:
        st = steady.get(impl, {})
        if "error" in st:
            odd.append(f"steady {impl}: {st['error']}")
        if "note" in st:
            odd.append(f"steady {impl}: {st['note']}")
    print(f"CPU is utime+stime from /proc/PID/stat (in {1000 // os.sysconf('SC_CLK_TCK')} ms "
          "ticks); the sum_exec_runtime row is the")
    print("scheduler's run time of every thread, for cross-checking. Both install the virtual")
    print("address on the master.")
    print()

    print("Targets (informational; this benchmark never fails on speed)")

    def target(name, ok, detail):
        v = "no data" if ok is None else ("met" if ok else "NOT met")
        print(f"  {name:52} {v:8} {detail}")

    for label, ver, adv in settings:
        md, sk = master_down(ver, adv) * 1000, skew(ver, adv) * 1000
        r = med[(label, "crash", "rcron", "signal")]
        k = med[(label, "crash", "keepalived", "signal")]
        g = med[(label, "graceful", "rcron", "signal")]
        both = r is not None and k is not None
        target(f"{label}: crash no slower than keepalived",
               (r <= k) if both else None,
               f"({r:.1f} vs {k:.1f} ms)" if both else "")
        target(f"{label}: crash within master-down + 5 ms",
               (r <= md + 5) if r is not None else None,
               f"({r:.1f} vs {md + 5:.1f} ms)" if r is not None else "")
        target(f"{label}: graceful within skew + 5 ms",
               (g <= sk + 5) if g is not None else None,
               f"({g:.1f} vs {sk + 5:.1f} ms)" if g is not None else "")
    st, ka = steady.get("rcron", {}), steady.get("keepalived", {})
    have = "rss_kib" in st
    target("RSS of the daemon (node A) under 1 MiB", (st["rss_kib"] < 1024) if have else None,
           f"({st['rss_kib']} KiB; keepalived {ka.get('rss_kib', '?')} KiB)" if have else "")
    target("CPU at 100 adverts/s (master) under 1% of a core",
           (st["cpu_a"] < 1.0) if have else None,
           f"({st['cpu_a']:.2f} %; backup {st['cpu_b']:.2f} %)" if have else "")
    both = have and "run_a" in ka
    for who, key in (("master", "run_a"), ("backup", "run_b")):
        target(f"CPU at 100 adverts/s ({who}) at or below keepalived's",
               (st[key] <= ka[key]) if both else None,
               f"({st[key]:.3f} vs {ka[key]:.3f} % by sum_exec_runtime)" if both else "")
        target(f"CPU at 100 adverts/s ({who}) at most half of keepalived's",
               (st[key] <= ka[key] / 2) if both else None, "")
    si, ki = idle.get("rcron", {}), idle.get("keepalived", {})
    if "run_a" in si and "run_a" in ki:
        for who, key in (("master", "run_a"), ("backup", "run_b")):
            target(f"CPU at v2 / 1 s ({who}) at or below keepalived's", si[key] <= ki[key],
                   f"({si[key]:.4f} vs {ki[key]:.4f} %)")
    target("no gap over 15 ms between adverts at 100/s", (st["late_adverts"] == 0) if have else None,
           f"({st['late_adverts']} gaps, longest {st['max_gap_ms']:.1f} ms; a real-time timer "
           f"woke over 5 ms late {st['probe_late']} times)" if have else "")
    print("  (all on medians of the `signal` figures)")
    if odd:
        print()
        print("Failed or odd runs (retried up to twice; not in the figures):")
        for e in odd:
            print("  " + e)
    print()
    if KEEP:
        print(f"configs and logs kept in {_tmp}")
    print(f"elapsed: {elapsed:.0f} s, load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    sys.exit(main())
