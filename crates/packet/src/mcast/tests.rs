//! Tests of the IGMP and MLD parser and query builders: byte-level cases and round trips.

use super::*;

const MAC: [u8; 6] = [0xfa, 0x16, 0x3e, 0, 0, 2];

fn v4_frame(igmp: &mut [u8]) -> Vec<u8> {
    let c = !checksum::data(igmp);
    igmp[2..4].copy_from_slice(&c.to_be_bytes());
    let total = u16::try_from(24 + igmp.len()).unwrap();
    let mut ip = vec![0x46, 0xc0];
    ip.extend_from_slice(&total.to_be_bytes());
    ip.extend_from_slice(&[0, 0, 0x40, 0, 1, 2, 0, 0, 10, 0, 0, 2, 224, 0, 0, 22]);
    ip.extend_from_slice(&[0x94, 4, 0, 0]);
    ip.extend_from_slice(igmp);
    ether(
        EthernetAddress([1, 0, 0x5e, 0, 0, 0x16]),
        EthernetAddress(MAC),
        0x0800,
        &ip,
    )
}

fn g4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

#[test]
fn igmpv3_report_joins_and_leaves() {
    // Two records: TO_EX({}) 239.1.1.1 (join), TO_IN({}) 239.1.1.2 (leave), plus one
    // IS_IN with a source (join, SSM) and a BLOCK (nothing).
    let mut m = vec![0x22, 0, 0, 0, 0, 0, 0, 4];
    m.extend_from_slice(&[4, 0, 0, 0, 239, 1, 1, 1]);
    m.extend_from_slice(&[3, 0, 0, 0, 239, 1, 1, 2]);
    m.extend_from_slice(&[1, 1, 0, 1, 232, 1, 1, 3, 10, 0, 0, 9, 0, 0, 0, 0]);
    m.extend_from_slice(&[6, 0, 0, 1, 239, 1, 1, 4, 10, 0, 0, 9]);
    let f = v4_frame(&mut m);
    let got = parse_frame(&f).unwrap();
    assert_eq!(got.src_mac, EthernetAddress(MAC));
    assert_eq!(got.src_ip, g4(10, 0, 0, 2));
    assert_eq!(
        got.message,
        Message::Report {
            version: 3,
            joins: vec![g4(239, 1, 1, 1), g4(232, 1, 1, 3)],
            leaves: vec![g4(239, 1, 1, 2)],
        }
    );
    // Cut anywhere inside the records: an error, never a panic or a partial report.
    for cut in 1..m.len() - 8 {
        let mut short = m[..m.len() - cut].to_vec();
        assert!(parse_frame(&v4_frame(&mut short)).is_err(), "cut {cut}");
    }
}

#[test]
fn igmpv2_and_v1_messages() {
    for (t, version, join) in [(0x16, 2, true), (0x12, 1, true), (0x17, 2, false)] {
        let mut m = vec![t, 0, 0, 0, 239, 1, 1, 1];
        let msg = parse_frame(&v4_frame(&mut m)).unwrap().message;
        let g = vec![g4(239, 1, 1, 1)];
        let want = if join {
            Message::Report {
                version,
                joins: g,
                leaves: vec![],
            }
        } else {
            Message::Report {
                version,
                joins: vec![],
                leaves: g,
            }
        };
        assert_eq!(msg, want);
    }
    let mut q = vec![0x11, 100, 0, 0, 0, 0, 0, 0];
    assert_eq!(
        parse_frame(&v4_frame(&mut q)).unwrap().message,
        Message::Query {
            version: 2,
            group: None
        }
    );
}

#[test]
fn bad_checksum_and_other_protocols_are_refused() {
    let mut m = vec![0x16, 0, 0, 0, 239, 1, 1, 1];
    let mut f = v4_frame(&mut m);
    let last = f.len() - 1;
    f[last] ^= 1;
    assert_eq!(parse_frame(&f), Err(Error::Checksum));
    let mut udp = v4_frame(&mut m);
    udp[14 + 9] = 17;
    assert_eq!(parse_frame(&udp), Err(Error::Unsupported));
}

#[test]
fn queries_we_send_parse_back() {
    let q = igmp_general_query(EthernetAddress(MAC), Ipv4Addr::new(10, 0, 0, 1), 100);
    let m = parse_frame(&q).unwrap();
    assert_eq!(
        m.message,
        Message::Query {
            version: 3,
            group: None
        }
    );
    assert_eq!(&q[..6], &[1, 0, 0x5e, 0, 0, 1]);
    let ll = crate::ipv6::link_local(MAC);
    let q6 = mld_general_query(EthernetAddress(MAC), ll, 10_000);
    let m6 = parse_frame(&q6).unwrap();
    assert_eq!(m6.src_ip, IpAddr::V6(ll));
    assert_eq!(
        m6.message,
        Message::Query {
            version: 2,
            group: None
        }
    );
    assert_eq!(&q6[..6], &[0x33, 0x33, 0, 0, 0, 1]);
}

fn v6_frame(src: Ipv6Addr, dst: Ipv6Addr, mld: &mut [u8]) -> Vec<u8> {
    let c = checksum::with_pseudo_header(&IpAddr::V6(src), &IpAddr::V6(dst), 58, mld);
    mld[2..4].copy_from_slice(&c.to_be_bytes());
    let mut ip = vec![0x60, 0, 0, 0];
    ip.extend_from_slice(&u16::try_from(8 + mld.len()).unwrap().to_be_bytes());
    ip.extend_from_slice(&[0, 1]);
    ip.extend_from_slice(&src.octets());
    ip.extend_from_slice(&dst.octets());
    ip.extend_from_slice(&[58, 0, 5, 2, 0, 0, 1, 0]);
    ip.extend_from_slice(mld);
    ether(
        EthernetAddress([0x33, 0x33, 0, 0, 0, 0x16]),
        EthernetAddress(MAC),
        0x86dd,
        &ip,
    )
}

#[test]
fn mldv2_and_v1_reports() {
    let src = crate::ipv6::link_local(MAC);
    let dst: Ipv6Addr = "ff02::16".parse().unwrap();
    let g: Ipv6Addr = "ff15::1234".parse().unwrap();
    let g2: Ipv6Addr = "ff15::99".parse().unwrap();
    let mut m = vec![143, 0, 0, 0, 0, 0, 0, 2];
    m.extend_from_slice(&[4, 0, 0, 0]);
    m.extend_from_slice(&g.octets());
    m.extend_from_slice(&[3, 0, 0, 0]);
    m.extend_from_slice(&g2.octets());
    let got = parse_frame(&v6_frame(src, dst, &mut m)).unwrap();
    assert_eq!(
        got.message,
        Message::Report {
            version: 2,
            joins: vec![IpAddr::V6(g)],
            leaves: vec![IpAddr::V6(g2)],
        }
    );
    let mut done = vec![132, 0, 0, 0, 0, 0, 0, 0];
    done.extend_from_slice(&g.octets());
    assert_eq!(
        parse_frame(&v6_frame(src, "ff02::2".parse().unwrap(), &mut done))
            .unwrap()
            .message,
        Message::Report {
            version: 1,
            joins: vec![],
            leaves: vec![IpAddr::V6(g)]
        }
    );
    // The pseudo-header counts: the same message to another address fails its checksum.
    let mut f = v6_frame(src, dst, &mut m);
    f[14 + 24 + 15] ^= 1;
    assert_eq!(parse_frame(&f), Err(Error::Checksum));
}

#[test]
fn never_panics_on_prefixes_of_real_messages() {
    let q = igmp_general_query(EthernetAddress(MAC), Ipv4Addr::new(10, 0, 0, 1), 100);
    let q6 = mld_general_query(EthernetAddress(MAC), crate::ipv6::link_local(MAC), 1000);
    for f in [q, q6] {
        for n in 0..f.len() {
            assert!(parse_frame(&f[..n]).is_err());
        }
    }
}
