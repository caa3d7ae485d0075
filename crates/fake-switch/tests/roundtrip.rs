//! Writing a field and reading it back gives the written bits, on every frame kind, and
//! never disturbs the other fields of the same frame except the checksums.

mod common;

use common::*;
use fake_switch::Packet;
use openflow::Field;
use openflow::oxm::low_bits;
use proptest::prelude::*;

const FIELDS: &[Field] = &[
    Field::EthDst,
    Field::EthSrc,
    Field::VlanPcp,
    Field::IpDscp,
    Field::IpEcn,
    Field::IpTtl,
    Field::Ipv4Src,
    Field::Ipv4Dst,
    Field::TcpSrc,
    Field::TcpDst,
    Field::UdpSrc,
    Field::UdpDst,
    Field::ArpOp,
    Field::ArpSpa,
    Field::ArpTpa,
    Field::ArpSha,
    Field::ArpTha,
    Field::Metadata,
    Field::Reg(3),
    Field::XReg(5),
    Field::XxReg(2),
    Field::TunId,
    Field::CtMark,
    Field::CtLabel,
    Field::PktMark,
];

fn frames() -> Vec<Vec<u8>> {
    let udp = udp_frame(mac(2), mac(1), ip(10, 0, 0, 1), ip(10, 0, 0, 2), 7, 8, 9);
    let mut tagged = udp.clone();
    tagged.splice(12..12, [0x81, 0, 0x20, 5]);
    vec![
        udp,
        tagged,
        tcp_frame(mac(2), mac(1), ip(10, 0, 0, 1), ip(10, 0, 0, 2), 7, 8, 0x12),
        arp_request(mac(1), ip(10, 0, 0, 1), ip(10, 0, 0, 2)),
    ]
}

proptest! {
    #[test]
    fn set_then_get(fi in 0..FIELDS.len(), which in 0usize..4, v in any::<u128>()) {
        let f = FIELDS[fi];
        let frame = frames()[which].clone();
        let mut p = Packet::new(1, frame);
        let before: Vec<_> = FIELDS.iter().map(|&g| p.get(g)).collect();
        let had = p.get(f).is_some();
        prop_assert_eq!(p.set(f, v), had);
        if had {
            let want = v & low_bits(u32::from(f.bits()));
            prop_assert_eq!(p.get(f), Some(want));
            if p.get(Field::EthType) == Some(0x0800) {
                // checksums_ok reads an untagged frame: strip the tag first.
                let mut untagged = p.frame.clone();
                if which == 1 {
                    untagged.drain(12..16);
                }
                prop_assert!(checksums_ok(&untagged));
            }
            // Other fields: unchanged unless they overlap (register views).
            for (g, b) in FIELDS.iter().zip(before) {
                let overlapping = matches!((f, *g), (Field::Reg(_) | Field::XReg(_) | Field::XxReg(_), Field::Reg(_) | Field::XReg(_) | Field::XxReg(_)));
                if *g != f && !overlapping {
                    prop_assert_eq!(p.get(*g), b, "{:?} changed by {:?}", g, f);
                }
            }
        }
    }
}
