"""Test hosts for the Python harnesses: network namespaces on one bridge, and a 3-member etcd
cluster (Debian's etcd-server) on some of them. Shared by torture.py and etcd.py."""
import os, subprocess, time


def sh(cmd, check=True):
    """Runs a shell command; its stdout. A failure ends the harness unless check is False."""
    r = subprocess.run(cmd, shell=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if check and r.returncode != 0:
        raise SystemExit(f"failed: {cmd}\n{r.stderr}")
    return r.stdout


def add_bridge(br):
    """A namespace `br` holding the bridge br0 every host joins."""
    sh(f"ip netns add {br} && ip -n {br} link add br0 type bridge && ip -n {br} link set br0 up")


def add_host(br, ns, ip, a, b):
    """Namespace `ns` with interface vr0 (address ip/24) on br's bridge; a and b name the
    veth pair while it is created (at most 15 characters each)."""
    sh(f"ip netns add {ns}")
    sh(f"ip link add {a} type veth peer name {b}")
    sh(f"ip link set {a} netns {ns} && ip -n {ns} link set {a} name vr0")
    sh(f"ip link set {b} netns {br} && ip -n {br} link set {b} master br0 && ip -n {br} link set {b} up")
    sh(f"ip -n {ns} addr add {ip}/24 dev vr0 && ip -n {ns} link set vr0 up && ip -n {ns} link set lo up")


def start_etcd(namespaces, ips, base, token):
    """One etcd member per namespace (client port 2379, peer 2380, data under base/eM); waits
    until the cluster takes writes. Returns (the members' processes, their client URLs)."""
    urls = [f"http://{ip}:2379" for ip in ips]
    peers = ",".join(f"e{m}=http://{ip}:2380" for m, ip in enumerate(ips))
    procs = []
    for m, (ns, ip) in enumerate(zip(namespaces, ips)):
        d = os.path.join(base, f"e{m}")
        os.makedirs(d, exist_ok=True)
        procs.append(subprocess.Popen(
            ["ip", "netns", "exec", ns, "etcd", "--name", f"e{m}", "--data-dir", f"{d}/data",
             "--listen-client-urls", urls[m], "--advertise-client-urls", urls[m],
             "--listen-peer-urls", f"http://{ip}:2380", "--initial-advertise-peer-urls",
             f"http://{ip}:2380", "--initial-cluster", peers, "--initial-cluster-token", token,
             "--initial-cluster-state", "new", "--log-level", "warn"],
            stdin=subprocess.DEVNULL, stdout=open(f"{d}/etcd.log", "a"), stderr=subprocess.STDOUT,
            start_new_session=True))
    t = time.time()
    while subprocess.run(["ip", "netns", "exec", namespaces[0], "etcdctl", "--endpoints", ",".join(urls),
                          "--command-timeout=2s", "put", "/probe", "x"], capture_output=True).returncode:
        if time.time() - t > 30:
            raise SystemExit("etcd did not come up")
        time.sleep(0.3)
    return procs, urls
