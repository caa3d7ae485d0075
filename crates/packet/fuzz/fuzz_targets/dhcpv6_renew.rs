//! DHCPv6 renew messages (type 5): arbitrary options after the header.
#![no_main]
use libfuzzer_sys::fuzz_target;
#[path = "dhcpv6_check.rs"]
mod check;

fuzz_target!(|data: &[u8]| check::typed(5, data));
