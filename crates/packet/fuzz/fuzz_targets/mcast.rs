//! IGMP and MLD membership messages from whole frames: never panic; the IGMP and MLD
//! readers alone too (the first 32 bytes as the MLD pseudo-header addresses).
#![no_main]
use libfuzzer_sys::fuzz_target;
use packet::mcast;
use std::net::Ipv6Addr;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = mcast::parse_frame(data) {
        if let mcast::Message::Report { joins, leaves, .. } = m.message {
            // Every group comes from bytes that were there: no more than the frame holds.
            assert!((joins.len() + leaves.len()) * 4 <= data.len());
        }
    }
    let _ = mcast::parse_igmp(data);
    if data.len() >= 32 {
        let src = Ipv6Addr::from(<[u8; 16]>::try_from(&data[..16]).unwrap());
        let dst = Ipv6Addr::from(<[u8; 16]>::try_from(&data[16..32]).unwrap());
        let _ = mcast::parse_mld(&src, &dst, &data[32..]);
    }
});
