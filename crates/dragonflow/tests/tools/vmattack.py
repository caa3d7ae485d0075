#!/usr/bin/env python3
"""What an attacking VM sends and what a victim VM sees, as raw Ethernet frames on a VM's
interface (AF_PACKET, standard library only), for the isolation end-to-end tests.

    vmattack.py send IFACE KIND [--to-mac M] [--to-ip A] [--vid V ...] [--count N]
    vmattack.py sniff IFACE SECONDS --from-mac M      prints the frames seen, then a count

Every frame sent carries the marker DFATTACK, which `sniff` counts; KIND is one of
    ra         an IPv6 router advertisement (prefix 2001:db8:bad::/64, router lifetime 1800 s)
    redirect   an ICMPv6 redirect
    dhcp       DHCP server traffic (UDP 67 -> 68): an OFFER and an ACK, to broadcast and to M
    dhcp6      DHCPv6 server traffic (UDP 547 -> 546): an ADVERTISE to ff02::1:2 and to M
    udp        a plain UDP datagram to M / A (the control: this one should arrive), from
               --from-ip if given
With --vid (repeatable: the outer tag first) the frame carries 802.1Q tags; --vid 0 is a
priority tag.
"""

import argparse
import socket
import struct
import sys
import time

MARK = b"DFATTACK"
ETH_P_ALL = 0x0003


def mac_bytes(s):
    return bytes(int(x, 16) for x in s.split(":"))


def mac_of(iface):
    with open(f"/sys/class/net/{iface}/address") as f:
        return mac_bytes(f.read().strip())


def ipv4_of(iface):
    import subprocess

    out = subprocess.run(["ip", "-4", "-o", "addr", "show", "dev", iface],
                         capture_output=True, text=True).stdout.split()
    return out[out.index("inet") + 1].split("/")[0] if "inet" in out else "0.0.0.0"


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def link_local(mac):
    eui = bytes([mac[0] ^ 2]) + mac[1:3] + b"\xff\xfe" + mac[3:]
    return b"\xfe\x80" + b"\0" * 6 + eui


def eth(dst, src, ethertype, payload, vids=()):
    """An Ethernet frame with a stack of 802.1Q tags (outer first), padded to 60 bytes."""
    stack = b"".join(struct.pack("!HH", 0x8100, vid & 0xFFF) for vid in vids)
    frame = dst + src + stack + struct.pack("!H", ethertype) + payload
    return frame + b"\0" * max(0, 60 - len(frame))


def ipv4(src, dst, proto, payload):
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 1, 0, 64, proto, 0,
                      socket.inet_aton(src), socket.inet_aton(dst))
    hdr = hdr[:10] + struct.pack("!H", csum(hdr)) + hdr[12:]
    return hdr + payload


def udp4(src, dst, sport, dport, payload):
    u = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, 17, len(u))
    c = csum(pseudo + u) or 0xFFFF
    return ipv4(src, dst, 17, u[:6] + struct.pack("!H", c) + u[8:])


def ipv6(src, dst, nh, payload, hops=255):
    return struct.pack("!IHBB", 6 << 28, len(payload), nh, hops) + src + dst + payload


def l4v6(src, dst, nh, l4, csum_at):
    pseudo = src + dst + struct.pack("!I3xB", len(l4), nh)
    c = csum(pseudo + l4)
    return l4[:csum_at] + struct.pack("!H", c) + l4[csum_at + 2:]


def icmp6(src, dst, body):
    return ipv6(src, dst, 58, l4v6(src, dst, 58, body, 2))


def marker_option():
    # An option of an unassigned type (253, for experiments) carrying the marker: receivers
    # skip options they do not know. Length in units of 8 bytes.
    data = MARK + b"\0" * 6
    return struct.pack("!BB", 253, (2 + len(data)) // 8) + data


def ra(mac):
    prefix = socket.inet_pton(socket.AF_INET6, "2001:db8:bad::")
    body = struct.pack("!BBHBBHII", 134, 0, 0, 64, 0, 1800, 0, 0)
    # Source link-layer address option.
    body += struct.pack("!BB", 1, 1) + mac
    # Prefix information: /64, on-link and autonomous, long lifetimes.
    body += struct.pack("!BBBBIII", 3, 4, 64, 0xC0, 86400, 14400, 0) + prefix
    body += marker_option()
    src = link_local(mac)
    dst = socket.inet_pton(socket.AF_INET6, "ff02::1")
    return eth(b"\x33\x33\x00\x00\x00\x01", mac, 0x86DD, icmp6(src, dst, body))


def redirect(mac, to_mac):
    target = socket.inet_pton(socket.AF_INET6, "fe80::bad")
    dest = socket.inet_pton(socket.AF_INET6, "2001:db8::1")
    body = struct.pack("!BBHI", 137, 0, 0, 0) + target + dest + marker_option()
    return eth(to_mac, mac, 0x86DD, icmp6(link_local(mac), link_local(to_mac), body))


def dhcp_reply(mac, src_ip, to_mac, to_ip, msg_type, broadcast):
    chaddr = to_mac + b"\0" * 10
    sname = MARK + b"\0" * (64 - len(MARK))
    bootp = struct.pack("!BBBBIHH4s4s4s4s", 2, 1, 6, 0, 0x12345678, 0, 0x8000,
                        b"\0" * 4, socket.inet_aton(to_ip), socket.inet_aton(src_ip),
                        b"\0" * 4)
    bootp += chaddr + sname + b"\0" * 128 + b"\x63\x82\x53\x63"
    opts = bytes([53, 1, msg_type, 54, 4]) + socket.inet_aton(src_ip)
    opts += bytes([1, 4, 255, 255, 255, 0, 3, 4]) + socket.inet_aton(src_ip)
    opts += bytes([51, 4, 0, 0, 0x0E, 0x10, 255])
    dst_ip = "255.255.255.255" if broadcast else to_ip
    dst_mac = b"\xff" * 6 if broadcast else to_mac
    return eth(dst_mac, mac, 0x0800, udp4(src_ip, dst_ip, 67, 68, bootp + opts))


def dhcp6_advertise(mac, to_mac):
    src = link_local(mac)
    body = struct.pack("!I", (2 << 24) | 0x123456)  # ADVERTISE, transaction id
    body += struct.pack("!HH", 13, len(MARK)) + MARK  # a status-code-like option carrying the marker
    out = []
    for dst_mac, dst in ((b"\x33\x33\x00\x01\x00\x02", "ff02::1:2"),
                         (to_mac, None)):
        d = socket.inet_pton(socket.AF_INET6, dst) if dst else link_local(to_mac)
        u = struct.pack("!HHHH", 547, 546, 8 + len(body), 0) + body
        out.append(eth(dst_mac, mac, 0x86DD, ipv6(src, d, 17, l4v6(src, d, 17, u, 6), 64)))
    return out


def frames(args, mac):
    to_mac = mac_bytes(args.to_mac) if args.to_mac else b"\xff" * 6
    if args.kind == "ra":
        return [ra(mac)]
    if args.kind == "redirect":
        return [redirect(mac, to_mac)]
    if args.kind == "dhcp":
        src = ipv4_of(args.iface)
        to_ip = args.to_ip or "0.0.0.0"
        return [dhcp_reply(mac, src, to_mac, to_ip, t, b)
                for t, b in ((2, True), (5, True), (2, False), (5, False))]
    if args.kind == "dhcp6":
        return dhcp6_advertise(mac, to_mac)
    if args.kind == "udp":
        src = args.from_ip or ipv4_of(args.iface)
        payload = udp4(src, args.to_ip or "255.255.255.255", 40000, 9999, MARK)
        return [eth(to_mac, mac, 0x0800, payload, args.vid or ())]
    raise SystemExit(f"unknown kind {args.kind}")


def send(args):
    mac = mac_of(args.iface)
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.bind((args.iface, 0))
    fs = frames(args, mac)
    if args.vid and args.kind != "udp":
        raise SystemExit("--vid applies to udp frames only")
    for _ in range(args.count):
        for f in fs:
            s.send(f)
        time.sleep(args.interval)
    print(f"sent {len(fs) * args.count} frames")


def sniff(args):
    want = mac_bytes(args.from_mac)
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.bind((args.iface, 0))
    s.settimeout(0.2)
    end = time.monotonic() + args.seconds
    seen = 0
    while time.monotonic() < end:
        try:
            data, addr = s.recvfrom(65535)
        except socket.timeout:
            continue
        # Outgoing copies (PACKET_OUTGOING = 4) are the sniffer's own host's frames.
        if addr[2] == 4 or data[6:12] != want or MARK not in data:
            continue
        seen += 1
        print("frame", data[:64].hex(), flush=True)
    print(f"seen {seen}", flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    ps = sub.add_parser("send")
    ps.add_argument("iface")
    ps.add_argument("kind")
    ps.add_argument("--to-mac")
    ps.add_argument("--to-ip")
    ps.add_argument("--from-ip")
    ps.add_argument("--vid", type=int, action="append")
    ps.add_argument("--count", type=int, default=3)
    ps.add_argument("--interval", type=float, default=0.2)
    pn = sub.add_parser("sniff")
    pn.add_argument("iface")
    pn.add_argument("seconds", type=float)
    pn.add_argument("--from-mac", required=True)
    args = p.parse_args()
    send(args) if args.cmd == "send" else sniff(args)


if __name__ == "__main__":
    sys.exit(main())
