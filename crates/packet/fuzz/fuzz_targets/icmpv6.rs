//! ICMPv6/ND view and Repr. The first 32 bytes are the pseudo-header addresses; the
//! checksum is fixed first. Never panic; parse(emit(repr)) == repr.
#![no_main]
use libfuzzer_sys::fuzz_target;
use packet::icmpv6::{Icmpv6Repr, Packet};
use std::net::Ipv6Addr;

fuzz_target!(|data: &[u8]| {
    if data.len() < 32 {
        return;
    }
    let src = Ipv6Addr::from(<[u8; 16]>::try_from(&data[..16]).unwrap());
    let dst = Ipv6Addr::from(<[u8; 16]>::try_from(&data[16..32]).unwrap());
    let mut msg = data[32..].to_vec();
    let Ok(mut p) = Packet::new_checked(&mut msg[..]) else {
        return;
    };
    p.fill_checksum(&src, &dst);
    let p = Packet::new_checked(&msg[..]).unwrap();
    let _ = (
        p.msg_type(),
        p.msg_code(),
        p.checksum(),
        p.echo_ident(),
        p.echo_seq_no(),
        p.pkt_too_big_mtu(),
    );
    let _ = (
        p.cur_hop_limit(),
        p.flags(),
        p.router_lifetime(),
        p.reachable_time(),
        p.retrans_time(),
        p.target_addr(),
        p.body(),
    );
    let Ok(repr) = Icmpv6Repr::parse(&p, &src, &dst) else {
        return;
    };
    let rebuilt = repr.build(&src, &dst);
    assert_eq!(rebuilt.len(), repr.buffer_len());
    assert_eq!(
        Icmpv6Repr::parse(&Packet::new_checked(&rebuilt[..]).unwrap(), &src, &dst).unwrap(),
        repr
    );
});
