//! Fuzz target: action list decoding (standard and Nicira actions).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(actions) = openflow::action::decode_actions(data) {
        let mut out = Vec::new();
        openflow::action::encode_actions(&actions, &mut out);
        assert!(openflow::action::decode_actions(&out).is_ok());
    }
});
