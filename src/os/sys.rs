//! The OS boundary: every `unsafe` call of rcron lives in this module, wrapped once, each
//! block with a `// SAFETY:` line. Everything else is `#![deny(unsafe_code)]`.
//!
//! Also holds the few safe helpers that every role needs around files and processes.

#![allow(unsafe_code)]

use std::ffi::CStr;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Reads a whole regular file of at most `max` bytes. FIFOs, devices and directories are
/// refused without blocking (opened `O_NONBLOCK`, checked with `fstat` before any read).
pub fn read_regular_file(path: &Path, max: usize) -> Result<Vec<u8>, String> {
    let mut f = open_nonblocking(path)?;
    let mut buf = Vec::new();
    (&mut f).take(max as u64 + 1).read_to_end(&mut buf).map_err(|e| format!("cannot read: {e}"))?;
    if buf.len() > max {
        return Err(format!("file is larger than {max} bytes"));
    }
    Ok(buf)
}

/// Reads at most `buf.len()` bytes from the start of a regular file; returns how many.
pub fn read_regular_prefix(path: &Path, buf: &mut [u8]) -> Result<usize, String> {
    let mut f = open_nonblocking(path)?;
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("cannot read: {e}")),
        }
    }
    Ok(n)
}

fn open_nonblocking(path: &Path) -> Result<File, String> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| e.to_string())?;
    let meta = f.metadata().map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("not a regular file".into());
    }
    Ok(f)
}

/// Sets this process's niceness to `level` (absolute, like the original's `setpriority`).
pub fn set_nice(level: i32) -> Result<(), std::io::Error> {
    // SAFETY: setpriority takes plain integers and touches no memory of ours.
    let r = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, level) };
    if r == -1 { Err(std::io::Error::last_os_error()) } else { Ok(()) }
}

/// This process's niceness (`getpriority(2)`), or 0 when it cannot be read.
pub fn nice() -> i32 {
    nix::errno::Errno::clear();
    // SAFETY: getpriority takes plain integers and touches no memory of ours; -1 is also a
    // niceness, so errno (cleared above) tells an error apart.
    let r = unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
    if r == -1 && nix::errno::Errno::last_raw() != 0 { 0 } else { r }
}

/// Makes `cmd`'s child start at niceness `level` (the daemon's hooks: at the niceness the
/// daemon was started with, not at its own `daemon_nice`). A refusal is ignored: a hook at
/// the daemon's niceness is better than a hook not run.
pub fn nice_in_child(cmd: &mut std::process::Command, level: i32) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs between fork and exec and only calls setpriority, a plain
    // system call: async-signal-safe, no allocation, no locks.
    unsafe {
        cmd.pre_exec(move || {
            libc::setpriority(libc::PRIO_PROCESS, 0, level);
            Ok(())
        });
    }
}

/// Local time of `secs` since the epoch, as (month 0..11, day 1..31, hour, minute, second).
pub fn local_time(secs: i64) -> Option<(usize, u32, u32, u32, u32)> {
    let t: libc::time_t = secs as libc::time_t;
    // SAFETY: an all-zero `tm` is a valid value of this plain C struct.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are to live, properly aligned locals; localtime_r is re-entrant.
    let r = unsafe { libc::localtime_r(&t, &mut tm) };
    if r.is_null() {
        return None;
    }
    Some((
        tm.tm_mon.clamp(0, 11) as usize,
        tm.tm_mday as u32,
        tm.tm_hour as u32,
        tm.tm_min as u32,
        tm.tm_sec as u32,
    ))
}

/// Raises this process's soft limit of open descriptors to `want` (at most the hard limit):
/// the daemon holds one per waiting wrapper, and the usual soft limit is 1024.
pub fn raise_fd_limit(want: u64) {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE)
        && soft < want
    {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, want.min(hard), hard);
    }
}

/// Points stderr at /dev/null (a detached daemon, once started: the pipe its starter read
/// is closed, and hooks it runs inherit stderr).
pub fn stderr_to_null() {
    if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
        let _ = nix::unistd::dup2_stderr(&null);
    }
}

/// True while a process with this pid exists (EPERM: it exists, owned by someone else).
pub fn pid_alive(pid: u32) -> bool {
    let Ok(p) = i32::try_from(pid) else {
        return false;
    };
    if p <= 0 {
        return false;
    }
    !matches!(
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), None),
        Err(nix::errno::Errno::ESRCH)
    )
}

/// Whole seconds of the wall clock since the epoch (0 before 1970).
pub fn wall_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The wall clock in milliseconds since the epoch (0 before 1970).
pub fn wall_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Milliseconds on CLOCK_MONOTONIC: system-wide, so comparable between processes of one boot.
pub fn monotonic_ms() -> u64 {
    match nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC) {
        Ok(ts) => ts.tv_sec() as u64 * 1000 + ts.tv_nsec() as u64 / 1_000_000,
        Err(_) => 0,
    }
}

/// Makes `cmd`'s child start with an empty signal mask. The wrapper blocks the signals it
/// forwards (to read them from a signalfd); a mask survives `exec`, and std does not reset it.
pub fn unblock_signals_in_child(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs between fork and exec and only calls sigemptyset and
    // pthread_sigmask on a local set: both async-signal-safe, no allocation, no locks.
    unsafe {
        cmd.pre_exec(|| {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            if libc::pthread_sigmask(libc::SIG_SETMASK, &set, std::ptr::null_mut()) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Starts `argv[0]` with `argv[1..]` the way POSIX `execvp` does on every C library: when the
/// kernel refuses the file as no executable format (ENOEXEC: a script without a `#!` line), it
/// runs `/bin/sh FILE ARGS...` instead. glibc's execvp does this and musl's does not, so rcron
/// does it itself and a config tested on a glibc PC behaves the same on a static appliance.
/// `path` is the PATH that finds a bare program name; `setup` configures each attempt
/// (environment, process group, stdio, signal mask). Errors: those of the first attempt.
pub fn spawn_posix(
    argv: &[std::ffi::OsString],
    path: &std::ffi::OsStr,
    setup: impl Fn(&mut std::process::Command),
) -> std::io::Result<std::process::Child> {
    let prog = argv.first().ok_or(std::io::ErrorKind::InvalidInput)?;
    let mut cmd = std::process::Command::new(prog);
    cmd.args(&argv[1..]);
    setup(&mut cmd);
    match cmd.spawn() {
        Err(e) if e.raw_os_error() == Some(libc::ENOEXEC) => {
            let Some(file) = find_program(Path::new(prog), path) else { return Err(e) };
            let mut sh = std::process::Command::new("/bin/sh");
            sh.arg(file).args(&argv[1..]);
            setup(&mut sh);
            sh.spawn()
        }
        r => r,
    }
}

/// Where `execvp` finds `prog`: itself when it has a `/`, else the first regular file of that
/// name in a directory of `path`.
pub fn find_program(prog: &Path, path: &std::ffi::OsStr) -> Option<std::path::PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    if prog.as_os_str().as_bytes().contains(&b'/') {
        return Some(prog.to_path_buf());
    }
    std::env::split_paths(path).map(|d| d.join(prog)).find(|p| p.is_file())
}

/// True when the file starts with neither `#!` nor the ELF magic: `exec` refuses it with
/// ENOEXEC and [`spawn_posix`] runs it with `/bin/sh`.
pub fn needs_shell(file: &Path) -> bool {
    let mut head = [0u8; 4];
    match read_regular_prefix(file, &mut head) {
        Ok(n) => !(head[..n].starts_with(b"#!") || head[..n].starts_with(b"\x7fELF")),
        Err(_) => false,
    }
}

/// Whether [`open_nofollow`] creates the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Create {
    /// The file must not exist yet (`O_CREAT | O_EXCL`, else `AlreadyExists`).
    New,
    /// Created when missing, kept as it is when present (`O_CREAT`).
    IfMissing,
    /// It must exist (else `NotFound`).
    Never,
}

/// Opens `path` for reading and writing, never through a symlink (`O_NOFOLLOW`: a planted
/// link fails with ELOOP) and never blocking in the open itself (`O_RDWR | O_NONBLOCK`: a
/// FIFO or device planted at the name opens at once; callers that need a regular file check
/// it), creating it as `create` says; `mode` applies to a created file (0600 for private
/// files, 0644 for ones scripts read). Never truncates. Errors: open(2)'s.
pub fn open_nofollow(path: &Path, create: Create, mode: u32) -> std::io::Result<File> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(create == Create::IfMissing)
        .create_new(create == Create::New)
        .truncate(false)
        .mode(mode)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
}

/// Swaps the names `a` and `b` atomically (`renameat2(RENAME_EXCHANGE)`, Linux >= 3.15): both
/// must exist. Called through the system call itself: musl's libc has no wrapper that works
/// on every build, and the static binary must do what a glibc build does. Errors: EINVAL or
/// ENOSYS where the filesystem or kernel cannot exchange; the usual rename errors.
pub fn rename_exchange(a: &CStr, b: &CStr) -> std::io::Result<()> {
    const RENAME_EXCHANGE: libc::c_uint = 1 << 1;
    // SAFETY: both pointers are NUL-terminated strings that live across the call; the system
    // call only reads them.
    let r = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            RENAME_EXCHANGE,
        )
    };
    if r < 0 { Err(std::io::Error::last_os_error()) } else { Ok(()) }
}

/// Receives the datagrams waiting on the non-blocking socket `sock`, at most `bufs.len()`,
/// in one system call (recvmmsg(2) with MSG_DONTWAIT): datagram `i` in `bufs[i]`, its length
/// (cut to the buffer) in `lens[i]`. Returns how many; 0 when none was waiting. Errors: the
/// socket's, as recvmsg(2) gives them.
pub fn recv_batch<const N: usize>(
    sock: std::os::fd::BorrowedFd<'_>,
    bufs: &mut [[u8; N]],
    lens: &mut [usize],
) -> std::io::Result<usize> {
    recv_batch_inner(sock, bufs, lens, None)
}

/// [`recv_batch`], and when each datagram arrived: `stamps[i]`, nanoseconds of the wall clock
/// since the epoch as the kernel stamped it on arrival (socket(7) SO_TIMESTAMPNS, turned on
/// by [`set_rx_timestamps`]); `None` when the kernel gave none.
pub fn recv_batch_stamped<const N: usize>(
    sock: std::os::fd::BorrowedFd<'_>,
    bufs: &mut [[u8; N]],
    lens: &mut [usize],
    stamps: &mut [Option<i64>],
) -> std::io::Result<usize> {
    recv_batch_inner(sock, bufs, lens, Some(stamps))
}

/// SO_TIMESTAMPNS_OLD and _NEW (asm-generic/socket.h: x86_64, aarch64 and arm alike). The old
/// option is asked for, as every kernel since 2.6.22 has it; its control message carries a
/// `timespec` of two longs (16 bytes on 64-bit, 8 on 32-bit), and musl's 64-bit-time ABI on
/// 32-bit targets may add a copy as the new one (two 64-bit fields).
const SO_TIMESTAMPNS_OLD: libc::c_int = 35;
const SO_TIMESTAMPNS_NEW: libc::c_int = 64;
/// Room for one datagram's control messages: a timestamp (and its converted copy) fits.
const CMSG_ROOM: usize = 64;

fn recv_batch_inner<const N: usize>(
    sock: std::os::fd::BorrowedFd<'_>,
    bufs: &mut [[u8; N]],
    lens: &mut [usize],
    mut stamps: Option<&mut [Option<i64>]>,
) -> std::io::Result<usize> {
    use std::os::fd::AsRawFd;
    const MAX: usize = 16;
    let mut n = bufs.len().min(lens.len()).min(MAX);
    if let Some(s) = &stamps {
        n = n.min(s.len());
    }
    // SAFETY: all-zero iovec and mmsghdr are valid values of these plain C structs.
    let mut iov: [libc::iovec; MAX] = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let mut msgs: [libc::mmsghdr; MAX] = unsafe { std::mem::zeroed() };
    // u64 words: aligned for the cmsghdr the kernel writes at their start.
    let mut control = [[0u64; CMSG_ROOM / 8]; MAX];
    for (((v, m), b), c) in
        iov.iter_mut().zip(msgs.iter_mut()).zip(bufs.iter_mut()).zip(control.iter_mut()).take(n)
    {
        v.iov_base = b.as_mut_ptr().cast();
        v.iov_len = N;
        m.msg_hdr.msg_iov = v;
        m.msg_hdr.msg_iovlen = 1;
        if stamps.is_some() {
            m.msg_hdr.msg_control = c.as_mut_ptr().cast();
            m.msg_hdr.msg_controllen = CMSG_ROOM as _;
        }
    }
    // SAFETY: the first `n` headers each point at one iovec of `iov`, which points at a live
    // buffer of N bytes in `bufs`, and (with stamps) at CMSG_ROOM bytes of `control`; all of
    // them outlive the call, which writes only into those buffers and the headers' msg_len,
    // msg_controllen and msg_flags. No timeout pointer.
    let r = unsafe {
        libc::recvmmsg(
            sock.as_raw_fd(),
            msgs.as_mut_ptr(),
            n as libc::c_uint,
            libc::MSG_DONTWAIT as _, // c_int in glibc's prototype, c_uint in musl's
            std::ptr::null_mut(),
        )
    };
    if r < 0 {
        let e = std::io::Error::last_os_error();
        return if e.kind() == std::io::ErrorKind::WouldBlock { Ok(0) } else { Err(e) };
    }
    let got = (r as usize).min(n);
    for (i, m) in msgs.iter().enumerate().take(got) {
        lens[i] = (m.msg_len as usize).min(N);
        if let Some(s) = stamps.as_deref_mut() {
            s[i] = rx_stamp(&m.msg_hdr);
        }
    }
    Ok(got)
}

/// The arrival stamp among the control messages `recvmmsg` left in `hdr`, in nanoseconds.
#[allow(clippy::unnecessary_cast)] // msg_controllen and cmsg_len are u32 on musl, usize on glibc
fn rx_stamp(hdr: &libc::msghdr) -> Option<i64> {
    if hdr.msg_control.is_null() || (hdr.msg_controllen as usize) > CMSG_ROOM {
        return None;
    }
    let mut stamp = None;
    // SAFETY: `hdr` is a header recvmmsg filled in: msg_control points at CMSG_ROOM live,
    // aligned bytes of which the kernel wrote msg_controllen (checked above to fit), and the
    // CMSG macros walk only within msg_controllen.
    let mut c = unsafe { libc::CMSG_FIRSTHDR(hdr) };
    while !c.is_null() {
        // SAFETY: `c` is a non-null header inside the control buffer (CMSG_FIRSTHDR/NXTHDR).
        let (level, kind, len) = unsafe { ((*c).cmsg_level, (*c).cmsg_type, (*c).cmsg_len) };
        // SAFETY: as above; CMSG_DATA points just past the header, inside the buffer.
        let data = unsafe { libc::CMSG_DATA(c) };
        // SAFETY: as above.
        let head = unsafe { libc::CMSG_LEN(0) } as usize;
        let payload = (len as usize).saturating_sub(head);
        let fits = data as usize + payload <= hdr.msg_control as usize + CMSG_ROOM;
        if level == libc::SOL_SOCKET
            && fits
            && (kind == SO_TIMESTAMPNS_OLD || kind == SO_TIMESTAMPNS_NEW)
        {
            let mut b = [0u8; 16];
            let take = payload.min(16);
            // SAFETY: `data` points at `payload` bytes inside the control buffer (`fits`);
            // `take` is at most that, and `b` has room for it.
            unsafe { std::ptr::copy_nonoverlapping(data, b.as_mut_ptr(), take) };
            stamp = match payload {
                16 => {
                    let sec = i64::from_ne_bytes(b[..8].try_into().unwrap_or_default());
                    let nsec = i64::from_ne_bytes(b[8..].try_into().unwrap_or_default());
                    Some(sec.saturating_mul(1_000_000_000).saturating_add(nsec))
                }
                8 => {
                    // A 32-bit `timespec`: its seconds read unsigned, right until 2106.
                    let sec = i32::from_ne_bytes(b[..4].try_into().unwrap_or_default());
                    let nsec = i32::from_ne_bytes(b[4..8].try_into().unwrap_or_default());
                    Some(sec as u32 as i64 * 1_000_000_000 + nsec as i64)
                }
                _ => stamp,
            };
        }
        // SAFETY: `c` is a header inside the buffer described by `hdr`.
        c = unsafe { libc::CMSG_NXTHDR(hdr, c) };
    }
    stamp
}

/// Asks the kernel to stamp each datagram `sock` receives with its arrival time on the wall
/// clock, for [`recv_batch_stamped`] (socket(7) SO_TIMESTAMPNS).
pub fn set_rx_timestamps(sock: std::os::fd::BorrowedFd<'_>) -> std::io::Result<()> {
    set_int(sock, libc::SOL_SOCKET, SO_TIMESTAMPNS_OLD, 1)
}

/// Attaches a classic BPF program to `sock` (socket(7) SO_ATTACH_FILTER), replacing the one
/// it had: from then on the kernel queues only the datagrams it accepts. Errors: EINVAL for a
/// program the kernel's checker refuses, ENOMEM.
pub fn attach_filter(
    sock: std::os::fd::BorrowedFd<'_>,
    program: &[libc::sock_filter],
) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let len = u16::try_from(program.len())
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    let prog = libc::sock_fprog { len, filter: program.as_ptr().cast_mut() };
    // SAFETY: `prog` points at `program`, `len` instructions long, both live across the call;
    // the kernel copies the program and writes to neither.
    let r = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ATTACH_FILTER,
            (&prog as *const libc::sock_fprog).cast(),
            std::mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
        )
    };
    if r < 0 { Err(std::io::Error::last_os_error()) } else { Ok(()) }
}

/// The wall clock in nanoseconds since the epoch, on the scale of [`recv_batch_stamped`]'s
/// stamps (CLOCK_REALTIME); 0 before 1970.
pub fn wall_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A raw IPv4 socket for IP protocol `proto`, non-blocking and close-on-exec.
pub fn raw_socket(proto: u8) -> std::io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    let ty = libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
    // SAFETY: socket takes plain integers and returns a new descriptor or -1.
    let fd = unsafe { libc::socket(libc::AF_INET, ty, proto as libc::c_int) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fd was just returned by socket(), is valid and owned by nobody else.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
}

/// A packet(7) socket of type SOCK_DGRAM (the kernel adds the link header), close-on-exec,
/// for sending only: with protocol 0 it receives no frames.
pub fn packet_socket() -> std::io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    let ty = libc::SOCK_DGRAM | libc::SOCK_CLOEXEC;
    // SAFETY: socket takes plain integers and returns a new descriptor or -1. Protocol 0:
    // the socket receives no frames; sendto names the protocol of each one.
    let fd = unsafe { libc::socket(libc::AF_PACKET, ty, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fd was just returned by socket(), is valid and owned by nobody else.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
}

/// Sends `payload` as one frame of Ethernet protocol `proto` to the broadcast address on
/// interface `ifindex`, through a [`packet_socket`].
pub fn packet_send_broadcast(
    sock: std::os::fd::BorrowedFd<'_>,
    ifindex: u32,
    proto: u16,
    payload: &[u8],
) -> std::io::Result<()> {
    // SAFETY: sockaddr_ll is plain old data; all-zero is a valid value of it.
    let mut to: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    to.sll_family = libc::AF_PACKET as u16;
    to.sll_protocol = proto.to_be();
    to.sll_ifindex = ifindex as i32;
    to.sll_halen = 6;
    to.sll_addr[..6].copy_from_slice(&[0xff; 6]);
    // SAFETY: `payload` and `to` are valid for the lengths given for the whole call; sendto
    // only reads them.
    let r = unsafe {
        libc::sendto(
            std::os::fd::AsRawFd::as_raw_fd(&sock),
            payload.as_ptr().cast(),
            payload.len(),
            0,
            (&to as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Tells a raw IPv4 socket that what it sends starts with its own IP header (IP_HDRINCL,
/// raw(7)): the kernel then only fills in the checksum (and the total length, a zero
/// identification or source).
pub fn set_ip_hdrincl(sock: std::os::fd::BorrowedFd<'_>) -> std::io::Result<()> {
    set_ip_int(sock, libc::IP_HDRINCL, 1)
}

/// Drops received IPv4 packets whose TTL is below `ttl` in the kernel (IP_MINTTL, ip(7);
/// RFC 5082's TTL check): with 255, only hosts on the link can reach the socket.
pub fn set_ip_minttl(sock: std::os::fd::BorrowedFd<'_>, ttl: u8) -> std::io::Result<()> {
    set_ip_int(sock, libc::IP_MINTTL, ttl as libc::c_int)
}

/// An integer IPPROTO_IP option that nix does not wrap.
fn set_ip_int(
    sock: std::os::fd::BorrowedFd<'_>,
    opt: libc::c_int,
    v: libc::c_int,
) -> std::io::Result<()> {
    set_int(sock, libc::IPPROTO_IP, opt, v)
}

/// An integer socket option at `level`.
fn set_int(
    sock: std::os::fd::BorrowedFd<'_>,
    level: libc::c_int,
    opt: libc::c_int,
    v: libc::c_int,
) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `v` is a live c_int and `len` its size; setsockopt only reads it.
    let r = unsafe {
        libc::setsockopt(sock.as_raw_fd(), level, opt, (&v as *const libc::c_int).cast(), len)
    };
    if r < 0 { Err(std::io::Error::last_os_error()) } else { Ok(()) }
}

/// `fd` as a timerfd. Not a memory-safety contract (a descriptor of another kind only makes
/// the timerfd calls fail with EINVAL), but nix marks it unsafe.
pub fn timerfd_from(fd: std::os::fd::OwnedFd) -> nix::sys::timerfd::TimerFd {
    // SAFETY: TimerFd only passes the descriptor to timerfd_settime/gettime and read, which
    // fail cleanly on a descriptor of another kind; it owns `fd` from here on.
    unsafe { nix::sys::timerfd::TimerFd::from_owned_fd(fd) }
}

/// An `ifreq` naming interface `name`: checked to fit with its NUL.
fn ifreq(name: &str) -> std::io::Result<libc::ifreq> {
    if name.is_empty() || name.len() >= libc::IFNAMSIZ {
        return Err(std::io::Error::from(std::io::ErrorKind::InvalidInput));
    }
    // SAFETY: an all-zero ifreq is a valid value of this plain C struct.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in req.ifr_name.iter_mut().zip(name.bytes()) {
        *d = s as libc::c_char;
    }
    Ok(req)
}

/// Runs the interface ioctl `request` on `req` through `sock`.
fn interface_ioctl(
    sock: std::os::fd::BorrowedFd<'_>,
    request: libc::c_ulong,
    req: &mut libc::ifreq,
) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: req is a live, initialised ifreq with a NUL-terminated name (see `ifreq`); the
    // SIOCGIF* requests used here write only inside it.
    let r = unsafe { libc::ioctl(sock.as_raw_fd(), request as _, req as *mut libc::ifreq) };
    if r < 0 { Err(std::io::Error::last_os_error()) } else { Ok(()) }
}

/// The `IFF_*` flags of interface `name` (SIOCGIFFLAGS), asked through `sock` (any
/// AF_INET socket; the daemon keeps one open so that a check costs one system call).
pub fn interface_flags(sock: std::os::fd::BorrowedFd<'_>, name: &str) -> std::io::Result<i32> {
    let mut req = ifreq(name)?;
    interface_ioctl(sock, libc::SIOCGIFFLAGS as libc::c_ulong, &mut req)?;
    // SAFETY: SIOCGIFFLAGS succeeded, so the union holds ifr_flags.
    Ok(unsafe { req.ifr_ifru.ifru_flags } as i32)
}

/// The ifindex of interface `name` (SIOCGIFINDEX), asked through `sock` as
/// [`interface_flags`] (`if_nametoindex` opens a socket of its own at each call).
pub fn interface_index(sock: std::os::fd::BorrowedFd<'_>, name: &str) -> std::io::Result<u32> {
    let mut req = ifreq(name)?;
    interface_ioctl(sock, libc::SIOCGIFINDEX as libc::c_ulong, &mut req)?;
    // SAFETY: SIOCGIFINDEX succeeded, so the union holds ifr_ifindex.
    Ok(unsafe { req.ifr_ifru.ifru_ifindex }.max(0) as u32)
}

/// The MTU of interface `name` (SIOCGIFMTU), asked through `sock` as [`interface_flags`].
pub fn interface_mtu(sock: std::os::fd::BorrowedFd<'_>, name: &str) -> std::io::Result<u32> {
    let mut req = ifreq(name)?;
    interface_ioctl(sock, libc::SIOCGIFMTU as libc::c_ulong, &mut req)?;
    // SAFETY: SIOCGIFMTU succeeded, so the union holds ifr_mtu.
    Ok(unsafe { req.ifr_ifru.ifru_mtu }.max(0) as u32)
}

/// Makes `cmd`'s child the leader of a new session (detached from the terminal), with an
/// empty signal mask.
pub fn new_session_in_child(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    unblock_signals_in_child(cmd);
    // SAFETY: the closure runs between fork and exec and only calls setsid, which is
    // async-signal-safe; it allocates nothing and takes no locks.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Blocks TERM, INT, HUP, USR1 and CHLD and returns a non-blocking signalfd that reads them:
/// the daemon's processes take signals in their poll loop, never in a handler.
pub fn daemon_signal_fd() -> nix::Result<nix::sys::signalfd::SignalFd> {
    use nix::sys::signal::{SigSet, Signal};
    use nix::sys::signalfd::{SfdFlags, SignalFd};
    let mut mask = SigSet::empty();
    for s in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP, Signal::SIGUSR1, Signal::SIGCHLD] {
        mask.add(s);
    }
    mask.thread_block()?;
    SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
}
