//! Round-trip property tests: every value we can build encodes and decodes back to itself.

mod strategies;

use openflow::action::{decode_actions, encode_actions};
use openflow::buf::Reader;
use openflow::instruction::{decode_instructions, encode_instructions};
use openflow::{Match, Message};
use proptest::prelude::*;
use strategies::*;

fn roundtrip(m: &Message, xid: u32) {
    let bytes = m.to_vec(xid).expect("encode");
    assert_eq!(
        usize::from(u16::from_be_bytes([bytes[2], bytes[3]])),
        bytes.len()
    );
    assert_eq!(
        bytes.len() % 8,
        0,
        "OpenFlow 1.3 messages here are 8-byte aligned: {m:?}"
    );
    let (x, back) = Message::decode(&bytes).expect("decode");
    assert_eq!(x, xid);
    assert_eq!(&back, m);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn match_roundtrip(m in match_()) {
        let mut buf = Vec::new();
        m.encode(&mut buf);
        prop_assert_eq!(buf.len(), m.wire_len());
        prop_assert_eq!(buf.len() % 8, 0);
        let mut r = Reader::new(&buf, "match");
        prop_assert_eq!(Match::decode(&mut r).expect("decode"), m);
        prop_assert!(r.is_empty());
    }

    #[test]
    fn actions_roundtrip(a in actions()) {
        let mut buf = Vec::new();
        encode_actions(&a, &mut buf);
        prop_assert_eq!(buf.len() % 8, 0);
        prop_assert_eq!(decode_actions(&buf).expect("decode"), a);
    }

    #[test]
    fn instructions_roundtrip(i in proptest::collection::vec(instruction(), 0..5)) {
        let mut buf = Vec::new();
        encode_instructions(&i, &mut buf);
        prop_assert_eq!(decode_instructions(&buf).expect("decode"), i);
    }

    #[test]
    fn flow_mod_roundtrip(f in flow_mod(), xid in any::<u32>()) {
        roundtrip(&Message::FlowMod(f), xid);
    }

    #[test]
    fn group_mod_roundtrip(g in group_mod(), xid in any::<u32>()) {
        roundtrip(&Message::GroupMod(g), xid);
    }

    #[test]
    fn packet_in_roundtrip(p in packet_in(), xid in any::<u32>()) {
        let m = Message::PacketIn(p);
        let bytes = m.to_vec(xid).expect("encode");
        prop_assert_eq!(Message::decode(&bytes).expect("decode"), (xid, m));
    }

    #[test]
    fn packet_in2_roundtrip(p in packet_in2(), xid in any::<u32>()) {
        roundtrip(&Message::PacketIn2(p.clone()), xid);
        roundtrip(&Message::Resume(p), xid);
    }

    #[test]
    fn multipart_roundtrip(m in multipart(), xid in any::<u32>()) {
        roundtrip(&m, xid);
    }

    #[test]
    fn any_message_roundtrip_through_framing(ms in proptest::collection::vec(message(), 1..6), chunk in 1usize..200) {
        // Encode a batch into one buffer, feed it in arbitrary chunks, get every message back.
        let mut stream = Vec::new();
        for (i, m) in ms.iter().enumerate() {
            m.encode(i as u32 + 1, &mut stream).expect("encode");
        }
        let mut fr = openflow::FrameReader::new();
        let mut got = Vec::new();
        for c in stream.chunks(chunk) {
            fr.extend(c);
            while let Some(f) = fr.next_frame().expect("frame") {
                got.push(Message::decode(f).expect("decode"));
            }
        }
        prop_assert_eq!(fr.pending(), 0);
        let want: Vec<(u32, Message)> = ms.into_iter().enumerate().map(|(i, m)| (i as u32 + 1, m)).collect();
        prop_assert_eq!(got, want);
    }
}
