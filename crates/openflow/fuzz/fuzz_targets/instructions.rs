//! Fuzz target: instruction list decoding.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(ins) = openflow::instruction::decode_instructions(data) {
        let mut out = Vec::new();
        openflow::instruction::encode_instructions(&ins, &mut out);
        assert!(openflow::instruction::decode_instructions(&out).is_ok());
    }
});
