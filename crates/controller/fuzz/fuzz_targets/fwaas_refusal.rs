//! Any packet a `reject` rule punts, as the FWaaS handler answers it
//! (`apps::fwaas::reject::refusal`): never a panic; an answer comes from the packet's
//! destination to its source, and is never a RST about a RST.
#![no_main]

use controller::apps::fwaas::reject::refusal;
use libfuzzer_sys::fuzz_target;
use packet::ethernet::EtherType;
use packet::{ipv4, ipv6};

fuzz_target!(|data: &[u8]| {
    if let Some(out) = refusal(EtherType::Ipv4, data) {
        let (Ok(a), Ok(q)) = (ipv4::Packet::new_checked(&out[..]), ipv4::Packet::new_checked(data))
        else {
            panic!("an IPv4 answer to an IPv4 packet");
        };
        assert_eq!((a.src_addr(), a.dst_addr()), (q.dst_addr(), q.src_addr()));
    }
    if let Some(out) = refusal(EtherType::Ipv6, data) {
        let (Ok(a), Ok(q)) = (ipv6::Packet::new_checked(&out[..]), ipv6::Packet::new_checked(data))
        else {
            panic!("an IPv6 answer to an IPv6 packet");
        };
        assert_eq!((a.src_addr(), a.dst_addr()), (q.dst_addr(), q.src_addr()));
    }
});
