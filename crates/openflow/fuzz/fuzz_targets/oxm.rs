//! Fuzz target: OXM/NXM TLVs and the ofp_match structure.
#![no_main]

use libfuzzer_sys::fuzz_target;
use openflow::buf::Reader;

fuzz_target!(|data: &[u8]| {
    if let Ok(fields) = openflow::oxm::decode_oxms(data) {
        let m = openflow::Match { fields };
        let mut out = Vec::new();
        m.encode(&mut out);
        assert!(openflow::Match::decode(&mut Reader::new(&out, "match")).is_ok());
        let _ = m.check_prerequisites();
    }
    let _ = openflow::Match::decode(&mut Reader::new(data, "match"));
});
