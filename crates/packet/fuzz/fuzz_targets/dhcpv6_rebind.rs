//! DHCPv6 rebind messages (type 6): arbitrary options after the header.
#![no_main]
use libfuzzer_sys::fuzz_target;
#[path = "dhcpv6_check.rs"]
mod check;

fuzz_target!(|data: &[u8]| check::typed(6, data));
