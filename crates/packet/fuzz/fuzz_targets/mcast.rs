//! IGMP and MLD membership messages: never panic. Whole frames as they come; and the IGMP
//! and MLD readers alone with their checksums fixed first (the first 32 bytes as the MLD
//! pseudo-header addresses), so the fuzzer gets past the checksum into the records.
#![no_main]
use libfuzzer_sys::fuzz_target;
use packet::{checksum, mcast};
use std::net::{IpAddr, Ipv6Addr};

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = mcast::parse_frame(data)
        && let mcast::Message::Report { joins, leaves, .. } = m.message
    {
        // Every group comes from bytes that were there.
        assert!((joins.len() + leaves.len()) * 4 <= data.len());
    }
    if data.len() >= 8 {
        let mut igmp = data.to_vec();
        igmp[2..4].copy_from_slice(&[0, 0]);
        let c = !checksum::data(&igmp);
        igmp[2..4].copy_from_slice(&c.to_be_bytes());
        if let Ok(mcast::Message::Report { joins, leaves, .. }) = mcast::parse_igmp(&igmp) {
            assert!((joins.len() + leaves.len()) * 4 <= igmp.len());
        }
    }
    if data.len() >= 36 {
        let src = Ipv6Addr::from(<[u8; 16]>::try_from(&data[..16]).unwrap());
        let dst = Ipv6Addr::from(<[u8; 16]>::try_from(&data[16..32]).unwrap());
        let mut mld = data[32..].to_vec();
        mld[2..4].copy_from_slice(&[0, 0]);
        let c = checksum::with_pseudo_header(&IpAddr::V6(src), &IpAddr::V6(dst), 58, &mld);
        mld[2..4].copy_from_slice(&c.to_be_bytes());
        if let Ok(mcast::Message::Report { joins, leaves, .. }) = mcast::parse_mld(&src, &dst, &mld) {
            assert!((joins.len() + leaves.len()) * 16 <= mld.len());
        }
    }
});
