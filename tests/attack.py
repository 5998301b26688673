#!/usr/bin/env python3
"""VRRP packet attack generator for tests/attack.rs (python3, standard library only).

Run inside the attacker's network namespace, as root:

    ip netns exec NS python3 tests/attack.py --targets 192.0.2.11,192.0.2.12 \
        --duration 15 --rate 4000 [--group 224.0.0.18] [--ifname vr0]

It builds whole IPv4 packets itself (SOCK_RAW + IP_HDRINCL), so it controls the source
address, the TTL and the protocol (112), and sends every kind below in turn to every target
and to the multicast group, paced at --rate packets per second in all:

  prio255_self    well-formed v3 advert, VRID 9, priority 255, from our own address
  prio0_self      well-formed v3 advert, VRID 9, priority 0 (a "resigning master")
  prio255_forged  well-formed v3 advert, VRID 9, priority 255, from a forged non-peer
                  source (--forged, 192.0.2.77; never a peer's address)
  bad_checksum    the first kind with a checksum that matches none of the three v3 forms
  truncated       an advert cut to its first 4 bytes (IP total length consistent)
  bad_version     version 4 and version 1, alternately (checksum otherwise valid)
  bad_type        type 2 (checksum valid)
  count_overflow  address count 200 in a 20-byte message (checksum valid)
  v2_in_v3        a well-formed v2 advert (v2 checksum), VRID 9, priority 255
  random          random bytes of random length (0..100) as the VRRP payload, random TTL
  other_vrid      well-formed v3 advert for VRID 10, priority 255

Everything goes out with TTL 255, except: `random` (random TTL 1..255), and the three
well-formed VRID-9 v3 kinds when sent to the multicast group, which go out with
--group-advert-ttl (254: an off-link attacker's packets have crossed a router). In
multicast mode any on-link sender with TTL 255 is a legitimate router (RFC 5798), so a
well-formed advert with TTL 255 is not an attack the protocol can refuse. For the same
reason a `random` payload with TTL 255 that happens to be a valid v3 VRID-9 header is
moved to VRID 10 (it never is in practice; the guard makes it certain).

v3 checksums are RFC 1071 over the pseudo-header {src, actual dst, 0, 112, length} and the
message, as keepalived sends; v2 over the message only.

At the end it prints one JSON object on stdout:
  {"kinds": {KIND: n}, "per_dst": {DST: n}, "per_dst_kind": {DST: {KIND: n}},
   "sent_total": n, "send_errors": n, "elapsed": s, ...}
where per_dst_kind also splits `random` into "random_ttl255" and "random_other_ttl".

`--selftest` checks the checksum code against the worked examples of
shared/vrrp-interop.md and a real keepalived v2 packet, prints "selftest ok", and exits.
"""

import argparse
import json
import random
import socket
import struct
import sys
import time

PROTO_VRRP = 112
GROUP = "224.0.0.18"
VIP = "192.0.2.100"
VRID = 9
OTHER_VRID = 10
V3_INTERVAL_CS = 10
V2_INTERVAL_S = 1

KINDS = [
    "prio255_self",
    "prio0_self",
    "prio255_forged",
    "bad_checksum",
    "truncated",
    "bad_version",
    "bad_type",
    "count_overflow",
    "v2_in_v3",
    "random",
    "other_vrid",
]


def ip4(a):
    return socket.inet_aton(a)


def csum(data, initial=0):
    """RFC 1071 Internet checksum of `data`, continuing the 32-bit sum `initial`."""
    if len(data) % 2:
        data += b"\0"
    s = initial + sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def pseudo_sum(src, dst, length):
    ph = ip4(src) + ip4(dst) + struct.pack("!BBH", 0, PROTO_VRRP, length)
    return sum(struct.unpack("!6H", ph))


def set_csum(msg, value):
    return msg[:6] + struct.pack("!H", value) + msg[8:]


def v3_forms(msg, src, dst):
    """The three accepted v3 checksums of `msg` (checksum field taken as zero)."""
    m = set_csum(msg, 0)
    n = len(m)
    return [
        csum(m, pseudo_sum(src, dst, n)),
        csum(m, pseudo_sum(src, GROUP, n)),
        csum(m, 0),
    ]


def v3_advert(src, dst, vrid, prio, ver_type=0x31, count=None, addrs=(VIP,)):
    """A v3 message with keepalived's checksum (pseudo-header with the actual dst)."""
    body = b"".join(ip4(a) for a in addrs)
    cnt = len(addrs) if count is None else count
    msg = struct.pack("!BBBBHH", ver_type, vrid, prio, cnt, V3_INTERVAL_CS, 0) + body
    return set_csum(msg, csum(msg, pseudo_sum(src, dst, len(msg))))


def v2_advert(vrid, prio, addrs=(VIP,)):
    body = b"".join(ip4(a) for a in addrs)
    msg = struct.pack("!BBBBBBH", 0x21, vrid, prio, len(addrs), 0, V2_INTERVAL_S, 0)
    msg += body + b"\0" * 8
    return set_csum(msg, csum(msg))


def ip_packet(src, dst, ttl, payload):
    # Total length, checksum and id are filled in by the kernel for IP_HDRINCL; we write the
    # right total length anyway so the packet is consistent whatever the kernel does.
    hdr = struct.pack(
        "!BBHHHBBH4s4s",
        0x45, 0xC0, 20 + len(payload), 0, 0, ttl, PROTO_VRRP, 0, ip4(src), ip4(dst),
    )
    return hdr + payload


class Generator:
    def __init__(self, me, forged, group_advert_ttl, seed):
        self.me = me
        self.forged = forged
        self.group_advert_ttl = group_advert_ttl
        self.rng = random.Random(seed)
        self.version_flip = 0

    def build(self, kind, dst):
        """(src, ttl, payload, label) for one packet of `kind` to `dst`."""
        me = self.me
        to_group = dst == GROUP
        adv_ttl = self.group_advert_ttl if to_group else 255
        if kind == "prio255_self":
            return me, adv_ttl, v3_advert(me, dst, VRID, 255), kind
        if kind == "prio0_self":
            return me, adv_ttl, v3_advert(me, dst, VRID, 0), kind
        if kind == "prio255_forged":
            f = self.forged
            return f, adv_ttl, v3_advert(f, dst, VRID, 255), kind
        if kind == "bad_checksum":
            msg = v3_advert(me, dst, VRID, 255)
            good = v3_forms(msg, me, dst)
            bad = (good[0] ^ 0x5A5A) & 0xFFFF
            while bad in good:
                bad = (bad + 1) & 0xFFFF
            return me, 255, set_csum(msg, bad), kind
        if kind == "truncated":
            return me, 255, v3_advert(me, dst, VRID, 255)[:4], kind
        if kind == "bad_version":
            self.version_flip ^= 1
            vt = 0x41 if self.version_flip else 0x11
            return me, 255, v3_advert(me, dst, VRID, 255, ver_type=vt), kind
        if kind == "bad_type":
            return me, 255, v3_advert(me, dst, VRID, 255, ver_type=0x32), kind
        if kind == "count_overflow":
            addrs = (VIP, "192.0.2.101", "192.0.2.102")  # 8 + 12 = 20 bytes
            return me, 255, v3_advert(me, dst, VRID, 255, count=200, addrs=addrs), kind
        if kind == "v2_in_v3":
            return me, 255, v2_advert(VRID, 255), kind
        if kind == "random":
            r = self.rng
            payload = bytearray(r.getrandbits(8) for _ in range(r.randrange(0, 101)))
            ttl = r.randrange(1, 256)
            if ttl == 255 and len(payload) >= 2 and payload[0] == 0x31 and payload[1] == VRID:
                payload[1] = OTHER_VRID
            label = "random_ttl255" if ttl == 255 else "random_other_ttl"
            return me, ttl, bytes(payload), label
        if kind == "other_vrid":
            return me, 255, v3_advert(me, dst, OTHER_VRID, 255), kind
        raise ValueError(kind)


def selftest():
    # shared/vrrp-interop.md: src .5, dst .6, VRID 1, prio 100, one address .3, 100 cs.
    src, dst = "192.168.122.5", "192.168.122.6"
    msg = struct.pack("!BBBBHH", 0x31, 1, 100, 1, 100, 0) + ip4("192.168.122.3")
    got = v3_forms(msg, src, dst)
    want = [0xBA13, 0x14B0, 0x2FED]
    assert got == want, "v3 forms %s != %s" % ([hex(x) for x in got], [hex(x) for x in want])
    # A real keepalived v2 packet (VRID 1, prio 100, 192.168.122.3, 1 s, no auth).
    real = bytes.fromhex(
        "45c00028d83600 00ff70c7aec0a87a05e0000012".replace(" ", "")
        + "21016401000140 50c0a87a030000000000000000".replace(" ", "")
    )
    assert csum(real[:20]) == 0, "IP header checksum"
    assert csum(real[20:]) == 0, "v2 checksum"
    m = bytearray(real[20:])
    m[6:8] = b"\0\0"
    assert csum(bytes(m)) == 0x4050
    # Our own builders verify under the form a receiver tries first.
    a = v3_advert("192.0.2.13", "192.0.2.11", VRID, 255)
    assert csum(a, pseudo_sum("192.0.2.13", "192.0.2.11", len(a))) == 0
    g = Generator("192.0.2.13", "192.0.2.77", 254, 1)
    for k in KINDS:
        for d in ("192.0.2.11", GROUP):
            g.build(k, d)
    b = g.build("bad_checksum", "192.0.2.11")[2]
    assert set_csum(b, 0)[6:8] == b"\0\0"
    assert struct.unpack("!H", b[6:8])[0] not in v3_forms(b, "192.0.2.13", "192.0.2.11")
    assert csum(v2_advert(VRID, 255)) == 0
    print("selftest ok")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--targets", default="", help="comma-separated unicast destinations")
    ap.add_argument("--group", default=GROUP, help="multicast destination ('' = none)")
    ap.add_argument("--duration", type=float, default=15.0)
    ap.add_argument("--rate", type=float, default=4000.0, help="packets/s in all (0 = flat out)")
    ap.add_argument("--src", default=None, help="our own address (default: the interface's)")
    ap.add_argument("--forged", default="192.0.2.77")
    ap.add_argument("--ifname", default="vr0")
    ap.add_argument("--group-advert-ttl", type=int, default=254)
    ap.add_argument("--seed", type=int, default=5798)
    ap.add_argument("--selftest", action="store_true")
    a = ap.parse_args()
    if a.selftest:
        selftest()
        return 0

    dsts = [t for t in a.targets.split(",") if t]
    if a.group:
        dsts.append(a.group)
    if not dsts:
        ap.error("nothing to send to")
    for d in dsts:
        if not (d.startswith("192.0.2.") or d == GROUP):
            ap.error("refusing to send outside 192.0.2.0/24 and 224.0.0.18: %s" % d)

    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, a.ifname.encode())
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
    me = a.src
    if me is None:
        # The interface's address: the source the kernel picks for a peer of ours.
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, a.ifname.encode())
        u.connect((dsts[0] if dsts[0] != GROUP else "192.0.2.1", 9))
        me = u.getsockname()[0]
        u.close()

    gen = Generator(me, a.forged, a.group_advert_ttl, a.seed)
    pairs = [(k, d) for k in KINDS for d in dsts]
    kinds = {k: 0 for k in KINDS}
    per_dst = {d: 0 for d in dsts}
    per_dst_kind = {d: {} for d in dsts}
    errors = {}
    sent = attempts = 0
    start = time.monotonic()
    end = start + a.duration
    i = 0
    while True:
        now = time.monotonic()
        if now >= end:
            break
        if a.rate > 0:
            due = int((now - start) * a.rate)
            if attempts >= due:
                time.sleep(min(0.002, end - now))
                continue
            burst = min(due - attempts, 256)
        else:
            burst = 256
        for _ in range(burst):
            kind, dst = pairs[i % len(pairs)]
            i += 1
            attempts += 1
            src, ttl, payload, label = gen.build(kind, dst)
            try:
                s.sendto(ip_packet(src, dst, ttl, payload), (dst, 0))
            except OSError as e:
                name = e.__class__.__name__ + ":" + str(e.errno)
                errors[name] = errors.get(name, 0) + 1
                continue
            sent += 1
            kinds[kind] += 1
            per_dst[dst] += 1
            pk = per_dst_kind[dst]
            pk[label] = pk.get(label, 0) + 1
    elapsed = time.monotonic() - start
    json.dump(
        {
            "src": me,
            "forged": a.forged,
            "rate": a.rate,
            "duration": a.duration,
            "elapsed": round(elapsed, 3),
            "sent_total": sent,
            "attempts": attempts,
            "send_errors": sum(errors.values()),
            "errors": errors,
            "kinds": kinds,
            "per_dst": per_dst,
            "per_dst_kind": per_dst_kind,
        },
        sys.stdout,
        sort_keys=True,
    )
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
