//! rcrond on real hosts (network namespaces): elections between rcron nodes, failover on
//! crash and on SIGTERM, preempt and no preempt, faults, reload, supervision.

mod common;
use common::net::*;
use common::*;
use std::time::{Duration, Instant};

const V3_FAST: &str =
    "virtual_router_id 9\nvrrp_version 3\nadvert_int 0.1\nvirtual_ipaddress 192.0.2.100\n";

fn actives(lab: &Lab) -> Vec<usize> {
    (0..lab.hosts.len()).filter(|&i| lab.hosts[i].state() == "active").collect()
}

/// Waits until exactly host `i` is active (by state file) and every other host is not.
fn converge(lab: &Lab, i: usize, limit: Duration) -> bool {
    until(limit, || actives(lab) == [i])
}

#[test]
fn three_nodes_elect_fail_over_and_preempt() {
    let lab = Lab::new("el", 3);
    let prios = [150, 100, 50];
    let confs: Vec<_> =
        (0..3).map(|i| lab.rcron_conf(i, &format!("{V3_FAST}priority {}\n", prios[i]))).collect();
    let mut sups: Vec<u32> = (0..3).map(|i| lab.hosts[i].start_rcron(&confs[i])).collect();
    assert!(converge(&lab, 0, Duration::from_secs(5)), "initial election: {:?}", actives(&lab));
    assert_eq!(lab.hosts[1].status_field("master").as_deref(), Some("192.0.2.11"));
    assert_eq!(lab.hosts[2].status_field("state").as_deref(), Some("passive"));

    // kill -9 of the master: the next priority takes over after Master_Down_Interval.
    let t = Instant::now();
    Host::crash(sups[0]);
    assert!(until(Duration::from_secs(3), || lab.hosts[1].state() == "active"));
    let took = t.elapsed();
    // Master_Down for prio 100 at 0.1 s: 300 + 60 ms; allow for a loaded machine.
    assert!(took >= Duration::from_millis(250), "took over too early: {took:?}");
    assert!(lab.hosts[2].state() != "active");
    // The crashed node's file still says active, but nobody keeps it fresh: not active.
    let o = lab.hosts[0].run(&[RCRON, "--is-active", "--conf", confs[0].to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "a dead daemon's node must not be active");

    // SIGTERM of the new master: it resigns (priority 0), the last node takes over fast.
    let t = Instant::now();
    Host::signal(sups[1], "TERM");
    assert!(until(Duration::from_secs(3), || lab.hosts[2].state() == "active"));
    let took = t.elapsed();
    assert!(took < Duration::from_millis(1500), "graceful handover took {took:?}");
    assert!(until(Duration::from_secs(2), || lab.hosts[1].state() == "passive"));
    assert!(!lab.hosts[1].dir.join("rcrond.pid").exists(), "pid file removed at exit");
    assert!(!lab.hosts[1].dir.join("rcron.sock").exists(), "control socket removed at exit");

    // The first node returns and, with preempt, takes over again.
    sups[0] = lab.hosts[0].start_rcron(&confs[0]);
    assert!(converge(&lab, 0, Duration::from_secs(5)), "preempt: {:?}", actives(&lab));
    let _ = sups;
}

#[test]
fn without_preempt_a_returning_higher_priority_node_stays_backup() {
    let lab = Lab::new("np", 2);
    let c0 = lab.rcron_conf(0, &format!("{V3_FAST}priority 150\npreempt no\n"));
    let c1 = lab.rcron_conf(1, &format!("{V3_FAST}priority 100\npreempt no\n"));
    let s0 = lab.hosts[0].start_rcron(&c0);
    lab.hosts[1].start_rcron(&c1);
    assert!(converge(&lab, 0, Duration::from_secs(5)));
    Host::crash(s0);
    assert!(until(Duration::from_secs(3), || lab.hosts[1].state() == "active"));
    lab.hosts[0].start_rcron(&c0);
    // Give it several Master_Down_Intervals: it must stay backup.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(actives(&lab), [1], "no preempt: the running master keeps the role");
    assert_eq!(lab.hosts[0].status_field("master").as_deref(), Some("192.0.2.12"));
}

#[test]
fn link_down_is_a_fault_and_the_peer_takes_over() {
    let lab = Lab::new("lk", 2);
    let c0 = lab.rcron_conf(0, &format!("{V3_FAST}priority 150\n"));
    let c1 = lab.rcron_conf(1, &format!("{V3_FAST}priority 100\n"));
    lab.hosts[0].start_rcron(&c0);
    lab.hosts[1].start_rcron(&c1);
    assert!(converge(&lab, 0, Duration::from_secs(5)));
    lab.hosts[0].link(false);
    assert!(until(Duration::from_secs(2), || lab.hosts[0].state() == "passive"));
    assert!(until(Duration::from_secs(3), || lab.hosts[1].state() == "active"));
    assert_eq!(lab.hosts[0].status_field("role").as_deref(), Some("fault"));
    lab.hosts[0].link(true);
    assert!(converge(&lab, 0, Duration::from_secs(5)), "back after the link returns");
}

#[test]
fn track_script_failures_mean_fault_and_hooks_run_in_order() {
    let lab = Lab::new("tr", 2);
    let h = &lab.hosts[0];
    let flag = h.dir.join("healthy");
    std::fs::write(&flag, "").unwrap();
    let hooklog = h.dir.join("hooks.log");
    let hook = h.dir.join("hook.sh");
    std::fs::write(
        &hook,
        format!("#!/bin/sh\necho \"$1 $RCRON_STATE\" >> {}\n", hooklog.display()),
    )
    .unwrap();
    sh(&format!("chmod 755 {}", hook.display()));
    let extra = format!(
        "{V3_FAST}priority 150\ntrack_script \"test -e {}\"\ntrack_interval 0.1\ntrack_fall 2\n\
         track_rise 2\nnotify_active \"{h} active\"\nnotify_passive \"{h} passive\"\n\
         notify_fault \"{h} fault\"\n",
        flag.display(),
        h = hook.display()
    );
    let c0 = lab.rcron_conf(0, &extra);
    let c1 = lab.rcron_conf(1, &format!("{V3_FAST}priority 100\n"));
    lab.hosts[0].start_rcron(&c0);
    lab.hosts[1].start_rcron(&c1);
    assert!(converge(&lab, 0, Duration::from_secs(5)));
    std::fs::remove_file(&flag).unwrap();
    assert!(until(Duration::from_secs(3), || lab.hosts[1].state() == "active"));
    assert_eq!(lab.hosts[0].state(), "passive");
    std::fs::write(&flag, "").unwrap();
    assert!(converge(&lab, 0, Duration::from_secs(5)));
    assert!(until(Duration::from_secs(2), || {
        std::fs::read_to_string(&hooklog).unwrap_or_default().lines().count() >= 4
    }));
    let log = std::fs::read_to_string(&hooklog).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(
        &lines[..4],
        ["active active", "fault passive", "passive passive", "active active"],
        "hooks ran in transition order"
    );
}

#[test]
fn broken_config_on_sighup_keeps_the_daemon_running_and_electing() {
    let lab = Lab::new("hu", 2);
    let c0 = lab.rcron_conf(0, &format!("{V3_FAST}priority 150\n"));
    let c1 = lab.rcron_conf(1, &format!("{V3_FAST}priority 100\n"));
    let s0 = lab.hosts[0].start_rcron(&c0);
    lab.hosts[1].start_rcron(&c1);
    assert!(converge(&lab, 0, Duration::from_secs(5)));
    let good = std::fs::read_to_string(&c0).unwrap();
    std::fs::write(&c0, format!("{good}priority 999\nbogus_key 1\n")).unwrap();
    Host::signal(s0, "HUP");
    assert!(until(Duration::from_secs(3), || {
        lab.hosts[0].log("rcron.log").contains("reload refused, keeping the running config")
    }));
    let log = lab.hosts[0].log("rcron.log");
    assert!(log.contains("reload refused"), "{log}");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(actives(&lab), [0], "still master with the old config");
    let statefile = std::fs::read_to_string(lab.hosts[0].dir.join("state")).unwrap();
    assert!(statefile.contains("\npriority=150\n"), "{statefile}");
    // A good config applies: priority 50 < 100 ... the peer preempts.
    std::fs::write(&c0, good.replace("priority 150", "priority 50")).unwrap();
    Host::signal(s0, "HUP");
    assert!(converge(&lab, 1, Duration::from_secs(5)), "new priority took effect");
    assert_eq!(lab.hosts[0].status_field("priority").as_deref(), Some("50"));
}

#[test]
fn supervisor_restarts_a_dead_or_hung_worker_and_writes_passive_first() {
    let lab = Lab::new("sv", 2);
    let c0 = lab.rcron_conf(0, &format!("{V3_FAST}priority 150\n"));
    let c1 = lab.rcron_conf(1, &format!("{V3_FAST}priority 100\n"));
    let s0 = lab.hosts[0].start_rcron(&c0);
    lab.hosts[1].start_rcron(&c1);
    assert!(converge(&lab, 0, Duration::from_secs(5)));
    // The worker dies: passive at once, then a new worker wins the election back.
    let w = Host::worker_of(s0).expect("worker");
    Host::signal(w, "KILL");
    assert!(until(Duration::from_secs(2), || lab.hosts[0].state() == "passive"));
    assert!(until(Duration::from_secs(5), || Host::worker_of(s0).is_some_and(|n| n != w)));
    assert!(converge(&lab, 0, Duration::from_secs(5)));
    // The worker hangs (SIGSTOP): the supervisor writes passive and replaces it.
    let w = Host::worker_of(s0).expect("worker");
    Host::signal(w, "STOP");
    assert!(until(Duration::from_secs(2), || lab.hosts[0].state() == "passive"));
    assert!(until(Duration::from_secs(5), || Host::worker_of(s0).is_some_and(|n| n != w)));
    assert!(converge(&lab, 0, Duration::from_secs(5)));
    let log = lab.hosts[0].log("rcron.log");
    assert!(log.contains("died"), "{log}");
    assert!(log.contains("hung"), "{log}");
}

#[test]
fn status_reports_peers_counters_and_drops() {
    let lab = Lab::new("st", 2);
    let c0 = lab.rcron_conf(0, &format!("{V3_FAST}priority 150\n"));
    // A peer in another virtual router: its adverts are dropped and counted as other_vrid.
    let c1 = lab.rcron_conf(1, "virtual_router_id 10\nvrrp_version 3\nadvert_int 0.1\nvirtual_ipaddress 192.0.2.100\npriority 100\n");
    lab.hosts[0].start_rcron(&c0);
    lab.hosts[1].start_rcron(&c1);
    assert!(until(Duration::from_secs(5), || lab.hosts[0].state() == "active"));
    std::thread::sleep(Duration::from_millis(500));
    let st = lab.hosts[0].status();
    let get = |k: &str| {
        st.lines().find_map(|l| l.strip_prefix(&format!("{k}="))).unwrap_or("").to_string()
    };
    assert_eq!(get("state"), "active");
    assert_eq!(get("peers"), "192.0.2.12");
    assert_eq!(get("mode"), "unicast");
    assert!(get("tx_adverts").parse::<u64>().unwrap() >= 3, "{st}");
    assert!(get("drop_other_vrid").parse::<u64>().unwrap() >= 3, "{st}");
    assert_eq!(get("drop_bad_checksum"), "0");

    // Jobs through the wrapper are counted by outcome.
    let conf = lab.hosts[0].dir.join("rcron.conf");
    let c = conf.to_str().unwrap();
    // Three jobs (the same command twice in one slot would run once).
    for job in ["true", "false", "/bin/true"] {
        lab.hosts[0].run(&[RCRON, "--conf", c, "--", job]);
    }
    let st = lab.hosts[0].status_map();
    let n = |k: &str| st.get(k).map(String::as_str).unwrap_or("").to_string();
    assert_eq!(
        (n("decisions_run"), n("jobs_ok"), n("jobs_fail")),
        ("3".into(), "2".into(), "1".into())
    );

    // --status --json: one object a JSON parser reads, numbers as numbers.
    let o = lab.hosts[0].run(&[RCRON, "--status", "--json", "--conf", c]);
    assert_eq!(o.status.code(), Some(0), "active: exit 0");
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    let v: miniserde::json::Value = miniserde::json::from_str(&text).expect(&text);
    let miniserde::json::Value::Object(obj) = v else { panic!("not an object: {text}") };
    let num = |k: &str| match obj.get(k) {
        Some(miniserde::json::Value::Number(miniserde::json::Number::U64(n))) => *n,
        other => panic!("{k}: {other:?} in {text}"),
    };
    let string = |k: &str| match obj.get(k) {
        Some(miniserde::json::Value::String(s)) => s.clone(),
        other => panic!("{k}: {other:?} in {text}"),
    };
    assert_eq!(string("state"), "active");
    assert_eq!(string("peers"), "192.0.2.12");
    assert!(num("tx_adverts") >= 3 && num("drop_other_vrid") >= 3, "{text}");
    assert_eq!((num("jobs_ok"), num("jobs_fail"), num("priority")), (2, 1, 150));
    assert!(matches!(obj.get("fault_reason"), Some(miniserde::json::Value::Null)), "{text}");

    // --status --prometheus: what promtool accepts, with the metrics the issue names.
    let o = lab.hosts[0].run(&[RCRON, "--status", "--prometheus", "--conf", c]);
    assert_eq!(o.status.code(), Some(0));
    let prom = String::from_utf8_lossy(&o.stdout).into_owned();
    let mut lint = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool (Debian: prometheus) must be installed");
    std::io::Write::write_all(lint.stdin.as_mut().unwrap(), prom.as_bytes()).unwrap();
    let lint = lint.wait_with_output().unwrap();
    let said = format!("{}{}", stdout(&lint), stderr(&lint));
    assert!(lint.status.success() && said.trim().is_empty(), "promtool: {said}\n{prom}");
    let cl = "cluster=\"lab\"";
    for line in [
        format!("rcron_up{{{cl}}} 1"),
        format!("rcron_active{{{cl}}} 1"),
        format!("rcron_role{{{cl},role=\"master\"}} 1"),
        format!("rcron_role{{{cl},role=\"backup\"}} 0"),
        format!("rcron_priority{{{cl}}} 150"),
        format!("rcron_jobs_total{{{cl},outcome=\"fail\"}} 1"),
        format!("rcron_drops_total{{{cl},reason=\"bad_checksum\"}} 0"),
        "# TYPE rcron_adverts_sent_total counter".to_string(),
    ] {
        assert!(prom.lines().any(|l| l == line), "{line} missing:\n{prom}");
    }
    assert!(prom.contains("rcron_transitions_total{"), "{prom}");
    assert!(prom.contains("rcron_last_transition_timestamp_seconds{"), "{prom}");
}

#[test]
fn a_detached_daemon_that_fails_at_start_says_why_on_the_starters_stderr() {
    // No syslog daemon here (the sandbox's /dev/log is ours, but the reason must not need it).
    let s = Sandbox::new("detach");
    let conf = s.conf(&format!(
        "election etcd\netcd_endpoints http://127.0.0.1:1\nnode_name a\ncontrol_socket {}\n\
         pid_file /proc/no-such-dir/rcron.pid\n",
        s.path("sock").display()
    ));
    let o = s.rcron(&["--daemon", "--conf", conf.to_str().unwrap()]);
    assert_ne!(code(&o), 0);
    let err = stderr(&o);
    assert!(err.contains("daemon exited at start"), "{err}");
    assert!(err.contains("pid file: /proc/no-such-dir/"), "the daemon's own reason: {err}");
}

/// The daemon's niceness: `daemon_nice` (-10 by default) for the worker, so that a crowd of
/// jobs cannot starve its adverts; its hooks and track script at the niceness it was started
/// with; a reload applies a new value.
#[test]
fn the_daemon_runs_at_daemon_nice_and_its_hooks_at_the_niceness_it_was_started_with() {
    let lab = Lab::new("ni", 2); // the peer stays silent: host 0 takes over alone
    let h = &lab.hosts[0];
    let (hook_out, track_out) = (h.dir.join("hook.nice"), h.dir.join("track.nice"));
    let hook = h.dir.join("hook.sh");
    std::fs::write(&hook, format!("#!/bin/sh\nnice > {}\n", hook_out.display())).unwrap();
    sh(&format!("chmod 755 {}", hook.display()));
    let extra = format!(
        "{V3_FAST}notify_active {}\ntrack_script sh -c 'nice > {}'\ntrack_interval 0.1\n",
        hook.display(),
        track_out.display()
    );
    let conf = lab.rcron_conf(0, &extra);
    let sup = h.start_rcron(&conf);
    assert!(until(Duration::from_secs(5), || h.state() == "active"), "{}", h.log("rcron.log"));
    let worker = Host::worker_of(sup).expect("a worker");
    // /proc/PID/stat: field 19 is the niceness (after the command's closing parenthesis).
    let nice = |pid: u32| -> Option<i32> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        stat.rsplit(')').next()?.split_whitespace().nth(16)?.parse().ok()
    };
    // The supervisor keeps the niceness this test runs at: the one the hooks get.
    let started = nice(sup).expect("the supervisor's niceness").to_string();
    assert_ne!(started, "-10");
    assert_eq!(nice(worker), Some(-10), "the worker");
    // The shell creates the file before `nice` writes to it: wait for its line.
    let read = |p: &std::path::Path| std::fs::read_to_string(p).unwrap_or_default();
    let written = |p: &std::path::Path| read(p).ends_with('\n');
    assert!(until(Duration::from_secs(3), || written(&hook_out) && written(&track_out)));
    let (hook_nice, track_nice) = (read(&hook_out), read(&track_out));
    assert_eq!((hook_nice.trim(), track_nice.trim()), (&*started, &*started), "hook, track");
    let text = std::fs::read_to_string(&conf).unwrap();
    std::fs::write(&conf, format!("{text}daemon_nice 5\n")).unwrap();
    Host::signal(sup, "HUP");
    assert!(until(Duration::from_secs(3), || nice(worker) == Some(5)), "{:?}", nice(worker));
    std::fs::remove_file(&track_out).unwrap();
    assert!(until(Duration::from_secs(3), || written(&track_out)));
    assert_eq!(read(&track_out).trim(), started, "the track script after the reload");
}
