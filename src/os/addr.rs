//! Virtual addresses on interfaces: IPv4 addresses added and removed through rtnetlink
//! (RTM_NEWADDR / RTM_DELADDR, rtnetlink(7)), and the gratuitous ARP that announces one
//! (RFC 5227 section 3: an ARP request with the sender and target protocol address both the
//! announced address, broadcast, as keepalived sends it), from an AF_PACKET socket.
//!
//! Owns: one request socket per batch (a transition is rare; nothing stays open). Guarantees:
//! an address already there is not an error when adding, one already gone is not an error when
//! removing (a restart, a crash, a reload find the kernel as it is); each call waits for the
//! kernel's answer at most [`ACK_TIMEOUT`]; nothing the kernel sends back can panic.

use nix::sys::socket::{self, AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol};
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::Duration;

/// How long the kernel's answer to one request is waited for.
pub const ACK_TIMEOUT: Duration = Duration::from_secs(1);

const RTM_NEWADDR: u16 = 20;
const RTM_DELADDR: u16 = 21;
const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_REPLACE: u16 = 0x100;
const NLM_F_CREATE: u16 = 0x400;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_LABEL: u16 = 3;
const ETH_P_ARP: u16 = 0x0806;

/// One address as it is held: on interface `index`, with its prefix length (the route it
/// adds) and label (`ip addr`'s `label`, at most 15 bytes; the interface's name when none).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Held<'a> {
    pub index: u32,
    pub addr: Ipv4Addr,
    pub prefix: u8,
    pub label: Option<&'a str>,
}

/// An rtnetlink socket for a batch of address changes (one per transition: opened, used for
/// every address, closed).
pub struct Requests {
    fd: OwnedFd,
}

impl Requests {
    pub fn open() -> io::Result<Requests> {
        let fd = socket::socket(
            AddressFamily::Netlink,
            socket::SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkRoute,
        )?;
        let tv = nix::sys::time::TimeVal::new(ACK_TIMEOUT.as_secs() as _, 0);
        socket::setsockopt(&fd, socket::sockopt::ReceiveTimeout, &tv)?;
        Ok(Requests { fd })
    }

    /// Adds `h` (RTM_NEWADDR with NLM_F_CREATE | NLM_F_REPLACE: an address left by a crash is
    /// taken over as it is). Errors: the kernel's (no such interface, no permission).
    pub fn add(&self, h: &Held<'_>) -> io::Result<()> {
        self.request(RTM_NEWADDR, NLM_F_CREATE | NLM_F_REPLACE, h)
    }

    /// Removes the address `h.addr` from interface `h.index`, whatever its prefix and label
    /// (only IFA_LOCAL is given, so the kernel matches the address alone). An address that is
    /// not there is not an error.
    pub fn remove(&self, h: &Held<'_>) -> io::Result<()> {
        match self.request(RTM_DELADDR, 0, &Held { label: None, prefix: 0, ..h.clone() }) {
            Err(e) if e.raw_os_error() == Some(libc::EADDRNOTAVAIL) => Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => Ok(()),
            other => other,
        }
    }

    /// One request about `h`, and the kernel's acknowledgement.
    fn request(&self, kind: u16, flags: u16, h: &Held<'_>) -> io::Result<()> {
        let msg = message(kind, flags, h);
        socket::sendto(self.fd.as_raw_fd(), &msg, &NetlinkAddr::new(0, 0), MsgFlags::empty())?;
        ack(&self.fd)
    }
}

/// One interface as a batch needs it: name, ifindex, hardware address (none on a tunnel).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    pub name: String,
    pub index: u32,
    pub mac: Option<[u8; 6]>,
}

/// Every interface now, from one getifaddrs(3) call (its AF_PACKET entries).
pub fn links() -> Vec<Link> {
    let Ok(all) = nix::ifaddrs::getifaddrs() else { return Vec::new() };
    all.filter_map(|ifa| {
        let l = ifa.address.as_ref().and_then(|a| a.as_link_addr())?;
        Some(Link { name: ifa.interface_name.clone(), index: l.ifindex() as u32, mac: l.addr() })
    })
    .collect()
}

/// The IPv4 addresses interface `name` has now, labelled ones included, in the kernel's order.
pub fn on_interface(name: &str) -> heapless::Vec<Ipv4Addr, 64> {
    let mut out = heapless::Vec::new();
    for (_, ip) in all_ipv4().into_iter().filter(|(n, _)| n == name) {
        let _ = out.push(ip);
    }
    out
}

/// Every IPv4 address of every interface now, as (interface, address): one getifaddrs(3)
/// call. An address with a label (`eth0:vip`, which getifaddrs gives as its name) counts as
/// its interface's.
pub fn all_ipv4() -> Vec<(String, Ipv4Addr)> {
    let Ok(all) = nix::ifaddrs::getifaddrs() else { return Vec::new() };
    all.filter_map(|ifa| {
        let ip = ifa.address.as_ref().and_then(|a| a.as_sockaddr_in())?.ip();
        let name = ifa.interface_name.split(':').next().unwrap_or_default().to_string();
        Some((name, ip))
    })
    .collect()
}

/// The request's bytes: nlmsghdr, ifaddrmsg, then IFA_LOCAL, IFA_ADDRESS and IFA_LABEL as
/// `ip addr add` sends them (the peer address is the local one on a broadcast link).
fn message(kind: u16, flags: u16, h: &Held<'_>) -> Vec<u8> {
    let mut m = Vec::with_capacity(64);
    m.extend_from_slice(&0u32.to_ne_bytes()); // length, set below
    m.extend_from_slice(&kind.to_ne_bytes());
    m.extend_from_slice(&(NLM_F_REQUEST | NLM_F_ACK | flags).to_ne_bytes());
    m.extend_from_slice(&1u32.to_ne_bytes()); // sequence
    m.extend_from_slice(&0u32.to_ne_bytes()); // port: the kernel
    // ifaddrmsg: family, prefix length, flags, scope (universe), ifindex.
    m.extend_from_slice(&[libc::AF_INET as u8, h.prefix, 0, 0]);
    m.extend_from_slice(&h.index.to_ne_bytes());
    attr(&mut m, IFA_LOCAL, &h.addr.octets());
    if kind == RTM_NEWADDR {
        attr(&mut m, IFA_ADDRESS, &h.addr.octets());
    }
    if let Some(label) = h.label {
        let mut z = label.as_bytes().to_vec();
        z.push(0);
        attr(&mut m, IFA_LABEL, &z);
    }
    let len = m.len() as u32;
    m[..4].copy_from_slice(&len.to_ne_bytes());
    m
}

/// An rtattr: length, type, data, padded to 4 bytes.
fn attr(m: &mut Vec<u8>, kind: u16, data: &[u8]) {
    m.extend_from_slice(&((4 + data.len()) as u16).to_ne_bytes());
    m.extend_from_slice(&kind.to_ne_bytes());
    m.extend_from_slice(data);
    while !m.len().is_multiple_of(4) {
        m.push(0);
    }
}

/// Reads the kernel's NLMSG_ERROR answer: Ok for 0, the errno otherwise.
fn ack(fd: &OwnedFd) -> io::Result<()> {
    let mut buf = [0u8; 1024];
    loop {
        let n = match socket::recv(fd.as_fd().as_raw_fd(), &mut buf, MsgFlags::empty()) {
            Ok(n) => n,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(nix::errno::Errno::EAGAIN) => {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "no answer from rtnetlink"));
            }
            Err(e) => return Err(e.into()),
        };
        if let Some(r) = parse_ack(&buf[..n]) {
            return r;
        }
    }
}

/// The result an NLMSG_ERROR message in `b` carries; `None`: not such a message.
fn parse_ack(b: &[u8]) -> Option<io::Result<()>> {
    let kind = u16::from_ne_bytes(b.get(4..6)?.try_into().ok()?);
    if kind != NLMSG_ERROR {
        return None;
    }
    let code = i32::from_ne_bytes(b.get(16..20)?.try_into().ok()?);
    Some(if code == 0 { Ok(()) } else { Err(io::Error::from_raw_os_error(-code)) })
}

/// A packet socket for gratuitous ARPs (AF_PACKET, SOCK_DGRAM, protocol 0: sends only).
pub struct Garp {
    fd: OwnedFd,
}

impl Garp {
    pub fn open() -> io::Result<Garp> {
        Ok(Garp { fd: crate::os::sys::packet_socket()? })
    }

    /// Sends `count` gratuitous ARPs for `addr` from `link`: ARP requests (RFC 826) with
    /// sender and target protocol address `addr`, target hardware address zero, to the
    /// Ethernet broadcast address. A link without a hardware address gets none. Errors: the
    /// send.
    pub fn send(&self, link: &Link, addr: Ipv4Addr, count: u32) -> io::Result<u32> {
        let Some(mac) = link.mac else { return Ok(0) };
        let mut p = [0u8; 28];
        p[0..2].copy_from_slice(&1u16.to_be_bytes()); // hardware: Ethernet
        p[2..4].copy_from_slice(&0x0800u16.to_be_bytes()); // protocol: IPv4
        p[4] = 6;
        p[5] = 4;
        p[6..8].copy_from_slice(&1u16.to_be_bytes()); // request
        p[8..14].copy_from_slice(&mac);
        p[14..18].copy_from_slice(&addr.octets());
        p[24..28].copy_from_slice(&addr.octets());
        for _ in 0..count {
            crate::os::sys::packet_send_broadcast(self.fd.as_fd(), link.index, ETH_P_ARP, &p)?;
        }
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_laid_out_as_rtnetlink_wants() {
        let h = Held {
            index: 7,
            addr: Ipv4Addr::new(192, 0, 2, 100),
            prefix: 24,
            label: Some("eth0:v"),
        };
        let m = message(RTM_NEWADDR, NLM_F_CREATE | NLM_F_REPLACE, &h);
        assert_eq!(m.len() % 4, 0);
        assert_eq!(u32::from_ne_bytes(m[0..4].try_into().unwrap()) as usize, m.len());
        assert_eq!(u16::from_ne_bytes(m[4..6].try_into().unwrap()), RTM_NEWADDR);
        assert_eq!(&m[16..20], &[libc::AF_INET as u8, 24, 0, 0]);
        assert_eq!(u32::from_ne_bytes(m[20..24].try_into().unwrap()), 7);
        // IFA_LOCAL, then IFA_ADDRESS, then the label with its NUL, padded.
        assert_eq!(&m[24..32], &[8, 0, 2, 0, 192, 0, 2, 100]);
        assert_eq!(&m[32..40], &[8, 0, 1, 0, 192, 0, 2, 100]);
        assert_eq!(&m[40..51], &[11, 0, 3, 0, b'e', b't', b'h', b'0', b':', b'v', 0]);
        let del = message(RTM_DELADDR, 0, &Held { label: None, prefix: 0, ..h });
        assert_eq!(del.len(), 32, "delete by the local address alone");
    }

    #[test]
    fn acks_are_read_and_anything_else_is_not_one() {
        let mut b = [0u8; 36];
        b[4..6].copy_from_slice(&NLMSG_ERROR.to_ne_bytes());
        assert!(matches!(parse_ack(&b), Some(Ok(()))));
        b[16..20].copy_from_slice(&(-libc::EPERM).to_ne_bytes());
        let e = parse_ack(&b).unwrap().unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EPERM));
        assert!(parse_ack(&b[..10]).is_none());
        b[4..6].copy_from_slice(&16u16.to_ne_bytes());
        assert!(parse_ack(&b).is_none());
    }
}
