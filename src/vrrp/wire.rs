//! The VRRP wire format: VRRPv2 (RFC 3768) and VRRPv3 (RFC 5798) advertisements over IPv4.
//!
//! Owns: reading the IPv4 header a raw socket delivers ([`parse_ipv4`]), parsing and
//! checksum-verifying a VRRP advertisement ([`parse_vrrp`]), writing one ([`emit`]) and the
//! RFC 1071 Internet checksum ([`checksum`]), including the three VRRPv3 IPv4 checksum forms
//! found in the wild (see `shared/vrrp-interop.md`).
//!
//! Guarantees: pure (no I/O, no clock, no allocation) and zero-copy (a parsed [`Advert`]
//! borrows the received bytes). Never panics on any input: every header is read through a
//! fixed-size array obtained by one length check (`first_chunk`), and every field is a
//! constant offset into that array, so an offset outside its header is a compile error
//! (rustc's deny-by-default `unconditional_panic`), not a runtime panic. Variable-length parts
//! (addresses, v2 authentication data) are split off with checked slice methods only after the
//! message length has been checked against the address count. Nothing here indexes with a
//! value that came from the wire, and nothing unwraps.
//!
//! Not checked here, because they are policy, not format: TTL, sender, VRID, interval value,
//! authentication. The caller (the election daemon) decides and counts those.

#![allow(dead_code)]

use crate::config::V3Checksum;
use std::fmt;
use std::net::Ipv4Addr;

/// IP protocol number of VRRP.
pub const PROTO_VRRP: u8 = 112;
/// The VRRP IPv4 multicast group (RFC 3768 section 5.2.2, RFC 5798 section 5.1.1.2).
pub const MCAST_GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// Largest VRRP message we emit or accept (255 addresses + v2 auth).
pub const MAX_MSG: usize = 8 + 4 * 255 + 8;

/// Why a packet was dropped, or why a message could not be written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WireError {
    /// Shorter than a header, or than its total length / address count says.
    Truncated,
    /// Not IPv4, IHL < 5, or total length shorter than the header length.
    BadIpHeader,
    /// The IP protocol is not 112.
    NotVrrp,
    /// The VRRP version is not 2 or 3. Also returned by [`emit`] for a spec whose version
    /// is not 2 or 3.
    BadVersion,
    /// The VRRP type is not 1 (advertisement).
    BadType,
    /// The VRRP message is longer than its version and address count imply. Also returned by
    /// [`emit`] for a spec that cannot be encoded: more than 255 addresses, or an interval
    /// out of range (v2: not whole seconds, 0 s or more than 255 s; v3: 0 or more than 4095 cs).
    BadLength,
    /// The checksum matches none of the accepted forms.
    BadChecksum,
    /// [`emit`]: the output buffer is smaller than the message.
    BufferTooSmall,
}

impl WireError {
    /// Short snake_case name used as a drop-counter key in `--status` (e.g. "truncated", "bad_checksum").
    pub fn name(self) -> &'static str {
        match self {
            WireError::Truncated => "truncated",
            WireError::BadIpHeader => "bad_ip_header",
            WireError::NotVrrp => "not_vrrp",
            WireError::BadVersion => "bad_version",
            WireError::BadType => "bad_type",
            WireError::BadLength => "bad_length",
            WireError::BadChecksum => "bad_checksum",
            WireError::BufferTooSmall => "buffer_too_small",
        }
    }
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WireError::Truncated => "truncated packet",
            WireError::BadIpHeader => "malformed IPv4 header",
            WireError::NotVrrp => "IP protocol is not VRRP (112)",
            WireError::BadVersion => "VRRP version is not 2 or 3",
            WireError::BadType => "VRRP type is not 1 (advertisement)",
            WireError::BadLength => "VRRP length does not match version and address count",
            WireError::BadChecksum => "bad VRRP checksum",
            WireError::BufferTooSmall => "output buffer too small for the VRRP message",
        })
    }
}

impl std::error::Error for WireError {}

/// Field offsets. Every offset is a constant index into a fixed-size header array, so the
/// compiler rejects one that lies outside its header.
mod field {
    /// IPv4 header (RFC 791), fixed part.
    pub mod ip {
        /// Length of the fixed part (IHL = 5).
        pub const HEADER_LEN: usize = 20;
        /// Version (high nibble) and IHL in 32-bit words (low nibble).
        pub const VER_IHL: usize = 0;
        pub const TOS: usize = 1;
        /// Total length, 2 bytes big-endian.
        pub const LENGTH: usize = 2;
        /// Identification, 2 bytes big-endian.
        pub const IDENT: usize = 4;
        pub const TTL: usize = 8;
        pub const PROTOCOL: usize = 9;
        /// Source address, 4 bytes.
        pub const SRC_ADDR: usize = 12;
        /// Destination address, 4 bytes.
        pub const DST_ADDR: usize = 16;
    }

    /// VRRP header, the 8 bytes common in layout to v2 and v3.
    pub mod vrrp {
        pub const HEADER_LEN: usize = 8;
        /// Version (high nibble) and type (low nibble).
        pub const VER_TYPE: usize = 0;
        pub const VRID: usize = 1;
        pub const PRIORITY: usize = 2;
        pub const COUNT: usize = 3;
        /// v2: authentication type.
        pub const AUTH_TYPE: usize = 4;
        /// v2: advertisement interval in seconds.
        pub const ADVER_INT: usize = 5;
        /// v3: 4 reserved bits + 12-bit max advertisement interval in centiseconds,
        /// 2 bytes big-endian.
        pub const MAX_ADVER_INT: usize = 4;
        /// Checksum, 2 bytes big-endian.
        pub const CHECKSUM: usize = 6;
        /// Bytes per IPv4 address in the address list that follows the header.
        pub const ADDR_LEN: usize = 4;
        /// v2: authentication data after the address list.
        pub const AUTH_LEN: usize = 8;
    }
}

// ---------------------------------------------------------------------------------------------
// IPv4
// ---------------------------------------------------------------------------------------------

//  RFC 791 section 3.1, Internet Header Format:
//
//    0                   1                   2                   3
//    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//   |Version|  IHL  |Type of Service|          Total Length         |
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//   |         Identification        |Flags|      Fragment Offset    |
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//   |  Time to Live |    Protocol   |         Header Checksum       |
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//   |                       Source Address                          |
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//   |                    Destination Address                        |
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//   |                    Options                    |    Padding    |
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

/// A received IPv4 packet carrying VRRP (raw sockets deliver the IP header).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv4Packet<'a> {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub ttl: u8,
    /// The IP payload: from the end of the header (options skipped) to the total length.
    pub payload: &'a [u8],
}

/// Read-only view of the fixed part of an IPv4 header; built only from a 20-byte array.
struct IpHeader<'a>(&'a [u8; field::ip::HEADER_LEN]);

impl IpHeader<'_> {
    fn version(&self) -> u8 {
        self.0[field::ip::VER_IHL] >> 4
    }
    /// Header length in bytes (IHL * 4).
    fn header_len(&self) -> usize {
        usize::from(self.0[field::ip::VER_IHL] & 0x0f) * 4
    }
    fn total_len(&self) -> usize {
        let at = field::ip::LENGTH;
        usize::from(u16::from_be_bytes([self.0[at], self.0[at + 1]]))
    }
    fn ttl(&self) -> u8 {
        self.0[field::ip::TTL]
    }
    fn protocol(&self) -> u8 {
        self.0[field::ip::PROTOCOL]
    }
    fn src(&self) -> Ipv4Addr {
        let at = field::ip::SRC_ADDR;
        Ipv4Addr::new(self.0[at], self.0[at + 1], self.0[at + 2], self.0[at + 3])
    }
    fn dst(&self) -> Ipv4Addr {
        let at = field::ip::DST_ADDR;
        Ipv4Addr::new(self.0[at], self.0[at + 1], self.0[at + 2], self.0[at + 3])
    }
}

/// Validates version 4, IHL >= 5 and within the buffer, total length within the buffer (use total length to cut the payload; ignore bytes after it), protocol 112. Does not verify the IP header checksum (the kernel did).
///
/// Errors, in the order checked: a buffer shorter than 20 bytes → `Truncated`; version not 4
/// or IHL < 5 → `BadIpHeader`; IHL beyond the buffer → `Truncated`; total length shorter than
/// the header → `BadIpHeader`; total length beyond the buffer → `Truncated` (the packet was
/// cut short); protocol not 112 → `NotVrrp`. Fragments are not special-cased: Linux raw
/// sockets deliver reassembled datagrams, and a stray fragment fails [`parse_vrrp`].
pub fn parse_ipv4(buf: &[u8]) -> Result<Ipv4Packet<'_>, WireError> {
    let hdr = IpHeader(buf.first_chunk().ok_or(WireError::Truncated)?);
    if hdr.version() != 4 || hdr.header_len() < field::ip::HEADER_LEN {
        return Err(WireError::BadIpHeader);
    }
    let (header_len, total_len) = (hdr.header_len(), hdr.total_len());
    if header_len > buf.len() {
        return Err(WireError::Truncated);
    }
    if total_len < header_len {
        return Err(WireError::BadIpHeader);
    }
    if total_len > buf.len() {
        return Err(WireError::Truncated);
    }
    if hdr.protocol() != PROTO_VRRP {
        return Err(WireError::NotVrrp);
    }
    let payload = buf.get(header_len..total_len).ok_or(WireError::Truncated)?;
    Ok(Ipv4Packet { src: hdr.src(), dst: hdr.dst(), ttl: hdr.ttl(), payload })
}

// ---------------------------------------------------------------------------------------------
// VRRP
// ---------------------------------------------------------------------------------------------

//  RFC 3768 section 5.1, VRRPv2 packet format (Checksum: RFC 1071 over the VRRP message only;
//  the Authentication Data words are always present, zero when Auth Type is 0):
//
//    0                   1                   2                   3
//    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//   |Version| Type  | Virtual Rtr ID|   Priority    | Count IP Addrs|
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//   |   Auth Type   |   Adver Int   |          Checksum             |
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//   |                         IP Address (1)                        |
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//   |                            .                                  |
//   |                            .                                  |
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//   |                         IP Address (n)                        |
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//   |                     Authentication Data (1)                   |
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//   |                     Authentication Data (2)                   |
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
//  RFC 5798 section 5.1, VRRPv3 packet format (IPv4 addresses; "rsvd" MUST be zero on
//  transmission and is ignored on reception; Max Adver Int is in centiseconds):
//
//    0                   1                   2                   3
//    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//   |Version| Type  | Virtual Rtr ID|   Priority    |Count IPvX Addr|
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//   |(rsvd) |     Max Adver Int     |          Checksum             |
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//   |                       IPv4 Address (1)                        |
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//   |                            .                                  |
//   |                            .                                  |
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//   |                       IPv4 Address (n)                        |
//   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
//  VRRPv3 IPv4 checksum (RFC 5798 section 5.2.8) is RFC 1071 over this pseudo-header
//  (RFC 768 layout) followed by the VRRP message. Which destination goes into it differs
//  between implementations, hence `V3Checksum`; RFC 9568 drops the pseudo-header:
//
//    0      7 8     15 16    23 24    31
//   +--------+--------+--------+--------+
//   |          source address           |
//   +--------+--------+--------+--------+
//   |        destination address        |
//   +--------+--------+--------+--------+
//   |  zero  |protocol|   VRRP length   |
//   +--------+--------+--------+--------+

/// VRRP message type: advertisement, the only one defined.
const TYPE_ADVERT: u8 = 1;

/// Which checksum form a v3 packet matched (v2 packets always report V2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChecksumForm {
    V2,
    PseudoHeader,
    PseudoMulticast,
    NoPseudoHeader,
}

impl ChecksumForm {
    /// The v3 form to send with to reproduce this one; `None` for v2.
    pub fn v3_checksum(self) -> Option<V3Checksum> {
        match self {
            ChecksumForm::V2 => None,
            ChecksumForm::PseudoHeader => Some(V3Checksum::PseudoHeader),
            ChecksumForm::PseudoMulticast => Some(V3Checksum::PseudoMulticast),
            ChecksumForm::NoPseudoHeader => Some(V3Checksum::NoPseudoHeader),
        }
    }
}

/// A parsed, checksum-verified VRRP advertisement, borrowing the packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Advert<'a> {
    /// 2 or 3.
    pub version: u8,
    pub vrid: u8,
    pub priority: u8,
    /// Advertisement interval in centiseconds: v2 = seconds * 100 (the byte), v3 = the 12-bit field.
    pub interval_cs: u16,
    /// v2 only: auth type byte (0 none, 1 simple password, other values passed through) and the 8 auth bytes; v3: 0 and zeros.
    pub auth_type: u8,
    pub auth: [u8; 8],
    /// The address list, 4 bytes per address; its length is a multiple of 4 by construction.
    addrs: &'a [u8],
}

impl<'a> Advert<'a> {
    /// Number of addresses carried (the Count field, which parsing checked against the length).
    pub fn addr_count(&self) -> usize {
        self.addrs.len() / field::vrrp::ADDR_LEN
    }

    /// The addresses, in packet order.
    pub fn addrs(&self) -> impl Iterator<Item = Ipv4Addr> + use<'a> {
        let (whole, _) = self.addrs.as_chunks::<{ field::vrrp::ADDR_LEN }>();
        whole.iter().map(|a| Ipv4Addr::from(*a))
    }

    /// True when the advert carries exactly `list`, in the same order.
    pub fn same_addrs(&self, list: &[Ipv4Addr]) -> bool {
        self.addr_count() == list.len() && self.addrs().zip(list).all(|(a, b)| a == *b)
    }

    /// What a keepalived whose `virtual_ipaddress` is `list` makes of the advert's
    /// addresses: keepalived 2.2.7 (`vrrp_check_packet`) wants the same count, then every
    /// address of its own list somewhere in the advert, in any order; else it drops it.
    pub fn keepalived_addr_check(&self, list: &[Ipv4Addr]) -> AddrCheck {
        if self.addr_count() != list.len() {
            return AddrCheck::OtherCount;
        }
        match list.iter().copied().find(|want| !self.addrs().any(|a| a == *want)) {
            Some(a) => AddrCheck::Missing(a),
            None => AddrCheck::Same,
        }
    }
}

/// See [`Advert::keepalived_addr_check`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddrCheck {
    /// The same addresses (in any order): keepalived accepts the advert.
    Same,
    /// Another number of addresses: keepalived drops it.
    OtherCount,
    /// The same number, but this address of the list is not carried: keepalived drops it.
    Missing(Ipv4Addr),
}

/// Read-only view of the 8-byte VRRP header; built only from an 8-byte array.
struct VrrpHeader<'a>(&'a [u8; field::vrrp::HEADER_LEN]);

impl VrrpHeader<'_> {
    fn version(&self) -> u8 {
        self.0[field::vrrp::VER_TYPE] >> 4
    }
    fn msg_type(&self) -> u8 {
        self.0[field::vrrp::VER_TYPE] & 0x0f
    }
    fn vrid(&self) -> u8 {
        self.0[field::vrrp::VRID]
    }
    fn priority(&self) -> u8 {
        self.0[field::vrrp::PRIORITY]
    }
    fn count(&self) -> usize {
        usize::from(self.0[field::vrrp::COUNT])
    }
    /// v2 only.
    fn auth_type(&self) -> u8 {
        self.0[field::vrrp::AUTH_TYPE]
    }
    /// v2 only: the interval byte (seconds) in centiseconds.
    fn v2_interval_cs(&self) -> u16 {
        u16::from(self.0[field::vrrp::ADVER_INT]) * 100
    }
    /// v3 only: the 12-bit interval, reserved bits dropped.
    fn v3_interval_cs(&self) -> u16 {
        let at = field::vrrp::MAX_ADVER_INT;
        u16::from_be_bytes([self.0[at], self.0[at + 1]]) & 0x0fff
    }
}

/// Length of a VRRP message of `version` (2 or 3) carrying `count` addresses.
fn msg_len(version: u8, count: usize) -> usize {
    let auth = if version == 2 { field::vrrp::AUTH_LEN } else { 0 };
    field::vrrp::HEADER_LEN + field::vrrp::ADDR_LEN * count + auth
}

/// Parses the VRRP message `msg` (the IP payload) sent from `src` to `dst` and verifies its checksum.
/// v2: RFC 1071 over the message. v3: accept any of the three forms (try PseudoHeader with the actual dst, then PseudoMulticast, then NoPseudoHeader) and report which one matched.
/// Type must be 1. The message length must equal exactly 8 + 4*count (+ 8 for v2).
///
/// Errors, in the order checked: shorter than 8 bytes → `Truncated`; version → `BadVersion`;
/// type → `BadType`; shorter than the count implies → `Truncated`, longer → `BadLength`;
/// checksum → `BadChecksum`. Field values (interval 0, priority, auth type) are passed through
/// unjudged. A multicast packet (dst 224.0.0.18) whose checksum uses the group address
/// reports `PseudoHeader`, the first form tried, since the two forms coincide there.
pub fn parse_vrrp<'a>(
    msg: &'a [u8],
    src: Ipv4Addr,
    dst: Ipv4Addr,
) -> Result<(Advert<'a>, ChecksumForm), WireError> {
    let (hdr, rest) = msg.split_first_chunk().ok_or(WireError::Truncated)?;
    let hdr = VrrpHeader(hdr);
    let version = hdr.version();
    if version != 2 && version != 3 {
        return Err(WireError::BadVersion);
    }
    if hdr.msg_type() != TYPE_ADVERT {
        return Err(WireError::BadType);
    }
    let expected = msg_len(version, hdr.count());
    if msg.len() < expected {
        return Err(WireError::Truncated);
    }
    if msg.len() > expected {
        return Err(WireError::BadLength);
    }
    // The length now equals the count's: the splits below cannot fail; they are checked
    // anyway so that no arithmetic slip could become a panic.
    let (addrs, tail) =
        rest.split_at_checked(field::vrrp::ADDR_LEN * hdr.count()).ok_or(WireError::Truncated)?;

    if version == 2 {
        if checksum(0, msg) != 0 {
            return Err(WireError::BadChecksum);
        }
        let auth = *tail.first_chunk().ok_or(WireError::Truncated)?;
        let advert = Advert {
            version,
            vrid: hdr.vrid(),
            priority: hdr.priority(),
            interval_cs: hdr.v2_interval_cs(),
            auth_type: hdr.auth_type(),
            auth,
            addrs,
        };
        return Ok((advert, ChecksumForm::V2));
    }

    let len = u16::try_from(msg.len()).map_err(|_| WireError::BadLength)?;
    let forms = [
        (ChecksumForm::PseudoHeader, pseudo_header_sum(src, dst, len)),
        (ChecksumForm::PseudoMulticast, pseudo_header_sum(src, MCAST_GROUP, len)),
        (ChecksumForm::NoPseudoHeader, 0),
    ];
    let form = forms
        .iter()
        .find(|(_, initial)| checksum(*initial, msg) == 0)
        .map(|(form, _)| *form)
        .ok_or(WireError::BadChecksum)?;
    let advert = Advert {
        version,
        vrid: hdr.vrid(),
        priority: hdr.priority(),
        interval_cs: hdr.v3_interval_cs(),
        auth_type: 0,
        auth: [0; 8],
        addrs,
    };
    Ok((advert, form))
}

/// What to send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdvertSpec<'a> {
    /// 2 or 3.
    pub version: u8,
    pub vrid: u8,
    pub priority: u8,
    /// v2: must be a multiple of 100, 100..=25500 → byte = cs/100; v3: 1..=4095 (stored in
    /// 12 bits, reserved bits 0).
    pub interval_cs: u16,
    /// v2 only: Some = auth type 1 with these 8 bytes; None = auth type 0 and 8 zero bytes
    /// (v2 ALWAYS carries 8 auth bytes). Ignored for v3, which has no authentication (the
    /// configuration rejects `auth_pass` with `vrrp_version 3`).
    pub auth: Option<[u8; 8]>,
    /// At most 255.
    pub addrs: &'a [Ipv4Addr],
}

/// Bytes of the IPv4 header an advert is sent with (no options).
pub const IP_HEADER_LEN: usize = field::ip::HEADER_LEN;
/// Type of service of every advert: 0xc0, internetwork control (as keepalived sends).
pub const ADVERT_TOS: u8 = 0xc0;
/// TTL of every advert: 255 (RFC 3768 5.1.1.3, RFC 5798 5.1.1.3; receivers drop any other).
pub const ADVERT_TTL: u8 = 255;

/// Writes the IPv4 header of an advert carrying `payload_len` bytes from `src` to `dst`, for a
/// socket that sends its own header (IP_HDRINCL, as keepalived's send socket does): version 4,
/// IHL 5, [`ADVERT_TOS`], no flags (as keepalived), [`ADVERT_TTL`], protocol 112, identification
/// `id`.
/// The header checksum is left zero: on an IP_HDRINCL socket the kernel always fills it in,
/// and a nonzero `id` is kept as given (raw(7)). Errors: a payload that does not fit a
/// datagram (over 65515 bytes) → `BadLength`; `out` shorter than 20 bytes → `BufferTooSmall`.
pub fn emit_ipv4_header(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    id: u16,
    payload_len: usize,
    out: &mut [u8],
) -> Result<(), WireError> {
    let total =
        u16::try_from(field::ip::HEADER_LEN + payload_len).map_err(|_| WireError::BadLength)?;
    let out = out.get_mut(..field::ip::HEADER_LEN).ok_or(WireError::BufferTooSmall)?;
    out.fill(0);
    out[field::ip::VER_IHL] = 0x45;
    out[field::ip::TOS] = ADVERT_TOS;
    out[field::ip::LENGTH..field::ip::LENGTH + 2].copy_from_slice(&total.to_be_bytes());
    out[field::ip::IDENT..field::ip::IDENT + 2].copy_from_slice(&id.to_be_bytes());
    out[field::ip::TTL] = ADVERT_TTL;
    out[field::ip::PROTOCOL] = PROTO_VRRP;
    out[field::ip::SRC_ADDR..field::ip::SRC_ADDR + 4].copy_from_slice(&src.octets());
    out[field::ip::DST_ADDR..field::ip::DST_ADDR + 4].copy_from_slice(&dst.octets());
    Ok(())
}

/// Writes the VRRP message (not the IP header) for a packet from `src` to `dst` into `buf`; returns its length.
/// v3 checksum per `form` (ignored for v2). Bytes of `buf` past the returned length are left untouched.
///
/// Errors: the spec is checked before the buffer. Version not 2 or 3 → `BadVersion`; more
/// than 255 addresses, a v2 interval that is not 1..=255 whole seconds, or a v3 interval
/// outside 1..=4095 cs → `BadLength` (each is a field too long or too short for its wire
/// encoding); then a buffer shorter than the message → `BufferTooSmall`. Nothing is written
/// on error.
pub fn emit(
    spec: &AdvertSpec,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    form: V3Checksum,
    buf: &mut [u8],
) -> Result<usize, WireError> {
    let v2 = match spec.version {
        2 => true,
        3 => false,
        _ => return Err(WireError::BadVersion),
    };
    let count = u8::try_from(spec.addrs.len()).map_err(|_| WireError::BadLength)?;
    // Bytes 4 and 5: v2 auth type and interval in seconds; v3 rsvd + 12-bit interval.
    let (byte4, byte5) = if v2 {
        let cs = spec.interval_cs;
        if cs == 0 || !cs.is_multiple_of(100) {
            return Err(WireError::BadLength);
        }
        let secs = u8::try_from(cs / 100).map_err(|_| WireError::BadLength)?;
        (u8::from(spec.auth.is_some()), secs)
    } else {
        if !(1..=0x0fff).contains(&spec.interval_cs) {
            return Err(WireError::BadLength);
        }
        let [hi, lo] = spec.interval_cs.to_be_bytes();
        (hi, lo)
    };

    let len = msg_len(spec.version, spec.addrs.len());
    let out = buf.get_mut(..len).ok_or(WireError::BufferTooSmall)?;
    let (hdr, rest) = out
        .split_first_chunk_mut::<{ field::vrrp::HEADER_LEN }>()
        .ok_or(WireError::BufferTooSmall)?;
    hdr[field::vrrp::VER_TYPE] = (spec.version << 4) | TYPE_ADVERT;
    hdr[field::vrrp::VRID] = spec.vrid;
    hdr[field::vrrp::PRIORITY] = spec.priority;
    hdr[field::vrrp::COUNT] = count;
    hdr[field::vrrp::AUTH_TYPE] = byte4; // = MAX_ADVER_INT in v3
    hdr[field::vrrp::ADVER_INT] = byte5; // = MAX_ADVER_INT + 1 in v3
    hdr[field::vrrp::CHECKSUM] = 0;
    hdr[field::vrrp::CHECKSUM + 1] = 0;

    let (addrs, tail) = rest
        .split_at_mut_checked(field::vrrp::ADDR_LEN * spec.addrs.len())
        .ok_or(WireError::BufferTooSmall)?;
    let (slots, _) = addrs.as_chunks_mut::<{ field::vrrp::ADDR_LEN }>();
    for (slot, addr) in slots.iter_mut().zip(spec.addrs) {
        *slot = addr.octets();
    }
    if v2 {
        let auth = tail.first_chunk_mut().ok_or(WireError::BufferTooSmall)?;
        *auth = spec.auth.unwrap_or([0; 8]);
    }

    let initial = if v2 {
        0
    } else {
        // len <= MAX_MSG, so this conversion cannot fail.
        let len16 = u16::try_from(len).map_err(|_| WireError::BadLength)?;
        match form {
            V3Checksum::PseudoHeader => pseudo_header_sum(src, dst, len16),
            V3Checksum::PseudoMulticast => pseudo_header_sum(src, MCAST_GROUP, len16),
            V3Checksum::NoPseudoHeader => 0,
        }
    };
    let [hi, lo] = checksum(initial, out).to_be_bytes();
    let hdr =
        out.first_chunk_mut::<{ field::vrrp::HEADER_LEN }>().ok_or(WireError::BufferTooSmall)?;
    hdr[field::vrrp::CHECKSUM] = hi;
    hdr[field::vrrp::CHECKSUM + 1] = lo;
    Ok(len)
}

/// Partial (unfolded, uncomplemented) RFC 1071 sum of the IPv4 pseudo-header
/// {`src`, `dst`, 0, 112, `len`}, to pass as `initial` to [`checksum`].
pub fn pseudo_header_sum(src: Ipv4Addr, dst: Ipv4Addr, len: u16) -> u32 {
    let [s0, s1, s2, s3] = src.octets();
    let [d0, d1, d2, d3] = dst.octets();
    [
        u16::from_be_bytes([s0, s1]),
        u16::from_be_bytes([s2, s3]),
        u16::from_be_bytes([d0, d1]),
        u16::from_be_bytes([d2, d3]),
        u16::from(PROTO_VRRP),
        len,
    ]
    .iter()
    .map(|w| u32::from(*w))
    .sum()
}

/// RFC 1071 Internet checksum over `data` continuing from a 32-bit partial sum (so the pseudo-header can be summed first). Return the final folded, complemented 16-bit value.
///
/// An odd trailing byte is padded with a zero byte. Verifying a received message (checksum
/// field included) gives 0 when it is intact; computing over a message whose checksum field
/// is zero gives the value to store there.
pub fn checksum(initial: u32, data: &[u8]) -> u16 {
    let (words, rest) = data.as_chunks::<2>();
    // A u64 cannot overflow: that would take more than 2^47 bytes of data.
    let mut sum = u64::from(initial);
    for w in words {
        sum += u64::from(u16::from_be_bytes(*w));
    }
    if let [last] = rest {
        sum += u64::from(u16::from_be_bytes([*last, 0]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    // The loop left sum <= 0xffff: the conversion cannot fail.
    !u16::try_from(sum).unwrap_or(0xffff)
}

#[cfg(test)]
mod tests {
    use super::*;

    const VECTORS: &str = include_str!("../../tests/vectors/keepalived.txt");

    /// Test-only hex decoder (whitespace ignored).
    fn unhex(s: &str) -> Vec<u8> {
        let digits: Vec<u8> = s
            .bytes()
            .filter(|b| !b.is_ascii_whitespace())
            .map(|b| match b {
                b'0'..=b'9' => b - b'0',
                b'a'..=b'f' => b - b'a' + 10,
                b'A'..=b'F' => b - b'A' + 10,
                _ => panic!("bad hex digit {:?}", b as char),
            })
            .collect();
        assert!(digits.len().is_multiple_of(2), "odd hex length");
        digits.chunks(2).map(|p| (p[0] << 4) | p[1]).collect()
    }

    /// Every `NAME HEX` line of the keepalived capture file.
    fn vectors() -> Vec<(&'static str, Vec<u8>)> {
        VECTORS
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| {
                let (name, hex) = l.split_once(' ').expect("NAME HEX");
                (name, unhex(hex))
            })
            .collect()
    }

    fn ip(a: u8, b: u8, c: u8, d: u8) -> Ipv4Addr {
        Ipv4Addr::new(a, b, c, d)
    }

    struct Expected {
        name: &'static str,
        version: u8,
        vrid: u8,
        priority: u8,
        interval_cs: u16,
        auth_type: u8,
        auth: [u8; 8],
        addrs: &'static [Ipv4Addr],
        dst: Ipv4Addr,
        form: ChecksumForm,
    }

    const VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 100);
    const VIP2: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 101);
    const SRC: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 5);
    const DST: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 6);

    /// What the comments of tests/vectors/keepalived.txt say each capture holds.
    const EXPECTED: &[Expected] = &[
        Expected {
            name: "v2_noauth_1vip",
            version: 2,
            vrid: 1,
            priority: 100,
            interval_cs: 100,
            auth_type: 0,
            auth: [0; 8],
            addrs: &[VIP],
            dst: DST,
            form: ChecksumForm::V2,
        },
        Expected {
            name: "v2_pass_novip",
            version: 2,
            vrid: 1,
            priority: 100,
            interval_cs: 100,
            auth_type: 1,
            auth: *b"1111\0\0\0\0",
            addrs: &[],
            dst: DST,
            form: ChecksumForm::V2,
        },
        Expected {
            name: "v2_pass_2vip",
            version: 2,
            vrid: 42,
            priority: 150,
            interval_cs: 100,
            auth_type: 1,
            auth: *b"secret12",
            addrs: &[VIP, VIP2],
            dst: DST,
            form: ChecksumForm::V2,
        },
        Expected {
            name: "v3_unicast_default",
            version: 3,
            vrid: 1,
            priority: 100,
            interval_cs: 10,
            auth_type: 0,
            auth: [0; 8],
            addrs: &[VIP],
            dst: DST,
            form: ChecksumForm::PseudoHeader,
        },
        Expected {
            name: "v3_multicast",
            version: 3,
            vrid: 1,
            priority: 100,
            interval_cs: 10,
            auth_type: 0,
            auth: [0; 8],
            addrs: &[VIP],
            dst: MCAST_GROUP,
            form: ChecksumForm::PseudoHeader,
        },
        Expected {
            name: "v3_old_unicast_checksum",
            version: 3,
            vrid: 1,
            priority: 100,
            interval_cs: 10,
            auth_type: 0,
            auth: [0; 8],
            addrs: &[VIP],
            dst: DST,
            form: ChecksumForm::PseudoMulticast,
        },
        Expected {
            name: "v2_prio0",
            version: 2,
            vrid: 1,
            priority: 0,
            interval_cs: 100,
            auth_type: 0,
            auth: [0; 8],
            addrs: &[VIP],
            dst: DST,
            form: ChecksumForm::V2,
        },
    ];

    fn expected(name: &str) -> &'static Expected {
        EXPECTED
            .iter()
            .find(|e| e.name == name)
            .unwrap_or_else(|| panic!("no expectation for vector {name}"))
    }

    /// The spec that reproduces a parsed advert.
    fn spec_of<'a>(a: &Advert<'_>, addrs: &'a [Ipv4Addr]) -> AdvertSpec<'a> {
        AdvertSpec {
            version: a.version,
            vrid: a.vrid,
            priority: a.priority,
            interval_cs: a.interval_cs,
            auth: (a.auth_type == 1).then_some(a.auth),
            addrs,
        }
    }

    /// Emits into a 0xa5-filled buffer and checks that nothing past the message was touched.
    fn emit_fresh(spec: &AdvertSpec, src: Ipv4Addr, dst: Ipv4Addr, form: V3Checksum) -> Vec<u8> {
        let mut buf = [0xa5u8; MAX_MSG + 16];
        let n = emit(spec, src, dst, form, &mut buf).expect("emit");
        assert!(buf[n..].iter().all(|b| *b == 0xa5), "wrote past the message");
        buf[..n].to_vec()
    }

    fn checksum_field(msg: &[u8]) -> u16 {
        u16::from_be_bytes([msg[6], msg[7]])
    }

    #[test]
    fn every_keepalived_capture_parses_with_its_documented_fields() {
        let vs = vectors();
        assert_eq!(vs.len(), EXPECTED.len(), "vector file and expectations differ");
        for (name, pkt) in &vs {
            let e = expected(name);
            let ip4 = parse_ipv4(pkt).unwrap_or_else(|err| panic!("{name}: {err}"));
            assert_eq!(ip4.src, SRC, "{name}");
            assert_eq!(ip4.dst, e.dst, "{name}");
            assert_eq!(ip4.ttl, 255, "{name}");
            let (a, form) = parse_vrrp(ip4.payload, ip4.src, ip4.dst)
                .unwrap_or_else(|err| panic!("{name}: {err}"));
            assert_eq!(a.version, e.version, "{name}");
            assert_eq!(a.vrid, e.vrid, "{name}");
            assert_eq!(a.priority, e.priority, "{name}");
            assert_eq!(a.interval_cs, e.interval_cs, "{name}");
            assert_eq!(a.auth_type, e.auth_type, "{name}");
            assert_eq!(a.auth, e.auth, "{name}");
            assert_eq!(a.addr_count(), e.addrs.len(), "{name}");
            assert_eq!(a.addrs().collect::<Vec<_>>(), e.addrs, "{name}");
            assert!(a.same_addrs(e.addrs), "{name}");
            assert_eq!(form, e.form, "{name}");
        }
    }

    #[test]
    fn reemitting_a_keepalived_capture_gives_identical_bytes() {
        for (name, pkt) in &vectors() {
            let ip4 = parse_ipv4(pkt).unwrap();
            let (a, form) = parse_vrrp(ip4.payload, ip4.src, ip4.dst).unwrap();
            let addrs: Vec<Ipv4Addr> = a.addrs().collect();
            let v3form = form.v3_checksum().unwrap_or(V3Checksum::PseudoHeader);
            let out = emit_fresh(&spec_of(&a, &addrs), ip4.src, ip4.dst, v3form);
            assert_eq!(out, ip4.payload, "{name}");
        }
    }

    /// Our IP header for a capture's addresses, identification and length is keepalived's,
    /// byte for byte but the checksum (which the kernel fills in on an IP_HDRINCL socket).
    #[test]
    fn the_ip_header_is_keepalived_s() {
        for (name, pkt) in &vectors() {
            let ip4 = parse_ipv4(pkt).unwrap();
            let id = u16::from_be_bytes([pkt[4], pkt[5]]);
            let mut hdr = [0u8; field::ip::HEADER_LEN];
            emit_ipv4_header(ip4.src, ip4.dst, id, ip4.payload.len(), &mut hdr).unwrap();
            assert_eq!(hdr[..10], pkt[..10], "{name}");
            assert_eq!(hdr[12..], pkt[12..20], "{name}");
        }
        let mut hdr = [0u8; field::ip::HEADER_LEN];
        let too_long = emit_ipv4_header(SRC, SRC, 1, 65_516, &mut hdr);
        assert_eq!(too_long, Err(WireError::BadLength));
    }

    #[test]
    fn v3_checksum_forms_match_the_values_noted_in_the_capture_file() {
        // form1 / form2 / form3 from the comments of the v3 captures.
        let cases = [
            ("v3_unicast_default", [0x2406, 0x05fa, 0xa88e]),
            ("v3_multicast", [0x05fa, 0x05fa, 0xa88e]),
            ("v3_old_unicast_checksum", [0x2406, 0x05fa, 0xa88e]),
        ];
        let forms =
            [V3Checksum::PseudoHeader, V3Checksum::PseudoMulticast, V3Checksum::NoPseudoHeader];
        let vs = vectors();
        for (name, sums) in cases {
            let pkt = &vs.iter().find(|(n, _)| *n == name).unwrap().1;
            let ip4 = parse_ipv4(pkt).unwrap();
            let (a, _) = parse_vrrp(ip4.payload, ip4.src, ip4.dst).unwrap();
            let addrs: Vec<Ipv4Addr> = a.addrs().collect();
            for (form, sum) in forms.into_iter().zip(sums) {
                let out = emit_fresh(&spec_of(&a, &addrs), ip4.src, ip4.dst, form);
                assert_eq!(checksum_field(&out), sum, "{name} {form:?}");
            }
        }
    }

    #[test]
    fn interop_worked_example_v3_checksums_in_all_three_forms() {
        let (src, dst) = (ip(192, 168, 122, 5), ip(192, 168, 122, 6));
        let addrs = [ip(192, 168, 122, 3)];
        let spec = AdvertSpec {
            version: 3,
            vrid: 1,
            priority: 100,
            interval_cs: 100,
            auth: None,
            addrs: &addrs,
        };
        let cases = [
            (V3Checksum::PseudoHeader, 0xba13, ChecksumForm::PseudoHeader),
            (V3Checksum::PseudoMulticast, 0x14b0, ChecksumForm::PseudoMulticast),
            (V3Checksum::NoPseudoHeader, 0x2fed, ChecksumForm::NoPseudoHeader),
        ];
        for (form, sum, matched) in cases {
            let out = emit_fresh(&spec, src, dst, form);
            assert_eq!(out.len(), 12);
            assert_eq!(checksum_field(&out), sum, "{form:?}");
            let (a, got) = parse_vrrp(&out, src, dst).unwrap();
            assert_eq!(got, matched);
            assert_eq!((a.version, a.vrid, a.priority, a.interval_cs), (3, 1, 100, 100));
            assert!(a.same_addrs(&addrs));
        }
    }

    #[test]
    fn interop_doc_v2_packet_parses_and_reemits() {
        let pkt = unhex(
            "45c0 0028 d836 0000 ff70 c7ae c0a8 7a05 e000 0012 \
             2101 6401 0001 4050 c0a8 7a03 0000 0000 0000 0000",
        );
        let ip4 = parse_ipv4(&pkt).unwrap();
        assert_eq!((ip4.src, ip4.dst, ip4.ttl), (ip(192, 168, 122, 5), MCAST_GROUP, 255));
        let (a, form) = parse_vrrp(ip4.payload, ip4.src, ip4.dst).unwrap();
        assert_eq!(form, ChecksumForm::V2);
        assert_eq!((a.version, a.vrid, a.priority, a.interval_cs), (2, 1, 100, 100));
        assert_eq!((a.auth_type, a.auth), (0, [0; 8]));
        assert!(a.same_addrs(&[ip(192, 168, 122, 3)]));
        let addrs: Vec<Ipv4Addr> = a.addrs().collect();
        let out = emit_fresh(&spec_of(&a, &addrs), ip4.src, ip4.dst, V3Checksum::PseudoHeader);
        assert_eq!(out, ip4.payload);
    }

    #[test]
    fn truncation_at_every_length_is_an_error() {
        for (name, pkt) in &vectors() {
            for n in 0..pkt.len() {
                assert_eq!(parse_ipv4(&pkt[..n]), Err(WireError::Truncated), "{name} ip {n}");
            }
            let ip4 = parse_ipv4(pkt).unwrap();
            let msg = ip4.payload;
            for n in 0..msg.len() {
                assert_eq!(
                    parse_vrrp(&msg[..n], ip4.src, ip4.dst),
                    Err(WireError::Truncated),
                    "{name} vrrp {n}"
                );
            }
        }
    }

    /// The v2_noauth_1vip capture's VRRP message and addresses.
    fn v2_msg() -> (Vec<u8>, Ipv4Addr, Ipv4Addr) {
        let vs = vectors();
        let pkt = &vs.iter().find(|(n, _)| *n == "v2_noauth_1vip").unwrap().1;
        let ip4 = parse_ipv4(pkt).unwrap();
        (ip4.payload.to_vec(), ip4.src, ip4.dst)
    }

    /// The v3_unicast_default capture's VRRP message and addresses.
    fn v3_msg() -> (Vec<u8>, Ipv4Addr, Ipv4Addr) {
        let vs = vectors();
        let pkt = &vs.iter().find(|(n, _)| *n == "v3_unicast_default").unwrap().1;
        let ip4 = parse_ipv4(pkt).unwrap();
        (ip4.payload.to_vec(), ip4.src, ip4.dst)
    }

    #[test]
    fn address_count_beyond_the_message_is_truncated() {
        for (mut msg, src, dst) in [v2_msg(), v3_msg()] {
            for count in [2u8, 3, 100, 255] {
                msg[3] = count;
                assert_eq!(parse_vrrp(&msg, src, dst), Err(WireError::Truncated));
            }
        }
    }

    #[test]
    fn bytes_beyond_the_address_count_are_bad_length() {
        for (mut msg, src, dst) in [v2_msg(), v3_msg()] {
            msg.extend_from_slice(&[0, 0, 0, 0]);
            assert_eq!(parse_vrrp(&msg, src, dst), Err(WireError::BadLength));
            msg[3] = 0; // fewer addresses than carried
            assert_eq!(parse_vrrp(&msg, src, dst), Err(WireError::BadLength));
        }
    }

    #[test]
    fn version_other_than_2_or_3_is_bad_version() {
        let (mut msg, src, dst) = v2_msg();
        for version in [0u8, 1, 4, 6, 15] {
            msg[0] = (version << 4) | 1;
            assert_eq!(parse_vrrp(&msg, src, dst), Err(WireError::BadVersion));
        }
    }

    #[test]
    fn type_other_than_advertisement_is_bad_type() {
        for (mut msg, src, dst) in [v2_msg(), v3_msg()] {
            let version = msg[0] & 0xf0;
            for t in [0u8, 2, 3, 15] {
                msg[0] = version | t;
                assert_eq!(parse_vrrp(&msg, src, dst), Err(WireError::BadType));
            }
        }
    }

    #[test]
    fn any_flipped_bit_in_the_message_is_rejected() {
        for (name, pkt) in &vectors() {
            let ip4 = parse_ipv4(pkt).unwrap();
            let mut msg = ip4.payload.to_vec();
            for bit in 0..msg.len() * 8 {
                msg[bit / 8] ^= 1 << (bit % 8);
                let r = parse_vrrp(&msg, ip4.src, ip4.dst);
                assert!(r.is_err(), "{name}: bit {bit} flipped still parses: {r:?}");
                msg[bit / 8] ^= 1 << (bit % 8);
            }
        }
    }

    #[test]
    fn v2_with_a_bad_checksum_is_rejected() {
        let (mut msg, src, dst) = v2_msg();
        msg[6] ^= 0x01;
        assert_eq!(parse_vrrp(&msg, src, dst), Err(WireError::BadChecksum));
        // A v2 message carrying a v3-style pseudo-header checksum is not v2-valid either.
        let (mut msg, src, dst) = v2_msg();
        msg[6] = 0;
        msg[7] = 0;
        let len = msg.len() as u16;
        let [hi, lo] = checksum(pseudo_header_sum(src, dst, len), &msg).to_be_bytes();
        msg[6] = hi;
        msg[7] = lo;
        assert_eq!(parse_vrrp(&msg, src, dst), Err(WireError::BadChecksum));
    }

    #[test]
    fn v3_with_a_checksum_matching_no_form_is_rejected() {
        let (mut msg, src, dst) = v3_msg();
        msg[7] ^= 0x80;
        assert_eq!(parse_vrrp(&msg, src, dst), Err(WireError::BadChecksum));
    }

    #[test]
    fn v3_reserved_interval_bits_are_ignored_on_receive() {
        let (src, dst) = (ip(192, 0, 2, 5), ip(192, 0, 2, 6));
        let addrs = [ip(192, 0, 2, 100)];
        let spec = AdvertSpec {
            version: 3,
            vrid: 7,
            priority: 200,
            interval_cs: 4095,
            auth: None,
            addrs: &addrs,
        };
        let mut msg = emit_fresh(&spec, src, dst, V3Checksum::NoPseudoHeader);
        assert_eq!(msg[4] & 0xf0, 0, "reserved bits sent as zero");
        msg[4] |= 0xf0;
        msg[6] = 0;
        msg[7] = 0;
        let [hi, lo] = checksum(0, &msg).to_be_bytes();
        msg[6] = hi;
        msg[7] = lo;
        let (a, _) = parse_vrrp(&msg, src, dst).unwrap();
        assert_eq!(a.interval_cs, 4095);
    }

    fn v2_ip_packet() -> Vec<u8> {
        let vs = vectors();
        vs.into_iter().find(|(n, _)| *n == "v2_noauth_1vip").unwrap().1
    }

    #[test]
    fn ip_header_not_version_4_is_bad_ip_header() {
        let mut pkt = v2_ip_packet();
        pkt[0] = 0x65;
        assert_eq!(parse_ipv4(&pkt), Err(WireError::BadIpHeader));
    }

    #[test]
    fn ip_header_ihl_below_5_is_bad_ip_header() {
        let mut pkt = v2_ip_packet();
        for ihl in 0..5u8 {
            pkt[0] = 0x40 | ihl;
            assert_eq!(parse_ipv4(&pkt), Err(WireError::BadIpHeader), "ihl {ihl}");
        }
    }

    #[test]
    fn ip_header_ihl_beyond_the_buffer_is_truncated() {
        let mut pkt = v2_ip_packet();
        pkt[0] = 0x4f; // 60-byte header in a 40-byte buffer
        assert_eq!(parse_ipv4(&pkt), Err(WireError::Truncated));
    }

    #[test]
    fn ip_total_length_below_the_header_is_bad_ip_header() {
        let mut pkt = v2_ip_packet();
        pkt[2] = 0;
        pkt[3] = 19;
        assert_eq!(parse_ipv4(&pkt), Err(WireError::BadIpHeader));
    }

    #[test]
    fn ip_total_length_beyond_the_buffer_is_truncated() {
        let mut pkt = v2_ip_packet();
        pkt[3] += 1;
        assert_eq!(parse_ipv4(&pkt), Err(WireError::Truncated));
        pkt[2] = 0xff;
        assert_eq!(parse_ipv4(&pkt), Err(WireError::Truncated));
    }

    #[test]
    fn ip_bytes_after_the_total_length_are_ignored() {
        let mut pkt = v2_ip_packet();
        let total = pkt.len();
        pkt.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef, 0]);
        let ip4 = parse_ipv4(&pkt).unwrap();
        assert_eq!(ip4.payload, &pkt[20..total]);
        assert!(parse_vrrp(ip4.payload, ip4.src, ip4.dst).is_ok());
    }

    #[test]
    fn ip_options_are_skipped() {
        let pkt = v2_ip_packet();
        // Insert a 4-byte option (router alert) and bump IHL and total length.
        let mut with_opt = pkt[..20].to_vec();
        with_opt.extend_from_slice(&[0x94, 0x04, 0x00, 0x00]);
        with_opt.extend_from_slice(&pkt[20..]);
        with_opt[0] = 0x46;
        with_opt[3] += 4;
        let ip4 = parse_ipv4(&with_opt).unwrap();
        assert_eq!(ip4.payload, &pkt[20..]);
        assert!(parse_vrrp(ip4.payload, ip4.src, ip4.dst).is_ok());
    }

    #[test]
    fn ip_protocol_other_than_112_is_not_vrrp() {
        let mut pkt = v2_ip_packet();
        for proto in [0u8, 1, 6, 17, 111, 113, 255] {
            pkt[9] = proto;
            assert_eq!(parse_ipv4(&pkt), Err(WireError::NotVrrp), "proto {proto}");
        }
    }

    /// xorshift64: a deterministic generator for the byte-soup test.
    struct XorShift(u64);
    impl XorShift {
        fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            x
        }
    }

    #[test]
    fn random_byte_soup_never_panics() {
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        let mut buf = [0u8; 100];
        let mut ok = 0usize;
        for i in 0..100_000 {
            let len = (rng.next() % 100) as usize;
            for b in buf.iter_mut().take(len) {
                *b = rng.next() as u8;
            }
            let data = &mut buf[..len];
            // Every other buffer is made plausible so the deeper paths run too.
            if i % 2 == 1 && len >= 28 {
                data[0] = 0x45;
                data[2] = 0;
                data[3] = len as u8;
                data[9] = PROTO_VRRP;
                data[20] = if rng.next().is_multiple_of(2) { 0x21 } else { 0x31 };
                data[23] = (rng.next() % 4) as u8;
                if i % 4 == 1 {
                    // Also fix up the VRRP checksum (v2 / v3 without pseudo-header).
                    data[26] = 0;
                    data[27] = 0;
                    let [hi, lo] = checksum(0, &data[20..]).to_be_bytes();
                    data[26] = hi;
                    data[27] = lo;
                }
            }
            let data = &buf[..len];
            if let Ok(ip4) = parse_ipv4(data)
                && let Ok((a, _)) = parse_vrrp(ip4.payload, ip4.src, ip4.dst)
            {
                ok += 1;
                assert_eq!(a.addrs().count(), a.addr_count());
                let addrs: Vec<Ipv4Addr> = a.addrs().collect();
                assert!(a.same_addrs(&addrs));
            }
            let _ = parse_vrrp(data, Ipv4Addr::UNSPECIFIED, MCAST_GROUP);
        }
        assert!(ok > 0, "the soup never reached a valid advert");
    }

    #[test]
    fn emit_into_a_too_small_buffer_is_buffer_too_small_and_writes_nothing() {
        let addrs = [ip(192, 0, 2, 100), ip(192, 0, 2, 101)];
        for (version, interval_cs, full) in [(2u8, 100u16, 24usize), (3, 10, 16)] {
            let spec = AdvertSpec {
                version,
                vrid: 1,
                priority: 100,
                interval_cs,
                auth: None,
                addrs: &addrs,
            };
            for n in 0..full {
                let mut buf = vec![0xa5u8; n];
                assert_eq!(
                    emit(&spec, SRC, DST, V3Checksum::PseudoHeader, &mut buf),
                    Err(WireError::BufferTooSmall),
                    "v{version} len {n}"
                );
                assert!(buf.iter().all(|b| *b == 0xa5));
            }
            let mut buf = vec![0xa5u8; full];
            assert_eq!(emit(&spec, SRC, DST, V3Checksum::PseudoHeader, &mut buf), Ok(full));
        }
    }

    #[test]
    fn emit_rejects_invalid_specs() {
        let one = [ip(192, 0, 2, 100)];
        let many = vec![ip(192, 0, 2, 100); 256];
        let base = AdvertSpec {
            version: 2,
            vrid: 1,
            priority: 100,
            interval_cs: 100,
            auth: None,
            addrs: &one,
        };
        let cases = [
            (AdvertSpec { version: 0, ..base }, WireError::BadVersion),
            (AdvertSpec { version: 1, ..base }, WireError::BadVersion),
            (AdvertSpec { version: 4, ..base }, WireError::BadVersion),
            (AdvertSpec { addrs: &many, ..base }, WireError::BadLength),
            (
                AdvertSpec { version: 3, interval_cs: 10, addrs: &many, ..base },
                WireError::BadLength,
            ),
            (AdvertSpec { interval_cs: 0, ..base }, WireError::BadLength),
            (AdvertSpec { interval_cs: 150, ..base }, WireError::BadLength),
            (AdvertSpec { interval_cs: 25600, ..base }, WireError::BadLength),
            (AdvertSpec { interval_cs: 65500, ..base }, WireError::BadLength),
            (AdvertSpec { version: 3, interval_cs: 0, ..base }, WireError::BadLength),
            (AdvertSpec { version: 3, interval_cs: 4096, ..base }, WireError::BadLength),
        ];
        for (spec, err) in cases {
            let mut buf = [0xa5u8; MAX_MSG];
            assert_eq!(
                emit(&spec, SRC, DST, V3Checksum::PseudoHeader, &mut buf),
                Err(err),
                "{spec:?}"
            );
            assert!(buf.iter().all(|b| *b == 0xa5), "{spec:?} wrote on error");
        }
    }

    #[test]
    fn emit_accepts_the_extremes_and_they_parse_back() {
        let many: Vec<Ipv4Addr> = (0..255u32).map(|i| Ipv4Addr::from(0x0a00_0000 + i)).collect();
        let v2 = AdvertSpec {
            version: 2,
            vrid: 255,
            priority: 255,
            interval_cs: 25500,
            auth: Some(*b"abcdefgh"),
            addrs: &many,
        };
        let out = emit_fresh(&v2, SRC, DST, V3Checksum::PseudoHeader);
        assert_eq!(out.len(), MAX_MSG);
        let (a, form) = parse_vrrp(&out, SRC, DST).unwrap();
        assert_eq!(form, ChecksumForm::V2);
        assert_eq!((a.vrid, a.priority, a.interval_cs), (255, 255, 25500));
        assert_eq!((a.auth_type, a.auth), (1, *b"abcdefgh"));
        assert!(a.same_addrs(&many));

        let v3 = AdvertSpec { version: 3, interval_cs: 1, auth: None, addrs: &[], ..v2 };
        let out = emit_fresh(&v3, SRC, MCAST_GROUP, V3Checksum::PseudoMulticast);
        assert_eq!(out.len(), 8);
        let (a, form) = parse_vrrp(&out, SRC, MCAST_GROUP).unwrap();
        assert_eq!(form, ChecksumForm::PseudoHeader); // the forms coincide for 224.0.0.18
        assert_eq!((a.interval_cs, a.addr_count()), (1, 0));
    }

    #[test]
    fn v3_emit_ignores_auth() {
        let addrs = [ip(192, 0, 2, 100)];
        let spec = AdvertSpec {
            version: 3,
            vrid: 1,
            priority: 100,
            interval_cs: 10,
            auth: Some(*b"ignored!"),
            addrs: &addrs,
        };
        let out = emit_fresh(&spec, SRC, DST, V3Checksum::PseudoHeader);
        assert_eq!(out.len(), 12);
        let (a, _) = parse_vrrp(&out, SRC, DST).unwrap();
        assert_eq!((a.auth_type, a.auth), (0, [0; 8]));
    }

    #[test]
    fn v2_emit_without_auth_carries_eight_zero_auth_bytes() {
        let spec = AdvertSpec {
            version: 2,
            vrid: 1,
            priority: 100,
            interval_cs: 100,
            auth: None,
            addrs: &[],
        };
        let out = emit_fresh(&spec, SRC, DST, V3Checksum::PseudoHeader);
        assert_eq!(out.len(), 16);
        assert_eq!(out[4], 0, "auth type none");
        assert_eq!(&out[8..], &[0; 8]);
    }

    #[test]
    fn same_addrs_needs_same_count_and_order() {
        let addrs = [ip(192, 0, 2, 100), ip(192, 0, 2, 101)];
        let spec = AdvertSpec {
            version: 3,
            vrid: 1,
            priority: 100,
            interval_cs: 100,
            auth: None,
            addrs: &addrs,
        };
        let out = emit_fresh(&spec, SRC, DST, V3Checksum::PseudoHeader);
        let (a, _) = parse_vrrp(&out, SRC, DST).unwrap();
        assert!(a.same_addrs(&addrs));
        assert!(!a.same_addrs(&[addrs[1], addrs[0]]));
        assert!(!a.same_addrs(&addrs[..1]));
        assert!(!a.same_addrs(&[addrs[0], addrs[1], addrs[1]]));
        assert!(!a.same_addrs(&[]));
    }

    /// keepalived 2.2.7 vrrp_check_packet: the count must match, then each of its own
    /// addresses must be somewhere in the advert; the order does not matter.
    #[test]
    fn keepalived_compares_address_lists_as_sets_of_equal_count() {
        let addrs = [ip(192, 0, 2, 100), ip(192, 0, 2, 101)];
        let spec = AdvertSpec {
            version: 3,
            vrid: 1,
            priority: 100,
            interval_cs: 100,
            auth: None,
            addrs: &addrs,
        };
        let out = emit_fresh(&spec, SRC, DST, V3Checksum::PseudoHeader);
        let (a, _) = parse_vrrp(&out, SRC, DST).unwrap();
        assert_eq!(a.keepalived_addr_check(&addrs), AddrCheck::Same);
        assert_eq!(a.keepalived_addr_check(&[addrs[1], addrs[0]]), AddrCheck::Same, "reordered");
        assert_eq!(a.keepalived_addr_check(&addrs[..1]), AddrCheck::OtherCount);
        assert_eq!(a.keepalived_addr_check(&[]), AddrCheck::OtherCount);
        let other = [addrs[0], ip(192, 0, 2, 102)];
        assert_eq!(a.keepalived_addr_check(&other), AddrCheck::Missing(other[1]));
    }

    #[test]
    fn checksum_follows_rfc1071() {
        // RFC 1071 section 3 example: the sum of 0001 f203 f4f5 f6f7 is ddf2.
        assert_eq!(checksum(0, &[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]), !0xddf2);
        // An odd trailing byte is padded with zero.
        assert_eq!(checksum(0, &[0x01]), !0x0100);
        assert_eq!(checksum(0, &[]), 0xffff);
        // Continuing from a partial sum equals summing the concatenation (even split).
        let data = [0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde];
        let partial = 0x1234 + 0x5678;
        assert_eq!(checksum(partial, &data[4..]), checksum(0, &data));
        // Carries fold back in, even from a large initial value.
        assert_eq!(checksum(0xffff_ffff, &[]), checksum(0, &[0xff, 0xff, 0xff, 0xff]));
    }

    #[test]
    fn error_names_are_distinct_snake_case() {
        let all = [
            WireError::Truncated,
            WireError::BadIpHeader,
            WireError::NotVrrp,
            WireError::BadVersion,
            WireError::BadType,
            WireError::BadLength,
            WireError::BadChecksum,
            WireError::BufferTooSmall,
        ];
        for (i, e) in all.iter().enumerate() {
            let n = e.name();
            assert!(n.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'), "{n}");
            assert!(!e.to_string().is_empty());
            assert!(all[..i].iter().all(|o| o.name() != n), "duplicate {n}");
        }
        assert_eq!(WireError::Truncated.name(), "truncated");
        assert_eq!(WireError::BadChecksum.name(), "bad_checksum");
    }
}
