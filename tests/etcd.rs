//! The etcd backend on real hosts (issue 12): a 3-member etcd cluster from Debian's
//! `etcd-server` and 3 rcron nodes, each in a network namespace of its own, the real binary.
//!
//! Every case samples the nodes' state files every 20 ms (judged as rcron's wrapper judges
//! them: a file whose daemon is gone or whose stamp is stale reads passive) and fails if two
//! nodes were ever active at once.

#![cfg(feature = "etcd")]

mod common;
use common::net::*;
use common::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The lease TTL of the failover test, seconds (short, so that failovers are quick to test).
const TTL_S: u64 = 4;
/// The lease TTL of the member-down and partition test: long enough for etcd to elect a new
/// raft leader (its election timeout is 1 s) inside the lease's active window (TTL/2), as a
/// production TTL is; at 4 s a dead raft leader can cost a renewal window.
const TTL_MEMBER_S: u64 = 8;
/// etcd hosts 0..3, rcron nodes on hosts 3..6.
const NODES: [usize; 3] = [3, 4, 5];

struct Group {
    lab: Lab,
    etcd: common::etcd::Etcd,
    /// Supervisor pid per node (index into NODES).
    sup: Vec<u32>,
    confs: Vec<std::path::PathBuf>,
    sampler: Sampler,
}

/// The state file at `path` says active and rcron's wrapper would trust it (its daemon alive,
/// its stamp fresh): a killed or frozen daemon's file reads passive.
fn trusted_active(path: &std::path::Path) -> bool {
    let now = rcron::os::sys::monotonic_ms();
    let Ok(r) = rcron::statefile::read(path) else { return false };
    let trust = rcron::statefile::judge(&r, now, rcron::os::sys::pid_alive);
    trust == rcron::statefile::Trust::Says(rcron::config::State::Active)
}

/// The most nodes seen active at one sample, and when.
struct Sampler {
    stop: Arc<AtomicBool>,
    max_active: Arc<Mutex<(usize, String)>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Sampler {
    fn start(files: Vec<std::path::PathBuf>) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let max_active = Arc::new(Mutex::new((0, String::new())));
        let (s, m) = (stop.clone(), max_active.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                let now = rcron::os::sys::monotonic_ms();
                let active: Vec<usize> =
                    (0..files.len()).filter(|&i| trusted_active(&files[i])).collect();
                let mut g = m.lock().unwrap();
                if active.len() > g.0 {
                    *g = (active.len(), format!("nodes {active:?} at mono {now}"));
                }
                drop(g);
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        Sampler { stop, max_active, thread: Some(thread) }
    }

    /// Stops sampling; the most nodes active at once.
    fn finish(&mut self) -> (usize, String) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.max_active.lock().unwrap().clone()
    }
}

impl Group {
    fn new(tag: &str, ttl_s: u64) -> Group {
        let lab = Lab::new(tag, 6);
        let etcd = lab.start_etcd(&[0, 1, 2]);
        // Each node lists the members in another order: the load spreads, failover is used.
        let confs: Vec<_> = (0..3)
            .map(|k| {
                let mut urls = etcd.urls.clone();
                urls.rotate_left(k);
                // Tracking and hooks as under VRRP: a file makes the node sick, and each
                // transition to active is appended to a file.
                let d = lab.hosts[NODES[k]].dir.display();
                let extra = format!(
                    "etcd_lease_ttl {ttl_s}\nmax_clock_offset 2\nsyslog_facility LOG_LOCAL7\n\
                     track_script test ! -e {d}/sick\n\
                     notify_active sh -c 'echo $RCRON_REASON >> {d}/notified'"
                );
                lab.rcron_etcd_conf(NODES[k], &urls, &extra)
            })
            .collect();
        let sampler =
            Sampler::start(NODES.iter().map(|&i| lab.hosts[i].dir.join("state")).collect());
        let sup = (0..3).map(|k| lab.hosts[NODES[k]].start_rcron(&confs[k])).collect();
        Group { lab, etcd, sup, confs, sampler }
    }

    fn host(&self, k: usize) -> &Host {
        &self.lab.hosts[NODES[k]]
    }

    /// The nodes whose state file says active, as the wrapper would trust it.
    fn active(&self) -> Vec<usize> {
        (0..3).filter(|&k| trusted_active(&self.host(k).dir.join("state"))).collect()
    }

    /// Waits until exactly one node other than `not` is active; (node, seconds waited).
    fn one_active(&self, not: Option<usize>, limit: Duration) -> (usize, f64) {
        let t0 = Instant::now();
        let mut got = None;
        let ok = until(limit, || {
            let a: Vec<usize> = self.active().into_iter().filter(|&k| Some(k) != not).collect();
            got = (a.len() == 1).then(|| a[0]);
            got.is_some()
        });
        assert!(ok, "no single active node within {limit:?}: {:?}\n{}", self.active(), self.logs());
        (got.unwrap(), t0.elapsed().as_secs_f64())
    }

    /// Node k's name in etcd (`node_name`, from its host).
    fn name(&self, k: usize) -> String {
        format!("n{}", NODES[k])
    }

    fn token(&self, k: usize) -> i64 {
        let t = self.host(k).status_field("fencing_token").unwrap_or_default();
        t.parse()
            .unwrap_or_else(|_| panic!("node {k} has no fencing token: {}", self.host(k).status()))
    }

    fn logs(&self) -> String {
        (0..3).map(|k| format!("--- n{k}\n{}", self.host(k).log("rcron.log"))).collect()
    }

    /// Runs `rcron --id ID -- sh -c SCRIPT` on node k (blocking); (exit code, output).
    fn wrapper(&self, k: usize, id: &str, script: &str) -> (i32, String) {
        let conf = self.confs[k].to_str().unwrap();
        let o =
            self.host(k).run(&[RCRON, "-v", "--conf", conf, "--id", id, "--", "sh", "-c", script]);
        (code(&o), format!("{}{}", stdout(&o), stderr(&o)))
    }

    /// Every node's wrapper for the same job at once, each on its own thread, clear of a
    /// minute's turn (one slot).
    fn wrappers(&self, id: &str, script: &str) -> Vec<(i32, String)> {
        clear_of_the_turn(60, 5);
        std::thread::scope(|s| {
            let h: Vec<_> = (0..3).map(|k| s.spawn(move || self.wrapper(k, id, script))).collect();
            h.into_iter().map(|h| h.join().unwrap()).collect()
        })
    }

    /// Signals node k's worker, then its supervisor (the worker first: a worker that saw its
    /// supervisor die first would resign cleanly, which is not the fault under test).
    fn stop_node(&self, k: usize, sig: &str) {
        let sup = self.sup[k];
        if let Some(w) = Host::worker_of(sup) {
            Host::signal(w, sig);
        }
        Host::signal(sup, sig);
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.sampler.finish();
    }
}

fn one_lab() -> std::sync::MutexGuard<'static, ()> {
    // One group at a time: 3 etcd members and 3 daemons each, on a 2-CPU machine.
    static ONE: Mutex<()> = Mutex::new(());
    ONE.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn a_leader_killed_or_frozen_is_replaced_within_the_ttl_and_tokens_rise() {
    let _one = one_lab();
    let mut g = Group::new("ek", TTL_S);
    let (l1, _) = g.one_active(None, Duration::from_secs(15));
    let t1 = g.token(l1);
    let margin = 2.0;

    // Records past the retention window go (the leader deletes them once a minute, the first
    // time when it takes over); a recent one stays.
    let old = "/rcron/lab/slots/00000000001000000000/0000000000000001";
    let recent = format!("/rcron/lab/slots/{:020}/0000000000000002", rcron::os::sys::wall_secs());
    assert!(g.etcd.put(&g.lab, old, "n9 1") && g.etcd.put(&g.lab, &recent, "n9 1"));
    // SIGTERM: the leader revokes its lease; another leads at once and expires the old.
    g.stop_node(l1, "TERM");
    let (l0, (l1, took)) = (l1, g.one_active(Some(l1), Duration::from_secs(10)));
    assert!(took < 1.5, "takeover after SIGTERM took {took:.2} s");
    assert!(g.host(l0).wait_child(g.sup[l0], Duration::from_secs(5)) == Some(0));
    let conf = g.confs[l0].clone();
    g.sup[l0] = g.host(l0).start_rcron(&conf);
    let t1 = {
        let t = g.token(l1);
        assert!(t > t1, "tokens {t1} then {t}");
        t
    };
    let gone = until(Duration::from_secs(5), || {
        g.etcd.keys(&g.lab, "/rcron/lab/slots/") == [recent.clone()]
    });
    assert!(gone, "{:?}", g.etcd.keys(&g.lab, "/rcron/lab/slots/"));

    // A job that nobody has recorded yet, asked on every node at once: one run.
    let marks = g.lab.hosts[0].dir.join("runs");
    let script = format!("echo $RCRON_FENCING_TOKEN >> {}", marks.display());
    let results = g.wrappers("first", &script);
    let runs = std::fs::read_to_string(&marks).unwrap_or_default();
    assert_eq!(runs.lines().collect::<Vec<_>>(), [t1.to_string()], "{results:?}");
    for (k, (c, out)) in results.iter().enumerate() {
        assert_eq!(*c, 0, "{out}");
        if k != l1 {
            assert!(out.contains(&format!("reason=ran_on_peer ran_on={}", g.name(l1))), "{out}");
        }
    }

    // kill -9 of the whole daemon: another node within the TTL plus a margin.
    g.stop_node(l1, "KILL");
    let (l2, took) = g.one_active(Some(l1), Duration::from_secs(TTL_S + 10));
    assert!(took <= TTL_S as f64 + margin, "takeover after kill -9 took {took:.2} s");
    let t2 = g.token(l2);
    assert!(t2 > t1, "tokens {t1} then {t2}");
    eprintln!("kill -9: n{l1} -> n{l2} in {took:.2} s, token {t1} -> {t2}");

    // SIGSTOP: the frozen leader's file turns stale, another node takes over.
    g.stop_node(l2, "STOP");
    let (l3, took) = g.one_active(Some(l2), Duration::from_secs(TTL_S + 10));
    assert!(took <= TTL_S as f64 + margin, "takeover after SIGSTOP took {took:.2} s");
    let t3 = g.token(l3);
    assert!(t3 > t2, "tokens {t2} then {t3}");
    eprintln!("SIGSTOP: n{l2} -> n{l3} in {took:.2} s, token {t2} -> {t3}");

    // Thawed, the old leader finds its lease gone and stays passive.
    g.stop_node(l2, "CONT");
    std::thread::sleep(Duration::from_secs(TTL_S));
    assert_eq!(g.active(), [l3], "{}", g.logs());
    assert!(g.host(l2).log("rcron.log").contains("lease"), "{}", g.host(l2).log("rcron.log"));

    // The killed node comes back as a follower.
    let conf = g.confs[l1].clone();
    g.sup[l1] = g.host(l1).start_rcron(&conf);
    assert!(
        until(Duration::from_secs(10), || g.host(l1).status_field("leader") == Some(g.name(l3)))
    );
    assert_eq!(g.active(), [l3]);

    // The leader's track script fails: it resigns and another node leads within a renewal
    // period or two, not a TTL; the notify hook saw every node's rise.
    std::fs::write(g.host(l3).dir.join("sick"), "").unwrap();
    let (l4, took) = g.one_active(Some(l3), Duration::from_secs(TTL_S + 10));
    assert!(took < 3.0, "takeover after a failed track script took {took:.2} s");
    assert_eq!(g.host(l3).status_field("state").as_deref(), Some("passive"));
    eprintln!("track script: n{l3} -> n{l4} in {took:.2} s");
    for k in [l1, l2, l3, l4] {
        let notified = std::fs::read_to_string(g.host(k).dir.join("notified")).unwrap_or_default();
        assert!(notified.lines().any(|r| r == "leader_key_won"), "n{k}: {notified:?}");
    }

    // Values put by hand: a slot "record" that is not one runs the job once all the same.
    use rcron::ledger::slot::{job_id, scheduled};
    clear_of_the_turn(60, 15);
    let slot = scheduled(rcron::os::sys::wall_secs(), 60);
    let key = format!("/rcron/lab/slots/{slot:020}/{:016x}", job_id(Some("junk"), 0, &[], 60));
    assert!(g.etcd.put(&g.lab, &key, "junk"));
    let _ = std::fs::remove_file(&marks);
    let results = g.wrappers("junk", &script);
    let runs = std::fs::read_to_string(&marks).unwrap_or_default();
    assert_eq!(runs.lines().count(), 1, "{results:?}\n{}", g.logs());
    assert!(g.host(l4).log("rcron.log").contains("not a record: recorded over it"), "{}", g.logs());

    // A leader key put by hand without a lease never expires: the leader steps down at once,
    // and one TTL later (when no node can still believe it leads) a node deletes it and leads.
    let t4 = g.token(l4);
    let t = Instant::now();
    assert!(g.etcd.put(&g.lab, "/rcron/lab/leader", "junk"));
    let led = || {
        let a = g.active();
        let token = |k: usize| g.host(k).status_field("fencing_token").and_then(|v| v.parse().ok());
        a.len() == 1 && token(a[0]) > Some(t4)
    };
    assert!(until(Duration::from_secs(3 * TTL_S), led), "{}", g.logs());
    let took = t.elapsed().as_secs_f64();
    eprintln!("a lease-less leader key: n{} leads {took:.2} s later", g.active()[0]);
    assert!(took >= TTL_S as f64, "deleted before a TTL: {took:.2} s");
    assert!(g.logs().contains("deleted the leader key that had no lease"), "{}", g.logs());
    let (most, when) = g.sampler.finish();
    assert_eq!(most, 1, "two nodes active at once: {when}\n{}", g.logs());
}

#[test]
fn a_dead_member_changes_nothing_and_a_partitioned_leader_stops_its_job_before_its_lease_ends() {
    let _one = one_lab();
    let mut g = Group::new("ep", TTL_MEMBER_S);
    let (l, _) = g.one_active(None, Duration::from_secs(15));
    let t1 = g.token(l);
    let transitions = |g: &Group| -> Vec<String> {
        (0..3).map(|k| g.host(k).status_field("transitions").unwrap_or_default()).collect()
    };
    let before = transitions(&g);

    // --no-wait: the leader still records the slot and runs it; the others answer at once.
    let marker = g.lab.hosts[0].dir.join("nowait.ran");
    let job = format!("echo $RCRON_FENCING_TOKEN >> {}", marker.display());
    for k in std::iter::once(l).chain((0..3).filter(|&k| k != l)) {
        let conf = g.confs[k].to_str().unwrap();
        let t = Instant::now();
        let o = g.host(k).run(&[
            RCRON,
            "--no-wait",
            "--conf",
            conf,
            "--id",
            "nw",
            "--",
            "sh",
            "-c",
            &job,
        ]);
        let took = t.elapsed();
        assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
        assert!(took < Duration::from_secs(3), "--no-wait took {took:?} on node {k}");
    }
    let ran = std::fs::read_to_string(&marker).unwrap_or_default();
    assert_eq!(ran.lines().collect::<Vec<_>>(), [g.token(l).to_string()], "once, by the leader");

    // One etcd member down (the first endpoint of the leader): no transition anywhere.
    let dead = l; // node k lists member k first
    let pid = g.etcd.pid(&g.lab, dead).expect("etcd member pid");
    Host::signal(pid, "KILL");
    std::thread::sleep(Duration::from_secs(3 * TTL_MEMBER_S));
    assert_eq!(transitions(&g), before, "{}", g.logs());
    assert_eq!(g.active(), [l]);
    let endpoint = g.host(l).status_field("etcd_endpoint").unwrap();
    assert_ne!(endpoint, g.etcd.urls[dead], "the leader still uses the dead member");

    // A long job on the leader (every node's cron starts it; the others skip).
    let pidfile = g.lab.hosts[0].dir.join("job.pid");
    let script = format!("echo $$ > {}; exec sleep 120", pidfile.display());
    clear_of_the_turn(60, 5);
    let wrappers: Vec<u32> = (0..3)
        .map(|k| {
            let conf = g.confs[k].to_str().unwrap();
            g.host(k).spawn(
                &[RCRON, "-v", "--conf", conf, "--id", "long", "--", "sh", "-c", &script],
                "long.log",
            )
        })
        .collect();
    assert!(until(Duration::from_secs(10), || pidfile.exists()), "the job did not start");
    for k in (0..3).filter(|&k| k != l) {
        assert_eq!(g.host(k).wait_child(wrappers[k], Duration::from_secs(10)), Some(0));
        let out = g.host(k).log("long.log");
        assert!(out.contains(&format!("ran_on={}", g.name(l))), "{out}");
    }
    std::thread::sleep(Duration::from_millis(500));
    // Cut the leader off from every etcd member.
    let set = (0..3).map(|m| g.lab.hosts[m].ip.to_string()).collect::<Vec<_>>().join(", ");
    sh(&format!(
        "ip netns exec {} nft 'add table inet cut; \
         add chain inet cut out {{ type filter hook output priority 0; }}; \
         add chain inet cut in {{ type filter hook input priority 0; }}; \
         add rule inet cut out ip daddr {{ {set} }} drop; \
         add rule inet cut in ip saddr {{ {set} }} drop'",
        g.host(l).ns
    ));
    let t_cut = Instant::now();
    let code = g.host(l).wait_child(wrappers[l], Duration::from_secs(3 * TTL_MEMBER_S));
    let ended = t_cut.elapsed().as_secs_f64();
    let out = g.host(l).log("long.log");
    assert_eq!(code, Some(75), "the leader's job must end fenced: {out}");
    assert!(out.contains("status=fenced"), "{out}");
    // Said as what it was: the lease (the daemon's `lease_not_renewed`, or the job's own
    // copy of the deadline, `lease_deadline`, whichever came first).
    assert!(out.contains("reason=lease_"), "{out}");
    // Stopped (TERM, KILL after the grace) before etcd can expire the lease.
    assert!(ended < TTL_MEMBER_S as f64, "the job ended {ended:.2} s after the cut");
    eprintln!(
        "partition: the leader's job ended {ended:.2} s after the cut (TTL {TTL_MEMBER_S} s)"
    );
    let job_pid: u32 = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
    assert!(!pid_alive(job_pid), "the job's process survived");
    assert_eq!(g.host(l).state(), "passive");
    let (l2, _) = g.one_active(Some(l), Duration::from_secs(TTL_MEMBER_S + 10));
    let took = t_cut.elapsed().as_secs_f64();
    assert!(
        took >= TTL_MEMBER_S as f64 * 0.5,
        "a new leader {took:.2} s after the cut: before the lease could expire?"
    );
    let t2 = g.token(l2);
    assert!(t2 > t1, "tokens {t1} then {t2}");
    eprintln!("partition: n{l} -> n{l2} {took:.2} s after the cut, token {t1} -> {t2}");

    // Healed: the old leader comes back as a follower.
    sh(&format!("ip netns exec {} nft delete table inet cut", g.host(l).ns));
    assert!(
        until(Duration::from_secs(10), || g.host(l).status_field("leader") == Some(g.name(l2))),
        "{}",
        g.logs()
    );
    assert_eq!(g.active(), [l2]);
    let (most, when) = g.sampler.finish();
    assert_eq!(most, 1, "two nodes active at once: {when}\n{}", g.logs());
}
