//! DHCPv4 view, option iterator and Repr: never panic; parse(emit(repr)) == repr; the
//! reply frame built from any parsed message parses back to it.
#![no_main]
use libfuzzer_sys::fuzz_target;
use packet::EthernetAddress;
use packet::dhcpv4::{self, DhcpRepr, Packet};
use std::net::Ipv4Addr;

fuzz_target!(|data: &[u8]| {
    let _ = dhcpv4::parse_classless_routes(data);
    let Ok(p) = Packet::new_checked(data) else {
        return;
    };
    let _ = (
        p.op(),
        p.hops(),
        p.transaction_id(),
        p.secs(),
        p.flags(),
        p.client_ip(),
        p.your_ip(),
        p.server_ip(),
    );
    let _ = (
        p.relay_agent_ip(),
        p.client_hardware_addr(),
        p.magic_cookie(),
        p.option_iter().count(),
    );
    let Ok(repr) = DhcpRepr::parse(&p) else {
        return;
    };
    let rebuilt = repr.build();
    assert_eq!(rebuilt.len(), repr.buffer_len());
    assert_eq!(
        DhcpRepr::parse(&Packet::new_checked(&rebuilt[..]).unwrap()).unwrap(),
        repr
    );
    let repr = DhcpRepr {
        relay_agent_ip: Ipv4Addr::UNSPECIFIED,
        ..repr
    };
    let frame = dhcpv4::reply_frame(
        &repr,
        EthernetAddress([2, 0, 0, 0, 0, 1]),
        Ipv4Addr::new(10, 0, 0, 1),
        None,
    )
    .unwrap();
    assert_eq!(dhcpv4::parse_frame(&frame).unwrap().dhcp, repr);
});
