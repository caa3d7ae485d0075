//! Any DHCPv6 message (any type, relays included), and whole frames through the DHCPv6
//! frame parser.
#![no_main]
use libfuzzer_sys::fuzz_target;
#[path = "dhcpv6_check.rs"]
mod check;

fuzz_target!(|data: &[u8]| {
    check::message(data);
    let _ = packet::dhcpv6::parse_frame(data);
});
