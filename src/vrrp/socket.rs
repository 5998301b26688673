//! The raw VRRP socket (IP protocol 112).
//!
//! Owns: the socket. Unicast: bound to `unicast_src_ip` (adverts to us are addressed there,
//! as keepalived expects), one copy per peer. Multicast: joins 224.0.0.18 on the interface,
//! loopback off. Both: bound to the interface; adverts go out with their own IP header
//! (IP_HDRINCL, as keepalived's send socket: [`wire::emit_ipv4_header`]), which spares the
//! kernel building one per advert.
//! The kernel ties the socket to the interface's index and address of the moment it was
//! opened: the node re-opens it when [`crate::os::link::LinkState`] says those changed.
//! Guarantees: non-blocking; errors are returned, never panics.

use crate::vrrp::wire;
use nix::sys::socket::{self, SockaddrIn, sockopt};
use std::ffi::OsString;
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

pub struct VrrpSocket {
    fd: OwnedFd,
}

impl VrrpSocket {
    /// Opens the socket on `ifname`. `bind_src`: unicast mode's own address; `None` for
    /// multicast, which then joins the group on `local` (the interface's address).
    pub fn open(ifname: &str, bind_src: Option<Ipv4Addr>, local: Ipv4Addr) -> io::Result<Self> {
        let fd = crate::os::sys::raw_socket(wire::PROTO_VRRP)?;
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
        Ok(VrrpSocket { fd })
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
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
        batch.n = n;
        Ok(n)
    }
}

/// Packets one receive call takes at most: a burst costs a system call per this many.
pub const RX_BATCH: usize = 8;
/// Room for one received packet: the largest advert with its IP header and options.
const RX_ROOM: usize = 2048;

/// Buffers for [`VrrpSocket::recv_batch`], made once (16 KiB) and kept by the receiver, so
/// that a wake-up neither allocates nor clears them.
pub struct RxBatch {
    bufs: [[u8; RX_ROOM]; RX_BATCH],
    lens: [usize; RX_BATCH],
    n: usize,
}

impl RxBatch {
    pub fn new() -> Box<RxBatch> {
        Box::new(RxBatch { bufs: [[0; RX_ROOM]; RX_BATCH], lens: [0; RX_BATCH], n: 0 })
    }

    /// The packets of the last receive, in arrival order.
    pub fn packets(&self) -> impl Iterator<Item = &[u8]> {
        self.bufs.iter().zip(self.lens).take(self.n).map(|(b, len)| &b[..len.min(RX_ROOM)])
    }
}

/// Whether a failed send means "this node cannot send on this link" (a fault: the interface
/// or the source address is gone, the link is down, a firewall refuses) rather than a
/// passing shortage (a full send buffer) that the next advert outlives.
pub fn send_error_is_fault(e: &io::Error) -> bool {
    !matches!(e.raw_os_error(), Some(libc::EAGAIN | libc::ENOBUFS | libc::EINTR | libc::ENOMEM))
}
