//! IPv6 view and Repr plus the builders that take a whole IPv6 packet (ICMPv6 errors, echo
//! reply, TCP RST).
#![no_main]
use libfuzzer_sys::fuzz_target;
use packet::ethernet::EtherType;
use packet::{icmpv6, ipv4, ipv6, tcp};
use std::net::Ipv6Addr;

/// `rst_packet` answers in the version of the original's first nibble, whichever view the
/// fuzzer used: check the RST in its own family, then pass it on only if it is IPv6.
fn check_rst((ethertype, out): (EtherType, Vec<u8>)) -> packet::Result<Vec<u8>> {
    if ethertype == EtherType::Ipv4 {
        ipv4::Ipv4Repr::parse(&ipv4::Packet::new_checked(&out[..]).unwrap()).unwrap();
    } else {
        ipv6::Ipv6Repr::parse(&ipv6::Packet::new_checked(&out[..]).unwrap()).unwrap();
    }
    if ethertype == EtherType::Ipv6 {
        Ok(out)
    } else {
        Err(packet::Error::Unsupported)
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(p) = ipv6::Packet::new_checked(data) else {
        return;
    };
    let _ = (
        p.version(),
        p.traffic_class(),
        p.flow_label(),
        p.next_header(),
        p.hop_limit(),
        p.src_addr(),
        p.dst_addr(),
    );
    let _ = p.payload();
    if let Ok(repr) = ipv6::Ipv6Repr::parse(&p) {
        let rebuilt = repr.build(p.payload());
        assert_eq!(
            ipv6::Ipv6Repr::parse(&ipv6::Packet::new_checked(&rebuilt[..]).unwrap()).unwrap(),
            repr
        );
    }
    let src = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1);
    let errors = [
        icmpv6::time_exceeded(data, 0, src),
        icmpv6::dst_unreachable(data, 4, src),
        icmpv6::packet_too_big(data, 1280, src),
    ];
    for out in errors.iter().flatten() {
        // ICMPv6 errors never exceed the minimum MTU.
        assert!(out.len() <= 1280);
    }
    let others = [
        icmpv6::echo_reply(data),
        tcp::rst_packet(data).and_then(check_rst),
    ];
    for out in errors.into_iter().chain(others).flatten() {
        let p = ipv6::Packet::new_checked(&out[..]).unwrap();
        ipv6::Ipv6Repr::parse(&p).unwrap();
    }
});
