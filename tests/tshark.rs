//! rcron's adverts as Wireshark sees them (issue 3): two rcron daemons in network namespaces
//! (host 0 priority 150 = master, host 1 priority 100 = backup); tshark captures on the
//! backup's link, and `tshark -V` must decode every advert of the master as valid VRRP with a
//! correct checksum, the configured version / VRID / priority / interval / addresses /
//! password, IP TTL 255, TOS 0xc0 (DSCP CS6), a correct IP header checksum, and the right
//! destination: the peer in unicast, 224.0.0.18 (MAC 01:00:5e:00:00:12) in multicast. The
//! interval between captured adverts is the configured one, and the advert a master sends
//! when it stops (SIGTERM) carries priority 0.
//!
//! The VRRPv3 checksum check is made to bite: each capture is decoded with both settings of
//! tshark's `vrrp.v3_checksum_as_in_v2` preference, and exactly the one matching the form
//! rcron was configured to send must say Good (keepalived's default, a pseudo-header, with
//! the preference FALSE; RFC 9568's `v3_checksum rfc9568` with TRUE).
//!
//! Needs root and `tshark`: fails, never skips, without them.

mod common;
use common::net::*;
use common::*;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const V3_AS_V2: &str = "vrrp.v3_checksum_as_in_v2";

fn check_tshark() {
    let ok = Command::new("tshark").arg("-v").output().map(|o| o.status.success()).unwrap_or(false);
    assert!(ok, "tshark is not installed: this test needs it (apt-get install tshark)");
    // The preference these tests rely on must exist under this name.
    let o = Command::new("tshark").args(["-G", "defaultprefs"]).output().unwrap();
    assert!(
        String::from_utf8_lossy(&o.stdout).contains(V3_AS_V2),
        "this tshark has no {V3_AS_V2} preference"
    );
}

/// An rcron config for host `i` in multicast mode: no unicast_src_ip, no unicast_peer.
fn multicast_conf(lab: &Lab, i: usize, extra: &str) -> PathBuf {
    let h = &lab.hosts[i];
    let text = format!(
        "cluster_name lab\ninterface vr0\n{extra}\nstate_file {d}/state\n\
         control_socket {d}/rcron.sock\npid_file {d}/rcrond.pid\nlock_dir {d}\n",
        d = h.dir.display()
    );
    let p = h.dir.join("rcron.conf");
    std::fs::write(&p, text).unwrap();
    p
}

/// tshark capturing on host `h`'s vr0 into a pcap file, in the background.
struct Capture {
    child: std::process::Child,
    pcap: PathBuf,
    out: PathBuf,
    err: PathBuf,
}

impl Capture {
    /// Captures up to `count` packets matching the capture filter `filter`, for at most
    /// `secs` (one summary line per packet on stdout, `-P`); returns once tshark has
    /// captured `live` packets (0: once it says it is capturing).
    fn start(h: &Host, name: &str, filter: &str, count: u32, secs: u32, live: usize) -> Capture {
        let pcap = h.dir.join(format!("{name}.pcapng"));
        let out = h.dir.join(format!("{name}.out"));
        let err = h.dir.join(format!("{name}.err"));
        let child = Command::new("ip")
            .args(["netns", "exec", &h.ns, "tshark", "-n", "-l", "-P", "-i", "vr0", "-f", filter])
            .args(["-c", &count.to_string(), "-a", &format!("duration:{secs}")])
            .arg("-w")
            .arg(&pcap)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap())
            .spawn()
            .unwrap();
        let c = Capture { child, pcap, out, err };
        let ok = until(Duration::from_secs(20), || {
            std::fs::read_to_string(&c.err).unwrap_or_default().contains("Capturing on")
                && c.seen() >= live
        });
        assert!(ok, "tshark did not start capturing:\n{}", c.stderr());
        c
    }

    /// Packets captured so far.
    fn seen(&self) -> usize {
        std::fs::read_to_string(&self.out).unwrap_or_default().lines().count()
    }

    /// Stops the capture now (SIGINT: tshark closes the file properly).
    fn stop(self) -> PathBuf {
        Host::signal(self.child.id(), "INT");
        self.finish()
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.err).unwrap_or_default()
    }

    /// Waits for tshark to finish; returns the pcap.
    fn finish(mut self) -> PathBuf {
        let t = Instant::now();
        let st = loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                break st;
            }
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "tshark did not finish:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(st.success(), "tshark failed ({st}):\n{}", self.stderr());
        self.pcap.clone()
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `tshark -r PCAP -V` with IP header checksum validation on and `v3_checksum_as_in_v2`
/// set as given; returns the decoded frames, one block of trimmed lines each.
fn decode(pcap: &Path, v3_as_v2: bool) -> Vec<String> {
    let o = Command::new("tshark")
        .arg("-r")
        .arg(pcap)
        .args(["-n", "-V", "-o", "ip.check_checksum:TRUE", "-o"])
        .arg(format!("{V3_AS_V2}:{}", if v3_as_v2 { "TRUE" } else { "FALSE" }))
        .output()
        .unwrap();
    assert!(o.status.success(), "tshark -r failed: {}", stderr(&o));
    let mut frames: Vec<String> = Vec::new();
    for line in stdout(&o).lines() {
        if line.starts_with("Frame ") {
            frames.push(String::new());
        }
        if let Some(f) = frames.last_mut() {
            f.push_str(line.trim());
            f.push('\n');
        }
    }
    frames
}

/// The value after `key: ` on the first line of `frame` that starts with it.
fn field<'a>(frame: &'a str, key: &str) -> Option<&'a str> {
    frame.lines().find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix(": ")))
}

/// What every advert of the master must decode to.
struct Expect {
    dst: &'static str,
    eth_dst: Option<&'static str>,
    version: u8,
    vrid: u8,
    prio: u8,
    /// v2: seconds; v3: centiseconds.
    interval: u32,
    vips: &'static [&'static str],
    auth: Option<&'static str>,
}

impl Expect {
    /// Asserts every line this advert must show; `checksum_good`: what tshark must say of the
    /// VRRP checksum with the preference used for this decode.
    fn check(&self, frame: &str, prio: u8, checksum_good: bool) {
        let mut want: Vec<String> = vec![
            format!("Internet Protocol Version 4, Src: 192.0.2.11, Dst: {}", self.dst),
            "Time to Live: 255".into(),
            "Protocol: VRRP (112)".into(),
            "Differentiated Services Field: 0xc0 (DSCP: CS6, ECN: Not-ECT)".into(),
            "[Header checksum status: Good]".into(),
            "Virtual Router Redundancy Protocol".into(),
            format!("Version {}, Packet type 1 (Advertisement)", self.version),
            format!("Virtual Rtr ID: {}", self.vrid),
            format!("Addr Count: {}", self.vips.len()),
        ];
        if let Some(mac) = self.eth_dst {
            want.push(format!("Destination: {mac}"));
        }
        for v in self.vips {
            want.push(format!("IP Address: {v}"));
        }
        if self.version == 2 {
            want.push(format!("Adver Int: {}", self.interval));
            match self.auth {
                Some(p) => {
                    want.push(
                        "Auth Type: Simple Text Authentication [RFC 2338] / Reserved [RFC 3768] (1)"
                            .into(),
                    );
                    want.push(format!("Authentication String: {p}"));
                }
                None => want.push("Auth Type: No Authentication (0)".into()),
            }
        } else {
            // v3: 4 reserved bits, then 12 bits of centiseconds.
            want.push("0000 .... = Reserved: 0".into());
            want.push(format!(
                "{} = Adver Int: {}",
                v3_interval_bits(self.interval),
                self.interval
            ));
        }
        want.push(format!("[Checksum Status: {}]", if checksum_good { "Good" } else { "Bad" }));
        for w in &want {
            assert!(
                frame.lines().any(|l| l == w),
                "tshark's decode lacks the line {w:?}:\n{frame}"
            );
        }
        let p = field(frame, "Priority").unwrap_or("");
        assert!(
            p == prio.to_string() || p.starts_with(&format!("{prio} (")),
            "priority {p:?}, expected {prio}:\n{frame}"
        );
        if checksum_good {
            let c = field(frame, "Checksum").unwrap_or("");
            assert!(c.ends_with("[correct]"), "VRRP checksum {c:?}:\n{frame}");
            for bad in ["Malformed", "Expert Info (Warn", "Expert Info (Error", "incorrect"] {
                assert!(!frame.contains(bad), "tshark flags the packet ({bad}):\n{frame}");
            }
        }
    }
}

/// tshark's bit picture of the 12-bit v3 interval: `.... 0000 0000 1010` for 10.
fn v3_interval_bits(cs: u32) -> String {
    let b = format!("{cs:012b}");
    format!(".... {} {} {}", &b[0..4], &b[4..8], &b[8..12])
}

/// Starts rcron on both hosts (host 0 priority 150, host 1 priority 100) and waits until
/// host 0 is master and host 1 its backup, following host 0.
fn start_pair(lab: &Lab, confs: &[PathBuf; 2], bound: Duration) -> [u32; 2] {
    for c in confs {
        let o =
            Command::new(RCRON).args(["--check", "--conf", c.to_str().unwrap()]).output().unwrap();
        assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    }
    let pids = [lab.hosts[0].start_rcron(&confs[0]), lab.hosts[1].start_rcron(&confs[1])];
    let ok = until(bound, || {
        lab.hosts[0].state() == "active"
            && lab.hosts[1].state() == "passive"
            && lab.hosts[1].status_field("master").as_deref() == Some("192.0.2.11")
    });
    assert!(
        ok,
        "no election: host0 {:?} host1 {:?}\n{}\n{}",
        lab.hosts[0].state(),
        lab.hosts[1].state(),
        lab.hosts[0].log("rcron.log"),
        lab.hosts[1].log("rcron.log")
    );
    pids
}

/// Captures 5 adverts on the backup and checks each, and their spacing.
fn capture_adverts(lab: &Lab, e: &Expect, v3_as_v2: bool, advert: Duration) {
    let cap = Capture::start(&lab.hosts[1], "adverts", "ip proto 112", 5, 10, 0);
    let pcap = cap.finish();
    let frames = decode(&pcap, v3_as_v2);
    assert_eq!(frames.len(), 5, "expected 5 adverts in 10 s, got {}", frames.len());
    for f in &frames {
        e.check(f, e.prio, true);
    }
    // The adverts come at the configured interval (generous bounds: a shared machine).
    for f in &frames[1..] {
        let d: f64 = field(f, "[Time delta from previous captured frame")
            .and_then(|v| v.trim_end_matches(']').split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no time delta:\n{f}"));
        let a = advert.as_secs_f64();
        assert!(d > a * 0.5 && d < a * 1.5 + 0.05, "adverts {d} s apart, configured {a} s:\n{f}");
    }
    if e.version == 3 {
        // The other checksum form must NOT match: the check above was a real one.
        for f in decode(&pcap, !v3_as_v2) {
            e.check(&f, e.prio, false);
        }
    }
}

/// The master stops (SIGTERM): its last advert carries priority 0, still well formed.
fn capture_resign(lab: &Lab, e: &Expect, v3_as_v2: bool, master_pid: u32) {
    // Capture the master's adverts; stop it once the capture is seen to be live.
    let cap = Capture::start(
        &lab.hosts[1],
        "resign",
        "ip proto 112 and src host 192.0.2.11",
        1000,
        30,
        2,
    );
    Host::signal(master_pid, "TERM");
    let gone = until(Duration::from_secs(8), || {
        lab.hosts[0].reap();
        !pid_alive(master_pid)
    });
    assert!(gone, "the master did not stop on SIGTERM");
    std::thread::sleep(Duration::from_millis(300));
    let pcap = cap.stop();
    let all = decode(&pcap, v3_as_v2);
    assert!(all.len() >= 2, "tshark captured {} packets", all.len());
    let prio0 = |f: &String| field(f, "Priority").is_some_and(|p| p == "0" || p.starts_with("0 "));
    let frames: Vec<&String> = all.iter().filter(|f| prio0(f)).collect();
    assert!(
        all.last().is_some_and(prio0),
        "the stopped master's last advert is not priority 0:\n{}",
        all.last().unwrap()
    );
    assert_eq!(
        frames.len(),
        1,
        "expected exactly one priority-0 advert from the stopped master\n--- master's log:\n{}\n--- backup's log:\n{}\n--- tshark:\n{}",
        lab.hosts[0].log("rcron.log"),
        lab.hosts[1].log("rcron.log"),
        std::fs::read_to_string(lab.hosts[1].dir.join("resign.err")).unwrap_or_default()
    );
    e.check(frames[0], 0, true);
    assert!(
        until(Duration::from_secs(5), || lab.hosts[1].state() == "active"),
        "the backup did not take over from the resigning master"
    );
}

#[test]
fn tshark_decodes_v2_unicast_pass_auth_one_vip() {
    check_tshark();
    let lab = Lab::new("tsv2u", 2);
    let extra = |prio| {
        format!(
            "virtual_router_id 42\npriority {prio}\nvrrp_version 2\nadvert_int 1\n\
             auth_pass secret12\nvirtual_ipaddress 192.0.2.100\n"
        )
    };
    let confs = [lab.rcron_conf(0, &extra(150)), lab.rcron_conf(1, &extra(100))];
    let pids = start_pair(&lab, &confs, Duration::from_secs(8));
    let e = Expect {
        dst: "192.0.2.12",
        eth_dst: None,
        version: 2,
        vrid: 42,
        prio: 150,
        interval: 1,
        vips: &["192.0.2.100"],
        auth: Some("secret12"),
    };
    capture_adverts(&lab, &e, false, Duration::from_secs(1));
    capture_resign(&lab, &e, false, pids[0]);
}

#[test]
fn tshark_decodes_v2_multicast_two_vips() {
    check_tshark();
    let lab = Lab::new("tsv2m", 2);
    let extra = |prio| {
        format!(
            "virtual_router_id 7\npriority {prio}\nvrrp_version 2\nadvert_int 1\n\
             virtual_ipaddress 192.0.2.100 192.0.2.101\n"
        )
    };
    let confs = [multicast_conf(&lab, 0, &extra(150)), multicast_conf(&lab, 1, &extra(100))];
    start_pair(&lab, &confs, Duration::from_secs(8));
    let e = Expect {
        dst: "224.0.0.18",
        eth_dst: Some("01:00:5e:00:00:12"),
        version: 2,
        vrid: 7,
        prio: 150,
        interval: 1,
        vips: &["192.0.2.100", "192.0.2.101"],
        auth: None,
    };
    capture_adverts(&lab, &e, false, Duration::from_secs(1));
}

#[test]
fn tshark_decodes_v3_unicast_one_vip() {
    check_tshark();
    let lab = Lab::new("tsv3u", 2);
    let extra = |prio| {
        format!(
            "virtual_router_id 200\npriority {prio}\nvrrp_version 3\nadvert_int 0.1\n\
             virtual_ipaddress 192.0.2.100\n"
        )
    };
    let confs = [lab.rcron_conf(0, &extra(150)), lab.rcron_conf(1, &extra(100))];
    let pids = start_pair(&lab, &confs, Duration::from_secs(3));
    let e = Expect {
        dst: "192.0.2.12",
        eth_dst: None,
        version: 3,
        vrid: 200,
        prio: 150,
        interval: 10,
        vips: &["192.0.2.100"],
        auth: None,
    };
    // Default v3 checksum: keepalived's, with the pseudo-header (tshark's default too).
    capture_adverts(&lab, &e, false, Duration::from_millis(100));
    capture_resign(&lab, &e, false, pids[0]);
}

#[test]
fn tshark_decodes_v3_multicast_one_vip() {
    check_tshark();
    let lab = Lab::new("tsv3m", 2);
    let extra = |prio| {
        format!(
            "virtual_router_id 9\npriority {prio}\nvrrp_version 3\nadvert_int 0.1\n\
             virtual_ipaddress 192.0.2.100\n"
        )
    };
    let confs = [multicast_conf(&lab, 0, &extra(150)), multicast_conf(&lab, 1, &extra(100))];
    let pids = start_pair(&lab, &confs, Duration::from_secs(3));
    let e = Expect {
        dst: "224.0.0.18",
        eth_dst: Some("01:00:5e:00:00:12"),
        version: 3,
        vrid: 9,
        prio: 150,
        interval: 10,
        vips: &["192.0.2.100"],
        auth: None,
    };
    capture_adverts(&lab, &e, false, Duration::from_millis(100));
    capture_resign(&lab, &e, false, pids[0]);
}

#[test]
fn tshark_decodes_v3_rfc9568_checksum() {
    check_tshark();
    let lab = Lab::new("tsv3r", 2);
    let extra = |prio| {
        format!(
            "virtual_router_id 201\npriority {prio}\nvrrp_version 3\nadvert_int 0.5\n\
             virtual_ipaddress 192.0.2.100\nv3_checksum rfc9568\n"
        )
    };
    let confs = [lab.rcron_conf(0, &extra(150)), lab.rcron_conf(1, &extra(100))];
    start_pair(&lab, &confs, Duration::from_secs(5));
    let e = Expect {
        dst: "192.0.2.12",
        eth_dst: None,
        version: 3,
        vrid: 201,
        prio: 150,
        interval: 50,
        vips: &["192.0.2.100"],
        auth: None,
    };
    // No pseudo-header: what tshark checks with v3_checksum_as_in_v2 TRUE.
    capture_adverts(&lab, &e, true, Duration::from_millis(500));
}
