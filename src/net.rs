//! Raw-socket VRRP I/O on IP protocol 112, and the interface as the kernel has it now.
//!
//! Owns: the socket. Unicast: bound to `unicast_src_ip` (adverts to us are addressed there,
//! as keepalived expects), one copy per peer. Multicast: joins 224.0.0.18 on the interface,
//! loopback off. Both: bound to the interface, TTL 255, TOS 0xc0 (as keepalived sends).
//! The socket is tied to the interface's index and address of the moment it was opened:
//! [`LinkState`] says when those changed (the interface deleted and created again, renamed,
//! its address removed), and [`LinkEvents`] (an rtnetlink socket) says when to look.
//! Guarantees: non-blocking; errors are returned, never panics.

use crate::wire;
use nix::sys::socket::{self, SockaddrIn, sockopt};
use std::ffi::OsString;
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

pub struct VrrpSocket {
    fd: OwnedFd,
}

fn nix_err(e: nix::errno::Errno) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

impl VrrpSocket {
    /// Opens the socket on `ifname`. `bind_src`: unicast mode's own address; `None` for
    /// multicast, which then joins the group on `local` (the interface's address).
    pub fn open(ifname: &str, bind_src: Option<Ipv4Addr>, local: Ipv4Addr) -> io::Result<Self> {
        let fd = crate::sys::raw_socket(wire::PROTO_VRRP)?;
        socket::setsockopt(&fd, sockopt::BindToDevice, &OsString::from(ifname)).map_err(nix_err)?;
        socket::setsockopt(&fd, sockopt::Ipv4Ttl, &255).map_err(nix_err)?;
        socket::setsockopt(&fd, sockopt::Ipv4Tos, &0xc0).map_err(nix_err)?;
        let _ = socket::setsockopt(&fd, sockopt::RcvBuf, &(256 * 1024));
        match bind_src {
            Some(src) => {
                socket::bind(
                    fd.as_raw_fd(),
                    &SockaddrIn::from(std::net::SocketAddrV4::new(src, 0)),
                )
                .map_err(nix_err)?;
            }
            None => {
                let req = socket::IpMembershipRequest::new(wire::MCAST_GROUP, Some(local));
                socket::setsockopt(&fd, sockopt::IpAddMembership, &req).map_err(nix_err)?;
                socket::setsockopt(&fd, sockopt::IpMulticastTtl, &255).map_err(nix_err)?;
                socket::setsockopt(&fd, sockopt::IpMulticastLoop, &false).map_err(nix_err)?;
            }
        }
        Ok(VrrpSocket { fd })
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Sends one VRRP message to `dst` (the kernel adds the IP header).
    pub fn send(&self, msg: &[u8], dst: Ipv4Addr) -> io::Result<()> {
        let addr = SockaddrIn::from(std::net::SocketAddrV4::new(dst, 0));
        socket::sendto(self.fd.as_raw_fd(), msg, &addr, socket::MsgFlags::MSG_DONTWAIT)
            .map(|_| ())
            .map_err(nix_err)
    }

    /// Receives one IP packet (header included) into `buf`; `Ok(None)` when none is waiting.
    pub fn recv<'b>(&self, buf: &'b mut [u8]) -> io::Result<Option<&'b [u8]>> {
        match socket::recv(self.fd.as_raw_fd(), buf, socket::MsgFlags::MSG_DONTWAIT) {
            Ok(n) => Ok(buf.get(..n)),
            Err(nix::errno::Errno::EAGAIN) => Ok(None),
            Err(e) => Err(nix_err(e)),
        }
    }
}

/// Whether a failed send means "this node cannot send on this link" (a fault: the interface
/// or the source address is gone, the link is down, a firewall refuses) rather than a
/// passing shortage (a full send buffer) that the next advert outlives.
pub fn send_error_is_fault(e: &io::Error) -> bool {
    !matches!(e.raw_os_error(), Some(libc::EAGAIN | libc::ENOBUFS | libc::EINTR | libc::ENOMEM))
}

/// The election interface as the kernel has it now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkState {
    /// ifindex: a new one when the interface was deleted and created again under this name.
    pub index: u32,
    /// Administratively up with carrier.
    pub up: bool,
    /// The address adverts go out from: `unicast_src_ip` while the interface has it, else
    /// (multicast) the interface's first IPv4 address; `None` when it has no such address.
    pub addr: Option<Ipv4Addr>,
    /// Bytes; bounds the virtual addresses one advert can carry.
    pub mtu: u32,
}

impl LinkState {
    /// Reads the interface `name`; `None` when no interface has that name. `src`: the
    /// configured `unicast_src_ip`, if any.
    pub fn read(probe: &LinkProbe, name: &str, src: Option<Ipv4Addr>) -> Option<LinkState> {
        let index = nix::net::if_::if_nametoindex(name).ok()?;
        let flags = crate::sys::interface_flags(probe.fd.as_fd(), name).ok()?;
        let mtu = crate::sys::interface_mtu(probe.fd.as_fd(), name).unwrap_or(0);
        let up = flags & libc::IFF_UP != 0 && flags & libc::IFF_RUNNING != 0;
        let addrs = addresses(name);
        let addr = match src {
            Some(ip) => addrs.contains(&ip).then_some(ip),
            None => addrs.first().copied(),
        };
        Some(LinkState { index, up, addr, mtu })
    }
}

/// The IPv4 addresses of interface `name`, in the kernel's order (the first is the primary).
fn addresses(name: &str) -> heapless::Vec<Ipv4Addr, 16> {
    let mut out = heapless::Vec::new();
    let Ok(all) = nix::ifaddrs::getifaddrs() else { return out };
    for ifa in all.filter(|i| i.interface_name == name) {
        if let Some(sin) = ifa.address.as_ref().and_then(|a| a.as_sockaddr_in()) {
            let _ = out.push(sin.ip());
        }
    }
    out
}

/// An rtnetlink socket subscribed to link and IPv4 address changes: readable when any
/// interface appears, goes, changes state or gains or loses an address, so the daemon looks
/// at its links when they change instead of asking the kernel on a timer.
pub struct LinkEvents {
    fd: OwnedFd,
}

impl LinkEvents {
    pub fn open() -> io::Result<LinkEvents> {
        let fd = socket::socket(
            socket::AddressFamily::Netlink,
            socket::SockType::Raw,
            socket::SockFlag::SOCK_NONBLOCK | socket::SockFlag::SOCK_CLOEXEC,
            socket::SockProtocol::NetlinkRoute,
        )
        .map_err(nix_err)?;
        let groups = (libc::RTMGRP_LINK | libc::RTMGRP_IPV4_IFADDR) as u32;
        socket::bind(fd.as_raw_fd(), &socket::NetlinkAddr::new(0, groups)).map_err(nix_err)?;
        Ok(LinkEvents { fd })
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Reads every waiting message; true when there was any (or the kernel dropped some:
    /// ENOBUFS), that is when the links must be looked at again. The messages themselves are
    /// not parsed: the look that follows reads the current state whole.
    pub fn drain(&self) -> bool {
        let mut buf = [0u8; 4096];
        let mut any = false;
        for _ in 0..64 {
            match socket::recv(self.fd.as_raw_fd(), &mut buf, socket::MsgFlags::MSG_DONTWAIT) {
                Ok(0) | Err(nix::errno::Errno::EAGAIN) => break,
                Ok(_) => any = true,
                Err(nix::errno::Errno::EINTR) => {}
                Err(_) => {
                    any = true;
                    break;
                }
            }
        }
        any
    }
}

/// Asks the kernel whether interfaces are up, through one socket kept open.
pub struct LinkProbe {
    fd: OwnedFd,
}

impl LinkProbe {
    pub fn new() -> io::Result<LinkProbe> {
        let fd = socket::socket(
            socket::AddressFamily::Inet,
            socket::SockType::Datagram,
            socket::SockFlag::SOCK_CLOEXEC,
            None,
        )
        .map_err(nix_err)?;
        Ok(LinkProbe { fd })
    }

    /// True when the interface exists, is administratively up and has carrier.
    pub fn up(&self, name: &str) -> bool {
        match crate::sys::interface_flags(self.fd.as_fd(), name) {
            Ok(f) => f & libc::IFF_UP != 0 && f & libc::IFF_RUNNING != 0,
            Err(_) => false,
        }
    }
}
