//! DHCPv6 codec: a real client's Solicit, round trips of every typed option, malformed
//! options refused, domain names, the Client FQDN option.

use packet::dhcpv6::*;
use packet::{Error, EthernetAddress};
use std::net::Ipv6Addr;

/// A Solicit shaped like ISC dhclient 4.4's (client id DUID-LLT, elapsed time, one
/// IA_NA with no addresses, ORO for DNS and domain list).
const SOLICIT: &[u8] = &[
    0x01, 0xab, 0xcd, 0xef, // Solicit, xid
    0x00, 0x01, 0x00, 0x0e, 0x00, 0x01, 0x00, 0x01, 0x2c, 0x8e, 0x3b, 0x1a, 0xfa, 0x16, 0x3e, 0x00,
    0x00, 0x05, // client id: DUID-LLT
    0x00, 0x06, 0x00, 0x04, 0x00, 0x17, 0x00, 0x18, // ORO: 23, 24
    0x00, 0x08, 0x00, 0x02, 0x00, 0x00, // elapsed time 0
    0x00, 0x03, 0x00, 0x0c, 0x3e, 0x00, 0x00, 0x05, 0, 0, 0, 0, 0, 0, 0, 0, // IA_NA
];

#[test]
fn parses_a_dhclient_solicit() {
    let r = Dhcpv6Repr::parse(&Packet::new_checked(SOLICIT).unwrap()).unwrap();
    assert_eq!(r.message_type, Some(MessageType::Solicit));
    assert_eq!(r.transaction_id, 0xabcdef);
    assert_eq!(r.client_id.as_ref().unwrap().len(), 14);
    assert_eq!(r.oro, [23, 24]);
    assert_eq!(r.elapsed_time, Some(0));
    assert_eq!(r.ia_na.len(), 1);
    assert_eq!(r.ia_na[0].iaid, 0x3e00_0005);
    assert!(r.ia_na[0].addresses.is_empty());
    assert!(!r.rapid_commit);
    let b = r.build();
    assert_eq!(
        b.len(),
        SOLICIT.len(),
        "the same options, in the crate's order"
    );
    assert_eq!(
        Dhcpv6Repr::parse(&Packet::new_checked(&b[..]).unwrap()).unwrap(),
        r
    );
}

#[test]
fn a_reply_round_trips_with_every_typed_option() {
    let mut r = Dhcpv6Repr::new(MessageType::Reply, 0x123456);
    r.client_id = Some(vec![0, 3, 0, 1, 1, 2, 3, 4, 5, 6]);
    r.server_id = Some(duid_ll(EthernetAddress([2, 0, 0, 0, 0, 1])));
    r.ia_na = vec![IaNa {
        iaid: 7,
        t1: 100,
        t2: 160,
        addresses: vec![IaAddress {
            addr: "2001:db8::5".parse().unwrap(),
            preferred: 200,
            valid: 400,
            status: Some(StatusCode::new(status::SUCCESS, "ok")),
        }],
        status: None,
    }];
    r.rapid_commit = true;
    r.preference = Some(255);
    r.status = Some(StatusCode::new(status::SUCCESS, ""));
    r.dns_servers = vec!["2001:db8::53".parse().unwrap()];
    r.domain_list = vec!["example.org".into(), "openstacklocal".into()];
    r.client_fqdn = Some(ClientFqdn {
        flags: fqdn_flag::S,
        name: "vm1.openstacklocal.".into(),
    });
    r.other_options = vec![(
        56,
        vec![
            0, 1, 0, 16, 0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x7b,
        ],
    )];
    let b = r.build();
    assert_eq!(b.len(), r.buffer_len());
    assert_eq!(
        Dhcpv6Repr::parse(&Packet::new_checked(&b[..]).unwrap()).unwrap(),
        r
    );
    let frame = reply_frame(
        &r,
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
    let p = parse_frame(&frame).unwrap();
    assert_eq!((p.src_port, p.dst_port), (SERVER_PORT, CLIENT_PORT));
    assert_eq!(p.ipv6.dst_addr, "fe80::2".parse::<Ipv6Addr>().unwrap());
    assert_eq!(p.dhcp, r);
}

#[test]
fn malformed_options_fail_the_whole_message() {
    let with = |opt: &[u8]| {
        let mut m = vec![3, 0, 0, 1];
        m.extend_from_slice(opt);
        Dhcpv6Repr::parse(&Packet::new_checked(&m[..]).unwrap())
    };
    for bad in [
        &[0, 1, 0, 2, 0, 3][..],   // DUID too short
        &[0, 8, 0, 1, 0],          // elapsed time of 1 byte
        &[0, 6, 0, 3, 0, 23, 0],   // odd ORO
        &[0, 3, 0, 4, 0, 0, 0, 1], // IA_NA too short
        &[0, 3, 0, 16, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 0, 1], // IAADDR cut
        &[0, 13, 0, 3, 0, 0, 0xff], // status not UTF-8
        &[0, 23, 0, 3, 1, 2, 3],   // DNS not 16-byte aligned
        &[0, 24, 0, 4, 0xc0, 0x0c, 0, 0], // compression pointer
        &[0, 24, 0, 4, 2, b'a', b'.', 0], // a dot in a label
        &[0, 24, 0, 3, 5, b'a', b'b'], // label past the end
        &[0, 14, 0, 1, 0],         // rapid commit with data
        &[0, 39, 0, 0],            // FQDN without flags
        &[0, 39, 0, 2, 1, 0],      // FQDN of the root alone
        &[0, 39, 0, 5, 0, 1, b'a', 0, 7], // FQDN with bytes after the root
        &[0, 39, 0, 3, 0, 2, b'a'], // FQDN label past the end
        &[0, 1, 0, 9],             // past the end
        &[0, 1, 0],                // half a header
    ] {
        assert!(with(bad).is_err(), "{bad:?}");
    }
    let twice = [0, 1, 0, 3, 0, 3, 1, 0, 1, 0, 3, 0, 3, 2];
    assert_eq!(with(&twice), Err(Error::Malformed), "two client ids");
    assert!(
        with(&[0, 99, 0, 2, 1, 2]).is_ok(),
        "unknown options are kept"
    );
}

#[test]
fn domains_encode_plain_labels_only() {
    assert_eq!(
        encode_domain("a.bc."),
        Some(vec![1, b'a', 2, b'b', b'c', 0])
    );
    for bad in ["", ".", "a..b", "a b", &"x".repeat(64), "é.org"] {
        assert_eq!(encode_domain(bad), None, "{bad}");
    }
    assert_eq!(
        parse_domains(&[1, b'a', 2, b'b', b'c', 0, 1, b'd', 0]).unwrap(),
        ["a.bc", "d"]
    );
    let mut r = Dhcpv6Repr::new(MessageType::Reply, 1);
    r.domain_list = vec!["bad name".into()];
    assert_eq!(r.build().len(), 4, "an unencodable name is left out");
}

/// RFC 4704 4.2: a fully qualified name ends with the root label, a partial one does not,
/// and an empty one asks the server for a name.
#[test]
fn client_fqdn_names_full_partial_and_empty() {
    let full = ClientFqdn::parse(&[1, 2, b'v', b'm', 3, b'o', b'r', b'g', 0]).unwrap();
    assert_eq!((full.flags, full.name.as_str()), (fqdn_flag::S, "vm.org."));
    let partial = ClientFqdn::parse(&[0, 2, b'v', b'm']).unwrap();
    assert_eq!(partial.name, "vm");
    assert_eq!(partial.bytes().unwrap(), [0, 2, b'v', b'm']);
    let empty = ClientFqdn::parse(&[fqdn_flag::N]).unwrap();
    assert_eq!((empty.flags, empty.name.as_str()), (fqdn_flag::N, ""));
    assert_eq!(empty.bytes().unwrap(), [fqdn_flag::N]);
    // Must-be-zero bits are dropped, so what is kept round-trips.
    assert_eq!(ClientFqdn::parse(&[0xf9]).unwrap().flags, fqdn_flag::S);
    // A partial name must fit with its root label: 255 bytes of labels do not.
    let labels = |last: u8| {
        let mut v = vec![0];
        for len in [63, 63, 63, last] {
            v.push(len);
            v.extend(std::iter::repeat_n(b'x', usize::from(len)));
        }
        v
    };
    assert!(ClientFqdn::parse(&labels(62)).is_err(), "255 bytes + root");
    assert!(ClientFqdn::parse(&labels(61)).is_ok(), "254 bytes + root");
    let bad = ClientFqdn {
        flags: 0,
        name: "bad name".into(),
    };
    assert_eq!(bad.bytes(), None);
    let mut r = Dhcpv6Repr::new(MessageType::Reply, 1);
    r.client_fqdn = Some(bad);
    assert_eq!(r.build().len(), 4, "an unencodable name is left out");
}

#[test]
fn message_types_round_trip() {
    for v in 0..=255u8 {
        assert_eq!(u8::from(MessageType::from(v)), v);
    }
    assert!(MessageType::Solicit.from_client());
    assert!(!MessageType::Advertise.from_client());
}

mod server {
    use packet::EthernetAddress;
    use packet::dhcpv6::{Dhcpv6Repr, IaAddress, IaNa, MessageType, duid_ll, status};
    use packet::dhcpv6_server::{Binding, Lifetimes, Options, acceptable, answer};
    use std::net::Ipv6Addr;

    const L: Lifetimes = Lifetimes {
        preferred: 100,
        valid: 200,
        t1: 50,
        t2: 80,
    };

    fn a(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    fn msg(t: MessageType, listed: &[&str], server: Option<&[u8]>) -> Dhcpv6Repr {
        let mut d = Dhcpv6Repr::new(t, 42);
        d.client_id = Some(vec![0, 3, 0, 1, 1, 2, 3, 4, 5, 6]);
        d.server_id = server.map(<[u8]>::to_vec);
        d.ia_na = vec![IaNa {
            iaid: 9,
            t1: 0,
            t2: 0,
            addresses: listed
                .iter()
                .map(|s| IaAddress {
                    addr: a(s),
                    preferred: 0,
                    valid: 0,
                    status: None,
                })
                .collect(),
            status: None,
        }];
        d
    }

    #[test]
    fn who_may_be_answered() {
        let us = duid_ll(EthernetAddress([2, 0, 0, 0, 0, 1]));
        let other = duid_ll(EthernetAddress([2, 0, 0, 0, 0, 9]));
        use MessageType::*;
        for (t, none, ours, theirs) in [
            (Solicit, true, false, false),
            (Confirm, true, false, false),
            (Rebind, true, false, false),
            (Request, false, true, false),
            (Renew, false, true, false),
            (Release, false, true, false),
            (Decline, false, true, false),
            (Advertise, false, false, false),
            (Reply, false, false, false),
        ] {
            assert_eq!(acceptable(&msg(t, &[], None), &us), none, "{t:?} without");
            assert_eq!(acceptable(&msg(t, &[], Some(&us)), &us), ours, "{t:?} ours");
            assert_eq!(
                acceptable(&msg(t, &[], Some(&other)), &us),
                theirs,
                "{t:?} theirs"
            );
        }
        let mut info = Dhcpv6Repr::new(InformationRequest, 1);
        assert!(acceptable(&info, &us), "no client id needed");
        info.server_id = Some(other);
        assert!(!acceptable(&info, &us));
        assert!(
            !acceptable(&msg(InformationRequest, &[], None), &us),
            "with an IA"
        );
        let mut anon = msg(Solicit, &[], None);
        anon.client_id = None;
        assert!(!acceptable(&anon, &us));
    }

    #[test]
    fn renew_gives_the_new_address_and_expires_the_old_and_confirm_checks_the_link() {
        let us = duid_ll(EthernetAddress([2, 0, 0, 0, 0, 1]));
        let options = Options {
            dns_servers: vec![a("2001:db8::53")],
            domain_list: vec!["example.org".into()],
            fqdn: None,
            // A server-only option never goes out, whatever the configuration says.
            other: vec![(2, vec![1, 2, 3]), (56, vec![0, 1, 0, 0]), (39, vec![0])],
        };
        let mine = [a("2001:db8::77")];
        let b = Binding {
            server_id: &us,
            addresses: &mine,
            links: &[(a("2001:db8::"), 64)],
            lifetimes: L,
            options: &options,
        };
        let r = answer(&b, &msg(MessageType::Renew, &["2001:db8::5"], Some(&us))).unwrap();
        assert_eq!(r.message_type, Some(MessageType::Reply));
        assert_eq!(r.transaction_id, 42);
        let ia = &r.ia_na[0];
        assert_eq!((ia.iaid, ia.t1, ia.t2), (9, 50, 80));
        let got: Vec<(Ipv6Addr, u32, u32)> = ia
            .addresses
            .iter()
            .map(|x| (x.addr, x.preferred, x.valid))
            .collect();
        assert_eq!(got, [(mine[0], 100, 200), (a("2001:db8::5"), 0, 0)]);
        assert_eq!(r.dns_servers, options.dns_servers);
        assert_eq!(r.other_options, [(56, vec![0, 1, 0, 0])]);

        let confirm = |s: &str| answer(&b, &msg(MessageType::Confirm, &[s], None)).unwrap();
        assert_eq!(
            confirm("2001:db8::1234").status.unwrap().code,
            status::SUCCESS
        );
        assert_eq!(
            confirm("2001:db9::1").status.unwrap().code,
            status::NOT_ON_LINK
        );
        assert_eq!(answer(&b, &msg(MessageType::Confirm, &[], None)), None);

        // No binding: Renew is told NoBinding, Rebind gets its addresses back with 0.
        let none = Binding {
            addresses: &[],
            ..b
        };
        let r = answer(&none, &msg(MessageType::Renew, &["2001:db8::5"], Some(&us))).unwrap();
        assert_eq!(r.ia_na[0].status.as_ref().unwrap().code, status::NO_BINDING);
        let r = answer(&none, &msg(MessageType::Rebind, &["2001:db8::5"], None)).unwrap();
        assert_eq!(r.ia_na[0].addresses[0].valid, 0);
        let r = answer(&none, &msg(MessageType::Solicit, &[], None)).unwrap();
        assert_eq!(r.message_type, Some(MessageType::Advertise));
        assert!(r.ia_na.is_empty());
        assert_eq!(r.status.unwrap().code, status::NO_ADDRS_AVAIL);
    }

    /// RFC 4704 6.1: the server names the client (dnsmasq sends the name unasked, as
    /// here), says it updates the record (S), and that it overrode a client that wanted to
    /// (O); the client's own name never comes back.
    #[test]
    fn the_client_is_named_by_the_server() {
        use packet::dhcpv6::{ClientFqdn, fqdn_flag};
        let us = duid_ll(EthernetAddress([2, 0, 0, 0, 0, 1]));
        let options = Options {
            fqdn: Some("vm1.openstacklocal.".into()),
            ..Options::default()
        };
        let mine = [a("2001:db8::77")];
        let b = Binding {
            server_id: &us,
            addresses: &mine,
            links: &[(a("2001:db8::"), 64)],
            lifetimes: L,
            options: &options,
        };
        let named = |req: &Dhcpv6Repr| answer(&b, req).unwrap().client_fqdn.unwrap();
        let plain = msg(MessageType::Solicit, &[], None);
        let got = named(&plain);
        assert_eq!(
            (got.flags, got.name.as_str()),
            (fqdn_flag::S, "vm1.openstacklocal.")
        );
        let mut selfish = msg(MessageType::Request, &[], Some(&us));
        selfish.client_fqdn = Some(ClientFqdn {
            flags: fqdn_flag::N,
            name: "evil.example.".into(),
        });
        let got = named(&selfish);
        assert_eq!(
            (got.flags, got.name.as_str()),
            (fqdn_flag::S | fqdn_flag::O, "vm1.openstacklocal.")
        );
        let mut info = Dhcpv6Repr::new(MessageType::InformationRequest, 3);
        info.client_fqdn = Some(ClientFqdn {
            flags: fqdn_flag::S,
            name: String::new(),
        });
        assert_eq!(named(&info).flags, fqdn_flag::S);
        let release = answer(&b, &msg(MessageType::Release, &[], Some(&us))).unwrap();
        assert_eq!(release.client_fqdn, None, "only configuring replies name");
        let unnamed = Binding {
            options: &Options::default(),
            ..b
        };
        assert_eq!(answer(&unnamed, &plain).unwrap().client_fqdn, None);
    }
}
