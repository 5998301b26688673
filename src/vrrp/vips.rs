//! The virtual addresses of a master: added when this node becomes master, announced with
//! gratuitous ARP, removed when it stops being master (RFC 5798 section 6.4.3: a new master
//! broadcasts a gratuitous ARP for each address it now owns; section 6.4.3's leaving master
//! stops answering for them). The timing of the announcements is keepalived's: a batch of
//! `garp_master_repeat` per address at once, another `garp_master_delay` seconds later, then
//! one per address every `garp_master_refresh` seconds while master.
//!
//! Owns: which configured addresses this node holds, the announcement schedule, counters.
//! Guarantees: a failure to add, announce or remove is logged and counted, never fatal (the
//! election goes on); [`release_configured`] removes every configured address whether this
//! process added it or a crashed one did.

use crate::config::{Config, Vip};
use crate::os::addr::{self, Held};
use crate::report::Kv;

/// The addresses of one node and their announcement schedule.
pub struct Vips {
    list: Vec<Vip>,
    /// The election interface: the device of an address that names none.
    interface: String,
    repeat: u32,
    delay_ms: u64,
    refresh_ms: u64,
    /// Added and not removed since.
    held: bool,
    /// When the next announcement batch goes out (while held).
    next_garp: Option<u64>,
    /// The delayed batch (garp_master_delay) went out; refreshes follow.
    delayed_sent: bool,
    garps: u64,
    errors: u64,
}

impl Vips {
    pub fn new(cfg: &Config) -> Vips {
        Vips {
            list: cfg.vips.clone(),
            interface: cfg.interface.clone().unwrap_or_default(),
            repeat: cfg.garp_master_repeat,
            delay_ms: u64::from(cfg.garp_master_delay_s) * 1000,
            refresh_ms: u64::from(cfg.garp_master_refresh_s) * 1000,
            held: false,
            next_garp: None,
            delayed_sent: false,
            garps: 0,
            errors: 0,
        }
    }

    fn dev<'a>(&'a self, v: &'a Vip) -> &'a str {
        v.dev.as_deref().unwrap_or(&self.interface)
    }

    /// Becoming master: every address added, then the first batch of gratuitous ARPs.
    pub fn take(&mut self, now: u64) {
        if self.list.is_empty() {
            return;
        }
        let mut errors = 0;
        for v in &self.list {
            let r = addr::index_of(self.dev(v)).and_then(|index| {
                let label = v.label.as_deref();
                addr::add(&Held { index, addr: v.addr, prefix: v.prefix, label })
            });
            if let Err(e) = r {
                errors += 1;
                log::warn!("virtual address {}/{} on {}: {e}", v.addr, v.prefix, self.dev(v));
            }
        }
        self.errors += errors;
        self.held = true;
        self.delayed_sent = false;
        self.announce(self.repeat);
        self.next_garp = self.after_first(now);
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
        let errors = remove_all(&self.list, &self.interface);
        self.errors += errors;
    }

    /// `count` gratuitous ARPs for every held address.
    fn announce(&mut self, count: u32) {
        let (mut sent, mut errors) = (0, 0);
        for v in &self.list {
            let dev = self.dev(v);
            let r = match (addr::index_of(dev), addr::mac_of(dev)) {
                (Ok(index), Some(mac)) => addr::gratuitous_arp(index, mac, v.addr, count),
                (Err(e), _) => Err(e),
                (Ok(_), None) => continue, // no hardware address (a tunnel): no ARP to send
            };
            match r {
                Ok(()) => sent += u64::from(count),
                Err(e) => {
                    errors += 1;
                    log::warn!("gratuitous ARP for {} on {dev}: {e}", v.addr);
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
        if !self.delayed_sent && self.delay_ms > 0 {
            self.announce(self.repeat);
            self.delayed_sent = true;
        } else {
            self.announce(1);
        }
        self.next_garp = (self.refresh_ms > 0).then(|| t.max(now) + self.refresh_ms);
    }

    /// A reload: addresses no longer configured are removed, new ones added and announced
    /// when this node holds them.
    pub fn reconfigure(&mut self, cfg: &Config, now: u64) {
        let next = Vips::new(cfg);
        let gone: Vec<Vip> = self.list.iter().filter(|v| !next.list.contains(v)).cloned().collect();
        if self.held {
            self.errors += remove_all(&gone, &self.interface);
        }
        let (held, garps, errors) = (self.held, self.garps, self.errors);
        *self = Vips { garps, errors, ..next };
        if held {
            self.take(now);
        }
    }

    pub fn status(&self, out: &mut Kv) {
        let shown: Vec<String> = self
            .list
            .iter()
            .map(|v| {
                let label = v.label.as_deref().map(|l| format!(" label {l}")).unwrap_or_default();
                format!("{}/{} dev {}{label}", v.addr, v.prefix, self.dev(v))
            })
            .collect();
        out.put("vips", shown.join(","));
        out.put("vips_held", if self.held { "yes" } else { "no" });
        out.put("garp_sent", self.garps);
        out.put("vip_errors", self.errors);
    }
}

/// Removes `list` (devices defaulting to `interface`); returns the failures.
fn remove_all(list: &[Vip], interface: &str) -> u64 {
    let mut errors = 0;
    for v in list {
        let dev = v.dev.as_deref().unwrap_or(interface);
        let Ok(index) = addr::index_of(dev) else { continue }; // no interface: nothing held
        let h = Held { index, addr: v.addr, prefix: v.prefix, label: None };
        if let Err(e) = addr::remove(&h) {
            errors += 1;
            log::warn!("removing virtual address {} from {dev}: {e}", v.addr);
        }
    }
    errors
}

/// Removes every configured address this node may hold (a worker starting while not master,
/// the supervisor after its worker died): a crash must not leave an address on a node that
/// is passive. Only addresses that are there are removed (no request otherwise).
pub fn release_configured(cfg: &Config) {
    let interface = cfg.interface.clone().unwrap_or_default();
    let present: Vec<Vip> = cfg
        .vips
        .iter()
        .filter(|v| addr::on_interface(v.dev.as_deref().unwrap_or(&interface)).contains(&v.addr))
        .cloned()
        .collect();
    if !present.is_empty() {
        log::info!("removing {} virtual address(es) left while not master", present.len());
        remove_all(&present, &interface);
    }
}
