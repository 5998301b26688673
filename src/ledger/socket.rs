//! The run ledger's UDP socket.
//!
//! Owns: the socket. Bound to `unicast_src_ip` and [`crate::config::Config::ledger_port`]
//! on the VRRP interface; sends with TTL 255 and the kernel drops anything received with
//! less (IP_MINTTL 255), the election's trust model: only hosts on the link reach it, and
//! the ledger then accepts configured peers only. Guarantees: non-blocking; errors are
//! returned, never panics.

use super::wire::{self, Header, Record};
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::os::fd::{AsFd, BorrowedFd};

/// The ledger's UDP socket and its port (peers' datagrams must come from the same port).
pub struct LedgerSocket {
    sock: UdpSocket,
    port: u16,
    pub tx_errors: u64,
}

/// The receive buffer asked for (the kernel doubles it for its bookkeeping).
const RCVBUF_BYTES: usize = 1 << 20;

impl LedgerSocket {
    /// Opens the socket. Errors: the address is not there yet, or another socket holds the
    /// port (a second rcrond on this host: each group needs its own `ledger_port`; with
    /// SO_REUSEADDR on both, Linux would share the port and deliver each datagram to one of
    /// them, so the port is first bound without it, as a probe).
    pub fn open(ifname: &str, src: Ipv4Addr, port: u16) -> io::Result<LedgerSocket> {
        let probe = UdpSocket::bind(SocketAddrV4::new(src, port)).map_err(|e| {
            if e.kind() == io::ErrorKind::AddrInUse {
                io::Error::new(
                    e.kind(),
                    "in use by another process (a second rcrond on this host needs its own \
                     ledger_port)",
                )
            } else {
                e
            }
        })?;
        drop(probe);
        LedgerSocket::bind(ifname, src, port)
    }

    /// The socket itself. SO_REUSEADDR lets a new socket on the same address open before the
    /// old one closes (the interface was re-created: [`LedgerSocket::reopen`]).
    fn bind(ifname: &str, src: Ipv4Addr, port: u16) -> io::Result<LedgerSocket> {
        let fd = nix::sys::socket::socket(
            nix::sys::socket::AddressFamily::Inet,
            nix::sys::socket::SockType::Datagram,
            nix::sys::socket::SockFlag::SOCK_CLOEXEC,
            None,
        )
        .map_err(io::Error::from)?;
        nix::sys::socket::setsockopt(&fd, nix::sys::socket::sockopt::ReuseAddr, &true)
            .map_err(io::Error::from)?;
        let addr = nix::sys::socket::SockaddrIn::from(SocketAddrV4::new(src, port));
        nix::sys::socket::bind(std::os::fd::AsRawFd::as_raw_fd(&fd), &addr)
            .map_err(io::Error::from)?;
        let sock = UdpSocket::from(fd);
        nix::sys::socket::setsockopt(
            &sock,
            nix::sys::socket::sockopt::BindToDevice,
            &std::ffi::OsString::from(ifname),
        )
        .map_err(io::Error::from)?;
        sock.set_ttl(255)?;
        crate::os::sys::set_ip_minttl(sock.as_fd(), 255)?;
        // A full table's sync is about 86 datagrams at once (4,096 records, 48 each), about
        // the default buffer's room: 1 MiB, past `rmem_max` (root may force it). Refused, the
        // default stays.
        let _ = nix::sys::socket::setsockopt(
            &sock,
            nix::sys::socket::sockopt::RcvBufForce,
            &RCVBUF_BYTES,
        );
        sock.set_nonblocking(true)?;
        Ok(LedgerSocket { sock, port, tx_errors: 0 })
    }

    /// A new socket on the interface as it is now (the kernel tied this one to the old
    /// interface's index); the old one closes once the new one is open.
    pub fn reopen(&mut self, ifname: &str, src: Ipv4Addr) -> io::Result<()> {
        let new = LedgerSocket::bind(ifname, src, self.port)?;
        self.sock = new.sock;
        Ok(())
    }

    /// The socket, for the worker's poll set.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }

    /// The next datagram (into `buf`, its length returned) and its sender, from the ledger's
    /// port only; `None` when nothing waits. A longer datagram is cut to `buf`'s length
    /// (and then fails to parse).
    pub fn recv(&self, buf: &mut [u8]) -> Option<(Ipv4Addr, usize)> {
        loop {
            match self.sock.recv_from(buf) {
                Ok((n, std::net::SocketAddr::V4(a))) if a.port() == self.port => {
                    return Some((*a.ip(), n));
                }
                Ok(_) => continue,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return None,
            }
        }
    }
}

/// Sends through the socket: [`super::book::Tx`] for the worker. A failed send is counted;
/// the ledger retries like a lost answer.
pub struct SocketTx<'a>(pub &'a mut LedgerSocket);

impl super::book::Tx for SocketTx<'_> {
    fn send(&mut self, to: Ipv4Addr, h: &Header, records: &[Record]) {
        let s = &mut *self.0;
        let mut buf = [0u8; wire::MAX_LEN];
        let n = wire::emit(h, records, &mut buf);
        if let Err(e) = s.sock.send_to(&buf[..n], SocketAddrV4::new(to, s.port)) {
            s.tx_errors += 1;
            log::debug!("ledger: send to {to}: {e}");
        }
    }
}
