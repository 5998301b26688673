//! Hostile local input: a crowded or garbage-fed control socket, planted symlinks, hooks that
//! non-root users could change.

mod common;
use common::net::*;
use common::*;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

const V3: &str =
    "virtual_router_id 19\nvrrp_version 3\nadvert_int 0.1\nvirtual_ipaddress 192.0.2.100\n";

#[test]
fn control_socket_is_root_only_and_200_idle_or_garbage_clients_do_not_delay_answers() {
    let lab = Lab::new("cs", 2);
    let c0 = lab.rcron_conf(0, &format!("{V3}priority 150\n"));
    let c1 = lab.rcron_conf(1, &format!("{V3}priority 100\n"));
    lab.hosts[0].start_rcron(&c0);
    lab.hosts[1].start_rcron(&c1);
    assert!(until(Duration::from_secs(5), || lab.hosts[0].state() == "active"));
    let sock = lab.hosts[0].dir.join("rcron.sock");
    let meta = std::fs::metadata(&sock).unwrap();
    assert_eq!(meta.mode() & 0o777, 0o600, "only root may connect");
    assert_eq!(meta.uid(), 0);
    // 200 clients that connect and say nothing, and 50 that send garbage without a newline
    // or an over-long line.
    let mut idle = Vec::new();
    for _ in 0..200 {
        idle.push(UnixStream::connect(&sock).unwrap());
    }
    for k in 0..50 {
        let mut s = UnixStream::connect(&sock).unwrap();
        let junk = if k % 2 == 0 { vec![b'x'; 300] } else { b"\x00\xffgarbage\n".to_vec() };
        let _ = s.write_all(&junk);
        idle.push(s);
    }
    let t = Instant::now();
    let st = lab.hosts[0].status();
    let took = t.elapsed();
    assert!(st.contains("state=active"), "{st}");
    assert!(took < Duration::from_secs(1), "--status took {took:?} behind 250 idle clients");
    // The wrapper on the master still gets its answer and runs the job.
    let marker = lab.hosts[0].dir.join("ran");
    let t = Instant::now();
    let o = std::process::Command::new(RCRON)
        .args(["--conf", c0.to_str().unwrap(), "--", "touch", marker.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(marker.exists(), "the job ran on the master");
    assert!(t.elapsed() < Duration::from_secs(2), "wrapper took {:?}", t.elapsed());
    let get = |k: &str| -> u64 {
        st.lines().find_map(|l| l.strip_prefix(&format!("{k}="))).unwrap_or("0").parse().unwrap()
    };
    assert!(get("control_clients_dropped") > 0 || get("control_bad_requests") > 0, "{st}");
    drop(idle);
    // A non-root user cannot connect at all.
    let o = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", RCRON, "--status", "--conf"])
        .arg(&c0)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("daemon=unreachable") || !o.status.success(), "{out}");
    assert!(!out.contains("state=active"), "a non-root user got an answer: {out}");
}

#[test]
fn planted_symlinks_are_never_written_through() {
    let lab = Lab::new("sy", 2);
    let h = &lab.hosts[0];
    let victim = h.dir.join("victim");
    std::fs::write(&victim, "precious\n").unwrap();
    std::os::unix::fs::symlink(&victim, h.dir.join("state")).unwrap();
    let c0 = lab.rcron_conf(0, &format!("{V3}priority 150\n"));
    let c1 = lab.rcron_conf(1, &format!("{V3}priority 100\n"));
    h.start_rcron(&c0);
    lab.hosts[1].start_rcron(&c1);
    assert!(until(Duration::from_secs(3), || h.log("rcron.log").contains("symlink")));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        std::fs::read_to_string(&victim).unwrap(),
        "precious\n",
        "written through a symlink"
    );
    assert!(std::fs::symlink_metadata(h.dir.join("state")).unwrap().file_type().is_symlink());
    // A symlink planted at the pid file: the daemon refuses to start.
    let h1 = &lab.hosts[1];
    h1.kill_all();
    let pid = h1.dir.join("rcrond.pid");
    let _ = std::fs::remove_file(&pid);
    std::os::unix::fs::symlink(&victim, &pid).unwrap();
    let o = h1.run(&[RCRON, "--daemon", "--foreground", "--conf", c1.to_str().unwrap()]);
    assert_ne!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stderr).contains("symlink"));
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
}

#[test]
fn hooks_that_non_root_users_could_change_are_refused() {
    let lab = Lab::new("hk", 2);
    let h = &lab.hosts[0];
    let hook = h.dir.join("notify.sh");
    std::fs::write(&hook, "#!/bin/sh\ntrue\n").unwrap();
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o777)).unwrap();
    let conf = lab.rcron_conf(0, &format!("{V3}notify_active \"{}\"\n", hook.display()));
    let o = h.run(&[RCRON, "--daemon", "--foreground", "--conf", conf.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(78), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("writable by non-root"));
    let o = h.run(&[RCRON, "--check", "--conf", conf.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&o.stderr).contains("notify_active"));
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    let o = h.run(&[RCRON, "--check", "--conf", conf.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
}
