//! What every DHCPv6 target checks of one message: the view and the parser never panic,
//! parse(build(repr)) == repr, and a reply frame built from the message parses back to it.
use packet::EthernetAddress;
use packet::dhcpv6::{self, Dhcpv6Repr, Packet};

pub fn message(data: &[u8]) {
    let _ = dhcpv6::parse_domains(data);
    let Ok(p) = Packet::new_checked(data) else {
        return;
    };
    let _ = (p.msg_type(), p.transaction_id(), p.option_iter().count());
    let Ok(repr) = Dhcpv6Repr::parse(&p) else {
        return;
    };
    let built = repr.build();
    assert_eq!(built.len(), repr.buffer_len());
    let again = Dhcpv6Repr::parse(&Packet::new_checked(&built[..]).unwrap()).unwrap();
    assert_eq!(again, repr);
    let frame = dhcpv6::reply_frame(
        &repr,
        (
            EthernetAddress([2, 0, 0, 0, 0, 1]),
            "fe80::1".parse().unwrap(),
        ),
        (
            EthernetAddress([2, 0, 0, 0, 0, 2]),
            "fe80::2".parse().unwrap(),
        ),
        None,
    );
    assert_eq!(dhcpv6::parse_frame(&frame).unwrap().dhcp, repr);
}

/// `data` as the options of a message of type `t` (the fuzzer need not find the type).
pub fn typed(t: u8, data: &[u8]) {
    let mut m = Vec::with_capacity(data.len() + 4);
    m.extend_from_slice(&[t, 0x12, 0x34, 0x56]);
    m.extend_from_slice(data);
    message(&m);
}
