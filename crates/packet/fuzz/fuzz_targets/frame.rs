//! Whole Ethernet frames through the frame-level parsers and responders a controller calls
//! on packet-in: ND (parse + NA reply), DHCP, DHCPv6, ARP.
#![no_main]
use libfuzzer_sys::fuzz_target;
use packet::ethernet::{EtherType, EthernetRepr, Frame};
use packet::{EthernetAddress, arp, dhcpv4, icmpv6};

fuzz_target!(|data: &[u8]| {
    let mac = EthernetAddress([2, 0, 0, 0, 0, 1]);
    let _ = icmpv6::parse_frame(data);
    if let Ok(na) = icmpv6::neighbor_advert_reply(data, mac, true) {
        icmpv6::parse_frame(&na).unwrap();
    }
    let _ = dhcpv4::parse_frame(data);
    let _ = packet::dhcpv6::parse_frame(data);
    if let Ok(f) = Frame::new_checked(data) {
        let eth = EthernetRepr::parse(&f).unwrap();
        if eth.ethertype == EtherType::Arp {
            if let Ok(p) = arp::Packet::new_checked(f.payload()) {
                if let Ok(r) = arp::ArpRepr::parse(&p) {
                    let _ = arp::reply_frame(&r, mac, eth.vlan);
                }
            }
        }
    }
});
