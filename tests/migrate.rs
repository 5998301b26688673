//! Migration from keepalived (`rcron --from-keepalived`) with the classic tutorial's files
//! (tests/vectors/tutorial/, as the tutorial wrote them): both nodes' keepalived.conf convert,
//! with the tutorial's rcron.conf they pass `rcron --check`, and the converted master runs an
//! election with a real keepalived 2.2.7 that runs the tutorial's backup file, its 1.2-era
//! unicast keywords renamed as the converter says (addresses mapped to 192.0.2.x).

mod common;
use common::net::*;
use common::*;
use std::time::{Duration, Instant};

const TUTORIAL: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/tutorial/");

fn vector(name: &str) -> String {
    std::fs::read_to_string(format!("{TUTORIAL}{name}")).unwrap()
}

#[test]
fn the_tutorial_pair_converts_and_passes_check() {
    let sb = Sandbox::new("migrate-check");
    for (node, peer) in [("master", "172.16.243.145"), ("backup", "172.16.243.144")] {
        let file = format!("{TUTORIAL}tutorial-keepalived-{node}.conf");
        let o = sb.rcron(&["--from-keepalived", &file]);
        let (out, err) = (stdout(&o), stderr(&o));
        assert_eq!(code(&o), 0, "{out}{err}");
        assert!(out.contains(&format!("unicast_peer {peer}\n")), "{out}");
        assert!(out.contains("auth_pass 1111\n") && out.contains("advert_int 5\n"), "{out}");
        assert!(out.contains("renamed unicast_src_ip / unicast_peer"), "{out}");
        let hooks = out.lines().any(|l| l.starts_with("notify_"));
        assert!(!hooks, "state-file notify lines are dropped: {out}");
        // The LVS line is said on stderr, with its file and line.
        assert!(err.contains(&format!("{file}:8: lvs_sync_daemon_inteface eth0 (LVS)")), "{err}");
        let conf = sb.write(&format!("{node}.conf"), &(vector("tutorial-rcron.conf") + &out));
        let o = sb.rcron(&["--check", "--strict", "--conf", conf.to_str().unwrap()]);
        assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    }
    // Nothing usable, and a file that is not there.
    let empty = sb.write("empty.conf", "global_defs {\n router_id x\n}\n");
    assert_eq!(code(&sb.rcron(&["--from-keepalived", empty.to_str().unwrap()])), 65);
    assert_eq!(code(&sb.rcron(&["--from-keepalived", "/nonexistent/keepalived.conf"])), 66);
}

/// keepalived's log lines for its instance's transitions, in order.
fn ka_states(h: &Host) -> Vec<String> {
    h.log("keepalived.log")
        .lines()
        .filter_map(|l| l.split("(VI_1) Entering ").nth(1))
        .map(|s| s.split_whitespace().next().unwrap_or("").to_string())
        .collect()
}

#[test]
fn the_converted_master_runs_an_election_with_keepalived_on_the_tutorials_backup_file() {
    let lab = Lab::new("mg", 2);
    let map = |text: &str| {
        text.replace("172.16.243.144", "192.0.2.11")
            .replace("172.16.243.145", "192.0.2.12")
            .replace("eth0", "vr0")
    };
    // rcron on host 0: the master file converted, with the tutorial's rcron.conf keys and
    // this lab's paths.
    let (h0, h1) = (&lab.hosts[0], &lab.hosts[1]);
    let src = h0.dir.join("keepalived-master.conf");
    std::fs::write(&src, map(&vector("tutorial-keepalived-master.conf"))).unwrap();
    let o = h0.run(&[RCRON, "--from-keepalived", src.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let d = h0.dir.display();
    let conf = h0.dir.join("rcron.conf");
    let paths = format!(
        "state_file {d}/state\ncontrol_socket {d}/rcron.sock\npid_file {d}/rcrond.pid\n\
         lock_dir {d}\nsyslog_facility LOG_LOCAL7\n"
    );
    std::fs::write(&conf, vector("tutorial-rcron.conf") + &stdout(&o) + &paths).unwrap();

    // keepalived 2.2.7 on host 1: the backup file with the two keywords renamed.
    let ka = map(&vector("tutorial-keepalived-backup.conf"))
        .replace("vrrp_unicast_bind", "unicast_src_ip")
        .replace("vrrp_unicast_peer 192.0.2.11", "unicast_peer {\n        192.0.2.11\n    }")
        // Its notify lines write the lab's file, not the machine's /var/run/rcron/state.
        .replace("/var/run/rcron/state", &format!("{}/ka-state", h1.dir.display()));
    let ka_conf = h1.dir.join("keepalived.conf");
    std::fs::write(&ka_conf, &ka).unwrap();
    // rcron (priority 101) becomes master once its Master_Down_Interval (3 x 5 s + skew)
    // has passed; keepalived (100), started then, hears its adverts (PASS 1111, unicast) and
    // stays backup past its own Master_Down_Interval.
    let sup = h0.start_rcron(&conf);
    let diag = || format!("{}\n--- keepalived:\n{}", h0.log("rcron.log"), h1.log("keepalived.log"));
    assert!(until(Duration::from_secs(25), || h0.state() == "active"), "{}", diag());

    // keepalived 2.2.7 on host 1 (the file written above).
    h1.spawn_keepalived(&ka_conf, "keepalived.log");
    assert!(until(Duration::from_secs(10), || !ka_states(h1).is_empty()), "{}", diag());
    // Renamed, keepalived takes them (the tutorial's misspelled LVS line it still reports).
    assert!(!h1.log("keepalived.log").contains("Unknown keyword 'vrrp_unicast"), "{}", diag());
    std::thread::sleep(Duration::from_secs(18));
    assert_eq!(ka_states(h1), ["BACKUP"], "{}", diag());

    // rcron crashes: keepalived takes over after its own Master_Down_Interval.
    for p in [Host::worker_of(sup), Some(sup)].into_iter().flatten() {
        Host::signal(p, "KILL");
    }
    let t = Instant::now();
    let ka_master = || ka_states(h1).last().map(String::as_str) == Some("MASTER");
    assert!(until(Duration::from_secs(25), ka_master), "{}", diag());
    eprintln!("keepalived took over {:.1} s after rcron's crash", t.elapsed().as_secs_f64());

    // rcron back: it hears keepalived's adverts as backup, then preempts (101 > 100).
    let _ = h0.start_rcron(&conf);
    let back = || ka_states(h1).last().map(String::as_str) == Some("BACKUP");
    assert!(until(Duration::from_secs(25), back), "{}", diag());
    assert!(until(Duration::from_secs(5), || h0.state() == "active"), "{}", diag());
    let rx: u64 = h0.status_field("rx_adverts").and_then(|v| v.parse().ok()).unwrap_or(0);
    assert!(rx >= 1, "rcron heard no advert from keepalived: {}", h0.status());
}
