#!/usr/bin/env python3
"""Exactly-once torture harness: N hosts in network namespaces, each running an election
daemon and a compressed cron that fires `rcron --slot S -- JOB` at every S-second slot of its
own wall clock, with a fault on the current master every few seconds. Per slot (the
RCRON_SLOT the job sees) it counts how many nodes ran the job.

  tests/bench/torture.py [--impl rcron|keepalived|etcd|etcdlock] [--nodes 2] [--duration 60]
                         [--fault-every 5] [--loss 0] [--advert 0.1] [--assert]
                         [--slot 1] [--phases 0,0.7,-1.3] [--jitter 0.5]
                         [--offsets 0,20,-7] [--max-clock-offset 30]
                         [--binary target/release/rcron] [--json]

--slot S           the schedule's granularity, whole seconds (the wrapper's --slot).
--phases P,...     each node's cron fires P seconds after the others' zero (node B 0.7 s after
                   node A, node C 1.3 s before it), plus a random --jitter up to J seconds:
                   busybox crond and cronie start a minute's jobs at their own sub-second or
                   second phase. Phases plus jitter must stay inside one slot.
--offsets O,...    each node's wall clock is O seconds off (Debian's faketime interposes the
                   wall clock of the glibc build for the daemon and its wrappers; the monotonic
                   clock stays real). A node's cron fires by its own clock, as cron does. The
                   run lasts --duration plus the offsets' span, so that every node fires
                   --duration seconds' worth of the same slots.

--impl rcron       rcron daemons; the wrapper asks its daemon (handoff protocol).
--impl keepalived  the baseline: keepalived 2.2.7 whose notify scripts write the state file,
                   and the rcron wrapper in state-file mode (as the original rcron worked).
--impl etcd        rcron daemons with `election = etcd` (lease --ttl seconds) on a 3-member
                   etcd cluster (Debian's etcd-server) in 3 more namespaces.
--impl etcdlock    the etcd baseline: no rcron; every node's crontab line is
                     timeout T etcdctl lock --ttl TTL /torture/lock -- sh -c 'JOB; sleep T'
                   (the lock held to the end of the slot, waiters give up there: the most a
                   crontab can do with `etcdctl lock`, which knows nothing of slots).
Faults cycle on the current master: kill -9 (then restart), SIGSTOP 1.5 s then SIGCONT,
SIGTERM (then restart), link down 1.5 s then up. With etcd: kill -9, SIGSTOP for TTL+1 s,
SIGTERM, the master cut from every etcd member by nftables for TTL+1 s (a partition VRRP
cannot survive), and the etcd majority lost (two members SIGSTOPped 3 s); etcdlock: the cut
(on a node whose etcdctl holds the lock) and the majority. A missed slot that falls while no
node reaches the etcd majority (every node fired it between the fault and TTL+2 s after it)
is counted apart
(`missed_no_majority`), and so is one that falls in the window the README documents for etcd:
a daemon killed -9 after recording the slot and before its wrapper had the answer (the node's
wrapper logged that it does not run the slot its node holds under etcd, and a kill -9 was the
first fault on that node after its cron fired the slot, within the wrapper's wait:
`missed_unanswered`). So is one that this harness's cron did not really fire on some node: the
wrapper it started for slot S read its clock in the next slot, on a machine stalled past the
phase's margin, and named that one instead (`missed_late_start`; `late_starts` counts every
such wrapper). --loss P drops P% of VRRP packets on every host (nftables).
--assert exits 1 if any slot was missed (apart from those) or doubled.
Needs root. Uses only 192.0.2.0/24 inside namespaces it creates, and removes them.
"""
import argparse, atexit, json, os, random, re, shutil, signal, subprocess, sys, tempfile, threading, time
from lab import add_bridge, add_host, sh, start_etcd

p = argparse.ArgumentParser()
p.add_argument("--impl", choices=["rcron", "keepalived", "etcd", "etcdlock"], default="rcron")
p.add_argument("--ttl", type=int, default=4, help="etcd lease TTL, seconds (etcd modes)")
p.add_argument("--nodes", type=int, default=2)
p.add_argument("--duration", type=float, default=60)
p.add_argument("--fault-every", type=float, default=5)
p.add_argument("--loss", type=int, default=0)
p.add_argument("--advert", default="0.1")
p.add_argument("--warmup", type=float, default=5)
p.add_argument("--binary", default=os.path.join(os.path.dirname(__file__), "../../target/release/rcron"))
p.add_argument("--assert", dest="check", action="store_true")
p.add_argument("--json", action="store_true")
p.add_argument("--tag", default="")
p.add_argument("--slot", type=int, default=1)
p.add_argument("--phases", default="0")
p.add_argument("--jitter", type=float, default=0.0)
p.add_argument("--offsets", default="0")
p.add_argument("--max-clock-offset", type=int, default=30)
p.add_argument("--keep", action="store_true", help="keep the work directory (logs) and print it")
args = p.parse_args()
FAKETIME = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"

RCRON = os.path.abspath(args.binary)
N = args.nodes
PRIOS = [150, 100, 50, 40, 30][:N]
TAG = (args.tag or "t") + str(os.getpid() % 100000)
BR = f"tqbr{TAG}"
NS = [f"tq{TAG}h{i}" for i in range(N)]
IPS = [f"192.0.2.{11 + i}" for i in range(N)]
BASE = tempfile.mkdtemp(prefix=f"rcron-torture-{TAG}-")
DIRS = [os.path.join(BASE, f"h{i}") for i in range(N)]
JOBLOG = os.path.join(BASE, "jobs.log")
ETCD = args.impl in ("etcd", "etcdlock")
ENS = [f"tq{TAG}e{m}" for m in range(3)] if ETCD else []
EIPS = [f"192.0.2.{21 + m}" for m in range(3)]
EURLS = [f"http://{ip}:2379" for ip in EIPS]
eprocs = {}  # member index: its process (lab.start_etcd)
quorum_windows = []  # (start, end) of the faults that took the etcd majority away


def per_node(text, what):
    vals = [float(x) for x in text.split(",")]
    vals += [0.0] * (N - len(vals))
    if len(vals) > N:
        raise SystemExit(f"--{what}: {len(vals)} values for {N} nodes")
    return vals


PHASES = per_node(args.phases, "phases")
OFFSETS = per_node(args.offsets, "offsets")
BASE_PHASE = max(0.0, -min(PHASES))
if max(PHASES) + BASE_PHASE + args.jitter >= args.slot:
    raise SystemExit("--phases and --jitter must stay inside one --slot")
if any(OFFSETS) and not os.path.exists(FAKETIME):
    raise SystemExit(f"--offsets needs Debian's faketime package ({FAKETIME})")
fired = [set() for _ in range(N)]  # slot names each node's cron fired
fired_at = [{} for _ in range(N)]  # slot -> when node i's cron fired it (time.time())
lock = threading.Lock()
procs = {}          # node -> Popen of the daemon (rcron supervisor or keepalived parent)
wrappers = []       # Popen of every wrapper, reaped at the end
events = []         # (time, text)
stop = threading.Event()


def cleanup():
    stop.set()
    for i in range(N):
        kill_daemon(i, "KILL", quiet=True)
    for w in wrappers:
        try:
            w.wait(timeout=5)
        except Exception:
            w.kill()
    for pr in eprocs.values():
        try: os.killpg(pr.pid, signal.SIGKILL)
        except OSError: pass
    for ns in NS + ENS + [BR]:
        sh(f"ip netns del {ns}", check=False)
    if args.keep:
        print(f"work directory kept: {BASE}", file=sys.stderr)
    else:
        shutil.rmtree(BASE, ignore_errors=True)


atexit.register(cleanup)
signal.signal(signal.SIGTERM, lambda *a: sys.exit(2))


def setup_hosts():
    add_bridge(BR)
    for m in range(len(ENS)):
        add_host(BR, ENS[m], EIPS[m], f"qa{TAG}e{m}", f"qb{TAG}e{m}")
    for i in range(N):
        add_host(BR, NS[i], IPS[i], f"qa{TAG}{i}", f"qb{TAG}{i}")
        os.makedirs(DIRS[i])
        if args.loss:
            sh(f"ip netns exec {NS[i]} nft add table inet t")
            sh(f"ip netns exec {NS[i]} nft 'add chain inet t in {{ type filter hook input priority 0; }}'")
            sh(f"ip netns exec {NS[i]} nft add rule inet t in meta l4proto 112 numgen random mod 100 '<' {args.loss} drop")


def rcron_conf(i):
    peers = " ".join(ip for j, ip in enumerate(IPS) if j != i)
    d = DIRS[i]
    path = os.path.join(d, "rcron.conf")
    if args.impl == "etcd":
        urls = EURLS[i % 3:] + EURLS[:i % 3]
        with open(path, "w") as f:
            f.write(f"cluster_name torture\nelection etcd\netcd_endpoints {' '.join(urls)}\n"
                    f"etcd_lease_ttl {args.ttl}\nnode_name n{i}\n"
                    f"state_file {d}/state\ncontrol_socket {d}/rcron.sock\npid_file {d}/rcrond.pid\n"
                    f"lock_dir {d}\nsyslog_facility LOG_LOCAL7\n"
                    f"max_clock_offset {args.max_clock_offset}\n")
        return path
    with open(path, "w") as f:
        f.write(f"cluster_name torture\ninterface vr0\nvirtual_router_id 61\npriority {PRIOS[i]}\n"
                f"vrrp_version 3\nadvert_int {args.advert}\nunicast_src_ip {IPS[i]}\n"
                f"unicast_peer {peers}\nvirtual_ipaddress 192.0.2.100\n"
                f"state_file {d}/state\ncontrol_socket {d}/rcron.sock\npid_file {d}/rcrond.pid\n"
                f"lock_dir {d}\nsyslog_facility LOG_LOCAL7\n"
                f"max_clock_offset {args.max_clock_offset}\n")
    return path


def node_env(i, extra=None):
    """The environment of node i's processes: its wall clock (faketime) and `extra`."""
    env = dict(os.environ, **(extra or {}))
    if OFFSETS[i]:
        env.update(LD_PRELOAD=FAKETIME, FAKETIME=f"{OFFSETS[i]:+g}",
                   FAKETIME_DONT_FAKE_MONOTONIC="1", FAKETIME_NO_CACHE="1")
    return env


def keepalived_conf(i):
    d = DIRS[i]
    notify = os.path.join(d, "notify.sh")
    with open(notify, "w") as f:
        f.write(f"#!/bin/sh\necho \"$1\" > {d}/state.tmp && mv {d}/state.tmp {d}/state\n")
    os.chmod(notify, 0o755)
    peers = "\n".join(f"        {ip}" for j, ip in enumerate(IPS) if j != i)
    path = os.path.join(d, "keepalived.conf")
    with open(path, "w") as f:
        f.write(f"""global_defs {{
    script_user root
    enable_script_security
}}
vrrp_instance VI_1 {{
    state BACKUP
    interface vr0
    virtual_router_id 61
    priority {PRIOS[i]}
    advert_int {args.advert}
    version 3
    unicast_src_ip {IPS[i]}
    unicast_peer {{
{peers}
    }}
    virtual_ipaddress {{
        192.0.2.100/24
    }}
    notify_master "{notify} active"
    notify_backup "{notify} passive"
    notify_fault "{notify} passive"
    notify_stop "{notify} passive"
}}
""")
    # The wrapper reads the state file keepalived's notify scripts write (no election keys).
    with open(os.path.join(d, "wrapper.conf"), "w") as f:
        f.write(f"cluster_name torture\nstate_file {d}/state\nlock_dir {d}\nsyslog_facility LOG_LOCAL7\n")
    return path


def start_daemon(i):
    d = DIRS[i]
    if args.impl == "etcdlock":
        return
    log = open(os.path.join(d, "daemon.log"), "a")
    if args.impl in ("rcron", "etcd"):
        cmd = ["ip", "netns", "exec", NS[i], RCRON, "-v", "--daemon", "--foreground", "--conf", os.path.join(d, "rcron.conf")]
    else:
        with open(os.path.join(d, "state"), "w") as f:
            f.write("passive\n")
        # A killed keepalived's VRRP child may linger as an unreaped zombie here, and
        # keepalived then refuses to start ("daemon is already running"): clear its pid files.
        for pf in ("ka.pid", "ka-vrrp.pid"):
            try: os.remove(os.path.join(d, pf))
            except OSError: pass
        cmd = ["ip", "netns", "exec", NS[i], "keepalived", "-n", "-P", "-l", "-D", "-G",
               "-f", os.path.join(d, "keepalived.conf"), "-p", os.path.join(d, "ka.pid"),
               "-r", os.path.join(d, "ka-vrrp.pid")]
    procs[i] = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                start_new_session=True, env=node_env(i))


def daemon_pids(i):
    pr = procs.get(i)
    if pr is None or pr.poll() is not None:
        return []
    kids = sh(f"pgrep -P {pr.pid}", check=False).split()
    return [pr.pid] + [int(k) for k in kids]


def kill_daemon(i, sig, quiet=False):
    pids = daemon_pids(i)
    if sig == "KILL":
        for pid in pids:  # freeze first: a crash leaves no chance to resign
            try: os.kill(pid, signal.SIGSTOP)
            except OSError: pass
    for pid in pids:
        try: os.kill(pid, getattr(signal, "SIG" + sig))
        except OSError: pass
    if sig in ("KILL",) and i in procs:
        try: procs[i].wait(timeout=5)
        except Exception: pass


def state(i):
    try:
        with open(os.path.join(DIRS[i], "state")) as f:
            return f.readline().strip()
    except OSError:
        return ""


def trusted_state(i):
    """The state as rcron's wrapper would trust it: a file stamped by a daemon (pid=,
    mono_ms=, valid_ms=) that is gone or silent reads as passive."""
    try:
        with open(os.path.join(DIRS[i], "state")) as f:
            lines = f.read().splitlines()
    except OSError:
        return ""
    if not lines:
        return ""
    kv = dict(l.split("=", 1) for l in lines[1:] if "=" in l)
    if "pid" in kv:
        pid = kv["pid"]
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return "passive"
        except (OSError, IndexError):
            return "passive"
    if "mono_ms" in kv:
        now = time.clock_gettime(time.CLOCK_MONOTONIC) * 1000
        if now - int(kv["mono_ms"]) > int(kv.get("valid_ms", "3000")):
            return "passive"
    return lines[0].strip()


def note(text):
    with lock:
        events.append((time.time(), text))


def cron(i):
    """Node i's cron: fires the job at every slot of its own wall clock (offset), at its own
    phase and jitter. The command line is the same on every node (one job identity)."""
    conf = os.path.join(DIRS[i], "rcron.conf" if args.impl in ("rcron", "etcd") else "wrapper.conf")
    S, off = args.slot, OFFSETS[i]
    k = int((time.time() + off) // S) + 1
    rnd = random.Random(i)
    while not stop.is_set():
        slot = k * S
        fire_local = slot + BASE_PHASE + PHASES[i] + rnd.uniform(0, args.jitter)
        delay = fire_local - off - time.time()
        if delay > 0:
            time.sleep(delay)
        k += 1
        if stop.is_set():
            break
        fired[i].add(slot)
        fired_at[i][slot] = time.time()
        wlog = open(os.path.join(DIRS[i], "wrappers.log"), "a")
        if args.impl == "etcdlock":
            # Held to the end of this slot on this node's clock; waiters give up there.
            hold = max(0.1, slot + S - 0.05 - off - time.time())
            cmd = ["ip", "netns", "exec", NS[i], "timeout", f"{hold:.2f}", "etcdctl",
                   "--endpoints", ",".join(EURLS[i % 3:] + EURLS[:i % 3]), "--dial-timeout=1s",
                   "lock", f"--ttl={args.ttl}", "/torture/lock", "--", "/bin/sh", "-c",
                   f'echo "$SLOT $NODE" >> {JOBLOG}; sleep {hold:.2f}']
            extra = {"NODE": str(i), "SLOT": str(slot)}
        else:
            cmd = [RCRON, "-v", "--conf", conf, "--slot", f"{S}s", "--", "/bin/sh", "-c",
                   f'echo "$RCRON_SLOT $NODE" >> {JOBLOG}']
            extra = {"NODE": str(i)}
        w = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=wlog,
                             env=node_env(i, extra))
        wlog.close()
        with lock:
            wrappers.append(w)


def monitor(samples):
    last = [None] * N
    while not stop.is_set():
        now = time.time()
        cur = [trusted_state(i) for i in range(N)]
        for i in range(N):
            if cur[i] != last[i]:
                samples["transitions"][i] += 1
                last[i] = cur[i]
        if sum(1 for s in cur if s == "active") > 1:
            samples["double_active_ms"] += 10
        time.sleep(0.01)


FAULTS = {"rcron": ["kill9", "stop", "term", "link"], "keepalived": ["kill9", "stop", "term", "link"],
          "etcd": ["kill9", "stop", "term", "cut", "quorum"], "etcdlock": ["cut", "quorum"]}[args.impl]
# With etcd a fault lasts past the lease, so that another node must take over.
HOLD = args.ttl + 1 if ETCD else 1.5


def lock_holder():
    """etcdlock: the node whose etcdctl holds the lock now (its job is sleeping), or 0."""
    for i in range(N):
        if sh(f"ip netns pids {NS[i]} | xargs -r ps -o comm= -p 2>/dev/null | grep -c '^sleep'", check=False).strip() not in ("", "0"):
            return i
    return 0


def faults(t_end):
    k = 0
    time.sleep(args.warmup)
    while not stop.is_set() and time.time() + args.fault_every < t_end:
        time.sleep(args.fault_every)
        f = FAULTS[k % len(FAULTS)]
        if args.impl == "etcdlock":
            masters = [lock_holder()]
        else:
            masters = [i for i in range(N) if state(i) == "active"]
        if not masters and f != "quorum":
            note("fault skipped: no master")
            continue
        i = masters[0] if masters else 0
        k += 1
        note(f"fault {f} on node {i}" if f != "quorum" else "fault quorum: etcd members 1 and 2 stopped")
        if f == "kill9":
            kill_daemon(i, "KILL")
            time.sleep(1.0)
            start_daemon(i)
        elif f == "stop":
            pids = daemon_pids(i)
            for pid in pids: os.kill(pid, signal.SIGSTOP)
            time.sleep(HOLD)
            for pid in pids: os.kill(pid, signal.SIGCONT)
        elif f == "cut":
            ips = ", ".join(EIPS)
            sh(f"ip netns exec {NS[i]} nft 'add table inet cut; "
               f"add chain inet cut out {{ type filter hook output priority 0; }}; "
               f"add chain inet cut in {{ type filter hook input priority 0; }}; "
               f"add rule inet cut out ip daddr {{ {ips} }} drop; "
               f"add rule inet cut in ip saddr {{ {ips} }} drop'")
            time.sleep(HOLD)
            sh(f"ip netns exec {NS[i]} nft delete table inet cut")
        elif f == "quorum":
            t = time.time()
            for m in (1, 2): os.killpg(eprocs[m].pid, signal.SIGSTOP)
            time.sleep(3)
            for m in (1, 2): os.killpg(eprocs[m].pid, signal.SIGCONT)
            with lock:
                quorum_windows.append((t, time.time() + args.ttl + 2))
        elif f == "term":
            kill_daemon(i, "TERM")
            try: procs[i].wait(timeout=10)
            except Exception: kill_daemon(i, "KILL")
            time.sleep(1.0)
            start_daemon(i)
        elif f == "link":
            sh(f"ip -n {NS[i]} link set vr0 down")
            time.sleep(1.5)
            sh(f"ip -n {NS[i]} link set vr0 up")
    return k


def main():
    if os.geteuid() != 0:
        raise SystemExit("torture.py needs root")
    setup_hosts()
    if ETCD:
        members, _ = start_etcd(ENS, EIPS, BASE, TAG)
        eprocs.update(enumerate(members))
    for i in range(N):
        rcron_conf(i) if args.impl in ("rcron", "etcd") else keepalived_conf(i) if args.impl == "keepalived" else None
        start_daemon(i)
    t0 = time.time()
    span = max(OFFSETS) - min(OFFSETS)
    t_end = t0 + args.duration + span
    samples = {"transitions": [0] * N, "double_active_ms": 0}
    threads = [threading.Thread(target=cron, args=(i,), daemon=True) for i in range(N)]
    threads.append(threading.Thread(target=monitor, args=(samples,), daemon=True))
    for t in threads: t.start()
    nfaults = [0]
    ft = threading.Thread(target=lambda: nfaults.__setitem__(0, faults(t_end)), daemon=True)
    ft.start()
    while time.time() < t_end:
        time.sleep(0.2)
    stop.set()
    ft.join(timeout=15)
    # A passive node's wrapper may wait for a record up to the offset allowance and a failover.
    for w in list(wrappers):
        try: w.wait(timeout=args.max_clock_offset + 15)
        except Exception: w.kill()
    runs = {}
    if os.path.exists(JOBLOG):
        for line in open(JOBLOG):
            parts = line.split()
            if len(parts) == 2:
                runs.setdefault(int(parts[0]), []).append(int(parts[1]))
    # The slots every node's cron fired after the warm-up: node i fires slot S at real time
    # S - offset_i, so the node whose clock is most ahead sets the first.
    common = set.intersection(*fired) if fired else set()
    first_slot = t0 + args.warmup + max(OFFSETS)
    slots = sorted(s for s in common if s >= first_slot)
    first = slots[0] if slots else 0
    # A slot falls in a no-majority window when every node fired it inside one (node i fires
    # slot s at real time s - offset_i): no node could record it.
    def no_majority(s):
        return all(any(a <= s - o <= b + args.slot for a, b in quorum_windows) for o in OFFSETS)
    # The window rcron documents for etcd (README, "The etcd backend"): node i's daemon
    # recorded the slot for its wrapper and was killed (-9) before the answer reached it. The
    # wrapper asks the restarted daemon, which finds the slot held by its own node; under etcd
    # it does not run unfenced, and says so ("slot S held by this node, whose daemon died
    # before answering: not run here"). Counted apart only with that line and a kill -9 of
    # node i after its cron fired the slot. (With the run ledger the wrapper runs it instead.)
    # The kill must fall while the wrapper waited (its bound under etcd: the offset allowance,
    # the TTL and two renewals, 0.25 s; 1 s more for its start), with no other fault on that
    # node between the cron and the kill (a SIGTERM, a freeze or a cut is not this window).
    wait_s = args.max_clock_offset + args.ttl * (1 + 2 / 6) + 1.25
    def said_unanswered(i, s):
        path = os.path.join(DIRS[i], "wrappers.log")
        if not os.path.exists(path):
            return False
        line = (f"slot {s} held by this node, whose daemon died before answering: not run here "
                "(a run under etcd needs the leader's fence)")
        return any(line in l for l in open(path, errors="replace"))
    def unanswered(s):
        if not ETCD:
            return False
        for i in range(N):
            at = fired_at[i].get(s)
            if at is None or not said_unanswered(i, s):
                continue
            mine = [(t, e) for t, e in events if e.endswith(f" on node {i}") and t >= at]
            if mine and mine[0][1] == f"fault kill9 on node {i}" and mine[0][0] <= at + wait_s:
                return True
        return False
    # The slots node i's cron fired that none of its wrappers named (rcron's -v lines carry
    # the slot): that wrapper started in the next slot, so for rcron node i never fired it.
    def named(i):
        path = os.path.join(DIRS[i], "wrappers.log")
        text = open(path, errors="replace").read() if os.path.exists(path) else ""
        return {int(x) for x in re.findall(r" slot=(\d+)", text)}
    late = [fired[i] - named(i) if args.impl in ("rcron", "etcd") else set() for i in range(N)]
    missed_all = [s for s in slots if len(runs.get(s, [])) == 0]
    missed_nm = [s for s in missed_all if no_majority(s)]
    missed_un = [s for s in missed_all if s not in missed_nm and unanswered(s)]
    missed_late = [s for s in missed_all if s not in missed_nm and s not in missed_un
                   and any(s in l for l in late)]
    missed = [s for s in missed_all
              if s not in missed_nm and s not in missed_un and s not in missed_late]
    doubled = [s for s in slots if len(runs.get(s, [])) > 1]
    res = {
        "impl": args.impl, "nodes": N, "advert": args.advert, "loss_pct": args.loss,
        "duration_s": args.duration, "faults": nfaults[0], "slots": len(slots),
        "missed": len(missed), "doubled": len(doubled), "missed_no_majority": len(missed_nm),
        "missed_unanswered": len(missed_un), "missed_late_start": len(missed_late),
        "late_starts": sum(len(l) for l in late),
        "transitions": sum(samples["transitions"]) - N,
        "double_active_ms": samples["double_active_ms"],
        "missed_slots": [s - first for s in missed], "doubled_slots": [s - first for s in doubled],
        "slot_s": args.slot, "phases": PHASES, "jitter_s": args.jitter, "offsets_s": OFFSETS,
        "events": [f"+{t - t0:.2f}s: {e}" for t, e in events],
    }
    if args.json:
        print(json.dumps(res))
    else:
        print(f"impl={res['impl']} nodes={N} advert={args.advert}s loss={args.loss}% duration={args.duration:.0f}s "
              f"slot={args.slot}s phases={PHASES} jitter={args.jitter}s offsets={OFFSETS} "
              f"faults={res['faults']} slots={res['slots']} missed={res['missed']} doubled={res['doubled']} "
              f"missed_no_majority={res['missed_no_majority']} "
              f"missed_unanswered={res['missed_unanswered']} "
              f"missed_late_start={res['missed_late_start']} late_starts={res['late_starts']} "
              f"transitions={res['transitions']} double_active_ms={res['double_active_ms']}")
        for t, e in events:
            print(f"  +{t - t0:6.2f}s: {e}")
        for i in range(N):
            for s in sorted(late[i]):
                print(f"  node {i}'s wrapper fired for slot {s} named a later slot (started late)")
        if missed or doubled:
            print(f"  missed slots (index): {res['missed_slots']}\n  doubled slots (index): {res['doubled_slots']}")
            for s in missed + doubled:
                print(f"  slot {s - first} ({s}): ran on {runs.get(s, [])}")
    if args.check and (missed or doubled or res["faults"] < 1):
        sys.exit(1)


main()
