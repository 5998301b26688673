//! Virtual addresses on real hosts (network namespaces on one bridge): the active node holds
//! `virtual_ipaddress` with its prefix and label, announces it with gratuitous ARP (decoded by
//! tshark on a client), and the address moves on SIGTERM, a worker crash and a whole-daemon
//! crash, never held by two nodes at one sample (every 10 ms) outside the whole-daemon crash,
//! which nothing running can clean (rcron removes it when it starts again); a mixed pair with
//! keepalived 2.2.7 moves it both ways.

mod common;
use common::net::*;
use common::*;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

const VIP: &str = "192.0.2.100";

/// Whether host `h` holds the virtual address now, and with what (`ip -o addr` line).
fn held(h: &Host) -> Option<String> {
    held_addr(h, VIP)
}

fn held_addr(h: &Host, addr: &str) -> Option<String> {
    let o = h.run(&["ip", "-o", "-4", "addr", "show", "dev", "vr0"]);
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .find(|l| l.contains(&format!(" {addr}/")))
        .map(str::to_string)
}

/// Samples every node's address list every 10 ms in the background; counts samples where
/// more than one node held the address.
struct Sampler {
    stop: Arc<AtomicBool>,
    both: Arc<AtomicU32>,
    samples: Arc<AtomicU32>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Sampler {
    fn start(nss: Vec<String>) -> Sampler {
        let (stop, both, samples) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicU32::new(0)),
            Arc::new(AtomicU32::new(0)),
        );
        let (s, b, n) = (stop.clone(), both.clone(), samples.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                let holders = nss
                    .iter()
                    .filter(|ns| {
                        let o = Command::new("ip")
                            .args(["-n", ns, "-o", "-4", "addr", "show", "dev", "vr0"])
                            .output()
                            .unwrap();
                        String::from_utf8_lossy(&o.stdout).contains(&format!(" {VIP}/"))
                    })
                    .count();
                if holders > 1 {
                    b.fetch_add(1, Ordering::SeqCst);
                }
                n.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        Sampler { stop, both, samples, thread: Some(thread) }
    }

    /// Stops; (samples with two holders, samples).
    fn finish(mut self) -> (u32, u32) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        (self.both.load(Ordering::SeqCst), self.samples.load(Ordering::SeqCst))
    }
}

fn conf(lab: &Lab, i: usize, prio: u32) -> std::path::PathBuf {
    let other = lab.hosts[1 - i].ip;
    lab.rcron_conf_peers(
        i,
        &[other],
        &format!(
            "virtual_router_id 61\nvrrp_version 3\nadvert_int 0.1\npriority {prio}\n\
             virtual_ipaddress {VIP}/24 dev vr0 label vr0:vip\ngarp_master_delay 1\n\
             garp_master_repeat 2\n"
        ),
    )
}

fn mac(h: &Host) -> String {
    let o = h.run(&["cat", "/sys/class/net/vr0/address"]);
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

#[test]
fn the_address_follows_the_master_announced_and_never_held_twice() {
    let lab = Lab::new("vp", 3);
    let (a, b, client) = (&lab.hosts[0], &lab.hosts[1], &lab.hosts[2]);
    // The client decodes every ARP frame it sees (tshark, as a user would).
    let arp_log = client.dir.join("arp.txt");
    let tshark = format!(
        "exec tshark -l -n -i vr0 -f arp -T fields -E separator=, -e arp.opcode \
         -e arp.src.hw_mac -e arp.src.proto_ipv4 -e arp.dst.proto_ipv4 > {} 2>/dev/null",
        arp_log.display()
    );
    client.spawn(&["sh", "-c", &tshark], "tshark.log");
    std::thread::sleep(Duration::from_secs(2));
    let conf_a = conf(&lab, 0, 150);
    let conf_b = conf(&lab, 1, 100);
    let sampler = Sampler::start(vec![a.ns.clone(), b.ns.clone()]);
    let mut sup_a = a.start_rcron(&conf_a);
    b.start_rcron(&conf_b);
    assert!(until(Duration::from_secs(5), || held(a).is_some()), "A never took {VIP}");
    let line = held(a).unwrap();
    assert!(line.contains(&format!("{VIP}/24")) && line.contains("vr0:vip"), "{line}");
    assert!(held(b).is_none());
    assert_eq!(a.status_field("vips_held").as_deref(), Some("yes"));

    // The client reaches the address (its ARP answered by the master).
    let ping = client.run(&["ping", "-c", "3", "-i", "0.2", "-W", "1", VIP]);
    assert!(ping.status.success(), "{}", String::from_utf8_lossy(&ping.stdout));

    // Deleted by hand while A is master: added again at the address event.
    a.run(&["ip", "addr", "del", &format!("{VIP}/24"), "dev", "vr0"]);
    assert!(until(Duration::from_secs(3), || held(a).is_some()), "A did not add it back");

    // SIGTERM: A resigns, its address goes before B takes it.
    let t = Instant::now();
    Host::signal(sup_a, "TERM");
    assert!(until(Duration::from_secs(3), || held(b).is_some()), "B never took {VIP}");
    let took = t.elapsed();
    assert!(until(Duration::from_secs(3), || held(a).is_none()), "A kept {VIP}");
    eprintln!("SIGTERM: B held {VIP} {:.0} ms after the signal", took.as_secs_f64() * 1000.0);
    let mac_b = mac(b);
    let garp = |who: &str| {
        let text = std::fs::read_to_string(&arp_log).unwrap_or_default();
        text.lines().filter(|l| *l == format!("1,{who},{VIP},{VIP}")).count()
    };
    // Two at once and two more after garp_master_delay (1 s).
    assert!(until(Duration::from_secs(4), || garp(&mac_b) >= 4), "B's GARPs: {}", garp(&mac_b));

    // A comes back and preempts; then its worker is killed: the supervisor removes the
    // address before B's takeover, and the new worker takes it back.
    assert!(a.wait_child(sup_a, Duration::from_secs(10)) == Some(0));
    sup_a = a.start_rcron(&conf_a);
    assert!(until(Duration::from_secs(5), || held(a).is_some() && held(b).is_none()));
    let mac_a = mac(a);
    let before = garp(&mac_a);
    let worker = Host::worker_of(sup_a).expect("A's worker");
    Host::signal(worker, "KILL");
    assert!(until(Duration::from_secs(3), || held(b).is_some()), "B never took over");
    assert!(until(Duration::from_secs(10), || held(a).is_some() && held(b).is_none()));
    assert!(until(Duration::from_secs(3), || garp(&mac_a) > before), "A announced again");
    let (both, samples) = sampler.finish();
    assert!(samples > 100, "{samples} samples");
    assert_eq!(
        both,
        0,
        "two nodes held {VIP} in {both} of {samples} samples\nA:\n{}\nB:\n{}",
        a.log("rcron.log"),
        b.log("rcron.log")
    );

    // A whole-daemon crash leaves the address (nothing of rcron runs to remove it); rcron
    // removes it when it starts again, as a backup, before any election.
    let worker = Host::worker_of(sup_a).expect("A's worker");
    for p in [sup_a, worker] {
        Host::signal(p, "STOP");
    }
    for p in [sup_a, worker] {
        Host::signal(p, "KILL");
    }
    assert!(until(Duration::from_secs(3), || held(b).is_some()));
    assert!(held(a).is_some(), "the crashed daemon's address is still there");
    let conf_a_low = conf(&lab, 0, 50);
    a.start_rcron(&conf_a_low);
    assert!(until(Duration::from_secs(3), || held(a).is_none()), "the restart removed it");
    std::thread::sleep(Duration::from_secs(1));
    assert!(held(a).is_none() && held(b).is_some(), "B keeps it: A came back lower");

    // A reload that changes the list: the dropped address goes, the new one comes.
    lab.rcron_conf_peers(
        1,
        &[a.ip],
        "virtual_router_id 61\nvrrp_version 3\nadvert_int 0.1\npriority 100\n\
         virtual_ipaddress 192.0.2.101/24\n",
    );
    let sup_b = sh_out(&format!("cat {}/rcrond.pid", b.dir.display())).trim().parse().unwrap();
    Host::signal(sup_b, "HUP");
    assert!(
        until(Duration::from_secs(3), || held(b).is_none()
            && held_addr(b, "192.0.2.101").is_some()),
        "after the reload: {:?}",
        held_addr(b, "192.0.2")
    );
}

#[test]
fn a_mixed_pair_with_keepalived_moves_the_address_both_ways() {
    let found = Command::new("sh").args(["-c", "command -v keepalived"]).output().unwrap();
    assert!(found.status.success(), "keepalived is not installed (tests/setup.sh installs it)");
    let lab = Lab::new("vk", 2);
    let (a, k) = (&lab.hosts[0], &lab.hosts[1]);
    let conf_a = conf(&lab, 0, 150);
    let ka_conf = k.dir.join("keepalived.conf");
    std::fs::write(
        &ka_conf,
        format!(
            "global_defs {{\n    router_id vip_h1\n}}\nvrrp_instance VI_1 {{\n    state BACKUP\n    \
             interface vr0\n    version 3\n    virtual_router_id 61\n    priority 100\n    \
             advert_int 0.1\n    unicast_src_ip {}\n    unicast_peer {{\n        {}\n    }}\n    \
             virtual_ipaddress {{\n        {VIP}/24 dev vr0 label vr0:vip\n    }}\n}}\n",
            k.ip, a.ip
        ),
    )
    .unwrap();
    k.spawn_keepalived(&ka_conf, "keepalived.log");
    std::thread::sleep(Duration::from_secs(1));
    let sup = a.start_rcron(&conf_a);
    assert!(until(Duration::from_secs(5), || held(a).is_some() && held(k).is_none()));
    // rcron leaves: keepalived takes the address.
    Host::signal(sup, "TERM");
    assert!(
        until(Duration::from_secs(3), || held(k).is_some() && held(a).is_none()),
        "keepalived did not take {VIP}:\n{}",
        k.log("keepalived.log")
    );
    assert!(a.wait_child(sup, Duration::from_secs(10)) == Some(0));
    // rcron comes back with the higher priority and preempts: keepalived gives it up.
    a.start_rcron(&conf_a);
    assert!(
        until(Duration::from_secs(5), || held(a).is_some() && held(k).is_none()),
        "the address did not come back to rcron:\n{}",
        k.log("keepalived.log")
    );
}
