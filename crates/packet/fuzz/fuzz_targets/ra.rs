//! Router advertisement with RDNSS (packet::ra). The first 32 bytes are the pseudo-header
//! addresses; the type is forced to 134 and the checksum fixed, so the options are what
//! is fuzzed. Never panic; parse(build(ra)) == ra; the frame parser never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;
use packet::icmpv6::Packet;
use packet::ra::{self, RouterAdvert};
use std::net::Ipv6Addr;

fuzz_target!(|data: &[u8]| {
    let _ = ra::parse_frame(data);
    if data.len() < 33 {
        return;
    }
    let src = Ipv6Addr::from(<[u8; 16]>::try_from(&data[..16]).unwrap());
    let dst = Ipv6Addr::from(<[u8; 16]>::try_from(&data[16..32]).unwrap());
    let mut msg = data[32..].to_vec();
    msg[0] = 134;
    if let Ok(mut p) = Packet::new_checked(&mut msg[..]) {
        p.fill_checksum(&src, &dst);
    }
    let Ok(ra) = RouterAdvert::parse(&msg, &src, &dst) else {
        return;
    };
    let rebuilt = ra.build(&src, &dst);
    assert_eq!(rebuilt.len(), ra.buffer_len());
    assert_eq!(RouterAdvert::parse(&rebuilt, &src, &dst).unwrap(), ra);
});
