#!/usr/bin/env python3
"""Wrapper overhead benchmark: median wall time of `rcron` on the passive path and on the
active path (`rcron -- true`) against `/bin/true`, N runs each, interleaved.

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
subprocess.run(["rm", "-rf", d])
