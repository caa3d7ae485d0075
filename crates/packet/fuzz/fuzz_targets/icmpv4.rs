//! ICMPv4 view and Repr (checksum fixed first): never panic; parse(emit(repr)) == repr.
#![no_main]
use libfuzzer_sys::fuzz_target;
use packet::icmpv4::{Icmpv4Repr, Packet};

fuzz_target!(|data: &[u8]| {
    let mut data = data.to_vec();
    let Ok(mut p) = Packet::new_checked(&mut data[..]) else {
        return;
    };
    p.fill_checksum();
    let p = Packet::new_checked(&data[..]).unwrap();
    let _ = (
        p.msg_type(),
        p.msg_code(),
        p.checksum(),
        p.echo_ident(),
        p.echo_seq_no(),
        p.next_hop_mtu(),
        p.data(),
    );
    let Ok(repr) = Icmpv4Repr::parse(&p) else {
        return;
    };
    let rebuilt = repr.build();
    assert_eq!(
        Icmpv4Repr::parse(&Packet::new_checked(&rebuilt[..]).unwrap()).unwrap(),
        repr
    );
});
