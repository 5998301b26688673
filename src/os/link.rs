//! The interface as the kernel has it now, and word of when that changes.
//!
//! Owns: an ioctl socket ([`LinkProbe`]) and an rtnetlink socket ([`LinkEvents`]).
//! [`LinkState`] is read by name, fresh each time, so an interface deleted and created again,
//! renamed, or given another address shows as such; [`LinkEvents`] says when to look, instead
//! of a timer. Guarantees: non-blocking; errors are returned or read as "no such interface",
//! never panics.

use nix::sys::socket;
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

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
        let index = crate::os::sys::interface_index(probe.fd.as_fd(), name).ok()?;
        let flags = crate::os::sys::interface_flags(probe.fd.as_fd(), name).ok()?;
        let mtu = crate::os::sys::interface_mtu(probe.fd.as_fd(), name).unwrap_or(0);
        let up = flags & libc::IFF_UP != 0 && flags & libc::IFF_RUNNING != 0;
        // In the kernel's order: the first is the primary.
        let addrs = crate::os::addr::on_interface(name);
        let addr = match src {
            Some(ip) => addrs.contains(&ip).then_some(ip),
            None => addrs.first().copied(),
        };
        Some(LinkState { index, up, addr, mtu })
    }
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
        .map_err(io::Error::from)?;
        let groups = (libc::RTMGRP_LINK | libc::RTMGRP_IPV4_IFADDR) as u32;
        socket::bind(fd.as_raw_fd(), &socket::NetlinkAddr::new(0, groups))
            .map_err(io::Error::from)?;
        Ok(LinkEvents { fd })
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Reads the waiting messages, at most 64: whether there was any (or the kernel dropped
    /// some: ENOBUFS), that is whether the links must be looked at again, and whether more may
    /// be waiting (the 64 were read). The messages themselves are not parsed: the look that
    /// follows reads the current state whole.
    pub fn drain(&self) -> Drained {
        let mut buf = [0u8; 4096];
        let mut any = false;
        for _ in 0..64 {
            match socket::recv(self.fd.as_raw_fd(), &mut buf, socket::MsgFlags::MSG_DONTWAIT) {
                Ok(0) | Err(nix::errno::Errno::EAGAIN) => return Drained { any, more: false },
                Ok(_) => any = true,
                Err(nix::errno::Errno::EINTR) => {}
                Err(_) => return Drained { any: true, more: false },
            }
        }
        Drained { any, more: true }
    }
}

/// What [`LinkEvents::drain`] read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Drained {
    pub any: bool,
    pub more: bool,
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
        .map_err(io::Error::from)?;
        Ok(LinkProbe { fd })
    }

    /// True when the interface exists, is administratively up and has carrier.
    pub fn up(&self, name: &str) -> bool {
        match crate::os::sys::interface_flags(self.fd.as_fd(), name) {
            Ok(f) => f & libc::IFF_UP != 0 && f & libc::IFF_RUNNING != 0,
            Err(_) => false,
        }
    }
}
