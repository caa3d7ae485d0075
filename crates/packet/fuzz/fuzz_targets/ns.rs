//! ICMPv6 type 135 (NeighborSolicit) alone: the first 32 bytes are the pseudo-header
//! addresses; the type is forced and the checksum fixed, so the body and options are what
//! is fuzzed. Never panic; parse(emit(repr)) == repr; the frame parser and the NA builder
//! never panic on a whole frame.
#![no_main]
use libfuzzer_sys::fuzz_target;
use packet::EthernetAddress;
use packet::icmpv6::{self, Icmpv6Repr, Packet};
use std::net::Ipv6Addr;

fuzz_target!(|data: &[u8]| {
    let _ = icmpv6::parse_frame(data);
    let _ = icmpv6::neighbor_advert_reply(data, EthernetAddress([2, 0, 0, 0, 0, 1]), true);
    if data.len() < 33 {
        return;
    }
    let src = Ipv6Addr::from(<[u8; 16]>::try_from(&data[..16]).unwrap());
    let dst = Ipv6Addr::from(<[u8; 16]>::try_from(&data[16..32]).unwrap());
    let mut msg = data[32..].to_vec();
    msg[0] = 135;
    let Ok(mut p) = Packet::new_checked(&mut msg[..]) else {
        return;
    };
    p.fill_checksum(&src, &dst);
    let p = Packet::new_checked(&msg[..]).unwrap();
    let Ok(repr) = Icmpv6Repr::parse(&p, &src, &dst) else {
        return;
    };
    assert!(matches!(repr, Icmpv6Repr::NeighborSolicit { .. }));
    let rebuilt = repr.build(&src, &dst);
    assert_eq!(rebuilt.len(), repr.buffer_len());
    assert_eq!(
        Icmpv6Repr::parse(&Packet::new_checked(&rebuilt[..]).unwrap(), &src, &dst).unwrap(),
        repr
    );
});
