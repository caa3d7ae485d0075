//! Frame builders for the behaviour tests.
#![allow(dead_code)]

use std::net::Ipv4Addr;

pub fn mac(n: u8) -> [u8; 6] {
    [0xfa, 0x16, 0x3e, 0, 0, n]
}

pub const BCAST: [u8; 6] = [0xff; 6];

pub fn eth(dst: [u8; 6], src: [u8; 6], ty: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ty.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

pub fn arp_request(sha: [u8; 6], spa: Ipv4Addr, tpa: Ipv4Addr) -> Vec<u8> {
    let mut p = vec![0, 1, 8, 0, 6, 4, 0, 1];
    p.extend_from_slice(&sha);
    p.extend_from_slice(&spa.octets());
    p.extend_from_slice(&[0; 6]);
    p.extend_from_slice(&tpa.octets());
    eth(BCAST, sha, 0x0806, &p)
}

fn csum(data: &[u8], mut s: u32) -> u16 {
    for c in data.chunks(2) {
        let w = if c.len() == 2 {
            u16::from_be_bytes([c[0], c[1]])
        } else {
            u16::from(c[0]) << 8
        };
        s += u32::from(w);
    }
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

pub fn ipv4(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, ttl: u8, l4: &[u8]) -> Vec<u8> {
    let total = (20 + l4.len()) as u16;
    let mut h = vec![0x45, 0];
    h.extend_from_slice(&total.to_be_bytes());
    h.extend_from_slice(&[0, 1, 0x40, 0, ttl, proto, 0, 0]);
    h.extend_from_slice(&src.octets());
    h.extend_from_slice(&dst.octets());
    let c = csum(&h, 0);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    let mut l4 = l4.to_vec();
    let ck = match proto {
        6 => Some(16),
        17 => Some(6),
        1 => Some(2),
        _ => None,
    };
    if let Some(ck) = ck {
        let mut s = 0u32;
        if proto != 1 {
            for c in src.octets().chunks(2).chain(dst.octets().chunks(2)) {
                s += u32::from(u16::from_be_bytes([c[0], c[1]]));
            }
            s += u32::from(proto) + l4.len() as u32;
        }
        let c = csum(&l4, s);
        l4[ck..ck + 2].copy_from_slice(&c.to_be_bytes());
    }
    h.extend_from_slice(&l4);
    h
}

pub fn udp_frame(
    dmac: [u8; 6],
    smac: [u8; 6],
    src: Ipv4Addr,
    dst: Ipv4Addr,
    sport: u16,
    dport: u16,
    ttl: u8,
) -> Vec<u8> {
    let mut u = Vec::new();
    u.extend_from_slice(&sport.to_be_bytes());
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&12u16.to_be_bytes());
    u.extend_from_slice(&[0, 0, b'p', b'i', b'n', b'g']);
    eth(dmac, smac, 0x0800, &ipv4(src, dst, 17, ttl, &u))
}

pub fn tcp_frame(
    dmac: [u8; 6],
    smac: [u8; 6],
    src: Ipv4Addr,
    dst: Ipv4Addr,
    sport: u16,
    dport: u16,
    flags: u8,
) -> Vec<u8> {
    let mut t = Vec::new();
    t.extend_from_slice(&sport.to_be_bytes());
    t.extend_from_slice(&dport.to_be_bytes());
    t.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    eth(dmac, smac, 0x0800, &ipv4(src, dst, 6, 64, &t))
}

pub fn ip(a: u8, b: u8, c: u8, d: u8) -> Ipv4Addr {
    Ipv4Addr::new(a, b, c, d)
}

/// Checks the IPv4 header and UDP/TCP checksums with the `packet` crate.
pub fn checksums_ok(frame: &[u8]) -> bool {
    use packet::{ipv4, tcp, udp};
    let Some(l3) = frame.get(14..) else {
        return false;
    };
    let Ok(p) = ipv4::Packet::new_checked(l3) else {
        return false;
    };
    if !p.verify_checksum() {
        return false;
    }
    let src = std::net::IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(&l3[12..16]).unwrap()));
    let dst = std::net::IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(&l3[16..20]).unwrap()));
    let l4 = &l3[20..];
    match l3[9] {
        17 => udp::Packet::new_checked(l4).is_ok_and(|u| u.verify_checksum(&src, &dst)),
        6 => tcp::Packet::new_checked(l4).is_ok_and(|t| t.verify_checksum(&src, &dst)),
        _ => true,
    }
}
