//! DHCPv6 request messages (type 3): arbitrary options after the header.
#![no_main]
use libfuzzer_sys::fuzz_target;
#[path = "dhcpv6_check.rs"]
mod check;

fuzz_target!(|data: &[u8]| check::typed(3, data));
