//! IPv4 view and Repr plus the builders that take a whole IPv4 packet (ICMP errors, echo
//! reply, TCP RST). The header checksum is fixed first so the fuzzer gets past it.
#![no_main]
use libfuzzer_sys::fuzz_target;
use packet::ethernet::EtherType;
use packet::{icmpv4, ipv4, ipv6, tcp};
use std::net::Ipv4Addr;

/// `rst_packet` answers in the version of the original's first nibble, whichever view the
/// fuzzer used: check the RST in its own family, then pass it on only if it is IPv4.
fn check_rst((ethertype, out): (EtherType, Vec<u8>)) -> packet::Result<Vec<u8>> {
    if ethertype == EtherType::Ipv4 {
        ipv4::Ipv4Repr::parse(&ipv4::Packet::new_checked(&out[..]).unwrap()).unwrap();
    } else {
        ipv6::Ipv6Repr::parse(&ipv6::Packet::new_checked(&out[..]).unwrap()).unwrap();
    }
    if ethertype == EtherType::Ipv4 {
        Ok(out)
    } else {
        Err(packet::Error::Unsupported)
    }
}

fuzz_target!(|data: &[u8]| {
    let mut data = data.to_vec();
    if let Ok(mut p) = ipv4::Packet::new_checked(&mut data[..]) {
        p.fill_checksum();
    }
    let Ok(p) = ipv4::Packet::new_checked(&data[..]) else {
        return;
    };
    let _ = (
        p.version(),
        p.tos(),
        p.ident(),
        p.dont_frag(),
        p.more_frags(),
        p.frag_offset(),
        p.ttl(),
        p.protocol(),
    );
    let _ = (
        p.checksum(),
        p.src_addr(),
        p.dst_addr(),
        p.header(),
        p.payload(),
    );
    if let Ok(repr) = ipv4::Ipv4Repr::parse(&p) {
        let rebuilt = repr.build(p.payload());
        assert_eq!(
            ipv4::Ipv4Repr::parse(&ipv4::Packet::new_checked(&rebuilt[..]).unwrap()).unwrap(),
            repr
        );
    }
    let src = Ipv4Addr::new(10, 0, 0, 1);
    for out in [
        icmpv4::time_exceeded(&data, 0, src),
        icmpv4::dst_unreachable(&data, 4, 1400, src),
        icmpv4::echo_reply(&data),
        tcp::rst_packet(&data).and_then(check_rst),
    ]
    .into_iter()
    .flatten()
    {
        // Whatever we build must parse back.
        let p = ipv4::Packet::new_checked(&out[..]).unwrap();
        ipv4::Ipv4Repr::parse(&p).unwrap();
    }
});
