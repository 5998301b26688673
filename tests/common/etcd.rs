//! A real etcd cluster (Debian's `etcd-server`, 3.4) on lab hosts, and rcron configs that use
//! it: members listen on their host's address (client 2379, peer 2380), data in the host's
//! directory; torn down with the lab.
#![allow(dead_code)]

use super::net::{Lab, sh_out};
use super::until;
use std::path::PathBuf;
use std::time::Duration;

/// The cluster's client URLs, member `m` on lab host `members[m]`.
pub struct Etcd {
    pub members: Vec<usize>,
    pub urls: Vec<String>,
}

impl Lab {
    /// Starts one etcd member on each of `members` (lab host indexes) and waits until the
    /// cluster takes writes.
    pub fn start_etcd(&self, members: &[usize]) -> Etcd {
        let peer = |i: usize| format!("http://{}:2380", self.hosts[i].ip);
        let initial: Vec<String> =
            members.iter().enumerate().map(|(m, &i)| format!("e{m}={}", peer(i))).collect();
        let token = self.bridge_ns.clone();
        let mut urls = Vec::new();
        for (m, &i) in members.iter().enumerate() {
            let h = &self.hosts[i];
            let client = format!("http://{}:2379", h.ip);
            let data = h.dir.join("etcd-data");
            let name = format!("e{m}");
            let args = [
                "etcd",
                "--name",
                &name,
                "--data-dir",
                data.to_str().unwrap(),
                "--listen-client-urls",
                &client,
                "--advertise-client-urls",
                &client,
                "--listen-peer-urls",
                &peer(i),
                "--initial-advertise-peer-urls",
                &peer(i),
                "--initial-cluster",
                &initial.join(","),
                "--initial-cluster-token",
                &token,
                "--initial-cluster-state",
                "new",
                "--log-level",
                "warn",
            ];
            h.spawn(&args, "etcd.log");
            urls.push(client);
        }
        let e = Etcd { members: members.to_vec(), urls };
        let ok = until(Duration::from_secs(30), || e.put(self, "/probe", "x"));
        assert!(ok, "etcd cluster did not come up: {}", self.hosts[members[0]].log("etcd.log"));
        e
    }

    /// An rcron config for host `i` with `election = etcd`, the endpoints in `urls` order.
    pub fn rcron_etcd_conf(&self, i: usize, urls: &[String], extra: &str) -> PathBuf {
        let h = &self.hosts[i];
        let text = format!(
            "cluster_name lab\nelection etcd\netcd_endpoints {}\nnode_name n{i}\n{extra}\n\
             state_file {d}/state\ncontrol_socket {d}/rcron.sock\npid_file {d}/rcrond.pid\n\
             lock_dir {d}\n",
            urls.join(" "),
            d = h.dir.display()
        );
        let p = h.dir.join("rcron.conf");
        std::fs::write(&p, text).unwrap();
        p
    }
}

impl Etcd {
    /// `etcdctl put` from the first member's host; true when it succeeded.
    pub fn put(&self, lab: &Lab, key: &str, value: &str) -> bool {
        let h = &lab.hosts[self.members[0]];
        let endpoints = self.urls.join(",");
        let args =
            ["etcdctl", "--endpoints", &endpoints, "--command-timeout=2s", "put", key, value];
        h.run(&args).status.success()
    }

    /// The keys under `prefix`, sorted (`etcdctl get --prefix --keys-only`).
    pub fn keys(&self, lab: &Lab, prefix: &str) -> Vec<String> {
        let h = &lab.hosts[self.members[0]];
        let endpoints = self.urls.join(",");
        let args = [
            "etcdctl",
            "--endpoints",
            &endpoints,
            "--command-timeout=2s",
            "get",
            "--prefix",
            "--keys-only",
            prefix,
        ];
        let o = h.run(&args);
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect()
    }

    /// The pid of member `m`'s etcd.
    pub fn pid(&self, lab: &Lab, m: usize) -> Option<u32> {
        let ns = &lab.hosts[self.members[m]].ns;
        sh_out(&format!("ip netns pids {ns}"))
            .lines()
            .filter_map(|p| p.trim().parse::<u32>().ok())
            .find(|p| {
                std::fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.trim() == "etcd")
            })
    }
}
