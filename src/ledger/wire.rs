//! The run ledger's datagram: one header, then records.
//!
//! Owns: the byte layout, [`parse`] and [`emit`]. Guarantees: `parse` checks every length
//! before it reads and never panics, whatever the bytes; `emit` writes exactly what `parse`
//! reads back. All integers are big-endian (network order).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                      magic "RCL1"                             |
//! +---------------+---------------+---------------+---------------+
//! |     kind      |     VRID      |   priority    |    flags      |
//! +---------------+---------------+---------------+---------------+
//! |                      sequence number                          |
//! +---------------------------------------------------------------+
//! |               sender's wall clock, ms since the epoch         |
//! |                                                               |
//! +-------------------------------+-------------------------------+
//! |        record count           |          reserved (0)         |
//! +-------------------------------+-------------------------------+
//! |  records, 24 bytes each:                                      |
//! |    job (8) | slot, epoch s (8) | runner IPv4 (4) |            |
//! |    runner priority (1) | reserved (3)                         |
//! +---------------------------------------------------------------+
//! ```
//!
//! kind: 1 CLAIM (one record: the sender asks to run it), 2 ACK (the record, accepted),
//! 3 NACK (one record: who holds the slot instead), 4 SYNC_REQ (no record: send me what you
//! hold), 5 SYNC (records; flag [`FLAG_LAST`] on the last datagram of an answer).
//! The sequence number of ACK, NACK and SYNC is the one of the request they answer.

use std::net::Ipv4Addr;

/// The first four bytes of every datagram (rcron ledger, version 1).
pub const MAGIC: [u8; 4] = *b"RCL1";
/// Bytes of the header.
pub const HEADER_LEN: usize = 24;
/// Bytes of one record.
pub const RECORD_LEN: usize = 24;
/// Records in one datagram at most (a SYNC answer is split): 1176 bytes, under any link's
/// minimum IPv4 MTU for unfragmented UDP on Ethernet.
pub const MAX_RECORDS: usize = 48;
/// The longest datagram, bytes.
pub const MAX_LEN: usize = HEADER_LEN + MAX_RECORDS * RECORD_LEN;
/// SYNC: this datagram ends the answer.
pub const FLAG_LAST: u8 = 1;

mod field {
    use std::ops::Range;
    pub const MAGIC: Range<usize> = 0..4;
    pub const KIND: usize = 4;
    pub const VRID: usize = 5;
    pub const PRIORITY: usize = 6;
    pub const FLAGS: usize = 7;
    pub const SEQ: Range<usize> = 8..12;
    pub const WALL_MS: Range<usize> = 12..20;
    pub const COUNT: Range<usize> = 20..22;
    pub const RESERVED: Range<usize> = 22..24;
    // within a record
    pub const JOB: Range<usize> = 0..8;
    pub const SLOT: Range<usize> = 8..16;
    pub const RUNNER: Range<usize> = 16..20;
    pub const RUNNER_PRIORITY: usize = 20;
}

/// What a datagram says (the header's kind byte).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Claim = 1,
    Ack = 2,
    Nack = 3,
    SyncReq = 4,
    Sync = 5,
}

impl Kind {
    fn from_u8(b: u8) -> Option<Kind> {
        Some(match b {
            1 => Kind::Claim,
            2 => Kind::Ack,
            3 => Kind::Nack,
            4 => Kind::SyncReq,
            5 => Kind::Sync,
            _ => return None,
        })
    }
}

/// One slot's record: `runner` ran it (or holds the claim to run it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record {
    /// The job's identity: a 64-bit hash of `--id`, or of the user and command line.
    pub job: u64,
    /// The slot's scheduled time, epoch seconds (the wrapper's start rounded down to `--slot`).
    pub slot: u64,
    pub runner: Ipv4Addr,
    /// The runner's election priority when it claimed the slot (the tie-break of two claims).
    pub runner_priority: u8,
}

/// A datagram's header fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub kind: Kind,
    pub vrid: u8,
    /// The sender's election priority now.
    pub priority: u8,
    pub flags: u8,
    pub seq: u32,
    /// The sender's wall clock at sending, ms since the epoch (clock offsets are measured
    /// from it).
    pub wall_ms: u64,
}

/// Why [`parse`] refused a datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    Truncated,
    BadMagic,
    BadKind,
    /// The count disagrees with the length, exceeds [`MAX_RECORDS`], or the kind's rule
    /// (CLAIM, ACK, NACK: one; SYNC_REQ: none).
    BadCount,
    BadReserved,
}

impl Error {
    /// The reason as the debug log names it.
    pub fn as_str(self) -> &'static str {
        match self {
            Error::Truncated => "truncated",
            Error::BadMagic => "bad_magic",
            Error::BadKind => "bad_kind",
            Error::BadCount => "bad_count",
            Error::BadReserved => "bad_reserved",
        }
    }
}

fn be_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(b);
    u64::from_be_bytes(a)
}

fn be_u32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(b);
    u32::from_be_bytes(a)
}

/// A checked datagram: the header and its records, read from `buf` on demand.
pub struct Message<'a> {
    pub header: Header,
    records: &'a [u8],
}

impl<'a> Message<'a> {
    /// The records, in order (at most [`MAX_RECORDS`]).
    pub fn records(&self) -> impl Iterator<Item = Record> + 'a {
        self.records.chunks_exact(RECORD_LEN).map(|r| Record {
            job: be_u64(&r[field::JOB]),
            slot: be_u64(&r[field::SLOT]),
            runner: Ipv4Addr::from(be_u32(&r[field::RUNNER])),
            runner_priority: r[field::RUNNER_PRIORITY],
        })
    }

    /// The first record (CLAIM, ACK and NACK carry exactly one).
    pub fn record(&self) -> Option<Record> {
        self.records().next()
    }
}

/// Checks a datagram. Errors name the first rule it breaks.
pub fn parse(buf: &[u8]) -> Result<Message<'_>, Error> {
    if buf.len() < HEADER_LEN {
        return Err(Error::Truncated);
    }
    if buf[field::MAGIC] != MAGIC {
        return Err(Error::BadMagic);
    }
    let kind = Kind::from_u8(buf[field::KIND]).ok_or(Error::BadKind)?;
    if buf[field::RESERVED] != [0, 0] {
        return Err(Error::BadReserved);
    }
    let count = u16::from_be_bytes([buf[field::COUNT.start], buf[field::COUNT.start + 1]]);
    let count = count as usize;
    let want = match kind {
        Kind::Claim | Kind::Ack | Kind::Nack => count == 1,
        Kind::SyncReq => count == 0,
        Kind::Sync => count <= MAX_RECORDS,
    };
    if !want || buf.len() != HEADER_LEN + count * RECORD_LEN {
        return Err(if buf.len() < HEADER_LEN + count * RECORD_LEN {
            Error::Truncated
        } else {
            Error::BadCount
        });
    }
    let header = Header {
        kind,
        vrid: buf[field::VRID],
        priority: buf[field::PRIORITY],
        flags: buf[field::FLAGS],
        seq: be_u32(&buf[field::SEQ]),
        wall_ms: be_u64(&buf[field::WALL_MS]),
    };
    Ok(Message { header, records: &buf[HEADER_LEN..] })
}

/// Writes a datagram into `buf` and returns its length. At most [`MAX_RECORDS`] records are
/// written (the caller splits longer lists); `buf` must hold [`MAX_LEN`] bytes.
pub fn emit(h: &Header, records: &[Record], buf: &mut [u8; MAX_LEN]) -> usize {
    let records = &records[..records.len().min(MAX_RECORDS)];
    buf[field::MAGIC].copy_from_slice(&MAGIC);
    buf[field::KIND] = h.kind as u8;
    buf[field::VRID] = h.vrid;
    buf[field::PRIORITY] = h.priority;
    buf[field::FLAGS] = h.flags;
    buf[field::SEQ].copy_from_slice(&h.seq.to_be_bytes());
    buf[field::WALL_MS].copy_from_slice(&h.wall_ms.to_be_bytes());
    buf[field::COUNT].copy_from_slice(&(records.len() as u16).to_be_bytes());
    buf[field::RESERVED].copy_from_slice(&[0, 0]);
    for (i, r) in records.iter().enumerate() {
        let b = &mut buf[HEADER_LEN + i * RECORD_LEN..HEADER_LEN + (i + 1) * RECORD_LEN];
        b[field::JOB].copy_from_slice(&r.job.to_be_bytes());
        b[field::SLOT].copy_from_slice(&r.slot.to_be_bytes());
        b[field::RUNNER].copy_from_slice(&r.runner.octets());
        b[field::RUNNER_PRIORITY] = r.runner_priority;
        b[21..24].copy_from_slice(&[0, 0, 0]);
    }
    HEADER_LEN + records.len() * RECORD_LEN
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(kind: Kind) -> Header {
        Header { kind, vrid: 61, priority: 150, flags: 0, seq: 7, wall_ms: 1_796_000_000_123 }
    }

    fn record(n: u64) -> Record {
        Record {
            job: 0x0123_4567_89ab_cdef ^ n,
            slot: 1_796_000_040 + n,
            runner: Ipv4Addr::new(192, 0, 2, 11),
            runner_priority: 150,
        }
    }

    /// Emitting into a 0xa5-filled buffer: every byte of the datagram is written, and the
    /// header is where the diagram says.
    #[test]
    fn emit_writes_the_diagrams_layout_and_parse_reads_it_back() {
        let mut buf = [0xa5u8; MAX_LEN];
        let n = emit(&header(Kind::Claim), &[record(0)], &mut buf);
        assert_eq!(n, HEADER_LEN + RECORD_LEN);
        assert_eq!(
            &buf[..24],
            &[
                b'R', b'C', b'L', b'1', 1, 61, 150, 0, 0, 0, 0, 7, 0, 0, 0x01, 0xa2, 0x29, 0xf1,
                0x28, 0x7b, 0, 1, 0, 0
            ]
        );
        assert!(!buf[..n].contains(&0xa5), "an unwritten byte: {:x?}", &buf[..n]);
        let m = parse(&buf[..n]).unwrap();
        assert_eq!(m.header, header(Kind::Claim));
        assert_eq!(m.record(), Some(record(0)));
    }

    #[test]
    fn a_sync_carries_up_to_48_records_and_splits_the_rest() {
        let recs: Vec<Record> = (0..60).map(record).collect();
        let mut buf = [0u8; MAX_LEN];
        let n = emit(&Header { flags: FLAG_LAST, ..header(Kind::Sync) }, &recs, &mut buf);
        assert_eq!(n, MAX_LEN);
        let m = parse(&buf[..n]).unwrap();
        assert_eq!(m.records().collect::<Vec<_>>(), recs[..MAX_RECORDS].to_vec());
        assert_eq!(m.header.flags, FLAG_LAST);
    }

    /// Every rule of `parse`, each on a datagram that breaks only that one.
    #[test]
    fn parse_names_the_rule_a_datagram_breaks() {
        let mut good = [0u8; MAX_LEN];
        let n = emit(&header(Kind::Ack), &[record(1)], &mut good);
        let good = good[..n].to_vec();
        let with = |i: usize, v: u8| {
            let mut b = good.clone();
            b[i] = v;
            b
        };
        let cases: [(&str, Vec<u8>, Error); 7] = [
            ("short header", good[..23].to_vec(), Error::Truncated),
            ("short record", good[..40].to_vec(), Error::Truncated),
            ("magic", with(0, b'X'), Error::BadMagic),
            ("kind 0", with(4, 0), Error::BadKind),
            ("kind 6", with(4, 6), Error::BadKind),
            ("reserved", with(23, 1), Error::BadReserved),
            ("ack with two records", with(21, 2), Error::Truncated),
        ];
        for (what, b, e) in cases {
            assert_eq!(parse(&b).err(), Some(e), "{what}");
        }
        let mut long = good.clone();
        long.push(0);
        assert_eq!(parse(&long).err(), Some(Error::BadCount), "a trailing byte");
        let mut req = [0u8; MAX_LEN];
        let n = emit(&header(Kind::SyncReq), &[], &mut req);
        assert!(parse(&req[..n]).is_ok());
        let mut bad = req[..n].to_vec();
        bad[21] = 1;
        bad.extend_from_slice(&[0; RECORD_LEN]);
        assert_eq!(parse(&bad).err(), Some(Error::BadCount), "a sync request with a record");
    }

    #[test]
    fn parse_never_panics_on_any_prefix_or_byte_flip() {
        let mut buf = [0u8; MAX_LEN];
        let n = emit(&header(Kind::Sync), &[record(1), record(2)], &mut buf);
        for len in 0..=n {
            let _ = parse(&buf[..len]);
        }
        for i in 0..n {
            for v in [0u8, 1, 0x7f, 0xff] {
                let mut b = buf[..n].to_vec();
                b[i] = v;
                if let Ok(m) = parse(&b) {
                    let _ = m.records().count();
                }
            }
        }
    }
}
