//! The BGP message parser: never panics, with either AS width; a parsed message encodes
//! and parses back to itself.
#![no_main]
use bgp::wire::{Codec, MAX_LEN, decode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for four_octet_as in [false, true] {
        let codec = Codec { four_octet_as };
        let Ok(Some((msg, used))) = decode(data, codec) else {
            continue;
        };
        assert!(used <= data.len());
        let again = msg.encode(codec);
        if again.len() > MAX_LEN {
            continue;
        }
        let (back, n) = decode(&again, codec)
            .expect("our own encoding parses")
            .expect("complete");
        assert_eq!(n, again.len());
        // AS_PATH segments over 255 AS numbers come back split; nothing parsed has them.
        assert_eq!(back, msg);
    }
});
