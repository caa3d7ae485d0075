//! Byte-array tests of the codec: known encodings, round trips, and the NOTIFICATION each
//! malformation gets.

use std::net::{IpAddr, Ipv4Addr};

use proptest::prelude::*;

use super::update::{AS_SEQUENCE, AS4_PATH, MED, NEXT_HOP, ORIGIN};
use super::*;
use crate::prefix::Prefix;

const FOUR: Codec = Codec {
    four_octet_as: true,
};
const TWO: Codec = Codec {
    four_octet_as: false,
};

fn msg(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![0xff; 16];
    m.extend_from_slice(&((body.len() + 19) as u16).to_be_bytes());
    m.push(kind);
    m.extend_from_slice(body);
    m
}

fn p(s: &str) -> Prefix {
    s.parse().unwrap()
}

fn one(bytes: &[u8], codec: Codec) -> Result<Message, Notification> {
    decode(bytes, codec).map(|m| {
        let (m, used) = m.expect("complete");
        assert_eq!(used, bytes.len());
        m
    })
}

#[test]
fn keepalive_is_19_bytes() {
    let k = Message::Keepalive.encode(FOUR);
    assert_eq!(k, msg(4, &[]));
    assert_eq!(one(&k, FOUR).unwrap(), Message::Keepalive);
}

#[test]
fn open_with_capabilities_has_the_rfc_layout() {
    let o = Open::new(
        4_200_000_000,
        90,
        Ipv4Addr::new(192, 0, 2, 1),
        &[(AFI_IPV4, SAFI_UNICAST), (AFI_IPV6, SAFI_UNICAST)],
    );
    let b = Message::Open(o.clone()).encode(FOUR);
    let body = &b[19..];
    assert_eq!(body[0], 4);
    assert_eq!(&body[1..3], &AS_TRANS.to_be_bytes());
    assert_eq!(&body[3..5], &90u16.to_be_bytes());
    assert_eq!(&body[5..9], &[192, 0, 2, 1]);
    // One parameter of capabilities: MP v4, MP v6, route refresh, 4-octet AS.
    let caps = [
        1, 4, 0, 1, 0, 1, 1, 4, 0, 2, 0, 1, 2, 0, 65, 4, 0xfa, 0x56, 0xea, 0x00,
    ];
    assert_eq!(body[9] as usize, caps.len() + 2);
    assert_eq!(&body[10..12], &[2, caps.len() as u8]);
    assert_eq!(&body[12..], &caps);
    let back = one(&b, TWO).unwrap();
    let Message::Open(back) = back else { panic!() };
    assert_eq!(back, o);
    assert_eq!(back.asn(), 4_200_000_000);
    assert!(back.four_octet_as());
    assert_eq!(back.families().len(), 2);
}

#[test]
fn graceful_restart_has_the_rfc_layout() {
    let o = Open::new(
        64512,
        90,
        Ipv4Addr::new(192, 0, 2, 1),
        &[(AFI_IPV4, SAFI_UNICAST), (AFI_IPV6, SAFI_UNICAST)],
    )
    .with_graceful_restart(120);
    let b = Message::Open(o.clone()).encode(FOUR);
    // Code 64, 2 + 4 a family: R bit clear and 120 s, then each family with its F bit.
    let gr = [64, 10, 0, 120, 0, 1, 1, 0x80, 0, 2, 1, 0x80];
    assert!(b.windows(gr.len()).any(|w| w == gr), "{b:?}");
    let Message::Open(back) = one(&b, FOUR).unwrap() else {
        panic!()
    };
    assert_eq!(back, o);
    assert_eq!(back.graceful_restart(), Some(120));
    // The time has 12 bits; the Restart State bit is read back.
    let o = Open::new(1, 90, Ipv4Addr::new(192, 0, 2, 1), &[]).with_graceful_restart(9999);
    assert_eq!(o.graceful_restart(), Some(4095));
    // R set, 30 s, no family: one capability of 2 bytes in one parameter of 4.
    let body = [4, 0xfd, 0xe8, 0, 180, 10, 0, 0, 1, 6, 2, 4, 64, 2, 0x80, 30];
    let b = msg(1, &body);
    let Message::Open(o) = one(&b, TWO).unwrap() else {
        panic!()
    };
    assert_eq!(
        o.capabilities,
        [Capability::GracefulRestart {
            restart_state: true,
            restart_time: 30,
            families: vec![]
        }]
    );
}

#[test]
fn a_graceful_restart_capability_of_a_bad_length_is_a_malformed_open() {
    // Code 64 with 3 bytes: not 2 + 4n.
    let body = [4, 0xfd, 0xe8, 0, 180, 10, 0, 0, 1, 7, 2, 5, 64, 3, 0, 30, 0];
    let e = one(&msg(1, &body), TWO).unwrap_err();
    assert_eq!((e.code, e.subcode), (2, 0), "{e:?}");
}

#[test]
fn an_open_without_capabilities_speaks_ipv4() {
    let body = [4, 0xfd, 0xe8, 0, 180, 10, 0, 0, 1, 0];
    let Message::Open(o) = one(&msg(1, &body), TWO).unwrap() else {
        panic!()
    };
    assert_eq!(o.asn(), 65000);
    assert!(!o.four_octet_as());
    assert_eq!(o.families(), vec![(AFI_IPV4, SAFI_UNICAST)]);
}

#[test]
fn open_errors() {
    // Version 3: unsupported, with the version we speak.
    let e = one(&msg(1, &[3, 0, 1, 0, 90, 1, 1, 1, 1, 0]), TWO).unwrap_err();
    assert_eq!(
        (e.code, e.subcode, e.data),
        (OPEN_ERROR, UNSUPPORTED_VERSION, vec![0, 4])
    );
    // An optional parameter other than capabilities (1: authentication, deprecated).
    let e = one(&msg(1, &[4, 0, 1, 0, 90, 1, 1, 1, 1, 3, 1, 1, 0]), TWO).unwrap_err();
    assert_eq!(
        (e.code, e.subcode),
        (OPEN_ERROR, UNSUPPORTED_OPTIONAL_PARAMETER)
    );
    // Parameter length disagreeing with the message.
    let e = one(&msg(1, &[4, 0, 1, 0, 90, 1, 1, 1, 1, 9, 2, 0]), TWO).unwrap_err();
    assert_eq!(e.code, HEADER_ERROR);
    // A 4-octet AS capability of 3 bytes.
    let e = one(
        &msg(1, &[4, 0, 1, 0, 90, 1, 1, 1, 1, 7, 2, 5, 65, 3, 0, 0, 1]),
        TWO,
    )
    .unwrap_err();
    assert_eq!(e.code, OPEN_ERROR);
}

#[test]
fn header_errors() {
    let mut k = Message::Keepalive.encode(TWO);
    k[3] = 0;
    let e = decode(&k, TWO).unwrap_err();
    assert_eq!(
        (e.code, e.subcode),
        (HEADER_ERROR, CONNECTION_NOT_SYNCHRONIZED)
    );
    // A wrong marker is seen before the message is complete.
    assert!(decode(&[0xff, 0xfe], TWO).is_err());
    assert_eq!(decode(&[0xff; 10], TWO), Ok(None));
    let e = decode(&msg(9, &[]), TWO).unwrap_err();
    assert_eq!(
        (e.code, e.subcode, e.data),
        (HEADER_ERROR, BAD_MESSAGE_TYPE, vec![9])
    );
    // A KEEPALIVE with a body, a length under the header, one over 4,096.
    let e = decode(&msg(4, &[0]), TWO).unwrap_err();
    assert_eq!(
        (e.code, e.subcode, e.data),
        (HEADER_ERROR, BAD_MESSAGE_LENGTH, vec![0, 20])
    );
    let mut short = msg(4, &[]);
    short[17] = 18;
    assert_eq!(decode(&short, TWO).unwrap_err().subcode, BAD_MESSAGE_LENGTH);
    let mut long = msg(2, &[0, 0, 0, 0]);
    long[16..18].copy_from_slice(&4097u16.to_be_bytes());
    assert_eq!(decode(&long, TWO).unwrap_err().subcode, BAD_MESSAGE_LENGTH);
    // An OPEN shorter than its fixed part.
    assert_eq!(
        decode(&msg(1, &[4, 0]), TWO).unwrap_err().subcode,
        BAD_MESSAGE_LENGTH
    );
}

#[test]
fn framing_waits_for_the_whole_message_and_takes_one_at_a_time() {
    let mut two = Message::Keepalive.encode(TWO);
    two.extend(Message::Keepalive.encode(TWO));
    let (m, used) = decode(&two, TWO).unwrap().unwrap();
    assert_eq!((m, used), (Message::Keepalive, 19));
    assert_eq!(decode(&two[..30], TWO), Ok(Some((Message::Keepalive, 19))));
    assert_eq!(decode(&two[19..30], TWO), Ok(None));
}

fn announce() -> Update {
    Update {
        withdrawn: vec![p("10.9.0.0/16")],
        attrs: vec![
            Attr::Origin(0),
            Attr::AsPath(vec![AsSegment {
                kind: AS_SEQUENCE,
                asns: vec![65001, 4_200_000_000],
            }]),
            Attr::NextHop(Ipv4Addr::new(192, 0, 2, 10)),
            Attr::Med(5),
        ],
        nlri: vec![p("10.0.0.0/24"), p("203.0.113.7/32")],
    }
}

#[test]
fn update_encoding_is_exact() {
    let b = Message::Update(announce()).encode(FOUR);
    let body = &b[19..];
    #[rustfmt::skip]
    let want = [
        0, 3, 16, 10, 9,                       // withdrawn: 10.9/16
        0, 31,                                 // attributes
        0x40, 1, 1, 0,                         // ORIGIN IGP
        0x40, 2, 10, 2, 2, 0, 0, 0xfd, 0xe9, 0xfa, 0x56, 0xea, 0x00, // AS_PATH
        0x40, 3, 4, 192, 0, 2, 10,             // NEXT_HOP
        0x80, 4, 4, 0, 0, 0, 5,                // MED
        24, 10, 0, 0, 32, 203, 0, 113, 7,      // NLRI
    ];
    assert_eq!(body, &want);
    assert_eq!(one(&b, FOUR).unwrap(), Message::Update(announce()));
    // Two-octet AS numbers: AS_TRANS in place of the big one.
    let b2 = Message::Update(announce()).encode(TWO);
    let Message::Update(u) = one(&b2, TWO).unwrap() else {
        panic!()
    };
    assert_eq!(
        u.attr(update::AS_PATH),
        Some(&Attr::AsPath(vec![AsSegment {
            kind: AS_SEQUENCE,
            asns: vec![65001, u32::from(AS_TRANS)]
        }]))
    );
}

#[test]
fn ipv6_routes_travel_in_mp_reach_and_mp_unreach() {
    let nh: IpAddr = "2001:db8::1".parse().unwrap();
    let u = Update {
        attrs: vec![
            Attr::Origin(0),
            Attr::AsPath(vec![]),
            Attr::MpReach {
                afi: AFI_IPV6,
                safi: SAFI_UNICAST,
                next_hops: vec![nh],
                nlri: vec![p("2001:db8:5::/64")],
            },
            Attr::MpUnreach {
                afi: AFI_IPV6,
                safi: SAFI_UNICAST,
                withdrawn: vec![p("2001:db8:6::/64")],
            },
        ],
        ..Update::default()
    };
    let b = Message::Update(u.clone()).encode(FOUR);
    let body = &b[19..];
    // MP_REACH: optional, code 14, length 30: AFI 2, SAFI 1, 16-byte next hop, reserved,
    // then 64 and eight bytes of prefix.
    let at = body
        .windows(2)
        .position(|w| w == [0x80, 14])
        .expect("MP_REACH");
    assert_eq!(body[at + 2], 3 + 1 + 16 + 1 + 9);
    assert_eq!(&body[at + 3..at + 7], &[0, 2, 1, 16]);
    assert_eq!(one(&b, FOUR).unwrap(), Message::Update(u));
    let eor = Message::Update(Update::end_of_rib(AFI_IPV6, SAFI_UNICAST)).encode(FOUR);
    assert_eq!(&eor[19..], &[0, 0, 0, 6, 0x80, 15, 3, 0, 2, 1]);
    assert_eq!(
        Message::Update(Update::end_of_rib(AFI_IPV4, 1))
            .encode(FOUR)
            .len(),
        23
    );
}

/// The body of an UPDATE with these raw attributes and one NLRI.
fn with_attrs(attrs: &[u8], nlri: &[u8]) -> Vec<u8> {
    let mut b = vec![0, 0];
    b.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
    b.extend_from_slice(attrs);
    b.extend_from_slice(nlri);
    msg(2, &b)
}

const ORIGIN_A: [u8; 4] = [0x40, 1, 1, 0];
const PATH_A: [u8; 3] = [0x40, 2, 0];
const NH_A: [u8; 7] = [0x40, 3, 4, 10, 0, 0, 1];

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn update_err(attrs: &[u8], nlri: &[u8]) -> (u8, u8, Vec<u8>) {
    let e = one(&with_attrs(attrs, nlri), FOUR).unwrap_err();
    assert_eq!(e.code, UPDATE_ERROR, "{e}");
    (e.code, e.subcode, e.data)
}

#[test]
fn a_well_formed_update_parses() {
    let ok = with_attrs(&cat(&[&ORIGIN_A, &PATH_A, &NH_A]), &[8, 10]);
    let Message::Update(u) = one(&ok, FOUR).unwrap() else {
        panic!()
    };
    assert_eq!(u.nlri, vec![p("10.0.0.0/8")]);
    assert_eq!(
        u.attr(NEXT_HOP),
        Some(&Attr::NextHop(Ipv4Addr::new(10, 0, 0, 1)))
    );
}

#[test]
fn malformed_updates_get_their_subcodes() {
    // Missing NEXT_HOP with NLRI: the missing type in the data.
    let (_, s, d) = update_err(&cat(&[&ORIGIN_A, &PATH_A]), &[8, 10]);
    assert_eq!((s, d), (MISSING_WELL_KNOWN, vec![NEXT_HOP]));
    let (_, s, d) = update_err(&cat(&[&PATH_A, &NH_A]), &[8, 10]);
    assert_eq!((s, d), (MISSING_WELL_KNOWN, vec![ORIGIN]));
    // ORIGIN 3.
    let (_, s, d) = update_err(&cat(&[&[0x40, 1, 1, 3], &PATH_A, &NH_A]), &[]);
    assert_eq!((s, d), (INVALID_ORIGIN, vec![0x40, 1, 1, 3]));
    // ORIGIN of two bytes.
    let (_, s, _) = update_err(&cat(&[&[0x40, 1, 2, 0, 0], &PATH_A, &NH_A]), &[]);
    assert_eq!(s, ATTRIBUTE_LENGTH_ERROR);
    // ORIGIN marked optional.
    let (_, s, _) = update_err(&cat(&[&[0xc0, 1, 1, 0], &PATH_A, &NH_A]), &[]);
    assert_eq!(s, ATTRIBUTE_FLAGS_ERROR);
    // MED not marked optional.
    let (_, s, _) = update_err(&[0x40, MED, 4, 0, 0, 0, 1], &[]);
    assert_eq!(s, ATTRIBUTE_FLAGS_ERROR);
    // NEXT_HOP 0.0.0.0 and 224.0.0.1.
    let (_, s, _) = update_err(&cat(&[&ORIGIN_A, &PATH_A, &[0x40, 3, 4, 0, 0, 0, 0]]), &[]);
    assert_eq!(s, INVALID_NEXT_HOP);
    let (_, s, _) = update_err(&[0x40, 3, 4, 224, 0, 0, 1], &[]);
    assert_eq!(s, INVALID_NEXT_HOP);
    // An AS_PATH segment of type 5, and one that runs past its attribute.
    let (_, s, _) = update_err(&[0x40, 2, 6, 5, 1, 0, 0, 0, 1], &[]);
    assert_eq!(s, MALFORMED_AS_PATH);
    let (_, s, _) = update_err(&[0x40, 2, 6, 2, 2, 0, 0, 0, 1], &[]);
    assert_eq!(s, MALFORMED_AS_PATH);
    // An unknown well-known attribute (type 99, optional bit clear).
    let (_, s, d) = update_err(&[0x40, 99, 1, 7], &[]);
    assert_eq!((s, d), (UNRECOGNIZED_WELL_KNOWN, vec![0x40, 99, 1, 7]));
    // The same attribute twice.
    let (_, s, _) = update_err(&cat(&[&ORIGIN_A, &ORIGIN_A]), &[]);
    assert_eq!(s, MALFORMED_ATTRIBUTE_LIST);
    // An attribute running past the attribute list.
    let (_, s, _) = update_err(&[0x40, 1, 9, 0], &[]);
    assert_eq!(s, MALFORMED_ATTRIBUTE_LIST);
    // A /33.
    let (_, s, _) = update_err(&cat(&[&ORIGIN_A, &PATH_A, &NH_A]), &[33, 1, 2, 3, 4, 5]);
    assert_eq!(s, INVALID_NETWORK_FIELD);
    // Withdrawn length past the message.
    let e = one(&msg(2, &[0, 9, 0, 0]), FOUR).unwrap_err();
    assert_eq!(
        (e.code, e.subcode),
        (UPDATE_ERROR, MALFORMED_ATTRIBUTE_LIST)
    );
    // MP_REACH with an IPv6 next hop of 5 bytes.
    let (_, s, _) = update_err(
        &cat(&[
            &ORIGIN_A,
            &PATH_A,
            &[0x80, 14, 10, 0, 2, 1, 5, 1, 2, 3, 4, 5, 0],
        ]),
        &[],
    );
    assert_eq!(s, OPTIONAL_ATTRIBUTE_ERROR);
    // AS4_PATH that does not parse.
    let (_, s, _) = update_err(&[0xc0, AS4_PATH, 3, 2, 1, 0], &[]);
    assert_eq!(s, OPTIONAL_ATTRIBUTE_ERROR);
}

#[test]
fn unknown_optional_attributes_pass_and_extended_lengths_read() {
    let mut big = vec![0xd0, 200, 1, 44];
    big.extend(std::iter::repeat_n(7u8, 300));
    let Message::Update(u) = one(&with_attrs(&big, &[]), FOUR).unwrap() else {
        panic!()
    };
    assert_eq!(
        u.attrs,
        vec![Attr::Other {
            flags: 0xc0,
            code: 200,
            value: vec![7; 300]
        }]
    );
    // Encoded again with the extended length it needs.
    let again = Message::Update(u.clone()).encode(FOUR);
    assert_eq!(&again[23..27], &[0xd0, 200, 1, 44]);
}

#[test]
fn notifications_and_route_refresh_round_trip() {
    let n = Notification::open(BAD_PEER_AS, [0xfd, 0xe8]);
    let b = Message::Notification(n.clone()).encode(TWO);
    assert_eq!(&b[19..], &[2, 2, 0xfd, 0xe8]);
    assert_eq!(one(&b, TWO).unwrap(), Message::Notification(n.clone()));
    assert_eq!(n.to_string(), "OPEN message error (2/2 bad peer AS)");
    let rr = Message::RouteRefresh { afi: 2, safi: 1 };
    assert_eq!(one(&rr.encode(TWO), TWO).unwrap(), rr);
}

fn arb_prefix(v6: bool) -> impl Strategy<Value = Prefix> {
    if v6 {
        (any::<u128>(), 0u8..=128)
            .prop_map(|(a, l)| Prefix::new(IpAddr::V6(a.into()), l).unwrap())
            .boxed()
    } else {
        (any::<u32>(), 0u8..=32)
            .prop_map(|(a, l)| Prefix::new(IpAddr::V4(a.into()), l).unwrap())
            .boxed()
    }
}

proptest! {
    #[test]
    fn updates_round_trip(
        w in proptest::collection::vec(arb_prefix(false), 0..40),
        n in proptest::collection::vec(arb_prefix(false), 0..40),
        n6 in proptest::collection::vec(arb_prefix(true), 0..40),
        asns in proptest::collection::vec(any::<u32>(), 1..300),
        nh in any::<u32>().prop_filter("unicast", |a| {
            let a = Ipv4Addr::from(*a);
            !a.is_unspecified() && !a.is_multicast() && !a.is_broadcast()
        }),
        four in any::<bool>(),
    ) {
        let codec = Codec { four_octet_as: four };
        let asns = if four { asns } else { asns.into_iter().map(|a| a & 0xffff).collect() };
        let u = Update {
            withdrawn: w,
            attrs: vec![
                Attr::Origin(2),
                Attr::AsPath(vec![AsSegment { kind: AS_SEQUENCE, asns }]),
                Attr::NextHop(Ipv4Addr::from(nh)),
                Attr::MpReach {
                    afi: AFI_IPV6,
                    safi: SAFI_UNICAST,
                    next_hops: vec!["2001:db8::1".parse().unwrap(), "fe80::1".parse().unwrap()],
                    nlri: n6,
                },
            ],
            nlri: n,
        };
        let b = Message::Update(u.clone()).encode(codec);
        prop_assume!(b.len() <= MAX_LEN);
        let Message::Update(back) = one(&b, codec).unwrap() else { panic!() };
        // Segments over 255 AS numbers come back split.
        let flat = |u: &Update| match u.attr(update::AS_PATH) {
            Some(Attr::AsPath(s)) => s.iter().flat_map(|s| s.asns.clone()).collect::<Vec<_>>(),
            _ => vec![],
        };
        prop_assert_eq!(flat(&back), flat(&u));
        prop_assert_eq!(&back.nlri, &u.nlri);
        prop_assert_eq!(&back.withdrawn, &u.withdrawn);
        prop_assert_eq!(&back.attrs[3], &u.attrs[3]);
    }

    #[test]
    fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..200), kind in 1u8..6) {
        let m = msg(kind, &b);
        let _ = decode(&m, FOUR);
        let _ = decode(&m, TWO);
        let _ = decode(&b, TWO);
    }
}
