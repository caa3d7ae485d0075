//! The Adj-RIB-Out: diffs, batching, families, End-of-RIB.

use std::net::IpAddr;

use super::*;
use crate::wire::{Codec, decode};

const V4: &[(u16, u8)] = &[(AFI_IPV4, SAFI_UNICAST)];
const BOTH: &[(u16, u8)] = &[(AFI_IPV4, SAFI_UNICAST), (AFI_IPV6, SAFI_UNICAST)];
const EBGP: Speaker = Speaker {
    local_as: 64512,
    internal: false,
};
const FOUR: Codec = Codec {
    four_octet_as: true,
};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn p(s: &str) -> Prefix {
    s.parse().unwrap()
}

/// Plays the UPDATEs as a peer would (through the codec) and returns its table.
fn apply(table: &mut BTreeMap<Prefix, IpAddr>, updates: &[Update]) {
    for u in updates {
        let b = Message::Update(u.clone()).encode(FOUR);
        assert!(b.len() <= MAX_LEN, "{} bytes", b.len());
        let Message::Update(u) = decode(&b, FOUR).unwrap().unwrap().0 else {
            panic!()
        };
        for w in &u.withdrawn {
            table.remove(w);
        }
        let nh4 = u.attrs.iter().find_map(|a| match a {
            Attr::NextHop(n) => Some(IpAddr::V4(*n)),
            _ => None,
        });
        for n in &u.nlri {
            table.insert(*n, nh4.unwrap());
        }
        for a in &u.attrs {
            match a {
                Attr::MpReach {
                    next_hops, nlri, ..
                } => {
                    for n in nlri {
                        table.insert(*n, next_hops[0]);
                    }
                }
                Attr::MpUnreach { withdrawn, .. } => {
                    for w in withdrawn {
                        table.remove(w);
                    }
                }
                _ => {}
            }
        }
    }
}

#[test]
fn a_thousand_host_routes_take_two_updates() {
    let mut rib = AdjRibOut::new();
    rib.reset();
    for i in 0..1000u32 {
        rib.insert(
            Prefix::host(IpAddr::V4((0xc6120000 + i).into())),
            ip("192.0.2.11"),
        );
    }
    let out = rib.flush(EBGP, FOUR, V4);
    // 1,000 routes of 5 bytes in two UPDATEs, then the End-of-RIB.
    assert_eq!(out.len(), 3, "{}", out.len());
    assert_eq!(out[2], Update::end_of_rib(AFI_IPV4, SAFI_UNICAST));
    let mut peer = BTreeMap::new();
    apply(&mut peer, &out);
    assert_eq!(&peer, rib.desired());
    assert!(!rib.pending());
    assert!(rib.flush(EBGP, FOUR, V4).is_empty());
    // Withdrawing them all: one UPDATE.
    for i in 0..1000u32 {
        rib.remove(Prefix::host(IpAddr::V4((0xc6120000 + i).into())));
    }
    let out = rib.flush(EBGP, FOUR, V4);
    assert_eq!(out.len(), 2);
    apply(&mut peer, &out);
    assert!(peer.is_empty());
}

#[test]
fn changes_between_flushes_collapse() {
    let mut rib = AdjRibOut::new();
    rib.insert(p("10.0.0.0/24"), ip("172.24.4.10"));
    rib.insert(p("10.0.1.0/24"), ip("172.24.4.10"));
    let out = rib.flush(EBGP, FOUR, V4);
    assert_eq!(out.len(), 1, "both prefixes share a next hop: one UPDATE");
    assert_eq!(out[0].nlri.len(), 2);
    // Added and removed before a flush: nothing to say.
    rib.insert(p("10.0.2.0/24"), ip("172.24.4.10"));
    rib.remove(p("10.0.2.0/24"));
    assert!(rib.flush(EBGP, FOUR, V4).is_empty());
    // A next hop change is a new announcement (implicit withdraw), not a withdrawal.
    rib.insert(p("10.0.1.0/24"), ip("172.24.4.11"));
    let out = rib.flush(EBGP, FOUR, V4);
    assert_eq!(out.len(), 1);
    assert!(out[0].withdrawn.is_empty());
    assert_eq!(
        out[0].attr(crate::wire::update::NEXT_HOP),
        Some(&Attr::NextHop("172.24.4.11".parse().unwrap()))
    );
}

#[test]
fn replace_sends_only_the_difference_and_reset_sends_everything() {
    let mut rib = AdjRibOut::new();
    let table: BTreeMap<Prefix, IpAddr> = [
        (p("10.0.0.0/24"), ip("172.24.4.10")),
        (p("172.24.4.100/32"), ip("192.0.2.1")),
    ]
    .into();
    rib.replace(table.clone());
    let mut peer = BTreeMap::new();
    apply(&mut peer, &rib.flush(EBGP, FOUR, V4));
    assert_eq!(peer, table);
    let mut t2 = table.clone();
    t2.remove(&p("172.24.4.100/32"));
    t2.insert(p("172.24.4.101/32"), ip("192.0.2.2"));
    rib.replace(t2.clone());
    let out = rib.flush(EBGP, FOUR, V4);
    assert_eq!(out.len(), 2, "one withdrawal, one announcement");
    apply(&mut peer, &out);
    assert_eq!(peer, t2);
    rib.reset();
    let mut fresh = BTreeMap::new();
    apply(&mut fresh, &rib.flush(EBGP, FOUR, V4));
    assert_eq!(fresh, t2);
}

#[test]
fn ipv6_goes_only_to_a_session_that_speaks_it() {
    let mut rib = AdjRibOut::new();
    rib.insert(p("2001:db8:1::/64"), ip("2001:db8::10"));
    rib.insert(p("10.0.0.0/24"), ip("172.24.4.10"));
    // An IPv6 prefix with an IPv4 next hop is never sent.
    rib.insert(p("2001:db8:2::/64"), ip("172.24.4.10"));
    let out = rib.flush(EBGP, FOUR, V4);
    assert_eq!(out.len(), 1);
    rib.reset();
    let out = rib.flush(EBGP, FOUR, BOTH);
    let mut peer = BTreeMap::new();
    apply(&mut peer, &out);
    assert_eq!(peer.len(), 2);
    assert_eq!(peer[&p("2001:db8:1::/64")], ip("2001:db8::10"));
    // Two End-of-RIB markers.
    assert!(out.contains(&Update::end_of_rib(AFI_IPV6, SAFI_UNICAST)));
    rib.remove(p("2001:db8:1::/64"));
    let out = rib.flush(EBGP, FOUR, BOTH);
    apply(&mut peer, &out);
    assert_eq!(peer.len(), 1);
}

#[test]
fn path_attributes_follow_the_session() {
    let big = Speaker {
        local_as: 4_200_000_000,
        internal: false,
    };
    let two = Codec::default();
    let a = path_attrs(big, two);
    assert_eq!(
        a.len(),
        3,
        "AS_TRANS in AS_PATH, the real AS in AS4_PATH: {a:?}"
    );
    assert!(matches!(&a[2], Attr::As4Path(s) if s[0].asns == [4_200_000_000]));
    let a = path_attrs(big, FOUR);
    assert!(matches!(&a[1], Attr::AsPath(s) if s[0].asns == [4_200_000_000]));
    let ibgp = path_attrs(
        Speaker {
            local_as: 64512,
            internal: true,
        },
        FOUR,
    );
    assert_eq!(ibgp[1], Attr::AsPath(vec![]));
    assert_eq!(ibgp[2], Attr::LocalPref(100));
}

#[test]
fn ten_thousand_ipv6_host_routes_fit_the_message_limit() {
    let mut rib = AdjRibOut::new();
    for i in 0..10_000u128 {
        rib.insert(
            Prefix::host(IpAddr::V6((0x2001_0db8_u128 << 96 | i).into())),
            ip("2001:db8::1"),
        );
    }
    let out = rib.flush(EBGP, FOUR, BOTH);
    let mut peer = BTreeMap::new();
    apply(&mut peer, &out);
    assert_eq!(peer.len(), 10_000);
    // 17 bytes a route: about 240 a message.
    assert!(out.len() <= 43, "{}", out.len());
}
