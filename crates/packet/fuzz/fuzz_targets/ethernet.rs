//! Ethernet/VLAN view and Repr: never panic; parse(emit(repr)) == repr.
#![no_main]
use libfuzzer_sys::fuzz_target;
use packet::ethernet::{EthernetRepr, Frame};

fuzz_target!(|data: &[u8]| {
    let Ok(f) = Frame::new_checked(data) else {
        return;
    };
    let _ = (
        f.dst_addr(),
        f.src_addr(),
        f.vlan(),
        f.ethertype(),
        f.payload(),
    );
    let repr = EthernetRepr::parse(&f).unwrap();
    let rebuilt = repr.build(f.payload());
    assert_eq!(
        EthernetRepr::parse(&Frame::new_checked(&rebuilt[..]).unwrap()).unwrap(),
        repr
    );
});
