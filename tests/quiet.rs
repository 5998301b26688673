//! The backup's quiet socket (src/vrrp/socket.rs): the kernel splits the adverts between the
//! socket that wakes the daemon and the one read later, and a backup so woken less still
//! takes over on time.

mod common;
use common::net::*;
use common::*;
use rcron::config::V3Checksum;
use rcron::vrrp::socket::{HEAD_LEN, RX_BATCH, Routine, RxBatch, VrrpSocket};
use rcron::vrrp::wire;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

const LO: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);
const OTHER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

/// A v3 advert from `src` to 127.0.0.1 with its IP header, as rcron sends one.
fn advert(src: Ipv4Addr, priority: u8, interval_cs: u16) -> Vec<u8> {
    let spec = wire::AdvertSpec {
        version: 3,
        vrid: 77,
        priority,
        interval_cs,
        auth: None,
        addrs: &[Ipv4Addr::new(192, 0, 2, 100)],
    };
    let mut buf = [0u8; wire::IP_HEADER_LEN + wire::MAX_MSG];
    let (hdr, msg) = buf.split_at_mut(wire::IP_HEADER_LEN);
    let n = wire::emit(&spec, src, LO, V3Checksum::PseudoHeader, msg).unwrap();
    wire::emit_ipv4_header(src, LO, 1, n, hdr).unwrap();
    buf[..wire::IP_HEADER_LEN + n].to_vec()
}

/// Packets with their arrival stamps (ns), as the quiet socket gives them.
type Stamped = Vec<(Vec<u8>, Option<i64>)>;

/// What each socket of the pair holds: (loud packets, quiet packets with their stamps).
fn read_both(sock: &VrrpSocket, rx: &mut RxBatch) -> (Vec<Vec<u8>>, Stamped) {
    let mut loud = Vec::new();
    while sock.recv_batch(rx).unwrap() > 0 {
        loud.extend(rx.packets().map(<[u8]>::to_vec));
    }
    let mut quiet = Vec::new();
    loop {
        let n = sock.recv_quiet(rx).unwrap();
        quiet.extend(rx.stamped().map(|(p, s)| (p.to_vec(), s)));
        if n < RX_BATCH {
            break;
        }
    }
    (loud, quiet)
}

fn wall_ns() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as i64
}

#[test]
fn the_kernel_sends_only_the_masters_repeats_to_the_quiet_socket_stamped() {
    require_root();
    // On loopback, in this test's namespace: rcron's own packets come back to it.
    let mut sock = VrrpSocket::open("lo", Some(LO), LO).unwrap();
    let mut rx = RxBatch::new();
    let _ = read_both(&sock, &mut rx);
    let master = advert(LO, 150, 10);
    sock.send(&master, LO).unwrap();
    let (loud, quiet) = read_both(&sock, &mut rx);
    assert_eq!((loud.len(), quiet.len()), (1, 0), "no routine: all wake");
    // (The kernel fills in the IP checksum: compared from the addresses on.)
    assert_eq!(loud[0][12..], master[12..]);

    let head: [u8; HEAD_LEN] = master[20..20 + HEAD_LEN].try_into().unwrap();
    sock.set_routine(Some(Routine { src: LO, head })).unwrap();
    let sent = wall_ns();
    for _ in 0..3 {
        sock.send(&master, LO).unwrap();
    }
    let (loud, quiet) = read_both(&sock, &mut rx);
    assert!(loud.is_empty(), "a repeat woke the daemon: {loud:?}");
    assert_eq!(quiet.len(), 3, "the repeats wait on the quiet socket");
    for (p, stamp) in &quiet {
        assert_eq!(p[12..], master[12..]);
        let stamp = stamp.expect("a quiet packet carries its arrival stamp");
        assert!((sent..=wall_ns()).contains(&stamp), "stamp {stamp} outside the send");
    }

    // Everything that is not a repeat wakes it at once, and only once.
    let resign = advert(LO, 0, 10);
    let other_priority = advert(LO, 140, 10);
    let other_interval = advert(LO, 150, 20);
    let other_sender = advert(OTHER, 150, 10);
    let short = master[..wire::IP_HEADER_LEN + 4].to_vec();
    for p in [&resign, &other_priority, &other_interval, &other_sender, &short] {
        // The kernel sets the total length to what it is given (raw(7), IP_HDRINCL).
        sock.send(p, LO).unwrap();
        let (loud, quiet) = read_both(&sock, &mut rx);
        assert_eq!(loud.len(), 1, "not a repeat, priority {}: {loud:?}", p[21]);
        assert!(quiet.is_empty(), "not a repeat, yet quiet: {quiet:?}");
    }

    sock.set_routine(None).unwrap();
    sock.send(&master, LO).unwrap();
    let (loud, quiet) = read_both(&sock, &mut rx);
    assert_eq!((loud.len(), quiet.len()), (1, 0), "the routine lifted: all wake again");
}

/// Voluntary context switches of `pid`: one per sleep, so one per wake-up.
fn wake_ups(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap()
}

/// Hosts A (priority 150, started first and active) and B (100), with `v3`'s keys: the lab
/// and both supervisors.
fn pair(tag: &str, v3: &str) -> (Lab, u32, u32) {
    let lab = Lab::new(tag, 2);
    let ca = lab.rcron_conf(0, &format!("{v3}priority 150\n"));
    let cb = lab.rcron_conf(1, &format!("{v3}priority 100\n"));
    let sup_a = lab.hosts[0].start_rcron(&ca);
    assert!(until(Duration::from_secs(5), || lab.hosts[0].state() == "active"));
    let sup_b = lab.hosts[1].start_rcron(&cb);
    (lab, sup_a, sup_b)
}

fn counters(h: &Host) -> (u64, u64) {
    let s = h.status_map();
    let n = |k: &str| s.get(k).and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("{k}: {s:?}"));
    (n("rx_adverts"), n("rx_deferred"))
}

#[test]
fn a_backup_wakes_about_once_per_master_down_interval_and_still_takes_over_on_time() {
    require_root();
    let (lab, sup_a, sup_b) = pair("qu", "virtual_router_id 19\nvrrp_version 3\nadvert_int 0.1\n");
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(lab.hosts[1].state(), "passive");
    let worker = Host::worker_of(sup_b).expect("B's worker");

    let w0 = wake_ups(worker);
    let (rx0, deferred0) = counters(&lab.hosts[1]);
    std::thread::sleep(Duration::from_secs(5));
    let (rx1, deferred1) = counters(&lab.hosts[1]);
    let w1 = wake_ups(worker);
    let (rx, deferred, wakes) = (rx1 - rx0, deferred1 - deferred0, w1 - w0);
    eprintln!("5 s at 10 adverts/s: {rx} adverts, {deferred} read late, {wakes} wake-ups");
    assert!(rx >= 40, "B heard {rx} adverts in 5 s at 10/s");
    assert!(deferred * 10 >= rx * 8, "only {deferred} of {rx} adverts were read late");
    // Master_Down_Interval 361 ms: a wake-up every three adverts, and the two status calls.
    assert!(wakes * 10 <= rx * 6, "{wakes} wake-ups for {rx} adverts");

    // The timer still runs from each advert's arrival: no takeover before Master_Down.
    let t = Instant::now();
    Host::crash(sup_a);
    assert!(until(Duration::from_secs(3), || lab.hosts[1].state() == "active"));
    let took = t.elapsed();
    assert!(took >= Duration::from_millis(250), "B took over {took:?} after A died");
}

#[test]
fn a_backup_frozen_with_a_backlog_of_repeats_does_not_take_over_from_a_live_master() {
    require_root();
    let (lab, _, sup_b) = pair("qf", "virtual_router_id 29\nvrrp_version 3\nadvert_int 0.01\n");
    std::thread::sleep(Duration::from_secs(1));
    // 2.62 s: a backlog of ~260 repeats, more than one read's worth (the node used to read
    // 256 and run the timer from the 256th: a takeover); 4 s: more than the receive buffer
    // holds, so the newest are lost.
    for freeze_ms in [2620, 4000] {
        let worker = Host::worker_of(sup_b).expect("B's worker");
        Host::signal(sup_b, "STOP");
        Host::signal(worker, "STOP");
        std::thread::sleep(Duration::from_millis(freeze_ms));
        Host::signal(worker, "CONT");
        Host::signal(sup_b, "CONT");
        assert!(
            !lab.hosts[1].ever_active(Duration::from_millis(1500), Duration::from_millis(2)),
            "B took over from a live master after a {freeze_ms} ms freeze:\n{}",
            lab.hosts[1].log("rcron.log")
        );
    }
    let log = lab.hosts[1].log("rcron.log");
    assert!(!log.contains("reason=master_down"), "{log}");
    assert_eq!(lab.hosts[0].state(), "active");
}
