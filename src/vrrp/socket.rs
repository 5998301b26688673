//! The raw VRRP socket (IP protocol 112).
//!
//! Owns: the socket. Unicast: bound to `unicast_src_ip` (adverts to us are addressed there,
//! as keepalived expects), one copy per peer. Multicast: joins 224.0.0.18 on the interface,
//! loopback off. Both: bound to the interface; adverts go out with their own IP header
//! (IP_HDRINCL, as keepalived's send socket: [`wire::emit_ipv4_header`]), which spares the
//! kernel building one per advert.
//! The kernel ties the socket to the interface's index and address of the moment it was
//! opened: the node re-opens it when [`crate::os::link::LinkState`] says those changed.
//!
//! A backup needs no wake-up for an advert that only repeats the master's last one: it resets
//! the Master_Down_Timer, and the timer's deadline can wait for when the advert *arrived*. So
//! the socket is a pair, both opened alike: the *loud* one is in the poll set; the *quiet* one
//! is not, and stamps each packet's arrival (SO_TIMESTAMPNS). A classic BPF filter on each
//! ([`Routine`]) splits the adverts between them in the kernel: repeats go to the quiet one,
//! read at the node's next wake-up (at the latest the Master_Down_Timer's deadline), and
//! everything else (another sender, priority, interval or address count, a priority-0
//! resignation, a packet too short to compare) to the loud one, which wakes the node at once.
//! A repeat that fails a later check (checksum, TTL, password) is found so when it is read.
//! Without a routine (master, fault, or a wrapper waiting on adverts) the quiet socket takes
//! nothing.
//! Guarantees: non-blocking; errors are returned, never panics.

use crate::vrrp::wire;
use nix::sys::socket::{self, SockaddrIn, sockopt};
use std::ffi::OsString;
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

pub struct VrrpSocket {
    /// The loud socket: in the poll set; sends, and receives what the quiet one does not.
    fd: OwnedFd,
    /// The quiet socket: never polled; receives the repeats of [`Routine`], stamped. `None`
    /// where the kernel (or an emulator such as qemu-user) refuses the filter or the stamps:
    /// then every advert wakes the node, as before the split.
    quiet: Option<OwnedFd>,
    /// The routine the filters split on now (`None`: the quiet socket takes nothing).
    routine: Option<Routine>,
}

/// The adverts a backup reads without being woken: from `src`, with the first six bytes of
/// the VRRP header (version and type, VRID, priority, address count, and v3's interval or
/// v2's authentication type and interval; RFC 5798 5.1, RFC 3768 5.1) equal to `head`. The
/// checksum and the addresses are not compared: the node checks every packet in full when it
/// reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Routine {
    pub src: Ipv4Addr,
    pub head: [u8; HEAD_LEN],
}

/// Bytes of the VRRP header a [`Routine`] compares.
pub const HEAD_LEN: usize = 6;

impl VrrpSocket {
    /// Opens the socket on `ifname`. `bind_src`: unicast mode's own address; `None` for
    /// multicast, which then joins the group on `local` (the interface's address).
    pub fn open(ifname: &str, bind_src: Option<Ipv4Addr>, local: Ipv4Addr) -> io::Result<Self> {
        let fd = Self::open_one(ifname, bind_src, local, false)?;
        let quiet = match Self::open_one(ifname, bind_src, local, true) {
            Ok(q) => Some(q),
            Err(e) => {
                log::info!("no quiet socket on {ifname} ({e}): every advert wakes a backup");
                None
            }
        };
        let sock = VrrpSocket { fd, quiet, routine: None };
        // A raw socket takes packets from its creation on: the quiet one starts empty.
        let mut rx = RxBatch::new();
        while sock.recv_quiet(&mut rx)? == RX_BATCH {}
        Ok(sock)
    }

    /// One socket of the pair: the loud one without a filter (it takes everything), the
    /// `quiet` one taking nothing yet, and stamping what it will take.
    fn open_one(
        ifname: &str,
        bind_src: Option<Ipv4Addr>,
        local: Ipv4Addr,
        quiet: bool,
    ) -> io::Result<OwnedFd> {
        let fd = crate::os::sys::raw_socket(wire::PROTO_VRRP)?;
        if quiet {
            crate::os::sys::attach_filter(fd.as_fd(), &program(None, false))?;
            crate::os::sys::set_rx_timestamps(fd.as_fd())?;
        }
        socket::setsockopt(&fd, sockopt::BindToDevice, &OsString::from(ifname))
            .map_err(io::Error::from)?;
        crate::os::sys::set_ip_hdrincl(fd.as_fd())?;
        let _ = socket::setsockopt(&fd, sockopt::RcvBuf, &(256 * 1024));
        match bind_src {
            Some(src) => {
                socket::bind(
                    fd.as_raw_fd(),
                    &SockaddrIn::from(std::net::SocketAddrV4::new(src, 0)),
                )
                .map_err(io::Error::from)?;
            }
            None => {
                let req = socket::IpMembershipRequest::new(wire::MCAST_GROUP, Some(local));
                socket::setsockopt(&fd, sockopt::IpAddMembership, &req).map_err(io::Error::from)?;
                socket::setsockopt(&fd, sockopt::IpMulticastLoop, &false)
                    .map_err(io::Error::from)?;
            }
        }
        Ok(fd)
    }

    /// The loud socket, for the poll set.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The routine the filters split on now.
    pub fn routine(&self) -> Option<Routine> {
        self.routine
    }

    /// Splits the adverts on `routine` from now on. Nothing is lost on the way: the loud
    /// socket takes everything first, then the quiet one its share, then the loud one gives
    /// that up; a repeat that arrives meanwhile may be read from both (an advert read twice
    /// resets the timer twice). What the quiet socket still holds stays there for the next
    /// [`VrrpSocket::recv_quiet`]. Without a quiet socket, nothing (the routine stays `None`).
    /// Errors: the kernel refused a filter (ENOMEM): the split is then undefined, and the pair
    /// must be closed.
    pub fn set_routine(&mut self, routine: Option<Routine>) -> io::Result<()> {
        let Some(quiet) = &self.quiet else { return Ok(()) };
        if routine == self.routine {
            return Ok(());
        }
        let attach = crate::os::sys::attach_filter;
        attach(self.fd.as_fd(), &program(None, true))?;
        attach(quiet.as_fd(), &program(routine.as_ref(), false))?;
        attach(self.fd.as_fd(), &program(routine.as_ref(), true))?;
        self.routine = routine;
        Ok(())
    }

    /// Sends one IP packet (header included: [`wire::emit_ipv4_header`]) to `dst`.
    pub fn send(&self, packet: &[u8], dst: Ipv4Addr) -> io::Result<()> {
        let addr = SockaddrIn::from(std::net::SocketAddrV4::new(dst, 0));
        socket::sendto(self.fd.as_raw_fd(), packet, &addr, socket::MsgFlags::MSG_DONTWAIT)
            .map(|_| ())
            .map_err(io::Error::from)
    }

    /// Receives the IP packets (headers included) waiting on the socket, at most [`RX_BATCH`],
    /// in one system call: how many (0 when none was waiting), each in `batch`.
    pub fn recv_batch(&self, batch: &mut RxBatch) -> io::Result<usize> {
        let n = crate::os::sys::recv_batch(self.fd.as_fd(), &mut batch.bufs, &mut batch.lens)?;
        batch.stamps = [None; RX_BATCH];
        batch.n = n;
        Ok(n)
    }

    /// [`VrrpSocket::recv_batch`] on the quiet socket, with each packet's arrival stamp.
    pub fn recv_quiet(&self, batch: &mut RxBatch) -> io::Result<usize> {
        let Some(quiet) = &self.quiet else {
            batch.n = 0;
            return Ok(0);
        };
        let (bufs, lens, stamps) = (&mut batch.bufs, &mut batch.lens, &mut batch.stamps);
        let n = crate::os::sys::recv_batch_stamped(quiet.as_fd(), bufs, lens, stamps)?;
        batch.n = n;
        Ok(n)
    }
}

/// Classic BPF (filter(2) of socket(7) SO_ATTACH_FILTER) for one socket of the pair: the
/// loud one (`loud`) accepts what does not match `routine`, the quiet one what does; with no
/// routine the loud one accepts everything and the quiet one nothing. The packet starts at
/// its IP header (raw(7)); a packet too short for the fields compared never matches.
fn program(routine: Option<&Routine>, loud: bool) -> heapless::Vec<libc::sock_filter, 13> {
    use libc::{
        BPF_ABS, BPF_ALU, BPF_B, BPF_H, BPF_IND, BPF_JEQ, BPF_JGE, BPF_JMP, BPF_K, BPF_LD, BPF_LDX,
        BPF_LEN, BPF_MSH, BPF_RET, BPF_SUB, BPF_W, BPF_X,
    };
    let op = |code: u32, jt: u8, jf: u8, k: u32| libc::sock_filter { code: code as u16, jt, jf, k };
    let (matched, other) = if loud { (0, u32::MAX) } else { (u32::MAX, 0) };
    let mut p = heapless::Vec::new();
    let Some(r) = routine else {
        let _ = p.push(op(BPF_RET | BPF_K, 0, 0, if loud { u32::MAX } else { 0 }));
        return p;
    };
    let word = u32::from_be_bytes([r.head[0], r.head[1], r.head[2], r.head[3]]);
    let half = u16::from_be_bytes([r.head[4], r.head[5]]) as u32;
    // Jumps count the instructions skipped; `other` is the second last, `matched` the last.
    let code = [
        op(BPF_LD | BPF_W | BPF_LEN, 0, 0, 0), // A = length
        op(BPF_JMP | BPF_JGE | BPF_K, 0, 9, (wire::IP_HEADER_LEN + HEAD_LEN) as u32),
        op(BPF_LDX | BPF_B | BPF_MSH, 0, 0, 0), // X = IP header length
        op(BPF_ALU | BPF_SUB | BPF_K, 0, 0, HEAD_LEN as u32), // A = length - 6
        op(BPF_JMP | BPF_JGE | BPF_X, 0, 6, 0), // the head fits
        op(BPF_LD | BPF_W | BPF_ABS, 0, 0, 12), // A = IP source
        op(BPF_JMP | BPF_JEQ | BPF_K, 0, 4, u32::from(r.src)),
        op(BPF_LD | BPF_W | BPF_IND, 0, 0, 0), // head bytes 0..4
        op(BPF_JMP | BPF_JEQ | BPF_K, 0, 2, word),
        op(BPF_LD | BPF_H | BPF_IND, 0, 0, 4), // head bytes 4..6
        op(BPF_JMP | BPF_JEQ | BPF_K, 1, 0, half),
        op(BPF_RET | BPF_K, 0, 0, other),
        op(BPF_RET | BPF_K, 0, 0, matched),
    ];
    let _ = p.extend_from_slice(&code);
    p
}

/// Packets one receive call takes at most: a burst costs a system call per this many.
pub const RX_BATCH: usize = 8;
/// Room for one received packet: the largest advert with its IP header and options.
const RX_ROOM: usize = 2048;

/// Buffers for [`VrrpSocket::recv_batch`], made once (16 KiB, on the heap: zeroed there, never
/// on a stack) and kept by the receiver, so that a wake-up neither allocates nor clears them.
pub struct RxBatch {
    bufs: Vec<[u8; RX_ROOM]>,
    lens: [usize; RX_BATCH],
    /// Arrival stamps (wall clock, ns) of a quiet receive; `None` for a loud one.
    stamps: [Option<i64>; RX_BATCH],
    n: usize,
}

impl Default for RxBatch {
    fn default() -> Self {
        RxBatch::new()
    }
}

impl RxBatch {
    pub fn new() -> RxBatch {
        RxBatch {
            bufs: vec![[0; RX_ROOM]; RX_BATCH],
            lens: [0; RX_BATCH],
            stamps: [None; RX_BATCH],
            n: 0,
        }
    }

    /// The packets of the last receive, in arrival order.
    pub fn packets(&self) -> impl Iterator<Item = &[u8]> {
        self.bufs.iter().zip(self.lens).take(self.n).map(|(b, len)| &b[..len.min(RX_ROOM)])
    }

    /// The packets of the last receive, each with its arrival stamp (`None` but from
    /// [`VrrpSocket::recv_quiet`]).
    pub fn stamped(&self) -> impl Iterator<Item = (&[u8], Option<i64>)> {
        self.packets().zip(self.stamps)
    }
}

/// Whether a failed send means "this node cannot send on this link" (a fault: the interface
/// or the source address is gone, the link is down, a firewall refuses) rather than a
/// passing shortage (a full send buffer) that the next advert outlives.
pub fn send_error_is_fault(e: &io::Error) -> bool {
    !matches!(e.raw_os_error(), Some(libc::EAGAIN | libc::ENOBUFS | libc::EINTR | libc::ENOMEM))
}
