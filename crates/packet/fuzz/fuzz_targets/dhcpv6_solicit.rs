//! DHCPv6 solicit messages (type 1): arbitrary options after the header.
#![no_main]
use libfuzzer_sys::fuzz_target;
#[path = "dhcpv6_check.rs"]
mod check;

fuzz_target!(|data: &[u8]| check::typed(1, data));
