//! The run ledger on this node: the book (`book.rs`) and its UDP socket, as the worker
//! drives them.
//!
//! Owns: opening the socket (again, while it cannot be had), reading datagrams into the
//! book, the book's retries. Guarantees: a socket error never stops the daemon: the node runs
//! without a ledger meanwhile (advert timing decides, `--status` says why) and tries again
//! every [`REOPEN_MS`].

use super::book::{Answer, Ledger, Now, Params, Standing};
use super::socket::{LedgerSocket, SocketTx};
use crate::config::Config;
use crate::report::Kv;
use std::net::Ipv4Addr;
use std::os::fd::BorrowedFd;

/// Datagrams read per wake-up at most (the rest wait for the next round).
const BATCH: usize = 64;
/// How often a socket that could not be opened (its address not there yet) is tried again.
pub const REOPEN_MS: u64 = 5000;

/// Why a node has no ledger.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Off {
    /// The configuration says so (`run_ledger = no`, multicast mode): for good.
    Config(String),
    /// The socket could not be opened: tried again at `retry_at`.
    Socket { why: String, retry_at: u64 },
}

impl Off {
    /// The reason, as `--status` says it (`ledger_reason=`).
    pub fn why(&self) -> &str {
        match self {
            Off::Config(w) | Off::Socket { why: w, .. } => w,
        }
    }
}

/// The book and its socket.
pub struct LedgerNode {
    pub book: Ledger,
    sock: LedgerSocket,
    /// Counts the sockets opened ([`LedgerNode::generation`]).
    opened: u64,
}

/// What the book needs of a configuration, with `own` (`unicast_src_ip`).
pub fn params(cfg: &Config, own: Ipv4Addr) -> Params {
    Params {
        own,
        vrid: cfg.virtual_router_id.unwrap_or(0),
        priority: cfg.priority,
        peers: cfg.unicast_peers.clone(),
        max_clock_offset_ms: crate::timing::Timing::new(cfg).max_clock_offset_ms,
    }
}

impl LedgerNode {
    /// Opens the socket and asks the peers for their records.
    pub fn open(cfg: &Config, now: Now) -> Result<LedgerNode, Off> {
        if cfg.election == crate::config::Election::Etcd {
            return Err(Off::Config("election = etcd: the records are etcd keys".into()));
        }
        if !cfg.run_ledger {
            return Err(Off::Config("run_ledger = no".into()));
        }
        let (Some(src), false) = (cfg.unicast_src_ip, cfg.unicast_peers.is_empty()) else {
            let why = "multicast mode: the ledger needs unicast_src_ip and unicast_peer";
            return Err(Off::Config(why.into()));
        };
        let ifname = cfg.interface.as_deref().unwrap_or("");
        let sock = LedgerSocket::open(ifname, src, cfg.ledger_port).map_err(|e| Off::Socket {
            why: format!("udp {src}:{}: {e}", cfg.ledger_port),
            retry_at: now.mono + REOPEN_MS,
        })?;
        let mut l = LedgerNode { book: Ledger::new(params(cfg, src)), sock, opened: 1 };
        l.book.start(now, &mut SocketTx(&mut l.sock));
        Ok(l)
    }

    /// The VRRP socket was re-opened (the interface re-created, renamed back or readdressed):
    /// the ledger's too, on the same terms; the book is kept.
    pub fn reopen(&mut self, cfg: &Config) {
        let (ifname, Some(src)) = (cfg.interface.as_deref().unwrap_or(""), cfg.unicast_src_ip)
        else {
            return;
        };
        match self.sock.reopen(ifname, src) {
            Ok(()) => {
                self.opened += 1;
                log::info!("ledger: socket re-opened on {ifname}");
            }
            Err(e) => {
                log::warn!("ledger: udp {src}:{}: {e}: keeping the old socket", cfg.ledger_port)
            }
        }
    }

    /// A number that changes whenever the socket was opened anew: the worker registers it
    /// again (a new socket may have an old one's number).
    pub fn generation(&self) -> u64 {
        self.opened
    }

    /// The socket, for the worker's poll set (level-triggered).
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.sock.fd()
    }

    /// Reads what waits on the socket into the book (a bounded batch).
    pub fn drain(&mut self, now: Now) {
        // One byte more than a datagram may have: a longer one fails to parse.
        let mut buf = [0u8; super::wire::MAX_LEN + 1];
        for _ in 0..BATCH {
            let Some((from, n)) = self.sock.recv(&mut buf) else { return };
            if let Err(e) =
                self.book.on_datagram(now, from, &buf[..n], &mut SocketTx(&mut self.sock))
            {
                log::debug!("ledger: datagram from {from} dropped: {e}");
            }
        }
    }

    /// The book's retries and time-outs.
    pub fn poll(&mut self, now: Now, standing: Standing) {
        self.book.poll(now, standing, &mut SocketTx(&mut self.sock));
    }

    /// [`Ledger::ask`], its datagrams through this socket.
    pub fn ask(&mut self, now: Now, job: u64, slot: u64, standing: Standing) -> Answer {
        self.book.ask(now, job, slot, standing, &mut SocketTx(&mut self.sock))
    }

    /// The book's `--status` fields and `ledger_tx_errors`.
    pub fn status(&self, out: &mut Kv) {
        self.book.status(out);
        out.put("ledger_tx_errors", self.sock.tx_errors);
    }
}
