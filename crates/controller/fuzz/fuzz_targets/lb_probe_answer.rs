//! Any frame a member sends its balancer's VIP, as the health checker reads it
//! (`apps::lb::health::probe::answer`), for an IPv4 VIP and an IPv6 one: never a panic;
//! an answer names a probe's source port (or the PING identifier's sequence), and an HTTP
//! status read is three digits.
#![no_main]

use controller::apps::lb::health::probe::{Answer, PORT_BASE, answer, expected, status_code};
use libfuzzer_sys::fuzz_target;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

fuzz_target!(|data: &[u8]| {
    let v4: (IpAddr, IpAddr) = (
        Ipv4Addr::new(10, 0, 0, 100).into(),
        Ipv4Addr::new(10, 0, 0, 5).into(),
    );
    let v6: (IpAddr, IpAddr) = (
        Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 0x100).into(),
        Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 5).into(),
    );
    for (vip, member) in [v4, v6] {
        match answer(data, vip, member, 80) {
            Some(
                Answer::SynAck { port, .. }
                | Answer::Reset { port }
                | Answer::Data { port, .. }
                | Answer::PortUnreachable { port }
                | Answer::Datagram { port },
            ) => assert_eq!(port & PORT_BASE, PORT_BASE),
            Some(Answer::Echo { .. }) | None => {}
        }
    }
    if let Some(c) = status_code(data) {
        assert!(c <= 999);
    }
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = expected(s, 200);
    }
});
