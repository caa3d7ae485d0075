//! ARP view, Repr and reply builder: never panic; parse(emit(repr)) == repr.
#![no_main]
use libfuzzer_sys::fuzz_target;
use packet::{EthernetAddress, arp};

fuzz_target!(|data: &[u8]| {
    let Ok(p) = arp::Packet::new_checked(data) else {
        return;
    };
    let _ = (
        p.hardware_type(),
        p.protocol_type(),
        p.operation(),
        p.source_hardware_addr(),
        p.source_protocol_addr(),
    );
    let _ = (p.target_hardware_addr(), p.target_protocol_addr());
    let Ok(repr) = arp::ArpRepr::parse(&p) else {
        return;
    };
    let mut buf = [0u8; arp::PACKET_LEN];
    repr.emit(&mut arp::Packet::new_unchecked(&mut buf[..]));
    assert_eq!(
        arp::ArpRepr::parse(&arp::Packet::new_checked(&buf[..]).unwrap()).unwrap(),
        repr
    );
    let _ = arp::reply_frame(&repr, EthernetAddress([2, 0, 0, 0, 0, 1]), None);
});
