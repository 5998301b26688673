//! Raw-socket VRRP I/O on IP protocol 112, and interface facts (up/down, primary address).
//!
//! Owns: the socket. Unicast: bound to `unicast_src_ip` (adverts to us are addressed there,
//! as keepalived expects), one copy per peer. Multicast: joins 224.0.0.18 on the interface,
//! loopback off. Both: bound to the interface, TTL 255, TOS 0xc0 (as keepalived sends).
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

/// The interface's first IPv4 address.
pub fn primary_addr(name: &str) -> Option<Ipv4Addr> {
    let addrs = nix::ifaddrs::getifaddrs().ok()?;
    for ifa in addrs {
        if ifa.interface_name != name {
            continue;
        }
        if let Some(sin) = ifa.address.as_ref().and_then(|a| a.as_sockaddr_in()) {
            return Some(sin.ip());
        }
    }
    None
}
