//! The crontab wrapper, run as the real binary: run/skip by state, exit codes, argv, nice,
//! timeout, lock, signal forwarding, and the syslog lines it really sends.

mod common;
use common::*;
use std::time::Duration;

#[test]
fn passive_skips_the_job_and_logs_ignore() {
    let s = Sandbox::new("passive");
    let conf = s.conf("");
    s.set_state("passive\n");
    let marker = s.path("ran");
    let o = s.rcron(&["--conf", conf.to_str().unwrap(), "touch", marker.to_str().unwrap()]);
    assert_eq!(code(&o), 0);
    assert!(!marker.exists(), "job ran on a passive node");
    let logs = s.logs();
    assert_eq!(logs.len(), 1, "{logs:?}");
    assert!(logs[0].contains("cluster=test state=passive status=ignore cmd=touch "), "{logs:?}");
}

#[test]
fn active_runs_the_job_and_returns_its_exit_code() {
    let s = Sandbox::new("active");
    let conf = s.conf("");
    s.set_state("active\n");
    let o = s.rcron(&["-c", conf.to_str().unwrap(), "sh", "-c", "echo out; echo err >&2; exit 3"]);
    assert_eq!(code(&o), 3, "the job's own failure must come back");
    assert_eq!(stdout(&o), "out\n", "stdout passes through untouched");
    assert_eq!(stderr(&o), "err\n", "stderr passes through untouched");
    let logs = s.logs().join("\n");
    assert!(logs.contains("state=active status=start cmd=sh -c echo out;"), "{logs}");
    assert!(logs.contains("state=active status=fail exit=3 dur=0 dur_ms="), "{logs}");
}

#[test]
fn state_file_decisions() {
    // (state file content or None for missing, default_state, job expected to run)
    let cases: &[(Option<&str>, &str, bool)] = &[
        (Some("active\n"), "passive", true),
        (Some("  active\r\n"), "passive", true),
        (Some("passive\n"), "active", false),
        (None, "passive", false),
        (None, "active", true),
        (Some("inactive\n"), "passive", false),
        (Some("garbage"), "active", true),
        (Some(""), "passive", false),
        // Written by an rcron daemon whose pid is gone: passive whatever default_state says.
        (Some("active\npid=999999999\nmono_ms=1\n"), "active", false),
    ];
    for (i, (content, default, runs)) in cases.iter().enumerate() {
        let s = Sandbox::new(&format!("decide{i}"));
        let conf = s.conf(&format!("default_state {default}\n"));
        if let Some(c) = content {
            s.set_state(c);
        }
        let marker = s.path("ran");
        let o = s.rcron(&["-c", conf.to_str().unwrap(), "touch", marker.to_str().unwrap()]);
        assert_eq!(code(&o), 0, "case {i}: {}", stderr(&o));
        assert_eq!(marker.exists(), *runs, "case {i}: state {content:?} default {default}");
    }
}

#[test]
fn fifo_and_huge_state_files_never_hang() {
    let s = Sandbox::new("fifo");
    let conf = s.conf("default_state active\n");
    let st = s.path("state");
    assert!(std::process::Command::new("mkfifo").arg(&st).status().unwrap().success());
    let t = std::time::Instant::now();
    let o = s.rcron(&["-c", conf.to_str().unwrap(), "true"]);
    assert_eq!(code(&o), 0);
    assert!(t.elapsed() < Duration::from_secs(5), "a FIFO state file blocked the wrapper");
    assert!(s.logs().join("\n").contains("state=active status=ok"), "FIFO -> default_state");
    std::fs::remove_file(&st).unwrap();
    // 20 MB of one line: not trusted, default_state (active here) applies, read is bounded.
    std::fs::write(&st, "active".repeat(3_500_000)).unwrap();
    let o = s.rcron(&["-c", conf.to_str().unwrap(), "true"]);
    assert_eq!(code(&o), 0);
    let logs = s.logs().join("\n");
    assert!(logs.contains("state=active status=ok"), "{logs}");
}

#[test]
fn exit_codes() {
    let s = Sandbox::new("exit");
    let conf = s.conf("");
    let c = conf.to_str().unwrap();
    s.set_state("active\n");
    let noexec = s.write("noexec.sh", "#!/bin/sh\necho hi\n");
    let cases: &[(&[&str], i32)] = &[
        (&["true"], 0),
        (&["false"], 1),
        (&["sh", "-c", "kill -9 $$"], 137),
        (&["sh", "-c", "kill -TERM $$"], 143),
        (&["--timeout", "1s", "sleep", "30"], 124),
        (&[noexec.to_str().unwrap()], 126),
        (&["/nonexistent/command"], 127),
        (&["no-such-command-anywhere"], 127),
    ];
    for (args, want) in cases {
        let mut a = vec!["-c", c];
        a.extend_from_slice(args);
        let o = s.rcron(&a);
        assert_eq!(code(&o), *want, "{args:?}: {}", stderr(&o));
    }
    let logs = s.logs().join("\n");
    assert!(logs.contains("status=timeout exit=124"), "{logs}");
    assert!(logs.contains("status=fail exit=137 dur=0 dur_ms="), "{logs}");
    assert!(logs.contains("status=fail exit=127"), "{logs}");
    // Usage errors: 64; config errors: 78 (the job runs nowhere).
    assert_eq!(code(&s.rcron(&["-c", c])), 64);
    assert_eq!(code(&s.rcron(&["--bogus", "true"])), 64);
    let missing = s.path("missing.conf");
    let o = s.rcron(&["-c", missing.to_str().unwrap(), "true"]);
    assert_eq!(code(&o), 78, "an explicit --conf that does not exist");
    assert!(stderr(&o).contains("missing.conf"), "{}", stderr(&o));
}

#[test]
fn argv_arrives_untouched_without_a_second_shell_parse() {
    let s = Sandbox::new("argv");
    let conf = s.conf("");
    s.set_state("active\n");
    let o = s.rcron(&["-c", conf.to_str().unwrap(), "printf", "%s|", "a  b", "$HOME", "*", "x;y"]);
    assert_eq!(code(&o), 0);
    assert_eq!(stdout(&o), "a  b|$HOME|*|x;y|");
}

#[test]
fn nice_level_is_seen_by_the_job() {
    let s = Sandbox::new("nice");
    s.set_state("active\n");
    let conf = s.conf("nice_level 7\n");
    let o = s.rcron(&["-c", conf.to_str().unwrap(), "nice"]);
    assert_eq!(stdout(&o).trim(), "7");
    let o = s.rcron(&["-c", conf.to_str().unwrap(), "--nice", "12", "nice"]);
    assert_eq!(stdout(&o).trim(), "12", "--nice overrides nice_level");
    let conf = s.conf("");
    let o = s.rcron(&["-c", conf.to_str().unwrap(), "nice"]);
    assert_eq!(stdout(&o).trim(), "19", "default nice_level is 19");
}

#[test]
fn timeout_kills_the_whole_process_group_including_a_background_grandchild() {
    let s = Sandbox::new("timeout");
    let conf = s.conf("");
    s.set_state("active\n");
    let pidfile = s.path("grandchild.pid");
    let script = format!("sleep 300 & echo $! > {}; wait", pidfile.display());
    let o = s.rcron(&["-c", conf.to_str().unwrap(), "--timeout", "1s", "sh", "-c", &script]);
    assert_eq!(code(&o), 124);
    let pid: u32 = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
    assert!(until(Duration::from_secs(5), || !pid_alive(pid)), "grandchild {pid} survived");
    // A job that ignores SIGTERM is SIGKILLed after --kill-after.
    let script = format!("trap '' TERM; sleep 300 & echo $! > {}; wait", pidfile.display());
    let t = std::time::Instant::now();
    let o = s.rcron(&[
        "-c",
        conf.to_str().unwrap(),
        "--timeout",
        "1s",
        "--kill-after",
        "1s",
        "sh",
        "-c",
        &script,
    ]);
    assert_eq!(code(&o), 124);
    assert!(t.elapsed() < Duration::from_secs(10));
    let pid: u32 = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
    assert!(until(Duration::from_secs(5), || !pid_alive(pid)), "grandchild {pid} survived");
}

#[test]
fn lock_skips_an_overlapping_run_of_the_same_command_line() {
    let s = Sandbox::new("lock");
    let conf = s.conf("");
    s.set_state("active\n");
    let count = s.path("count");
    let script = format!("echo x >> {}; sleep 2", count.display());
    let c = conf.to_str().unwrap().to_string();
    let mut first = s.command(RCRON, &["-c", &c, "--lock", "sh", "-c", &script]).spawn().unwrap();
    assert!(until(Duration::from_secs(5), || count.exists()));
    let o = s.rcron(&["-c", &c, "--lock", "sh", "-c", &script]);
    assert_eq!(code(&o), 0, "a skipped run exits 0");
    assert!(first.wait().unwrap().success());
    assert_eq!(std::fs::read_to_string(&count).unwrap(), "x\n", "the overlapping run ran");
    assert!(s.logs().join("\n").contains("status=skip reason=locked"));
    // Once the first run is over, the next one runs.
    let o = s.rcron(&["-c", &c, "--lock", "sh", "-c", &script]);
    assert_eq!(code(&o), 0);
    assert_eq!(std::fs::read_to_string(&count).unwrap(), "x\nx\n");
}

/// Found by the newcomer pass: a FIFO planted at a `--lock` file's name made the wrapper hang
/// in open(2) (opened write-only, it waits for a reader); it opens at once, and the job runs.
#[test]
fn a_fifo_planted_at_the_lock_files_name_does_not_hang_the_wrapper() {
    let s = Sandbox::new("lockfifo");
    let conf = s.conf("");
    s.set_state("active\n");
    let ran = s.path("ran");
    let argv = ["touch", ran.to_str().unwrap()];
    let hash = rcron::ledger::slot::argv_hash(&argv.map(std::ffi::OsString::from));
    std::fs::create_dir_all(s.path("locks")).unwrap();
    let fifo = s.path("locks").join(format!("rcron-{hash:016x}.lock"));
    let made = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let c = conf.to_str().unwrap();
    let mut child =
        s.command(RCRON, &[&["-c", c, "--lock"][..], &argv[..]].concat()).spawn().unwrap();
    let mut status = None;
    let done = until(Duration::from_secs(10), || {
        status = child.try_wait().unwrap();
        status.is_some()
    });
    if !done {
        let _ = child.kill();
    }
    assert!(done, "the wrapper hangs on the FIFO");
    assert_eq!(status.and_then(|s| s.code()), Some(0));
    assert!(ran.exists(), "the job did not run");
}

#[test]
fn signals_to_the_wrapper_reach_the_job() {
    let s = Sandbox::new("signal");
    let conf = s.conf("");
    s.set_state("active\n");
    let got = s.path("got");
    let pidfile = s.path("job.pid");
    let script = format!(
        "echo $$ > {p}; trap 'echo TERM > {g}; exit 5' TERM; while :; do sleep 0.1; done",
        p = pidfile.display(),
        g = got.display()
    );
    // No unshare here: the signal must reach rcron itself, not a wrapper around it.
    let mut child = std::process::Command::new(RCRON)
        .args(["-c", conf.to_str().unwrap(), "sh", "-c", &script])
        .spawn()
        .unwrap();
    assert!(until(Duration::from_secs(5), || pidfile.exists()));
    std::thread::sleep(Duration::from_millis(100));
    unsafe_free_kill(child.id(), "TERM");
    let st = child.wait().unwrap();
    assert_eq!(st.code(), Some(5), "the job's trap decided the exit code");
    assert_eq!(std::fs::read_to_string(&got).unwrap(), "TERM\n");
}

fn unsafe_free_kill(pid: u32, sig: &str) {
    let ok = std::process::Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

#[test]
fn syslog_lines_use_the_configured_facility_and_level() {
    let s = Sandbox::new("syslog");
    let conf = s.write(
        "web.conf",
        &format!(
            "cluster_name web\nstate_file {}\nsyslog_facility LOG_LOCAL3\nsyslog_level LOG_NOTICE\n",
            s.path("state").display()
        ),
    );
    s.set_state("active\n");
    let o = s.rcron(&["-c", conf.to_str().unwrap(), "echo", "hello  world"]);
    assert_eq!(code(&o), 0);
    let logs = s.logs();
    assert_eq!(logs.len(), 2, "one line at start, one at the end: {logs:?}");
    // <PRI> = LOCAL3 (19) * 8 + NOTICE (5) = 157; tag rcron[pid] as openlog(LOG_PID) gave.
    for l in &logs {
        assert!(l.starts_with("<157>"), "{l}");
        assert!(l.contains(" rcron["), "{l}");
    }
    assert!(logs[0].ends_with("]: cluster=web state=active status=start cmd=echo hello  world"));
    let end = &logs[1];
    assert!(end.contains("]: cluster=web state=active status=ok exit=0 dur=0 dur_ms="), "{end}");
    assert!(end.ends_with(" cmd=echo hello  world"), "{end}");
    s.set_state("passive\n");
    s.rcron(&["-c", conf.to_str().unwrap(), "echo", "x"]);
    let logs = s.logs();
    assert!(logs[0].starts_with("<157>"));
    assert!(logs[0].ends_with("]: cluster=web state=passive status=ignore cmd=echo x"));
}

#[test]
fn broken_configs_stop_the_job_with_78_and_name_file_and_line() {
    let s = Sandbox::new("badconf");
    s.set_state("active\n");
    let marker = s.path("ran");
    let m = marker.to_str().unwrap();
    let bad = s.write("bad.conf", "cluster_name ok\nnice_level 99\nwhat is this\n");
    let o = s.rcron(&["-c", bad.to_str().unwrap(), "touch", m]);
    assert_eq!(code(&o), 78);
    assert!(!marker.exists());
    let err = stderr(&o);
    assert!(err.contains("bad.conf:2: nice_level: 99 is out of range"), "{err}");
    assert!(err.contains("bad.conf:3: unknown key `what`"), "{err}");
    assert!(s.logs().join("\n").contains("bad.conf:2:"), "config errors reach syslog too");
    // Random bytes and a 1 MB line: 78, never a panic.
    let mut x: u64 = 0x9e3779b97f4a7c15;
    let noise: Vec<u8> = (0..4096)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let p = s.path("noise.conf");
    std::fs::write(&p, &noise).unwrap();
    let o = s.rcron(&["-c", p.to_str().unwrap(), "touch", m]);
    assert_eq!(code(&o), 78);
    assert!(!stderr(&o).contains("panicked"));
    let p = s.write("long.conf", &format!("cluster_name {}\n", "a".repeat(1 << 20)));
    let o = s.rcron(&["-c", p.to_str().unwrap(), "touch", m]);
    assert_eq!(code(&o), 78);
    assert!(stderr(&o).contains("long.conf:1: line is"), "{}", stderr(&o));
    assert!(!marker.exists());
}

#[test]
fn check_validates_and_prints_every_error() {
    let s = Sandbox::new("check");
    let good = s.conf("interface eth0\nvirtual_router_id 5\n");
    let o = s.rcron(&["--check", "--conf", good.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).contains("OK"));
    let bad = s.write("bad.conf", "priority 0\n\nvrrp_version 4\nvirtual_router_id 3\n");
    let o = s.rcron(&["--check", "--conf", bad.to_str().unwrap()]);
    assert_eq!(code(&o), 78);
    let err = stderr(&o);
    assert!(err.contains("bad.conf:1: priority"), "{err}");
    assert!(err.contains("bad.conf:3: vrrp_version"), "{err}");
    // The etcd keys as the daemon will use them.
    let etcd = s.conf("election etcd\netcd_endpoints HTTP://Node-1/ http://[::1]:2380\n");
    let o = s.rcron(&["--check", "--conf", etcd.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("etcd_endpoints http://node-1:2379 http://[::1]:2380\n"), "{out}");
    assert!(out.contains("etcd_prefix /rcron/test/\n"), "{out}");
}

#[test]
fn status_and_is_active_read_the_state_file() {
    let s = Sandbox::new("status");
    let conf = s.conf("");
    let c = conf.to_str().unwrap();
    s.set_state("active\n");
    assert_eq!(code(&s.rcron(&["--is-active", "-c", c])), 0);
    let o = s.rcron(&["--status", "-c", c]);
    assert!(stdout(&o).contains("state=active\n"), "{}", stdout(&o));
    s.set_state("passive\n");
    assert_eq!(code(&s.rcron(&["--is-active", "-c", c])), 1);
    assert!(stdout(&s.rcron(&["--status", "-c", c])).contains("state=passive\n"));
    // A file broken since (a daemon may still run on it as it was): the status from its valid
    // lines, the errors on stderr, exit 78; --is-active stays strict.
    let broken = s.conf("priority 900\n");
    let b = broken.to_str().unwrap();
    let o = s.rcron(&["--status", "-c", b]);
    assert_eq!(code(&o), 78, "{}", stderr(&o));
    assert!(stdout(&o).contains("state=passive\n"), "{}", stdout(&o));
    assert!(stderr(&o).contains(":4: priority: 900 is out of range"), "{}", stderr(&o));
    assert_eq!(code(&s.rcron(&["--is-active", "-c", b])), 78);
}

#[test]
fn version_and_help() {
    let s = Sandbox::new("version");
    let o = s.rcron(&["--version"]);
    assert_eq!(code(&o), 0);
    let v = stdout(&o);
    assert!(v.starts_with("rcron ") && v.contains("commit ") && v.contains("target "), "{v}");
    let o = s.rcron(&["--help"]);
    assert_eq!(code(&o), 0);
    assert!(stdout(&o).contains("usage: rcron"));
}

/// A sandbox whose config names a control socket of its own: (sandbox, socket, config).
fn with_socket(name: &str) -> (Sandbox, std::path::PathBuf, std::path::PathBuf) {
    let s = Sandbox::new(name);
    let sock = s.path("rcron.sock");
    let conf = s.conf(&format!("virtual_router_id 9\ncontrol_socket {}\n", sock.display()));
    (s, sock, conf)
}

/// A daemon on `sock` that dies holding each of its first `cut` questions unread (a reset, as
/// a worker killed under a waiting wrapper), then answers the next one with `answer`; returns
/// the question it answered (empty when none came within 10 s).
fn fake_daemon(
    sock: &std::path::Path,
    cut: usize,
    answer: &'static str,
) -> std::thread::JoinHandle<String> {
    use std::io::{BufRead, Write};
    let _ = std::fs::remove_file(sock);
    let listener = std::os::unix::net::UnixListener::bind(sock).unwrap();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let accept = || {
            let mut next = None;
            until(Duration::from_secs(10), || {
                next = listener.accept().ok().map(|(c, _)| c);
                next.is_some()
            });
            let c = next?;
            c.set_nonblocking(false).unwrap();
            Some(c)
        };
        for _ in 0..cut {
            let Some(first) = accept() else { return String::new() };
            // Blocks until the question is there, and leaves it unread.
            let fd = std::os::fd::AsRawFd::as_raw_fd(&first);
            let mut peek = [0u8; 1];
            nix::sys::socket::recv(fd, &mut peek, nix::sys::socket::MsgFlags::MSG_PEEK).unwrap();
        }
        let Some(mut next) = accept() else { return String::new() };
        let mut question = String::new();
        std::io::BufReader::new(&next).read_line(&mut question).unwrap();
        next.write_all(answer.as_bytes()).unwrap();
        question
    })
}

/// Found by the newcomer pass: a worker killed while a wrapper's question sat unread in its
/// socket resets the connection (ECONNRESET). That is a daemon gone without an answer, as a
/// close is: the wrapper asks again and runs the job when the restarted daemon says so (it
/// was `daemon_bad_answer`, passive: the slot ran on no node).
#[test]
fn a_daemon_that_dies_holding_the_question_unread_is_asked_again() {
    let (s, sock, conf) = with_socket("reset");
    let daemon = fake_daemon(&sock, 1, "decision=run\nreason=test_answer\nstate=active\n");
    let ran = s.path("ran");
    let o = s.rcron(&["-v", "--conf", conf.to_str().unwrap(), "touch", ran.to_str().unwrap()]);
    let err = stderr(&o);
    let question = daemon.join().unwrap();
    assert_eq!(code(&o), 0, "{err}");
    assert!(ran.exists(), "the job did not run: {err}");
    assert!(err.contains("asking again"), "{err}");
    assert!(err.contains("daemon says run: test_answer"), "{err}");
    assert!(!question.is_empty(), "the second daemon got the question: {err}");
}

/// The run marks in the sandbox's `lock_dir`, as `rcron-ran-JOB/SLOT`.
fn marks(s: &Sandbox) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir(s.path("locks")) else { return Vec::new() };
    let jobs = dir.flatten().filter(|e| e.file_name().to_string_lossy().starts_with("rcron-ran-"));
    let slots = jobs.flat_map(|j| {
        let job = j.file_name().to_string_lossy().into_owned();
        let inner = std::fs::read_dir(j.path()).into_iter().flatten().flatten();
        inner.map(move |e| format!("{job}/{}", e.file_name().to_string_lossy()))
    });
    slots.collect()
}

/// The window the README documents for the run ledger: a daemon killed after its node
/// recorded the slot and before its wrapper had the answer. The restarted daemon finds the
/// slot held by its own node (`ran_here`); the wrapper it cut off knows it never had an
/// answer, and the run mark (ledger::mark) says no wrapper of this node started the slot:
/// it runs. A second wrapper of the slot, cut off the same way, finds the mark and skips.
#[test]
fn a_wrapper_cut_off_from_its_answer_runs_a_slot_its_node_holds_and_no_wrapper_here_started() {
    let (s, sock, conf) = with_socket("unanswered");
    let conf = conf.to_str().unwrap();
    let held = "decision=skip\nreason=ran_here\nran_on=192.0.2.1\nstate=passive\n";
    clear_of_the_turn(3600, 20);
    let wrapper = |ran: &std::path::Path, cut: usize| {
        let daemon = fake_daemon(&sock, cut, held);
        let argv = ["-v", "--conf", conf, "--id", "nightly", "--slot", "1h", "touch"];
        let o = s.rcron(&[&argv[..], &[ran.to_str().unwrap()]].concat());
        assert!(!daemon.join().unwrap().is_empty(), "never asked again: {}", stderr(&o));
        o
    };
    let (first, second) = (s.path("first"), s.path("second"));
    let o = wrapper(&first, 1);
    let err = stderr(&o);
    assert_eq!(code(&o), 0, "{err}");
    assert!(first.exists(), "the slot its node recorded ran nowhere: {err}");
    assert!(err.contains("which no wrapper here started"), "{err}");
    assert_eq!(marks(&s).len(), 1, "{:?}", marks(&s));

    let o = wrapper(&second, 1);
    let err = stderr(&o);
    assert_eq!(code(&o), 0, "{err}");
    assert!(!second.exists(), "the slot ran twice on this node: {err}");
    assert!(err.contains("status=ignore reason=ran_here"), "{err}");

    // Not cut off: `ran_here` is the daemon's last word, as before marks.
    let third = s.path("third");
    std::fs::remove_dir_all(s.path("locks")).unwrap();
    let o = wrapper(&third, 0);
    assert!(!third.exists(), "{}", stderr(&o));
    assert!(marks(&s).is_empty(), "{:?}", marks(&s));
}

/// Every recorded run makes its mark first; a recorded run whose mark exists (another wrapper
/// of this node took the slot) skips. Under etcd a cut-off wrapper is not rescued: its run
/// needs the leader's fence.
#[test]
fn a_recorded_run_takes_the_slots_mark_and_etcd_keeps_ran_here() {
    let (s, sock, conf) = with_socket("recorded");
    let conf = conf.to_str().unwrap();
    clear_of_the_turn(3600, 20);
    let recorded = "decision=run\nreason=recorded\nstate=active\n";
    let mut ran = Vec::new();
    for name in ["first", "second"] {
        let daemon = fake_daemon(&sock, 0, recorded);
        let path = s.path(name);
        let o = s.rcron(&[
            "-v",
            "--conf",
            conf,
            "--id",
            "j",
            "--slot",
            "1h",
            "touch",
            path.to_str().unwrap(),
        ]);
        daemon.join().unwrap();
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        ran.push((path.exists(), stderr(&o)));
    }
    assert!(ran[0].0, "{}", ran[0].1);
    assert!(!ran[1].0, "a second recorded run of the slot on this node: {}", ran[1].1);
    assert!(ran[1].1.contains("status=ignore reason=ran_here"), "{}", ran[1].1);

    let etcd = s.write(
        "etcd.conf",
        &format!(
            "cluster_name test\nstate_file {}\nlock_dir {}\ncontrol_socket {}\n\
             election etcd\netcd_endpoints http://127.0.0.1:1\nnode_name a\n",
            s.path("state").display(),
            s.path("locks").display(),
            sock.display()
        ),
    );
    let daemon = fake_daemon(&sock, 1, "decision=skip\nreason=ran_here\nstate=passive\n");
    let third = s.path("third");
    let o = s.rcron(&[
        "-v",
        "--conf",
        etcd.to_str().unwrap(),
        "--id",
        "k",
        "--slot",
        "1h",
        "touch",
        third.to_str().unwrap(),
    ]);
    assert!(!daemon.join().unwrap().is_empty(), "never asked again: {}", stderr(&o));
    let err = stderr(&o);
    assert!(!third.exists(), "an unfenced run under etcd: {err}");
    assert!(err.contains("reason=ran_here"), "{err}");
    assert!(err.contains("whose daemon died before answering: not run here"), "{err}");
}
