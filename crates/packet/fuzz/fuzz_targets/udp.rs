//! UDP view and Repr over IPv4 or IPv6 pseudo-headers (first byte picks the family, then
//! the addresses; the checksum is fixed first). Never panic; parse(emit(repr)) == repr.
#![no_main]
use libfuzzer_sys::fuzz_target;
use packet::udp::{Packet, UdpRepr};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

fn split(data: &[u8]) -> Option<(IpAddr, IpAddr, &[u8])> {
    let (&family, rest) = data.split_first()?;
    if family & 1 == 0 {
        let a: [u8; 4] = rest.get(..4)?.try_into().ok()?;
        let b: [u8; 4] = rest.get(4..8)?.try_into().ok()?;
        Some((
            IpAddr::V4(Ipv4Addr::from(a)),
            IpAddr::V4(Ipv4Addr::from(b)),
            &rest[8..],
        ))
    } else {
        let a: [u8; 16] = rest.get(..16)?.try_into().ok()?;
        let b: [u8; 16] = rest.get(16..32)?.try_into().ok()?;
        Some((
            IpAddr::V6(Ipv6Addr::from(a)),
            IpAddr::V6(Ipv6Addr::from(b)),
            &rest[32..],
        ))
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((src, dst, seg)) = split(data) else {
        return;
    };
    let mut seg = seg.to_vec();
    let Ok(mut p) = Packet::new_checked(&mut seg[..]) else {
        return;
    };
    if data[0] & 2 == 0 {
        p.fill_checksum(&src, &dst);
    }
    let p = Packet::new_checked(&seg[..]).unwrap();
    let _ = (
        p.src_port(),
        p.dst_port(),
        p.len(),
        p.checksum(),
        p.payload(),
    );
    let Ok(repr) = UdpRepr::parse(&p, &src, &dst) else {
        return;
    };
    let rebuilt = repr.build(&src, &dst);
    assert_eq!(
        UdpRepr::parse(&Packet::new_checked(&rebuilt[..]).unwrap(), &src, &dst).unwrap(),
        repr
    );
});
