//! The virtual addresses of a master: added when this node becomes master, announced with
//! gratuitous ARP, removed when it stops being master (RFC 5798 section 6.4.3: a new master
//! broadcasts a gratuitous ARP for each address it now owns). The timing of the
//! announcements is keepalived's: a batch of `garp_master_repeat` per address at once, another
//! `garp_master_delay` seconds later, then one per address every `garp_master_refresh` seconds
//! while master.
//!
//! Owns: which configured addresses this node holds, the announcement schedule, counters.
//! Guarantees: every address has its device resolved (`interface` when it names none), so a
//! reload that changes `interface` moves the addresses; while master, an address found
//! missing (deleted by hand, its interface created late) is added again at the next link
//! event; a failure to add, announce or remove is logged and counted, never fatal (the
//! election goes on); [`release_configured`] removes every configured address whether this
//! process added it or a crashed one did.

use crate::config::{Config, Vip};
use crate::os::addr::{self, Garp, Held, Link, Requests};
use crate::report::Kv;

/// The addresses of one node and their announcement schedule.
pub struct Vips {
    /// As configured, each with its device filled in.
    list: Vec<Vip>,
    repeat: u32,
    delay_ms: u64,
    refresh_ms: u64,
    /// Taken (this node is master) and not released since.
    held: bool,
    /// When the next announcement batch goes out (while held).
    next_garp: Option<u64>,
    /// The delayed batch (garp_master_delay) went out; refreshes follow.
    delayed_sent: bool,
    garps: u64,
    errors: u64,
    /// The packet socket for gratuitous ARPs, opened at the first announcement and kept:
    /// closing one waits for an RCU grace period (packet(7) release: 5 to 15 ms here), which
    /// a socket per takeover put between the first advert and the state file. Bound to no
    /// protocol, it receives nothing.
    garp: Option<Garp>,
}

/// `cfg`'s addresses, each with its device (`interface` when it names none).
fn resolved(cfg: &Config) -> Vec<Vip> {
    let interface = cfg.interface.clone().unwrap_or_default();
    let with_dev =
        |v: &Vip| Vip { dev: Some(v.dev.clone().unwrap_or(interface.clone())), ..v.clone() };
    cfg.vips.iter().map(with_dev).collect()
}

fn dev(v: &Vip) -> &str {
    v.dev.as_deref().unwrap_or_default()
}

impl Vips {
    pub fn new(cfg: &Config) -> Vips {
        Vips {
            list: resolved(cfg),
            repeat: cfg.garp_master_repeat,
            delay_ms: u64::from(cfg.garp_master_delay_s) * 1000,
            refresh_ms: u64::from(cfg.garp_master_refresh_s) * 1000,
            held: false,
            next_garp: None,
            delayed_sent: false,
            garps: 0,
            errors: 0,
            garp: None,
        }
    }

    /// Becoming master: every address added, then the first batch of gratuitous ARPs. One
    /// interface lookup and one rtnetlink socket for the whole batch, and the kept packet
    /// socket: this runs between two adverts.
    pub fn take(&mut self, now: u64) {
        if self.list.is_empty() {
            return;
        }
        let t = std::time::Instant::now();
        let links = addr::links();
        let there = self.add(&links, |_| true);
        let added = there.iter().filter(|&&b| b).count();
        self.held = true;
        self.delayed_sent = false;
        // Announced as added (no second interface dump between the advert and the file).
        self.announce(&links, self.repeat, Some(&there));
        self.next_garp = self.after_first(now);
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        log::info!(
            "virtual addresses: {added} of {} added and announced in {ms:.1} ms",
            self.list.len()
        );
    }

    /// Adds the addresses `which` picks; says for each of the list whether it was added (or
    /// was there already).
    fn add(&mut self, links: &[Link], which: impl Fn(&Vip) -> bool) -> Vec<bool> {
        let mut there = vec![false; self.list.len()];
        let req = match Requests::open() {
            Ok(r) => r,
            Err(e) => {
                self.errors += 1;
                log::warn!("virtual addresses: rtnetlink socket: {e}");
                return there;
            }
        };
        let mut errors = 0;
        for (i, v) in self.list.iter().enumerate().filter(|(_, v)| which(v)) {
            let r = match link(links, v) {
                Some(l) => {
                    let label = v.label.as_deref();
                    req.add(&Held { index: l.index, addr: v.addr, prefix: v.prefix, label })
                }
                None => Err(std::io::Error::from_raw_os_error(libc::ENODEV)),
            };
            match r {
                Ok(()) => there[i] = true,
                Err(e) => {
                    // Someone else's copy (counted, as before): there all the same.
                    there[i] = e.raw_os_error() == Some(libc::EEXIST);
                    errors += 1;
                    log::warn!("virtual address {}/{} on {}: {e}", v.addr, v.prefix, dev(v));
                }
            }
        }
        self.errors += errors;
        there
    }

    /// While master, after a link or address change: an address that is missing (deleted by
    /// someone else, or its interface only now exists) is added again and announced.
    pub fn verify(&mut self) {
        if !self.held {
            return;
        }
        let now = addr::all_ipv4();
        let missing: Vec<Vip> = self.list.iter().filter(|v| !present(v, &now)).cloned().collect();
        if missing.is_empty() {
            return;
        }
        for v in &missing {
            log::warn!("virtual address {} is not on {}: adding it again", v.addr, dev(v));
        }
        let links = addr::links();
        if self.add(&links, |v| missing.contains(v)).contains(&true) {
            self.announce(&links, self.repeat, None);
        }
    }

    /// When the batch after the first goes out: the delayed one, or the first refresh.
    fn after_first(&self, now: u64) -> Option<u64> {
        match (self.delay_ms, self.refresh_ms) {
            (0, 0) => None,
            (0, r) => Some(now + r),
            (d, _) => Some(now + d),
        }
    }

    /// Leaving master (or stopping): every address removed.
    pub fn release(&mut self) {
        if !self.held {
            return;
        }
        self.held = false;
        self.next_garp = None;
        self.errors += remove_all(&self.list);
        log::info!("virtual addresses: {} removed", self.list.len());
    }

    /// `count` gratuitous ARPs for every address that is there: per `there` (as [`Vips::add`]
    /// says), else as the interfaces say now.
    fn announce(&mut self, links: &[Link], count: u32, there: Option<&[bool]>) {
        if self.garp.is_none() {
            match Garp::open() {
                Ok(g) => self.garp = Some(g),
                Err(e) => {
                    self.errors += 1;
                    log::warn!("gratuitous ARP: packet socket: {e}");
                    return;
                }
            }
        }
        let Some(garp) = &self.garp else { return };
        let (mut sent, mut errors) = (0, 0);
        let now = if there.is_none() { addr::all_ipv4() } else { Vec::new() };
        let is_there =
            |i: usize, v: &Vip| there.map_or_else(|| present(v, &now), |t| t.get(i) == Some(&true));
        for (_, v) in self.list.iter().enumerate().filter(|&(i, v)| is_there(i, v)) {
            let Some(l) = link(links, v) else { continue };
            match garp.send(l, v.addr, count) {
                Ok(n) => sent += u64::from(n),
                Err(e) => {
                    errors += 1;
                    log::warn!("gratuitous ARP for {} on {}: {e}", v.addr, dev(v));
                }
            }
        }
        self.garps += sent;
        self.errors += errors;
    }

    /// When [`Vips::poll`] has a batch to send (CLOCK_MONOTONIC ms).
    pub fn poll_at(&self) -> Option<u64> {
        self.next_garp
    }

    /// Sends the batch that is due: the delayed one (`garp_master_repeat` each), then the
    /// refreshes (one each).
    pub fn poll(&mut self, now: u64) {
        let Some(t) = self.next_garp.filter(|&t| now >= t && self.held) else { return };
        let links = addr::links();
        if !self.delayed_sent && self.delay_ms > 0 {
            self.announce(&links, self.repeat, None);
            self.delayed_sent = true;
        } else {
            self.announce(&links, 1, None);
        }
        self.next_garp = (self.refresh_ms > 0).then(|| t.max(now) + self.refresh_ms);
    }

    /// A reload: addresses no longer configured (or now on another device, prefix or
    /// label) are removed; the new list is added and announced when this node holds it.
    pub fn reconfigure(&mut self, cfg: &Config, now: u64) {
        let next = Vips::new(cfg);
        let gone: Vec<Vip> = self.list.iter().filter(|v| !next.list.contains(v)).cloned().collect();
        if self.held {
            self.errors += remove_all(&gone);
        }
        let (held, garps, errors, garp) = (self.held, self.garps, self.errors, self.garp.take());
        *self = Vips { garps, errors, garp, ..next };
        if held {
            self.take(now);
        }
    }

    /// `vips` (as configured), `vips_held` (from the kernel, whatever the role: `yes`, every
    /// address is on its interface; `partly`; `no`; on a backup anything but `no` is a
    /// duplicate someone added), `garp_sent`, `vip_errors`.
    pub fn status(&self, out: &mut Kv) {
        let shown: Vec<String> = self
            .list
            .iter()
            .map(|v| {
                let label = v.label.as_deref().map(|l| format!(" label {l}")).unwrap_or_default();
                format!("{}/{} dev {}{label}", v.addr, v.prefix, dev(v))
            })
            .collect();
        out.put("vips", shown.join(","));
        let now = if self.list.is_empty() { Vec::new() } else { addr::all_ipv4() };
        let there = self.list.iter().filter(|v| present(v, &now)).count();
        let held = match there {
            0 => "no",
            n if n == self.list.len() => "yes",
            _ => "partly",
        };
        out.put("vips_held", held);
        out.put("garp_sent", self.garps);
        out.put("vip_errors", self.errors);
    }
}

/// The address is on its device in `now` ([`addr::all_ipv4`]).
fn present(v: &Vip, now: &[(String, std::net::Ipv4Addr)]) -> bool {
    now.iter().any(|(n, ip)| *ip == v.addr && n == dev(v))
}

/// Removes `list` (devices resolved); returns the failures.
fn remove_all(list: &[Vip]) -> u64 {
    if list.is_empty() {
        return 0;
    }
    let req = match Requests::open() {
        Ok(r) => r,
        Err(e) => {
            log::warn!("virtual addresses: rtnetlink socket: {e}");
            return 1;
        }
    };
    let links = addr::links();
    let mut errors = 0;
    for v in list {
        let Some(l) = link(&links, v) else { continue }; // no interface: nothing held
        let h = Held { index: l.index, addr: v.addr, prefix: v.prefix, label: None };
        if let Err(e) = req.remove(&h) {
            errors += 1;
            log::warn!("removing virtual address {} from {}: {e}", v.addr, dev(v));
        }
    }
    errors
}

/// `v`'s interface in `links`.
fn link<'a>(links: &'a [Link], v: &Vip) -> Option<&'a Link> {
    links.iter().find(|l| l.name == dev(v))
}

/// Removes every address of `cfg` that is there now, saying `why` in the log: a worker
/// starting while not master, or the supervisor when no worker runs (a crashed or hung one
/// may have been master). Only addresses that are there are removed.
pub fn release_configured(cfg: &Config, why: &str) {
    if cfg.vips.is_empty() {
        return; // no interface list to read at every start and worker death
    }
    let now = addr::all_ipv4();
    let present: Vec<Vip> = resolved(cfg).into_iter().filter(|v| present(v, &now)).collect();
    if !present.is_empty() {
        log::info!("removing {} virtual address(es): {why}", present.len());
        remove_all(&present);
    }
}
