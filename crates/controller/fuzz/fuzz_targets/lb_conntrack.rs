//! Any text as `ovs-appctl dpctl/dump-conntrack` output (its addresses and ports come from
//! VMs' packets): the balancers' open-connection count (`apps::lb::stats::active`) never
//! panics, and counts at most one connection per line.
#![no_main]

use controller::apps::lb::stats::{Endpoint, active};
use libfuzzer_sys::fuzz_target;
use model::lb::Protocol;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let endpoints = [
        Endpoint {
            listener: "tcp".into(),
            protocol: Protocol::Tcp,
            vip: "10.0.0.100".parse().unwrap(),
            port: 80,
        },
        Endpoint {
            listener: "udp6".into(),
            protocol: Protocol::Udp,
            vip: "2001:db8::100".parse().unwrap(),
            port: 53,
        },
    ];
    let counted: u64 = active(&text, &endpoints).values().sum();
    assert!(counted <= text.lines().count() as u64);
});
