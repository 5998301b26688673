//! Real test hosts: one network namespace per host, all joined by a bridge in a namespace of
//! their own, addresses from 192.0.2.0/24 only. Everything is named with the test's pid and
//! a tag, so tests run in parallel, and torn down on drop (processes killed, namespaces gone).
#![allow(dead_code)]

use super::RCRON;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;

pub fn sh(cmd: &str) {
    let st = Command::new("sh").args(["-c", cmd]).status().unwrap();
    assert!(st.success(), "command failed: {cmd}");
}

pub fn sh_out(cmd: &str) -> String {
    let o = Command::new("sh").args(["-c", cmd]).output().unwrap();
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub struct Host {
    pub ns: String,
    pub ifname: String,
    pub ip: Ipv4Addr,
    pub dir: PathBuf,
    children: Mutex<Vec<Child>>,
}

pub struct Lab {
    pub bridge_ns: String,
    pub hosts: Vec<Host>,
}

impl Lab {
    /// `n` hosts, 192.0.2.11, .12, ... on interface `vr0` each.
    pub fn new(tag: &str, n: usize) -> Lab {
        super::require_root();
        let id = format!("{}{}", tag, std::process::id() % 100_000);
        let bridge_ns = format!("rcbr{id}");
        sh(&format!("ip netns add {bridge_ns}"));
        sh(&format!(
            "ip -n {bridge_ns} link add br0 type bridge && ip -n {bridge_ns} link set br0 up && \
             ip -n {bridge_ns} link set lo up"
        ));
        let mut hosts = Vec::new();
        let base = std::env::temp_dir().join(format!("rcron-lab-{id}"));
        let _ = std::fs::remove_dir_all(&base);
        for i in 0..n {
            let ns = format!("rc{id}h{i}");
            let ip = Ipv4Addr::new(192, 0, 2, 11 + i as u8);
            let a = format!("ra{id}{i}");
            let b = format!("rb{id}{i}");
            assert!(a.len() <= 15, "interface name too long: {a}");
            sh(&format!("ip netns add {ns}"));
            sh(&format!("ip link add {a} type veth peer name {b}"));
            sh(&format!("ip link set {a} netns {ns} && ip -n {ns} link set {a} name vr0"));
            sh(&format!("ip link set {b} netns {bridge_ns}"));
            sh(&format!(
                "ip -n {bridge_ns} link set {b} master br0 && ip -n {bridge_ns} link set {b} up"
            ));
            sh(&format!(
                "ip -n {ns} addr add {ip}/24 dev vr0 && ip -n {ns} link set vr0 up && \
                 ip -n {ns} link set lo up"
            ));
            let dir = base.join(format!("h{i}"));
            std::fs::create_dir_all(&dir).unwrap();
            hosts.push(Host {
                ns,
                ifname: "vr0".into(),
                ip,
                dir,
                children: Mutex::new(Vec::new()),
            });
        }
        Lab { bridge_ns, hosts }
    }

    /// Deletes host `i`'s `vr0` (a veth: its bridge end goes with it) and creates a new one
    /// under the same name, with the same address, up: the kernel gives it a new ifindex.
    pub fn recreate_link(&self, i: usize) {
        let h = &self.hosts[i];
        let id = self.bridge_ns.trim_start_matches("rcbr");
        let (a, b) = (format!("rn{id}{i}"), format!("rm{id}{i}"));
        sh(&format!("ip -n {} link del vr0", h.ns));
        sh(&format!("ip link add {a} type veth peer name {b}"));
        sh(&format!("ip link set {a} netns {ns} && ip -n {ns} link set {a} name vr0", ns = h.ns));
        sh(&format!(
            "ip link set {b} netns {br} && ip -n {br} link set {b} master br0 && \
             ip -n {br} link set {b} up",
            br = self.bridge_ns
        ));
        sh(&format!(
            "ip -n {ns} addr add {}/24 dev vr0 && ip -n {ns} link set vr0 up",
            h.ip,
            ns = h.ns
        ));
    }

    pub fn peers_of(&self, i: usize) -> Vec<Ipv4Addr> {
        self.hosts.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, h)| h.ip).collect()
    }

    /// An rcron config for host `i`: unicast to every other host, plus `extra` lines.
    pub fn rcron_conf(&self, i: usize, extra: &str) -> PathBuf {
        let h = &self.hosts[i];
        let peers: Vec<String> = self.peers_of(i).iter().map(|p| p.to_string()).collect();
        let text = format!(
            "cluster_name lab\ninterface vr0\nunicast_src_ip {}\nunicast_peer {}\n{}\n\
             state_file {d}/state\ncontrol_socket {d}/rcron.sock\npid_file {d}/rcrond.pid\n\
             lock_dir {d}\n",
            h.ip,
            peers.join(" "),
            extra,
            d = h.dir.display()
        );
        let p = h.dir.join("rcron.conf");
        std::fs::write(&p, text).unwrap();
        p
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for h in &self.hosts {
            h.kill_all();
            let _ = Command::new("ip").args(["netns", "del", &h.ns]).status();
        }
        let _ = Command::new("ip").args(["netns", "del", &self.bridge_ns]).status();
        if let Some(h) = self.hosts.first()
            && let Some(base) = h.dir.parent()
        {
            let _ = std::fs::remove_dir_all(base);
        }
    }
}

impl Host {
    /// Runs a command inside this host's namespace, in the background; killed on drop.
    pub fn spawn(&self, argv: &[&str], log: &str) -> u32 {
        let out = std::fs::File::create(self.dir.join(log)).unwrap();
        let err = out.try_clone().unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns])
            .args(argv)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap();
        let pid = child.id();
        self.children.lock().unwrap().push(child);
        pid
    }

    /// Starts `rcron --daemon --foreground` with this config; returns the supervisor's pid
    /// (`ip netns exec` execs, so it is rcron itself).
    pub fn start_rcron(&self, conf: &Path) -> u32 {
        let c = conf.to_str().unwrap().to_string();
        self.spawn(&[RCRON, "--daemon", "--foreground", "--conf", &c], "rcron.log")
    }

    /// Runs a command in this host's namespace and waits for it.
    pub fn run(&self, argv: &[&str]) -> std::process::Output {
        Command::new("ip").args(["netns", "exec", &self.ns]).args(argv).output().unwrap()
    }

    /// First line of the state file ("" when missing).
    pub fn state(&self) -> String {
        self.state_at(&self.dir.join("state"))
    }

    pub fn state_at(&self, p: &PathBuf) -> String {
        std::fs::read_to_string(p).unwrap_or_default().lines().next().unwrap_or("").to_string()
    }

    /// `rcron --status` as key=value pairs.
    pub fn status(&self) -> String {
        let conf = self.dir.join("rcron.conf");
        let o = Command::new(RCRON)
            .args(["--status", "--conf", conf.to_str().unwrap()])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    pub fn status_field(&self, key: &str) -> Option<String> {
        let s = self.status();
        s.lines().find_map(|l| l.strip_prefix(&format!("{key}=")).map(str::to_string))
    }

    pub fn link(&self, up: bool) {
        sh(&format!("ip -n {} link set vr0 {}", self.ns, if up { "up" } else { "down" }));
    }

    /// Sends `sig` (e.g. "KILL") to pid.
    pub fn signal(pid: u32, sig: &str) {
        let _ = Command::new("kill").args([&format!("-{sig}"), &pid.to_string()]).status();
    }

    /// A crash of a whole rcron daemon: supervisor and worker frozen first, so neither can
    /// resign, then killed.
    pub fn crash(sup: u32) {
        let w = Host::worker_of(sup);
        Host::signal(sup, "STOP");
        if let Some(w) = w {
            Host::signal(w, "STOP");
            Host::signal(w, "KILL");
        }
        Host::signal(sup, "KILL");
    }

    /// Samples this host's state file every `every` for `span`: true if it ever said active.
    pub fn ever_active(&self, span: std::time::Duration, every: std::time::Duration) -> bool {
        let t = std::time::Instant::now();
        while t.elapsed() < span {
            if self.state() == "active" {
                return true;
            }
            std::thread::sleep(every);
        }
        false
    }

    /// Kills every process this host started (and their process groups' workers).
    pub fn kill_all(&self) {
        let mut ch = self.children.lock().unwrap();
        for c in ch.iter_mut() {
            let _ = Command::new("pkill").args(["-KILL", "-P", &c.id().to_string()]).status();
            let _ = c.kill();
            let _ = c.wait();
        }
        ch.clear();
    }

    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(name)).unwrap_or_default()
    }

    /// Waits up to `limit` for the child `pid` (from [`Host::spawn`]) to exit; its exit code
    /// (128+N for a signal), or None if it is still running.
    pub fn wait_child(&self, pid: u32, limit: std::time::Duration) -> Option<i32> {
        use std::os::unix::process::ExitStatusExt;
        let t0 = std::time::Instant::now();
        loop {
            for c in self.children.lock().unwrap().iter_mut() {
                if c.id() == pid
                    && let Ok(Some(st)) = c.try_wait()
                {
                    return Some(st.code().unwrap_or(128 + st.signal().unwrap_or(0)));
                }
            }
            if t0.elapsed() >= limit {
                return None;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// Reaps exited children (so a killed daemon does not linger as a zombie).
    pub fn reap(&self) {
        for c in self.children.lock().unwrap().iter_mut() {
            let _ = c.try_wait();
        }
    }
}

// ---- helpers for tests/attack.rs (appended) ----

impl Lab {
    /// An rcron config for host `i` with an explicit unicast peer list (`peers` empty:
    /// multicast mode, no `unicast_src_ip` / `unicast_peer` lines), plus `extra` lines.
    pub fn rcron_conf_peers(&self, i: usize, peers: &[Ipv4Addr], extra: &str) -> PathBuf {
        let h = &self.hosts[i];
        let unicast = if peers.is_empty() {
            String::new()
        } else {
            let list: Vec<String> = peers.iter().map(|p| p.to_string()).collect();
            format!("unicast_src_ip {}\nunicast_peer {}\n", h.ip, list.join(" "))
        };
        let text = format!(
            "cluster_name lab\ninterface vr0\n{unicast}{extra}\n\
             state_file {d}/state\ncontrol_socket {d}/rcron.sock\npid_file {d}/rcrond.pid\n\
             lock_dir {d}\n",
            d = h.dir.display()
        );
        let p = h.dir.join("rcron.conf");
        std::fs::write(&p, text).unwrap();
        p
    }
}

impl Host {
    /// Starts keepalived in the foreground in this host's namespace on `conf`, with its pid
    /// files in the host's directory (`ka.pid`, `ka-vrrp.pid`), logging to `log`.
    pub fn spawn_keepalived(&self, conf: &Path, log: &str) -> u32 {
        let (pid, vrrp_pid) = (self.dir.join("ka.pid"), self.dir.join("ka-vrrp.pid"));
        let argv = [
            "keepalived",
            "-n",
            "-P",
            "-l",
            "-D",
            "-f",
            conf.to_str().unwrap(),
            "-p",
            pid.to_str().unwrap(),
            "-r",
            vrrp_pid.to_str().unwrap(),
        ];
        self.spawn(&argv, log)
    }

    /// The worker of the supervisor `sup` (its first child), if any.
    pub fn worker_of(sup: u32) -> Option<u32> {
        sh_out(&format!("pgrep -P {sup}")).lines().next().and_then(|l| l.trim().parse().ok())
    }

    /// The memory figure `key` (`VmRSS`, `RssAnon`, ...) of `pid`'s /proc status in KiB
    /// (None when the process is gone).
    pub fn status_kib(pid: u32, key: &str) -> Option<u64> {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()?
            .lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|n| n.parse().ok())
    }

    /// Packets the kernel dropped at this host's raw sockets (receive queue full): the sum
    /// of the `drops` column of the namespace's /proc/net/raw.
    pub fn raw_socket_drops(&self) -> u64 {
        let o = self.run(&["cat", "/proc/net/raw"]);
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .skip(1)
            .filter_map(|l| l.split_whitespace().last().and_then(|d| d.parse::<u64>().ok()))
            .sum()
    }

    /// Every `key=value` line of `rcron --status` as a map.
    pub fn status_map(&self) -> std::collections::BTreeMap<String, String> {
        self.status()
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }
}
